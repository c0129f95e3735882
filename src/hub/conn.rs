//! One registered connection: its bounded outgoing queue (the writer task
//! that drains it into the connection's `WriteHalf` is in `conn/writer.rs`,
//! the application's handle in `registration.rs`).
//!
//! The queue holds encoded frames. A small frame (under [`INLINE_MAX`]) is
//! copied into the queue's tail buffer: a copy of a few dozen bytes into
//! memory only this queue touches is cheaper than a clone of the shared
//! `Bytes`, whose one reference count every recipient's writer would bounce
//! between cores. A larger frame is queued as the `Bytes` shared with every
//! other recipient (after the tail so far, sealed into an item, so the
//! order holds). Pushing never waits: a frame either fits under
//! [`HubConfig::max_queue_bytes`](super::HubConfig::max_queue_bytes) or the
//! policy applies at once, so one stalled client cannot slow a broadcast to
//! the others. The writer swaps out everything queued in one step (the
//! tail buffer for its spare, which it gets back once written), feeds it to
//! the connection's write queue and flushes once: one write per burst.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use tokio::sync::{watch, Notify};

use super::config::{SlowPolicy, SLOW_CONSUMER_CLOSE};
use super::outgoing::{MemberDeflate, Piece};
use super::rate::RateLimiter;
use super::stats::{bump, Counters};
use crate::ws::CloseCode;

mod writer;
pub(crate) use writer::run_writer;

/// A connection's id within its hub (unique per hub, never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(crate) u64);

impl ConnId {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Application metadata kept with a connection (e.g. a session id, a
/// client version), returned by [`Hub::meta`](super::Hub::meta).
pub type Meta = BTreeMap<String, String>;

/// What became of a frame offered to one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// Queued; the writer sends it.
    Queued,
    /// The queue was full: dropped and counted ([`SlowPolicy::DropNewest`]).
    Dropped,
    /// The connection is closing (now, by the policy, or already).
    Closing,
}

/// Frames under this size are copied into the queue's tail buffer rather
/// than shared.
pub(crate) const INLINE_MAX: usize = 1024;
/// A tail buffer that grew beyond this is not kept for the next burst.
const KEEP_TAIL_CAPACITY: usize = 64 * 1024;
/// A tail buffer's first allocation.
const TAIL_START: usize = 1024;

/// One queued item.
enum Item {
    /// Complete encoded frames.
    Encoded(Bytes),
    /// A data message for the connection's own compressor
    /// (permessage-deflate with context takeover).
    #[cfg(feature = "deflate")]
    Message(crate::ws::OpCode, Bytes),
}

/// The queue, laid out so that a push touches one cache line: the
/// broadcaster reaches thousands of these per message, each last touched by
/// its writer on another core, so every line more is one more miss per
/// delivery. `Slot` is 64-byte aligned with this mutex first.
#[derive(Default)]
#[repr(C)]
struct Out {
    /// Bytes in `items` and `tail`.
    bytes: usize,
    /// Bytes the writer took and has not yet handed to the socket's queue.
    in_flight: usize,
    /// Small encoded frames, after every item.
    tail: BytesMut,
    /// `done || close.is_some()`: nothing more is accepted.
    shut: bool,
    /// Unregistered: the writer stops.
    done: bool,
    /// Items, all ahead of `tail`.
    items: VecDeque<Item>,
    /// Frames dropped since the connection last caught up.
    missed: u64,
    close: Option<(CloseCode, &'static str)>,
    /// A [`Slot::push_wait`] waits for room: the writer wakes it when it
    /// credits a batch.
    wants_room: bool,
}

/// The hub's side of one connection.
#[repr(C, align(64))]
pub(crate) struct Slot {
    /// First, on its own cache line (see [`Out`]).
    out: Mutex<Out>,
    pub(crate) id: ConnId,
    pub(crate) user: Arc<str>,
    pub(crate) meta: Meta,
    /// How it takes compressed broadcasts (`None`: no permessage-deflate).
    pub(crate) deflate: Option<MemberDeflate>,
    /// Rooms joined, in join order.
    pub(crate) rooms: Mutex<Vec<Arc<str>>>,
    pub(crate) limiter: Mutex<Option<RateLimiter>>,
    /// Milliseconds since the Unix epoch of the last inbound message.
    pub(crate) last_seen_ms: AtomicU64,
    /// A frame, a notice or a stop is waiting.
    wake: Notify,
    /// A close or the end was requested: interrupts a stalled write.
    stop: Notify,
    /// Room was made in the queue (or it shut): wakes a [`Slot::push_wait`].
    room: Notify,
    closed: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is complete before it can panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Slot {
    pub(crate) fn new(
        id: ConnId,
        user: Arc<str>,
        meta: Meta,
        limiter: Option<RateLimiter>,
        deflate: Option<MemberDeflate>,
    ) -> Self {
        Slot {
            id,
            user,
            meta,
            deflate,
            rooms: Mutex::new(Vec::new()),
            limiter: Mutex::new(limiter),
            last_seen_ms: AtomicU64::new(super::time::now_ms()),
            out: Mutex::new(Out::default()),
            wake: Notify::new(),
            stop: Notify::new(),
            room: Notify::new(),
            closed: watch::channel(false).0,
        }
    }

    pub(crate) fn rooms(&self) -> MutexGuard<'_, Vec<Arc<str>>> {
        lock(&self.rooms)
    }

    /// Offers one piece (encoded frames or a message); never waits.
    pub(crate) fn push(
        &self,
        piece: Piece<'_>,
        frames: u64,
        max: usize,
        policy: SlowPolicy,
        c: &Counters,
    ) -> SendOutcome {
        let len = piece_len(&piece);
        let mut o = lock(&self.out);
        if o.shut {
            return SendOutcome::Closing;
        }
        if o.bytes + o.in_flight + len > max {
            match policy {
                SlowPolicy::DropNewest => {
                    o.missed += frames;
                    bump(&c.drops, frames);
                    return SendOutcome::Dropped;
                }
                SlowPolicy::Close => {
                    // Free the backlog now: the connection is going.
                    o.items = VecDeque::new();
                    o.tail = BytesMut::new();
                    o.bytes = 0;
                    o.close = Some((SLOW_CONSUMER_CLOSE, "slow consumer"));
                    o.shut = true;
                    drop(o);
                    bump(&c.slow_closes, 1);
                    self.wake.notify_one();
                    self.stop.notify_one();
                    self.room.notify_waiters();
                    return SendOutcome::Closing;
                }
            }
        }
        let was_empty = o.bytes == 0;
        o.queue(piece, len);
        drop(o);
        // The caller counts the delivery (once per broadcast, not once
        // per member: shared counters are contended).
        if was_empty {
            self.wake.notify_one();
        }
        SendOutcome::Queued
    }

    /// Queues `piece` once it fits under `budget` (a piece bigger than the
    /// budget: once it fits under `max`; bigger than `max`: once the queue
    /// is empty), waiting for the writer to make room: for what a member
    /// must not lose and may wait for, its own replay. `Closing` when the
    /// connection shuts first.
    pub(crate) async fn push_wait(
        &self,
        piece: Piece<'_>,
        budget: usize,
        max: usize,
    ) -> SendOutcome {
        let len = piece_len(&piece);
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut o = lock(&self.out);
                if o.shut {
                    return SendOutcome::Closing;
                }
                let used = o.bytes + o.in_flight;
                let room = if len > budget { max } else { budget };
                if used + len <= room || used == 0 {
                    let was_empty = o.bytes == 0;
                    o.queue(piece, len);
                    drop(o);
                    if was_empty {
                        self.wake.notify_one();
                    }
                    return SendOutcome::Queued;
                }
                o.wants_room = true;
            }
            room.await;
        }
    }

    /// Queues a notice of the hub's own (a room's reset, a join's
    /// hand-off) whatever the bound: notices are few and never dropped.
    pub(crate) fn push_notice(&self, frame: &Bytes) -> SendOutcome {
        let mut o = lock(&self.out);
        if o.shut {
            return SendOutcome::Closing;
        }
        let was_empty = o.bytes == 0;
        o.queue(Piece::Encoded(frame), frame.len());
        drop(o);
        if was_empty {
            self.wake.notify_one();
        }
        SendOutcome::Queued
    }

    /// Counts `n` frames this connection missed (e.g. the bus lagged).
    pub(crate) fn add_missed(&self, n: u64) {
        let mut o = lock(&self.out);
        if !o.done {
            o.missed += n;
            let idle = o.bytes == 0;
            drop(o);
            if idle {
                self.wake.notify_one();
            }
        }
    }

    /// Asks the writer to close the connection with `code` once what is
    /// queued has been written (nothing more is accepted).
    pub(crate) fn request_close(&self, code: CloseCode, reason: &'static str) {
        let mut o = lock(&self.out);
        if o.shut {
            return;
        }
        o.close = Some((code, reason));
        o.shut = true;
        drop(o);
        self.wake.notify_one();
        self.room.notify_waiters();
    }

    /// Stops the writer (unregistered).
    pub(crate) fn finish(&self) {
        let mut o = lock(&self.out);
        if o.done {
            return;
        }
        o.done = true;
        o.shut = true;
        o.items = VecDeque::new();
        o.tail = BytesMut::new();
        o.bytes = 0;
        o.in_flight = 0;
        drop(o);
        self.wake.notify_one();
        self.stop.notify_one();
        self.room.notify_waiters();
        self.closed.send_replace(true);
    }

    /// Unregistered (checked by a join under the rooms lock, so a join
    /// racing an unregister cannot leave a member behind).
    pub(crate) fn is_done(&self) -> bool {
        lock(&self.out).done
    }

    /// Bytes queued here or taken by the writer and not yet handed to the
    /// socket's queue (summed on demand by [`Hub::stats`]: a shared gauge
    /// updated at every burst of every writer would be one more cache line
    /// bouncing between cores).
    pub(crate) fn queued(&self) -> usize {
        let o = lock(&self.out);
        o.bytes + o.in_flight
    }

    pub(crate) fn subscribe_closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }
}

/// What `piece` counts against the queue bound.
fn piece_len(piece: &Piece<'_>) -> usize {
    match piece {
        Piece::Encoded(b) => b.len(),
        #[cfg(feature = "deflate")]
        Piece::Message(_, _, len) => *len,
    }
}

impl Out {
    /// Appends `piece` (of `len` bytes) after everything queued.
    fn queue(&mut self, piece: Piece<'_>, len: usize) {
        match piece {
            Piece::Encoded(b) if b.len() < INLINE_MAX => {
                if self.tail.capacity() == 0 {
                    self.tail.reserve(TAIL_START);
                }
                self.tail.extend_from_slice(b);
            }
            Piece::Encoded(b) => {
                self.seal_tail();
                self.items.push_back(Item::Encoded(b.clone()));
            }
            #[cfg(feature = "deflate")]
            Piece::Message(op, p, _) => {
                self.seal_tail();
                self.items.push_back(Item::Message(op, p.clone()));
            }
        }
        self.bytes += len;
    }

    /// Moves the tail into an item, so that what is queued next goes
    /// after it.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            let t = self.tail.split().freeze();
            self.items.push_back(Item::Encoded(t));
        }
    }
}

#[cfg(test)]
mod layout {
    use super::*;

    #[test]
    fn a_push_touches_one_cache_line() {
        // What a push reads and writes: the mutex word, `bytes`,
        // `in_flight`, `tail` and `shut`; the mutex's own header is at most
        // 8 bytes ahead of `Out`, and `Slot` starts with it on a 64-byte
        // boundary.
        let header = std::mem::size_of::<Mutex<Out>>() - std::mem::size_of::<Out>();
        assert!(header <= 8, "mutex header {header}");
        let end = std::mem::offset_of!(Out, shut) + 1;
        assert!(header + end <= 64, "hot fields end at {}", header + end);
        assert_eq!(std::mem::offset_of!(Slot, out), 0);
        assert_eq!(std::mem::align_of::<Slot>(), 64);
    }
}
