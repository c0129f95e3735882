//! The WebSocket hub: connections by id, rooms, broadcast encoded once,
//! per-connection bounded queues with a slow-consumer policy, presence,
//! and many instances through the pub/sub [`Bus`].
//!
//! ```text
//! app read loop ──► Hub::inbound (rate limit) ──► Hub::broadcast(room, msg, except)
//!                                                   │ encode once → Bytes
//!                     ┌─────────────────────────────┼──────────────────────┐
//!                     ▼                             ▼                      ▼
//!           conn queue (≤ max_queue_bytes)   conn queue ...      bus: hub.room.<room>
//!                     │ writer task: take all, feed_encoded, one flush      │
//!                     ▼                                                     ▼
//!                 WriteHalf ──► socket                        other instances' members
//! ```
//!
//! Files: `config.rs` ([`HubConfig`], [`SlowPolicy`], the close codes),
//! `conn.rs` (the queue, the writer task), `registration.rs`
//! ([`Registration`]), `rooms.rs`
//! (join, leave, unregister, presence bookkeeping), `presence.rs`
//! ([`PresenceInfo`], [`PresenceEvent`]), `cluster.rs` (the bus wire
//! format, publisher and room subscriptions), `redis.rs` (presence leases,
//! feature `redis`), `envelope.rs` (the JSON protocol, feature `serde`),
//! `rate.rs` ([`RateLimiter`]), `stats.rs` ([`HubStats`]), `outgoing.rs`
//! (one message's encodings, plain and compressed), `send.rs` (send,
//! broadcast and the per-member push), `batch.rs` (batched fan-out),
//! `log.rs` (the store and bus behind one trait), `history.rs`,
//! `feed.rs`, `resume.rs` (rooms with history), `drain.rs` ([`Hub::drain`]).
//!
//! ## Rooms with history
//!
//! With [`HubConfig::history`] a room's messages are stored before they
//! are delivered, each with a [`Position`](crate::pubsub::Position); a
//! member that comes back (on any instance, after a restart or a drain)
//! joins with [`JoinFrom::Since`] and gets what it missed, in order, once,
//! then live, or a [`RoomNotice::Reset`] when the history cannot say.
//! See [`Hub::join_with`], [`Hub::publish`], [`Hub::history`] and the
//! README's "Resume and history".
//!
//! ## Guarantees
//!
//! - **Encode once.** A broadcast encodes its frame once; every recipient
//!   (and the bus) shares the same bytes. With permessage-deflate (feature
//!   `deflate`) it is also compressed once per distinct window among the
//!   members that negotiated no server context takeover (lazily: only when
//!   one of them is a recipient and the message reaches its threshold;
//!   [`HubStats::broadcast_compressions`] counts them); a member with
//!   context takeover gets the message through its own compressor.
//! - **Bounded.** Each connection has at most
//!   [`max_queue_bytes`](HubConfig::max_queue_bytes) queued in the hub plus
//!   its socket write buffer (`ws::Config::write_buffer_high_water`). A
//!   frame that does not fit is dropped and counted
//!   ([`SlowPolicy::DropNewest`]: the connection gets a "missed N" notice
//!   once it has caught up) or closes the connection with
//!   [`SLOW_CONSUMER_CLOSE`] (1013, [`SlowPolicy::Close`]). Pushing never
//!   waits, so a stalled client never slows the others. Control frames
//!   (pongs, close replies) go through the connection's own queue and are
//!   never dropped.
//! - **Order.** Frames reach each connection in the order the hub accepted
//!   them; messages of one sender (one task calling `broadcast` in
//!   sequence) arrive in that order on every instance.
//! - **Presence.** Two connections of one user in a room are one presence;
//!   join fires with the first, leave with the last. On many instances
//!   (Redis) each instance's share lives under a lease; when an instance
//!   dies, a survivor fires the leaves of its users within
//!   `lease + heartbeat` ([`PresenceLease`]).
//!
//! ## Batched fan-out
//!
//! By default a broadcast pushes its frame into every member's queue
//! before it returns. With [`HubConfig::batch_broadcasts`] it is queued in
//! one hub-wide queue instead, and one task per hub delivers everything
//! queued: consecutive messages to one room reach each member as one push
//! (one copy of all their frames, in pieces of at most half
//! `max_queue_bytes`), so the cost per member is paid per batch, not per
//! message. For rooms of thousands with messages in bursts (at 10,000
//! members a broadcast's per-member work, each a cache miss, dominates).
//! Members that compress, and members excepted from some message of the
//! batch, still get it message by message. Order is kept as above:
//! [`send`](Hub::send), [`send_encoded`](Hub::send_encoded) and
//! [`close`](Hub::close) made while broadcasts are queued go behind them.
//! What differs: `broadcast` returns the room's local size when it was
//! called, membership is read at delivery (a moment later), a `send` made
//! while broadcasts are queued returns [`SendOutcome::Queued`] (or
//! [`SendOutcome::Dropped`], counted and told to the connection, when the
//! queue is over [`BATCH_MAX_PENDING`]), and `broadcast` waits while the
//! queue is over that bound. Messages from other instances are delivered
//! as they arrive, as in the default mode.

mod batch;
mod cluster;
mod config;
mod conn;
mod drain;
#[cfg(feature = "serde")]
pub mod envelope;
mod error;
mod feed;
mod history;
mod log;
mod outgoing;
mod presence;
mod rate;
#[cfg(feature = "redis")]
mod redis;
mod registration;
mod resume;
mod rooms;
mod send;
mod stats;
mod time;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};

pub use batch::BATCH_MAX_PENDING;
pub use config::{
    HubConfig, MissedFormat, PresenceFormat, SlowPolicy, RATE_LIMIT_CLOSE, SLOW_CONSUMER_CLOSE,
};
pub use conn::{ConnId, Meta, SendOutcome};
pub use drain::{Drained, DRAIN_CLOSE};
pub use error::HubError;
pub use history::{
    notice_message, stamp_json_id, HistoryConfig, JoinFrom, Joined, NoticeFormat, Resume,
    RoomFilter, RoomNotice, StampFormat,
};
pub use presence::{PresenceEvent, PresenceInfo, PresenceKind};
pub use rate::{Inbound, RateLimit, RateLimiter};
#[cfg(feature = "redis")]
pub use redis::{PresenceLease, RedisPresence};
pub use registration::Registration;
pub use stats::HubStats;
pub use time::rfc3339;

use self::cluster::Cluster;
use self::conn::Slot;
use self::outgoing::MemberDeflate;
use self::presence::Backend;
use self::rooms::Room;
use self::stats::{bump, Counters};
use crate::pubsub::{Bus, PubSubError, Store};
use crate::ws::{CloseCode, Encoder, Message, Role, WriteHalf};

/// Longest room name, in bytes.
pub const MAX_ROOM_LEN: usize = 128;

/// How the connection behind `w` takes compressed broadcasts.
fn member_deflate<S: AsyncRead + AsyncWrite + Unpin>(w: &WriteHalf<S>) -> Option<MemberDeflate> {
    #[cfg(feature = "deflate")]
    {
        let p = w.deflate()?;
        Some(MemberDeflate {
            shared: w.shared_deflate_window(),
            level: p.level,
            threshold: p.threshold,
        })
    }
    #[cfg(not(feature = "deflate"))]
    {
        let _ = w;
        None
    }
}

/// Encodes `msg` as one server frame (unmasked: the same bytes serve every
/// connection).
///
/// ```
/// use rtwire::ws::Message;
/// let b = rtwire::hub::encode(&Message::text("hi"));
/// assert_eq!(&b[..], &[0x81, 2, b'h', b'i']);
/// ```
pub fn encode(msg: &Message) -> Bytes {
    let mut out = BytesMut::with_capacity(msg.payload().len() + 10);
    Encoder::new(Role::Server).encode_parts(true, 0, msg.opcode(), msg.payload(), &mut out);
    out.freeze()
}

pub(crate) struct Inner {
    config: Arc<HubConfig>,
    instance: Arc<str>,
    next_id: AtomicU64,
    conns: RwLock<HashMap<ConnId, Arc<Slot>>>,
    rooms: RwLock<HashMap<Arc<str>, Room>>,
    counters: Counters,
    cluster: OnceLock<Cluster>,
    /// The store and bus (the rooms with history, the other instances).
    log: OnceLock<Arc<dyn log::Log>>,
    backend: OnceLock<Backend>,
    /// The fan-out queue ([`HubConfig::batch_broadcasts`]).
    batch: Option<Arc<batch::Batcher>>,
    /// [`Hub::drain`] was called: new registrations are closed at once.
    draining: AtomicBool,
    /// A connection was unregistered (what a drain waits for).
    drained: tokio::sync::Notify,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(b) = &self.batch {
            b.close();
        }
    }
}

/// The hub. Cheap to clone (one shared state); every method may be called
/// from any task. See the [module docs](self).
///
/// ```no_run
/// use rtwire::hub::{Hub, HubConfig};
/// use rtwire::ws::{Config, Conn, Message};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = Hub::new(HubConfig::default());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// let (tcp, _) = listener.accept().await?;
/// let (conn, _) = Conn::accept(tcp, &hub.config().conn_config(&Config::default())).await?;
/// let (mut read, write) = conn.split();
/// let reg = hub.register(write, "alice", Default::default());
/// hub.join(reg.id(), "lobby").await?;
/// while let Ok(Some(m)) = read.read_message().await {
///     hub.broadcast("lobby", &m, Some(reg.id())).await?;
/// }
/// reg.unregister().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Hub {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("instance", &self.inner.instance)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub for one node (no bus, presence in memory). With
    /// [`HubConfig::history`] its rooms' histories are kept in memory (a
    /// [`MemoryStore`](crate::pubsub::MemoryStore) bounded by
    /// [`HistoryConfig::size`], [`HistoryConfig::max_bytes`] and
    /// [`HistoryConfig::ttl`]).
    pub fn new(config: HubConfig) -> Hub {
        let history = config.history.clone();
        let hub = Hub::with_instance(config, "local");
        if let Some(h) = history {
            let store = crate::pubsub::MemoryStore::new(
                crate::pubsub::MemoryConfig::default()
                    .max_publications(h.size)
                    .max_bytes(h.max_bytes)
                    .ttl(h.ttl),
            );
            let pair = log::Pair::new(Arc::new(store), Arc::new(crate::pubsub::MemoryBus::new()));
            let _ = hub.inner.log.set(Arc::new(pair));
        }
        hub
    }

    fn with_instance(config: HubConfig, instance: &str) -> Hub {
        let batch = config
            .batch_broadcasts
            .then(|| Arc::new(batch::Batcher::default()));
        Hub {
            inner: Arc::new(Inner {
                config: Arc::new(config),
                instance: instance.into(),
                next_id: AtomicU64::new(1),
                conns: RwLock::new(HashMap::new()),
                rooms: RwLock::new(HashMap::new()),
                counters: Counters::default(),
                cluster: OnceLock::new(),
                log: OnceLock::new(),
                backend: OnceLock::new(),
                batch,
                draining: AtomicBool::new(false),
                drained: tokio::sync::Notify::new(),
            }),
        }
    }

    /// A hub that is one instance of many: broadcasts also go to the other
    /// instances through `store` + `bus` (shared, so several hubs of one
    /// process may use one in-memory pair) (a channel per room,
    /// `hub.room.<room>`, and `hub.all`), and theirs come in. `instance`
    /// names this instance (a random suffix is added, so a restarted
    /// instance is never mistaken for its previous life). Presence stays
    /// per instance; see [`with_redis`](Self::with_redis) for shared
    /// presence. The rooms with history ([`HubConfig::history`]) keep it
    /// in `store` (its own bounds apply), channel `hub.log.<room>`. Must be
    /// called within a tokio runtime.
    pub async fn with_bus<S: Store, B: Bus>(
        config: HubConfig,
        instance: &str,
        store: Arc<S>,
        bus: Arc<B>,
    ) -> Result<Hub, PubSubError> {
        let id = format!("{instance}-{:016x}", rand::random::<u64>());
        let hub = Hub::with_instance(config, &id);
        let pair: Arc<dyn log::Log> = Arc::new(log::Pair::new(store, bus));
        let _ = hub.inner.log.set(pair.clone());
        let cluster = Cluster::start(&hub, pair).await?;
        let _ = hub.inner.cluster.set(cluster);
        Ok(hub)
    }

    /// [`with_bus`](Self::with_bus) over Redis
    /// ([`pubsub::redis::connect`](crate::pubsub::redis::connect)), with
    /// presence shared through Redis under `lease`. The hub's keys and
    /// channels are under `<prefix>:hub` (`redis.prefix`), apart from
    /// those of an SSE manager on the same Redis and prefix: a manager's
    /// channel named like a room is another channel. With
    /// [`HubConfig::history`] the streams keep [`HistoryConfig::size`]
    /// messages for [`HistoryConfig::ttl`].
    #[cfg(feature = "redis")]
    pub async fn with_redis(
        config: HubConfig,
        instance: &str,
        redis: crate::pubsub::redis::RedisConfig,
        lease: PresenceLease,
    ) -> Result<Hub, PubSubError> {
        let mut rc = redis.clone();
        rc.prefix = format!("{}:hub", redis.prefix);
        if let Some(h) = &config.history {
            rc.history_size = h.size;
            rc.history_ttl = h.ttl;
        }
        let (store, bus) = crate::pubsub::redis::connect(rc).await?;
        let hub = Hub::with_bus(config, instance, Arc::new(store), Arc::new(bus)).await?;
        let p = RedisPresence::start(&hub, &redis, lease).await?;
        let _ = hub.inner.backend.set(Backend::Redis(p));
        Ok(hub)
    }

    /// This instance's id.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance
    }

    /// The configuration.
    pub fn config(&self) -> Arc<HubConfig> {
        self.inner.config.clone()
    }

    pub(crate) fn backend(&self) -> Backend {
        self.inner.backend.get().cloned().unwrap_or(Backend::Local)
    }

    pub(crate) fn conns(&self) -> RwLockReadGuard<'_, HashMap<ConnId, Arc<Slot>>> {
        self.inner.conns.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn conns_mut(&self) -> RwLockWriteGuard<'_, HashMap<ConnId, Arc<Slot>>> {
        self.inner.conns.write().unwrap_or_else(|p| p.into_inner())
    }

    fn slot(&self, id: ConnId) -> Result<Arc<Slot>, HubError> {
        self.conns()
            .get(&id)
            .cloned()
            .ok_or(HubError::UnknownConnection(id))
    }

    /// Registers a connection's write half under `user` with `meta`; the
    /// hub spawns its writer task. The application keeps reading with the
    /// read half, and stops when [`Registration::closed`] fires.
    pub fn register<S>(&self, write: WriteHalf<S>, user: &str, meta: Meta) -> Registration
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let id = ConnId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        let limiter = self.inner.config.rate_limit.map(RateLimiter::new);
        let slot = Arc::new(Slot::new(
            id,
            user.into(),
            meta,
            limiter,
            member_deflate(&write),
        ));
        let closed = slot.subscribe_closed();
        {
            // Under the lock `drain` sets its flag with: a connection is
            // either in the drain's list or closed here.
            let mut conns = self.conns_mut();
            if self.is_draining() {
                slot.request_close(DRAIN_CLOSE, "server restarting");
            }
            conns.insert(id, slot.clone());
        }
        bump(&self.inner.counters.connections, 1);
        tokio::spawn(conn::run_writer(self.clone(), slot, write));
        Registration {
            hub: self.clone(),
            id,
            closed,
            done: false,
        }
    }

    /// The user a connection was registered with.
    pub fn user(&self, id: ConnId) -> Option<Arc<str>> {
        self.conns().get(&id).map(|s| s.user.clone())
    }

    /// The connections registered under `user`, oldest first.
    pub fn connections_of(&self, user: &str) -> Vec<ConnId> {
        let mut v: Vec<ConnId> = self
            .conns()
            .values()
            .filter(|s| &*s.user == user)
            .map(|s| s.id)
            .collect();
        v.sort();
        v
    }

    /// The metadata a connection was registered with.
    pub fn meta(&self, id: ConnId) -> Option<Meta> {
        self.conns().get(&id).map(|s| s.meta.clone())
    }

    /// The rooms a connection is in, in join order.
    pub fn rooms_of(&self, id: ConnId) -> Vec<String> {
        match self.conns().get(&id) {
            Some(s) => s.rooms().iter().map(|r| r.to_string()).collect(),
            None => Vec::new(),
        }
    }

    /// Charges one inbound message of `len` bytes to the connection's rate
    /// limit (and counts it, and marks the user seen). Without a
    /// [`RateLimit`] in the config every message is accepted. On
    /// [`Inbound::Close`] the hub has already asked the connection to
    /// close with [`RATE_LIMIT_CLOSE`] (1008).
    pub fn inbound(&self, id: ConnId, len: usize) -> Inbound {
        let c = &self.inner.counters;
        bump(&c.messages_in, 1);
        let Ok(slot) = self.slot(id) else {
            return Inbound::Close;
        };
        slot.last_seen_ms.store(time::now_ms(), Ordering::Relaxed);
        let verdict = match &mut *slot.limiter.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(l) => l.check(tokio::time::Instant::now(), len),
            None => Inbound::Accept,
        };
        match verdict {
            Inbound::Accept => {}
            Inbound::Reject => bump(&c.rate_limited, 1),
            Inbound::Close => {
                bump(&c.rate_limited, 1);
                bump(&c.rate_limit_closes, 1);
                slot.request_close(RATE_LIMIT_CLOSE, "rate limit exceeded");
            }
        }
        verdict
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> HubStats {
        let rooms = self.rooms().len() as u64;
        let mut queued: usize = self.conns().values().map(|s| s.queued()).sum();
        if let Some(b) = &self.inner.batch {
            queued += b.pending();
        }
        self.inner.counters.snapshot(rooms, queued as u64)
    }

    /// Closes every connection with 1001 (going away) and, with shared
    /// presence, gives up this instance's lease at once: the other
    /// instances fire its users' leaves now rather than at the lease's end.
    pub async fn shutdown(&self) {
        let ids: Vec<ConnId> = self.conns().keys().copied().collect();
        for id in ids {
            let _ = self.close(id, CloseCode::GOING_AWAY, "server shutting down");
        }
        self.release_presence().await;
    }
}
