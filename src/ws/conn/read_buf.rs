//! The receive buffer: socket → bytes the [`Decoder`](crate::ws::Decoder)
//! reads frames from.
//!
//! Reads go into a per-thread arena block and the connection takes exactly
//! the bytes that arrived (`split_to`, no copy), so an idle connection
//! holds no read buffer at all. Two rules keep the arena from pinning
//! memory it no longer needs:
//! - when a read would wait and the connection holds a partial frame that
//!   lives in the arena, those bytes are copied out (a peer that sent one
//!   byte of a header pins one byte, not a block);
//! - payloads under [`COPY_BELOW`] are copied out by the read engine
//!   ([`detach`]), so a small message the application keeps cannot pin a
//!   block: one under 512 bytes goes into a small per-thread slab (4 KiB,
//!   shared by many payloads, so steady small traffic allocates once per
//!   few hundred messages) and pins at most that slab; one of 512 bytes to
//!   4 KiB gets an allocation of its own. A payload of 4 KiB or more is a
//!   zero-copy slice and pins at most one 256 KiB block (64× its size at
//!   worst).
//!
//! Reads go into a block's uninitialised capacity (never zeroed up front).
//! A stream whose `poll_read` initialises the buffer it is given first
//! (`ReadBuf::initialize_unfilled`, as tokio-util's `compat` adapter does)
//! zeroes up to one read's worth (64 KiB) per read; tokio's TCP and Unix
//! streams and tokio-rustls do not.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::task::{Context, Poll};

use bytes::BufMut;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Size of a read-arena block (capacity; never initialised up front).
const ARENA_BLOCK: usize = 256 * 1024;
/// Largest single read.
const READ_MAX: usize = 64 * 1024 + 16;
/// Smallest read while a frame is in progress.
const READ_MIN: usize = 4096;
/// Payloads shorter than this are copied into their own allocation instead
/// of being split off the shared read buffer.
pub(crate) const COPY_BELOW: usize = 4096;

/// Payloads shorter than this are copied into the small slab.
const SLAB_BELOW: usize = 512;
/// Size of a small-payload slab.
const SLAB_SIZE: usize = 4096;

thread_local! {
    /// Spare room for small payloads, shared by the connections of a
    /// thread (a payload is split off it: no allocation per payload).
    static SLAB: Cell<BytesMut> = Cell::new(BytesMut::new());
    /// Free space shared by the connections of one thread. It is taken out
    /// of the cell for the duration of a read, so a stream whose
    /// `poll_read` itself reads another rtwire connection on this thread
    /// (WebSocket tunnelled in WebSocket) finds the cell empty and uses a
    /// block of its own instead of re-entering a borrow.
    static ARENA: Cell<BytesMut> = Cell::new(BytesMut::new());
}

/// A copy of a small payload (under [`COPY_BELOW`]) that shares no memory
/// with the read buffer.
pub(crate) fn detach(payload: &[u8]) -> Bytes {
    if payload.len() >= SLAB_BELOW {
        return Bytes::copy_from_slice(payload);
    }
    let mut slab = SLAB.with(Cell::take);
    if slab.capacity() - slab.len() < payload.len() {
        slab = BytesMut::with_capacity(SLAB_SIZE);
    }
    slab.extend_from_slice(payload);
    let out = slab.split().freeze();
    SLAB.with(|cell| cell.set(slab));
    out
}

/// A connection's received, not yet decoded bytes.
#[derive(Debug, Default)]
pub(crate) struct RecvBuf {
    /// The bytes (the decoder splits frames off the front).
    pub(crate) buf: BytesMut,
    /// Whether `buf` is a view into an arena block (and so pins it).
    in_arena: bool,
}

impl RecvBuf {
    /// A buffer starting with `leftover` (bytes read past the handshake).
    pub(crate) fn new(leftover: BytesMut) -> Self {
        RecvBuf {
            // An empty leftover may still reference the handshake's read
            // buffer: do not let it pin that memory.
            buf: if leftover.is_empty() {
                BytesMut::new()
            } else {
                leftover
            },
            in_arena: false,
        }
    }

    /// Drops the buffer once everything in it was decoded, so an idle
    /// connection holds no reference to any block.
    pub(crate) fn release_if_empty(&mut self) {
        // Even with no capacity left, an emptied view of a block still
        // holds a reference to it.
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
            self.in_arena = false;
        }
    }

    /// Discards everything buffered (draining after a close).
    pub(crate) fn discard(&mut self) {
        self.buf = BytesMut::new();
        self.in_arena = false;
    }

    /// Reads more bytes; `want` is how many the frame in progress still
    /// needs (0 when unknown). `Ready(Ok(0))` is end of stream.
    pub(crate) fn poll_fill<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        io: &mut R,
        cx: &mut Context<'_>,
        want: usize,
    ) -> Poll<io::Result<usize>> {
        let want = if self.buf.is_empty() {
            READ_MAX
        } else {
            want.clamp(READ_MIN, READ_MAX)
        };
        let mut arena = ARENA.with(Cell::take);
        if arena.capacity() < want {
            // Never zeroed: the read goes into the block's uninitialised
            // spare capacity (tokio's `read_buf`), so a new block costs
            // one allocation, not a 256 KiB memset (or, for a fresh
            // mapping, 64 page faults up front).
            arena = BytesMut::with_capacity(ARENA_BLOCK);
        }
        // Polled once, then dropped: `read_buf` keeps no state of its own
        // between polls (what it read is in `arena`).
        let polled = {
            let mut limited = (&mut arena).limit(want);
            let read = std::pin::pin!((*io).read_buf(&mut limited));
            read.poll(cx)
        };
        let result = match polled {
            Poll::Ready(Ok(n)) => {
                let got = arena.split_to(n);
                self.append(got);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        };
        ARENA.with(|slot| {
            // A nested reader may have left a block of its own: keep the
            // roomier one.
            let other = slot.take();
            slot.set(if other.capacity() > arena.capacity() {
                other
            } else {
                arena
            });
        });
        if result.is_pending() {
            self.compact();
        }
        result
    }

    /// Appends freshly read bytes.
    fn append(&mut self, got: BytesMut) {
        if got.is_empty() {
            return;
        }
        if self.buf.is_empty() {
            self.buf = got;
            self.in_arena = true;
            return;
        }
        // `unsplit` is free when the new bytes follow the old ones in the
        // same block (this connection made the previous read too, the usual
        // case for a large frame arriving in pieces); otherwise it copies
        // them into a buffer of the connection's own.
        let adjacent = self.buf.as_ptr().wrapping_add(self.buf.len()) == got.as_ptr();
        self.in_arena &= adjacent;
        self.buf.unsplit(got);
    }

    /// Before waiting: moves a partial frame out of the arena (once: it is
    /// the connection's own afterwards) and out of a buffer more than twice
    /// its size (a growing frame's buffer doubles, so this copies rarely).
    fn compact(&mut self) {
        let len = self.buf.len();
        if len == 0 {
            self.release_if_empty();
            return;
        }
        // Out of a buffer much larger than the partial frame too: one that
        // took over a whole arena block in place, or grew for a big frame.
        if self.in_arena || self.buf.capacity() > 2 * len.max(READ_MIN) {
            self.buf = BytesMut::from(&self.buf[..]);
            self.in_arena = false;
        }
    }
}
