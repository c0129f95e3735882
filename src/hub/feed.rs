//! A room with history delivers its messages from its stored channel
//! (`hub.log.<room>`), not at the moment they are broadcast: one task per
//! room with local members takes the channel's publications in order from
//! a [`Follower`](crate::pubsub::Follower) (its own messages and every
//! other instance's alike), makes each one's frame once, with its position
//! stamped in, and pushes it to every live member. A gap the store cannot
//! fill reaches every member as a reset notice.
//!
//! The feed also finishes joins: a member whose replay ended at a position
//! the feed has not delivered yet waits here, not in the room, and is made
//! live when the feed reaches that position, so the feed's deliveries up
//! to it (which its replay held) never reach it. That is the hand-off's
//! dedupe, through the member's [`Cursor`].

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::OnceCell;
use tokio::task::AbortHandle;

use super::conn::{ConnId, Slot};
use super::history::{decode_record, RoomNotice};
use super::log::Follow;
use super::outgoing::Outgoing;
use super::stats::bump;
use super::{Hub, Inner};
use crate::pubsub::{ChannelName, Cursor, Followed, Position, Publication, ResetReason};

/// A member waiting for the feed to reach its cursor.
struct Waiting {
    id: ConnId,
    slot: Arc<Slot>,
    cursor: Cursor,
}

#[derive(Default)]
struct State {
    /// The last position the feed delivered (the top when it started).
    delivered: Option<Position>,
    waiting: Vec<Waiting>,
}

/// One room's feed: its channel, whether its task runs, and the hand-off
/// state the joins and the task share.
pub(crate) struct Feed {
    pub(crate) channel: ChannelName,
    /// Set once the follower is subscribed and the task runs.
    pub(crate) started: OnceCell<()>,
    state: Mutex<State>,
    task: Mutex<Option<AbortHandle>>,
}

/// What a join's hand-off found.
pub(crate) enum HandOff {
    /// The feed is past the member's cursor: read the store again.
    Behind,
    /// The member is live now (or will be when the feed reaches it).
    Done,
}

impl Feed {
    pub(crate) fn new(channel: ChannelName) -> Self {
        Feed {
            channel,
            started: OnceCell::new(),
            state: Mutex::new(State::default()),
            task: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the feed's task on `follow` (subscribed, at its top).
    pub(crate) fn run(self: &Arc<Self>, hub: &Hub, room: &str, follow: Box<dyn Follow>) {
        self.lock().delivered = follow.position();
        let task = tokio::spawn(run(
            Arc::downgrade(&hub.inner),
            room.into(),
            self.clone(),
            follow,
        ));
        *self.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
    }

    /// The room is gone: the task stops.
    pub(crate) fn stop(&self) {
        if let Some(t) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
    }

    /// A member left before its hand-off completed.
    pub(crate) fn forget(&self, id: ConnId) {
        self.lock().waiting.retain(|w| w.id != id);
    }

    /// The last position the feed delivered.
    pub(crate) fn delivered(&self) -> Option<Position> {
        self.lock().delivered
    }

    /// A join's hand-off, with the rooms lock held for writing (so the feed
    /// delivers nothing meanwhile): the member has everything through
    /// `cursor`. When the feed delivered exactly that far, `go_live` runs
    /// now; when it delivered less (or is on another history, which its
    /// next reset settles), the member waits for it; when it delivered
    /// more, the member must read the store again. `notify` runs first in
    /// both done cases, before any live message can reach the member.
    pub(crate) fn hand_off(
        &self,
        id: ConnId,
        slot: &Arc<Slot>,
        cursor: Cursor,
        notify: impl FnOnce(Option<Position>),
        go_live: impl FnOnce(),
    ) -> HandOff {
        let mut st = self.lock();
        let through = cursor.through();
        match (st.delivered, through) {
            (Some(d), Some(t)) if d.epoch == t.epoch && d.offset > t.offset => HandOff::Behind,
            (d, t) => {
                notify(t.or(d));
                if t.is_none() || d == t {
                    go_live();
                } else {
                    st.waiting.push(Waiting {
                        id,
                        slot: slot.clone(),
                        cursor,
                    });
                }
                HandOff::Done
            }
        }
    }
}

/// Follows the room's channel until the room (or the hub) is gone.
async fn run(hub: Weak<Inner>, room: Arc<str>, feed: Arc<Feed>, mut follow: Box<dyn Follow>) {
    loop {
        let f = follow.next().await;
        let Some(inner) = hub.upgrade() else { return };
        let hub = Hub { inner };
        match f {
            Followed::Publication(p) => hub.feed_publication(&room, &feed, &p),
            Followed::Reset { reason, top } => hub.feed_reset(&room, &feed, reason, top),
            _ => return,
        }
    }
}

impl Hub {
    /// Delivers one stored message to the room's live members, and to the
    /// waiting ones it is new to.
    fn feed_publication(&self, room: &str, feed: &Arc<Feed>, p: &Publication) {
        let c = &self.inner.counters;
        let Some(rec) = decode_record(&p.data) else {
            bump(&c.bus_errors, 1);
            self.feed_moved(room, feed, Some(p.position), None);
            return;
        };
        let mine = rec.instance == self.inner.instance.as_bytes();
        if !mine {
            bump(&c.bus_received, 1);
        }
        let except = if mine { rec.except } else { None };
        let msg = self.stamp(p.position, &rec.message);
        let mut out = Outgoing::new(&msg);
        let promote = {
            let rooms = self.rooms();
            let Some(r) = rooms.get(room) else { return };
            if !r.feed.as_ref().is_some_and(|f| Arc::ptr_eq(f, feed)) {
                return;
            }
            let mut n = 0;
            for (id, slot) in &r.members {
                if Some(*id) != except && self.offer(slot, &mut out) {
                    n += 1;
                }
            }
            let mut st = feed.lock();
            st.delivered = Some(p.position);
            let mut promote = Vec::new();
            st.waiting.retain(|w| {
                if !w.cursor.is_stale(p.position) {
                    if Some(w.id) != except && self.offer(&w.slot, &mut out) {
                        n += 1;
                    }
                } else if w.cursor.through() != Some(p.position) {
                    return true;
                }
                promote.push(w.id);
                false
            });
            bump(&c.deliveries, n);
            promote
        };
        self.promote(room, feed, &promote);
    }

    /// The feed starts over from `top`: every live member is told, and
    /// each waiting one whose cursor does not already cover it.
    fn feed_reset(&self, room: &str, feed: &Arc<Feed>, reason: ResetReason, top: Option<Position>) {
        let before = feed.delivered();
        let missed = match (before, top) {
            (Some(b), Some(t)) if b.epoch == t.epoch && t.offset > b.offset => {
                Some(t.offset - b.offset)
            }
            _ => None,
        };
        let notice = self.notice(&RoomNotice::Reset {
            room,
            reason,
            missed,
            top,
        });
        self.feed_moved(room, feed, top, notice.as_ref());
    }

    /// The feed is at `to` now: `notice` (a reset's) goes to every live
    /// member and to the waiting members the reset concerns, and the
    /// waiting members it reached are made live.
    fn feed_moved(
        &self,
        room: &str,
        feed: &Arc<Feed>,
        to: Option<Position>,
        notice: Option<&bytes::Bytes>,
    ) {
        let promote = {
            let rooms = self.rooms();
            let Some(r) = rooms.get(room) else { return };
            if !r.feed.as_ref().is_some_and(|f| Arc::ptr_eq(f, feed)) {
                return;
            }
            if let Some(n) = notice {
                for slot in r.members.values() {
                    slot.push_notice(n);
                }
            }
            let mut st = feed.lock();
            st.delivered = to;
            let mut promote = Vec::new();
            st.waiting.retain_mut(|w| {
                let told = notice.is_some() && w.cursor.reset(to);
                if told {
                    if let Some(n) = notice {
                        w.slot.push_notice(n);
                    }
                } else if w.cursor.through() != to {
                    return true;
                }
                promote.push(w.id);
                false
            });
            promote
        };
        self.promote(room, feed, &promote);
    }

    /// Moves joined members from waiting into the room's live members.
    fn promote(&self, room: &str, feed: &Arc<Feed>, ids: &[ConnId]) {
        if ids.is_empty() {
            return;
        }
        let mut rooms = self.rooms_mut();
        let Some(r) = rooms.get_mut(room) else { return };
        if !r.feed.as_ref().is_some_and(|f| Arc::ptr_eq(f, feed)) {
            return;
        }
        for id in ids {
            if let Some(slot) = r.joining.remove(id) {
                r.members.insert(*id, slot);
            }
        }
    }
}
