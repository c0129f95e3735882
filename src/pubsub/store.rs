//! The history: [`Store`] and what [`Store::since`] answers.

use std::future::Future;

use super::channel::ChannelName;
use super::error::PubSubError;
use super::position::Position;
use super::publication::{Publication, PublishRequest};

/// Why a subscriber cannot be caught up from the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GapReason {
    /// The position is from another epoch: the history it belonged to is
    /// gone (store flushed or restarted, stream deleted).
    EpochChanged,
    /// Publications right after the position are no longer kept.
    Evicted,
    /// More publications are missing than the caller's limit.
    OverLimit,
    /// The position is ahead of the newest publication (not one this
    /// history gave out).
    Ahead,
}

/// The answer of [`Store::since`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Since {
    /// Every publication after the position, oldest first (empty when the
    /// subscriber is up to date), and the newest position of the channel.
    Publications {
        /// The missing publications, in order, with no gap.
        publications: Vec<Publication>,
        /// The channel's newest position (offset 0 when it has none).
        top: Position,
    },
    /// The subscriber cannot be caught up: it must start over from `top`
    /// (and its application be told so).
    CannotCatchUp {
        /// Why.
        reason: GapReason,
        /// The channel's newest position.
        top: Position,
    },
}

impl Since {
    /// The channel's newest position, whichever the answer.
    ///
    /// ```
    /// use rtwire::pubsub::{GapReason, Position, Since};
    /// let s = Since::CannotCatchUp { reason: GapReason::Evicted, top: Position::new(1, 9) };
    /// assert_eq!(s.top(), Position::new(1, 9));
    /// ```
    pub fn top(&self) -> Position {
        match self {
            Since::Publications { top, .. } | Since::CannotCatchUp { top, .. } => *top,
        }
    }
}

/// A bounded history of publications per channel.
///
/// Implementations: [`MemoryStore`](super::MemoryStore), and the Redis store
/// (feature `redis`).
pub trait Store: Send + Sync + 'static {
    /// Assigns the next position on the request's channel, stores the
    /// publication, and returns it. With an idempotency key already seen
    /// on the channel, returns the stored publication instead.
    fn append(
        &self,
        req: PublishRequest,
    ) -> impl Future<Output = Result<Publication, PubSubError>> + Send;

    /// Every publication after `after`, oldest first, if there are at most
    /// `limit` of them and all are still kept; otherwise
    /// [`Since::CannotCatchUp`]. `after = None` is a new subscriber:
    /// nothing to replay, only the newest position.
    fn since(
        &self,
        channel: &ChannelName,
        after: Option<Position>,
        limit: usize,
    ) -> impl Future<Output = Result<Since, PubSubError>> + Send;

    /// Releases resources; later calls return [`PubSubError::Closed`].
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// The rules every store applies before it looks at its history, in this
/// order: another epoch ([`GapReason::EpochChanged`]), past the top
/// ([`GapReason::Ahead`]), more missing than `limit`
/// ([`GapReason::OverLimit`]). Returns how many publications follow
/// `after`; the store then checks that it still holds all of them
/// ([`GapReason::Evicted`] otherwise).
pub(crate) fn missing_after(
    after: Position,
    top: Position,
    limit: usize,
) -> Result<u64, GapReason> {
    if after.epoch != top.epoch {
        return Err(GapReason::EpochChanged);
    }
    if after.offset > top.offset {
        return Err(GapReason::Ahead);
    }
    let missing = top.offset - after.offset;
    if missing > limit as u64 {
        return Err(GapReason::OverLimit);
    }
    Ok(missing)
}
