//! A test stream whose write side behaves like a slow, unpredictable
//! socket: partial writes of random size (sometimes exactly one byte),
//! `Poll::Pending` at random (after waking the task, so progress continues
//! without any timer), and either real vectored writes (every `IoSlice`
//! honoured, `is_write_vectored() == true`) or tokio's default behaviour
//! (only the first non-empty slice is written). Everything written is
//! captured in order. The read side never yields data: `poll_read` is
//! always `Pending` (and never wakes).
//!
//! Deterministic from [`ChaosConfig::seed`], so a failure reproduces.
//! Self-contained (std and tokio only) so that the fuzz crate can include
//! this same file.
#![allow(dead_code)]

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How the stream's write side behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChaosConfig {
    /// Seed of the stream's pseudo-random choices.
    pub seed: u64,
    /// `true`: `poll_write_vectored` writes across every slice and
    /// `is_write_vectored()` is `true` (TCP, TLS). `false`: only the first
    /// non-empty slice is written, as tokio's default implementation does.
    pub vectored: bool,
    /// Chance, out of 256, that a write or flush call returns `Pending`.
    pub pending_per_256: u8,
    /// Chance, out of 256, that a write accepts exactly one byte.
    pub one_byte_per_256: u8,
    /// Chance, out of 256, that a write (not a one-byte one) accepts
    /// everything offered, whatever `max_chunk` says.
    pub full_per_256: u8,
    /// Otherwise a write accepts a random 1..=`max_chunk` bytes (at most
    /// what is offered), so a large `max_chunk` mostly means full writes.
    pub max_chunk: usize,
}

impl ChaosConfig {
    /// A stream that accepts everything offered at once (all but never a
    /// partial write), never stalls.
    pub fn steady(vectored: bool) -> Self {
        ChaosConfig {
            seed: 1,
            vectored,
            pending_per_256: 0,
            one_byte_per_256: 0,
            full_per_256: 0,
            max_chunk: usize::MAX,
        }
    }
}

/// Counters of what the stream saw, for checking that a run really
/// exercised partial and pending writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChaosStats {
    /// `poll_write` / `poll_write_vectored` calls that accepted bytes.
    pub writes: u64,
    /// Of those, vectored calls that were offered more than one slice.
    pub multi_slice_writes: u64,
    /// Most slices offered in one vectored call.
    pub max_slices: usize,
    /// Writes that accepted fewer bytes than offered.
    pub partial_writes: u64,
    /// Calls answered with `Pending`.
    pub pendings: u64,
    /// Write calls offered no bytes at all (answered `Ok(0)`).
    pub empty_writes: u64,
}

/// What the stream captured, shared with the test (the stream itself may be
/// owned by a `Conn` or a split half).
#[derive(Debug, Default)]
pub struct Captured {
    /// Every byte accepted, in order.
    pub bytes: Vec<u8>,
    /// Counters.
    pub stats: ChaosStats,
}

/// Handle on the captured output.
pub type CaptureHandle = Arc<Mutex<Captured>>;

/// The chaotic stream.
#[derive(Debug)]
pub struct ChaosIo {
    cfg: ChaosConfig,
    state: u64,
    out: CaptureHandle,
}

impl ChaosIo {
    /// A stream behaving as `cfg` says, and the handle on its output.
    pub fn new(cfg: ChaosConfig) -> (ChaosIo, CaptureHandle) {
        let out = CaptureHandle::default();
        let io = ChaosIo {
            cfg,
            // splitmix64 of the seed, so that nearby seeds differ at once.
            state: splitmix(cfg.seed),
            out: out.clone(),
        };
        (io, out)
    }

    fn next(&mut self) -> u64 {
        // xorshift64*, never zero.
        let mut x = self.state | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn roll(&mut self, per_256: u8) -> bool {
        ((self.next() >> 32) & 0xff) < u64::from(per_256)
    }

    /// Whether this call stalls (`Pending`, after waking the task).
    fn maybe_pending(&mut self, cx: &mut Context<'_>) -> bool {
        if self.roll(self.cfg.pending_per_256) {
            self.out.lock().unwrap().stats.pendings += 1;
            cx.waker().wake_by_ref();
            return true;
        }
        false
    }

    /// How many of `offered` (> 0) bytes this write accepts (at least 1).
    fn accept(&mut self, offered: usize) -> usize {
        if self.roll(self.cfg.one_byte_per_256) {
            return 1;
        }
        if self.roll(self.cfg.full_per_256) {
            return offered;
        }
        let chunk = 1 + self.next() % self.cfg.max_chunk.max(1) as u64;
        offered.min(usize::try_from(chunk).unwrap_or(usize::MAX))
    }

    fn write_slices(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.maybe_pending(cx) {
            return Poll::Pending;
        }
        let offered: usize = bufs.iter().map(|b| b.len()).sum();
        if offered == 0 {
            self.out.lock().unwrap().stats.empty_writes += 1;
            return Poll::Ready(Ok(0));
        }
        let n = self.accept(offered);
        let mut out = self.out.lock().unwrap();
        let mut left = n;
        for b in bufs {
            let k = left.min(b.len());
            out.bytes.extend_from_slice(&b[..k]);
            left -= k;
            if left == 0 {
                break;
            }
        }
        let s = &mut out.stats;
        s.writes += 1;
        if bufs.len() > 1 {
            s.multi_slice_writes += 1;
        }
        s.max_slices = s.max_slices.max(bufs.len());
        if n < offered {
            s.partial_writes += 1;
        }
        Poll::Ready(Ok(n))
    }
}

fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl AsyncWrite for ChaosIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().write_slices(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cfg.vectored {
            this.write_slices(cx, bufs)
        } else {
            // tokio's default `poll_write_vectored`: the first non-empty
            // slice (or an empty one) through `poll_write`.
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &**b);
            this.write_slices(cx, &[IoSlice::new(first)])
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.cfg.vectored
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.get_mut().maybe_pending(cx) {
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for ChaosIo {
    /// Never any input: the peer is silent and the read side stays
    /// pending (no wake-up is ever scheduled).
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}
