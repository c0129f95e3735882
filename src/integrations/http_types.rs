//! The handshake in the types of the [`http`] crate (feature
//! `http`), the vocabulary of hyper, axum, reqwest and tower: a request
//! from any of them goes through the same checks and [`ServerConfig`]
//! policy (origin, auth hook, topics, subprotocols) as one read off a
//! socket, and the answer comes back as an `http::Response`.
//!
//! - [`request_head`]: `http` request → [`RequestHead`] (what the policy
//!   hooks see); [`to_request`] the other way.
//! - [`accept`]: the server's checks, then [`response`] (the `101`) or
//!   [`rejection`] (status, headers and body of the [`HandshakeError`]).
//! - [`connect`]: the client side from an `http::Request<()>` (its URI and
//!   extra headers); [`to_response`] turns the `101` head into an
//!   `http::Response<()>`.
//!
//! ```
//! use rtwire::http_types;
//! use rtwire::ws::handshake::ServerConfig;
//!
//! let req = http::Request::get("/chat?topics=a,b")
//!     .header("host", "example.com")
//!     .header("upgrade", "websocket")
//!     .header("connection", "Upgrade")
//!     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
//!     .header("sec-websocket-version", "13")
//!     .header("sec-websocket-protocol", "superchat, chat")
//!     .body(())
//!     .unwrap();
//! let config = ServerConfig::new().subprotocols(["chat"]).topics_param("topics", 8, 32);
//! let accepted = http_types::accept(&req, &config).unwrap();
//! assert_eq!(accepted.topics, ["a", "b"]);
//! let resp = http_types::response(&accepted);
//! assert_eq!(resp.status(), http::StatusCode::SWITCHING_PROTOCOLS);
//! assert_eq!(resp.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! assert_eq!(resp.headers()["sec-websocket-protocol"], "chat");
//!
//! let bad = http::Request::post("/chat").body(()).unwrap();
//! let err = http_types::accept(&bad, &config).unwrap_err();
//! let resp = http_types::rejection(&err);
//! assert_eq!(resp.status(), http::StatusCode::METHOD_NOT_ALLOWED);
//! assert_eq!(resp.headers()["allow"], "GET");
//! ```

use ::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ::http::{request, Method, Request, Response, StatusCode, Uri, Version};
use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{Error, HandshakeError, UsageError};
use crate::http::{HeadParser, Limits, RequestHead, ResponseHead};
use crate::ws::handshake::{self, Accepted, ServerConfig};
use crate::ws::{Config, Conn};

/// The parts of a request that make its head.
fn head_of(
    method: &Method,
    uri: &Uri,
    version: Version,
    headers: &HeaderMap,
) -> Result<RequestHead, HandshakeError> {
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut raw = BytesMut::with_capacity(64 + target.len() + 32 * headers.len());
    raw.put_slice(method.as_str().as_bytes());
    raw.put_u8(b' ');
    raw.put_slice(target.as_bytes());
    raw.put_slice(match version {
        Version::HTTP_09 | Version::HTTP_10 => b" HTTP/1.0\r\n",
        // HTTP/2 and 3 have no request line; their heads read as 1.1 (a
        // WebSocket upgrade still fails: they carry no `Connection`).
        _ => b" HTTP/1.1\r\n",
    });
    if !headers.contains_key(header::HOST) {
        // HTTP/2 carries the host in the URI's authority.
        if let Some(a) = uri.authority() {
            raw.put_slice(b"host: ");
            raw.put_slice(a.as_str().as_bytes());
            raw.put_slice(b"\r\n");
        }
    }
    for (name, value) in headers {
        raw.put_slice(name.as_str().as_bytes());
        raw.put_slice(b": ");
        raw.put_slice(value.as_bytes());
        raw.put_slice(b"\r\n");
    }
    raw.put_slice(b"\r\n");
    // `http` has validated every part already; the parser checks the same
    // limits as a head read off a socket and indexes the fields.
    let limits = Limits::default().max_headers(headers.len() + 1);
    let limits = limits.max_head_size(raw.len().max(limits.max_head_size));
    HeadParser::new(limits)
        .parse_request(&mut raw)?
        .ok_or(HandshakeError::Head(crate::http::HeadError::Malformed(
            "incomplete head",
        )))
}

/// The [`RequestHead`] of an `http` request (what the handshake checks and
/// the policy hooks see). Fails only on a head `httparse` refuses, e.g. a
/// header value with bytes it does not accept.
///
/// ```
/// let req = http::Request::get("/a?b=1").header("host", "x").body(()).unwrap();
/// let head = rtwire::http_types::request_head(&req).unwrap();
/// assert_eq!((head.method(), head.path(), head.header_str("host")), ("GET", "/a", Some("x")));
/// ```
pub fn request_head<B>(req: &Request<B>) -> Result<RequestHead, HandshakeError> {
    head_of(req.method(), req.uri(), req.version(), req.headers())
}

/// [`request_head`] from a request's [`Parts`](request::Parts) (e.g. in an
/// axum extractor).
pub fn parts_head(parts: &request::Parts) -> Result<RequestHead, HandshakeError> {
    head_of(&parts.method, &parts.uri, parts.version, &parts.headers)
}

impl<B> TryFrom<&Request<B>> for RequestHead {
    type Error = HandshakeError;
    fn try_from(req: &Request<B>) -> Result<Self, HandshakeError> {
        request_head(req)
    }
}

impl TryFrom<&request::Parts> for RequestHead {
    type Error = HandshakeError;
    fn try_from(parts: &request::Parts) -> Result<Self, HandshakeError> {
        parts_head(parts)
    }
}

/// An `http::Request<()>` with the method, target, version and headers of
/// `head`.
///
/// ```
/// use bytes::BytesMut;
/// let mut raw = BytesMut::from(&b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"[..]);
/// let head = rtwire::http::HeadParser::new(Default::default())
///     .parse_request(&mut raw).unwrap().unwrap();
/// let req = rtwire::http_types::to_request(&head).unwrap();
/// assert_eq!((req.uri().path(), req.headers()["host"].to_str().unwrap()), ("/x", "a"));
/// ```
pub fn to_request(head: &RequestHead) -> Result<Request<()>, ::http::Error> {
    let mut b = Request::builder()
        .method(head.method())
        .uri(head.target())
        .version(if head.minor_version() == 0 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        });
    for (n, v) in head.headers() {
        b = b.header(n, v);
    }
    b.body(())
}

/// An `http::Response<()>` with the status and headers of `head` (e.g. the
/// `101` that [`Conn::connect`] returns).
pub fn to_response(head: &ResponseHead) -> Result<Response<()>, ::http::Error> {
    let mut b = Response::builder().status(head.status());
    for (n, v) in head.headers() {
        b = b.header(n, v);
    }
    b.body(())
}

/// Runs every server-side check of [`handshake::accept`] (method, version,
/// `Host`, `Upgrade`, `Connection`, key and version, origin, auth hook,
/// topics) on an `http` request, with `config`'s policy. On success answer
/// with [`response`] (after
/// [`Accepted::negotiate_deflate`] when permessage-deflate is wanted); on
/// failure, with [`rejection`].
pub fn accept<B>(req: &Request<B>, config: &ServerConfig) -> Result<Accepted, HandshakeError> {
    handshake::accept(request_head(req)?, config)
}

/// [`accept`] from a request's [`Parts`](request::Parts).
pub fn accept_parts(
    parts: &request::Parts,
    config: &ServerConfig,
) -> Result<Accepted, HandshakeError> {
    handshake::accept(parts_head(parts)?, config)
}

/// The `101 Switching Protocols` for an accepted request: `Upgrade`,
/// `Connection`, `Sec-WebSocket-Accept`, and `Sec-WebSocket-Protocol` /
/// `Sec-WebSocket-Extensions` when a subprotocol or permessage-deflate was
/// agreed.
pub fn response(accepted: &Accepted) -> Response<()> {
    let mut resp = Response::new(());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    // Base64: always a valid header value.
    if let Ok(v) = HeaderValue::from_str(accepted.accept_key()) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(p) = &accepted.subprotocol {
        // The name is one the server configured and the client sent.
        if let Ok(v) = HeaderValue::from_str(p) {
            h.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
        }
    }
    #[cfg(feature = "deflate")]
    if let Some(d) = &accepted.deflate {
        if let Ok(v) = HeaderValue::from_str(&d.response_header()) {
            h.insert(header::SEC_WEBSOCKET_EXTENSIONS, v);
        }
    }
    resp
}

/// The rejection for a failed handshake: its status
/// ([`HandshakeError::status`]), the headers that status calls for
/// (`Sec-WebSocket-Version: 13` with a 426 for an unsupported version,
/// `Upgrade: websocket` with a 426 for a plain request, `Allow: GET` with
/// a 405), `Content-Type: text/plain` and the error as the body.
pub fn rejection(e: &HandshakeError) -> Response<String> {
    let mut resp = Response::new(e.to_string());
    *resp.status_mut() =
        StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    match e {
        HandshakeError::UnsupportedVersion => {
            h.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        HandshakeError::NotWebSocket => {
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        }
        HandshakeError::Method => {
            h.insert(header::ALLOW, HeaderValue::from_static("GET"));
        }
        _ => {}
    }
    resp
}

/// The headers the client handshake writes itself.
fn handshake_owned(name: &HeaderName) -> bool {
    [
        header::HOST,
        header::UPGRADE,
        header::CONNECTION,
        header::SEC_WEBSOCKET_KEY,
        header::SEC_WEBSOCKET_VERSION,
        header::SEC_WEBSOCKET_PROTOCOL,
        header::SEC_WEBSOCKET_EXTENSIONS,
    ]
    .contains(name)
}

/// Client side from an `http::Request<()>`: the URI (`ws://` or `wss://`,
/// `wss://` when `stream` is TLS already) and the request's extra headers
/// (e.g. `Authorization`, `Cookie`) go out with `config`'s; subprotocols
/// in its `Sec-WebSocket-Protocol` are offered with `config`'s. Then as
/// [`Conn::connect`], with the `101` returned as an `http::Response<()>`.
///
/// ```no_run
/// # async fn run() -> Result<(), rtwire::Error> {
/// let req = http::Request::get("ws://127.0.0.1:9001/chat")
///     .header("authorization", "Bearer t0ken")
///     .header("sec-websocket-protocol", "chat")
///     .body(())
///     .unwrap();
/// let tcp = tokio::net::TcpStream::connect("127.0.0.1:9001").await?;
/// let config = rtwire::ws::Config::default();
/// let (mut conn, resp) = rtwire::http_types::connect(tcp, req, &config).await?;
/// assert_eq!(resp.headers()["sec-websocket-protocol"], "chat");
/// conn.send_text("hi").await?;
/// # Ok(()) }
/// ```
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    req: Request<()>,
    config: &Config,
) -> Result<(Conn<S>, Response<()>), Error> {
    let uri = req.uri();
    let scheme = uri.scheme_str().unwrap_or("ws");
    let authority = uri
        .authority()
        .ok_or(Error::Usage(UsageError::InvalidUrl))?;
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{scheme}://{authority}{target}");
    let mut config = config.clone();
    for (name, value) in req.headers() {
        let Ok(value) = value.to_str() else {
            return Err(Error::Handshake(HandshakeError::Head(
                crate::http::HeadError::Malformed("a request header value is not visible ASCII"),
            )));
        };
        if name == header::SEC_WEBSOCKET_PROTOCOL {
            config.client_subprotocols.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from),
            );
        } else if !handshake_owned(name) {
            config
                .client_headers
                .push((name.as_str().to_owned(), value.to_owned()));
        }
    }
    let (conn, head) = Conn::connect(stream, &url, &config).await?;
    let resp = to_response(&head).map_err(|_| {
        Error::Handshake(HandshakeError::Head(crate::http::HeadError::Malformed(
            "response head",
        )))
    })?;
    Ok((conn, resp))
}
