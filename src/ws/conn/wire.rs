//! What the read engine and the writers need from the stream: the one seam
//! between the connection logic and the two ways of owning a stream
//! (a whole [`Conn`](super::Conn) owns it; split halves share it).

use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use super::deadline::Deadline;
use super::read_buf::RecvBuf;
use super::write_queue::WriteQueue;
use crate::error::{Error, TimeoutKind};
use crate::ws::config::Config;

/// The stream and its write queue, as the read engine and the writers see
/// them.
pub(crate) trait Wire {
    /// Reads more bytes into `recv` (pushing out queued writes first,
    /// without waiting for them). `Ready(Ok(0))` is end of stream.
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        recv: &mut RecvBuf,
        want: usize,
    ) -> Poll<io::Result<usize>>;
    /// Runs `f` on the write queue.
    fn queue<R>(&mut self, f: impl FnOnce(&mut WriteQueue) -> R) -> R;
    /// Writes until at most `below` bytes are queued (`0`: everything, then
    /// flushes the stream).
    fn poll_drain(&mut self, cx: &mut Context<'_>, below: usize) -> Poll<io::Result<()>>;
    /// Shuts down the write direction.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// The few settings a connection keeps (not the whole `Config`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) high_water: usize,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
    pub(crate) auto_pong: bool,
    pub(crate) timer: crate::ws::timer::Timer,
}

impl Settings {
    pub(crate) fn from_config(c: &Config) -> Self {
        Settings {
            high_water: c.write_buffer_high_water,
            write_timeout: c.write_timeout,
            close_timeout: c.close_timeout,
            auto_pong: c.auto_pong,
            timer: c.timer,
        }
    }
}

/// When a stalled write gives up: armed on the first write that cannot make
/// progress, kept while no byte is written, cleared by progress.
#[derive(Debug, Default)]
pub(crate) struct WriteStall {
    since: Option<(u64, Instant)>,
}

impl WriteStall {
    /// When the stalled write in progress gives up, if one is stalled.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.since.map(|(_, at)| at)
    }

    /// [`Wire::poll_drain`] bounded by `timeout` without progress.
    pub(crate) fn poll_drain<W: Wire>(
        &mut self,
        wire: &mut W,
        cx: &mut Context<'_>,
        below: usize,
        timeout: Option<Duration>,
        deadline: &mut Deadline,
    ) -> Poll<Result<(), Error>> {
        match wire.poll_drain(cx, below) {
            Poll::Ready(r) => {
                self.since = None;
                Poll::Ready(r.map_err(Error::Io))
            }
            Poll::Pending => {
                let Some(t) = timeout else {
                    return Poll::Pending;
                };
                let written = wire.queue(|q| q.written());
                let at = match self.since {
                    Some((w, at)) if w == written => at,
                    _ => {
                        let at = super::reader::after(deadline.now(), t);
                        self.since = Some((written, at));
                        at
                    }
                };
                match deadline.poll_at(cx, at) {
                    Poll::Ready(()) => {
                        self.since = None;
                        Poll::Ready(Err(Error::Timeout(TimeoutKind::Write)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}
