//! Split halves of a [`Conn`](super::Conn), usable from two tasks.
//!
//! Both halves share the stream and the one write queue behind a mutex
//! that is only held for a non-blocking poll, never across an `await`: the
//! read half queues its pongs and close replies in the same queue (and
//! under the same lock) as the write half's frames, so a data frame can
//! never follow our close frame and a keepalive message never lands inside
//! a fragmented message. Neither half waits for the other: the read half
//! pushes queued replies out opportunistically while it waits for input.
//!
//! Writes from either half register their task in a shared waker set and
//! poll the stream with a waker that wakes every task in it, so the stream
//! (which keeps one write waker) cannot leave one half asleep.

use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use super::deadline::Deadline;
use super::deflate_out::DeflateOut;
use super::read_buf::RecvBuf;
use super::reader::Reader;
use super::wire::{Settings, Wire, WriteStall};
use super::write_queue::WriteQueue;
use super::writer::Writer;
use super::Conn;
use crate::error::{Error, UsageError};
use crate::ws::close::{CloseCode, CloseFrame};
use crate::ws::frame::{Frame, OpCode};
use crate::ws::message::{Message, Utf8Bytes};
use crate::ws::role::Role;

struct Inner<S> {
    io: S,
    tx: WriteQueue,
}

/// Wakes every task waiting to write.
#[derive(Default)]
struct FanOut {
    wakers: Mutex<Vec<Waker>>,
}

impl FanOut {
    fn register(&self, w: &Waker) {
        let mut v = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        if !v.iter().any(|x| x.will_wake(w)) {
            v.push(w.clone());
        }
    }
}

impl Wake for FanOut {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let v = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner()));
        for w in v {
            w.wake();
        }
    }
}

struct Shared<S> {
    inner: Mutex<Inner<S>>,
    fanout: Arc<FanOut>,
    fan_waker: Waker,
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        // Every update under the lock is a complete queue operation, so a
        // panic elsewhere cannot leave the queue half updated.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Shared<S> {
    /// Runs a write-direction poll with the fan-out waker.
    fn poll_write_side<R>(
        &self,
        cx: &mut Context<'_>,
        g: &mut Inner<S>,
        f: impl FnOnce(&mut Inner<S>, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        self.fanout.register(cx.waker());
        let mut fcx = Context::from_waker(&self.fan_waker);
        f(g, &mut fcx)
    }
}

/// One half's view of the shared stream.
struct HalfWire<'a, S> {
    shared: &'a Shared<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire for HalfWire<'_, S> {
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        recv: &mut RecvBuf,
        want: usize,
    ) -> Poll<io::Result<usize>> {
        let mut g = self.shared.lock();
        if g.tx.buffered() > 0 {
            let r = self.shared.poll_write_side(cx, &mut g, |g, cx| {
                let Inner { io, tx } = g;
                tx.poll_drain(io, cx, 0)
            });
            if let Poll::Ready(Err(e)) = r {
                return Poll::Ready(Err(e));
            }
        }
        recv.poll_fill(&mut g.io, cx, want)
    }
    fn queue<R>(&mut self, f: impl FnOnce(&mut WriteQueue) -> R) -> R {
        f(&mut self.shared.lock().tx)
    }
    fn poll_drain(&mut self, cx: &mut Context<'_>, below: usize) -> Poll<io::Result<()>> {
        let mut g = self.shared.lock();
        self.shared.poll_write_side(cx, &mut g, |g, cx| {
            let Inner { io, tx } = g;
            tx.poll_drain(io, cx, below)
        })
    }
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut g = self.shared.lock();
        self.shared
            .poll_write_side(cx, &mut g, |g, cx| Pin::new(&mut g.io).poll_shutdown(cx))
    }
}

/// The read half: reads frames and messages; answers pings and closes
/// through the shared write queue.
pub struct ReadHalf<S> {
    shared: Arc<Shared<S>>,
    reader: Reader,
}

/// The write half: sends frames and messages. Cloneable handles are not
/// provided; wrap it in a mutex or a channel-fed task to share it.
pub struct WriteHalf<S> {
    shared: Arc<Shared<S>>,
    deadline: Deadline,
    stall: WriteStall,
    settings: Settings,
    role: Role,
    /// Compression of outgoing messages, outside the shared lock.
    deflate: Option<Box<DeflateOut>>,
}

impl<S> fmt::Debug for ReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadHalf").finish_non_exhaustive()
    }
}

impl<S> fmt::Debug for WriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteHalf").finish_non_exhaustive()
    }
}

/// [`ReadHalf::reunite`] was given halves of two different connections;
/// [`into_parts`](Self::into_parts) hands them back.
pub struct ReuniteError<S>(Box<(ReadHalf<S>, WriteHalf<S>)>);

impl<S> ReuniteError<S> {
    /// The two halves, unchanged.
    pub fn into_parts(self) -> (ReadHalf<S>, WriteHalf<S>) {
        *self.0
    }
}

impl<S> fmt::Debug for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl<S> fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the halves belong to different connections")
    }
}

impl<S> std::error::Error for ReuniteError<S> {}

pub(crate) fn split<S>(
    io: S,
    reader: Reader,
    tx: WriteQueue,
    deflate: Option<Box<DeflateOut>>,
) -> (ReadHalf<S>, WriteHalf<S>) {
    let fanout = Arc::new(FanOut::default());
    let settings = reader.settings;
    let role = reader.role;
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner { io, tx }),
        fan_waker: Waker::from(fanout.clone()),
        fanout,
    });
    (
        ReadHalf {
            shared: shared.clone(),
            reader,
        },
        WriteHalf {
            shared,
            deadline: Deadline::new(settings.timer),
            stall: WriteStall::default(),
            settings,
            role,
            deflate,
        },
    )
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// Reads the next frame; see [`Conn::read_frame`](super::Conn::read_frame).
    pub async fn read_frame(&mut self) -> Result<Frame, Error> {
        let Self { shared, reader } = self;
        poll_fn(|cx| reader.poll_frame(&mut HalfWire { shared }, cx)).await
    }

    /// Reads the next message; see [`Conn::read_message`](super::Conn::read_message).
    pub async fn read_message(&mut self) -> Result<Option<Message>, Error> {
        let Self { shared, reader } = self;
        poll_fn(|cx| reader.poll_message(&mut HalfWire { shared }, cx)).await
    }

    /// The peer's close frame, once received.
    pub fn peer_close_frame(&self) -> Option<&CloseFrame> {
        self.reader.peer_close()
    }

    /// Whether the connection is finished.
    pub fn is_closed(&self) -> bool {
        self.reader.is_closed()
    }

    /// Puts the halves back together into the connection they came from.
    ///
    /// ```no_run
    /// # async fn demo(conn: rtwire::ws::Conn<tokio::net::TcpStream>) {
    /// let (read, write) = conn.split();
    /// let conn = read.reunite(write).expect("halves of one connection");
    /// # }
    /// ```
    pub fn reunite(self, write: WriteHalf<S>) -> Result<Conn<S>, ReuniteError<S>> {
        if !Arc::ptr_eq(&self.shared, &write.shared) {
            return Err(ReuniteError(Box::new((self, write))));
        }
        let deflate = write.deflate;
        drop(write.shared);
        let ReadHalf { shared, reader } = self;
        let shared = match Arc::try_unwrap(shared) {
            Ok(s) => s,
            // Only the two halves hold it, and the write half is gone.
            Err(_) => unreachable!("a connection's halves are its only owners"),
        };
        let Inner { io, tx } = shared.inner.into_inner().unwrap_or_else(|p| p.into_inner());
        Ok(Conn {
            io,
            reader,
            tx,
            deflate,
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    fn writer(&mut self) -> Writer<'_, HalfWire<'_, S>> {
        Writer {
            wire: HalfWire {
                shared: &self.shared,
            },
            deadline: &mut self.deadline,
            stall: &mut self.stall,
            settings: self.settings,
            role: self.role,
            closed: false,
            deflate: self.deflate.as_deref_mut(),
        }
    }

    /// Queues a frame; waits first while the queue is above the high-water
    /// mark. Cancel-safe like [`Conn::feed_frame`](super::Conn::feed_frame).
    pub async fn feed_frame(&mut self, frame: Frame) -> Result<(), Error> {
        // The writer's steps, each on a writer made for it: this future
        // holds only `self` and the frame, not a `Writer` and its future
        // (an idle connection's task is as large as its largest future).
        if let Some(r) = self.writer().try_feed(&frame) {
            return r;
        }
        self.writer().check(&frame)?;
        poll_fn(|cx| self.writer().poll_ready(cx)).await?;
        self.writer().queue_waited(&frame)
    }

    /// Queues a message as one frame.
    ///
    /// The future is [`feed_frame`](Self::feed_frame)'s itself, not one
    /// wrapping it: a connection task that awaits it is smaller by a frame
    /// and a nested state.
    pub fn feed_message(&mut self, msg: Message) -> impl Future<Output = Result<(), Error>> + '_ {
        self.feed_frame(Frame::new(msg.opcode(), msg.into_payload()))
    }

    /// Queues a binary message copied from `data`; see
    /// [`Conn::feed_binary_copied`](super::Conn::feed_binary_copied).
    pub async fn feed_binary_copied(&mut self, data: &[u8]) -> Result<(), Error> {
        self.feed_copied(OpCode::Binary, data).await
    }

    /// Queues a text message copied from `text`; see
    /// [`Conn::feed_text_copied`](super::Conn::feed_text_copied).
    pub async fn feed_text_copied(&mut self, text: &str) -> Result<(), Error> {
        self.feed_copied(OpCode::Text, text.as_bytes()).await
    }

    async fn feed_copied(&mut self, opcode: OpCode, data: &[u8]) -> Result<(), Error> {
        if let Some(r) = self.writer().try_feed_copied(opcode, data) {
            return r;
        }
        // The writer's own feed, not `WriteHalf::feed_frame` (see
        // `Conn::feed_copied`).
        self.writer()
            .feed_frame(Frame::new(opcode, Bytes::copy_from_slice(data)))
            .await
    }

    /// Queues already-encoded frames; see
    /// [`Conn::feed_encoded`](super::Conn::feed_encoded).
    pub async fn feed_encoded(&mut self, frames: Bytes) -> Result<(), Error> {
        self.writer().feed_encoded(frames).await
    }

    /// [`feed_encoded`](Self::feed_encoded) for frames the hub encoded
    /// itself for this connection: their headers are not walked again
    /// (a burst of small frames is one buffer of many frames).
    pub(crate) async fn feed_hub_frames(&mut self, frames: Bytes) -> Result<(), Error> {
        // In steps, as `feed_frame`: the future every hub member's writer
        // task holds is the frames and a pointer, not a nested writer's.
        if let Some(r) = self.writer().try_feed_checked(&frames) {
            return r;
        }
        poll_fn(|cx| self.writer().poll_ready(cx)).await?;
        self.writer().queue_checked(&frames)
    }

    /// Writes out everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.writer().poll_flush(cx)).await
    }

    /// Bytes queued and not yet written (replies of the read half
    /// included).
    pub fn buffered(&self) -> usize {
        self.shared.lock().tx.buffered()
    }

    /// The permessage-deflate parameters in force, if it was negotiated.
    #[cfg(feature = "deflate")]
    pub fn deflate(&self) -> Option<crate::ws::deflate::DeflateParams> {
        self.deflate.as_deref().map(|d| *d.params())
    }

    /// When a shared compressed encoding fits this connection (permessage-
    /// deflate without server context takeover), the window bits it must
    /// be made with: give [`deflate::encode_compressed`](crate::ws::deflate::encode_compressed)
    /// output made with these bits (or fewer) to [`feed_encoded`](Self::feed_encoded).
    /// `None`: compress per connection (send messages as usual).
    #[cfg(feature = "deflate")]
    pub fn shared_deflate_window(&self) -> Option<u8> {
        self.deflate.as_deref()?.shared_window()
    }

    /// Writes one frame now.
    pub async fn write_frame(&mut self, frame: Frame) -> Result<(), Error> {
        let mut w = self.writer();
        w.feed_frame(frame).await?;
        w.flush().await
    }

    /// Sends a message as one frame and flushes.
    pub async fn send_message(&mut self, msg: Message) -> Result<(), Error> {
        self.write_frame(Frame::new(msg.opcode(), msg.into_payload()))
            .await
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), Error> {
        self.send_message(Message::Text(text.into())).await
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), Error> {
        self.send_message(Message::Binary(data.into())).await
    }

    /// Sends `msg` in frames of at most `frame_size` bytes; see
    /// [`Conn::send_fragmented`](super::Conn::send_fragmented).
    pub async fn send_fragmented(&mut self, msg: Message, frame_size: usize) -> Result<(), Error> {
        self.writer().send_fragmented(msg, frame_size).await
    }

    /// Sends a ping.
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.write_frame(Frame::ping(payload)).await
    }

    /// Sends a close frame. The read half completes the handshake when the
    /// peer's close arrives (keep reading until it returns `Ok(None)`).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if !code.is_sendable() {
            return Err(Error::Usage(UsageError::InvalidCloseCode(code.0)));
        }
        self.write_frame(Frame::close(code, reason)).await
    }
}

#[cfg(feature = "serde")]
impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// Sends `value` as a JSON text message.
    pub async fn send_json<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), Error> {
        let text = serde_json::to_string(value).map_err(Error::Json)?;
        self.send_text(text).await
    }
}

/// The poll-level API behind the `futures` `Stream` and `Sink` impls
/// (`stream_sink`).
#[cfg(feature = "futures")]
impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    pub(crate) fn poll_read_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Message>, Error>> {
        let Self { shared, reader } = self;
        reader.poll_message(&mut HalfWire { shared }, cx)
    }
}

#[cfg(feature = "futures")]
impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    pub(crate) fn poll_write_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.writer().poll_ready(cx)
    }

    pub(crate) fn start_send_message(&mut self, msg: Message) -> Result<(), Error> {
        let frame = super::stream_sink::frame_of(msg);
        let mut g = self.shared.lock();
        g.tx.check(&frame)?;
        g.tx.start_send(&frame);
        Ok(())
    }

    pub(crate) fn poll_write_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.writer().poll_flush(cx)
    }

    pub(crate) fn poll_write_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared
            .lock()
            .tx
            .push_close(&super::stream_sink::normal_close());
        self.writer().poll_flush(cx)
    }
}
