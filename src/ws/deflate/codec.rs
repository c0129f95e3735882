//! The deflate codec of one connection: a [`Deflater`] for what we send and
//! an [`Inflater`] for what we receive, each with or without context
//! takeover, and a per-thread pool for the states that need not outlive a
//! message.

use std::cell::RefCell;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::ProtocolError;
use crate::ws::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};

/// The end of a sync flush: removed from every compressed message and put
/// back before inflating its last frame (RFC 7692 §7.2.1, §7.2.2).
const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// Output is produced in chunks of at most this size, and never more than
/// one byte past the message limit, which is checked after each: a bomb
/// costs at most the limit plus one byte.
const CHUNK: usize = 16 * 1024;
/// Most pooled states of each kind per thread.
const POOL_MAX: usize = 8;

/// The RSV1 bit: "per-message compressed" (RFC 7692 §6).
pub(crate) const RSV1: u8 = 0b100;

thread_local! {
    static COMPRESSORS: RefCell<Vec<(u8, u32, Box<Compress>)>> = const { RefCell::new(Vec::new()) };
    static DECOMPRESSORS: RefCell<Vec<(u8, Box<Decompress>)>> = const { RefCell::new(Vec::new()) };
}

fn take_compressor(bits: u8, level: u32) -> Box<Compress> {
    COMPRESSORS
        .with(|p| {
            let mut p = p.borrow_mut();
            let i = p.iter().position(|(b, l, _)| *b == bits && *l == level)?;
            Some(p.swap_remove(i).2)
        })
        .unwrap_or_else(|| {
            Box::new(Compress::new_with_window_bits(
                Compression::new(level),
                false,
                bits,
            ))
        })
}

fn give_compressor(bits: u8, level: u32, mut c: Box<Compress>) {
    c.reset();
    COMPRESSORS.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_MAX {
            p.push((bits, level, c));
        }
    });
}

fn take_decompressor(bits: u8) -> Box<Decompress> {
    DECOMPRESSORS
        .with(|p| {
            let mut p = p.borrow_mut();
            let i = p.iter().position(|(b, _)| *b == bits)?;
            Some(p.swap_remove(i).1)
        })
        .unwrap_or_else(|| Box::new(Decompress::new_with_window_bits(false, bits)))
}

fn give_decompressor(bits: u8, mut d: Box<Decompress>) {
    d.reset(false);
    DECOMPRESSORS.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_MAX {
            p.push((bits, d));
        }
    });
}

/// Compresses `data` with `c` and a sync flush, appending to `out`; `end`
/// ends the message: its trailer is removed. Every fragment is flushed, so
/// each frame carries its own data (a streamed message arrives as it is
/// sent); the sync markers inside a message are valid deflate data.
fn deflate_into(c: &mut Compress, mut data: &[u8], end: bool, out: &mut Vec<u8>) {
    let start = out.len();
    let flush = FlushCompress::Sync;
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(data.len() / 2 + 64);
        }
        let before = c.total_in();
        // A zlib stream in memory only fails on misuse (none here).
        let _ = c.compress_vec(data, out, flush);
        data = &data[(c.total_in() - before) as usize..];
        // The flush is complete when input is used up and zlib left room
        // in the output (a full output may hide more pending bytes).
        if data.is_empty() && out.len() < out.capacity() {
            break;
        }
    }
    if end {
        if out[start..].ends_with(&TRAILER) {
            out.truncate(out.len() - TRAILER.len());
        }
        if out.len() == start {
            // Nothing was pending since the last flush, so zlib wrote no
            // block: send the empty stored block without its trailer, one
            // 0x00 (RFC 7692 §7.2.3.6), which the receiver's trailer ends.
            out.push(0x00);
        }
    }
    // The output was reserved generously; do not keep (and queue) the
    // slack of a well-compressed message.
    if out.capacity() > out.len() * 2 + 1024 {
        out.shrink_to_fit();
    }
}

/// Our side's compressor.
#[derive(Debug)]
pub(crate) struct Deflater {
    no_context: bool,
    bits: u8,
    level: u32,
    pub(crate) threshold: usize,
    /// Kept across messages with context takeover; only during a
    /// fragmented message without it.
    ctx: Option<Box<Compress>>,
}

impl Deflater {
    pub(crate) fn new(no_context: bool, bits: u8, level: u32, threshold: usize) -> Self {
        // zlib cannot compress with an 8-bit raw window; stored blocks (level
        // 0) have no back-references at all, so they honour any window.
        let level = if bits < 9 { 0 } else { level.min(9) };
        Deflater {
            no_context,
            bits: bits.clamp(9, 15),
            level,
            threshold,
            ctx: None,
        }
    }

    /// Whether every message is compressed on its own (so a shared
    /// encoding from [`encode_compressed`] fits this connection), and the
    /// window bits it needs (8: stored blocks only).
    pub(crate) fn shared_window(&self) -> Option<u8> {
        self.no_context
            .then_some(if self.level == 0 { 8 } else { self.bits })
    }

    /// Compresses one frame's worth of a message into `out`; `fin` ends
    /// the message (its trailer removed).
    pub(crate) fn compress(&mut self, data: &[u8], fin: bool, out: &mut Vec<u8>) {
        let (bits, level) = (self.bits, self.level);
        let mut c = self
            .ctx
            .take()
            .unwrap_or_else(|| take_compressor(bits, level));
        deflate_into(&mut c, data, fin, out);
        if fin && self.no_context {
            give_compressor(bits, level, c);
            return;
        }
        self.ctx = Some(c);
    }
}

/// Compresses `payload` as one whole message, on its own (no context), and
/// encodes it as a server frame with RSV1: bytes that fit every connection
/// that negotiated no server context takeover and a server window of at
/// least `window_bits` (give them to `feed_encoded`).
///
/// ```
/// use rtwire::ws::{deflate::encode_compressed, OpCode};
/// let text = "hello ".repeat(100);
/// let frame = encode_compressed(OpCode::Text, text.as_bytes(), 15, 6);
/// assert_eq!(frame[0], 0x80 | 0x40 | 0x1); // FIN, RSV1, text
/// assert!(frame.len() < text.len() / 4);
/// ```
///
/// Only a text or binary message can be compressed (RFC 7692 §6.1): for
/// any other opcode the frame is encoded as it is, without RSV1.
pub fn encode_compressed(opcode: OpCode, payload: &[u8], window_bits: u8, level: u32) -> Bytes {
    if !matches!(opcode, OpCode::Text | OpCode::Binary) {
        let mut out = BytesMut::new();
        crate::ws::Encoder::new(crate::ws::Role::Server)
            .encode_parts(true, 0, opcode, payload, &mut out);
        return out.freeze();
    }
    let level = if window_bits < 9 { 0 } else { level.min(9) };
    let bits = window_bits.clamp(9, 15);
    let mut c = take_compressor(bits, level);
    let mut z = Vec::with_capacity(payload.len() / 2 + 64);
    deflate_into(&mut c, payload, true, &mut z);
    give_compressor(bits, level, c);
    let h = FrameHeader {
        fin: true,
        rsv: RSV1,
        opcode,
        mask: None,
        payload_len: z.len() as u64,
    };
    let mut hdr = [0u8; MAX_HEADER_LEN];
    let n = h.encode(&mut hdr);
    let mut out = BytesMut::with_capacity(n + z.len());
    out.put_slice(&hdr[..n]);
    out.put_slice(&z);
    out.freeze()
}

/// The peer's side: inflates compressed messages frame by frame.
#[derive(Debug)]
pub(crate) struct Inflater {
    no_context: bool,
    bits: u8,
    ctx: Option<Box<Decompress>>,
    /// Inflated bytes of the message in progress.
    total: usize,
    /// The peer ended its deflate stream (BFINAL) inside this message.
    ended: bool,
    /// Compressed bytes of the message in progress.
    wire: usize,
}

/// An empty stored block: fed after a message's trailer, it must inflate to
/// nothing. Anything else means the message did not end on a block
/// boundary (it was truncated), whatever zlib made of the trailer.
const EMPTY_BLOCK: [u8; 5] = [0x00, 0x00, 0x00, 0xff, 0xff];

impl Inflater {
    pub(crate) fn new(no_context: bool, bits: u8) -> Self {
        Inflater {
            no_context,
            // A peer compressing with an 8-bit window is read with 9.
            bits: bits.clamp(9, 15),
            ctx: None,
            total: 0,
            ended: false,
            wire: 0,
        }
    }

    /// Inflates one frame of a compressed message; `fin` ends it. Fails
    /// with `MessageTooLarge` as soon as the message's inflated size passes
    /// `max` (having produced at most one chunk more), and with
    /// `InvalidCompressedData` on a corrupt stream.
    pub(crate) fn inflate(
        &mut self,
        data: &[u8],
        fin: bool,
        max: usize,
    ) -> Result<Bytes, ProtocolError> {
        let bits = self.bits;
        let mut d = self.ctx.take().unwrap_or_else(|| take_decompressor(bits));
        let mut out = Vec::new();
        self.wire += data.len();
        let r = self.run(&mut d, data, &mut out, max).and_then(|()| {
            // A message of no compressed bytes at all (some peers send
            // that for an empty message) is empty: feeding the trailer
            // alone would leave a half-parsed block in the context.
            if !fin || self.ended || self.wire == 0 {
                return Ok(());
            }
            self.run(&mut d, &TRAILER, &mut out, max)?;
            let n = out.len();
            self.run(&mut d, &EMPTY_BLOCK, &mut out, max)?;
            if out.len() != n || self.ended {
                return Err(ProtocolError::InvalidCompressedData);
            }
            Ok(())
        });
        match r {
            // The connection fails; the state (corrupt) is dropped.
            Err(e) => Err(e),
            Ok(()) => {
                if fin {
                    self.total = 0;
                    self.wire = 0;
                    if self.ended {
                        // The peer ended its stream: nothing to take over.
                        self.ended = false;
                        d.reset(false);
                    }
                    if self.no_context {
                        give_decompressor(bits, d);
                    } else {
                        self.ctx = Some(d);
                    }
                } else {
                    self.ctx = Some(d);
                }
                if out.capacity() > out.len() * 2 + 1024 {
                    out.shrink_to_fit();
                }
                Ok(Bytes::from(out))
            }
        }
    }

    fn run(
        &mut self,
        d: &mut Decompress,
        mut data: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), ProtocolError> {
        // Bytes after the final block are ignored: RFC 7692 §7.2.3.5's own
        // example has a sync flush's 0x00 after a BFINAL block.
        while !self.ended {
            // Each call may write at most `room` bytes, so the limit check
            // after it bounds what a bomb can make us hold.
            let room = if out.is_empty() {
                data.len().saturating_mul(4).clamp(256, CHUNK)
            } else {
                CHUNK
            };
            let room = room.min(max.saturating_sub(self.total).saturating_add(1));
            let len = out.len();
            out.resize(len + room, 0);
            let (in0, out0) = (d.total_in(), d.total_out());
            let status = d.decompress(data, &mut out[len..], FlushDecompress::Sync);
            let used = (d.total_in() - in0) as usize;
            let made = (d.total_out() - out0) as usize;
            out.truncate(len + made);
            data = &data[used..];
            self.total += made;
            if self.total > max {
                return Err(ProtocolError::MessageTooLarge { max });
            }
            match status {
                Ok(Status::StreamEnd) => self.ended = true,
                Ok(_) => {}
                Err(_) => return Err(ProtocolError::InvalidCompressedData),
            }
            // Done when the input is used up and zlib left room unused.
            if data.is_empty() && made < room {
                break;
            }
            if used == 0 && made == 0 {
                return Err(ProtocolError::InvalidCompressedData);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(no_context: bool, bits: u8, msgs: &[Vec<u8>]) {
        let mut def = Deflater::new(no_context, bits, 6, 0);
        let mut inf = Inflater::new(no_context, bits);
        for m in msgs {
            let mut z = Vec::new();
            // Three fragments, to cover sync flushes mid-message.
            let (a, rest) = m.split_at(m.len() / 3);
            let (b, c) = rest.split_at(rest.len() / 2);
            let mut got = Vec::new();
            for (part, fin) in [(a, false), (b, false), (c, true)] {
                z.clear();
                def.compress(part, fin, &mut z);
                let r = inf.inflate(&z, fin, usize::MAX);
                assert!(
                    r.is_ok(),
                    "nc={no_context} bits={bits} len={} part={} fin={fin} z={:?}",
                    m.len(),
                    part.len(),
                    &z[..z.len().min(16)]
                );
                got.extend_from_slice(&r.unwrap());
            }
            assert_eq!(&got, m);
        }
    }

    #[test]
    fn roundtrips_with_and_without_context() {
        let msgs: Vec<Vec<u8>> = (0..20)
            .map(|i| format!("{{\"n\":{i},\"t\":\"{}\"}}", "abc".repeat(i * 50)).into_bytes())
            .chain([Vec::new(), vec![0u8; 200_000]])
            .collect();
        for bits in [9, 12, 15] {
            roundtrip(true, bits, &msgs);
            roundtrip(false, bits, &msgs);
        }
    }

    #[test]
    fn a_bomb_stops_at_the_limit_plus_one_chunk() {
        let mut def = Deflater::new(true, 15, 9, 0);
        let mut z = Vec::new();
        def.compress(&vec![b'a'; 10 << 20], true, &mut z);
        assert!(z.len() < 20_000, "{}", z.len());
        let mut inf = Inflater::new(true, 15);
        let err = inf.inflate(&z, true, 100_000).unwrap_err();
        assert_eq!(err, ProtocolError::MessageTooLarge { max: 100_000 });
        assert!(inf.total <= 100_000 + 1);
    }

    #[test]
    fn rfc_7692_examples_inflate() {
        // §7.2.3.1 "Hello", §7.2.3.5 with BFINAL (and a 0x00 after it),
        // §7.2.3.6 an empty message as one 0x00.
        let cases: [(&[u8], &[u8]); 3] = [
            (&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], b"Hello"),
            (&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00], b"Hello"),
            (&[0x00], b""),
        ];
        for no_context in [true, false] {
            let mut inf = Inflater::new(no_context, 15);
            for (z, plain) in cases {
                assert_eq!(&inf.inflate(z, true, 1 << 20).unwrap()[..], plain);
            }
            // §7.2.3.2: the second "Hello" refers to the first.
            inf.inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], true, 1 << 20)
                .unwrap();
            if !no_context {
                let again = inf.inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], true, 1 << 20);
                assert_eq!(&again.unwrap()[..], b"Hello");
            }
        }
    }

    #[test]
    fn an_empty_payload_leaves_the_context_alone_and_truncation_fails() {
        let mut def = Deflater::new(false, 15, 6, 0);
        let mut inf = Inflater::new(false, 15);
        assert!(inf.inflate(&[], true, 1 << 20).unwrap().is_empty());
        let mut z = Vec::new();
        def.compress(b"hello, hello, hello", true, &mut z);
        assert_eq!(
            &inf.inflate(&z, true, 1 << 20).unwrap()[..],
            b"hello, hello, hello"
        );
        // A message cut in the middle of a block.
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| i.to_string().into_bytes())
            .collect();
        let mut z = Vec::new();
        Deflater::new(true, 15, 6, 0).compress(&text, true, &mut z);
        let mut inf = Inflater::new(true, 15);
        assert!(inf.inflate(&z[..z.len() / 2], true, 1 << 30).is_err());
    }

    #[test]
    fn garbage_is_a_typed_error() {
        let mut inf = Inflater::new(true, 15);
        assert_eq!(
            inf.inflate(&[0xff, 0xff, 0xff, 0xff, 0x00], true, 1 << 20),
            Err(ProtocolError::InvalidCompressedData)
        );
    }
}
