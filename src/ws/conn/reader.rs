//! The read engine: receive buffer → [`Decoder`] → [`Frame`] → the
//! application, with everything the protocol does on the way: pongs, the
//! closing handshake, failing the connection on a protocol error, keepalive
//! pings and the dead-peer deadline, backpressure, and message assembly.
//!
//! It is a poll-based state machine: every decision is recorded in `self`
//! before anything can return `Pending`, so a read dropped at any point
//! (`select!`) loses nothing and the next call resumes where it stopped.

use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::assemble::{message, Assembler};
use super::deadline::Deadline;
use super::read_buf::{detach, RecvBuf, COPY_BELOW};
use super::wire::{Settings, Wire, WriteStall};
use crate::error::{Error, ProtocolError, TimeoutKind, UsageError};
use crate::ws::close::{parse_close_payload, CloseCode, CloseFrame};
use crate::ws::config::{Config, Keepalive};
use crate::ws::decoder::Decoder;
use crate::ws::frame::{Frame, OpCode};
use crate::ws::message::Message;
use crate::ws::role::Role;

#[derive(Debug)]
struct KeepaliveState {
    cfg: Keepalive,
    last_rx: Instant,
    next_ping: Instant,
}

/// How a closing connection ends, and what the read returns then.
#[derive(Debug)]
enum Outcome {
    /// The peer's close frame (returned once the handshake is done).
    PeerClose(Frame),
    /// We failed the connection after the peer broke the protocol.
    Protocol(ProtocolError),
    /// Nothing arrived within the keepalive timeout.
    Keepalive,
    /// The peer ended the stream without a close frame.
    Eof,
}

impl Outcome {
    fn into_result(self) -> Result<Frame, Error> {
        match self {
            Outcome::PeerClose(f) => Ok(f),
            Outcome::Protocol(e) => Err(Error::Protocol(e)),
            Outcome::Keepalive => Err(Error::Timeout(TimeoutKind::Keepalive)),
            Outcome::Eof => Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into())),
        }
    }

    /// The steps of finishing the connection, in order.
    fn steps(&self, role: Role) -> &'static [Step] {
        match self {
            // RFC 6455 §7.1.1: the server closes the TCP connection first,
            // so a client waits for it.
            Outcome::PeerClose(_) if role == Role::Client => {
                &[Step::Flush, Step::Drain, Step::Shutdown]
            }
            Outcome::PeerClose(_) | Outcome::Keepalive | Outcome::Eof => {
                &[Step::Flush, Step::Shutdown]
            }
            // Read what the peer still sends (its close reply) so closing
            // the socket does not reset it and destroy our close in flight.
            Outcome::Protocol(_) => &[Step::Flush, Step::Shutdown, Step::Drain],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Write out everything queued (our close frame last).
    Flush,
    /// Shut down our write direction.
    Shutdown,
    /// Discard input until the peer's end of stream.
    Drain,
}

#[derive(Debug)]
struct Closing {
    outcome: Outcome,
    step: usize,
    deadline: Instant,
}

#[derive(Debug)]
enum State {
    Open,
    Closing(Box<Closing>),
    Closed,
}

/// Read-side connection state.
#[derive(Debug)]
pub(crate) struct Reader {
    recv: RecvBuf,
    decoder: Decoder,
    pub(crate) role: Role,
    pub(crate) settings: Settings,
    state: State,
    /// The peer's close frame was received (its code, if it had one).
    got_close: bool,
    /// Boxed: set once, at the end, and 40 bytes inline.
    peer_close: Option<Box<CloseFrame>>,
    keepalive: Option<Box<KeepaliveState>>,
    /// The timer of whatever this half is waiting for.
    pub(crate) deadline: Deadline,
    /// The write-timeout state of flushes this half runs.
    pub(crate) stall: WriteStall,
    asm: Assembler,
    /// `read_frame` returned a non-final data frame: a message is open on
    /// the frame API.
    raw_open: bool,
    /// The deadline of the closing handshake, once one started.
    close_by: Option<Instant>,
    /// permessage-deflate, when negotiated.
    #[cfg(feature = "deflate")]
    inflate: Option<Box<super::inflate::InflateState>>,
}

impl Reader {
    pub(crate) fn new(decoder: Decoder, leftover: bytes::BytesMut, config: &Config) -> Self {
        let now = config.timer.now();
        Reader {
            recv: RecvBuf::new(leftover),
            role: decoder.role(),
            decoder,
            settings: Settings::from_config(config),
            state: State::Open,
            got_close: false,
            peer_close: None,
            keepalive: config.keepalive.clone().map(|mut cfg| {
                // A zero interval would ping in a busy loop.
                cfg.interval = cfg.interval.max(Duration::from_millis(1));
                Box::new(KeepaliveState {
                    next_ping: after(now, cfg.interval),
                    last_rx: now,
                    cfg,
                })
            }),
            deadline: Deadline::new(config.timer),
            stall: WriteStall::default(),
            asm: Assembler::default(),
            raw_open: false,
            close_by: None,
            #[cfg(feature = "deflate")]
            inflate: None,
        }
    }

    /// Turns on inflating of compressed messages (before any frame is read).
    #[cfg(feature = "deflate")]
    pub(crate) fn set_deflate(&mut self, params: &crate::ws::deflate::DeflateParams) {
        self.decoder.set_per_message_deflate(true);
        self.inflate = Some(Box::new(super::inflate::InflateState::new(
            params, self.role,
        )));
    }

    /// Whether the connection is finished.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Marks the connection finished (e.g. our close timed out).
    pub(crate) fn set_closed(&mut self) {
        self.state = State::Closed;
    }

    /// The peer's close frame, once received.
    pub(crate) fn peer_close(&self) -> Option<&CloseFrame> {
        self.peer_close.as_deref()
    }

    /// The next frame for `read_frame`.
    pub(crate) fn poll_frame<W: Wire>(
        &mut self,
        w: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Frame, Error>> {
        if self.asm.is_active() {
            return Poll::Ready(Err(Error::Usage(UsageError::MessageInProgress)));
        }
        let frame = ready!(self.poll_next(w, cx))?;
        if matches!(
            frame.opcode,
            OpCode::Text | OpCode::Binary | OpCode::Continuation
        ) {
            self.raw_open = !frame.fin;
        }
        Poll::Ready(Ok(frame))
    }

    /// The next complete message for `read_message`; `None` after the
    /// closing handshake.
    pub(crate) fn poll_message<W: Wire>(
        &mut self,
        w: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Message>, Error>> {
        if self.raw_open {
            return Poll::Ready(Err(Error::Usage(UsageError::MessageInProgress)));
        }
        loop {
            let frame = match ready!(self.poll_next(w, cx)) {
                Ok(f) => f,
                Err(Error::ConnectionClosed) if self.got_close => return Poll::Ready(Ok(None)),
                Err(e) => return Poll::Ready(Err(e)),
            };
            match frame.opcode {
                OpCode::Text | OpCode::Binary if frame.fin => {
                    let text = frame.opcode == OpCode::Text;
                    return Poll::Ready(Ok(Some(message(text, frame.payload))));
                }
                OpCode::Text | OpCode::Binary => {
                    self.asm.start(frame.opcode == OpCode::Text, frame.payload);
                }
                OpCode::Continuation => {
                    if let Some(m) = self.asm.push(&frame.payload, frame.fin) {
                        return Poll::Ready(Ok(Some(m)));
                    }
                }
                OpCode::Close => return Poll::Ready(Ok(None)),
                OpCode::Ping | OpCode::Pong => {}
            }
        }
    }

    /// Reads the next frame, running the protocol on the way.
    pub(crate) fn poll_next<W: Wire>(
        &mut self,
        w: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Frame, Error>> {
        loop {
            match self.state {
                State::Open => {}
                State::Closing(_) => return self.poll_closing(w, cx).map(Outcome::into_result),
                State::Closed => return Poll::Ready(Err(Error::ConnectionClosed)),
            }
            // Small payloads get their own memory (the slab or an
            // allocation) so one the application keeps pins nothing else.
            // With nothing buffered there is nothing to decode (a decoder
            // that failed has put the connection in `Closing` already).
            // (With deflate, after inflating instead: a compressed payload
            // would be copied for nothing.)
            #[cfg(feature = "deflate")]
            let below = if self.inflate.is_some() {
                0
            } else {
                COPY_BELOW
            };
            #[cfg(not(feature = "deflate"))]
            let below = COPY_BELOW;
            let decoded = if self.recv.buf.is_empty() {
                Ok(None)
            } else {
                self.decoder
                    .decode_copying(&mut self.recv.buf, below, detach)
            };
            match decoded {
                Ok(Some(frame)) => {
                    self.recv.release_if_empty();
                    #[cfg(feature = "deflate")]
                    let mut frame = frame;
                    #[cfg(feature = "deflate")]
                    if let Some(inf) = self.inflate.as_deref_mut() {
                        let max = self.decoder.limits().max_message_size;
                        if let Err(e) = inf.frame(&mut frame, max) {
                            let close = Frame::close(e.close_code(), &e.to_string());
                            w.queue(|q| q.push_close(&close));
                            self.start_closing(Outcome::Protocol(e));
                            continue;
                        }
                        if !frame.payload.is_empty() && frame.payload.len() < COPY_BELOW {
                            frame.payload = detach(&frame.payload);
                        }
                    }
                    match frame.opcode {
                        OpCode::Ping if self.settings.auto_pong => {
                            let pong = Frame::pong(frame.payload.clone());
                            // Written with the next flush or read wait.
                            w.queue(|q| q.push_reply(&pong));
                        }
                        OpCode::Close => {
                            // The decoder validated the payload already.
                            let cf = parse_close_payload(&frame.payload).ok().flatten();
                            let code = cf.as_ref().map_or(CloseCode::NORMAL, |c| c.code);
                            w.queue(|q| q.push_close(&Frame::close(code, "")));
                            self.got_close = true;
                            self.peer_close = cf.map(Box::new);
                            self.start_closing(Outcome::PeerClose(frame));
                            continue;
                        }
                        _ => {}
                    }
                    return Poll::Ready(Ok(frame));
                }
                Ok(None) => {}
                Err(e) => {
                    let close = Frame::close(e.close_code(), &e.to_string());
                    w.queue(|q| q.push_close(&close));
                    self.start_closing(Outcome::Protocol(e));
                    continue;
                }
            }
            // More input is needed. Backpressure first: while the pongs we
            // queued are over the high-water mark (a peer that pings and
            // does not read), reading waits for the queue to drain.
            if w.queue(|q| q.reply_bytes()) > self.settings.high_water {
                match self.poll_backpressure(w, cx) {
                    Poll::Ready(Ok(())) => continue,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            match w.poll_read(cx, &mut self.recv, self.decoder.remaining()) {
                Poll::Ready(Ok(0)) => {
                    // Replies already queued still go out before we end.
                    self.start_closing(Outcome::Eof);
                }
                Poll::Ready(Ok(_)) => {
                    if let Some(ka) = self.keepalive.as_deref_mut() {
                        ka.last_rx = self.settings.timer.now();
                        ka.next_ping = after(ka.last_rx, ka.cfg.interval);
                    }
                }
                Poll::Ready(Err(e)) => {
                    self.state = State::Closed;
                    return Poll::Ready(Err(Error::Io(e)));
                }
                Poll::Pending => {
                    ready!(self.poll_keepalive(w, cx));
                }
            }
        }
    }

    /// Drains the write queue for backpressure, bounded by the write
    /// timeout and by the keepalive's dead-peer deadline (one timer, at the
    /// earlier of the two). An error ends the connection.
    fn poll_backpressure<W: Wire>(
        &mut self,
        w: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>> {
        let timeout = self.settings.write_timeout;
        let dead_at = self
            .keepalive
            .as_deref()
            .map(|ka| after(ka.last_rx, ka.cfg.timeout));
        let r = match self.stall.poll_drain(w, cx, 0, timeout, &mut self.deadline) {
            Poll::Ready(r) => r,
            Poll::Pending => {
                let Some(dead_at) = dead_at else {
                    return Poll::Pending;
                };
                // The keepalive deadline may come first: wait for the
                // earlier one (the stall poll above armed the later).
                let at = self.stall.deadline().map_or(dead_at, |s| s.min(dead_at));
                ready!(self.deadline.poll_at(cx, at));
                if self.settings.timer.now() < dead_at {
                    return Poll::Ready(Err(Error::Timeout(TimeoutKind::Write)));
                }
                Err(Error::Timeout(TimeoutKind::Keepalive))
            }
        };
        if r.is_err() {
            self.state = State::Closed;
        }
        Poll::Ready(r)
    }

    /// While waiting for input: sends a keepalive ping when one is due and
    /// fails the connection when the peer has been silent too long.
    /// `Ready` when it did something (the caller loops), `Pending` to wait.
    fn poll_keepalive<W: Wire>(&mut self, w: &mut W, cx: &mut Context<'_>) -> Poll<()> {
        let Some(ka) = self.keepalive.as_deref_mut() else {
            return Poll::Pending;
        };
        let dead_at = after(ka.last_rx, ka.cfg.timeout);
        ready!(self.deadline.poll_at(cx, dead_at.min(ka.next_ping)));
        let now = self.settings.timer.now();
        if now >= dead_at {
            let close = Frame::close(CloseCode::INTERNAL_ERROR, "keepalive timeout");
            w.queue(|q| q.push_close(&close));
            self.start_closing(Outcome::Keepalive);
            return Poll::Ready(());
        }
        let frame = match &ka.cfg.message {
            Some(Message::Text(t)) => Frame::new(OpCode::Text, t.as_bytes().clone()),
            Some(Message::Binary(b)) => Frame::new(OpCode::Binary, b.clone()),
            None => Frame::ping(Bytes::from_static(b"rtwire")),
        };
        // Recorded before anything can wait: a cancelled read does not
        // send this ping twice.
        ka.next_ping = after(now, ka.cfg.interval);
        w.queue(|q| q.push_keepalive(frame));
        Poll::Ready(())
    }

    fn start_closing(&mut self, outcome: Outcome) {
        let deadline = self.close_deadline();
        self.state = State::Closing(Box::new(Closing {
            outcome,
            step: 0,
            deadline,
        }));
    }

    /// Runs the closing steps, each bounded by the close deadline; a step
    /// that fails or runs out of time ends the connection there.
    fn poll_closing<W: Wire>(&mut self, w: &mut W, cx: &mut Context<'_>) -> Poll<Outcome> {
        loop {
            let State::Closing(c) = &mut self.state else {
                return Poll::Ready(Outcome::Eof);
            };
            let steps = c.outcome.steps(self.role);
            let Some(&step) = steps.get(c.step) else {
                return Poll::Ready(self.finish());
            };
            let done = match step {
                Step::Flush => match w.poll_drain(cx, 0) {
                    Poll::Ready(Ok(())) => Some(true),
                    Poll::Ready(Err(_)) => Some(false),
                    Poll::Pending => None,
                },
                Step::Shutdown => match w.poll_shutdown(cx) {
                    Poll::Ready(_) => Some(true),
                    Poll::Pending => None,
                },
                Step::Drain => match w.poll_read(cx, &mut self.recv, 0) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => Some(true),
                    Poll::Ready(Ok(_)) => {
                        self.recv.discard();
                        // A stream that is always ready must not keep us
                        // here past the deadline.
                        if self.settings.timer.now() >= c.deadline {
                            return Poll::Ready(self.finish());
                        }
                        continue;
                    }
                    Poll::Pending => None,
                },
            };
            match done {
                Some(true) => c.step += 1,
                Some(false) => return Poll::Ready(self.finish()),
                None => {
                    let deadline = c.deadline;
                    ready!(self.deadline.poll_at(cx, deadline));
                    return Poll::Ready(self.finish());
                }
            }
        }
    }

    fn finish(&mut self) -> Outcome {
        self.recv.discard();
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Closing(c) => c.outcome,
            _ => Outcome::Eof,
        }
    }

    /// When the closing handshake in progress gives up: fixed on first use,
    /// so cancelled and repeated calls share one close timeout.
    pub(crate) fn close_deadline(&mut self) -> Instant {
        let t = self.settings.close_timeout;
        *self
            .close_by
            .get_or_insert_with(|| after(self.settings.timer.now(), t))
    }
}

/// `at + d`, saturating far in the future (a `Duration::MAX` timeout means
/// "never", not a panic).
pub(crate) fn after(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .unwrap_or_else(|| at + Duration::from_secs(86_400 * 365 * 30))
}
