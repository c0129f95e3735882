//! The write queue: frames → encoded bytes waiting for the socket, written
//! coalesced or vectored, in exactly the order they were queued.
//!
//! Small frames are encoded into one coalescing buffer, so a burst of
//! replies goes out in one write. A payload of at least the vectored
//! threshold (server role) is not copied: its header is encoded into the
//! buffer, and the payload `Bytes` is queued as a segment that records
//! where in the buffer's bytes it goes (right after its header). The
//! buffer is never split for it: a split would allocate (the buffer's
//! storage becomes shared) and make the next header's `reserve` allocate
//! again. A write offers, in order, the buffer up to the first segment,
//! that segment, the buffer up to the next, and so on; the order is right
//! because every write offers a prefix of that sequence.
//!
//! The queue also keeps the per-direction protocol state every writer must
//! respect: whether our close frame is queued (nothing may follow it),
//! whether a fragmented data message is in progress (a new message may not
//! start inside it, so a keepalive *message* waits for its end), and the
//! outgoing-frame checks.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use smallvec::SmallVec;
use tokio::io::AsyncWrite;

use crate::error::{Error, UsageError};
use crate::ws::close::parse_close_payload;
use crate::ws::encoder::Encoder;
use crate::ws::frame::{Frame, OpCode};
use crate::ws::role::Role;

/// Release the coalescing buffer after a flush when it grew beyond this.
const KEEP_WRITE_CAPACITY: usize = 64 * 1024;
/// Most slices offered to one vectored write.
const MAX_SLICES: usize = 64;

/// Encoded frames waiting to be written, and the outgoing protocol state.
#[derive(Debug)]
pub(crate) struct WriteQueue {
    encoder: Encoder,
    /// Coalesced bytes: small frames and the headers of large ones.
    buf: BytesMut,
    /// Zero-copy payloads, each at its place in `buf`'s bytes.
    segments: VecDeque<Segment>,
    /// Bytes in `segments`.
    queued: usize,
    /// Bytes taken off the front of `buf` so far (wrapping): what turns a
    /// segment's place into an offset in `buf`.
    consumed: usize,
    vectored_threshold: usize,
    /// Bytes written so far (progress, for the write timeout).
    written: u64,
    close_sent: bool,
    /// A data frame without FIN was queued: a fragmented message is open.
    in_message: bool,
    /// A keepalive message waiting for the open message to end.
    deferred: Option<Box<Frame>>,
    /// Bytes the read side queued (pongs) since the queue was last empty:
    /// what a peer that sends pings and never reads makes us buffer. The
    /// read side pauses above the high-water mark; the application's own
    /// writes are bounded by its feeds, not by this.
    reply_bytes: usize,
}

impl WriteQueue {
    /// A queue for `role`; payloads of at least `vectored_threshold` bytes
    /// are written without a copy (server role only: a client masks).
    pub(crate) fn new(role: Role, vectored_threshold: usize) -> Self {
        WriteQueue {
            encoder: Encoder::new(role),
            buf: BytesMut::new(),
            segments: VecDeque::new(),
            queued: 0,
            consumed: 0,
            vectored_threshold: if role == Role::Server {
                vectored_threshold.max(1)
            } else {
                usize::MAX
            },
            written: 0,
            close_sent: false,
            in_message: false,
            deferred: None,
            reply_bytes: 0,
        }
    }

    /// Coalesces everything (for streams that cannot write vectored).
    pub(crate) fn disable_vectored(&mut self) {
        self.vectored_threshold = usize::MAX;
    }

    /// Bytes waiting to be written.
    #[inline]
    pub(crate) fn buffered(&self) -> usize {
        self.queued + self.buf.len()
    }

    /// Bytes written so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Bytes of read-side replies queued since the queue was last empty.
    pub(crate) fn reply_bytes(&self) -> usize {
        self.reply_bytes
    }

    /// Checks that `frame` may be queued now: nothing after our close, a
    /// valid control frame, no RSV bits (no extension is negotiated), and
    /// data frames in a valid fragmentation order.
    #[inline]
    pub(crate) fn check(&self, frame: &Frame) -> Result<(), Error> {
        if self.close_sent {
            return Err(if frame.opcode == OpCode::Close {
                Error::ConnectionClosed
            } else {
                Error::AlreadyClosing
            });
        }
        if frame.rsv != 0 {
            return Err(Error::Usage(UsageError::ReservedBits));
        }
        match frame.opcode {
            OpCode::Close | OpCode::Ping | OpCode::Pong => {
                if !frame.fin || frame.payload.len() > 125 {
                    return Err(Error::Usage(UsageError::InvalidControlFrame));
                }
                if frame.opcode == OpCode::Close {
                    match parse_close_payload(&frame.payload) {
                        Ok(_) => {}
                        Err(crate::ProtocolError::InvalidCloseCode(c)) => {
                            return Err(Error::Usage(UsageError::InvalidCloseCode(c)))
                        }
                        Err(_) => return Err(Error::Usage(UsageError::InvalidClosePayload)),
                    }
                }
            }
            OpCode::Continuation if !self.in_message => {
                return Err(Error::Usage(UsageError::FragmentOrder));
            }
            OpCode::Text | OpCode::Binary if self.in_message => {
                return Err(Error::Usage(UsageError::FragmentOrder));
            }
            _ => {}
        }
        Ok(())
    }

    /// Queues a frame that passed [`check`](Self::check) (or its compressed
    /// form, which may carry RSV1).
    #[inline]
    pub(crate) fn start_send(&mut self, frame: &Frame) {
        match frame.opcode {
            OpCode::Close => self.close_sent = true,
            OpCode::Ping | OpCode::Pong => {}
            OpCode::Text | OpCode::Binary | OpCode::Continuation => self.in_message = !frame.fin,
        }
        self.push(frame);
        self.push_deferred();
    }

    /// Queues `payload` as one message in frames of at most `size` bytes
    /// (slices of it), the first with `rsv` (RSV1 for a message compressed
    /// as a whole). The first frame must have passed [`check`](Self::check).
    pub(crate) fn start_send_fragmented(
        &mut self,
        opcode: OpCode,
        payload: &Bytes,
        rsv: u8,
        size: usize,
    ) {
        let size = size.max(1);
        let mut start = 0;
        loop {
            let end = start + size.min(payload.len() - start);
            let fin = end == payload.len();
            let (op, bits) = if start == 0 {
                (opcode, rsv)
            } else {
                (OpCode::Continuation, 0)
            };
            self.in_message = !fin;
            let mut f = Frame::new(op, payload.slice(start..end)).with_fin(fin);
            f.rsv = bits;
            self.push(&f);
            if fin {
                break;
            }
            start = end;
        }
        self.push_deferred();
    }

    /// Queues a whole (FIN) text or binary message copied from `payload`
    /// into the coalescing buffer, whatever its size: no `Frame`, no
    /// reference count. Fails as [`check`](Self::check) would for such a
    /// frame: after our close, or inside an open fragmented message.
    #[inline]
    pub(crate) fn send_copied(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), Error> {
        debug_assert!(matches!(opcode, OpCode::Text | OpCode::Binary));
        self.check_encoded_state()?;
        // Not inside a message, so nothing is deferred: no push_deferred.
        self.encoder
            .encode_parts(true, 0, opcode, payload, &mut self.buf);
        Ok(())
    }

    /// Queues a keepalive message held back for the end of a fragmented
    /// message, once it ended.
    #[inline(always)]
    fn push_deferred(&mut self) {
        if !self.in_message {
            if let Some(d) = self.deferred.take() {
                self.push(&d);
            }
        }
    }

    /// Queues a control reply of the read side (a pong); dropped once our
    /// close is queued (nothing may follow it).
    pub(crate) fn push_reply(&mut self, frame: &Frame) {
        if !self.close_sent {
            self.reply_bytes += 2 + frame.payload.len();
            self.push(frame);
        }
    }

    /// Queues our close frame unless one is queued already.
    pub(crate) fn push_close(&mut self, frame: &Frame) {
        if !self.close_sent {
            self.close_sent = true;
            self.push(frame);
        }
    }

    /// Queues a keepalive ping or message. A message is held back while a
    /// fragmented message is open (it would land between its fragments)
    /// and sent right after its last fragment.
    pub(crate) fn push_keepalive(&mut self, frame: Frame) {
        if self.close_sent {
            return;
        }
        if self.in_message && !frame.opcode.is_control() {
            self.deferred = Some(Box::new(frame));
        } else {
            self.push(&frame);
        }
    }

    /// Checks that pre-encoded frames may be queued now: not after our
    /// close, not inside an open fragmented message. (What the frames
    /// themselves may be is [`check_encoded_frames`], checked once, outside
    /// any lock.)
    pub(crate) fn check_encoded_state(&self) -> Result<(), Error> {
        if self.close_sent {
            return Err(Error::AlreadyClosing);
        }
        if self.in_message {
            return Err(Error::Usage(UsageError::FragmentOrder));
        }
        Ok(())
    }

    /// Queues bytes that are already one or more complete messages (no
    /// close frame: the queue would not know that it was sent).
    /// Borrowed: only a segment (a large one) keeps a reference.
    pub(crate) fn push_encoded(&mut self, bytes: &Bytes) {
        if bytes.is_empty() {
            return;
        }
        if bytes.len() >= self.vectored_threshold {
            self.push_segment(bytes.clone());
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }

    #[inline]
    fn push(&mut self, frame: &Frame) {
        if frame.payload.len() >= self.vectored_threshold
            && self
                .encoder
                .encode_header_for_vectored(frame, &mut self.buf)
        {
            self.push_segment(frame.payload.clone());
            return;
        }
        self.encoder.encode(frame, &mut self.buf);
    }

    /// Queues `payload` (not empty) to go after everything queued so far.
    fn push_segment(&mut self, payload: Bytes) {
        self.queued += payload.len();
        self.segments.push_back(Segment {
            at: self.consumed.wrapping_add(self.buf.len()),
            payload,
        });
    }

    /// The offset in `buf` before which `seg` goes.
    #[inline]
    fn offset(&self, seg: &Segment) -> usize {
        seg.at.wrapping_sub(self.consumed)
    }

    /// Takes `k` (at most `buf.len()`) written bytes off the front of `buf`.
    fn consume_buf(&mut self, k: usize) {
        if k >= self.buf.len() {
            // Cleared, not advanced: the buffer keeps its start, so the
            // next reply is encoded without a `reserve` that first has to
            // move the free space back to the front.
            self.consumed = self.consumed.wrapping_add(self.buf.len());
            self.buf.clear();
        } else {
            self.consumed = self.consumed.wrapping_add(k);
            self.buf.advance(k);
        }
    }

    /// Writes until at most `below` bytes are queued; with `below == 0`,
    /// also flushes the stream. Cancel-safe: progress is recorded as it is
    /// made, and nothing is ever written twice or out of order.
    pub(crate) fn poll_drain<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
        below: usize,
    ) -> Poll<io::Result<()>> {
        while self.buffered() > below {
            let n = ready!(self.poll_write_once(io, cx))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.advance(n);
        }
        if below == 0 {
            ready!(Pin::new(&mut *io).poll_flush(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    /// One write of the front of the queue. Called only when something is
    /// queued; never offers an empty slice first.
    fn poll_write_once<W: AsyncWrite + Unpin + ?Sized>(
        &self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let io = Pin::new(io);
        if self.segments.is_empty() {
            return io.poll_write(cx, &self.buf);
        }
        // Not an initialised array: filling 64 empty slices (1 KiB of
        // stores) cost more than the few that are used.
        let mut slices: SmallVec<[IoSlice<'_>; MAX_SLICES]> = SmallVec::new();
        // Offset in `buf` of what is offered next.
        let mut cursor = 0;
        for seg in &self.segments {
            let at = self.offset(seg);
            if at > cursor {
                if slices.len() == MAX_SLICES {
                    break;
                }
                slices.push(IoSlice::new(&self.buf[cursor..at]));
                cursor = at;
            }
            if slices.len() == MAX_SLICES {
                break;
            }
            slices.push(IoSlice::new(&seg.payload));
        }
        // The rest of the buffer comes after every segment: offer it only
        // when all of them are offered too (the loop stops early only with
        // every slot taken).
        if slices.len() < MAX_SLICES && cursor < self.buf.len() {
            slices.push(IoSlice::new(&self.buf[cursor..]));
        }
        if slices.len() == 1 {
            return io.poll_write(cx, &slices[0]);
        }
        io.poll_write_vectored(cx, &slices)
    }

    /// Credits `n` written bytes to the queue, front first.
    fn advance(&mut self, mut n: usize) {
        self.written += n as u64;
        while n > 0 {
            let consumed = self.consumed;
            let Some(front) = self.segments.front_mut() else {
                // A stream never reports more than it was offered; clamp
                // anyway rather than panic on a broken one.
                self.consume_buf(n);
                break;
            };
            let at = front.at.wrapping_sub(consumed);
            if at > 0 {
                // Coalesced bytes ahead of the front segment.
                let k = n.min(at);
                self.consume_buf(k);
                n -= k;
                continue;
            }
            let k = n.min(front.payload.len());
            front.payload.advance(k);
            self.queued -= k;
            n -= k;
            if front.payload.is_empty() {
                self.segments.pop_front();
            }
        }
        if self.buffered() == 0 {
            self.reply_bytes = 0;
            if self.buf.capacity() > KEEP_WRITE_CAPACITY {
                self.buf = BytesMut::new();
            } else {
                self.buf.clear();
            }
        }
    }
}

/// A zero-copy payload in the write queue.
#[derive(Debug)]
struct Segment {
    /// Where it goes: after this many of the buffer's bytes (counted from
    /// the queue's start, wrapping; see `WriteQueue::consumed`).
    at: usize,
    payload: Bytes,
}

/// Checks what pre-encoded frames may hold: a compressed (RSV1) frame fits
/// only a connection that compresses every message on its own (`fits`):
/// elsewhere it would break the peer's inflate context, or the peer has no
/// deflate at all. No other reserved bit is ever allowed.
pub(crate) fn check_encoded_frames(frames: &[u8], fits: bool) -> Result<(), Error> {
    let mut rest = frames;
    while let Ok(Some((h, n))) = crate::ws::frame::FrameHeader::parse(rest) {
        let ok = h.rsv == 0
            || (fits && h.rsv == 0b100 && matches!(h.opcode, OpCode::Text | OpCode::Binary));
        if !ok {
            return Err(Error::Usage(UsageError::ReservedBits));
        }
        let Some(next) = usize::try_from(h.payload_len)
            .ok()
            .and_then(|len| rest.get(n.checked_add(len)?..))
        else {
            break;
        };
        rest = next;
    }
    Ok(())
}
