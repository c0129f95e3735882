//! The opening handshake (RFC 6455 §4): server accept and client request.
//!
//! Server side:
//!
//! ```
//! use bytes::BytesMut;
//! use rtwire::http::{HeadParser, Limits};
//! use rtwire::ws::handshake::{accept, ServerConfig};
//!
//! let req = "GET /chat?topics=a,b HTTP/1.1\r\nHost: server.example.com\r\n\
//!            Upgrade: websocket\r\nConnection: Upgrade\r\n\
//!            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!            Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";
//! let head = HeadParser::new(Limits::default())
//!     .parse_request(&mut BytesMut::from(req.as_bytes())).unwrap().unwrap();
//! let config = ServerConfig::new().subprotocols(["chat"]).topics_param("topics", 8, 32);
//! let accepted = accept(head, &config).unwrap();
//! assert_eq!(accepted.subprotocol.as_deref(), Some("chat"));
//! assert_eq!(accepted.topics, ["a", "b"]);
//! let mut out = BytesMut::new();
//! accepted.write_response(&mut out);
//! assert!(std::str::from_utf8(&out).unwrap()
//!     .contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
//! ```

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::{BufMut, BytesMut};
use sha1::{Digest, Sha1};

use crate::error::HandshakeError;
use crate::http::{has_token, trim, HeadError, RequestHead, ResponseHead};

/// The GUID of RFC 6455 §1.3, appended to the key before hashing.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64 of the
/// SHA-1 of the key followed by the GUID. Returned as 28 ASCII bytes.
///
/// ```
/// // RFC 6455 §1.3
/// let accept = rtwire::ws::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
/// assert_eq!(&accept, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID.as_bytes());
    let digest = sha.finalize();
    let mut out = [0u8; 28];
    // 20 bytes of digest always encode to exactly 28 base64 characters.
    let _ = STANDARD.encode_slice(digest, &mut out);
    out
}

/// A custom origin check for [`OriginPolicy::Custom`]: gets the `Origin`
/// value (`None` when absent) and returns whether it may upgrade.
pub type OriginCheck = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// Which `Origin` values may upgrade. Checked before the upgrade; a refused
/// origin gets 403.
///
/// A request without `Origin` comes from a non-browser client (browsers
/// always send it on WebSocket requests); [`OriginPolicy::AllowList`]
/// accepts it, as gorilla/websocket's default check does. Use
/// [`OriginPolicy::Custom`] to refuse it.
#[derive(Clone, Default)]
pub enum OriginPolicy {
    /// Any origin, or none.
    #[default]
    AllowAll,
    /// Only these origins (ASCII case-insensitive, e.g.
    /// `"https://example.com"`), or no `Origin` header at all.
    AllowList(Vec<String>),
    /// A predicate over the `Origin` value (`None` when absent).
    Custom(OriginCheck),
}

impl OriginPolicy {
    /// Whether `origin` passes this policy.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match self {
            OriginPolicy::AllowAll => true,
            OriginPolicy::AllowList(list) => {
                origin.is_none_or(|o| list.iter().any(|a| a.eq_ignore_ascii_case(o)))
            }
            OriginPolicy::Custom(f) => f(origin),
        }
    }

    /// Whether the `Origin` header of `head` passes this policy. A missing
    /// header is `None` for [`allows`](Self::allows); a value that is not
    /// UTF-8 passes no policy, not even [`AllowAll`](Self::AllowAll).
    pub fn allows_request(&self, head: &RequestHead) -> bool {
        match head.header("origin").map(|o| std::str::from_utf8(trim(o))) {
            None => self.allows(None),
            Some(Ok(o)) => self.allows(Some(o)),
            Some(Err(_)) => false,
        }
    }
}

impl fmt::Debug for OriginPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginPolicy::AllowAll => f.write_str("AllowAll"),
            OriginPolicy::AllowList(l) => f.debug_tuple("AllowList").field(l).finish(),
            OriginPolicy::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// A refusal from an authorization hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status to answer with (401 from [`Rejection::unauthorized`]).
    pub status: u16,
    /// Short text for the response body.
    pub reason: String,
}

impl Rejection {
    /// A 401 with `reason` as the body.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Rejection {
            status: 401,
            reason: reason.into(),
        }
    }

    /// A refusal with another status, e.g. 403 or 429. It must be 4xx or
    /// 5xx: anything else is answered as 500.
    pub fn with_status(status: u16, reason: impl Into<String>) -> Self {
        Rejection {
            status,
            reason: reason.into(),
        }
    }
}

/// An authorization hook: sees the whole request head (headers, query) and
/// may refuse the upgrade.
pub type AuthHook = Arc<dyn Fn(&RequestHead) -> Result<(), Rejection> + Send + Sync>;

/// Where topics come from and how many and how long they may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicsConfig {
    /// The query parameter, e.g. `"topics"` for `?topics=a,b`.
    pub param: String,
    /// Most topics in one request.
    pub max_count: usize,
    /// Longest topic, in bytes.
    pub max_len: usize,
}

/// Parses a comma-separated topic list, as the seeds' `ParseTopics(raw,
/// maxCount, maxLen)`: items are trimmed, duplicates dropped (first kept);
/// an empty list is allowed; an empty item, an item longer than `max_len`,
/// an item with a character outside printable ASCII (or a space), or more
/// than `max_count` items is an error.
///
/// ```
/// use rtwire::ws::handshake::parse_topics;
/// assert_eq!(parse_topics("a, b,a", 4, 8).unwrap(), ["a", "b"]);
/// assert!(parse_topics("a,,b", 4, 8).is_err());
/// assert!(parse_topics("a,b,c", 2, 8).is_err());
/// assert!(parse_topics("waytoolong", 4, 8).is_err());
/// ```
pub fn parse_topics(raw: &str, max_count: usize, max_len: usize) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    if raw.trim().is_empty() {
        return Ok(out);
    }
    for item in raw.split(',') {
        let t = item.trim();
        if t.is_empty() {
            return Err("empty topic".into());
        }
        if t.len() > max_len {
            return Err(format!("topic longer than {max_len} bytes"));
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("topic has a character outside printable ASCII".into());
        }
        if out.iter().any(|o| o == t) {
            continue;
        }
        if out.len() == max_count {
            return Err(format!("more than {max_count} topics"));
        }
        out.push(t.to_owned());
    }
    Ok(out)
}

/// Server-side handshake policy. `ServerConfig::new()` accepts any origin,
/// no subprotocol, no auth hook, no topics.
#[derive(Clone, Default)]
pub struct ServerConfig {
    /// Supported subprotocols, most preferred first.
    pub subprotocols: Vec<String>,
    /// Origin policy.
    pub origin: OriginPolicy,
    /// Authorization hook, run after the protocol checks.
    pub auth: Option<AuthHook>,
    /// Topics from the query string.
    pub topics: Option<TopicsConfig>,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("subprotocols", &self.subprotocols)
            .field("origin", &self.origin)
            .field("auth", &self.auth.as_ref().map(|_| ".."))
            .field("topics", &self.topics)
            .finish()
    }
}

impl ServerConfig {
    /// The default policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the supported subprotocols, most preferred first.
    pub fn subprotocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the origin policy.
    pub fn origin(mut self, policy: OriginPolicy) -> Self {
        self.origin = policy;
        self
    }

    /// Sets the authorization hook.
    pub fn auth<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RequestHead) -> Result<(), Rejection> + Send + Sync + 'static,
    {
        self.auth = Some(Arc::new(hook));
        self
    }

    /// Reads topics from query parameter `param`.
    pub fn topics_param(mut self, param: &str, max_count: usize, max_len: usize) -> Self {
        self.topics = Some(TopicsConfig {
            param: param.to_owned(),
            max_count,
            max_len,
        });
        self
    }
}

/// A request that passed every check: what the application routes on.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// The request head (path, query, headers).
    pub head: RequestHead,
    /// The selected subprotocol, if any.
    pub subprotocol: Option<String>,
    /// Topics from the query (empty without a topics config).
    pub topics: Vec<String>,
    accept: [u8; 28],
}

impl Accepted {
    /// The `Sec-WebSocket-Accept` value.
    pub fn accept_key(&self) -> &str {
        std::str::from_utf8(&self.accept).unwrap_or("")
    }

    /// Appends the `101 Switching Protocols` response to `buf`.
    pub fn write_response(&self, buf: &mut BytesMut) {
        write_101(buf, &self.accept, self.subprotocol.as_deref());
    }
}

fn write_101(buf: &mut BytesMut, accept: &[u8; 28], protocol: Option<&str>) {
    buf.put_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    buf.put_slice(accept);
    buf.put_slice(b"\r\n");
    if let Some(p) = protocol {
        buf.put_slice(b"Sec-WebSocket-Protocol: ");
        buf.put_slice(p.as_bytes());
        buf.put_slice(b"\r\n");
    }
    buf.put_slice(b"\r\n");
}

fn valid_key(key: &[u8]) -> bool {
    let key = trim(key);
    let mut out = [0u8; 18];
    key.len() == 24 && matches!(STANDARD.decode_slice(key, &mut out), Ok(16))
}

/// Every subprotocol token the client offered, in order.
fn offered_protocols(head: &RequestHead) -> impl Iterator<Item = &str> {
    head.headers_named("sec-websocket-protocol")
        .flat_map(|v| v.split(|&b| b == b','))
        .filter_map(|t| std::str::from_utf8(trim(t)).ok())
        .filter(|t| !t.is_empty())
}

/// Runs every server-side check on a request head, in this order: method
/// (405), HTTP version (505), `Host` (400), `Upgrade` (426), `Connection`
/// (400), `Sec-WebSocket-Version` (426), `Sec-WebSocket-Key` (400), origin
/// (403), the auth hook (401), topics (400). On success the caller writes
/// [`Accepted::write_response`]; on failure,
/// [`HandshakeError::write_response`].
pub fn accept(head: RequestHead, config: &ServerConfig) -> Result<Accepted, HandshakeError> {
    if head.method() != "GET" {
        return Err(HandshakeError::Method);
    }
    if head.minor_version() < 1 {
        return Err(HandshakeError::HttpVersion);
    }
    if head.header("host").is_none() {
        return Err(HandshakeError::MissingHost);
    }
    if !head
        .headers_named("upgrade")
        .any(|v| has_token(v, "websocket"))
    {
        return Err(HandshakeError::NotWebSocket);
    }
    if !head
        .headers_named("connection")
        .any(|v| has_token(v, "upgrade"))
    {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    if head.header("sec-websocket-version").map(trim) != Some(b"13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let key = match head.header("sec-websocket-key") {
        Some(k) if valid_key(k) => accept_key(trim(k)),
        _ => return Err(HandshakeError::InvalidKey),
    };
    if !config.origin.allows_request(&head) {
        return Err(HandshakeError::OriginRefused);
    }
    if let Some(hook) = &config.auth {
        hook(&head).map_err(|r| HandshakeError::Unauthorized {
            status: r.status,
            reason: r.reason,
        })?;
    }
    let topics = match &config.topics {
        Some(tc) => {
            let raw = head.query_param(&tc.param);
            let raw = match head.query().map(|_| raw) {
                Some(Some(r)) => r,
                Some(None) if has_param(&head, &tc.param) => {
                    return Err(HandshakeError::InvalidTopics("not UTF-8".into()))
                }
                _ => std::borrow::Cow::Borrowed(""),
            };
            parse_topics(&raw, tc.max_count, tc.max_len).map_err(HandshakeError::InvalidTopics)?
        }
        None => Vec::new(),
    };
    let subprotocol = config
        .subprotocols
        .iter()
        .find(|want| offered_protocols(&head).any(|o| o == want.as_str()))
        .cloned();
    Ok(Accepted {
        head,
        subprotocol,
        topics,
        accept: key,
    })
}

fn has_param(head: &RequestHead, name: &str) -> bool {
    head.query().is_some_and(|q| {
        q.split('&')
            .any(|p| p.split_once('=').map_or(p, |(k, _)| k) == name)
    })
}

/// The client side of the handshake: builds the request and checks the
/// response against it.
///
/// ```
/// use bytes::BytesMut;
/// use rtwire::ws::handshake::ClientHandshake;
/// let mut out = BytesMut::new();
/// let hs = ClientHandshake::new("example.com", "/chat", &["chat"], &[], &mut out).unwrap();
/// let text = std::str::from_utf8(&out).unwrap();
/// assert!(text.starts_with("GET /chat HTTP/1.1\r\nHost: example.com\r\n"));
/// assert!(text.contains(hs.key()));
/// ```
#[derive(Clone, Debug)]
pub struct ClientHandshake {
    key: [u8; 24],
    offered: Vec<String>,
}

fn header_ok(s: &str) -> bool {
    !s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

impl ClientHandshake {
    /// Appends a GET upgrade request to `out`, with a fresh random 16-byte
    /// key, the offered `subprotocols` and `extra_headers`. Fails when a
    /// header name or value contains CR, LF or NUL.
    pub fn new(
        host: &str,
        path: &str,
        subprotocols: &[&str],
        extra_headers: &[(&str, &str)],
        out: &mut BytesMut,
    ) -> Result<Self, HandshakeError> {
        let bad = HandshakeError::Head(HeadError::Malformed("CR, LF or NUL in a request header"));
        let all_ok = header_ok(host)
            && header_ok(path)
            && !path.contains(' ')
            && subprotocols.iter().all(|p| header_ok(p))
            && extra_headers
                .iter()
                .all(|(n, v)| header_ok(n) && header_ok(v) && !n.contains(':'));
        if !all_ok {
            return Err(bad);
        }
        let nonce = crate::ws::codec::random_16();
        let mut key = [0u8; 24];
        let _ = STANDARD.encode_slice(nonce, &mut key);
        let path = if path.is_empty() { "/" } else { path };
        out.put_slice(b"GET ");
        out.put_slice(path.as_bytes());
        out.put_slice(b" HTTP/1.1\r\nHost: ");
        out.put_slice(host.as_bytes());
        out.put_slice(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
        out.put_slice(&key);
        out.put_slice(b"\r\nSec-WebSocket-Version: 13\r\n");
        if !subprotocols.is_empty() {
            out.put_slice(b"Sec-WebSocket-Protocol: ");
            out.put_slice(subprotocols.join(", ").as_bytes());
            out.put_slice(b"\r\n");
        }
        for (n, v) in extra_headers {
            out.put_slice(n.as_bytes());
            out.put_slice(b": ");
            out.put_slice(v.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
        Ok(ClientHandshake {
            key,
            offered: subprotocols.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    /// The `Sec-WebSocket-Key` sent.
    pub fn key(&self) -> &str {
        std::str::from_utf8(&self.key).unwrap_or("")
    }

    /// Checks the server's response: status 101, `Upgrade: websocket`,
    /// `Connection: upgrade`, the accept key, a subprotocol only among those
    /// offered, and no extension (none is offered). Returns the selected
    /// subprotocol.
    pub fn validate(&self, resp: &ResponseHead) -> Result<Option<String>, HandshakeError> {
        if resp.status() != 101 {
            return Err(HandshakeError::UnexpectedStatus(resp.status()));
        }
        if !resp
            .headers_named("upgrade")
            .any(|v| has_token(v, "websocket"))
        {
            return Err(HandshakeError::NotWebSocket);
        }
        if !resp
            .headers_named("connection")
            .any(|v| has_token(v, "upgrade"))
        {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        let expected = accept_key(&self.key);
        if resp.minor_version() < 1 {
            return Err(HandshakeError::HttpVersion);
        }
        let mut accepts = resp.headers_named("sec-websocket-accept");
        match (accepts.next().map(trim), accepts.next()) {
            (Some(a), None) if a == &expected[..] => {}
            _ => return Err(HandshakeError::AcceptMismatch),
        }
        // Every Sec-WebSocket-Extensions header, not only the first: we
        // offer none, so any non-empty value is a selection we refuse.
        if let Some(ext) = resp
            .headers_named("sec-websocket-extensions")
            .map(trim)
            .find(|e| !e.is_empty())
        {
            return Err(HandshakeError::ExtensionNotOffered(
                String::from_utf8_lossy(ext).into_owned(),
            ));
        }
        let mut protocols = resp.headers_named("sec-websocket-protocol");
        match (protocols.next(), protocols.next()) {
            (None, _) => Ok(None),
            (Some(p), None) => {
                let p = String::from_utf8_lossy(trim(p)).into_owned();
                if self.offered.contains(&p) {
                    Ok(Some(p))
                } else {
                    Err(HandshakeError::ProtocolNotOffered(p))
                }
            }
            (Some(_), Some(_)) => Err(HandshakeError::ProtocolNotOffered(
                "more than one Sec-WebSocket-Protocol".into(),
            )),
        }
    }
}
