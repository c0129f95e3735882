//! Incremental UTF-8 validation across partial frames and fragments.

/// Validates UTF-8 text that arrives in pieces, carrying an incomplete code
/// point from one piece to the next.
///
/// An invalid sequence is reported by the [`feed`](Self::feed) call that
/// receives its first bad byte: a text message is rejected as soon as the bad
/// byte arrives, not when the message ends.
///
/// ```
/// use rtwire::ws::Utf8Validator;
/// let mut v = Utf8Validator::new();
/// let s = "héllo ✓".as_bytes();
/// assert!(v.feed(&s[..2]).is_ok()); // "h" and half of "é"
/// assert!(v.feed(&s[2..]).is_ok());
/// assert!(v.finish().is_ok());
///
/// let mut v = Utf8Validator::new();
/// assert!(v.feed(b"ok\xF4\x90").is_err()); // > U+10FFFF: fails at once
/// ```
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

/// The text was not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Error;

impl std::fmt::Display for Utf8Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid UTF-8")
    }
}

impl std::error::Error for Utf8Error {}

/// Length of the sequence a lead byte starts (0 for an invalid lead).
fn seq_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub const fn new() -> Self {
        Utf8Validator {
            partial: [0; 4],
            partial_len: 0,
        }
    }

    /// Whether a code point is incomplete (more bytes are needed).
    pub fn is_incomplete(&self) -> bool {
        self.partial_len != 0
    }

    /// Validates the next piece of text.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Utf8Error> {
        if self.partial_len != 0 {
            // Complete the carried code point with at most 3 bytes.
            let have = self.partial_len as usize;
            let need = seq_len(self.partial[0]);
            let take = (need - have).min(bytes.len());
            let mut tmp = self.partial;
            tmp[have..have + take].copy_from_slice(&bytes[..take]);
            match std::str::from_utf8(&tmp[..have + take]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_none() => {
                    // Still a valid prefix: keep waiting.
                    self.partial = tmp;
                    self.partial_len = (have + take) as u8;
                    return Ok(());
                }
                Err(_) => return Err(Utf8Error),
            }
            bytes = &bytes[take..];
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(e) => match e.error_len() {
                Some(_) => Err(Utf8Error),
                None => {
                    // A valid but incomplete sequence at the end.
                    let tail = &bytes[e.valid_up_to()..];
                    self.partial[..tail.len()].copy_from_slice(tail);
                    self.partial_len = tail.len() as u8;
                    Ok(())
                }
            },
        }
    }

    /// Ends the text: an incomplete code point at the end is an error.
    /// The validator is reset for the next text either way.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let incomplete = self.partial_len != 0;
        self.partial_len = 0;
        if incomplete {
            Err(Utf8Error)
        } else {
            Ok(())
        }
    }

    /// Forgets any state, as at the start of a new text.
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chunked(data: &[u8], cuts: &[usize]) -> Result<(), Utf8Error> {
        let mut v = Utf8Validator::new();
        let mut pos = 0;
        for &c in cuts {
            let c = c.min(data.len()).max(pos);
            v.feed(&data[pos..c])?;
            pos = c;
        }
        v.feed(&data[pos..])?;
        v.finish()
    }

    proptest! {
        #[test]
        fn same_verdict_as_std(data in proptest::collection::vec(any::<u8>(), 0..64),
                               mut cuts in proptest::collection::vec(0usize..64, 0..6)) {
            cuts.sort();
            prop_assert_eq!(chunked(&data, &cuts).is_ok(), std::str::from_utf8(&data).is_ok());
        }

        #[test]
        fn valid_strings_any_chunking(s in "\\PC{0,40}", mut cuts in proptest::collection::vec(0usize..200, 0..8)) {
            cuts.sort();
            prop_assert!(chunked(s.as_bytes(), &cuts).is_ok());
        }
    }

    #[test]
    fn fails_fast_byte_by_byte() {
        // Autobahn 6.4.x: the payload fails at the first impossible byte.
        let data = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited";
        let mut v = Utf8Validator::new();
        let mut failed_at = None;
        for (i, b) in data.iter().enumerate() {
            if v.feed(std::slice::from_ref(b)).is_err() {
                failed_at = Some(i);
                break;
            }
        }
        assert_eq!(failed_at, Some(12)); // the 0x90 after 0xF4
    }

    #[test]
    fn incomplete_at_end_is_error() {
        let mut v = Utf8Validator::new();
        v.feed(b"\xe2\x82").unwrap();
        assert!(v.is_incomplete());
        assert!(v.finish().is_err());
    }
}
