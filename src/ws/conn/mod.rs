//! [`Conn`]: a WebSocket connection over any `AsyncRead + AsyncWrite`, the
//! async shell around the sans-IO codec.
//!
//! Data flow, one file each:
//! socket → [`read_buf`] (receive buffer) → [`Decoder`](crate::ws::Decoder)
//! → [`reader`] (the read engine: control frames, closing, keepalive) →
//! [`assemble`] (messages) → the application; and the application →
//! [`writer`] (feed / flush, backpressure) → [`write_queue`] (encoding,
//! coalescing, vectored writes) → socket. [`wire`] is the seam between the
//! two and the stream; [`split`] shares one stream between two halves.

mod accept;
mod assemble;
mod connect;
mod copied;
mod deadline;
mod deflate_out;
#[cfg(feature = "deflate")]
mod inflate;
mod read_buf;
mod reader;
mod split;
#[cfg(feature = "futures")]
mod stream_sink;
mod wire;
mod write_queue;
mod writer;

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

pub use accept::{read_request_head, reject, HeadAndRest};
pub use split::{ReadHalf, ReuniteError, WriteHalf};
pub(crate) use write_queue::check_encoded_frames;

use self::deflate_out::DeflateOut;
use self::read_buf::RecvBuf;
use self::reader::Reader;
use self::wire::Wire;
use self::write_queue::WriteQueue;
use self::writer::Writer;
use super::close::{CloseCode, CloseFrame};
use super::config::Config;
use super::decoder::Decoder;
use super::frame::{Frame, OpCode};
use super::message::{Message, Utf8Bytes};
use super::role::Role;
use crate::error::{Error, TimeoutKind, UsageError};

/// A WebSocket connection, server or client, over any stream `S`
/// (a `TcpStream`, a TLS stream, or the IO an HTTP server's upgrade hands
/// over).
///
/// Any `AsyncRead + AsyncWrite + Unpin` works: for `wss://`, accept or
/// connect over a `tokio_rustls` (or `tokio-native-tls`) stream once its
/// TLS handshake is done — `Conn::accept(tls, &config)` on the server,
/// `Conn::connect(tls, "wss://host/path", &config)` on the client (the
/// URL's scheme only names the stream; the TLS is the caller's).
/// `tests/ecosystem_tls.rs` runs both over rustls on loopback.
///
/// With feature `futures`, a `Conn` is a `futures` `Stream` of
/// `Result<Message, Error>` (ending after the closing handshake) and a
/// `Sink<Message>` (`poll_ready` waits for room under the high-water
/// mark, `start_send` queues, `poll_flush` writes, `poll_close` runs the
/// closing handshake with 1000); so are its halves ([`ReadHalf`]: `Stream`,
/// [`WriteHalf`]: `Sink`), e.g. `read.forward(write)` is an echo server.
/// The inherent `close(code, reason)` and `buffered()` win over
/// `SinkExt::close` and `StreamExt::buffered` in method calls: call those
/// as `SinkExt::close(&mut conn)`.
///
/// Two levels of API:
/// - frames: [`read_frame`](Self::read_frame) returns every frame, control
///   frames included, with its payload split off the read buffer (zero copy
///   from 4 KiB up; smaller payloads are copied so a kept message pins only
///   itself); [`write_frame`](Self::write_frame) writes one.
/// - messages: [`read_message`](Self::read_message) assembles fragments and
///   hides control frames; [`send_text`](Self::send_text),
///   [`send_binary`](Self::send_binary), [`send_fragmented`](Self::send_fragmented),
///   [`ping`](Self::ping), [`close`](Self::close);
///   [`feed_binary_copied`](Self::feed_binary_copied) and
///   [`feed_text_copied`](Self::feed_text_copied) queue a message from
///   borrowed bytes, with no allocation while the queue has room.
///
/// Pings are answered automatically (unless turned off in [`Config`]), the
/// closing handshake is run for you, and a protocol error closes the
/// connection with its close code (1002, 1007, 1009) before it is returned.
///
/// **Writes are coalesced.** `feed*` methods encode into a write queue;
/// the queue is written on [`flush`](Self::flush), by the `send*` methods,
/// and — automatically — whenever a read call has to wait for the peer. An
/// echo loop that feeds every reply therefore answers a whole read's worth
/// of frames with one write. While the queue is above the high-water mark,
/// feeds wait for it to drain, and so does reading (backpressure).
///
/// **Cancellation safety.** `read_frame` and `read_message` may be dropped
/// at any await point (e.g. in `tokio::select!`) without losing bytes or
/// corrupting state; the next call resumes. `feed_*` follows
/// `futures::Sink`: it first waits for room, then queues the frame in one
/// step, so a cancelled feed queued nothing and a feed that returned `Ok`
/// queued its frame. `send_*` is a feed and a flush: once its flush has
/// started the frame is queued and will be written (do not send it again;
/// call [`flush`](Self::flush)). `flush` keeps its progress when cancelled.
///
/// ```no_run
/// use rtwire::ws::{Config, Conn, Message};
/// # async fn run() -> Result<(), rtwire::Error> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// let (tcp, _) = listener.accept().await?;
/// let (mut conn, accepted) = Conn::accept(tcp, &Config::default()).await?;
/// println!("upgrade on {}", accepted.head.path());
/// while let Some(msg) = conn.read_message().await? {
///     conn.feed_message(msg).await?; // flushed when the next read waits
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Conn<S> {
    io: S,
    reader: Reader,
    tx: WriteQueue,
    deflate: Option<Box<DeflateOut>>,
}

/// A whole connection's stream and write queue.
struct ConnWire<'a, S> {
    io: &'a mut S,
    tx: &'a mut WriteQueue,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire for ConnWire<'_, S> {
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        recv: &mut RecvBuf,
        want: usize,
    ) -> Poll<io::Result<usize>> {
        if self.tx.buffered() > 0 {
            // Push out replies while waiting for input; a stalled write
            // does not stop reading (backpressure handles the bound).
            if let Poll::Ready(Err(e)) = self.tx.poll_drain(self.io, cx, 0) {
                return Poll::Ready(Err(e));
            }
        }
        recv.poll_fill(self.io, cx, want)
    }
    fn queue<R>(&mut self, f: impl FnOnce(&mut WriteQueue) -> R) -> R {
        f(self.tx)
    }
    fn poll_drain(&mut self, cx: &mut Context<'_>, below: usize) -> Poll<io::Result<()>> {
        self.tx.poll_drain(self.io, cx, below)
    }
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Wraps a stream whose handshake is already done (by this crate or by
    /// an HTTP server's upgrade). `leftover` holds bytes read past the
    /// handshake, which are the start of the frame stream.
    pub fn from_upgraded(io: S, role: Role, config: &Config, leftover: BytesMut) -> Self {
        let decoder = Decoder::new(role, config.limits);
        let mut tx = WriteQueue::new(role, config.vectored_threshold);
        if !io.is_write_vectored() {
            // A vectored write would write one slice at a time: coalesce.
            tx.disable_vectored();
        }
        Conn {
            io,
            reader: Reader::new(decoder, leftover, config),
            tx,
            deflate: None,
        }
    }

    /// Turns on permessage-deflate with the parameters both ends agreed on
    /// (for a connection whose handshake was done elsewhere, e.g. by an
    /// HTTP server, with [`deflate::server_negotiate`](crate::ws::deflate::server_negotiate)).
    /// Call it before any frame is read or written. [`Conn::accept`] and
    /// [`Conn::connect`] do this themselves when `Config::deflate` is set.
    #[cfg(feature = "deflate")]
    pub fn with_deflate(mut self, params: crate::ws::deflate::DeflateParams) -> Self {
        self.reader.set_deflate(&params);
        self.deflate = Some(Box::new(DeflateOut::new(&params, self.reader.role)));
        self
    }

    /// The permessage-deflate parameters in force, if it was negotiated.
    #[cfg(feature = "deflate")]
    pub fn deflate(&self) -> Option<&crate::ws::deflate::DeflateParams> {
        self.deflate.as_deref().map(DeflateOut::params)
    }

    /// When a shared compressed encoding fits this connection, the window
    /// bits it must be made with; see [`WriteHalf::shared_deflate_window`].
    #[cfg(feature = "deflate")]
    pub fn shared_deflate_window(&self) -> Option<u8> {
        self.deflate.as_deref()?.shared_window()
    }

    fn wire(&mut self) -> (&mut Reader, ConnWire<'_, S>) {
        (
            &mut self.reader,
            ConnWire {
                io: &mut self.io,
                tx: &mut self.tx,
            },
        )
    }

    fn writer(&mut self) -> Writer<'_, ConnWire<'_, S>> {
        let r = &mut self.reader;
        let (settings, role, closed) = (r.settings, r.role, r.is_closed());
        Writer {
            wire: ConnWire {
                io: &mut self.io,
                tx: &mut self.tx,
            },
            deadline: &mut r.deadline,
            stall: &mut r.stall,
            settings,
            role,
            closed,
            deflate: self.deflate.as_deref_mut(),
        }
    }

    /// Reads the next frame, control frames included. Pings are answered
    /// (when auto-pong is on); a close frame is answered and the stream shut
    /// down before it is returned; after that, [`Error::ConnectionClosed`].
    /// Cancel-safe.
    pub async fn read_frame(&mut self) -> Result<Frame, Error> {
        poll_fn(|cx| {
            let (r, mut w) = self.wire();
            r.poll_frame(&mut w, cx)
        })
        .await
    }

    /// Reads the next complete message (fragments assembled, control frames
    /// handled). `Ok(None)` once the closing handshake is done. Cancel-safe.
    pub async fn read_message(&mut self) -> Result<Option<Message>, Error> {
        poll_fn(|cx| {
            let (r, mut w) = self.wire();
            r.poll_message(&mut w, cx)
        })
        .await
    }

    /// Queues a frame. Waits first while the write queue is above its
    /// high-water mark (backpressure). Cancel-safe (see the type's docs).
    pub async fn feed_frame(&mut self, frame: Frame) -> Result<(), Error> {
        // The writer's steps, each on a writer made for it: this future
        // holds only `self` and the frame, not a `Writer` and its future
        // (an idle connection's task is as large as its largest future).
        if let Some(r) = self.try_feed(&frame) {
            return r;
        }
        self.writer().check(&frame)?;
        poll_fn(|cx| self.writer().poll_ready(cx)).await?;
        self.writer().queue_waited(&frame)
    }

    /// [`Writer::try_feed`] on the connection's own fields, without
    /// building a writer: the common feed is a few checks and an encode.
    #[inline]
    fn try_feed(&mut self, frame: &Frame) -> Option<Result<(), Error>> {
        self.try_queue(|q| q.check(frame).map(|()| q.start_send(frame)))
    }

    /// Runs `f` on the write queue when a feed needs no wait: the
    /// connection is open, nothing has to be compressed first and the
    /// queue is at or under its high-water mark. `None`: take the slow
    /// path.
    #[inline]
    fn try_queue(
        &mut self,
        f: impl FnOnce(&mut WriteQueue) -> Result<(), Error>,
    ) -> Option<Result<(), Error>> {
        if self.reader.is_closed() {
            return Some(Err(Error::ConnectionClosed));
        }
        if self.deflate.is_some() || self.tx.buffered() > self.reader.settings.high_water {
            return None;
        }
        Some(f(&mut self.tx))
    }

    /// Writes one frame now (queues it, then flushes).
    pub async fn write_frame(&mut self, frame: Frame) -> Result<(), Error> {
        let mut w = self.writer();
        w.feed_frame(frame).await?;
        w.flush().await
    }

    /// Queues already-encoded frames, e.g. one encoded once with a
    /// server-role [`Encoder`](crate::ws::Encoder) and sent to many
    /// connections (server frames are unmasked, so the same bytes fit every
    /// connection). The bytes must be exactly one or more complete
    /// messages. Server role only: a client must mask every frame with a
    /// fresh key ([`UsageError::EncodedFramesNeedServerRole`]).
    pub async fn feed_encoded(&mut self, frames: Bytes) -> Result<(), Error> {
        self.writer().feed_encoded(frames).await
    }

    /// Writes out everything queued, bounded by the write timeout.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.writer().flush().await
    }

    /// Bytes queued and not yet written.
    pub fn buffered(&self) -> usize {
        self.tx.buffered()
    }

    /// Queues a message as one frame.
    ///
    /// The future is [`feed_frame`](Self::feed_frame)'s itself, not one
    /// wrapping it: a connection task that awaits it is smaller by a frame
    /// and a nested state.
    pub fn feed_message(&mut self, msg: Message) -> impl Future<Output = Result<(), Error>> + '_ {
        self.feed_frame(Frame::new(msg.opcode(), msg.into_payload()))
    }

    /// Sends a message as one frame and flushes.
    pub async fn send_message(&mut self, msg: Message) -> Result<(), Error> {
        self.write_frame(Frame::new(msg.opcode(), msg.into_payload()))
            .await
    }

    /// Sends a text message and flushes.
    pub async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), Error> {
        self.send_message(Message::Text(text.into())).await
    }

    /// Sends a binary message and flushes.
    pub async fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), Error> {
        self.send_message(Message::Binary(data.into())).await
    }

    /// Sends `msg` split into frames of at most `frame_size` bytes (at
    /// least one frame, even for an empty message), then flushes. Each frame
    /// is a slice of the payload: no copy.
    pub async fn send_fragmented(&mut self, msg: Message, frame_size: usize) -> Result<(), Error> {
        self.writer().send_fragmented(msg, frame_size).await
    }

    /// Sends a ping (payload at most 125 bytes) and flushes.
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.write_frame(Frame::ping(payload)).await
    }

    /// Runs the closing handshake: sends a close frame with `code` and
    /// `reason`, waits (up to the close timeout) for the peer's close,
    /// discarding data that arrives meanwhile, and shuts the stream down.
    ///
    /// `code` must be one that may be sent (see
    /// [`CloseCode::is_sendable`]); 1005 and 1006 are
    /// [`UsageError::InvalidCloseCode`].
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if !code.is_sendable() {
            return Err(Error::Usage(UsageError::InvalidCloseCode(code.0)));
        }
        if self.reader.is_closed() {
            return Ok(());
        }
        self.tx.push_close(&Frame::close(code, reason));
        let deadline = self.reader.close_deadline();
        let timer = self.reader.settings.timer;
        let waited = deadline::run_until(timer, Some(deadline), async {
            poll_fn(|cx| {
                let (_, mut w) = self.wire();
                w.poll_drain(cx, 0)
            })
            .await?;
            loop {
                let next = poll_fn(|cx| {
                    let (r, mut w) = self.wire();
                    r.poll_next(&mut w, cx)
                })
                .await;
                match next {
                    Ok(f) if f.opcode == OpCode::Close => return Ok(()),
                    Ok(_) => {}
                    Err(Error::ConnectionClosed) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        if !self.reader.is_closed() {
            // Bounded too: a TLS close_notify may never get written to a
            // peer that does not read.
            let grace = timer.now() + std::time::Duration::from_millis(100);
            let _ = deadline::run_until(timer, Some(deadline.max(grace)), self.io.shutdown()).await;
            self.reader.set_closed();
        }
        match waited {
            Ok(r) => r,
            Err(()) => Err(Error::Timeout(TimeoutKind::Close)),
        }
    }

    /// The peer's close frame, once received (`None` if it had no code).
    pub fn peer_close_frame(&self) -> Option<&CloseFrame> {
        self.reader.peer_close()
    }

    /// Whether the connection is finished (close handshake done, or failed).
    pub fn is_closed(&self) -> bool {
        self.reader.is_closed()
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.reader.role
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The underlying stream, mutably (writing to it directly corrupts the
    /// frame stream).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// Splits into a read half and a write half usable from two tasks.
    /// The read half still answers pings and closes through the shared
    /// write queue; [`ReadHalf::reunite`] puts them back together.
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        split::split(self.io, self.reader, self.tx, self.deflate)
    }
}

#[cfg(feature = "serde")]
impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Sends `value` as a JSON text message (like gorilla's `WriteJSON`).
    pub async fn send_json<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), Error> {
        let text = serde_json::to_string(value).map_err(Error::Json)?;
        self.send_text(text).await
    }

    /// Reads the next message and parses it as JSON (text or binary).
    /// `Ok(None)` once the closing handshake is done.
    pub async fn read_json<T: serde::de::DeserializeOwned>(&mut self) -> Result<Option<T>, Error> {
        match self.read_message().await? {
            Some(m) => Ok(Some(
                serde_json::from_slice(m.payload()).map_err(Error::Json)?,
            )),
            None => Ok(None),
        }
    }
}
