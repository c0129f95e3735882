//! Complete messages and UTF-8-checked text.

use std::fmt;

use bytes::Bytes;

/// Text that has been checked to be UTF-8, backed by `Bytes`.
///
/// Received text is validated by the decoder as it arrives and wrapped
/// without copying or validating again; [`as_bytes`](Self::as_bytes) and
/// [`into_bytes`](Self::into_bytes) are free.
///
/// [`as_str`](Self::as_str) re-runs `std::str::from_utf8` (which cannot fail
/// here, and is fast on ASCII): the crate keeps `unsafe` out of everything but
/// the masking kernel, so there is no unchecked conversion.
///
/// ```
/// use rtwire::ws::Utf8Bytes;
/// let t = Utf8Bytes::from("héllo");
/// assert_eq!(t.as_str(), "héllo");
/// assert!(Utf8Bytes::try_from(bytes::Bytes::from_static(b"\xff")).is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Wraps bytes the caller has already validated (the decoder).
    pub(crate) fn from_validated(b: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&b).is_ok());
        Utf8Bytes(b)
    }

    /// An empty text.
    pub const fn new() -> Self {
        Utf8Bytes(Bytes::new())
    }

    /// A static text (no allocation).
    pub const fn from_static(s: &'static str) -> Self {
        Utf8Bytes(Bytes::from_static(s.as_bytes()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The UTF-8 bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The UTF-8 bytes, by value.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = super::Utf8Error;
    fn try_from(b: Bytes) -> Result<Self, Self::Error> {
        match std::str::from_utf8(&b) {
            Ok(_) => Ok(Utf8Bytes(b)),
            Err(_) => Err(super::Utf8Error),
        }
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Utf8Bytes(Bytes::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Utf8Bytes(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A complete data message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(s: impl Into<Utf8Bytes>) -> Self {
        Message::Text(s.into())
    }

    /// A binary message.
    pub fn binary(b: impl Into<Bytes>) -> Self {
        Message::Binary(b.into())
    }

    /// The payload bytes.
    pub fn payload(&self) -> &Bytes {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// The payload bytes, by value.
    pub fn into_payload(self) -> Bytes {
        match self {
            Message::Text(t) => t.into_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// The text, if this is a text message.
    ///
    /// ```
    /// use rtwire::ws::Message;
    /// assert_eq!(Message::text("hi").as_text(), Some("hi"));
    /// assert_eq!(Message::binary(&b"hi"[..]).as_text(), None);
    /// ```
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(t) => Some(t.as_str()),
            Message::Binary(_) => None,
        }
    }

    /// Whether this is text.
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }

    /// The opcode of this message's first frame.
    pub fn opcode(&self) -> super::OpCode {
        match self {
            Message::Text(_) => super::OpCode::Text,
            Message::Binary(_) => super::OpCode::Binary,
        }
    }
}
