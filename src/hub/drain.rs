//! Draining an instance for a deploy: [`Hub::drain`].

use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::RngExt as _;

use super::conn::ConnId;
use super::Hub;
use crate::ws::CloseCode;

/// The close code of a drain: 1012 *Service Restart*. A client that gets
/// it reconnects (to any instance) and resumes; it did nothing wrong.
pub const DRAIN_CLOSE: CloseCode = CloseCode::SERVICE_RESTART;

/// What [`Hub::drain`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Drained {
    /// Connections asked to close with [`DRAIN_CLOSE`].
    pub closed: usize,
    /// Connections still registered when the drain gave up waiting for
    /// them (their close did not finish within the deadline and
    /// [`close_grace`](super::HubConfig::close_grace)).
    pub left: usize,
}

/// When each of `n` closes goes out within `deadline`: `n` offsets drawn
/// uniformly from `[0, deadline)`, sorted, so reconnects reach the other
/// instances spread over the deadline rather than all at once.
pub(crate) fn schedule(n: usize, deadline: Duration, rng: &mut impl rand::RngExt) -> Vec<Duration> {
    let ns = deadline.as_nanos().min(u64::MAX as u128) as u64;
    let mut v: Vec<Duration> = (0..n)
        .map(|_| Duration::from_nanos(if ns == 0 { 0 } else { rng.random_range(0..ns) }))
        .collect();
    v.sort_unstable();
    v
}

impl Hub {
    /// Drains this instance for a deploy or a restart: from now on a new
    /// registration is closed at once with [`DRAIN_CLOSE`] (1012), and every
    /// registered connection is closed with it at a random moment within
    /// `deadline` (uniform, so their reconnects spread over it instead of
    /// hitting the other instances at once), each after what is already
    /// queued for it has been written. Then this instance's presence is
    /// given up at once (with shared presence, the other instances announce
    /// its users' leaves now, not at the lease's end). Returns once every
    /// connection is gone, or `deadline` +
    /// [`close_grace`](super::HubConfig::close_grace) after the start,
    /// whichever comes first.
    ///
    /// A drained client resumes on another instance from its last
    /// position with nothing lost, in the rooms with history
    /// ([`JoinFrom::Since`](super::JoinFrom::Since)).
    ///
    /// The future is `Send`: it can be spawned.
    ///
    /// ```no_run
    /// # async fn demo(hub: rtwire::hub::Hub) {
    /// // On SIGTERM:
    /// let d = hub.drain(std::time::Duration::from_secs(10)).await;
    /// eprintln!("drained {} connections, {} left", d.closed, d.left);
    /// # }
    /// ```
    pub async fn drain(&self, deadline: Duration) -> Drained {
        let start = tokio::time::Instant::now();
        let mut ids: Vec<ConnId> = {
            // Under the lock `register` checks the flag with: a connection
            // registered now is either in this list or closed at once.
            let conns = self.conns_mut();
            self.inner.draining.store(true, Ordering::Release);
            conns.keys().copied().collect()
        };
        let at = {
            // Random order: the schedule's offsets are sorted. (The RNG is
            // not `Send`: it is dropped before the first await.)
            let mut rng = rand::rng();
            for i in (1..ids.len()).rev() {
                ids.swap(i, rng.random_range(0..=i));
            }
            schedule(ids.len(), deadline, &mut rng)
        };
        let mut closed = 0;
        for (id, offset) in ids.iter().zip(at) {
            tokio::time::sleep_until(start + offset).await;
            if self.close(*id, DRAIN_CLOSE, "server restarting").is_ok() {
                closed += 1;
            }
        }
        let end = start + deadline + self.inner.config.close_grace;
        loop {
            let gone = self.inner.drained.notified();
            tokio::pin!(gone);
            gone.as_mut().enable();
            if self.conns().is_empty() {
                break;
            }
            if tokio::time::timeout_at(end, gone).await.is_err() {
                break;
            }
        }
        self.release_presence().await;
        Drained {
            closed,
            left: self.conns().len(),
        }
    }

    /// Whether [`drain`](Self::drain) was called.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Acquire)
    }

    /// Gives up this instance's presence lease now (shared presence).
    pub(crate) async fn release_presence(&self) {
        #[cfg(feature = "redis")]
        if let super::presence::Backend::Redis(r) = self.backend() {
            r.release().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spreads_closes_over_the_deadline_in_order() {
        let mut rng = rand::rng();
        let d = Duration::from_secs(10);
        let s = schedule(1000, d, &mut rng);
        assert_eq!(s.len(), 1000);
        assert!(s.windows(2).all(|w| w[0] <= w[1]));
        assert!(s.iter().all(|t| *t < d));
        // Uniform: each tenth of the deadline gets about a tenth (the
        // chance of any decile outside 50..=150 is below 1e-9).
        for k in 0..10 {
            let lo = d * k / 10;
            let hi = d * (k + 1) / 10;
            let n = s.iter().filter(|t| **t >= lo && **t < hi).count();
            assert!((50..=150).contains(&n), "decile {k}: {n}");
        }
        assert!(schedule(5, Duration::ZERO, &mut rng)
            .iter()
            .all(|t| t.is_zero()));
    }
}
