//! A parser for the WHATWG `text/event-stream` format (HTML Living Standard,
//! "Server-sent events", §9.2.6 "Interpreting an event stream"), fed
//! arbitrary chunks.
//!
//! Rules, as the standard states them and as this decoder applies them:
//!
//! - One leading U+FEFF BOM is stripped from the stream; a second one is
//!   part of the first field name.
//! - Lines end with CRLF, LF or CR; a CRLF split across two chunks is one
//!   line end.
//! - An empty line dispatches the event; a line starting with `:` is a
//!   comment; otherwise the field name is everything before the first `:`
//!   (the whole line when there is none, with an empty value), and one
//!   leading space is stripped from the value. Field names are
//!   case-sensitive; unknown fields are ignored.
//! - `data` appends the value and an LF to the data buffer; `event` sets the
//!   event type; `id` sets the last event id buffer unless the value contains
//!   NUL; `retry` sets the reconnection time when the value is one or more
//!   ASCII digits only.
//! - On dispatch the last event id is taken from its buffer (which is not
//!   reset). An empty data buffer dispatches nothing; otherwise one trailing
//!   LF is removed and the event gets type `message` unless an `event` field
//!   set another.
//! - At the end of the stream a pending, unterminated event is discarded
//!   ([`Decoder::reset_stream`]).
//! - Text is UTF-8, invalid sequences are replaced with U+FFFD.

use bytes::{Buf, BytesMut};

use super::error::DecodeError;
use super::event::MessageEvent;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Bounds on what a server can make the decoder buffer.
///
/// | field | default |
/// |---|---|
/// | `max_line` | 64 KiB (a line, without its line end) |
/// | `max_event` | 1 MiB (data plus event type) |
///
/// Read the fields; build with [`Limits::new`] (or `default()`) and the
/// setters:
///
/// ```
/// use rtwire::sse::Limits;
///
/// let limits = Limits::new().max_line(4096).max_event(64 * 1024);
/// assert_eq!((limits.max_line, limits.max_event), (4096, 64 * 1024));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest line, without its line end. Over it:
    /// [`DecodeError::LineTooLong`]. The caller's buffer holds at most this
    /// plus one read of an unfinished line before the error is reported.
    pub max_line: usize,
    /// Largest event: the data buffer plus the event type. Over it:
    /// [`DecodeError::EventTooLarge`].
    pub max_event: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new()
    }
}

impl Limits {
    /// The defaults (see the table above).
    pub const fn new() -> Self {
        Limits {
            max_line: 64 * 1024,
            max_event: 1024 * 1024,
        }
    }

    /// Sets the longest accepted line.
    pub const fn max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes;
        self
    }

    /// Sets the largest accepted event (data plus type).
    pub const fn max_event(mut self, bytes: usize) -> Self {
        self.max_event = bytes;
        self
    }
}

/// An incremental, sans-IO event-stream parser.
///
/// Append received bytes to a `BytesMut` and call [`Decoder::decode`] until it
/// returns `Ok(None)`; complete lines are consumed from the front of the
/// buffer, an unfinished line stays there. Work is linear in the input
/// however it is chunked.
///
/// ```
/// use bytes::BytesMut;
/// use rtwire::sse::{Decoder, Limits};
///
/// let mut dec = Decoder::new(Limits::default());
/// let mut buf = BytesMut::new();
/// buf.extend_from_slice(b"\xEF\xBB\xBFevent: greet\r\ndata: a\r");
/// assert!(dec.decode(&mut buf)?.is_none());
/// buf.extend_from_slice(b"\ndata: b\n\n");
/// let ev = dec.decode(&mut buf)?.unwrap();
/// assert_eq!((ev.event_type(), ev.data()), ("greet", "a\nb"));
/// # Ok::<(), rtwire::sse::DecodeError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Decoder {
    limits: Limits,
    /// Whether the start of the stream has been checked for a BOM.
    bom_checked: bool,
    /// The previous line ended with a CR at the very end of the buffer: a
    /// LF at the front of the next chunk belongs to it.
    skip_lf: bool,
    /// `buf[..scanned]` holds no CR or LF (the unfinished line so far).
    scanned: usize,
    data: Vec<u8>,
    event_type: Vec<u8>,
    /// The "last event ID buffer".
    id_buffer: String,
    /// The "last event ID string", updated on dispatch.
    last_event_id: String,
    retry: Option<u64>,
}

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            bom_checked: false,
            skip_lf: false,
            scanned: 0,
            data: Vec::new(),
            event_type: Vec::new(),
            id_buffer: String::new(),
            last_event_id: String::new(),
            retry: None,
        }
    }

    /// A decoder whose last event id starts as `id` (a client resuming with
    /// `Last-Event-ID`).
    pub fn with_last_event_id(limits: Limits, id: &str) -> Self {
        let mut d = Decoder::new(limits);
        d.id_buffer.push_str(id);
        d.last_event_id.push_str(id);
        d
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The last event id string: the id buffer as of the last dispatch (also
    /// of a dispatch with no data). This is what a client sends as
    /// `Last-Event-ID` when it reconnects.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time from the last valid `retry` field, in
    /// milliseconds (saturating at `u64::MAX`).
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Ends the stream: the pending event (fields without their blank line)
    /// is discarded, and the next bytes are the start of a new stream (a BOM
    /// is stripped again). The last event id and the reconnection time are
    /// kept. Clear the caller's buffer too.
    pub fn reset_stream(&mut self) {
        self.bom_checked = false;
        self.skip_lf = false;
        self.scanned = 0;
        self.data.clear();
        self.event_type.clear();
        self.id_buffer.clone_from(&self.last_event_id);
    }

    /// Consumes complete lines from the front of `buf` until an event is
    /// dispatched (`Ok(Some)`) or no complete line is left (`Ok(None)`).
    ///
    /// Between calls, only append to `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<MessageEvent>, DecodeError> {
        if !self.bom_checked {
            let n = buf.len().min(BOM.len());
            if buf[..n] != BOM[..n] {
                self.bom_checked = true;
            } else if n == BOM.len() {
                buf.advance(n);
                self.bom_checked = true;
            } else {
                // A (possibly empty) prefix of a BOM: wait for more.
                return Ok(None);
            }
        }
        loop {
            if self.skip_lf {
                match buf.first() {
                    None => return Ok(None),
                    Some(b'\n') => buf.advance(1),
                    Some(_) => {}
                }
                self.skip_lf = false;
            }
            let from = self.scanned.min(buf.len());
            let Some(i) = memchr::memchr2(b'\r', b'\n', &buf[from..]) else {
                self.scanned = buf.len();
                if buf.len() > self.limits.max_line {
                    return Err(DecodeError::LineTooLong {
                        limit: self.limits.max_line,
                    });
                }
                return Ok(None);
            };
            let end = from + i;
            self.scanned = 0;
            if end > self.limits.max_line {
                return Err(DecodeError::LineTooLong {
                    limit: self.limits.max_line,
                });
            }
            let mut consumed = end + 1;
            if buf[end] == b'\r' {
                match buf.get(end + 1) {
                    Some(b'\n') => consumed += 1,
                    None => self.skip_lf = true,
                    Some(_) => {}
                }
            }
            let dispatched = self.process_line(&buf[..end]);
            buf.advance(consumed);
            if let Some(ev) = dispatched? {
                return Ok(Some(ev));
            }
        }
    }

    fn process_line(&mut self, line: &[u8]) -> Result<Option<MessageEvent>, DecodeError> {
        let (name, value) = match line {
            [] => return Ok(self.dispatch()),
            [b':', ..] => return Ok(None),
            _ => match memchr::memchr(b':', line) {
                Some(i) => {
                    let v = &line[i + 1..];
                    (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                }
                None => (line, &[][..]),
            },
        };
        match name {
            b"data" => {
                self.check_size(self.data.len() + value.len() + 1 + self.event_type.len())?;
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            b"event" => {
                self.check_size(self.data.len() + value.len())?;
                self.event_type.clear();
                self.event_type.extend_from_slice(value);
            }
            // An id with NUL is ignored (it could not be sent back in a
            // `Last-Event-ID` header).
            b"id" if memchr::memchr(0, value).is_none() => {
                self.id_buffer.clear();
                self.id_buffer.push_str(&String::from_utf8_lossy(value));
            }
            // Only ASCII digits: no sign, no space, no fraction.
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                let ms = value.iter().fold(0u64, |acc, d| {
                    acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                self.retry = Some(ms);
            }
            _ => {}
        }
        Ok(None)
    }

    fn check_size(&self, size: usize) -> Result<(), DecodeError> {
        if size > self.limits.max_event {
            Err(DecodeError::EventTooLarge {
                limit: self.limits.max_event,
            })
        } else {
            Ok(())
        }
    }

    fn dispatch(&mut self) -> Option<MessageEvent> {
        self.last_event_id.clone_from(&self.id_buffer);
        if self.data.is_empty() {
            self.event_type.clear();
            return None;
        }
        self.data.pop(); // the LF after the last data line
        let data = match String::from_utf8(std::mem::take(&mut self.data)) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        let event = if self.event_type.is_empty() {
            None
        } else {
            let t = String::from_utf8_lossy(&self.event_type).into_owned();
            self.event_type.clear();
            Some(t)
        };
        Some(MessageEvent {
            event,
            data,
            last_event_id: self.last_event_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed one byte at a time.
    fn bytewise(input: &[u8]) -> Vec<MessageEvent> {
        let mut d = Decoder::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in input {
            buf.extend_from_slice(&[b]);
            while let Some(ev) = d.decode(&mut buf).unwrap() {
                out.push(ev);
            }
        }
        out
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        let evs = bytewise(b"data: a\r\n\r\ndata: b\r\r");
        let data: Vec<_> = evs.iter().map(|e| e.data()).collect();
        assert_eq!(data, ["a", "b"]);
    }

    #[test]
    fn bom_split_across_chunks() {
        let evs = bytewise(b"\xEF\xBB\xBFdata: x\n\n");
        assert_eq!(evs[0].data(), "x");
    }

    #[test]
    fn partial_line_scan_is_linear() {
        let mut d = Decoder::new(Limits::default());
        let mut buf = BytesMut::new();
        for _ in 0..1000 {
            buf.extend_from_slice(b"x");
            assert!(d.decode(&mut buf).unwrap().is_none());
            assert_eq!(d.scanned, buf.len());
        }
    }
}
