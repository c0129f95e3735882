//! The connection logic shared by [`Conn`](super::Conn) and the split
//! halves: frame reading with automatic pong and close replies, failing on
//! protocol errors, keepalive, and message assembly.

use std::future::poll_fn;
use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::close::{parse_close_payload, CloseCode, CloseFrame};
use super::codec::Role;
use super::config::{Config, Keepalive};
use super::frame::{Frame, OpCode};
use super::io::ReadState;
use super::message::{Message, Utf8Bytes};
use crate::error::{Error, ProtocolError, TimeoutKind};

/// The few settings a connection keeps (not the whole `Config`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) high_water: usize,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
    pub(crate) auto_pong: bool,
}

impl Settings {
    pub(crate) fn from_config(c: &Config) -> Self {
        Settings {
            high_water: c.write_buffer_high_water,
            write_timeout: c.write_timeout,
            close_timeout: c.close_timeout,
            auto_pong: c.auto_pong,
        }
    }
}

/// What the read logic needs from the write side.
pub(crate) trait Link {
    /// Reads more bytes into `rs` (a whole connection also pushes out
    /// pending writes while it waits).
    fn poll_fill(&mut self, rs: &mut ReadState, cx: &mut Context<'_>) -> Poll<io::Result<usize>>;
    /// Queues a control frame or keepalive message (no I/O).
    fn queue(&mut self, frame: Frame);
    /// Whether our close frame has been queued or sent.
    fn close_sent(&self) -> bool;
    /// Records that our close frame is queued.
    fn set_close_sent(&mut self);
    /// Writes out everything queued (bounded by `timeout`).
    async fn flush(&mut self, timeout: Option<Duration>) -> Result<(), Error>;
    /// Pushes out replies promptly when no one else will (split halves);
    /// a whole connection flushes before its next read instead.
    async fn after_control(&mut self, timeout: Option<Duration>) -> Result<(), Error>;
    /// Whether `after_control` does anything (split halves); checked so a
    /// whole connection does not carry that future in its read state.
    fn flushes_after_control(&self) -> bool;
    /// Whether the write side is above its high-water mark (reading then
    /// waits for it to drain: backpressure).
    fn over_high_water(&self, s: &Settings) -> bool;
    /// Shuts down the write direction of the stream.
    async fn shutdown(&mut self);
}

pub(crate) async fn timed<T>(
    t: Option<Duration>,
    kind: TimeoutKind,
    f: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match t {
        Some(t) => tokio::time::timeout(t, f)
            .await
            .map_err(|_| Error::Timeout(kind))?,
        None => f.await,
    }
}

#[derive(Debug)]
struct KeepaliveState {
    cfg: Keepalive,
    last_rx: Instant,
    next_ping: Instant,
}

/// Read-side connection state.
#[derive(Debug)]
pub(crate) struct ReadCore {
    pub(crate) rs: ReadState,
    pub(crate) role: Role,
    pub(crate) settings: Settings,
    /// The connection is finished: every read returns `ConnectionClosed`.
    closed: bool,
    /// The peer's close frame, once received.
    peer_close: Option<Option<CloseFrame>>,
    /// A close frame received whose reply is still being written (kept
    /// here so a cancelled read does not lose it).
    pending_close: Option<Frame>,
    /// A ping whose pong is still being flushed (split halves): returned
    /// by the next call if this one is cancelled.
    pending_ping: Option<Frame>,
    /// When the closing handshake we are finishing (after the peer's close
    /// or a protocol error) gives up; fixed on first entry so that
    /// cancelled and repeated reads share one close timeout.
    close_deadline: Option<Instant>,
    /// The keepalive timeout expired; the 1011 close may still be in flight.
    keepalive_failed: bool,
    keepalive: Option<Box<KeepaliveState>>,
    /// Message assembly: opcode of the message in progress and its parts.
    asm_text: bool,
    asm_first: Option<Bytes>,
    asm_buf: BytesMut,
}

impl ReadCore {
    pub(crate) fn new(rs: ReadState, role: Role, config: &Config) -> Self {
        let now = Instant::now();
        ReadCore {
            rs,
            role,
            settings: Settings::from_config(config),
            closed: false,
            peer_close: None,
            pending_close: None,
            pending_ping: None,
            close_deadline: None,
            keepalive_failed: false,
            keepalive: config.keepalive.clone().map(|cfg| {
                Box::new(KeepaliveState {
                    next_ping: now + cfg.interval,
                    last_rx: now,
                    cfg,
                })
            }),
            asm_text: false,
            asm_first: None,
            asm_buf: BytesMut::new(),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Marks the connection finished (e.g. the close timeout expired).
    pub(crate) fn set_closed(&mut self) {
        self.closed = true;
    }

    pub(crate) fn peer_close(&self) -> Option<&CloseFrame> {
        self.peer_close.as_ref().and_then(|c| c.as_ref())
    }

    /// Reads the next frame. Pings are answered (when `auto_pong`), a close
    /// is answered and the stream shut down before the close frame is
    /// returned, protocol errors fail the connection with their close code.
    pub(crate) async fn read_frame<L: Link>(&mut self, link: &mut L) -> Result<Frame, Error> {
        loop {
            if self.pending_ping.is_some() {
                if link.flushes_after_control() {
                    Box::pin(link.after_control(self.settings.write_timeout)).await?;
                }
                if let Some(frame) = self.pending_ping.take() {
                    return Ok(frame);
                }
            }
            if let Some(frame) = self.pending_close.clone() {
                // Rare paths are boxed so that the read future every idle
                // connection keeps stays small.
                Box::pin(self.finish_close(link)).await;
                self.pending_close = None;
                self.closed = true;
                return Ok(frame);
            }
            if self.closed {
                return Err(Error::ConnectionClosed);
            }
            match self.rs.decoder.decode(&mut self.rs.buf) {
                Ok(Some(frame)) => {
                    if self.rs.buf.is_empty() {
                        // Drop our (empty) reference to the read arena block
                        // so an idle connection pins no read memory.
                        self.rs.buf = BytesMut::new();
                    }
                    if let Some(ka) = self.keepalive.as_deref_mut() {
                        ka.last_rx = Instant::now();
                    }
                    match frame.opcode {
                        OpCode::Ping if self.settings.auto_pong && !link.close_sent() => {
                            link.queue(Frame::pong(frame.payload.clone()));
                            // Returned once the pong is flushed, also by
                            // the next call if this one is cancelled.
                            self.pending_ping = Some(frame);
                            continue;
                        }
                        OpCode::Close => {
                            // The decoder validated the payload already.
                            let cf = parse_close_payload(&frame.payload).ok().flatten();
                            if !link.close_sent() {
                                let code = cf.as_ref().map_or(CloseCode::NORMAL, |c| c.code);
                                link.queue(Frame::close(code, ""));
                                link.set_close_sent();
                            }
                            self.peer_close = Some(cf);
                            self.pending_close = Some(frame);
                            continue;
                        }
                        _ => {}
                    }
                    return Ok(frame);
                }
                Ok(None) => {
                    let n = self.fill(link).await?;
                    if n == 0 {
                        self.closed = true;
                        return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
                    }
                }
                Err(e) => return Err(Box::pin(self.fail_protocol(link, e)).await),
            }
        }
    }

    /// Fails the connection after a protocol error: our close with its code,
    /// flushed within the close deadline, then shutdown and drain.
    async fn fail_protocol<L: Link>(&mut self, link: &mut L, e: ProtocolError) -> Error {
        // `closed` is set only at the end: a read cancelled while closing
        // comes back here (the decoder keeps returning the error) and still
        // returns it.
        if !link.close_sent() {
            link.queue(Frame::close(e.close_code(), &e.to_string()));
            link.set_close_sent();
        }
        let deadline = self.close_deadline();
        if let Ok(Ok(())) = tokio::time::timeout_at(deadline, link.flush(None)).await {
            link.shutdown().await;
            // Read what the peer still sends (its close reply) so closing
            // the socket does not reset the connection and destroy our close
            // frame in flight.
            self.drain(link, deadline).await;
        }
        self.closed = true;
        Error::Protocol(e)
    }

    /// Completes the closing handshake after the peer's close frame.
    async fn finish_close<L: Link>(&mut self, link: &mut L) {
        let deadline = self.close_deadline();
        if !matches!(
            tokio::time::timeout_at(deadline, link.flush(None)).await,
            Ok(Ok(()))
        ) {
            return;
        }
        if self.role == Role::Client {
            // RFC 6455 §7.1.1: the server closes the TCP connection first.
            self.drain(link, deadline).await;
        }
        link.shutdown().await;
    }

    /// Fails the connection after a keepalive timeout: close 1011, flush
    /// within the close deadline, shut down.
    async fn fail_keepalive<L: Link>(&mut self, link: &mut L) -> Result<usize, Error> {
        if !link.close_sent() {
            link.queue(Frame::close(CloseCode::INTERNAL_ERROR, "keepalive timeout"));
            link.set_close_sent();
        }
        let deadline = self.close_deadline();
        if let Ok(Ok(())) = tokio::time::timeout_at(deadline, link.flush(None)).await {
            link.shutdown().await;
        }
        self.closed = true;
        Err(Error::Timeout(TimeoutKind::Keepalive))
    }

    /// The deadline of the closing handshake in progress (set on first use).
    fn close_deadline(&mut self) -> Instant {
        let t = self.settings.close_timeout;
        *self
            .close_deadline
            .get_or_insert_with(|| Instant::now() + t)
    }

    /// Discards input until end of stream or `deadline`.
    async fn drain<L: Link>(&mut self, link: &mut L, deadline: Instant) {
        let rs = &mut self.rs;
        let _ = tokio::time::timeout_at(deadline, async {
            loop {
                rs.buf.clear();
                match poll_fn(|cx| link.poll_fill(rs, cx)).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        self.rs.buf = BytesMut::new();
    }

    /// Reads more bytes, applying backpressure and keepalive.
    async fn fill<L: Link>(&mut self, link: &mut L) -> Result<usize, Error> {
        if link.over_high_water(&self.settings) {
            Box::pin(link.flush(self.settings.write_timeout)).await?;
        }
        if self.keepalive.is_none() {
            let rs = &mut self.rs;
            return Ok(poll_fn(|cx| link.poll_fill(rs, cx)).await?);
        }
        // Boxed: one small allocation per wait, and only with keepalive on.
        Box::pin(self.fill_keepalive(link)).await
    }

    /// `fill` with keepalive pings and the dead-peer deadline.
    async fn fill_keepalive<L: Link>(&mut self, link: &mut L) -> Result<usize, Error> {
        if self.keepalive_failed {
            return self.fail_keepalive(link).await;
        }
        let Some(ka) = self.keepalive.as_deref_mut() else {
            return Ok(0);
        };
        loop {
            let dead_at = ka.last_rx + ka.cfg.timeout;
            let wake = dead_at.min(ka.next_ping);
            let rs = &mut self.rs;
            match tokio::time::timeout_at(wake, poll_fn(|cx| link.poll_fill(rs, cx))).await {
                Ok(r) => {
                    let n = r?;
                    ka.last_rx = Instant::now();
                    ka.next_ping = ka.last_rx + ka.cfg.interval;
                    return Ok(n);
                }
                Err(_) => {
                    let now = Instant::now();
                    if now >= dead_at {
                        // Like a protocol error: `closed` is set only once the
                        // 1011 close is out (or the close deadline passed), so
                        // a cancelled read comes back here and still returns
                        // the keepalive timeout.
                        self.keepalive_failed = true;
                        return self.fail_keepalive(link).await;
                    }
                    if !link.close_sent() {
                        let frame = match &ka.cfg.message {
                            Some(Message::Text(t)) => {
                                Frame::new(OpCode::Text, t.as_bytes().clone())
                            }
                            Some(Message::Binary(b)) => Frame::new(OpCode::Binary, b.clone()),
                            None => Frame::ping(Bytes::from_static(b"rtwire")),
                        };
                        link.queue(frame);
                        if link.flushes_after_control() {
                            link.after_control(self.settings.write_timeout).await?;
                        }
                    }
                    ka.next_ping = now + ka.cfg.interval;
                }
            }
        }
    }

    /// Reads the next complete data message; `Ok(None)` after the closing
    /// handshake.
    pub(crate) async fn read_message<L: Link>(
        &mut self,
        link: &mut L,
    ) -> Result<Option<Message>, Error> {
        loop {
            let frame = match self.read_frame(link).await {
                Ok(f) => f,
                Err(Error::ConnectionClosed) if self.peer_close.is_some() => return Ok(None),
                Err(e) => return Err(e),
            };
            match frame.opcode {
                OpCode::Text | OpCode::Binary if frame.fin => {
                    return Ok(Some(if frame.opcode == OpCode::Text {
                        Message::Text(Utf8Bytes::from_validated(frame.payload))
                    } else {
                        Message::Binary(frame.payload)
                    }));
                }
                OpCode::Text | OpCode::Binary => {
                    self.asm_text = frame.opcode == OpCode::Text;
                    self.asm_first = Some(frame.payload);
                }
                OpCode::Continuation => {
                    if let Some(first) = self.asm_first.take() {
                        self.asm_buf = BytesMut::with_capacity(first.len() + frame.payload.len());
                        self.asm_buf.extend_from_slice(&first);
                    }
                    self.asm_buf.extend_from_slice(&frame.payload);
                    if frame.fin {
                        let data = std::mem::take(&mut self.asm_buf).freeze();
                        return Ok(Some(if self.asm_text {
                            Message::Text(Utf8Bytes::from_validated(data))
                        } else {
                            Message::Binary(data)
                        }));
                    }
                }
                OpCode::Close => return Ok(None),
                OpCode::Ping | OpCode::Pong => {}
            }
        }
    }
}

/// Checks a frame we are about to send.
pub(crate) fn check_outgoing(frame: &Frame) -> Result<(), Error> {
    if frame.opcode.is_control() && (!frame.fin || frame.payload.len() > 125) {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "control frames must be final and at most 125 bytes",
        )));
    }
    Ok(())
}
