//! # rtwire
//!
//! A protocol engine for the two realtime wire protocols of the web:
//! WebSocket ([RFC 6455](https://www.rfc-editor.org/rfc/rfc6455)) and
//! Server-Sent Events (the WHATWG `text/event-stream` format).
//!
//! The core is sans-IO: every protocol decision is a pure function or state
//! machine over byte buffers ([`http`], [`ws::FrameHeader`], [`ws::Decoder`],
//! [`ws::Encoder`], [`ws::handshake`], [`sse::Encoder`], [`sse::Decoder`]).
//! A thin tokio shell ([`ws::Conn`], [`sse::SseStream`]) drives them over any
//! `AsyncRead + AsyncWrite`.
//!
//! Fitting the ecosystem, each behind a feature: `futures` (`Stream` and
//! `Sink` for [`ws::Conn`] and its halves), `http` (`http_types`: the
//! handshake from and to the `http` crate's types), `hyper` (`hyper`:
//! upgrading a hyper 1 request, an SSE body) and `axum` (`axum`: a
//! `WebSocketUpgrade` extractor and an SSE response).
//!
//! ```
//! use rtwire::ws::{FrameHeader, OpCode};
//!
//! // RFC 6455 §5.7: a single-frame unmasked text message containing "Hello".
//! let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
//! let (header, len) = FrameHeader::parse(&wire).unwrap().unwrap();
//! assert_eq!(header.opcode, OpCode::Text);
//! assert_eq!(&wire[len..], b"Hello");
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![warn(rust_2018_idioms)]

pub mod error;
pub mod http;
pub mod hub;
pub mod pubsub;
pub mod sse;
pub mod upgrade;
pub mod ws;

pub use error::{Error, HandshakeError, ProtocolError, UsageError};

#[cfg(feature = "http")]
#[path = "integrations/http_types.rs"]
pub mod http_types;

#[cfg(feature = "hyper")]
#[path = "integrations/hyper.rs"]
pub mod hyper;

#[cfg(feature = "axum")]
#[path = "integrations/axum.rs"]
pub mod axum;

// The README's code blocks, compiled as doctests (they use the `axum`
// feature; CI runs `cargo test --all-features`).
#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../README.md")]
mod readme {}
