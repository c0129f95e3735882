//! The SSE manager: channels of events with replay on `Last-Event-ID`,
//! connection limits and a slow-client policy, on one node (the in-memory
//! [`MemoryStore`] and [`MemoryBus`]) or many (any [`Store`] and [`Bus`],
//! e.g. [`crate::pubsub::redis`]).
//!
//! - [`Manager::publish`] stores an event (the store assigns its position,
//!   which is its SSE `id`) and sends it through the bus to every instance.
//! - [`Manager::subscribe`] registers a client and returns its
//!   [`Subscriber`] with the replay: the events after its `Last-Event-ID`,
//!   or one `reset` event when the store cannot catch it up.
//! - [`Handler`] serves one HTTP request end to end.
//!
//!
//! The wire form of ids and of the `reset` and `dropped` events, and the
//! ordering rules: see [`Manager`].

mod config;
mod dispatch;
mod encode;
mod error;
mod handler;
mod registry;
mod request;
mod stats;
mod subscriber;

use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

pub use config::ManagerConfig;
pub use encode::{EventKind, ManagedEvent, ResetReason, DROPPED_EVENT, RESET_EVENT};
pub use error::ManagerError;
pub use handler::{AuthorizeSubscribe, Handler, HandlerConfig};
pub use request::SubscribeRequest;
pub use stats::Stats;
pub use subscriber::{CloseReason, Subscriber};

use crate::pubsub::{
    Bus, ChannelName, Follower, MemoryBus, MemoryConfig, MemoryStore, Position, PubSubError,
    Publication, PublishRequest, Since, Store,
};
use dispatch::Dispatcher;
use registry::Registry;
use stats::Counters;
use subscriber::Shared;

/// Stripes of the per-channel publish lock.
const PUBLISH_STRIPES: usize = 64;

struct Inner<St, B> {
    config: ManagerConfig,
    store: Arc<St>,
    bus: B,
    registry: Arc<Registry>,
    counters: Arc<Counters>,
    publish_locks: Vec<tokio::sync::Mutex<()>>,
    hasher: std::collections::hash_map::RandomState,
    next_client: AtomicU64,
    closed: AtomicBool,
    /// Handler streams running (what `close` waits for).
    streams: AtomicUsize,
    streams_done: Notify,
}

/// Channels of server-sent events with replay, limits and a slow-client
/// policy. Cheap to clone (one `Arc`); clones share everything.
///
/// # The wire
///
/// Every event has `id: <epoch hex>-<offset>` (the [`Position`] wire form,
/// e.g. `id: 18c2f3a9-42`); ids of one channel increase in offset within
/// an epoch. A new epoch means a new history (the store lost the old one):
/// a client resuming from an old epoch gets a reset.
///
/// ```text
/// event: reset
/// id: 18c2f3a9-42
/// data: {"reason":"evicted","top":"18c2f3a9-42"}
/// ```
///
/// `reason` is one of `epoch-changed`, `evicted`, `over-limit` (more was
/// missed than `replay_limit`), `ahead`, `invalid-id`, `lost` (the bus lost
/// live events the store could not fill in); see [`ResetReason`]. The id is
/// the channel's top, so the browser's next reconnect resumes from there.
/// A `drop_on_backpressure` client is told `event: dropped` with
/// `data: {"missed":N}` (no id). In a browser:
/// `es.addEventListener("reset", e => reload())`.
///
/// # Ordering
///
/// A node's publishes to one channel are serialized (store append, then
/// bus publish) so that the in-process stack delivers in position order;
/// each channel's dispatcher also drops duplicates and fetches holes from
/// the store, so a subscriber sees increasing ids with no repeats.
///
/// # Example
///
/// ```
/// use rtwire::pubsub::{ChannelName, PublishRequest};
/// use rtwire::sse::{Manager, ManagerConfig, SubscribeRequest};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rtwire::sse::ManagerError> {
/// let manager = Manager::in_memory(ManagerConfig::new());
/// let (mut sub, replay) = manager.subscribe(SubscribeRequest::new("news")).await?;
/// assert!(replay.is_empty());
/// let news = ChannelName::new("news").unwrap();
/// let first = manager.publish(PublishRequest::new(news, "hello")).await?;
/// let ev = sub.recv().await.unwrap();
/// assert_eq!(ev.position(), Some(first.position));
/// let wire = format!("id: {}\ndata: hello\n\n", first.position);
/// assert_eq!(ev.encoded().as_bytes().as_ref(), wire.as_bytes());
///
/// // A client that saw nothing of it resumes from before it:
/// let before = rtwire::pubsub::Position::new(first.position.epoch, 0);
/// let req = SubscribeRequest::new("news").last_event_id(before.to_string());
/// let (_sub, replay) = manager.subscribe(req).await?;
/// assert_eq!(replay.len(), 1);
/// manager.close().await;
/// # Ok(()) }
/// ```
pub struct Manager<St: Store = MemoryStore, B: Bus = MemoryBus> {
    inner: Arc<Inner<St, B>>,
}

impl<St: Store, B: Bus> Clone for Manager<St, B> {
    fn clone(&self) -> Self {
        Manager {
            inner: self.inner.clone(),
        }
    }
}

impl<St: Store, B: Bus> fmt::Debug for Manager<St, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("instance_id", &self.inner.config.instance_id)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// A manager on one node: [`MemoryStore`] with its defaults and
    /// [`MemoryBus`].
    pub fn in_memory(config: ManagerConfig) -> Self {
        Manager::new(
            config,
            MemoryStore::new(MemoryConfig::default()),
            MemoryBus::new(),
        )
    }
}

impl<St: Store, B: Bus> Manager<St, B> {
    /// A manager on `store` and `bus`.
    pub fn new(config: ManagerConfig, store: St, bus: B) -> Self {
        Manager {
            inner: Arc::new(Inner {
                config,
                store: Arc::new(store),
                bus,
                registry: Arc::new(Registry::default()),
                counters: Arc::new(Counters::default()),
                publish_locks: (0..PUBLISH_STRIPES)
                    .map(|_| tokio::sync::Mutex::new(()))
                    .collect(),
                hasher: Default::default(),
                next_client: AtomicU64::new(1),
                closed: AtomicBool::new(false),
                streams: AtomicUsize::new(0),
                streams_done: Notify::new(),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ManagerConfig {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.inner.store
    }

    /// The bus.
    pub fn bus(&self) -> &B {
        &self.inner.bus
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.inner
            .counters
            .snapshot(self.inner.registry.channel_count())
    }

    fn check_open(&self) -> Result<(), ManagerError> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(ManagerError::Closed)
        } else {
            Ok(())
        }
    }

    /// Stores `req` (the store assigns the position: the event's id) and
    /// publishes it through the bus; returns the stored publication.
    ///
    /// The data must be UTF-8 ([`ManagerError::InvalidData`]). Publishes to
    /// one channel from this node are serialized (see the module docs).
    pub async fn publish(&self, req: PublishRequest) -> Result<Publication, ManagerError> {
        self.check_open()?;
        if std::str::from_utf8(&req.data).is_err() {
            return Err(ManagerError::InvalidData);
        }
        let r = self.publish_serialized(req).await;
        let c = &self.inner.counters;
        match &r {
            Ok(_) => Counters::add(&c.publishes, 1),
            Err(_) => Counters::add(&c.publish_errors, 1),
        }
        r
    }

    async fn publish_serialized(&self, req: PublishRequest) -> Result<Publication, ManagerError> {
        let stripe = (self.inner.hasher.hash_one(&req.channel) as usize) % PUBLISH_STRIPES;
        let _turn = self.inner.publish_locks[stripe].lock().await;
        let p = self.inner.store.append(req).await?;
        self.inner.bus.publish(&p).await?;
        Ok(p)
    }

    /// Registers a client and returns its [`Subscriber`] and the replay.
    ///
    /// The replay is every event after `last_event_id` that routes to the
    /// client, or one `reset` event when the store cannot catch it up (or
    /// the id is not one of ours); empty without a `last_event_id`. Live
    /// events that the replay already holds are skipped, so the client sees
    /// each id once. Errors: [`ManagerError::TooManyConnections`],
    /// [`ManagerError::InvalidChannel`], [`ManagerError::Closed`], or the
    /// backend's.
    pub async fn subscribe(
        &self,
        req: SubscribeRequest,
    ) -> Result<(Subscriber, Vec<Arc<ManagedEvent>>), ManagerError> {
        self.check_open()?;
        let channel = ChannelName::new(&req.channel)?;
        let inner = &self.inner;
        let c = &inner.counters;
        let limit = inner.config.max_connections;
        if c.connections.fetch_add(1, Ordering::AcqRel) as usize >= limit {
            c.connection_closed();
            Counters::add(&c.rejected_connections, 1);
            return Err(ManagerError::TooManyConnections { limit });
        }
        Counters::add(&c.connections_total, 1);
        let id = req.client_id.clone().unwrap_or_else(|| {
            let n = inner.next_client.fetch_add(1, Ordering::Relaxed);
            format!("{}-{n}", inner.config.instance_id)
        });
        let shared = Arc::new(Shared::new(
            id,
            channel.clone(),
            req.tenant.clone(),
            req.subject.clone(),
            inner.config.client_buffer,
            inner.config.drop_on_backpressure,
        ));
        let (room, key) = inner.registry.add(&shared);
        // From here on, dropping `sub` undoes the registration.
        let sub = Subscriber {
            shared,
            registry: inner.registry.clone(),
            key,
            counters: c.clone(),
        };
        // `close` sets the flag before it looks for subscribers to close:
        // either it saw this one, or this sees the flag.
        self.check_open()?;
        room.ready
            .get_or_try_init(|| async {
                // Subscribes, then reads the top: nothing published in
                // between is held back or lost.
                let follower = Follower::start(
                    inner.store.clone(),
                    &inner.bus,
                    channel.clone(),
                    inner.config.replay_limit,
                )
                .await?;
                let d = Dispatcher {
                    room: room.clone(),
                    follower,
                    counters: c.clone(),
                    registry: inner.registry.clone(),
                };
                tokio::spawn(d.run());
                Ok::<(), PubSubError>(())
            })
            .await?;
        let (replay, top) = self.replay(&channel, &req).await?;
        // Live events the replay holds leave the queue; what is left counts
        // against the limit from now on.
        sub.shared.finish_join(top);
        Ok((sub, replay))
    }

    async fn replay(
        &self,
        channel: &ChannelName,
        req: &SubscribeRequest,
    ) -> Result<(Vec<Arc<ManagedEvent>>, Option<Position>), ManagerError> {
        let c = &self.inner.counters;
        let Some(raw) = req.last_event_id.as_deref().filter(|s| !s.is_empty()) else {
            return Ok((Vec::new(), None));
        };
        let Ok(after) = Position::parse(raw) else {
            let top = self.inner.store.since(channel, None, 0).await?.top();
            Counters::add(&c.replays_reset, 1);
            let reset = encode::reset(ResetReason::InvalidId, Some(top));
            return Ok((vec![Arc::new(reset)], Some(top)));
        };
        let since = self
            .inner
            .store
            .since(channel, Some(after), self.inner.config.replay_limit)
            .await?;
        match since {
            Since::Publications { publications, top } => {
                let events: Vec<_> = publications
                    .into_iter()
                    .filter(|p| p.routes_to(req.tenant.as_deref(), req.subject.as_deref()))
                    .map(|p| Arc::new(encode::publication(Arc::new(p))))
                    .collect();
                Counters::add(&c.replays_caught_up, 1);
                Counters::add(&c.replayed_events, events.len() as u64);
                Ok((events, Some(top)))
            }
            Since::CannotCatchUp { reason, top } => {
                Counters::add(&c.replays_reset, 1);
                let reset = encode::reset(ResetReason::Gap(reason), Some(top));
                Ok((vec![Arc::new(reset)], Some(top)))
            }
        }
    }

    /// Disconnects the client with this id; `false` if none is connected.
    pub fn disconnect(&self, client_id: &str) -> bool {
        match self.inner.registry.client(client_id) {
            Some(s) => s.close(CloseReason::Disconnected),
            None => false,
        }
    }

    /// Closes every subscriber (the [`Handler`]'s streams end cleanly),
    /// waits up to `shutdown_timeout` for those streams to finish, then
    /// closes the bus and the store. Later calls return
    /// [`ManagerError::Closed`].
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for s in self.inner.registry.all() {
            s.close(CloseReason::Shutdown);
        }
        let wait = async {
            loop {
                let done = self.inner.streams_done.notified();
                tokio::pin!(done);
                done.as_mut().enable();
                if self.inner.streams.load(Ordering::Acquire) == 0 {
                    return;
                }
                done.await;
            }
        };
        let _ = tokio::time::timeout(self.inner.config.shutdown_timeout, wait).await;
        self.inner.bus.close().await;
        self.inner.store.close().await;
    }

    /// Counts a handler stream for [`Manager::close`].
    fn stream_guard(&self) -> StreamGuard<St, B> {
        self.inner.streams.fetch_add(1, Ordering::AcqRel);
        StreamGuard {
            manager: self.clone(),
        }
    }
}

struct StreamGuard<St: Store, B: Bus> {
    manager: Manager<St, B>,
}

impl<St: Store, B: Bus> Drop for StreamGuard<St, B> {
    fn drop(&mut self) {
        let inner = &self.manager.inner;
        if inner.streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            inner.streams_done.notify_waiters();
        }
    }
}
