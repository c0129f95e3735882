//! Frame headers and frames (RFC 6455 §5.2).

use bytes::Bytes;

use crate::error::ProtocolError;

/// A frame opcode. Reserved opcodes are rejected by [`FrameHeader::parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// 0x0: continuation of a fragmented message.
    Continuation = 0x0,
    /// 0x1: text data.
    Text = 0x1,
    /// 0x2: binary data.
    Binary = 0x2,
    /// 0x8: close.
    Close = 0x8,
    /// 0x9: ping.
    Ping = 0x9,
    /// 0xA: pong.
    Pong = 0xA,
}

impl OpCode {
    /// Parses a 4-bit opcode; reserved values give `None`.
    pub const fn from_u8(v: u8) -> Option<OpCode> {
        Some(match v {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// Whether this is a control opcode (close, ping, pong).
    pub const fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// The largest encoded header: 2 bytes + 8 bytes of length + 4 bytes of mask.
pub const MAX_HEADER_LEN: usize = 14;

/// A parsed frame header.
///
/// [`FrameHeader::parse`] enforces the rules that need no context: reserved
/// opcodes, control frames final and at most 125 bytes, minimal length
/// encoding, and the 64-bit length's top bit. Rules that depend on the role
/// and on the connection (masking, RSV bits, fragmentation, limits) are the
/// [`Decoder`](super::Decoder)'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final frame of a message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as the low three bits (RSV1 = 0b100).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header from the front of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed, or the header and its
    /// encoded length. Never reads past the header and never allocates.
    ///
    /// ```
    /// use rtwire::ws::{FrameHeader, OpCode};
    /// // RFC 6455 §5.7: a masked "Hello" from a client.
    /// let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// let (h, n) = FrameHeader::parse(&wire).unwrap().unwrap();
    /// assert_eq!((h.fin, h.opcode, h.payload_len, n), (true, OpCode::Text, 5, 6));
    /// assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
    /// assert_eq!(FrameHeader::parse(&wire[..1]).unwrap(), None);
    /// ```
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x7;
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(ProtocolError::ReservedOpcode(b0 & 0x0F))?;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControl);
            }
            if len7 > 125 {
                return Err(ProtocolError::ControlTooLong(u64::from(len7)));
            }
        }
        let (payload_len, mut pos) = match len7 {
            126 => {
                let Some(b) = buf.get(2..4) else {
                    return Ok(None);
                };
                let n = u16::from_be_bytes([b[0], b[1]]);
                if n < 126 {
                    return Err(ProtocolError::NonMinimalLength);
                }
                (u64::from(n), 4)
            }
            127 => {
                let Some(b) = buf.get(2..10) else {
                    return Ok(None);
                };
                let n = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                if n >> 63 != 0 {
                    return Err(ProtocolError::LengthOverflow);
                }
                if n <= 0xFFFF {
                    return Err(ProtocolError::NonMinimalLength);
                }
                (n, 10)
            }
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            let Some(k) = buf.get(pos..pos + 4) else {
                return Ok(None);
            };
            pos += 4;
            Some([k[0], k[1], k[2], k[3]])
        } else {
            None
        };
        Ok(Some((
            FrameHeader {
                fin,
                rsv,
                opcode,
                mask,
                payload_len,
            },
            pos,
        )))
    }

    /// Encodes the header into `out`, returning the number of bytes used
    /// (2 to 14). Lengths use their minimal encoding.
    ///
    /// ```
    /// use rtwire::ws::{FrameHeader, OpCode};
    /// let h = FrameHeader { fin: true, rsv: 0, opcode: OpCode::Binary, mask: None, payload_len: 256 };
    /// let mut out = [0u8; 14];
    /// let n = h.encode(&mut out);
    /// assert_eq!(&out[..n], &[0x82, 0x7E, 0x01, 0x00]); // RFC 6455 §5.7
    /// ```
    #[inline]
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x7) << 4) | self.opcode as u8;
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut pos = if self.payload_len < 126 {
            out[1] = mask_bit | self.payload_len as u8;
            2
        } else if self.payload_len <= 0xFFFF {
            out[1] = mask_bit | 126;
            out[2..4].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
            4
        } else {
            out[1] = mask_bit | 127;
            out[2..10].copy_from_slice(&self.payload_len.to_be_bytes());
            10
        };
        if let Some(k) = self.mask {
            out[pos..pos + 4].copy_from_slice(&k);
            pos += 4;
        }
        pos
    }

    /// The encoded length of this header.
    pub const fn encoded_len(&self) -> usize {
        let base = if self.payload_len < 126 {
            2
        } else if self.payload_len <= 0xFFFF {
            4
        } else {
            10
        };
        if self.mask.is_some() {
            base + 4
        } else {
            base
        }
    }
}

/// A frame: header fields and an unmasked payload.
///
/// A received frame's payload is split off the connection's read buffer and
/// unmasked in place: no copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// FIN: this is the final frame of a message.
    pub fin: bool,
    /// RSV bits (low three bits), zero unless an extension is negotiated.
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The unmasked payload.
    pub payload: Bytes,
}

impl Frame {
    /// A frame with FIN set and no RSV bits.
    pub fn new(opcode: OpCode, payload: impl Into<Bytes>) -> Frame {
        Frame {
            fin: true,
            rsv: 0,
            opcode,
            payload: payload.into(),
        }
    }

    /// A final text frame. The caller guarantees `text` is UTF-8 by its type.
    pub fn text(text: impl Into<String>) -> Frame {
        Frame::new(OpCode::Text, Bytes::from(text.into()))
    }

    /// A final binary frame.
    pub fn binary(data: impl Into<Bytes>) -> Frame {
        Frame::new(OpCode::Binary, data)
    }

    /// A ping with `data` (at most 125 bytes).
    pub fn ping(data: impl Into<Bytes>) -> Frame {
        Frame::new(OpCode::Ping, data)
    }

    /// A pong with `data` (at most 125 bytes).
    pub fn pong(data: impl Into<Bytes>) -> Frame {
        Frame::new(OpCode::Pong, data)
    }

    /// A close frame with a code and reason (truncated to fit 125 bytes).
    pub fn close(code: super::CloseCode, reason: &str) -> Frame {
        Frame::new(OpCode::Close, super::close::close_payload(code, reason))
    }

    /// A close frame with no payload.
    pub fn close_empty() -> Frame {
        Frame::new(OpCode::Close, Bytes::new())
    }

    /// Sets FIN (builder style), for fragmented messages.
    pub fn with_fin(mut self, fin: bool) -> Frame {
        self.fin = fin;
        self
    }
}
