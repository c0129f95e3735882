//! One timer per connection half, allocated the first time something has to
//! wait with a deadline and moved (not re-created) after that.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// A lazily armed timer. A connection that never waits with a deadline
/// (no keepalive, writes that never stall) never allocates it, and the
/// time driver never sees it.
#[derive(Debug, Default)]
pub(crate) struct Deadline {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    /// Polls a timer firing at `at`, registering the task's waker.
    pub(crate) fn poll_at(&mut self, cx: &mut Context<'_>, at: Instant) -> Poll<()> {
        let sleep = match &mut self.sleep {
            Some(s) => {
                if s.deadline() != at {
                    s.as_mut().reset(at);
                }
                s
            }
            None => self.sleep.insert(Box::pin(tokio::time::sleep_until(at))),
        };
        sleep.as_mut().poll(cx)
    }
}
