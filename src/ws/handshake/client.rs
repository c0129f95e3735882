//! The client side: the upgrade request and the check of the `101`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::{BufMut, BytesMut};

use super::server::accept_key;
use crate::error::HandshakeError;
use crate::http::{has_token, trim, HeadError, ResponseHead};

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
        let nonce = crate::ws::encoder::random_16();
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
        self.check(resp, false)
    }

    /// [`validate`](Self::validate) for a request that offered
    /// permessage-deflate from `config` (see
    /// [`deflate::client_offer`](crate::ws::deflate::client_offer)): the
    /// answer may select it, and is checked per RFC 7692 §7.1. Returns the
    /// subprotocol and the agreed parameters (`None`: declined).
    #[cfg(feature = "deflate")]
    pub fn validate_with_deflate(
        &self,
        resp: &ResponseHead,
        config: &crate::ws::deflate::DeflateConfig,
    ) -> Result<(Option<String>, Option<crate::ws::deflate::DeflateParams>), HandshakeError> {
        let protocol = self.check(resp, true)?;
        let mut elements = Vec::new();
        for v in resp.headers_named("sec-websocket-extensions") {
            match crate::ws::deflate::parse_extensions(v) {
                Some(e) => elements.extend(e),
                None => {
                    return Err(HandshakeError::ExtensionNotOffered(
                        String::from_utf8_lossy(v).into_owned(),
                    ))
                }
            }
        }
        let params = crate::ws::deflate::validate_response(&elements, config)?;
        Ok((protocol, params))
    }

    fn check(
        &self,
        resp: &ResponseHead,
        extensions_offered: bool,
    ) -> Result<Option<String>, HandshakeError> {
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
            .filter(|_| !extensions_offered)
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
