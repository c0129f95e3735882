//! Fragments → [`Message`]: the data frames of one message joined into one
//! payload (a single-frame message is passed through without a copy).

use bytes::{Bytes, BytesMut};

use crate::ws::message::{Message, Utf8Bytes};

/// A fragmented message being put together.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    text: bool,
    /// The first fragment, kept as it is until a second one arrives.
    first: Option<Bytes>,
    buf: BytesMut,
    active: bool,
}

impl Assembler {
    /// Whether a message is being assembled.
    pub(crate) fn is_active(&self) -> bool {
        self.active
    }

    /// Starts a message with its first (non-final) fragment.
    pub(crate) fn start(&mut self, text: bool, payload: Bytes) {
        self.text = text;
        self.first = Some(payload);
        self.active = true;
    }

    /// Adds a continuation; returns the message after the final one. The
    /// decoder has already enforced the size limits and validated UTF-8.
    pub(crate) fn push(&mut self, payload: &Bytes, fin: bool) -> Option<Message> {
        if let Some(first) = self.first.take() {
            self.buf = BytesMut::with_capacity(first.len() + payload.len());
            self.buf.extend_from_slice(&first);
        }
        self.buf.extend_from_slice(payload);
        if !fin {
            return None;
        }
        self.active = false;
        Some(message(self.text, std::mem::take(&mut self.buf).freeze()))
    }
}

/// A message from a complete, validated payload.
pub(crate) fn message(text: bool, data: Bytes) -> Message {
    if text {
        Message::Text(Utf8Bytes::from_validated(data))
    } else {
        Message::Binary(data)
    }
}
