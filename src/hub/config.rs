//! [`HubConfig`]: the queue bound, the slow-consumer policy, the abuse
//! limits and keepalive, set once per hub.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::history::{notice_message, HistoryConfig, NoticeFormat, RoomNotice, StampFormat};
use super::presence::PresenceEvent;
use super::rate::RateLimit;
use crate::ws::{CloseCode, Config, Keepalive, Message};

/// The close code a hub uses for a connection that cannot keep up
/// ([`SlowPolicy::Close`]): 1013 *Try Again Later*. The client did nothing
/// wrong by the protocol; it is told to come back (and resume) later.
pub const SLOW_CONSUMER_CLOSE: CloseCode = CloseCode::TRY_AGAIN_LATER;

/// The close code for a connection whose inbound rate stays over its limit
/// ([`RateLimit`]): 1008 *Policy Violation*.
pub const RATE_LIMIT_CLOSE: CloseCode = CloseCode::POLICY_VIOLATION;

/// What a hub does when a connection's outgoing queue is full (its client
/// reads slower than the hub sends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowPolicy {
    /// Drop the message that does not fit (the newest) and count it. When
    /// the connection has caught up (its queue drained), it is sent the
    /// [`HubConfig::missed_message`] with how many it missed, once per
    /// episode. Memory stays at the bound; the connection stays open.
    DropNewest,
    /// Close the connection with [`SLOW_CONSUMER_CLOSE`] (1013): its queue
    /// is freed at once, the close frame is sent if the socket takes it
    /// within [`HubConfig::close_grace`], and the connection is then
    /// dropped either way.
    Close,
}

/// Builds the message a presence event is announced with to a room's
/// members (`None`: not announced).
pub type PresenceFormat = Arc<dyn Fn(&PresenceEvent) -> Option<Message> + Send + Sync>;

/// Builds the notice a connection gets after it missed `n` messages.
pub type MissedFormat = Arc<dyn Fn(u64) -> Message + Send + Sync>;

/// The settings of a [`Hub`](super::Hub). `HubConfig::default()`:
///
/// | setting | default |
/// |---|---|
/// | `max_queue_bytes` | 256 KiB per connection |
/// | `policy` | [`SlowPolicy::DropNewest`] |
/// | `max_rooms_per_conn` | 64 |
/// | `rate_limit` | none |
/// | `keepalive` | none |
/// | `close_grace` | 1 s |
/// | `presence_format` | none (events are counted, not announced) |
/// | `missed_message` | text `{"type":"missed","content":N}` |
/// | `history` | none (no room keeps history) |
/// | `stamp` | none (a stored message's frame is the message as sent) |
/// | `room_notice` | [`notice_message`](super::notice_message) (JSON `reset` / `joined` envelopes) |
///
/// ```
/// use rtwire::hub::{HubConfig, RateLimit, SlowPolicy};
/// let c = HubConfig::default()
///     .max_queue_bytes(64 * 1024)
///     .policy(SlowPolicy::Close)
///     .rate_limit(RateLimit::new(50.0, 64_000.0));
/// assert_eq!(c.policy, SlowPolicy::Close);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// Bytes of encoded frames one connection may have waiting in the hub
    /// (the socket's own write buffer, `ws::Config::write_buffer_high_water`,
    /// comes on top). The hub's own notices and close frames are not
    /// counted and never dropped.
    pub max_queue_bytes: usize,
    /// What happens when a frame does not fit.
    pub policy: SlowPolicy,
    /// Most rooms one connection may be in.
    pub max_rooms_per_conn: usize,
    /// The inbound limit each connection gets (checked by
    /// [`Hub::inbound`](super::Hub::inbound)).
    pub rate_limit: Option<RateLimit>,
    /// Keepalive for every connection of the hub, applied by
    /// [`conn_config`](Self::conn_config).
    pub keepalive: Option<Keepalive>,
    /// How long a closing connection may take to get its close frame out.
    pub close_grace: Duration,
    /// How presence events are announced to the room.
    pub presence_format: Option<PresenceFormat>,
    /// The notice after missed messages ([`SlowPolicy::DropNewest`]).
    pub missed_message: MissedFormat,
    /// Batched fan-out (default off): `broadcast` queues the message in
    /// one hub-wide queue and returns; a task per hub delivers what has
    /// queued, consecutive messages to one room as one push per member.
    /// For rooms of thousands with messages in bursts; see the
    /// [batched fan-out notes](super#batched-fan-out).
    pub batch_broadcasts: bool,
    /// Which rooms keep a history of their messages, and its bounds
    /// (`None`: none). A room with history stores each message before it
    /// is delivered, so each has a position; a member that reconnects
    /// joins with [`JoinFrom::Since`](super::JoinFrom::Since) and gets
    /// what it missed. See [`Hub::join_with`](super::Hub::join_with).
    pub history: Option<HistoryConfig>,
    /// How a stored message carries its position to the client: called
    /// once per message per instance (and per replayed message) with its
    /// position. `None`: the message goes as sent, and the application
    /// learns positions from [`Hub::publish`](super::Hub::publish) and
    /// [`Hub::history`](super::Hub::history). The envelope protocol sets
    /// [`stamp_json_id`](super::stamp_json_id) (an `"id"` field).
    pub stamp: Option<StampFormat>,
    /// How the hub's notices to members of rooms with history are sent
    /// (`None`: not sent).
    pub room_notice: Option<NoticeFormat>,
}

impl fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubConfig")
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("policy", &self.policy)
            .field("max_rooms_per_conn", &self.max_rooms_per_conn)
            .field("rate_limit", &self.rate_limit)
            .field("keepalive", &self.keepalive)
            .field("close_grace", &self.close_grace)
            .field("batch_broadcasts", &self.batch_broadcasts)
            .field("history", &self.history)
            .finish_non_exhaustive()
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            max_queue_bytes: 256 * 1024,
            policy: SlowPolicy::DropNewest,
            max_rooms_per_conn: 64,
            rate_limit: None,
            keepalive: None,
            close_grace: Duration::from_secs(1),
            presence_format: None,
            missed_message: Arc::new(|n| {
                Message::text(format!("{{\"type\":\"missed\",\"content\":{n}}}"))
            }),
            batch_broadcasts: false,
            history: None,
            stamp: None,
            room_notice: Some(Arc::new(notice_message)),
        }
    }
}

impl HubConfig {
    /// Sets [`max_queue_bytes`](Self::max_queue_bytes) (at least 1).
    pub fn max_queue_bytes(mut self, n: usize) -> Self {
        self.max_queue_bytes = n.max(1);
        self
    }
    /// Sets [`policy`](Self::policy).
    pub fn policy(mut self, p: SlowPolicy) -> Self {
        self.policy = p;
        self
    }
    /// Sets [`max_rooms_per_conn`](Self::max_rooms_per_conn).
    pub fn max_rooms_per_conn(mut self, n: usize) -> Self {
        self.max_rooms_per_conn = n;
        self
    }
    /// Sets [`rate_limit`](Self::rate_limit).
    pub fn rate_limit(mut self, r: RateLimit) -> Self {
        self.rate_limit = Some(r);
        self
    }
    /// Keepalive pings every `interval` of quiet; a peer silent for
    /// `timeout` is failed (close 1011).
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        let c = Config::builder().keepalive(interval, timeout).build();
        self.keepalive = c.keepalive;
        self
    }
    /// Keepalive with an application message instead of pings (the seeds'
    /// `StartKeepalive` with a message).
    pub fn keepalive_message(mut self, interval: Duration, timeout: Duration, m: Message) -> Self {
        let c = Config::builder()
            .keepalive_message(interval, timeout, m)
            .build();
        self.keepalive = c.keepalive;
        self
    }

    /// Sets [`batch_broadcasts`](Self::batch_broadcasts).
    ///
    /// ```
    /// let c = rtwire::hub::HubConfig::default().batch_broadcasts(true);
    /// assert!(c.batch_broadcasts);
    /// ```
    pub fn batch_broadcasts(mut self, on: bool) -> Self {
        self.batch_broadcasts = on;
        self
    }

    /// Sets [`history`](Self::history).
    pub fn history(mut self, h: HistoryConfig) -> Self {
        self.history = Some(h);
        self
    }

    /// Sets [`stamp`](Self::stamp).
    pub fn stamp<F>(mut self, f: F) -> Self
    where
        F: Fn(crate::pubsub::Position, &Message) -> Message + Send + Sync + 'static,
    {
        self.stamp = Some(Arc::new(f));
        self
    }

    /// Sets [`room_notice`](Self::room_notice).
    pub fn room_notice<F>(mut self, f: F) -> Self
    where
        F: Fn(&RoomNotice<'_>) -> Option<Message> + Send + Sync + 'static,
    {
        self.room_notice = Some(Arc::new(f));
        self
    }

    /// Sets [`close_grace`](Self::close_grace).
    pub fn close_grace(mut self, t: Duration) -> Self {
        self.close_grace = t;
        self
    }
    /// Sets [`presence_format`](Self::presence_format).
    pub fn presence_format<F>(mut self, f: F) -> Self
    where
        F: Fn(&PresenceEvent) -> Option<Message> + Send + Sync + 'static,
    {
        self.presence_format = Some(Arc::new(f));
        self
    }
    /// Sets [`missed_message`](Self::missed_message).
    pub fn missed_message<F>(mut self, f: F) -> Self
    where
        F: Fn(u64) -> Message + Send + Sync + 'static,
    {
        self.missed_message = Arc::new(f);
        self
    }

    /// `base` with this hub's keepalive: accept connections with it, so
    /// keepalive is configured once, on the hub.
    pub fn conn_config(&self, base: &Config) -> Config {
        let mut c = base.clone();
        if self.keepalive.is_some() {
            c.keepalive = self.keepalive.clone();
        }
        c
    }
}
