//! Writing small, complete HTTP/1.1 responses: the rejections of both
//! upgrades (WebSocket and SSE).

use bytes::{BufMut, BytesMut};

/// Writes a `status` response with a `text/plain` body and `Connection: close`.
pub(crate) fn write_text_response(buf: &mut BytesMut, status: u16, extra: &str, body: &str) {
    use std::fmt::Write as _;
    let mut w = String::with_capacity(128 + body.len());
    let _ = write!(
        w,
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        reason_phrase(status),
        body.len()
    );
    buf.put_slice(w.as_bytes());
}

/// The standard reason phrase for a status code (`"Error"` for codes
/// rtwire does not send).
///
/// ```
/// assert_eq!(rtwire::http::response::reason_phrase(426), "Upgrade Required");
/// ```
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}
