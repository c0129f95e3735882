//! Fragments → [`Message`]: the data frames of one message joined into one
//! payload (a single-frame message is passed through without a copy).

use bytes::{Bytes, BytesMut};

use crate::ws::message::{Message, Utf8Bytes};

/// A fragmented message being put together.
///
/// The state lives in a box made by the first fragment and dropped with the
/// last: an idle connection carries one pointer, not 72 bytes (fragmented
/// messages are rare, and joining one allocates its payload anyway).
#[derive(Debug, Default)]
pub(crate) struct Assembler(Option<Box<Partial>>);

#[derive(Debug)]
struct Partial {
    text: bool,
    /// The first fragment, kept as it is until a second one arrives.
    first: Option<Bytes>,
    buf: BytesMut,
}

impl Assembler {
    /// Whether a message is being assembled.
    pub(crate) fn is_active(&self) -> bool {
        self.0.is_some()
    }

    /// Starts a message with its first (non-final) fragment.
    pub(crate) fn start(&mut self, text: bool, payload: Bytes) {
        self.0 = Some(Box::new(Partial {
            text,
            first: Some(payload),
            buf: BytesMut::new(),
        }));
    }

    /// Adds a continuation; returns the message after the final one. The
    /// decoder has already enforced the size limits and validated UTF-8
    /// (and sends no continuation without a message open; one here anyway
    /// is ignored).
    pub(crate) fn push(&mut self, payload: &Bytes, fin: bool) -> Option<Message> {
        let p = self.0.as_mut()?;
        if let Some(first) = p.first.take() {
            p.buf = BytesMut::with_capacity(first.len() + payload.len());
            p.buf.extend_from_slice(&first);
        }
        p.buf.extend_from_slice(payload);
        if !fin {
            return None;
        }
        let p = self.0.take()?;
        Some(message(p.text, p.buf.freeze()))
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
