//! The sans-IO frame encoder: [`Frame`]s → bytes for the peer, masked with
//! fresh unpredictable keys in the client role.

use bytes::{BufMut, BytesMut};
use rand::Rng as _;

use super::frame::{Frame, FrameHeader, OpCode, MAX_HEADER_LEN};
use super::mask::apply_mask;
use super::role::Role;

/// A client's masking key: RFC 6455 §10.3 requires keys an attacker cannot
/// predict, drawn from a strong source of entropy. Keys come from `rand`'s
/// thread-local CSPRNG (ChaCha12, seeded from the operating system and
/// reseeded periodically); a server never masks and never draws a key.
fn mask_key() -> [u8; 4] {
    rand::rng().next_u32().to_ne_bytes()
}

/// 16 random bytes for a handshake nonce (`Sec-WebSocket-Key`), from the
/// same CSPRNG as the masking keys.
pub(crate) fn random_16() -> [u8; 16] {
    let mut out = [0u8; 16];
    rand::rng().fill_bytes(&mut out);
    out
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
#[derive(Debug, Clone, Copy)]
pub struct Encoder {
    role: Role,
}

impl Encoder {
    /// An encoder for `role`.
    pub fn new(role: Role) -> Self {
        Encoder { role }
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The header for a frame of `len` payload bytes: masked with a fresh
    /// key in the client role.
    #[inline]
    pub fn header(&mut self, fin: bool, rsv: u8, opcode: OpCode, len: usize) -> FrameHeader {
        FrameHeader {
            fin,
            rsv,
            opcode,
            mask: match self.role {
                Role::Client => Some(mask_key()),
                Role::Server => None,
            },
            payload_len: len as u64,
        }
    }

    /// Appends the whole frame (header and payload, masked in the client
    /// role) to `out`.
    #[inline]
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) {
        self.encode_parts(frame.fin, frame.rsv, frame.opcode, &frame.payload, out);
    }

    /// Appends a frame built from its parts to `out`.
    // Always inlined: the common reply is a few instructions, and with more
    // than one caller the compiler would otherwise call it out of line.
    #[inline(always)]
    pub fn encode_parts(
        &mut self,
        fin: bool,
        rsv: u8,
        opcode: OpCode,
        payload: &[u8],
        out: &mut BytesMut,
    ) {
        if self.role == Role::Server && payload.len() < 126 {
            // The common reply: a two-byte header, no mask.
            let b0 = (u8::from(fin) << 7) | ((rsv & 0x7) << 4) | opcode as u8;
            out.reserve(2 + payload.len());
            out.put_slice(&[b0, payload.len() as u8]);
            out.put_slice(payload);
            return;
        }
        self.encode_long(fin, rsv, opcode, payload, out);
    }

    /// [`encode_parts`](Self::encode_parts) for a longer header or a mask.
    #[inline(never)]
    fn encode_long(
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
