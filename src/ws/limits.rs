//! Frame, message and fragment limits, checked before memory is committed.

/// Size limits enforced while decoding. Every limit is checked against the
/// declared length *before* any memory is committed for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Sets the largest frame payload accepted.
    ///
    /// ```
    /// let limits = rtwire::ws::Limits::default().max_frame_size(1 << 20);
    /// assert_eq!(limits.max_frame_size, 1 << 20);
    /// ```
    pub fn max_frame_size(mut self, n: usize) -> Self {
        self.max_frame_size = n;
        self
    }

    /// Sets the largest message accepted.
    pub fn max_message_size(mut self, n: usize) -> Self {
        self.max_message_size = n;
        self
    }

    /// Sets the most frames per message.
    pub fn max_fragments(mut self, n: usize) -> Self {
        self.max_fragments = n;
        self
    }

    /// Limits that accept anything up to `usize::MAX` (for trusted peers).
    pub fn unlimited() -> Self {
        Limits {
            max_frame_size: usize::MAX,
            max_message_size: usize::MAX,
            max_fragments: usize::MAX,
        }
    }
}
