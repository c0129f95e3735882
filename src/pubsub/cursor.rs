//! [`Cursor`]: one subscriber's place in a channel's history, the
//! subscriber half of the replay/live hand-off that the SSE manager and
//! the hub share (the channel half is [`Follower`](super::Follower)).

use super::position::Position;

/// Where one subscriber stands in a channel's history: which history
/// (epoch) it is on, and the position through which it has everything.
///
/// The hand-off from a replay to live delivery, in both transports:
///
/// 1. the channel's live publications are followed first
///    ([`Follower`](super::Follower), which loses nothing published while
///    it subscribes);
/// 2. the replay is read from the store, up to the store's top `T`, and
///    given to the subscriber; then [`caught_up(T)`](Self::caught_up);
/// 3. every live publication is checked with [`is_stale`](Self::is_stale)
///    before it is given: one at or below `T` (the replay had it) or from
///    another history is dropped. That is what makes the hand-off
///    exactly-once without pausing the channel.
///
/// A reset of the channel ([`Followed::Reset`](super::Followed::Reset))
/// goes through [`reset`](Self::reset), which says whether this subscriber
/// must be told (not when it already has everything up to the new top).
///
/// ```
/// use rtwire::pubsub::{Cursor, Position};
/// let mut c = Cursor::new();
/// c.caught_up(Position::new(7, 10)); // the replay ended at 7-10
/// assert!(c.is_stale(Position::new(7, 10))); // live duplicate: dropped
/// assert!(!c.is_stale(Position::new(7, 11)));
/// assert!(c.is_stale(Position::new(8, 11))); // another history
/// assert!(!c.reset(Some(Position::new(7, 9)))); // it has all up to 7-9
/// assert!(c.reset(Some(Position::new(8, 0)))); // a new history: tell it
/// assert_eq!(c.through(), Some(Position::new(8, 0)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Publications at or before this position are ones the subscriber
    /// has (in the replay, or before a reset it was told about).
    through: Option<Position>,
    /// The history the subscriber is on: publications of another epoch are
    /// stale (a backlog from before a reset) until a reset moves it.
    epoch: Option<u64>,
}

impl Cursor {
    /// A subscriber with nothing yet, on no history yet.
    pub const fn new() -> Cursor {
        Cursor {
            through: None,
            epoch: None,
        }
    }

    /// A subscriber that has everything through `p`.
    pub const fn at(p: Position) -> Cursor {
        Cursor {
            through: Some(p),
            epoch: Some(p.epoch),
        }
    }

    /// The position through which the subscriber has everything, if known.
    pub fn through(&self) -> Option<Position> {
        self.through
    }

    /// The history the subscriber is on, if known yet.
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// Whether publication `p` is one the subscriber already has (at or
    /// below [`through`](Self::through)) or must not get (another history
    /// than the one it is on).
    pub fn is_stale(&self, p: Position) -> bool {
        if self.epoch.is_some_and(|e| e != p.epoch) {
            return true;
        }
        self.through
            .is_some_and(|t| t.epoch == p.epoch && p.offset <= t.offset)
    }

    /// Puts the subscriber on `epoch` if it is on none yet (its first live
    /// publication decides).
    pub fn pin(&mut self, epoch: u64) {
        self.epoch.get_or_insert(epoch);
    }

    /// The subscriber has everything through `top` (its replay ended there,
    /// or it was just given the publication at `top`).
    pub fn caught_up(&mut self, top: Position) {
        self.through = Some(top);
        self.epoch = Some(top.epoch);
    }

    /// The channel starts over from `top`: `true` when the subscriber must
    /// be told (it then stands at `top`), `false` when it already has
    /// everything up to `top` in that history (nothing changes).
    pub fn reset(&mut self, top: Option<Position>) -> bool {
        if let Some(t) = top {
            if self.epoch == Some(t.epoch)
                && self
                    .through
                    .is_some_and(|s| s.epoch == t.epoch && s.offset >= t.offset)
            {
                return false;
            }
        }
        self.epoch = top.map(|t| t.epoch);
        self.through = top;
        true
    }
}
