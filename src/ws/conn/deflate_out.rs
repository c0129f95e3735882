//! The write side of permessage-deflate, owned by whoever writes (a whole
//! [`Conn`](super::Conn) or its [`WriteHalf`](super::WriteHalf)), not by the
//! shared write queue: a message is compressed before the queue's lock is
//! taken, so a large one never holds up the read half (its pongs and close
//! replies go through the same lock).

use bytes::Bytes;

use crate::ws::frame::Frame;
#[cfg(feature = "deflate")]
use crate::ws::frame::OpCode;

/// Compression state of one connection's outgoing messages.
#[cfg(feature = "deflate")]
#[derive(Debug)]
pub(crate) struct DeflateOut {
    params: crate::ws::deflate::DeflateParams,
    deflater: crate::ws::deflate::Deflater,
    /// The data message being fed is compressed (so are its continuations).
    compressing: bool,
}

#[cfg(feature = "deflate")]
impl DeflateOut {
    pub(crate) fn new(params: &crate::ws::deflate::DeflateParams, role: crate::ws::Role) -> Self {
        let (no_context, bits) = params.ours(role);
        DeflateOut {
            params: *params,
            deflater: crate::ws::deflate::Deflater::new(
                no_context,
                bits,
                params.level,
                params.threshold,
            ),
            compressing: false,
        }
    }

    /// The negotiated parameters.
    pub(crate) fn params(&self) -> &crate::ws::deflate::DeflateParams {
        &self.params
    }

    /// The window bits a shared compressed encoding must be made with to
    /// fit this connection, when one fits (no context takeover on our side).
    pub(crate) fn shared_window(&self) -> Option<u8> {
        self.deflater.shared_window()
    }

    /// The frame to queue for `frame` (which passed the queue's checks):
    /// its compressed form (RSV1 on a message's first frame), or `None` to
    /// queue it as it is (control frames, small messages).
    pub(crate) fn prepare(&mut self, frame: &Frame) -> Option<Frame> {
        let compress = match frame.opcode {
            OpCode::Text | OpCode::Binary => {
                // A fragmented message is compressed whatever its first
                // fragment's size: its total is unknown.
                self.compressing = !frame.fin || frame.payload.len() >= self.deflater.threshold;
                self.compressing
            }
            OpCode::Continuation => self.compressing,
            _ => false,
        };
        if !compress {
            return None;
        }
        let mut z = Vec::with_capacity(frame.payload.len() / 2 + 64);
        self.deflater.compress(&frame.payload, frame.fin, &mut z);
        let mut f = Frame::new(frame.opcode, z).with_fin(frame.fin);
        if frame.opcode != OpCode::Continuation {
            f.rsv = 0b100;
        }
        Some(f)
    }

    /// A whole message compressed once, for sending in fragments; `None`
    /// when it is under the threshold.
    pub(crate) fn compress_message(&mut self, payload: &Bytes) -> Option<Bytes> {
        if payload.len() < self.deflater.threshold {
            return None;
        }
        let mut z = Vec::with_capacity(payload.len() / 2 + 64);
        self.deflater.compress(payload, true, &mut z);
        Some(Bytes::from(z))
    }
}

/// Without the feature there is never any deflate state.
#[cfg(not(feature = "deflate"))]
#[derive(Debug)]
pub(crate) enum DeflateOut {}

#[cfg(not(feature = "deflate"))]
impl DeflateOut {
    pub(crate) fn shared_window(&self) -> Option<u8> {
        match *self {}
    }
    pub(crate) fn prepare(&mut self, _: &Frame) -> Option<Frame> {
        match *self {}
    }
    pub(crate) fn compress_message(&mut self, _: &Bytes) -> Option<Bytes> {
        match *self {}
    }
}
