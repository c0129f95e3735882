//! [`ManagerConfig`]: the manager's settings and their defaults.

use std::time::Duration;

#[allow(unused_imports)] // rustdoc links
use super::{Handler, Manager, ManagerError};

/// The manager's settings.
///
/// | field | default | |
/// |---|---|---|
/// | `instance_id` | `rtwire-<pid>-<random>` | names this node (generated client ids start with it) |
/// | `max_connections` | 10,000 | local subscribers at once; more get [`ManagerError::TooManyConnections`] (503) |
/// | `client_buffer` | 256 events | each subscriber's queue |
/// | `replay_limit` | 1,000 events | the most a resume replays; more missed is a `reset` |
/// | `drop_on_backpressure` | `false` | full queue: disconnect (`false`) or drop and tell (`true`) |
/// | `heartbeat_interval` | 15 s | keepalive comment on an idle stream ([`Handler`]) |
/// | `default_retry` | 3,000 ms | `retry:` sent at the start of a stream ([`Handler`]) |
/// | `shutdown_timeout` | 10 s | how long [`Manager::close`] waits for streams to end |
///
/// ```
/// use rtwire::sse::ManagerConfig;
/// let config = ManagerConfig::new()
///     .instance_id("node-a")
///     .client_buffer(64)
///     .drop_on_backpressure(true);
/// assert_eq!(config.max_connections, 10_000);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// This node's name.
    pub instance_id: String,
    /// Local subscribers at once.
    pub max_connections: usize,
    /// Events each subscriber's queue holds.
    pub client_buffer: usize,
    /// The most events one resume replays.
    pub replay_limit: usize,
    /// Full queue: drop events for that client and tell it (`true`), or
    /// disconnect it so it resumes from the store (`false`).
    pub drop_on_backpressure: bool,
    /// Keepalive comment interval of the [`Handler`]'s streams.
    pub heartbeat_interval: Option<Duration>,
    /// `retry:` (milliseconds) the [`Handler`] sends first.
    pub default_retry: Option<u64>,
    /// How long [`Manager::close`] waits for the handler's streams to end.
    pub shutdown_timeout: Duration,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            instance_id: default_instance_id(),
            max_connections: 10_000,
            client_buffer: 256,
            replay_limit: 1_000,
            drop_on_backpressure: false,
            heartbeat_interval: Some(Duration::from_secs(15)),
            default_retry: Some(3_000),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

fn default_instance_id() -> String {
    let r: u32 = rand::random();
    format!("rtwire-{}-{r:08x}", std::process::id())
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {$(
        $(#[$doc])*
        pub fn $name(mut self, v: $ty) -> Self {
            self.$name = v;
            self
        }
    )*};
}

impl ManagerConfig {
    /// The defaults (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `instance_id`.
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = id.into();
        self
    }

    setters! {
        /// Sets `max_connections`.
        max_connections: usize,
        /// Sets `client_buffer` (at least 1).
        client_buffer: usize,
        /// Sets `replay_limit`.
        replay_limit: usize,
        /// Sets `drop_on_backpressure`.
        drop_on_backpressure: bool,
        /// Sets `heartbeat_interval` (`None`: none).
        heartbeat_interval: Option<Duration>,
        /// Sets `default_retry` (`None`: none).
        default_retry: Option<u64>,
        /// Sets `shutdown_timeout`.
        shutdown_timeout: Duration,
    }
}
