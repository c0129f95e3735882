//! Batched fan-out ([`HubConfig::batch_broadcasts`](super::HubConfig::batch_broadcasts)):
//! `broadcast` orders the message in one hub-wide queue and returns; one
//! task per hub takes everything queued and delivers it, consecutive
//! messages to the same room as one push per member.
//!
//! Why: in the default (inline) mode a broadcast pushes one frame into each
//! member's queue before it returns, so a message to 10,000 members is
//! 10,000 pushes, each a cache miss on a line the member's writer last
//! touched on another core; the CPU a broadcast costs per member bounds
//! the whole fan-out. Here, while one pass over the members runs, the next
//! messages pile up and the next pass pushes them to each member at once:
//! the cost per member is paid per pass, not per message, and each writer
//! finds larger bursts (fewer `write`s).
//!
//! Order is kept: broadcasts, `broadcast_all`s and the `send`s made while
//! the queue is busy go through the one queue, so each connection gets
//! its frames in the order the hub accepted them (a `send` made while the
//! queue is idle is pushed at once, which is the same order). What changes
//! against the inline mode: membership is read when the message is
//! delivered (a moment after `broadcast` returns), `broadcast` returns the
//! room's local size at that moment instead of the count queued, a `send`
//! made while the queue is busy returns [`SendOutcome::Queued`] (a drop is
//! counted in the stats and told to the connection as usual), and
//! `broadcast` waits while more than [`BATCH_MAX_PENDING`] bytes are queued
//! (backpressure on the sender, as with a full bus publisher).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::BytesMut;
use smallvec::SmallVec;
use tokio::sync::Notify;

use super::conn::{ConnId, SendOutcome, Slot};
use super::outgoing::{Outgoing, Piece};
use super::stats::bump;
use super::{Hub, Inner};
use crate::ws::CloseCode;

/// Bytes the queue holds before `broadcast` waits (and a `send` made
/// while it is that full is dropped and counted): each queued message is
/// charged its encoded frame, its payload and its bookkeeping.
pub const BATCH_MAX_PENDING: usize = 4 * 1024 * 1024;

/// What one job is charged against [`BATCH_MAX_PENDING`].
fn cost(job: &Job) -> usize {
    let room = match &job.target {
        Target::Room(r) => r.len(),
        _ => 0,
    };
    std::mem::size_of::<Job>() + room + 2 * job.out.frame.len()
}

/// Who a queued message is for.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Room(Arc<str>),
    All,
    /// A [`send`](Hub::send): the message, through the connection's own
    /// compressor if it has one.
    Conn(ConnId),
    /// A [`send_encoded`](Hub::send_encoded): the frames as they are.
    ConnEncoded(ConnId),
    /// A [`close`](Hub::close), after what was queued before it.
    Close(ConnId, CloseCode, &'static str),
}

impl Target {
    fn is_one_conn(&self) -> bool {
        matches!(
            self,
            Target::Conn(_) | Target::ConnEncoded(_) | Target::Close(..)
        )
    }
}

pub(crate) struct Job {
    pub(crate) target: Target,
    pub(crate) except: Option<ConnId>,
    pub(crate) out: Outgoing,
}

impl Job {
    pub(crate) fn new(target: Target, except: Option<ConnId>, out: Outgoing) -> Self {
        Job {
            target,
            except,
            out,
        }
    }
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Encoded bytes in `jobs`.
    bytes: usize,
    /// The task has taken jobs and is delivering them.
    busy: bool,
    started: bool,
    /// The hub is gone: the task stops.
    closed: bool,
}

/// The queue and its task's signals.
#[derive(Default)]
pub(crate) struct Batcher {
    state: Mutex<State>,
    /// Work was queued (a permit is kept if the task is not waiting yet).
    work: Notify,
    /// A pass finished: broadcasters waiting for room may retry.
    drained: Notify,
}

impl Batcher {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update under the lock is complete before it can panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job`, waiting while the queue is over [`BATCH_MAX_PENDING`].
    pub(crate) async fn enqueue(self: &Arc<Self>, hub: &Hub, job: Job) {
        let mut job = Some(job);
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            {
                let mut s = self.lock();
                let c = cost(job.as_ref().expect("queued once"));
                if s.bytes + c <= BATCH_MAX_PENDING || s.jobs.is_empty() {
                    self.push(&mut s, hub, job.take().expect("queued once"));
                    return;
                }
                // Registered before the lock is released: a pass that
                // ends in between still wakes us.
                drained.as_mut().enable();
            }
            drained.await;
        }
    }

    /// Runs `now` on `out` at once if nothing is queued or being delivered
    /// (the order is then the same), else queues it for `target` behind
    /// the rest; over [`BATCH_MAX_PENDING`] it is dropped (`None`).
    pub(crate) fn now_or_queue(
        self: &Arc<Self>,
        hub: &Hub,
        mut out: Outgoing,
        target: Target,
        now: impl FnOnce(&mut Outgoing) -> SendOutcome,
    ) -> Option<SendOutcome> {
        let mut s = self.lock();
        if !s.busy && s.jobs.is_empty() {
            // Under the lock, so a broadcast queued meanwhile comes after.
            return Some(now(&mut out));
        }
        let job = Job::new(target, None, out);
        if s.bytes + cost(&job) > BATCH_MAX_PENDING && !matches!(job.target, Target::Close(..)) {
            return None;
        }
        self.push(&mut s, hub, job);
        Some(SendOutcome::Queued)
    }

    /// Bytes queued and not yet delivered.
    pub(crate) fn pending(&self) -> usize {
        self.lock().bytes
    }

    fn push(self: &Arc<Self>, s: &mut State, hub: &Hub, job: Job) {
        s.bytes += cost(&job);
        s.jobs.push_back(job);
        if !s.started {
            let weak = Arc::downgrade(&hub.inner);
            tokio::spawn(run(self.clone(), weak));
            s.started = true;
        }
        if !s.busy && s.jobs.len() == 1 {
            self.work.notify_one();
        }
    }

    /// The hub is dropped: the task ends.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.work.notify_one();
    }
}

/// Resets the task's flags if it ends in any way (a panic in a delivery,
/// its runtime shutting down), so that the next queued job starts a new
/// one instead of waiting for ever.
struct Running(Arc<Batcher>);

impl Drop for Running {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.started = false;
        s.busy = false;
    }
}

/// The delivery task: takes everything queued, delivers it, repeats.
async fn run(b: Arc<Batcher>, hub: Weak<Inner>) {
    let _running = Running(b.clone());
    loop {
        let jobs = {
            let mut s = b.lock();
            if s.closed {
                return;
            }
            if s.jobs.is_empty() {
                s.busy = false;
                None
            } else {
                s.busy = true;
                s.bytes = 0;
                Some(std::mem::take(&mut s.jobs))
            }
        };
        let Some(jobs) = jobs else {
            b.work.notified().await;
            continue;
        };
        // The queue is empty again: broadcasters waiting for room may
        // queue the next batch while this one is delivered.
        b.drained.notify_waiters();
        let Some(inner) = hub.upgrade() else { return };
        Hub { inner }.deliver_jobs(jobs);
    }
}

impl Hub {
    /// Delivers queued jobs in order; consecutive jobs for the same room
    /// (or for all) go to each member as one push.
    fn deliver_jobs(&self, jobs: VecDeque<Job>) {
        let mut jobs: Vec<Job> = jobs.into();
        let mut i = 0;
        while i < jobs.len() {
            let mut j = i + 1;
            if !jobs[i].target.is_one_conn() {
                while j < jobs.len() && jobs[j].target == jobs[i].target {
                    j += 1;
                }
            }
            let group = &mut jobs[i..j];
            match group[0].target.clone() {
                Target::Conn(id) => {
                    if let Ok(slot) = self.slot(id) {
                        self.send_now(&slot, &mut group[0].out);
                    }
                }
                Target::ConnEncoded(id) => {
                    if let Ok(slot) = self.slot(id) {
                        self.send_encoded_now(&slot, &group[0].out.frame);
                    }
                }
                Target::Close(id, code, reason) => {
                    if let Ok(slot) = self.slot(id) {
                        slot.request_close(code, reason);
                    }
                }
                Target::Room(room) => {
                    let rooms = self.rooms();
                    if let Some(r) = rooms.get(&*room) {
                        let n = self.deliver_group(r.members.iter(), group);
                        drop(rooms);
                        bump(&self.inner.counters.deliveries, n);
                    }
                }
                Target::All => {
                    let conns = self.conns();
                    let n = self.deliver_group(conns.iter(), group);
                    drop(conns);
                    bump(&self.inner.counters.deliveries, n);
                }
            }
            i = j;
        }
    }

    /// Delivers `group` (messages to the same members, in order) to
    /// `members`; returns the deliveries. The group's frames go to each
    /// member as a few concatenations of at most half the queue bound
    /// each (so an idle member can always take one), in order.
    pub(crate) fn deliver_group<'a>(
        &self,
        members: impl Iterator<Item = (&'a ConnId, &'a Arc<Slot>)>,
        group: &mut [Job],
    ) -> u64 {
        let mut excepts: SmallVec<[ConnId; 8]> = group.iter().filter_map(|j| j.except).collect();
        excepts.sort_unstable();
        excepts.dedup();
        let chunks = concatenate(group, (self.inner.config.max_queue_bytes / 2).max(1));
        let mut n = 0;
        for (id, slot) in members {
            if slot.deflate.is_some() || excepts.binary_search(id).is_ok() {
                // Its own encoding, or some of the frames are not for it:
                // one message at a time.
                for j in group.iter_mut() {
                    if Some(*id) != j.except && self.offer(slot, &mut j.out) {
                        n += 1;
                    }
                }
                continue;
            }
            for (whole, frames) in &chunks {
                if self.push_frames(slot, Piece::Encoded(whole), *frames) == SendOutcome::Queued {
                    n += frames;
                }
            }
        }
        n
    }
}

/// The group's frames, in order, as concatenations of at most `max` bytes
/// (a longer frame alone), each with its frame count.
fn concatenate(group: &[Job], max: usize) -> SmallVec<[(bytes::Bytes, u64); 1]> {
    let mut chunks = SmallVec::new();
    if let [one] = group {
        chunks.push((one.out.frame.clone(), 1));
        return chunks;
    }
    let mut cat = BytesMut::new();
    let mut frames = 0;
    for j in group {
        let f = &j.out.frame;
        if frames > 0 && cat.len() + f.len() > max {
            chunks.push((cat.split().freeze(), frames));
            frames = 0;
        }
        if cat.capacity() == 0 {
            let rest: usize = group.iter().map(|j| j.out.frame.len()).sum();
            cat.reserve(rest.min(max.max(f.len())));
        }
        cat.extend_from_slice(f);
        frames += 1;
    }
    if frames > 0 {
        chunks.push((cat.freeze(), frames));
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::HubConfig;
    use crate::ws::Message;

    #[tokio::test]
    async fn the_delivery_task_ends_with_the_hub() {
        let hub = Hub::new(HubConfig::default().batch_broadcasts(true));
        // Starts the task (nobody is in the room).
        let n = hub.broadcast("r", &Message::text("x"), None).await.unwrap();
        assert_eq!(n, 0);
        let batcher = Arc::downgrade(hub.inner.batch.as_ref().unwrap());
        tokio::task::yield_now().await;
        assert_eq!(hub.stats().queued_bytes, 0);
        drop(hub);
        // The task holds the last reference; it lets go once it has run.
        let mut turns = 0;
        while batcher.upgrade().is_some() {
            turns += 1;
            assert!(turns < 100, "the task outlived its hub");
            tokio::task::yield_now().await;
        }
    }
}
