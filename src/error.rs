//! Error types.
//!
//! [`Error`] is what the async shell returns. Inside it, errors keep their
//! layer: [`ProtocolError`] (a WebSocket peer broke RFC 6455; each maps to a
//! close code), [`HandshakeError`] (the upgrade failed; each maps to an HTTP
//! status and a ready-made response) and I/O errors.

use std::fmt;
use std::io;

use bytes::BytesMut;

use crate::http::response::write_text_response;

use crate::http::HeadError;
use crate::ws::CloseCode;

/// A violation of RFC 6455 by the peer (or a configured limit it exceeded).
///
/// Each variant names the close code the connection is failed with,
/// see [`ProtocolError::close_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A client sent a frame without a mask (RFC 6455 §5.1). 1002.
    UnmaskedFrame,
    /// A server sent a masked frame (RFC 6455 §5.1). 1002.
    MaskedFrame,
    /// RSV1-3 set without a negotiated extension. 1002.
    ReservedBits(u8),
    /// An opcode reserved for future use (3-7, 0xB-0xF). 1002.
    ReservedOpcode(u8),
    /// A control frame with FIN=0. 1002.
    FragmentedControl,
    /// A control frame with a payload over 125 bytes. 1002.
    ControlTooLong(u64),
    /// A payload length not in its shortest encoding. 1002.
    NonMinimalLength,
    /// A 64-bit payload length with its most significant bit set. 1002.
    LengthOverflow,
    /// A continuation frame with no message in progress. 1002.
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is in progress. 1002.
    ExpectedContinuation,
    /// A close frame with a one-byte payload. 1002.
    InvalidClosePayload,
    /// A close frame with a code that must not be sent on the wire. 1002.
    InvalidCloseCode(u16),
    /// Text (or a close reason) that is not UTF-8. 1007.
    InvalidUtf8,
    /// A frame larger than the configured maximum. 1009.
    FrameTooLarge {
        /// Declared payload length.
        size: u64,
        /// The limit in force.
        max: usize,
    },
    /// A message larger than the configured maximum. 1009.
    MessageTooLarge {
        /// The limit in force.
        max: usize,
    },
    /// A message made of more frames than the configured maximum. 1009.
    TooManyFragments {
        /// The limit in force.
        max: usize,
    },
    /// A data frame after the peer's close frame. 1002.
    DataAfterClose,
    /// A compressed message (permessage-deflate) that does not inflate.
    /// 1007.
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code to fail the connection with (RFC 6455 §7.4.1).
    ///
    /// ```
    /// use rtwire::{ProtocolError, ws::CloseCode};
    /// assert_eq!(ProtocolError::InvalidUtf8.close_code(), CloseCode::INVALID_PAYLOAD);
    /// assert_eq!(ProtocolError::UnmaskedFrame.close_code(), CloseCode::PROTOCOL_ERROR);
    /// ```
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            ProtocolError::FrameTooLarge { .. }
            | ProtocolError::MessageTooLarge { .. }
            | ProtocolError::TooManyFragments { .. } => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::UnmaskedFrame => f.write_str("client frame is not masked"),
            ProtocolError::MaskedFrame => f.write_str("server frame is masked"),
            ProtocolError::ReservedBits(b) => write!(f, "reserved bits set ({b:#05b})"),
            ProtocolError::ReservedOpcode(o) => write!(f, "reserved opcode {o:#x}"),
            ProtocolError::FragmentedControl => f.write_str("fragmented control frame"),
            ProtocolError::ControlTooLong(n) => write!(f, "control frame payload of {n} bytes"),
            ProtocolError::NonMinimalLength => f.write_str("payload length not minimally encoded"),
            ProtocolError::LengthOverflow => f.write_str("payload length has its top bit set"),
            ProtocolError::UnexpectedContinuation => f.write_str("continuation without a message"),
            ProtocolError::ExpectedContinuation => {
                f.write_str("new message inside a fragmented message")
            }
            ProtocolError::InvalidClosePayload => f.write_str("close payload of one byte"),
            ProtocolError::InvalidCloseCode(c) => write!(f, "invalid close code {c}"),
            ProtocolError::InvalidUtf8 => f.write_str("invalid UTF-8 in text"),
            ProtocolError::FrameTooLarge { size, max } => {
                write!(f, "frame of {size} bytes exceeds limit {max}")
            }
            ProtocolError::MessageTooLarge { max } => write!(f, "message exceeds limit {max}"),
            ProtocolError::TooManyFragments { max } => {
                write!(f, "message has more than {max} fragments")
            }
            ProtocolError::DataAfterClose => f.write_str("data frame after close"),
            ProtocolError::InvalidCompressedData => f.write_str("invalid compressed data"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Why an opening handshake failed.
///
/// On the server side every variant maps to an HTTP status
/// ([`HandshakeError::status`]) and a complete response
/// ([`HandshakeError::write_response`]) that the server writes before closing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The head could not be parsed or was over a limit (400 / 431).
    Head(HeadError),
    /// The method is not `GET` (405).
    Method,
    /// The request is not HTTP/1.1 or later (505).
    HttpVersion,
    /// No `Host` header (400).
    MissingHost,
    /// No `Upgrade: websocket` (426, with `Upgrade: websocket`).
    NotWebSocket,
    /// `Connection` does not contain the `upgrade` token (400).
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Version` is not 13 (426, with `Sec-WebSocket-Version: 13`).
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` is missing or not base64 of 16 bytes (400).
    InvalidKey,
    /// The `Origin` was refused by the origin policy (403).
    OriginRefused,
    /// The authorization hook refused the request (401 unless it chose
    /// another status; one outside 400-599 is answered as 500).
    Unauthorized {
        /// The HTTP status to answer with (401 by default).
        status: u16,
        /// Short text for the response body.
        reason: String,
    },
    /// The topics query parameter is invalid (400).
    InvalidTopics(String),
    /// The peer closed or the head did not arrive in time.
    Timeout,
    /// Client side: the response status is not 101.
    UnexpectedStatus(u16),
    /// Client side: `Sec-WebSocket-Accept` does not match our key.
    AcceptMismatch,
    /// Client side: the server selected a subprotocol we did not offer.
    ProtocolNotOffered(String),
    /// Client side: the server selected an extension we did not offer.
    ExtensionNotOffered(String),
}

impl HandshakeError {
    /// The HTTP status a server answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::Head(h) => h.status(),
            HandshakeError::Method => 405,
            HandshakeError::HttpVersion => 505,
            HandshakeError::NotWebSocket | HandshakeError::UnsupportedVersion => 426,
            HandshakeError::OriginRefused => 403,
            // A refusal must read as one, in a parseable status line.
            HandshakeError::Unauthorized { status, .. } if (400..=599).contains(status) => *status,
            HandshakeError::Unauthorized { .. } => 500,
            HandshakeError::Timeout => 408,
            _ => 400,
        }
    }

    /// Appends a complete HTTP/1.1 rejection response (status line,
    /// `Content-Type`, `Content-Length`, `Connection: close`, any header the
    /// status calls for, and a short text body) to `buf`.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// let mut buf = BytesMut::new();
    /// rtwire::HandshakeError::UnsupportedVersion.write_response(&mut buf);
    /// let text = std::str::from_utf8(&buf).unwrap();
    /// assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    /// assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    /// ```
    pub fn write_response(&self, buf: &mut BytesMut) {
        let status = self.status();
        let body = self.to_string();
        let extra: &str = match self {
            HandshakeError::UnsupportedVersion => "Sec-WebSocket-Version: 13\r\n",
            HandshakeError::NotWebSocket => "Upgrade: websocket\r\nConnection: Upgrade\r\n",
            HandshakeError::Method => "Allow: GET\r\n",
            _ => "",
        };
        write_text_response(buf, status, extra, &body);
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Head(h) => write!(f, "{h}"),
            HandshakeError::Method => f.write_str("method must be GET"),
            HandshakeError::HttpVersion => f.write_str("HTTP/1.1 or later is required"),
            HandshakeError::MissingHost => f.write_str("missing Host header"),
            HandshakeError::NotWebSocket => f.write_str("expected Upgrade: websocket"),
            HandshakeError::MissingConnectionUpgrade => {
                f.write_str("Connection header must contain 'upgrade'")
            }
            HandshakeError::UnsupportedVersion => f.write_str("unsupported WebSocket version"),
            HandshakeError::InvalidKey => f.write_str("invalid Sec-WebSocket-Key"),
            HandshakeError::OriginRefused => f.write_str("origin not allowed"),
            HandshakeError::Unauthorized { reason, .. } => write!(f, "unauthorized: {reason}"),
            HandshakeError::InvalidTopics(why) => write!(f, "invalid topics: {why}"),
            HandshakeError::Timeout => f.write_str("handshake timed out"),
            HandshakeError::UnexpectedStatus(s) => write!(f, "unexpected status {s}"),
            HandshakeError::AcceptMismatch => f.write_str("Sec-WebSocket-Accept mismatch"),
            HandshakeError::ProtocolNotOffered(p) => {
                write!(f, "server selected subprotocol {p:?} that was not offered")
            }
            HandshakeError::ExtensionNotOffered(e) => {
                write!(f, "server selected extension {e:?} that was not offered")
            }
        }
    }
}

impl std::error::Error for HandshakeError {}

impl From<HeadError> for HandshakeError {
    fn from(e: HeadError) -> Self {
        HandshakeError::Head(e)
    }
}

/// Which deadline expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// The opening handshake did not complete in time.
    Handshake,
    /// A write could not make progress in time (stuck or slow peer).
    Write,
    /// The peer did not answer our close frame in time.
    Close,
    /// Nothing arrived from the peer within the keepalive timeout.
    Keepalive,
}

/// A call the API does not allow in the connection's current state, or
/// with these arguments. Nothing was sent; the connection is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// A control frame that is not final or carries more than 125 bytes.
    InvalidControlFrame,
    /// A close code that must not appear on the wire (1005, 1006, 1015,
    /// and anything outside 1000-1003, 1007-1014 and 3000-4999).
    InvalidCloseCode(u16),
    /// A close payload of one byte or with a reason that is not UTF-8.
    InvalidClosePayload,
    /// RSV bits set, but no extension that uses them was negotiated.
    ReservedBits,
    /// A continuation frame with no fragmented message open, or a new text
    /// or binary frame while one is open.
    FragmentOrder,
    /// Pre-encoded frames are unmasked: only a server may send them.
    EncodedFramesNeedServerRole,
    /// `read_message` called while `read_frame` has returned part of a
    /// fragmented message (or the other way round): the message would be
    /// delivered without its first fragments.
    MessageInProgress,
    /// A URL that is not `ws://host[:port][/path][?query]` (or `wss://`).
    InvalidUrl,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::InvalidControlFrame => {
                f.write_str("control frames must be final and at most 125 bytes")
            }
            UsageError::InvalidCloseCode(c) => write!(f, "close code {c} may not be sent"),
            UsageError::InvalidClosePayload => f.write_str("invalid close payload"),
            UsageError::ReservedBits => f.write_str("RSV bits set without a negotiated extension"),
            UsageError::FragmentOrder => f.write_str("data frame out of fragmentation order"),
            UsageError::EncodedFramesNeedServerRole => {
                f.write_str("pre-encoded frames are unmasked: server role only")
            }
            UsageError::MessageInProgress => f.write_str(
                "a fragmented message is in progress on the other read API (read_frame vs read_message)",
            ),
            UsageError::InvalidUrl => f.write_str("URL must be ws://host[:port][/path]"),
        }
    }
}

impl std::error::Error for UsageError {}

/// The error type of the async shell.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error from the underlying stream.
    Io(io::Error),
    /// The peer broke the protocol; the connection was failed with
    /// [`ProtocolError::close_code`].
    Protocol(ProtocolError),
    /// The opening handshake failed.
    Handshake(HandshakeError),
    /// A deadline expired.
    Timeout(TimeoutKind),
    /// The connection is closed: the close handshake completed or the peer
    /// went away. Reading or writing again returns this.
    ConnectionClosed,
    /// A data message was sent after our close frame.
    AlreadyClosing,
    /// The call is not allowed now or with these arguments (nothing was
    /// sent).
    Usage(UsageError),
    /// (De)serialization failed (`serde` feature).
    #[cfg(feature = "serde")]
    Json(serde_json::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Protocol(e) => write!(f, "protocol error: {e}"),
            Error::Handshake(e) => write!(f, "handshake failed: {e}"),
            Error::Timeout(k) => write!(f, "{k:?} timeout"),
            Error::ConnectionClosed => f.write_str("connection closed"),
            Error::AlreadyClosing => f.write_str("close already sent"),
            Error::Usage(e) => write!(f, "usage error: {e}"),
            #[cfg(feature = "serde")]
            Error::Json(e) => write!(f, "JSON error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Protocol(e) => Some(e),
            Error::Handshake(e) => Some(e),
            Error::Usage(e) => Some(e),
            #[cfg(feature = "serde")]
            Error::Json(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}

impl From<UsageError> for Error {
    fn from(e: UsageError) -> Self {
        Error::Usage(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Error::Handshake(e)
    }
}
