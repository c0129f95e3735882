//! [`ManagerError`]: why the manager refused, and its HTTP form.

#[allow(unused_imports)] // rustdoc links
use super::{Handler, Manager};

use std::fmt;

use crate::pubsub::PubSubError;
use crate::upgrade::Rejection;

/// Why the manager refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum ManagerError {
    /// `max_connections` subscribers are connected (HTTP 503, `Retry-After`).
    TooManyConnections {
        /// The limit.
        limit: usize,
    },
    /// The channel name is invalid (400).
    InvalidChannel(String),
    /// The event data is not UTF-8 (SSE is text) (400).
    InvalidData,
    /// The manager is closed (503).
    Closed,
    /// The store or bus failed (503); a failed publish stored nothing
    /// unless the error came from the bus (then it is stored and a retry
    /// with the same idempotency key does not store it twice).
    PubSub(PubSubError),
}

impl ManagerError {
    /// Whether trying again later (or on another node) may succeed: the
    /// manager is closed, or the backend failed. Not the limit: a full
    /// node answers 503.
    pub fn is_transient(&self) -> bool {
        match self {
            ManagerError::Closed => true,
            ManagerError::PubSub(e) => !matches!(
                e,
                PubSubError::InvalidChannel(_) | PubSubError::InvalidField(_)
            ),
            _ => false,
        }
    }

    /// The HTTP refusal for this error.
    pub fn rejection(&self) -> Rejection {
        match self {
            ManagerError::TooManyConnections { .. } | ManagerError::Closed => {
                Rejection::unavailable(1)
            }
            ManagerError::InvalidChannel(why) => {
                Rejection::bad_request(format!("invalid channel: {why}"))
            }
            ManagerError::InvalidData => Rejection::bad_request("event data is not UTF-8"),
            ManagerError::PubSub(PubSubError::InvalidChannel(why)) => {
                Rejection::bad_request(format!("invalid channel: {why}"))
            }
            ManagerError::PubSub(PubSubError::InvalidField(f)) => {
                Rejection::bad_request(format!("invalid {f}"))
            }
            ManagerError::PubSub(_) => Rejection::unavailable(1),
        }
    }
}

impl fmt::Display for ManagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagerError::TooManyConnections { limit } => {
                write!(f, "too many SSE connections (limit {limit})")
            }
            ManagerError::InvalidChannel(why) => write!(f, "invalid channel: {why}"),
            ManagerError::InvalidData => f.write_str("event data is not UTF-8"),
            ManagerError::Closed => f.write_str("the SSE manager is closed"),
            ManagerError::PubSub(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ManagerError {}

impl From<PubSubError> for ManagerError {
    fn from(e: PubSubError) -> Self {
        match e {
            PubSubError::InvalidChannel(why) => ManagerError::InvalidChannel(why),
            PubSubError::Closed => ManagerError::Closed,
            e => ManagerError::PubSub(e),
        }
    }
}
