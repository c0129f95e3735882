//! [`Subscriber`]: one client's handle on the manager, with its bounded
//! queue of shared, already encoded events.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::encode;
use super::encode::{EventKind, ManagedEvent};
use super::registry::Registry;
use super::stats::Counters;
use crate::pubsub::{ChannelName, Cursor, Position};

/// Why a subscriber's stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`Manager::disconnect`](super::Manager::disconnect) (or a new
    /// subscriber with the same client id replaced this one).
    Disconnected,
    /// Its queue was full with `drop_on_backpressure` off: the client is
    /// disconnected so that it reconnects and is replayed from the store.
    SlowConsumer,
    /// [`Manager::close`](super::Manager::close).
    Shutdown,
}

/// One queue slot: an event or a run of events dropped for this client.
enum Slot {
    Event(Arc<ManagedEvent>),
    Dropped(u64),
}

struct Queue {
    items: VecDeque<Slot>,
    /// Publications in `items` (notices do not count).
    events: usize,
    /// Dropped since the last marker was queued (queued with the next event
    /// that fits, or handed out when the queue runs dry).
    pending_drops: u64,
    closed: Option<CloseReason>,
    /// Until the replay is known ([`Shared::finish_join`]) the queue takes
    /// everything: what the replay covers is removed then, and only what is
    /// left counts against the limit.
    joining: bool,
    /// The hand-off: publications at or before its position were in the
    /// replay (or before a reset); publications of another history than
    /// its epoch are stale (a backlog from before a reset).
    cursor: Cursor,
}

impl Queue {
    /// Removes queued publications that are stale now.
    fn purge_stale(&mut self) {
        let cursor = self.cursor;
        self.items.retain(|s| match s {
            Slot::Event(e) => e.position().is_none_or(|p| !cursor.is_stale(p)),
            Slot::Dropped(_) => true,
        });
        self.events = count_events(&self.items);
    }

    /// Applies the slow-client policy to a queue over `capacity`: `true`
    /// when the subscriber is now closed.
    fn enforce(&mut self, capacity: usize, drop_on_backpressure: bool) -> bool {
        if self.events <= capacity {
            return false;
        }
        if !drop_on_backpressure {
            self.closed = Some(CloseReason::SlowConsumer);
            self.items = VecDeque::new();
            self.events = 0;
            return true;
        }
        // Keep the oldest `capacity` publications (and every notice).
        let (mut kept, mut dropped) = (0, 0);
        self.items.retain(|s| match s {
            Slot::Event(e) if e.publication().is_some() => {
                kept += 1;
                if kept > capacity {
                    dropped += 1;
                }
                kept <= capacity
            }
            Slot::Dropped(n) if kept >= capacity => {
                dropped += n;
                false
            }
            _ => true,
        });
        self.events = kept.min(capacity);
        self.pending_drops += dropped;
        false
    }
}

/// The manager's side of a subscriber.
pub(crate) struct Shared {
    pub(crate) id: String,
    pub(crate) channel: ChannelName,
    pub(crate) tenant: Option<String>,
    pub(crate) subject: Option<String>,
    capacity: usize,
    drop_on_backpressure: bool,
    queue: Mutex<Queue>,
    /// Wakes the one consumer: an event or the close.
    ready: Notify,
    /// Wakes every [`Subscriber::closed`] waiter.
    closed_notify: Notify,
    closed_flag: AtomicBool,
}

/// What [`Shared::push`] did.
pub(crate) enum Pushed {
    Queued,
    /// Already in the client's replay, or from a history it left.
    Skipped,
    Dropped,
    /// The queue was full: the subscriber is now closed as slow.
    Closed,
    /// Already closed: nothing to do.
    Gone,
}

impl Shared {
    pub(crate) fn new(
        id: String,
        channel: ChannelName,
        tenant: Option<String>,
        subject: Option<String>,
        capacity: usize,
        drop_on_backpressure: bool,
    ) -> Self {
        Shared {
            id,
            channel,
            tenant,
            subject,
            capacity: capacity.max(1),
            drop_on_backpressure,
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                events: 0,
                pending_drops: 0,
                closed: None,
                joining: true,
                cursor: Cursor::new(),
            }),
            ready: Notify::new(),
            closed_notify: Notify::new(),
            closed_flag: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `ev` is for this subscriber (tenant and subject routing).
    pub(crate) fn wants(&self, ev: &ManagedEvent) -> bool {
        match ev.publication() {
            Some(p) => p.routes_to(self.tenant.as_deref(), self.subject.as_deref()),
            None => true,
        }
    }

    /// Queues `ev` without waiting: never blocks the publisher on this
    /// client. A `reset` notice is always queued (one in a row: a newer
    /// one replaces one not yet read) and moves the client to its top.
    pub(crate) fn push(&self, ev: &Arc<ManagedEvent>) -> Pushed {
        let mut q = self.lock();
        if q.closed.is_some() {
            return Pushed::Gone;
        }
        match ev.kind() {
            EventKind::Publication(p) => {
                if q.cursor.is_stale(p.position) {
                    return Pushed::Skipped;
                }
                if !q.joining {
                    q.cursor.pin(p.position.epoch);
                }
                if !q.joining && q.events >= self.capacity {
                    if self.drop_on_backpressure {
                        q.pending_drops += 1;
                        return Pushed::Dropped;
                    }
                    q.enforce(0, false);
                    drop(q);
                    self.wake_closed();
                    return Pushed::Closed;
                }
                if q.pending_drops > 0 {
                    let n = std::mem::take(&mut q.pending_drops);
                    q.items.push_back(Slot::Dropped(n));
                }
                q.items.push_back(Slot::Event(ev.clone()));
                q.events += 1;
            }
            EventKind::Reset { top, .. } => {
                if !q.cursor.reset(*top) {
                    // Nothing this client misses: it is past that top.
                    return Pushed::Skipped;
                }
                // What is queued from before the new top is stale now.
                q.purge_stale();
                if let Some(Slot::Event(last)) = q.items.back() {
                    if matches!(last.kind(), EventKind::Reset { .. }) {
                        q.items.pop_back();
                    }
                }
                q.items.push_back(Slot::Event(ev.clone()));
            }
            EventKind::Dropped { .. } => {
                q.items.push_back(Slot::Event(ev.clone()));
            }
        }
        drop(q);
        self.ready.notify_one();
        Pushed::Queued
    }

    /// The replay is known: drop what it covers from the queue (`top`: the
    /// replay's top; `None` for a client without a last event id), then
    /// apply the limit to what is left. `false` when that closed it.
    pub(crate) fn finish_join(&self, top: Option<Position>) -> bool {
        let mut q = self.lock();
        q.joining = false;
        if q.closed.is_some() {
            return true;
        }
        if let Some(t) = top {
            q.cursor.caught_up(t);
        }
        q.purge_stale();
        let first = q.items.iter().find_map(|s| match s {
            Slot::Event(e) => e.position().map(|p| p.epoch),
            Slot::Dropped(_) => None,
        });
        if let Some(e) = first {
            q.cursor.pin(e);
        }
        let closed = q.enforce(self.capacity, self.drop_on_backpressure);
        drop(q);
        if closed {
            self.wake_closed();
        }
        !closed
    }

    /// Closes the subscriber (first reason wins); `true` if this call did.
    pub(crate) fn close(&self, reason: CloseReason) -> bool {
        let mut q = self.lock();
        if q.closed.is_some() {
            return false;
        }
        q.closed = Some(reason);
        drop(q);
        self.wake_closed();
        true
    }

    fn wake_closed(&self) {
        self.closed_flag.store(true, Ordering::Release);
        self.ready.notify_one();
        self.closed_notify.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed_flag.load(Ordering::Acquire)
    }
}

/// One subscriber: the stream of events for one client, in order.
///
/// Returned by [`Manager::subscribe`](super::Manager::subscribe) together
/// with the replay. [`Subscriber::recv`] yields live events (already
/// encoded: write [`ManagedEvent::encoded`] to the client) and ends when
/// the subscriber is closed (see [`Subscriber::close_reason`]). Dropping
/// it unsubscribes.
pub struct Subscriber {
    pub(crate) shared: Arc<Shared>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) key: u64,
    pub(crate) counters: Arc<Counters>,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("id", &self.shared.id)
            .field("channel", &self.shared.channel)
            .finish_non_exhaustive()
    }
}

impl Subscriber {
    /// The client id (the one asked for, or a generated one).
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The channel.
    pub fn channel(&self) -> &ChannelName {
        &self.shared.channel
    }

    /// Events waiting in this subscriber's queue.
    pub fn queued(&self) -> usize {
        self.shared.lock().events
    }

    /// Why the stream ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.lock().closed
    }

    /// Whether the subscriber has been closed: a closed subscriber yields
    /// nothing more (its client reconnects and is replayed from the store).
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Completes when the subscriber is closed (disconnect, slow consumer,
    /// shutdown). Cancel-safe.
    pub async fn closed(&self) {
        loop {
            let notified = self.shared.closed_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.is_closed() {
                return;
            }
            notified.await;
        }
    }

    /// The next event, waiting for one; `None` once the subscriber is
    /// closed. Cancel-safe: an event is taken only when returned.
    pub async fn recv(&mut self) -> Option<Arc<ManagedEvent>> {
        loop {
            if let Some(r) = self.try_next() {
                return r;
            }
            self.shared.ready.notified().await;
        }
    }

    /// The next event if one is queued now (`None`: none, or closed).
    pub fn try_recv(&mut self) -> Option<Arc<ManagedEvent>> {
        self.try_next().flatten()
    }

    /// `Some(Some(ev))`: an event; `Some(None)`: closed; `None`: wait.
    fn try_next(&mut self) -> Option<Option<Arc<ManagedEvent>>> {
        let mut q = self.shared.lock();
        if q.closed.is_some() {
            return Some(None);
        }
        let slot = match q.items.pop_front() {
            Some(s) => s,
            None if q.pending_drops > 0 => Slot::Dropped(std::mem::take(&mut q.pending_drops)),
            None => return None,
        };
        match slot {
            Slot::Dropped(n) => {
                drop(q);
                Some(Some(Arc::new(encode::dropped(n))))
            }
            Slot::Event(ev) => {
                if ev.publication().is_some() {
                    q.events -= 1;
                }
                Some(Some(ev))
            }
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.registry.remove(&self.shared, self.key);
        self.counters.connection_closed();
    }
}

fn count_events(items: &VecDeque<Slot>) -> usize {
    items
        .iter()
        .filter(|s| matches!(s, Slot::Event(e) if e.publication().is_some()))
        .count()
}
