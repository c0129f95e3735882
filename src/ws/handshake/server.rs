//! The server side: every check on the upgrade request, the accept key and
//! the `101` response.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::{BufMut, BytesMut};
use sha1::{Digest, Sha1};

use super::topics::{parse_topics, TopicsConfig};
use crate::error::HandshakeError;
use crate::http::{has_token, trim, RequestHead};
use crate::upgrade::{OriginPolicy, Policy, Rejection};

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

/// Server-side handshake policy: subprotocols, the shared origin and
/// authorization [`Policy`], and topics. `ServerConfig::new()` accepts any
/// origin, no subprotocol, no auth hook, no topics.
#[derive(Clone, Default)]
pub struct ServerConfig {
    subprotocols: Vec<String>,
    policy: Policy,
    topics: Option<TopicsConfig>,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("subprotocols", &self.subprotocols)
            .field("policy", &self.policy)
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
        self.policy = self.policy.origin(policy);
        self
    }

    /// Sets the authorization hook (run after the protocol and origin
    /// checks).
    pub fn auth<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RequestHead) -> Result<(), Rejection> + Send + Sync + 'static,
    {
        self.policy = self.policy.auth(hook);
        self
    }

    /// Sets origin policy and hook at once, e.g. one [`Policy`] shared
    /// with an SSE endpoint.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
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

    /// The supported subprotocols, most preferred first.
    pub fn supported_subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// The origin and authorization policy.
    pub fn upgrade_policy(&self) -> &Policy {
        &self.policy
    }

    /// The topics configuration, if any.
    pub fn topics(&self) -> Option<&TopicsConfig> {
        self.topics.as_ref()
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
    /// permessage-deflate as agreed (set by
    /// [`negotiate_deflate`](Self::negotiate_deflate); answered in the 101).
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::ws::deflate::DeflateParams>,
    accept: [u8; 28],
}

impl Accepted {
    /// The `Sec-WebSocket-Accept` value.
    pub fn accept_key(&self) -> &str {
        std::str::from_utf8(&self.accept).unwrap_or("")
    }

    /// Chooses the first acceptable permessage-deflate offer of the
    /// request for `config` (RFC 7692 §7.1) and records it in
    /// [`deflate`](Self::deflate), so the 101 answers it. A malformed
    /// `Sec-WebSocket-Extensions` header is ignored (no deflate).
    #[cfg(feature = "deflate")]
    pub fn negotiate_deflate(&mut self, config: &crate::ws::deflate::DeflateConfig) {
        let mut offers = Vec::new();
        for v in self.head.headers_named("sec-websocket-extensions") {
            match crate::ws::deflate::parse_extensions(v) {
                Some(e) => offers.extend(e),
                None => return,
            }
        }
        self.deflate = crate::ws::deflate::server_negotiate(&offers, config);
    }

    /// Appends the `101 Switching Protocols` response to `buf`.
    pub fn write_response(&self, buf: &mut BytesMut) {
        #[cfg(feature = "deflate")]
        let ext = self.deflate.map(|p| p.response_header());
        #[cfg(not(feature = "deflate"))]
        let ext: Option<String> = None;
        write_101(
            buf,
            &self.accept,
            self.subprotocol.as_deref(),
            ext.as_deref(),
        );
    }
}

fn write_101(buf: &mut BytesMut, accept: &[u8; 28], protocol: Option<&str>, ext: Option<&str>) {
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
    if let Some(e) = ext {
        buf.put_slice(b"Sec-WebSocket-Extensions: ");
        buf.put_slice(e.as_bytes());
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
    if !config.policy.origin_policy().allows_request(&head) {
        return Err(HandshakeError::OriginRefused);
    }
    config
        .policy
        .authorize(&head)
        .map_err(|r| HandshakeError::Unauthorized {
            status: r.status(),
            reason: r.reason().to_owned(),
        })?;
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
        #[cfg(feature = "deflate")]
        deflate: None,
        accept: key,
    })
}

fn has_param(head: &RequestHead, name: &str) -> bool {
    head.query().is_some_and(|q| {
        q.split('&')
            .any(|p| p.split_once('=').map_or(p, |(k, _)| k) == name)
    })
}
