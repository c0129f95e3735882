//! Buffers between the codec and the stream: the read side (with a
//! per-thread read arena) and the coalescing, vectored write side.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::codec::{Decoder, Encoder};
use super::frame::Frame;

/// Size of a read-arena block.
const ARENA_BLOCK: usize = 256 * 1024;
/// Largest single read.
const READ_MAX: usize = 64 * 1024 + 16;
/// Smallest read into a connection's own buffer.
const READ_MIN: usize = 4096;

thread_local! {
    /// Free space shared by the connections of one thread. An idle
    /// connection holds no read buffer: a read goes into the arena and the
    /// connection takes exactly the bytes that arrived (`split_to`, no copy).
    /// Frames split from it keep their block alive until they are dropped.
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// The read side: the receive buffer and the decoder.
#[derive(Debug)]
pub(crate) struct ReadState {
    pub(crate) buf: BytesMut,
    pub(crate) decoder: Decoder,
}

impl ReadState {
    pub(crate) fn new(decoder: Decoder, leftover: BytesMut) -> Self {
        ReadState {
            buf: leftover,
            decoder,
        }
    }

    /// Reads more bytes. `Ready(Ok(0))` is end of stream.
    pub(crate) fn poll_fill<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        io: &mut R,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        // Every read goes into the arena. An empty buffer takes exactly
        // the bytes that arrived; a partial frame gets them appended with
        // `unsplit`, which is free when they are adjacent in the arena (this
        // connection made the previous read, the usual case for a large
        // frame arriving in pieces) and one copy otherwise. The arena is
        // zeroed once per block, not per read.
        let want = if self.buf.is_empty() {
            READ_MAX
        } else {
            self.decoder.remaining().clamp(READ_MIN, READ_MAX)
        };
        ARENA.with(|arena| {
            let mut arena = arena.borrow_mut();
            if arena.len() < want {
                *arena = BytesMut::zeroed(ARENA_BLOCK);
            }
            let mut rb = ReadBuf::new(&mut arena[..want]);
            ready!(Pin::new(&mut *io).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            let got = arena.split_to(n);
            if self.buf.is_empty() {
                self.buf = got;
            } else {
                self.buf.unsplit(got);
            }
            Poll::Ready(Ok(n))
        })
    }
}

/// The write side: an encoder, a coalescing buffer and a queue of segments
/// for vectored writes.
#[derive(Debug)]
pub(crate) struct WriteState {
    pub(crate) encoder: Encoder,
    /// Bytes being coalesced (frames encoded in full).
    buf: BytesMut,
    /// Segments queued ahead of `buf` (headers and large payloads).
    queue: VecDeque<Bytes>,
    queued: usize,
    vectored_threshold: usize,
}

/// Release the coalescing buffer after a flush when it grew beyond this.
const KEEP_WRITE_CAPACITY: usize = 64 * 1024;

impl WriteState {
    pub(crate) fn new(encoder: Encoder, vectored_threshold: usize) -> Self {
        WriteState {
            encoder,
            buf: BytesMut::new(),
            queue: VecDeque::new(),
            queued: 0,
            vectored_threshold,
        }
    }

    /// Bytes waiting to be written.
    pub(crate) fn buffered(&self) -> usize {
        self.queued + self.buf.len()
    }

    /// Encodes a frame into the pending output (no I/O).
    pub(crate) fn feed(&mut self, frame: &Frame) {
        if frame.payload.len() >= self.vectored_threshold {
            let Self {
                encoder,
                buf,
                queue,
                ..
            } = self;
            if encoder.encode_header_for_vectored(frame, buf) {
                let head = buf.split().freeze();
                self.queued += head.len() + frame.payload.len();
                queue.push_back(head);
                queue.push_back(frame.payload.clone());
                return;
            }
        }
        self.encoder.encode(frame, &mut self.buf);
    }

    /// Appends raw, already-encoded frame bytes (e.g. a frame encoded once
    /// for many connections).
    pub(crate) fn feed_raw(&mut self, bytes: Bytes) {
        if bytes.len() >= self.vectored_threshold {
            if !self.buf.is_empty() {
                let head = self.buf.split().freeze();
                self.queued += head.len();
                self.queue.push_back(head);
            }
            self.queued += bytes.len();
            self.queue.push_back(bytes);
        } else {
            self.buf.extend_from_slice(&bytes);
        }
    }

    /// Writes as much as possible; `Ready(Ok)` once everything is written
    /// and the stream flushed. Cancel-safe: progress is recorded as it is
    /// made.
    pub(crate) fn poll_flush<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let n = if !self.queue.is_empty() {
                let mut slices = [IoSlice::new(&[]); 16];
                let mut count = 0;
                for seg in self.queue.iter().take(15) {
                    slices[count] = IoSlice::new(seg);
                    count += 1;
                }
                if count < 16 && !self.buf.is_empty() {
                    slices[count] = IoSlice::new(&self.buf);
                    count += 1;
                }
                ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..count]))?
            } else if !self.buf.is_empty() {
                ready!(Pin::new(&mut *io).poll_write(cx, &self.buf))?
            } else {
                ready!(Pin::new(&mut *io).poll_flush(cx))?;
                if self.buf.capacity() > KEEP_WRITE_CAPACITY {
                    self.buf = BytesMut::new();
                } else {
                    self.buf.clear();
                }
                return Poll::Ready(Ok(()));
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.advance(n);
        }
    }

    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.queue.front_mut() else {
                self.buf.advance(n);
                return;
            };
            let k = n.min(front.len());
            front.advance(k);
            self.queued -= k;
            n -= k;
            if front.is_empty() {
                self.queue.pop_front();
            }
        }
    }
}
