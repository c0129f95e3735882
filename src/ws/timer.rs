//! What a connection's timeouts run on: tokio's timer, or rtwire's own
//! timer thread, which lets the runtime go without a time driver.
//!
//! tokio's time driver, once enabled, does work on *every* wake-up of the
//! runtime (it reads the clock and walks its wheel), whether or not any
//! timer is pending. A server whose only timers are rtwire's timeouts,
//! which are nearly always idle (a write timeout is armed only while a
//! write is stalled), pays for them on every message. With
//! [`Timer::Thread`] the timeouts run on one process-wide thread instead,
//! the runtime can be built with `enable_io()` alone, and an echo costs
//! about 12% fewer instructions (BENCHMARKS.md; handshakes are slower).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// The timer behind a connection's timeouts (handshake, write, close,
/// keepalive). Set with [`ConfigBuilder::timer`](super::ConfigBuilder::timer).
///
/// ```
/// use rtwire::ws::{Config, Timer};
/// // A runtime with no time driver: the timeouts still hold.
/// let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
/// let config = Config::builder().timer(Timer::Thread).build();
/// # let _ = (rt, config);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timer {
    /// tokio's timer: the runtime needs its time driver (`enable_time` or
    /// `enable_all`), and timeouts follow `tokio::time::pause`.
    #[default]
    Tokio,
    /// rtwire's own timer: one thread per process, started when a
    /// connection first waits with a deadline. The runtime needs no time
    /// driver. It keeps real time: it does not follow tokio's paused
    /// clock. (The hub and the SSE manager use tokio's timer regardless.)
    ///
    /// Measured (BENCHMARKS.md, 2026-12-02): 12% fewer instructions per
    /// echoed message, but a lower handshake rate than [`Timer::Tokio`]
    /// (27-29k against 43-49k handshakes/s on one core), cause not found.
    Thread,
}

impl Timer {
    /// The current time on this timer's clock: tokio's (which a paused
    /// runtime holds still) or the real one. Every deadline a connection
    /// computes comes from here, so it is compared with the clock that
    /// fires it.
    pub(crate) fn now(self) -> tokio::time::Instant {
        match self {
            Timer::Tokio => tokio::time::Instant::now(),
            Timer::Thread => tokio::time::Instant::from_std(Instant::now()),
        }
    }
}

/// How long the thread sleeps when no deadline is pending.
const IDLE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Deadlines waiting on the timer thread.
#[derive(Default)]
struct Wheel {
    /// Wake-up times, earliest first; an entry whose time no longer matches
    /// its registration's is stale and skipped.
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Live registrations: when, and whom to wake.
    live: HashMap<u64, (Instant, Waker)>,
    next_id: u64,
    /// When the thread will next look at the heap (`None`: not started).
    sleeping_until: Option<Instant>,
    started: bool,
}

struct Shared {
    wheel: Mutex<Wheel>,
    wake: Condvar,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| Shared {
        wheel: Mutex::new(Wheel::default()),
        wake: Condvar::new(),
    })
}

fn lock(s: &Shared) -> MutexGuard<'_, Wheel> {
    // A waker that panicked while the lock was held cannot leave the heap
    // in a state worse than a missed wake-up: keep going.
    s.wheel.lock().unwrap_or_else(|e| e.into_inner())
}

impl Wheel {
    /// Drops stale heap entries (registrations dropped or moved) once they
    /// outnumber the live ones: the heap stays proportional to the
    /// deadlines actually pending, however many come and go.
    fn prune(&mut self) {
        if self.heap.len() > 2 * self.live.len() + 1024 {
            self.heap = self
                .live
                .iter()
                .map(|(id, (at, _))| Reverse((*at, *id)))
                .collect();
        }
    }
}

fn run(s: &'static Shared) {
    let mut w = lock(s);
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(&Reverse((at, id))) = w.heap.peek() {
            if at > now {
                break;
            }
            w.heap.pop();
            if w.live.get(&id).is_some_and(|(t, _)| *t == at) {
                if let Some((_, waker)) = w.live.remove(&id) {
                    due.push(waker);
                }
            }
        }
        // With nothing pending the thread still looks again after
        // IDLE_TICK, so a new deadline later than that (a 10 s handshake
        // timeout, say) needs no notify: registering costs no futex wake
        // of this thread and no context switch.
        let next = w
            .heap
            .peek()
            .map_or(now + IDLE_TICK, |Reverse((at, _))| *at);
        w.sleeping_until = Some(next);
        if !due.is_empty() {
            drop(w);
            for waker in due {
                // A waker that panics (a foreign executor's) must not take
                // the thread, and every timeout in the process, with it.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake()));
            }
            w = lock(s);
            continue;
        }
        let d = next.saturating_duration_since(now);
        w = s
            .wake
            .wait_timeout(w, d)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// One connection half's registration with the timer thread. Lazy: a
/// deadline that moves later keeps the earlier registration (the wake-up
/// then finds it not yet due and registers again), so a keepalive deadline
/// pushed back by every message costs no lock per message.
#[derive(Debug, Default)]
pub(crate) struct ThreadDeadline {
    id: Option<u64>,
    /// When the thread will wake us, and the waker it holds.
    registered: Option<(Instant, Waker)>,
}

impl ThreadDeadline {
    /// Polls a deadline at `at`.
    pub(crate) fn poll_at(&mut self, cx: &mut Context<'_>, at: Instant) -> Poll<()> {
        let now = Instant::now();
        if now >= at {
            return Poll::Ready(());
        }
        if let Some((r, waker)) = &self.registered {
            // Still pending (`r > now`: not fired yet), early enough, and
            // for this task.
            if *r > now && *r <= at && waker.will_wake(cx.waker()) {
                return Poll::Pending;
            }
        }
        let s = shared();
        let mut w = lock(s);
        if !w.started {
            let spawned = std::thread::Builder::new()
                .name("rtwire-timer".into())
                .spawn(move || run(s));
            if spawned.is_err() {
                // No thread: the deadline cannot fire. Treat it as due now
                // rather than wait forever.
                return Poll::Ready(());
            }
            w.started = true;
        }
        let id = *self.id.get_or_insert_with(|| {
            w.next_id += 1;
            w.next_id
        });
        w.live.insert(id, (at, cx.waker().clone()));
        w.heap.push(Reverse((at, id)));
        w.prune();
        if w.sleeping_until.is_none_or(|t| at < t) {
            w.sleeping_until = Some(at);
            s.wake.notify_one();
        }
        drop(w);
        self.registered = Some((at, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for ThreadDeadline {
    fn drop(&mut self) {
        // Nothing to remove unless registered and not yet fired.
        if let (Some(id), Some((r, _))) = (self.id, &self.registered) {
            if *r > Instant::now() {
                let mut w = lock(shared());
                w.live.remove(&id);
                w.prune();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Nop;
    impl Wake for Nop {
        fn wake(self: Arc<Self>) {}
    }

    #[test]
    fn dropped_registrations_do_not_pile_up_in_the_heap() {
        let waker = Waker::from(Arc::new(Nop));
        let mut cx = Context::from_waker(&waker);
        let far = Instant::now() + std::time::Duration::from_secs(3600);
        for _ in 0..20_000 {
            let mut d = ThreadDeadline::default();
            assert!(d.poll_at(&mut cx, far).is_pending());
        }
        let w = lock(shared());
        assert!(
            w.heap.len() <= 2 * w.live.len() + 1025,
            "heap {} for {} live",
            w.heap.len(),
            w.live.len()
        );
    }

    #[test]
    fn a_deadline_moved_later_keeps_its_registration() {
        let waker = Waker::from(Arc::new(Nop));
        let mut cx = Context::from_waker(&waker);
        let at = Instant::now() + std::time::Duration::from_secs(3600);
        let mut d = ThreadDeadline::default();
        assert!(d.poll_at(&mut cx, at).is_pending());
        let first = d.registered.as_ref().map(|(r, _)| *r);
        assert!(d
            .poll_at(&mut cx, at + std::time::Duration::from_secs(1))
            .is_pending());
        assert_eq!(d.registered.as_ref().map(|(r, _)| *r), first);
        // Earlier: registered again.
        let earlier = at - std::time::Duration::from_secs(1);
        assert!(d.poll_at(&mut cx, earlier).is_pending());
        assert_eq!(d.registered.as_ref().map(|(r, _)| *r), Some(earlier));
    }
}
