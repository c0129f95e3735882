//! Errors of the pub/sub layer.

use std::fmt;

/// A position string that is not `"{epoch:x}-{offset}"` in canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PositionError {
    /// Not two parts joined by `-`.
    Shape,
    /// The epoch is not 1-16 lowercase hex digits without leading zeros.
    Epoch,
    /// The offset is not a decimal `u64` without leading zeros or sign.
    Offset,
}

impl fmt::Display for PositionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PositionError::Shape => "position must be EPOCH-OFFSET",
            PositionError::Epoch => "invalid epoch in position",
            PositionError::Offset => "invalid offset in position",
        })
    }
}

impl std::error::Error for PositionError {}

/// Why a pub/sub operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PubSubError {
    /// The channel name is empty, too long or has a character outside the
    /// documented set ([`ChannelName`](super::ChannelName)).
    InvalidChannel(String),
    /// A tenant, subject or event type over its length limit or with a
    /// control character.
    InvalidField(&'static str),
    /// The store is bounded in channels and none can be evicted (every
    /// channel has a subscriber).
    TooManyChannels {
        /// The limit in force.
        limit: usize,
    },
    /// The backend could not be reached or answered with an error: the
    /// publication was **not** stored (nothing is acknowledged that was
    /// not stored).
    Backend(String),
    /// The store or bus was closed.
    Closed,
}

impl fmt::Display for PubSubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PubSubError::InvalidChannel(why) => write!(f, "invalid channel: {why}"),
            PubSubError::InvalidField(which) => write!(f, "invalid {which}"),
            PubSubError::TooManyChannels { limit } => {
                write!(f, "more than {limit} channels, none idle")
            }
            PubSubError::Backend(why) => write!(f, "backend error: {why}"),
            PubSubError::Closed => f.write_str("closed"),
        }
    }
}

impl std::error::Error for PubSubError {}
