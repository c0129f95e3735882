//! The sans-IO frame decoder: bytes from the peer → [`Frame`]s, with role
//! checks, limits, in-place unmasking and incremental UTF-8 validation.

use bytes::{Buf, Bytes, BytesMut};

use super::close::parse_close_payload;
use super::frame::{Frame, FrameHeader, OpCode};
use super::limits::Limits;
use super::mask::apply_mask;
use super::role::Role;
use super::utf8::Utf8Validator;
use crate::error::ProtocolError;

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
    /// RSV1 on its first frame: compressed (permessage-deflate); its text
    /// is validated after inflating, not here.
    compressed: bool,
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
    /// permessage-deflate is negotiated: RSV1 marks compressed messages.
    per_message_deflate: bool,
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
            per_message_deflate: false,
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

    /// permessage-deflate (RFC 7692) was negotiated: RSV1 is allowed on the
    /// first frame of a data message, where it marks the message as
    /// compressed, and nowhere else (control frames and continuations with
    /// RSV1 fail with [`ProtocolError::ReservedBits`]). Text of a compressed
    /// message is not UTF-8 checked here (its payload is deflate data): the
    /// caller validates it after inflating.
    pub fn set_per_message_deflate(&mut self, on: bool) {
        self.per_message_deflate = on;
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
        self.decode_copying(buf, 0, Bytes::copy_from_slice)
    }

    /// [`decode`](Self::decode), except that a payload shorter than `below`
    /// bytes is made by `copy` from the buffer instead of split off it (one
    /// copy where split-then-copy would also take and drop a reference to
    /// the buffer's memory).
    pub(crate) fn decode_copying(
        &mut self,
        buf: &mut BytesMut,
        below: usize,
        copy: impl Fn(&[u8]) -> Bytes,
    ) -> Result<Option<Frame>, ProtocolError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.decode_inner(buf, below, copy) {
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
        let compressed_bit = self.per_message_deflate
            && header.rsv & 0b100 != 0
            && matches!(header.opcode, OpCode::Text | OpCode::Binary);
        let rsv = if compressed_bit {
            header.rsv & !0b100
        } else {
            header.rsv
        };
        if rsv & !self.allowed_rsv != 0 {
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
                m.text && !m.compressed
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
                    compressed: compressed_bit,
                    len: header.payload_len,
                    fragments: 1,
                });
                text && !compressed_bit
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

    /// The common case in one step: a whole unfragmented text or binary
    /// frame with a 7-bit length and no RSV bits at the front of `buf`,
    /// while no message is open. `None`: not that case (nothing consumed,
    /// nothing changed); the general path handles it, errors included.
    #[inline]
    fn decode_whole_short(
        &mut self,
        buf: &mut BytesMut,
        below: usize,
        copy: &impl Fn(&[u8]) -> Bytes,
    ) -> Option<Result<Option<Frame>, ProtocolError>> {
        let (b0, b1) = match buf[..] {
            [b0, b1, ..] => (b0, b1),
            _ => return None,
        };
        let opcode = match b0 {
            0x81 => OpCode::Text,
            0x82 => OpCode::Binary,
            _ => return None,
        };
        let masked = b1 & 0x80 != 0;
        let len = usize::from(b1 & 0x7f);
        if self.message.is_some()
            || masked != (self.role == Role::Server)
            || len >= 126
            || len > self.limits.max_frame_size
            || len > self.limits.max_message_size
        {
            return None;
        }
        let hlen = if masked { 6 } else { 2 };
        if buf.len() < hlen + len {
            return None;
        }
        if masked {
            let key = [buf[2], buf[3], buf[4], buf[5]];
            apply_mask(&mut buf[hlen..hlen + len], key, 0);
        }
        // Unmasked in place: from here on the frame is consumed, even if
        // it is invalid (the decoder then fails, as the general path would
        // on the same bytes). No message is open, so the validator starts
        // fresh and `finish` leaves it so.
        if opcode == OpCode::Text {
            let text = &buf[hlen..hlen + len];
            if self
                .utf8
                .feed(text)
                .and_then(|()| self.utf8.finish())
                .is_err()
            {
                return Some(Err(ProtocolError::InvalidUtf8));
            }
        }
        let payload = take_payload(buf, hlen, len, below, copy);
        Some(Ok(Some(Frame {
            fin: true,
            rsv: 0,
            opcode,
            payload,
        })))
    }

    fn decode_inner(
        &mut self,
        buf: &mut BytesMut,
        below: usize,
        copy: impl Fn(&[u8]) -> Bytes,
    ) -> Result<Option<Frame>, ProtocolError> {
        if self.current.is_none() {
            if let Some(r) = self.decode_whole_short(buf, below, &copy) {
                return r;
            }
            if !self.start_frame(buf)? {
                return Ok(None);
            }
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
        let payload = take_payload(buf, 0, cur.len, below, &copy);
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

/// Takes a complete payload of `len` bytes that follows `skip` bytes (a
/// header still in the buffer) off the front of `buf`, header and all:
/// copied by `copy` when shorter than `below`, split off (zero copy)
/// otherwise. One `advance` for header and payload on the copy path.
#[inline]
fn take_payload(
    buf: &mut BytesMut,
    skip: usize,
    len: usize,
    below: usize,
    copy: &impl Fn(&[u8]) -> Bytes,
) -> Bytes {
    if len == 0 {
        buf.advance(skip);
        // Not an empty view of the buffer: that would still pin it.
        Bytes::new()
    } else if len < below {
        let p = copy(&buf[skip..skip + len]);
        buf.advance(skip + len);
        p
    } else {
        buf.advance(skip);
        buf.split_to(len).freeze()
    }
}
