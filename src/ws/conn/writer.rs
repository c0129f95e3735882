//! The write API shared by [`Conn`](super::Conn) and
//! [`WriteHalf`](super::WriteHalf), with `futures::Sink`'s cancel-safety
//! contract: a feed first waits for room (the high-water mark), then queues
//! the frame in one synchronous step. A feed that is cancelled has queued
//! nothing; one that returned `Ok` has queued its frame, which goes out with
//! the next flush or read wait.

use std::future::poll_fn;
use std::task::{ready, Context, Poll};

use bytes::Bytes;

use super::deadline::Deadline;
use super::deflate_out::DeflateOut;
use super::wire::{Settings, Wire, WriteStall};
use super::write_queue::WriteQueue;
use crate::error::{Error, UsageError};
use crate::ws::frame::{Frame, OpCode};
use crate::ws::message::Message;
use crate::ws::role::Role;

/// A borrowed view of one connection's write side.
pub(crate) struct Writer<'a, W> {
    pub(crate) wire: W,
    pub(crate) deadline: &'a mut Deadline,
    pub(crate) stall: &'a mut WriteStall,
    pub(crate) settings: Settings,
    pub(crate) role: Role,
    /// The connection is finished (a whole `Conn` knows; a write half
    /// learns it from the stream).
    pub(crate) closed: bool,
    /// permessage-deflate, when negotiated: messages are compressed here,
    /// before the queue (and, for a split connection, its lock) is taken.
    pub(crate) deflate: Option<&'a mut DeflateOut>,
}

impl<W: Wire> Writer<'_, W> {
    /// Waits until the queue is at or under the high-water mark.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let hw = self.settings.high_water;
        while self.wire.queue(|q| q.buffered()) > hw {
            let t = self.settings.write_timeout;
            ready!(self
                .stall
                .poll_drain(&mut self.wire, cx, hw, t, self.deadline))?;
        }
        Poll::Ready(Ok(()))
    }

    /// Writes out everything queued, bounded by the write timeout.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let t = self.settings.write_timeout;
        self.stall
            .poll_drain(&mut self.wire, cx, 0, t, self.deadline)
    }

    /// Queues `frame` now if it needs no wait: the queue has room, and no
    /// compression has to happen outside the queue (one step, one lock for
    /// a split connection). `None`: it must go through
    /// [`feed_frame`](Self::feed_frame).
    #[inline]
    pub(crate) fn try_feed(&mut self, frame: &Frame) -> Option<Result<(), Error>> {
        self.try_queue(|q| q.check(frame).map(|()| q.start_send(frame)))
    }

    /// [`try_feed`](Self::try_feed) for a whole text or binary message
    /// copied from `payload` into the queue. `None`: it must wait for
    /// room, or be compressed first.
    #[inline]
    pub(crate) fn try_feed_copied(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
    ) -> Option<Result<(), Error>> {
        self.try_queue(|q| q.send_copied(opcode, payload))
    }

    /// Runs `f` on the queue when a feed needs no wait: open, nothing to
    /// compress first, room under the high-water mark (checked in the same
    /// step). `None`: take the slow path.
    #[inline]
    fn try_queue(
        &mut self,
        f: impl FnOnce(&mut WriteQueue) -> Result<(), Error>,
    ) -> Option<Result<(), Error>> {
        if self.closed {
            return Some(Err(Error::ConnectionClosed));
        }
        if self.deflate.is_some() {
            return None;
        }
        self.queue_if_room(f)
    }

    /// Runs `f` on the queue if it is at or under the high-water mark (in
    /// the same step as the check); `None` if it is over.
    #[inline]
    fn queue_if_room<R>(&mut self, f: impl FnOnce(&mut WriteQueue) -> R) -> Option<R> {
        let hw = self.settings.high_water;
        self.wire.queue(|q| (q.buffered() <= hw).then(|| f(q)))
    }

    /// Validates `frame`, waits for room, queues it.
    pub(crate) async fn feed_frame(&mut self, frame: Frame) -> Result<(), Error> {
        if let Some(r) = self.try_feed(&frame) {
            return r;
        }
        self.check(&frame)?;
        poll_fn(|cx| self.poll_ready(cx)).await?;
        self.queue_waited(&frame)
    }

    /// The slow path's first step, before the wait for room: a frame that
    /// could never be queued fails now.
    pub(crate) fn check(&mut self, frame: &Frame) -> Result<(), Error> {
        self.wire.queue(|q| q.check(frame))
    }

    /// The slow path's last step, after the wait for room ([`poll_ready`]
    /// returned `Ready(Ok)`): compresses (when negotiated) and queues
    /// `frame`, synchronously.
    ///
    /// [`poll_ready`]: Self::poll_ready
    pub(crate) fn queue_waited(&mut self, frame: &Frame) -> Result<(), Error> {
        // After the last await: a cancelled feed compressed nothing. If the
        // check below then fails, our close is queued and nothing will ever
        // follow, so the compressor having moved on does not matter.
        let prepared = self.deflate.as_deref_mut().and_then(|d| d.prepare(frame));
        // Checked again in the same step as queueing: the read side of a
        // split connection may have queued its close meanwhile.
        self.wire.queue(|q| {
            q.check(frame)?;
            q.start_send(prepared.as_ref().unwrap_or(frame));
            Ok(())
        })
    }

    /// Queues pre-encoded frames (server role).
    pub(crate) async fn feed_encoded(&mut self, frames: Bytes) -> Result<(), Error> {
        if self.role != Role::Server {
            return Err(Error::Usage(UsageError::EncodedFramesNeedServerRole));
        }
        if self.closed {
            return Err(Error::ConnectionClosed);
        }
        let fits = self
            .deflate
            .as_deref()
            .is_some_and(|d| d.shared_window().is_some());
        super::write_queue::check_encoded_frames(&frames, fits)?;
        self.feed_checked(frames).await
    }

    /// Queues frames whose headers need no check: already checked, or the
    /// hub's own, encoded by it for this connection (compressed only where
    /// `shared_deflate_window` said so). The frames are immutable, so what
    /// was checked once holds; only the queue's state is checked again
    /// after the wait, in the step that queues them.
    pub(crate) async fn feed_checked(&mut self, frames: Bytes) -> Result<(), Error> {
        if let Some(r) = self.try_feed_checked(&frames) {
            return r;
        }
        poll_fn(|cx| self.poll_ready(cx)).await?;
        self.queue_checked(&frames)
    }

    /// [`feed_checked`](Self::feed_checked) without a wait: `Some` when it
    /// is done (queued, or failed), `None` when it must wait for room.
    pub(crate) fn try_feed_checked(&mut self, frames: &Bytes) -> Option<Result<(), Error>> {
        if self.role != Role::Server {
            return Some(Err(Error::Usage(UsageError::EncodedFramesNeedServerRole)));
        }
        if self.closed {
            return Some(Err(Error::ConnectionClosed));
        }
        // Room now: checked and queued in one step, as in `try_feed`.
        let push = |q: &mut WriteQueue| {
            q.check_encoded_state()?;
            q.push_encoded(frames);
            Ok(())
        };
        if let Some(r) = self.queue_if_room(push) {
            return Some(r);
        }
        self.wire.queue(|q| q.check_encoded_state()).err().map(Err)
    }

    /// [`feed_checked`](Self::feed_checked)'s last step, after the wait
    /// for room: the queue's state checked again and the frames queued, in
    /// one step.
    pub(crate) fn queue_checked(&mut self, frames: &Bytes) -> Result<(), Error> {
        self.wire.queue(|q| {
            q.check_encoded_state()?;
            q.push_encoded(frames);
            Ok(())
        })
    }

    /// Writes out everything queued.
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Queues `msg` as frames of at most `frame_size` bytes (slices of the
    /// payload), then flushes. The frames are queued together, after one
    /// wait for room: a call cancelled before that queued nothing, one
    /// cancelled later queued the whole message (a message can never be
    /// left open half-sent). The queue may pass the high-water mark by the
    /// size of the message.
    pub(crate) async fn send_fragmented(
        &mut self,
        msg: Message,
        frame_size: usize,
    ) -> Result<(), Error> {
        if self.closed {
            return Err(Error::ConnectionClosed);
        }
        let opcode = msg.opcode();
        let payload = msg.into_payload();
        let size = frame_size.max(1);
        let first = Frame::new(opcode, Bytes::new());
        self.wire.queue(|q| q.check(&first))?;
        poll_fn(|cx| self.poll_ready(cx)).await?;
        let (payload, rsv) = match self
            .deflate
            .as_deref_mut()
            .and_then(|d| d.compress_message(&payload))
        {
            Some(z) => (z, 0b100),
            None => (payload, 0),
        };
        self.wire.queue(|q| {
            q.check(&first)?;
            q.start_send_fragmented(opcode, &payload, rsv, size);
            Ok::<(), Error>(())
        })?;
        self.flush().await
    }
}
