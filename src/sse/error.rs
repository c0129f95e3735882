//! Errors of the SSE engine, one type per layer.
//!
//! - [`EventError`]: an [`Event`](super::Event) field that cannot be encoded.
//! - [`DecodeError`]: the [`Decoder`](super::Decoder) hit a configured limit.
//! - [`StoreError`]: the [`ReplayStore`](super::ReplayStore) is full.
//! - [`ClientError`]: the [`SseClient`](super::SseClient) could not open or read a
//!   stream.
//!
//! The server side ([`SseStream`](super::SseStream)) returns
//! [`crate::Error`]: `Io`, `Timeout(TimeoutKind::Write)` or
//! `ConnectionClosed`; refusals before the stream starts are
//! [`Rejection`](crate::upgrade::Rejection)s.

use std::fmt;
use std::io;

use crate::http::HeadError;

/// An event field that would break the stream if written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventError {
    /// The `id` contains CR, LF or NUL (`byte`).
    InvalidId {
        /// The offending byte.
        byte: u8,
    },
    /// The event type contains CR or LF (`byte`).
    InvalidEventType {
        /// The offending byte.
        byte: u8,
    },
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::InvalidId { byte } => write!(f, "event id contains byte {byte:#04x}"),
            EventError::InvalidEventType { byte } => {
                write!(f, "event type contains byte {byte:#04x}")
            }
        }
    }
}

impl std::error::Error for EventError {}

/// The stream exceeded a [`Limits`](super::Limits) bound.
///
/// The decoder is left in an unspecified (but safe) state: drop the
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A line longer than the limit, without its line end.
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// An event's data and type together over the limit.
    EventTooLarge {
        /// The limit in force.
        limit: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::LineTooLong { limit } => write!(f, "line longer than {limit} bytes"),
            DecodeError::EventTooLarge { limit } => write!(f, "event larger than {limit} bytes"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a [`ReplayStore`](super::ReplayStore) refused to create a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The store holds its maximum number of channels and every one has a
    /// live subscriber, so none can be evicted.
    TooManyChannels {
        /// The limit in force.
        limit: usize,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::TooManyChannels { limit } => {
                write!(f, "replay store full: {limit} channels, all subscribed")
            }
        }
    }
}

impl std::error::Error for StoreError {}

/// Why the SSE client could not open or read a stream.
///
/// [`ClientError::is_fatal`] tells a browser-like client whether to give up
/// (bad status, wrong content type) or to reconnect (network trouble).
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// An I/O error (connect, read or write).
    Io(io::Error),
    /// The response head could not be parsed.
    Head(HeadError),
    /// The response status is not 200 (`204` means "stop reconnecting").
    Status(u16),
    /// The `Content-Type` is not `text/event-stream`.
    ContentType(String),
    /// The chunked body is malformed.
    Chunked(&'static str),
    /// The event stream exceeded a decoder limit.
    Decode(DecodeError),
    /// No response head or no progress within the configured time.
    Timeout,
    /// The request was not sent: the named part (`"host"`, `"path"` or
    /// `"last event id"`) contains a byte that would end the request line
    /// or a header (CR, LF, NUL; in the host and path any control byte or
    /// a space), which could inject headers or a second request.
    InvalidRequest(&'static str),
    /// The [`EventSource`](super::EventSource) stopped after a fatal error
    /// (returned by the call that hit it) and will not reconnect: every
    /// later call returns this.
    Closed,
}

impl ClientError {
    /// Whether a browser would stop here instead of reconnecting: a status
    /// other than 200, a wrong content type, a malformed response or a
    /// decoder limit. I/O errors and timeouts are not fatal.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, ClientError::Io(_) | ClientError::Timeout)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "I/O error: {e}"),
            ClientError::Head(e) => write!(f, "bad response head: {e}"),
            ClientError::Status(s) => write!(f, "unexpected status {s}"),
            ClientError::ContentType(t) => write!(f, "unexpected content type {t:?}"),
            ClientError::Chunked(why) => write!(f, "malformed chunked body: {why}"),
            ClientError::Decode(e) => write!(f, "{e}"),
            ClientError::Timeout => f.write_str("timed out"),
            ClientError::Closed => f.write_str("event source closed after a fatal error"),
            ClientError::InvalidRequest(what) => write!(f, "invalid request: bad byte in {what}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io(e) => Some(e),
            ClientError::Head(e) => Some(e),
            ClientError::Decode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl From<HeadError> for ClientError {
    fn from(e: HeadError) -> Self {
        ClientError::Head(e)
    }
}

impl From<DecodeError> for ClientError {
    fn from(e: DecodeError) -> Self {
        ClientError::Decode(e)
    }
}
