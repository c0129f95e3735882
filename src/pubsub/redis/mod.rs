//! The Redis backend (feature `redis`): one history and one fan-out for
//! many instances of a service.
//!
//! [`connect`] gives a [`RedisStore`] and a [`RedisBus`] that share a
//! command connection; the bus also has one dedicated pub/sub connection.
//!
//! ## Keys
//!
//! Every key of a channel carries the hash tag `{<channel>}` (channel
//! names cannot contain braces), so the scripts, which touch them
//! together, work on Redis Cluster too. With the default prefix `rtwire`
//! and the channel `news`:
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `rtwire:{news}:meta` | hash | `e`: the epoch (hex), `o`: the last offset, `r`: the Redis `run_id` that created it; TTL `history_ttl`, refreshed by every append and read |
//! | `rtwire:{news}:stream` | stream | one entry per publication, ID `0-<offset>`, field `d`: the [`envelope`]; `MAXLEN ~ history_size`, TTL `history_ttl` |
//! | `rtwire:{news}:idem:<key>` | string | the envelope first stored with idempotency key `<key>`; TTL `idempotency_ttl` |
//! | `rtwire:{news}` | pub/sub channel | the envelope of each publication, as it is stored |
//!
//! ## Restarts that restore a snapshot
//!
//! The run-id check runs on reads, not on every append (`INFO` would halve
//! the append rate). Every instance reads each channel it subscribes to
//! right after its pub/sub connection comes back (within `reconnect_min`
//! of the restart) and at every `sync_interval`; the first read after a
//! restart replaces the restored history with a new epoch. Appends that
//! reach the restarted server before that read may reuse offsets of the
//! lost publications: they are then discarded with that history, live
//! subscribers get [`Delivery::Reset`](crate::pubsub::Delivery::Reset) and
//! resuming clients `EpochChanged` — explicit, never a silent partial
//! replay. Without persistence (`--save '' --appendonly no`) a restart
//! loses the meta itself and the epoch changes at the first append.
//!
//! ## Scripts
//!
//! - **append** (`scripts/append.lua`), the only writer of positions: if
//!   the idempotency key is set, return its envelope; read the epoch, or
//!   create the meta with the random epoch passed in when it is missing
//!   (first publish, `FLUSHALL`, a restart without persistence, expiry),
//!   recording the server's `run_id`, and drop any stale stream; `HINCRBY` the offset; `XADD` the envelope
//!   with ID `0-<offset>` (so `XRANGE` by offset is exact) and
//!   `MAXLEN ~ history_size`; refresh the TTLs; store the idempotency key;
//!   `PUBLISH` the envelope. All in one atomic step, so positions are
//!   unique and contiguous across every instance, and what is published
//!   is what is stored.
//! - **since** (`scripts/since.lua`): the epoch (created when missing, as
//!   above, **or when it was written by another server run**: `run_id`
//!   changes at every restart, and a meta restored from an RDB/AOF
//!   snapshot may have lost writes after it, so its offsets would be handed
//!   out again to different publications; reading also refreshes the TTLs,
//!   so a quiet channel that instances subscribe to does not expire), the
//!   top offset, and, when the caller's epoch matches and at
//!   most `limit` are missing, the entries after the caller's offset; all
//!   read at one instant. [`RedisStore`] then applies the rules of
//!   [`Store::since`](crate::pubsub::Store::since): another epoch →
//!   `EpochChanged`; past the top → `Ahead`; more than `limit` missing →
//!   `OverLimit`; an entry missing (trimmed or expired) → `Evicted`.
//!
//! ## Delivery and healing
//!
//! See [`RedisBus`]: per channel the listener keeps the last position it
//! delivered; a message that is not the next one is either a duplicate
//! (dropped) or a gap, healed from the stream with `since`; a lost
//! history becomes [`Delivery::Reset`](crate::pubsub::Delivery::Reset).

mod bus;
pub mod envelope;
mod keys;
mod store;

use std::sync::Arc;
use std::time::Duration;

pub use bus::{RedisBus, RedisBusStats};
pub use store::RedisStore;

use crate::pubsub::PubSubError;

/// Settings of the Redis backend. `Default` gives the documented
/// defaults; each setter is named after its field.
///
/// ```
/// use std::time::Duration;
/// use rtwire::pubsub::redis::RedisConfig;
/// let c = RedisConfig::default()
///     .url("redis://127.0.0.1:6380/")
///     .history_size(100)
///     .op_timeout(Duration::from_millis(500));
/// assert_eq!(c.prefix, "rtwire");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The server: `redis://[user:password@]host:port[/db]`. Default
    /// `redis://127.0.0.1:6379/`.
    pub url: String,
    /// The first part of every key and channel; no `{` or `}`. Default
    /// `rtwire`.
    pub prefix: String,
    /// Publications kept per channel, at least (the stream is trimmed with
    /// `MAXLEN ~`, in whole nodes, so a few more may stay). Default 1000.
    pub history_size: usize,
    /// How long a channel's history (stream and meta) outlives its last
    /// publish; after that a position from it is `EpochChanged`. Default
    /// 1 hour.
    pub history_ttl: Duration,
    /// How long an idempotency key is remembered. Default 5 minutes.
    pub idempotency_ttl: Duration,
    /// The longest any Redis operation may take before it fails with
    /// [`PubSubError::Backend`] (publish, history, subscribe, connect).
    /// Default 2 s.
    pub op_timeout: Duration,
    /// How often the bus compares each subscribed channel's top position
    /// with the last one it delivered, and heals a gap (this bounds how
    /// late a lost message is delivered, even when the loss went
    /// unnoticed); the pub/sub connection is pinged at the same pace.
    /// Default 1 s.
    pub sync_interval: Duration,
    /// The first delay before reconnecting the pub/sub connection; it
    /// doubles after each failed attempt. Default 50 ms.
    pub reconnect_min: Duration,
    /// The longest delay between reconnection attempts. Default 5 s.
    pub reconnect_max: Duration,
    /// Deliveries buffered per local subscriber before it is
    /// [`Lagged`](crate::pubsub::Delivery::Lagged). Default 1024.
    pub subscriber_buffer: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/".into(),
            prefix: "rtwire".into(),
            history_size: 1000,
            history_ttl: Duration::from_secs(3600),
            idempotency_ttl: Duration::from_secs(300),
            op_timeout: Duration::from_secs(2),
            sync_interval: Duration::from_secs(1),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(5),
            subscriber_buffer: 1024,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        impl RedisConfig {
            $(
                $(#[$doc])*
                pub fn $name(mut self, v: $ty) -> Self {
                    self.$name = v;
                    self
                }
            )*
        }
    };
}

impl RedisConfig {
    /// Sets [`url`](RedisConfig#structfield.url).
    pub fn url(mut self, v: impl Into<String>) -> Self {
        self.url = v.into();
        self
    }

    /// Sets [`prefix`](RedisConfig#structfield.prefix).
    pub fn prefix(mut self, v: impl Into<String>) -> Self {
        self.prefix = v.into();
        self
    }
}

setters! {
    /// Sets [`history_size`](RedisConfig#structfield.history_size).
    history_size: usize;
    /// Sets [`history_ttl`](RedisConfig#structfield.history_ttl).
    history_ttl: Duration;
    /// Sets [`idempotency_ttl`](RedisConfig#structfield.idempotency_ttl).
    idempotency_ttl: Duration;
    /// Sets [`op_timeout`](RedisConfig#structfield.op_timeout).
    op_timeout: Duration;
    /// Sets [`sync_interval`](RedisConfig#structfield.sync_interval).
    sync_interval: Duration;
    /// Sets [`reconnect_min`](RedisConfig#structfield.reconnect_min).
    reconnect_min: Duration;
    /// Sets [`reconnect_max`](RedisConfig#structfield.reconnect_max).
    reconnect_max: Duration;
    /// Sets [`subscriber_buffer`](RedisConfig#structfield.subscriber_buffer).
    subscriber_buffer: usize;
}

/// Connects to Redis: a store and its bus, one instance of a service.
/// Fails with [`PubSubError::Backend`] when Redis cannot be reached within
/// `op_timeout` (both connections are made here), and with
/// [`PubSubError::InvalidField`] for a prefix with a brace.
///
/// Must be called within a tokio runtime (the bus spawns its listener).
pub async fn connect(config: RedisConfig) -> Result<(RedisStore, RedisBus), PubSubError> {
    if config.prefix.contains(['{', '}']) {
        return Err(PubSubError::InvalidField("redis prefix"));
    }
    let client = redis::Client::open(config.url.as_str()).map_err(store::backend)?;
    let t = config.op_timeout;
    let mgr = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(t))
        .set_response_timeout(Some(t))
        .set_number_of_retries(1)
        .set_max_delay(config.reconnect_max);
    let conn = store::bounded(
        t,
        "connect",
        redis::aio::ConnectionManager::new_with_config(client.clone(), mgr),
    )
    .await?;
    let core = Arc::new(store::Core::new(conn, config));
    let bus = RedisBus::start(client, core.clone()).await?;
    Ok((RedisStore::new(core), bus))
}
