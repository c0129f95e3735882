//! A minimal, incremental HTTP/1.1 head parser for the upgrade handshake and
//! for Server-Sent Events.
//!
//! Heads are fed in arbitrary chunks. The parser remembers how far it has
//! scanned for the blank line that ends a head, so feeding a head one byte at
//! a time costs O(n) in total, not O(n²) (the lesson of tungstenite's
//! CVE-2023-43669). `httparse` runs exactly once, on the complete head.
//!
//! ```
//! use bytes::BytesMut;
//! use rtwire::http::{HeadParser, Limits};
//!
//! let mut parser = HeadParser::new(Limits::default());
//! let mut buf = BytesMut::from(&b"GET /chat?x=1 HTTP/1.1\r\nHost: a"[..]);
//! assert!(parser.parse_request(&mut buf).unwrap().is_none());
//! buf.extend_from_slice(b"\r\n\r\nleftover");
//! let head = parser.parse_request(&mut buf).unwrap().unwrap();
//! assert_eq!(head.method(), "GET");
//! assert_eq!(head.path(), "/chat");
//! assert_eq!(head.query_param("x").as_deref(), Some("1"));
//! assert_eq!(head.header("host"), Some(&b"a"[..]));
//! assert_eq!(&buf[..], b"leftover");
//! ```

mod head;
mod parser;
pub mod response;

pub use head::{HeaderIter, RequestHead, ResponseHead};
pub use parser::{HeadError, HeadParser, Limits};

/// Returns true when the comma-separated header value `list` contains `token`,
/// compared ASCII case-insensitively with surrounding whitespace ignored
/// (RFC 9110 §5.6.1 list syntax).
///
/// ```
/// assert!(rtwire::http::has_token(b"keep-alive, Upgrade", "upgrade"));
/// assert!(!rtwire::http::has_token(b"upgrades", "upgrade"));
/// ```
pub fn has_token(list: &[u8], token: &str) -> bool {
    list.split(|&b| b == b',')
        .any(|item| trim(item).eq_ignore_ascii_case(token.as_bytes()))
}

/// Trims optional whitespace (SP / HTAB) from both ends of a header value.
///
/// ```
/// assert_eq!(rtwire::http::trim(b" a b\t"), b"a b");
/// ```
pub fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Decodes `%XX` escapes and `+` (as space) of a query component. Invalid
/// escapes are kept literally; the result is `None` when it is not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if !b.iter().any(|&c| c == b'%' || c == b'+') {
        return Some(s.to_owned());
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}
