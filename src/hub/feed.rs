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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::OnceCell;
use tokio::task::AbortHandle;

use super::batch::{Job, Target};
use super::conn::{ConnId, Slot};
use super::history::{decode_record, RoomNotice};
use super::log::Follow;
use super::outgoing::Outgoing;
use super::rooms::Ticket;
use super::stats::bump;
use super::{Hub, Inner};
use crate::pubsub::{ChannelName, Cursor, Followed, Position, Publication, ResetReason};

/// A member waiting for the feed to reach its cursor.
struct Waiting {
    id: ConnId,
    slot: Arc<Slot>,
    cursor: Cursor,
    ticket: Ticket,
}

#[derive(Default)]
struct State {
    /// The last position the feed delivered (the top when it started).
    delivered: Option<Position>,
    /// Resets the feed went through: a join that read the store before
    /// the latest one knows the feed may be on a newer history than its
    /// read.
    resets: u64,
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
    /// The room is gone: the task must not run (set before a task that
    /// was being started had its handle stored).
    stopped: AtomicBool,
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
            stopped: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the feed's task on `follow` (subscribed, at its top); drops
    /// `follow` instead (unsubscribing) when the room is gone already.
    pub(crate) fn run(self: &Arc<Self>, hub: &Hub, room: &str, follow: Box<dyn Follow>) {
        let mut slot = self.task.lock().unwrap_or_else(|p| p.into_inner());
        if self.stopped.load(Ordering::Acquire) {
            // The room emptied while its first join started the feed.
            return;
        }
        self.lock().delivered = follow.position();
        let task = tokio::spawn(run(
            Arc::downgrade(&hub.inner),
            room.into(),
            self.clone(),
            follow,
        ));
        *slot = Some(task.abort_handle());
    }

    /// The room is gone: the task stops (now, or as soon as it is started).
    pub(crate) fn stop(&self) {
        let mut slot = self.task.lock().unwrap_or_else(|p| p.into_inner());
        self.stopped.store(true, Ordering::Release);
        if let Some(t) = slot.take() {
            t.abort();
        }
    }

    /// How many resets the feed went through (read before a join reads
    /// the store, compared at its hand-off).
    pub(crate) fn generation(&self) -> u64 {
        self.lock().resets
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
    /// `cursor`, read from the store when the feed had been through
    /// `generation` resets.
    ///
    /// - The feed delivered exactly that far: `go_live` runs now.
    /// - It delivered less, in the same history: the member waits here, and
    ///   is made live when the feed reaches its cursor.
    /// - It is on another history and has not reset since the read: it is
    ///   behind the store (which the read saw), and its next reset settles
    ///   the member, who waits here too.
    /// - It delivered more, or reset since the read: [`HandOff::Behind`],
    ///   the member reads the store again.
    ///
    /// `notify` runs first in both done cases, before any live message can
    /// reach the member.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn hand_off(
        &self,
        id: ConnId,
        slot: &Arc<Slot>,
        ticket: &Ticket,
        cursor: Cursor,
        generation: u64,
        notify: impl FnOnce(Option<Position>),
        go_live: impl FnOnce(),
    ) -> HandOff {
        let mut st = self.lock();
        let through = cursor.through();
        match (st.delivered, through) {
            (Some(d), Some(t)) if d.epoch == t.epoch && d.offset > t.offset => HandOff::Behind,
            (Some(d), Some(t)) if d.epoch != t.epoch && st.resets != generation => HandOff::Behind,
            (d, t) => {
                notify(t.or(d));
                if t.is_none() || d == t {
                    go_live();
                } else {
                    st.waiting.push(Waiting {
                        id,
                        slot: slot.clone(),
                        cursor,
                        ticket: ticket.clone(),
                    });
                }
                HandOff::Done
            }
        }
    }
}

/// Publications one pass of the feed delivers at most.
const FEED_BATCH: usize = 1024;

/// Follows the room's channel until the room (or the hub) is gone. Each
/// pass takes what the follower has ready, without waiting for more, and
/// delivers it as one group (see `Hub::deliver_group`): consecutive
/// messages reach a member as one push, as with
/// [`HubConfig::batch_broadcasts`](super::HubConfig::batch_broadcasts),
/// and no message waits for a batch to fill.
async fn run(hub: Weak<Inner>, room: Arc<str>, feed: Arc<Feed>, mut follow: Box<dyn Follow>) {
    let mut carry = None;
    loop {
        let f = match carry.take() {
            Some(f) => f,
            None => follow.next().await,
        };
        let Some(inner) = hub.upgrade() else { return };
        let hub = Hub { inner };
        let alive = match f {
            Followed::Publication(p) => {
                let mut batch = vec![p];
                while batch.len() < FEED_BATCH {
                    match follow.try_next() {
                        Some(Followed::Publication(p)) => batch.push(p),
                        Some(other) => {
                            carry = Some(other);
                            break;
                        }
                        None => break,
                    }
                }
                hub.feed_batch(&room, &feed, &batch)
            }
            Followed::Reset { reason, top } => hub.feed_reset(&room, &feed, reason, top),
            _ => false,
        };
        if !alive {
            return;
        }
    }
}

impl Hub {
    /// Delivers consecutive stored messages to the room's live members, and
    /// to the waiting ones they are new to; `false` when the room (with
    /// this feed) is gone.
    fn feed_batch(&self, room: &Arc<str>, feed: &Arc<Feed>, batch: &[Arc<Publication>]) -> bool {
        let c = &self.inner.counters;
        let mut jobs = Vec::with_capacity(batch.len());
        // Each publication's position and its job, if it is one of ours.
        let mut items: Vec<(Position, Option<usize>)> = Vec::with_capacity(batch.len());
        let mut remote = 0;
        for p in batch {
            let Some(rec) = decode_record(&p.data) else {
                bump(&c.bus_errors, 1);
                items.push((p.position, None));
                continue;
            };
            let mine = rec.instance == self.inner.instance.as_bytes();
            remote += u64::from(!mine);
            let except = if mine { rec.except } else { None };
            let msg = self.stamp(p.position, &rec.message);
            items.push((p.position, Some(jobs.len())));
            jobs.push(Job::new(
                Target::Room(room.clone()),
                except,
                Outgoing::new(&msg),
            ));
        }
        bump(&c.bus_received, remote);
        let Some(&(last, _)) = items.last() else {
            return true;
        };
        let promote = {
            let rooms = self.rooms();
            let Some(r) = rooms.get(&**room).filter(|r| r.has_feed(feed)) else {
                return false;
            };
            let mut n = if jobs.is_empty() {
                0
            } else {
                self.deliver_group(r.members.iter(), &mut jobs)
            };
            let mut st = feed.lock();
            // The feed had lost its place (the store failed; the live
            // members were told): a member that waited meanwhile cannot
            // know what lies between its cursor and this batch. It is told
            // too, and goes live from here.
            let lost = st.delivered.is_none();
            st.delivered = Some(last);
            let mut promote = Vec::new();
            let first = items[0].0;
            let from = Some(Position::new(first.epoch, first.offset.saturating_sub(1)));
            st.waiting.retain_mut(|w| {
                if lost {
                    w.cursor.reset(from);
                    let n = RoomNotice::Reset {
                        room,
                        reason: ResetReason::Lost,
                        missed: None,
                        top: from,
                    };
                    if let Some(f) = self.notice(&n) {
                        w.slot.push_notice(&f);
                    }
                }
                // Live from the first message its cursor does not cover,
                // or from the one after its cursor.
                let mut live = false;
                for &(pos, job) in &items {
                    if live || !w.cursor.is_stale(pos) {
                        live = true;
                        if let Some(j) = job.map(|i| &mut jobs[i]) {
                            if Some(w.id) != j.except && self.offer(&w.slot, &mut j.out) {
                                n += 1;
                            }
                        }
                    } else if w.cursor.through() == Some(pos) {
                        live = true;
                    }
                }
                if live {
                    promote.push((w.id, w.ticket.clone()));
                }
                !live
            });
            bump(&c.deliveries, n);
            promote
        };
        self.promote(room, feed, &promote);
        true
    }

    /// The feed starts over from `top`: every live member is told, and
    /// each waiting one whose cursor does not already cover it.
    fn feed_reset(
        &self,
        room: &str,
        feed: &Arc<Feed>,
        reason: ResetReason,
        top: Option<Position>,
    ) -> bool {
        feed.lock().resets += 1;
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
        self.feed_moved(room, feed, top, notice.as_ref())
    }

    /// The feed starts over from `to`: `notice` (the reset's frame, if the
    /// hub sends one) goes to every live member and to the waiting members
    /// the reset concerns (their cursor does not cover `to`), which are made
    /// live, as are the waiting members the feed has now reached. `false`
    /// when the room (with this feed) is gone.
    fn feed_moved(
        &self,
        room: &str,
        feed: &Arc<Feed>,
        to: Option<Position>,
        notice: Option<&bytes::Bytes>,
    ) -> bool {
        let promote = {
            let rooms = self.rooms();
            let Some(r) = rooms.get(room).filter(|r| r.has_feed(feed)) else {
                return false;
            };
            if let Some(n) = notice {
                for slot in r.members.values() {
                    slot.push_notice(n);
                }
            }
            let mut st = feed.lock();
            st.delivered = to;
            let mut promote = Vec::new();
            st.waiting.retain_mut(|w| {
                // Whether the hub sends a notice or not, the cursor moves:
                // a member left on another history would wait for ever.
                if w.cursor.reset(to) {
                    if let Some(n) = notice {
                        w.slot.push_notice(n);
                    }
                } else if w.cursor.through() != to {
                    return true;
                }
                promote.push((w.id, w.ticket.clone()));
                false
            });
            promote
        };
        self.promote(room, feed, &promote);
        true
    }

    /// Moves joined members from waiting into the room's live members
    /// (each only while its join is the member's current one).
    fn promote(&self, room: &str, feed: &Arc<Feed>, joins: &[(ConnId, Ticket)]) {
        if joins.is_empty() {
            return;
        }
        let mut rooms = self.rooms_mut();
        let Some(r) = rooms.get_mut(room).filter(|r| r.has_feed(feed)) else {
            return;
        };
        for (id, ticket) in joins {
            if r.holds(*id, ticket) {
                if let Some(j) = r.joining.remove(id) {
                    r.members.insert(*id, j.slot);
                }
            }
        }
    }
}
