//! One message on its way to many connections: encoded once as a plain
//! server frame and, only when some recipient can take it, once more
//! compressed per distinct (window bits, level) among the recipients
//! (permessage-deflate without server context takeover, feature
//! `deflate`). A recipient whose compressor keeps its context gets the
//! message itself, which its own write queue compresses.

use bytes::{Bytes, BytesMut};

use super::stats::Counters;
#[cfg(feature = "deflate")]
use crate::ws::OpCode;
use crate::ws::{Encoder, FrameHeader, Message, Role};

/// What one connection is given of an [`Outgoing`].
pub(crate) enum Piece<'a> {
    /// Complete encoded frames, shared with the other recipients.
    Encoded(&'a Bytes),
    /// A data message for the connection's own compressor; `usize` is
    /// what it counts against the queue bound (its plain frame's size).
    #[cfg(feature = "deflate")]
    Message(OpCode, &'a Bytes, usize),
}

/// How a member takes compressed broadcasts, read once at register time
/// so that a broadcast never locks a connection to ask.
#[cfg(feature = "deflate")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct MemberDeflate {
    /// The window bits of a shared encoding that fits it (`None`: it
    /// compresses each message itself, with context takeover).
    pub(crate) shared: Option<u8>,
    pub(crate) level: u32,
    /// Messages under this size go uncompressed.
    pub(crate) threshold: usize,
}

/// Without feature `deflate` no member compresses.
#[cfg(not(feature = "deflate"))]
#[derive(Clone, Copy, Debug)]
pub(crate) enum MemberDeflate {}

pub(crate) struct Outgoing {
    /// The plain server frame.
    pub(crate) frame: Bytes,
    #[cfg(feature = "deflate")]
    opcode: OpCode,
    #[cfg(feature = "deflate")]
    payload: Bytes,
    /// Compressed encodings made so far: (window bits, level, frame).
    #[cfg(feature = "deflate")]
    compressed: Vec<(u8, u32, Bytes)>,
}

impl Outgoing {
    pub(crate) fn new(msg: &Message) -> Self {
        let mut out = BytesMut::with_capacity(msg.payload().len() + 10);
        Encoder::new(Role::Server).encode_parts(true, 0, msg.opcode(), msg.payload(), &mut out);
        Outgoing {
            frame: out.freeze(),
            #[cfg(feature = "deflate")]
            opcode: msg.opcode(),
            #[cfg(feature = "deflate")]
            payload: msg.payload().clone(),
            #[cfg(feature = "deflate")]
            compressed: Vec::new(),
        }
    }

    /// Complete encoded frames given by the application
    /// ([`Hub::send_encoded`](super::Hub::send_encoded)).
    pub(crate) fn from_encoded(frame: Bytes) -> Self {
        Outgoing {
            frame,
            #[cfg(feature = "deflate")]
            opcode: OpCode::Binary,
            #[cfg(feature = "deflate")]
            payload: Bytes::new(),
            #[cfg(feature = "deflate")]
            compressed: Vec::new(),
        }
    }

    /// A frame from another instance: one complete unmasked data frame
    /// with no RSV bits (checked by the caller).
    pub(crate) fn from_frame(frame: Bytes, header: &FrameHeader, header_len: usize) -> Self {
        #[cfg(not(feature = "deflate"))]
        let _ = (header, header_len);
        Outgoing {
            #[cfg(feature = "deflate")]
            opcode: header.opcode,
            #[cfg(feature = "deflate")]
            payload: frame.slice(header_len..),
            #[cfg(feature = "deflate")]
            compressed: Vec::new(),
            frame,
        }
    }

    /// What to queue for a member with `deflate` (its registration's).
    #[cfg(feature = "deflate")]
    pub(crate) fn piece(&mut self, deflate: Option<MemberDeflate>, c: &Counters) -> Piece<'_> {
        let Some(d) = deflate else {
            return Piece::Encoded(&self.frame);
        };
        if self.payload.len() < d.threshold {
            // What the connection would send uncompressed anyway.
            return Piece::Encoded(&self.frame);
        }
        let Some(bits) = d.shared else {
            return Piece::Message(self.opcode, &self.payload, self.frame.len());
        };
        let i = match self
            .compressed
            .iter()
            .position(|(b, l, _)| *b == bits && *l == d.level)
        {
            Some(i) => i,
            None => {
                let z = crate::ws::deflate::encode_compressed(
                    self.opcode,
                    &self.payload,
                    bits,
                    d.level,
                );
                super::stats::bump(&c.broadcast_compressions, 1);
                self.compressed.push((bits, d.level, z));
                self.compressed.len() - 1
            }
        };
        Piece::Encoded(&self.compressed[i].2)
    }

    /// What to queue for a member (no compression in this build).
    #[cfg(not(feature = "deflate"))]
    pub(crate) fn piece(&mut self, _: Option<MemberDeflate>, _: &Counters) -> Piece<'_> {
        Piece::Encoded(&self.frame)
    }
}
