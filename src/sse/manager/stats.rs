//! The manager's counters and their snapshot ([`Stats`]), with the
//! Prometheus text form.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Relaxed atomic counters, shared by the manager, its dispatchers and
/// subscribers.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) connections_total: AtomicU64,
    pub(crate) rejected_connections: AtomicU64,
    pub(crate) publishes: AtomicU64,
    pub(crate) publish_errors: AtomicU64,
    pub(crate) deliveries: AtomicU64,
    pub(crate) drops: AtomicU64,
    pub(crate) slow_disconnects: AtomicU64,
    pub(crate) replays_caught_up: AtomicU64,
    pub(crate) replays_reset: AtomicU64,
    pub(crate) replayed_events: AtomicU64,
    pub(crate) resets_live: AtomicU64,
    pub(crate) healed: AtomicU64,
}

impl Counters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, channels: usize) -> Stats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            connections: g(&self.connections),
            connections_total: g(&self.connections_total),
            rejected_connections: g(&self.rejected_connections),
            channels: channels as u64,
            publishes: g(&self.publishes),
            publish_errors: g(&self.publish_errors),
            deliveries: g(&self.deliveries),
            drops: g(&self.drops),
            slow_disconnects: g(&self.slow_disconnects),
            replays_caught_up: g(&self.replays_caught_up),
            replays_reset: g(&self.replays_reset),
            replayed_events: g(&self.replayed_events),
            live_resets: g(&self.resets_live),
            healed: g(&self.healed),
        }
    }
}

/// A snapshot of the manager's counters ([`Manager::stats`](super::Manager::stats)).
///
/// Every field but `connections` and `channels` only grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Subscribers now.
    pub connections: u64,
    /// Subscribers ever accepted.
    pub connections_total: u64,
    /// Subscribes refused because `max_connections` were connected.
    pub rejected_connections: u64,
    /// Channels with a local subscriber now.
    pub channels: u64,
    /// Publications stored through this manager.
    pub publishes: u64,
    /// Publishes that failed (nothing stored).
    pub publish_errors: u64,
    /// Events queued to local subscribers (one per subscriber per event).
    pub deliveries: u64,
    /// Events dropped for full queues (`drop_on_backpressure` on).
    pub drops: u64,
    /// Subscribers disconnected for a full queue (`drop_on_backpressure` off).
    pub slow_disconnects: u64,
    /// Subscribes with a `Last-Event-ID` that were caught up from the store.
    pub replays_caught_up: u64,
    /// Subscribes with a `Last-Event-ID` that could not be caught up (they
    /// got a `reset` event).
    pub replays_reset: u64,
    /// Events sent from the store in replays.
    pub replayed_events: u64,
    /// `reset` events sent to live subscribers (the bus lost deliveries the
    /// store could not fill in).
    pub live_resets: u64,
    /// Events the dispatchers fetched from the store after the bus lagged.
    pub healed: u64,
}

impl Stats {
    /// Appends the counters in the Prometheus text exposition format, each
    /// metric named `rtwire_sse_<field>` (counters end in `_total`).
    ///
    /// ```
    /// let mut out = String::new();
    /// rtwire::sse::Stats::default().write_prometheus(&mut out);
    /// assert!(out.contains("rtwire_sse_connections 0\n"));
    /// assert!(out.contains("# TYPE rtwire_sse_deliveries_total counter\n"));
    /// ```
    pub fn write_prometheus(&self, out: &mut String) {
        let gauges = [
            ("connections", self.connections, "SSE subscribers now"),
            (
                "channels",
                self.channels,
                "channels with a local subscriber",
            ),
        ];
        let counters = [
            (
                "connections",
                self.connections_total,
                "SSE subscribers accepted",
            ),
            (
                "rejected_connections",
                self.rejected_connections,
                "subscribes refused at max_connections",
            ),
            ("publishes", self.publishes, "publications stored"),
            (
                "publish_errors",
                self.publish_errors,
                "publishes that failed",
            ),
            (
                "deliveries",
                self.deliveries,
                "events queued to subscribers",
            ),
            ("drops", self.drops, "events dropped for full queues"),
            (
                "slow_disconnects",
                self.slow_disconnects,
                "subscribers disconnected for a full queue",
            ),
            (
                "replays_caught_up",
                self.replays_caught_up,
                "resumes caught up from the store",
            ),
            (
                "replays_reset",
                self.replays_reset,
                "resumes answered with a reset event",
            ),
            (
                "replayed_events",
                self.replayed_events,
                "events sent in replays",
            ),
            (
                "live_resets",
                self.live_resets,
                "reset events sent to live subscribers",
            ),
            (
                "healed",
                self.healed,
                "events fetched from the store after the bus lagged",
            ),
        ];
        for (name, v, help) in gauges {
            let _ = write!(
                out,
                "# HELP rtwire_sse_{name} {help}\n# TYPE rtwire_sse_{name} gauge\nrtwire_sse_{name} {v}\n"
            );
        }
        for (name, v, help) in counters {
            let _ = write!(
                out,
                "# HELP rtwire_sse_{name}_total {help}\n# TYPE rtwire_sse_{name}_total counter\nrtwire_sse_{name}_total {v}\n"
            );
        }
    }
}
