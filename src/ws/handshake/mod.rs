//! The opening handshake (RFC 6455 §4), sans-IO: the server's checks and
//! `101` ([`accept`], [`ServerConfig`]), the client's request and response
//! check ([`ClientHandshake`]), and topics from the query ([`parse_topics`]).
//! The origin and authorization policy is shared with SSE: [`crate::upgrade`].
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

mod client;
mod server;
mod topics;

pub use client::ClientHandshake;
pub use server::{accept, accept_key, Accepted, ServerConfig, GUID};
pub use topics::{parse_topics, TopicsConfig};
