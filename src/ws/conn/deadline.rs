//! One timer per connection half, allocated the first time something has to
//! wait with a deadline and moved (not re-created) after that; and the
//! bounded wait the handshake and the closing handshake use, on the same
//! timer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

use crate::ws::timer::{ThreadDeadline, Timer};

/// A lazily armed timer. A connection that never waits with a deadline
/// (no keepalive, writes that never stall) never allocates it, and no
/// timer ever sees it.
#[derive(Debug)]
pub(crate) enum Deadline {
    /// On tokio's timer.
    Tokio(Option<Pin<Box<Sleep>>>),
    /// On rtwire's timer thread.
    /// Boxed: the registration is about 40 bytes, which every connection on
    /// tokio's timer (the default) would carry unused.
    Thread(Box<ThreadDeadline>),
}

impl Deadline {
    /// An unarmed deadline on `timer`.
    pub(crate) fn new(timer: Timer) -> Self {
        match timer {
            Timer::Tokio => Deadline::Tokio(None),
            Timer::Thread => Deadline::Thread(Box::default()),
        }
    }

    /// The current time on this deadline's clock (see [`Timer`]).
    pub(crate) fn now(&self) -> Instant {
        match self {
            Deadline::Tokio(_) => Timer::Tokio.now(),
            Deadline::Thread(_) => Timer::Thread.now(),
        }
    }

    /// Polls a timer firing at `at`, registering the task's waker.
    pub(crate) fn poll_at(&mut self, cx: &mut Context<'_>, at: Instant) -> Poll<()> {
        match self {
            Deadline::Tokio(slot) => {
                let sleep = match slot {
                    Some(s) => {
                        if s.deadline() != at {
                            s.as_mut().reset(at);
                        }
                        s
                    }
                    None => slot.insert(Box::pin(tokio::time::sleep_until(at))),
                };
                sleep.as_mut().poll(cx)
            }
            Deadline::Thread(d) => d.poll_at(cx, at.into_std()),
        }
    }
}

/// `fut`, unless `at` comes first (then `Err(())`); no bound without `at`.
pub(crate) async fn run_until<T>(
    timer: Timer,
    at: Option<Instant>,
    fut: impl Future<Output = T>,
) -> Result<T, ()> {
    let Some(at) = at else {
        return Ok(fut.await);
    };
    let mut fut = std::pin::pin!(fut);
    let mut deadline = Deadline::new(timer);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        deadline.poll_at(cx, at).map(|()| Err(()))
    })
    .await
}
