//! The sans-IO frame decoder and encoder.

use bytes::{Buf, BufMut, BytesMut};

use super::close::parse_close_payload;
use super::frame::{Frame, FrameHeader, OpCode, MAX_HEADER_LEN};
use super::mask::apply_mask;
use super::utf8::Utf8Validator;
use crate::error::ProtocolError;

/// Which end of the connection this codec serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Server: receives masked frames, sends unmasked frames.
    Server,
    /// Client: receives unmasked frames, sends masked frames.
    Client,
}

/// Size limits enforced while decoding. Every limit is checked against the
/// declared length *before* any memory is committed for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame payload accepted. Default 16 MiB. Over it: 1009.
    pub max_frame_size: usize,
    /// Largest message (sum of its frames' payloads). Default 64 MiB.
    /// Over it: 1009.
    pub max_message_size: usize,
    /// Most frames in one message. Default 100,000: a flood of empty
    /// continuation frames ends with 1009 instead of spinning forever.
    pub max_fragments: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_fragments: 100_000,
        }
    }
}

impl Limits {
    /// Limits that accept anything up to `usize::MAX` (for trusted peers).
    pub fn unlimited() -> Self {
        Limits {
            max_frame_size: usize::MAX,
            max_message_size: usize::MAX,
            max_fragments: usize::MAX,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Current {
    header: FrameHeader,
    len: usize,
    /// Payload bytes already unmasked (and UTF-8 checked) in the buffer.
    processed: usize,
    /// Whether the payload is text of a data message to validate.
    text: bool,
}

#[derive(Debug, Clone, Copy)]
struct Message {
    text: bool,
    len: u64,
    fragments: usize,
}

/// Turns bytes from the peer into [`Frame`]s.
///
/// The decoder consumes a frame's header from the buffer as soon as it is
/// complete, then unmasks and UTF-8-checks payload bytes *as they arrive*
/// (so invalid text fails on the first bad byte). A complete payload is
/// split off the buffer as a `Bytes`: zero copy. The buffer is never
/// reserved for a declared length; callers read into it as bytes arrive.
///
/// After an error the decoder stays failed and returns the same error.
///
/// ```
/// use bytes::BytesMut;
/// use rtwire::ws::{Decoder, Limits, OpCode, Role};
///
/// let mut dec = Decoder::new(Role::Server, Limits::default());
/// // RFC 6455 §5.7: a fragmented unmasked text... but we are a server, so
/// // use the masked "Hello" example.
/// let mut buf = BytesMut::from(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58][..]);
/// let frame = dec.decode(&mut buf).unwrap().unwrap();
/// assert_eq!(frame.opcode, OpCode::Text);
/// assert_eq!(&frame.payload[..], b"Hello");
/// assert!(buf.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    role: Role,
    limits: Limits,
    allowed_rsv: u8,
    current: Option<Current>,
    message: Option<Message>,
    utf8: Utf8Validator,
    failed: Option<ProtocolError>,
}

impl Decoder {
    /// A decoder for `role` with `limits`.
    pub fn new(role: Role, limits: Limits) -> Self {
        Decoder {
            role,
            limits,
            allowed_rsv: 0,
            current: None,
            message: None,
            utf8: Utf8Validator::new(),
            failed: None,
        }
    }

    /// Allows RSV bits (low three bits; RSV1 = 0b100) that a negotiated
    /// extension uses. By default none are allowed.
    pub fn set_allowed_rsv(&mut self, rsv: u8) {
        self.allowed_rsv = rsv & 0x7;
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether a fragmented data message is in progress.
    pub fn in_message(&self) -> bool {
        self.message.is_some()
    }

    /// How many more bytes the frame in progress needs (0 if none is in
    /// progress). A reader may use it to size its next read; it is bounded
    /// by the limits, since the header was already accepted.
    pub fn remaining(&self) -> usize {
        self.current.map_or(0, |c| c.len - c.processed)
    }

    /// Decodes the next frame from the front of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed; call again after appending.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.decode_inner(buf) {
            Ok(f) => Ok(f),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    fn start_frame(&mut self, buf: &mut BytesMut) -> Result<bool, ProtocolError> {
        let Some((header, hlen)) = FrameHeader::parse(buf)? else {
            return Ok(false);
        };
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if header.rsv & !self.allowed_rsv != 0 {
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        if header.payload_len > self.limits.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooLarge {
                size: header.payload_len,
                max: self.limits.max_frame_size,
            });
        }
        let text = match header.opcode {
            OpCode::Continuation => {
                let Some(m) = self.message.as_mut() else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                m.len = m.len.saturating_add(header.payload_len);
                m.fragments += 1;
                if m.len > self.limits.max_message_size as u64 {
                    return Err(ProtocolError::MessageTooLarge {
                        max: self.limits.max_message_size,
                    });
                }
                if m.fragments > self.limits.max_fragments {
                    return Err(ProtocolError::TooManyFragments {
                        max: self.limits.max_fragments,
                    });
                }
                m.text
            }
            OpCode::Text | OpCode::Binary => {
                if self.message.is_some() {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                if header.payload_len > self.limits.max_message_size as u64 {
                    return Err(ProtocolError::MessageTooLarge {
                        max: self.limits.max_message_size,
                    });
                }
                let text = header.opcode == OpCode::Text;
                self.message = Some(Message {
                    text,
                    len: header.payload_len,
                    fragments: 1,
                });
                text
            }
            OpCode::Close | OpCode::Ping | OpCode::Pong => false,
        };
        buf.advance(hlen);
        self.current = Some(Current {
            header,
            // Fits: checked against max_frame_size, a usize.
            len: header.payload_len as usize,
            processed: 0,
            text,
        });
        Ok(true)
    }

    fn decode_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if self.current.is_none() && !self.start_frame(buf)? {
            return Ok(None);
        }
        let Some(cur) = self.current.as_mut() else {
            return Ok(None);
        };
        let avail = buf.len().min(cur.len);
        if avail > cur.processed {
            let fresh = &mut buf[cur.processed..avail];
            if let Some(key) = cur.header.mask {
                apply_mask(fresh, key, cur.processed);
            }
            if cur.text && self.utf8.feed(fresh).is_err() {
                return Err(ProtocolError::InvalidUtf8);
            }
            cur.processed = avail;
        }
        if cur.processed < cur.len {
            return Ok(None);
        }
        let cur = *cur;
        self.current = None;
        let payload = buf.split_to(cur.len).freeze();
        let h = cur.header;
        match h.opcode {
            OpCode::Close => {
                parse_close_payload(&payload)?;
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation if h.fin => {
                if cur.text && self.utf8.finish().is_err() {
                    return Err(ProtocolError::InvalidUtf8);
                }
                self.message = None;
            }
            _ => {}
        }
        Ok(Some(Frame {
            fin: h.fin,
            rsv: h.rsv,
            opcode: h.opcode,
            payload,
        }))
    }
}

/// A fast, non-cryptographic generator for masking keys (xorshift64*),
/// seeded per encoder from the process's random hasher keys.
#[derive(Debug, Clone)]
struct MaskKeys(u64);

impl MaskKeys {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        MaskKeys(h.finish() | 1)
    }

    fn next(&mut self) -> [u8; 4] {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((v >> 32) as u32).to_ne_bytes()
    }
}

/// Turns frames into bytes for the peer.
///
/// A server encoder writes unmasked frames; a client encoder masks every
/// frame with a fresh key.
///
/// ```
/// use bytes::BytesMut;
/// use rtwire::ws::{Encoder, Frame, Role};
/// let mut enc = Encoder::new(Role::Server);
/// let mut out = BytesMut::new();
/// enc.encode(&Frame::text("Hello"), &mut out);
/// assert_eq!(&out[..], &[0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
/// ```
#[derive(Debug, Clone)]
pub struct Encoder {
    role: Role,
    keys: MaskKeys,
}

impl Encoder {
    /// An encoder for `role`.
    pub fn new(role: Role) -> Self {
        Encoder {
            role,
            keys: MaskKeys::new(),
        }
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The header for a frame of `len` payload bytes: masked with a fresh
    /// key in the client role.
    pub fn header(&mut self, fin: bool, rsv: u8, opcode: OpCode, len: usize) -> FrameHeader {
        FrameHeader {
            fin,
            rsv,
            opcode,
            mask: match self.role {
                Role::Client => Some(self.keys.next()),
                Role::Server => None,
            },
            payload_len: len as u64,
        }
    }

    /// Appends the whole frame (header and payload, masked in the client
    /// role) to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) {
        self.encode_parts(frame.fin, frame.rsv, frame.opcode, &frame.payload, out);
    }

    /// Appends a frame built from its parts to `out`.
    pub fn encode_parts(
        &mut self,
        fin: bool,
        rsv: u8,
        opcode: OpCode,
        payload: &[u8],
        out: &mut BytesMut,
    ) {
        let h = self.header(fin, rsv, opcode, payload.len());
        let mut hdr = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut hdr);
        out.reserve(n + payload.len());
        out.put_slice(&hdr[..n]);
        let start = out.len();
        out.put_slice(payload);
        if let Some(key) = h.mask {
            apply_mask(&mut out[start..], key, 0);
        }
    }

    /// Appends only the header of `frame` to `out` and returns `true` when
    /// the payload can be written as it is after it (server role: a
    /// vectored write with no copy). In the client role the payload must be
    /// masked, so nothing is written and `false` is returned: use
    /// [`encode`](Self::encode).
    pub fn encode_header_for_vectored(&mut self, frame: &Frame, out: &mut BytesMut) -> bool {
        if self.role == Role::Client {
            return false;
        }
        let h = self.header(frame.fin, frame.rsv, frame.opcode, frame.payload.len());
        let mut hdr = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut hdr);
        out.put_slice(&hdr[..n]);
        true
    }
}

/// 16 random bytes for a handshake nonce (not cryptographic: the RFC needs
/// unpredictability against caches, not secrecy).
pub(crate) fn random_16() -> [u8; 16] {
    let mut g = MaskKeys::new();
    let mut out = [0u8; 16];
    for chunk in out.chunks_exact_mut(4) {
        chunk.copy_from_slice(&g.next());
    }
    out
}
