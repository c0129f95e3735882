//! The hub's counters: relaxed atomics, read as one cheap snapshot.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a hub's counters ([`Hub::stats`](super::Hub::stats)).
/// Counters count since the hub started; gauges are the value now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Gauge: registered connections.
    pub connections: u64,
    /// Gauge: rooms with at least one local member.
    pub rooms: u64,
    /// Gauge: bytes waiting in the hub's per-connection queues.
    pub queued_bytes: u64,
    /// Inbound messages checked with [`Hub::inbound`](super::Hub::inbound).
    pub messages_in: u64,
    /// Messages the hub was asked to send: one per `send`, `broadcast`
    /// or `broadcast_all` (and per message from another instance).
    pub messages_out: u64,
    /// Frames queued for a connection (one per recipient).
    pub deliveries: u64,
    /// Frames dropped because a connection's queue was full
    /// ([`SlowPolicy::DropNewest`](super::SlowPolicy::DropNewest)).
    pub drops: u64,
    /// Connections closed because their queue was full
    /// ([`SlowPolicy::Close`](super::SlowPolicy::Close)).
    pub slow_closes: u64,
    /// Inbound messages rejected by the rate limit.
    pub rate_limited: u64,
    /// Connections closed because their rate stayed over the limit.
    pub rate_limit_closes: u64,
    /// Presence joins announced (a user's first connection in a room).
    pub presence_joins: u64,
    /// Presence leaves announced (a user's last connection left, or its
    /// instance's lease expired).
    pub presence_leaves: u64,
    /// Messages published to other instances.
    pub bus_published: u64,
    /// Messages received from other instances.
    pub bus_received: u64,
    /// Bus or presence-backend operations that failed.
    pub bus_errors: u64,
    /// Compressed encodings made for broadcasts (permessage-deflate, feature
    /// `deflate`): one per message per distinct window among the members
    /// that share one, however many they are.
    pub broadcast_compressions: u64,
    /// Messages stored in a room's history ([`Hub::publish`](super::Hub::publish)).
    pub history_appends: u64,
    /// Joins told that what they missed cannot be given (a reset notice).
    pub resume_resets: u64,
}

impl HubStats {
    /// Appends the snapshot in the Prometheus text format, each metric
    /// named `{prefix}_{field}` (`_total` for counters).
    ///
    /// ```
    /// let mut out = String::new();
    /// rtwire::hub::HubStats::default().write_prometheus("rtwire_hub", &mut out);
    /// assert!(out.contains("rtwire_hub_connections 0\n"));
    /// assert!(out.contains("rtwire_hub_drops_total 0\n"));
    /// ```
    pub fn write_prometheus(&self, prefix: &str, out: &mut String) {
        let gauges = [
            ("connections", self.connections, "Registered connections."),
            ("rooms", self.rooms, "Rooms with local members."),
            (
                "queued_bytes",
                self.queued_bytes,
                "Bytes waiting in hub queues.",
            ),
        ];
        for (name, v, help) in gauges {
            let _ = write!(
                out,
                "# HELP {prefix}_{name} {help}\n# TYPE {prefix}_{name} gauge\n{prefix}_{name} {v}\n"
            );
        }
        let counters = [
            ("messages_in", self.messages_in, "Inbound messages."),
            (
                "messages_out",
                self.messages_out,
                "Messages sent or broadcast.",
            ),
            (
                "deliveries",
                self.deliveries,
                "Frames queued for connections.",
            ),
            ("drops", self.drops, "Frames dropped for slow consumers."),
            ("slow_closes", self.slow_closes, "Slow consumers closed."),
            (
                "rate_limited",
                self.rate_limited,
                "Inbound messages rejected by the rate limit.",
            ),
            (
                "rate_limit_closes",
                self.rate_limit_closes,
                "Connections closed by the rate limit.",
            ),
            ("presence_joins", self.presence_joins, "Presence joins."),
            ("presence_leaves", self.presence_leaves, "Presence leaves."),
            (
                "bus_published",
                self.bus_published,
                "Messages published to other instances.",
            ),
            (
                "bus_received",
                self.bus_received,
                "Messages received from other instances.",
            ),
            (
                "bus_errors",
                self.bus_errors,
                "Failed bus or presence operations.",
            ),
            (
                "broadcast_compressions",
                self.broadcast_compressions,
                "Compressed encodings made for broadcasts.",
            ),
            (
                "history_appends",
                self.history_appends,
                "Messages stored in room histories.",
            ),
            (
                "resume_resets",
                self.resume_resets,
                "Joins told their missed messages cannot be given.",
            ),
        ];
        for (name, v, help) in counters {
            let _ = write!(
                out,
                "# HELP {prefix}_{name}_total {help}\n# TYPE {prefix}_{name}_total counter\n{prefix}_{name}_total {v}\n"
            );
        }
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) deliveries: AtomicU64,
    pub(crate) drops: AtomicU64,
    pub(crate) slow_closes: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) rate_limit_closes: AtomicU64,
    pub(crate) presence_joins: AtomicU64,
    pub(crate) presence_leaves: AtomicU64,
    pub(crate) bus_published: AtomicU64,
    pub(crate) bus_received: AtomicU64,
    pub(crate) bus_errors: AtomicU64,
    pub(crate) broadcast_compressions: AtomicU64,
    pub(crate) history_appends: AtomicU64,
    pub(crate) resume_resets: AtomicU64,
}

/// Adds `n` to a counter.
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self, rooms: u64, queued_bytes: u64) -> HubStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        HubStats {
            connections: g(&self.connections),
            rooms,
            queued_bytes,
            messages_in: g(&self.messages_in),
            messages_out: g(&self.messages_out),
            deliveries: g(&self.deliveries),
            drops: g(&self.drops),
            slow_closes: g(&self.slow_closes),
            rate_limited: g(&self.rate_limited),
            rate_limit_closes: g(&self.rate_limit_closes),
            presence_joins: g(&self.presence_joins),
            presence_leaves: g(&self.presence_leaves),
            bus_published: g(&self.bus_published),
            bus_received: g(&self.bus_received),
            bus_errors: g(&self.bus_errors),
            history_appends: g(&self.history_appends),
            resume_resets: g(&self.resume_resets),
            broadcast_compressions: g(&self.broadcast_compressions),
        }
    }
}
