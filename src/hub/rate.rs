//! The inbound limit: token buckets for messages and bytes per second,
//! sans-IO (the caller passes the time), and what to do over it.

use std::time::Duration;

use tokio::time::Instant;

/// A per-connection inbound limit: `messages` per second and `bytes` per
/// second, each a token bucket that holds one second's worth (the burst).
///
/// A message over either bucket is **rejected** (the application answers
/// with an error and drops it: [`Inbound::Reject`]). A connection that keeps
/// going — more than `max_violations` rejected messages within
/// `violation_window` — is to be **closed** with 1008
/// ([`RATE_LIMIT_CLOSE`](super::RATE_LIMIT_CLOSE), [`Inbound::Close`]).
///
/// ```
/// use rtwire::hub::{Inbound, RateLimit, RateLimiter};
/// use tokio::time::Instant;
/// let mut rl = RateLimiter::new(RateLimit::new(2.0, 1e6).max_violations(1));
/// let t = Instant::now();
/// assert_eq!(rl.check(t, 10), Inbound::Accept);
/// assert_eq!(rl.check(t, 10), Inbound::Accept);
/// assert_eq!(rl.check(t, 10), Inbound::Reject); // the burst is spent
/// assert_eq!(rl.check(t, 10), Inbound::Close); // and it persists
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Messages per second (and the burst).
    pub messages: f64,
    /// Payload bytes per second (and the burst).
    pub bytes: f64,
    /// Rejected messages tolerated within `violation_window`. Default 10.
    pub max_violations: u32,
    /// The window for `max_violations`. Default 10 s.
    pub violation_window: Duration,
}

impl RateLimit {
    /// `messages`/s and `bytes`/s, with the default violation rule.
    pub fn new(messages: f64, bytes: f64) -> Self {
        RateLimit {
            messages: messages.max(0.0),
            bytes: bytes.max(0.0),
            max_violations: 10,
            violation_window: Duration::from_secs(10),
        }
    }
    /// Sets [`max_violations`](Self::max_violations).
    pub fn max_violations(mut self, n: u32) -> Self {
        self.max_violations = n;
        self
    }
    /// Sets [`violation_window`](Self::violation_window).
    pub fn violation_window(mut self, t: Duration) -> Self {
        self.violation_window = t;
        self
    }
}

/// The verdict on one inbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// Within the limit: handle it.
    Accept,
    /// Over the limit: drop it and answer with an error.
    Reject,
    /// Over the limit for too long: close the connection with 1008.
    Close,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    rate: f64,
    level: f64,
}

impl Bucket {
    fn new(rate: f64) -> Self {
        Bucket { rate, level: rate }
    }
    fn refill(&mut self, secs: f64) {
        self.level = (self.level + self.rate * secs).min(self.rate);
    }
}

/// One connection's [`RateLimit`] state.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    msgs: Bucket,
    bytes: Bucket,
    /// Violations tolerated: a bucket of `max_violations` refilled over
    /// `violation_window`.
    strikes: Bucket,
    strikes_cap: f64,
    last: Option<Instant>,
}

impl RateLimiter {
    /// A full limiter.
    pub fn new(limit: RateLimit) -> Self {
        let cap = limit.max_violations as f64;
        let window = limit.violation_window.as_secs_f64().max(1e-3);
        RateLimiter {
            limit,
            msgs: Bucket::new(limit.messages),
            bytes: Bucket::new(limit.bytes),
            strikes: Bucket {
                rate: cap / window,
                level: cap,
            },
            strikes_cap: cap,
            last: None,
        }
    }

    /// The limit.
    pub fn limit(&self) -> &RateLimit {
        &self.limit
    }

    /// Charges one message of `len` bytes arriving at `now`.
    pub fn check(&mut self, now: Instant, len: usize) -> Inbound {
        if let Some(last) = self.last {
            let secs = now.saturating_duration_since(last).as_secs_f64();
            self.msgs.refill(secs);
            self.bytes.refill(secs);
            self.strikes.level =
                (self.strikes.level + self.strikes.rate * secs).min(self.strikes_cap);
        }
        self.last = Some(now);
        let len = len as f64;
        // A message larger than a whole second's bytes can still pass once
        // the bucket is full (the frame size limit bounds it), so a
        // legitimate large message is not rejected forever.
        let bytes_ok = self.bytes.level >= len || self.bytes.level >= self.bytes.rate;
        if self.msgs.level >= 1.0 && bytes_ok {
            self.msgs.level -= 1.0;
            self.bytes.level -= len;
            return Inbound::Accept;
        }
        if self.strikes.level >= 1.0 {
            self.strikes.level -= 1.0;
            Inbound::Reject
        } else {
            Inbound::Close
        }
    }
}
