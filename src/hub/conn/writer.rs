//! The writer task of one connection: drains its queue into its
//! [`WriteHalf`], one flush per burst, until it is unregistered, fails or
//! is closed by a policy.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{lock, Item, Slot, KEEP_TAIL_CAPACITY};
use crate::hub::Hub;
use crate::ws::{CloseCode, WriteHalf};

enum Step {
    Wait,
    /// This many bytes were moved into the writer's batch.
    Batch(usize),
    Notice(u64),
    Close(CloseCode, &'static str),
    Done,
}

impl Slot {
    /// Credits the `fed` bytes of the previous batch (handed to the
    /// socket's queue), then swaps everything queued into `batch` and
    /// `tail` (both empty; the queue keeps their capacity for the next
    /// burst).
    fn next_step(&self, fed: usize, batch: &mut VecDeque<Item>, tail: &mut BytesMut) -> Step {
        let mut o = lock(&self.out);
        o.in_flight = o.in_flight.saturating_sub(fed);
        if o.wants_room && (fed > 0 || o.shut) {
            o.wants_room = false;
            self.room.notify_waiters();
        }
        if o.done {
            return Step::Done;
        }
        if o.bytes == 0 {
            if let Some((code, reason)) = o.close {
                return Step::Close(code, reason);
            }
            if o.missed > 0 {
                return Step::Notice(std::mem::take(&mut o.missed));
            }
            return Step::Wait;
        }
        let n = o.bytes;
        o.bytes = 0;
        o.in_flight += n;
        std::mem::swap(&mut o.items, batch);
        std::mem::swap(&mut o.tail, tail);
        Step::Batch(n)
    }
}

/// Drains `slot` into `w` until the connection is unregistered, fails, or
/// is closed by a policy; then unregisters it from the hub.
// An `async move` block, not an `async fn`: rustc keeps an `async fn`'s
// by-value arguments in its future apart from the locals they move into,
// which would hold the write half twice.
#[allow(clippy::manual_async_fn)]
pub(crate) fn run_writer<S>(
    hub: Hub,
    slot: Arc<Slot>,
    mut w: WriteHalf<S>,
) -> impl std::future::Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async move {
        let cfg = hub.config();
        // Swapped with the queue's at each burst and handed back empty: no
        // allocation per burst.
        let mut batch: VecDeque<Item> = VecDeque::new();
        let mut spare = BytesMut::new();
        let mut fed = 0;
        loop {
            match slot.next_step(std::mem::take(&mut fed), &mut batch, &mut spare) {
                Step::Done => break,
                Step::Wait => slot.wake.notified().await,
                Step::Notice(n) => {
                    let frame = crate::hub::encode(&(cfg.missed_message)(n));
                    let feed = async {
                        w.feed_hub_frames(frame).await?;
                        w.flush().await
                    };
                    // A stop while the socket is stalled must not wait for the
                    // stall: it interrupts the feed (cancel-safe), and the loop
                    // then sees the close or the end.
                    let r = tokio::select! {
                        r = feed => r.is_ok(),
                        _ = slot.stop.notified() => true,
                    };
                    if !r {
                        break;
                    }
                }
                Step::Batch(n) => {
                    let tail = std::mem::take(&mut spare).freeze();
                    let feed = async {
                        for item in batch.drain(..) {
                            match item {
                                Item::Encoded(b) => w.feed_hub_frames(b).await?,
                                #[cfg(feature = "deflate")]
                                Item::Message(op, p) => {
                                    w.feed_frame(crate::ws::Frame::new(op, p)).await?
                                }
                            }
                        }
                        if !tail.is_empty() {
                            w.feed_hub_frames(tail.clone()).await?;
                        }
                        w.flush().await
                    };
                    let r = tokio::select! {
                        r = feed => r.is_ok(),
                        _ = slot.stop.notified() => true,
                    };
                    batch.clear();
                    // Written (or copied) and released by the socket's queue:
                    // the buffer is ours again for the next burst.
                    if let Ok(mut b) = tail.try_into_mut() {
                        if b.capacity() <= KEEP_TAIL_CAPACITY {
                            b.clear();
                            spare = b;
                        }
                    }
                    fed = n;
                    if !r {
                        break;
                    }
                }
                Step::Close(code, reason) => {
                    let _ = tokio::time::timeout(cfg.close_grace, w.close(code, reason)).await;
                    break;
                }
            }
        }
        drop(w);
        // Boxed: leaving the rooms is a large future (about 1 KB), run once,
        // that would otherwise size every member's task for its whole life.
        Box::pin(hub.unregister(slot.id)).await;
    }
}

#[cfg(test)]
mod layout {
    use super::*;

    /// The size of what `f` returns, without calling it.
    fn returned_size<A, R>(_f: impl FnOnce(A) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    #[test]
    fn a_members_writer_task_stays_small() {
        // Every member's writer task is this future for its whole life:
        // 1,400 bytes when it awaited leaving the rooms inline and held its
        // arguments twice (an `async fn`), 616 now (x86-64).
        type Half = crate::ws::WriteHalf<tokio::net::TcpStream>;
        let n = returned_size(|(h, s, w): (Hub, Arc<Slot>, Half)| run_writer(h, s, w));
        if cfg!(target_pointer_width = "64") {
            assert!(n <= 704, "run_writer's future is {n} bytes (bound 704)");
        }
    }
}
