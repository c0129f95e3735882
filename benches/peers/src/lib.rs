//! Shared helpers for the peer benches and echo servers: in-memory streams
//! and pre-encoded client frames.
//!
//! Nothing here is timed on its own; the benches in `benches/` and the echo
//! servers in `src/bin/` use it so that every library is fed the same bytes.

use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The masking key used for every pre-encoded client frame.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Largest read an in-memory stream returns, like one socket read.
pub const READ_CHUNK: usize = 64 * 1024;

/// Appends one masked (client-to-server) frame to `out`.
pub fn push_masked_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    let h = rtwire::ws::FrameHeader {
        fin: true,
        rsv: 0,
        opcode: rtwire::ws::OpCode::from_u8(opcode).expect("valid opcode"),
        mask: Some(KEY),
        payload_len: payload.len() as u64,
    };
    let mut hdr = [0u8; rtwire::ws::MAX_HEADER_LEN];
    let n = h.encode(&mut hdr);
    out.extend_from_slice(&hdr[..n]);
    let start = out.len();
    out.extend_from_slice(payload);
    rtwire::ws::apply_mask_bytes(&mut out[start..], KEY, 0);
}

/// `count` masked frames of `payload`, back to back.
pub fn masked_frames(opcode: u8, payload: &[u8], count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * (payload.len() + 14));
    for _ in 0..count {
        push_masked_frame(&mut out, opcode, payload);
    }
    out
}

/// A deterministic payload: ASCII text (valid UTF-8) of `len` bytes.
pub fn ascii_payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The input of a [`MemStream`]: a fixed buffer read again from the start
/// after each [`rewind`](Self::rewind).
#[derive(Debug)]
pub struct MemInput {
    data: Vec<u8>,
    pos: Cell<usize>,
}

impl MemInput {
    /// Input holding `data`.
    pub fn new(data: Vec<u8>) -> Rc<Self> {
        Rc::new(MemInput {
            data,
            pos: Cell::new(0),
        })
    }

    /// Starts reading from the beginning again.
    pub fn rewind(&self) {
        self.pos.set(0);
    }

    /// Whether every byte was read.
    pub fn is_drained(&self) -> bool {
        self.pos.get() == self.data.len()
    }
}

/// An in-memory duplex stream: reads come from a [`MemInput`] in chunks of
/// at most [`READ_CHUNK`] bytes (one socket read's worth); writes are
/// counted and discarded. Vectored writes are supported, as on a socket.
///
/// A read after the input is drained returns `Pending` (never EOF), so a
/// bench that reads exactly what it fed never sees the end of the stream.
#[derive(Debug, Clone)]
pub struct MemStream {
    input: Rc<MemInput>,
    written: Rc<Cell<u64>>,
    writes: Rc<Cell<u64>>,
    keep: Option<Rc<RefCell<Vec<u8>>>>,
}

impl MemStream {
    /// A stream reading `input`.
    pub fn new(input: Rc<MemInput>) -> Self {
        MemStream {
            input,
            written: Rc::new(Cell::new(0)),
            writes: Rc::new(Cell::new(0)),
            keep: None,
        }
    }

    /// A stream that also keeps what is written (for handshake benches).
    pub fn keeping(input: Rc<MemInput>, out: Rc<RefCell<Vec<u8>>>) -> Self {
        MemStream {
            keep: Some(out),
            ..MemStream::new(input)
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written.get()
    }

    /// Write calls so far (each `write` or `write_vectored`).
    pub fn writes(&self) -> u64 {
        self.writes.get()
    }

    fn record(&self, bufs: &[&[u8]]) -> usize {
        let n: usize = bufs.iter().map(|b| b.len()).sum();
        self.written.set(self.written.get() + n as u64);
        self.writes.set(self.writes.get() + 1);
        if let Some(k) = &self.keep {
            let mut k = k.borrow_mut();
            for b in bufs {
                k.extend_from_slice(b);
            }
        }
        n
    }

    fn read_into(&self, dst: &mut [u8]) -> usize {
        let pos = self.input.pos.get();
        let n = (self.input.data.len() - pos).min(dst.len()).min(READ_CHUNK);
        dst[..n].copy_from_slice(&self.input.data[pos..pos + n]);
        self.input.pos.set(pos + n);
        n
    }
}

impl AsyncRead for MemStream {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.input.is_drained() {
            return Poll::Pending;
        }
        // As a socket does: the bytes read are copied into the unfilled
        // part, nothing else of it is initialised (`initialize_unfilled`
        // would zero up to 64 KiB per read of a reader that offers
        // uninitialised capacity, as rtwire's arena does).
        let pos = self.input.pos.get();
        let n = (self.input.data.len() - pos)
            .min(buf.remaining())
            .min(READ_CHUNK);
        buf.put_slice(&self.input.data[pos..pos + n]);
        self.input.pos.set(pos + n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MemStream {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.record(&[b])))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let v: Vec<&[u8]> = bufs.iter().map(|b| &b[..]).collect();
        Poll::Ready(Ok(self.record(&v)))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl std::io::Read for MemStream {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        if self.input.is_drained() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(self.read_into(dst))
    }
}

impl std::io::Write for MemStream {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        Ok(self.record(&[b]))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The address argument of an echo server (`127.0.0.1:9001` by default).
pub fn addr_arg() -> String {
    std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_string())
}

/// The runtime of an echo server, with only the IO driver, as the peers'
/// own echo examples build it (none of them needs timers; rtwire's
/// `echo_server` runs its timeouts on its own timer thread and builds the
/// same runtime). Single-threaded, unless the arguments say `--threads N`
/// with N > 1: then a multi-threaded runtime with N workers.
pub fn runtime() -> tokio::runtime::Runtime {
    let args: Vec<String> = std::env::args().collect();
    let threads = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(1);
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime")
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_io()
            .build()
            .expect("runtime")
    }
}

/// A browser-like upgrade request (what Chrome sends, minus cookies).
pub const BROWSER_UPGRADE: &[u8] = b"GET /chat?room=lobby HTTP/1.1\r\n\
Host: example.com:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: https://example.com\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";
