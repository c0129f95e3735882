//! [`Event`] → `text/event-stream` bytes, straight into a caller's buffer.
//!
//! Every field is written as `name: value\n`. The space after the colon is
//! always there because a decoder strips exactly one leading space: data that
//! itself starts with a space survives. `data` is split on CR, LF and CRLF
//! (one break each; see `scan` for how they are found), each piece on its own
//! `data:` line,
//! so what a browser decodes is the text with its breaks normalized to LF.
//! The event ends with a blank line.

use bytes::{BufMut, Bytes, BytesMut};

use super::event::Event;
use super::scan::find_break;

/// The keepalive comment written by [`Encoder::keepalive`].
pub const KEEPALIVE: &[u8] = b": keepalive\n";

/// Encodes events into `text/event-stream` bytes.
///
/// Encoding cannot fail (an [`Event`] is checked when built) and does not
/// allocate once the buffer is large enough: reuse one `BytesMut` per
/// connection (`clear()` or `split()` it after each write).
///
/// ```
/// use bytes::BytesMut;
/// use rtwire::sse::{Encoder, Event};
///
/// let mut buf = BytesMut::with_capacity(256);
/// let ev = Event::new("a\r\nb").with_id("1")?.with_event("tick")?;
/// Encoder::new().encode(&ev, &mut buf);
/// assert_eq!(&buf[..], b"id: 1\nevent: tick\ndata: a\ndata: b\n\n");
/// # Ok::<(), rtwire::sse::EventError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Encoder {
    _priv: (),
}

impl Encoder {
    /// An encoder.
    pub fn new() -> Self {
        Encoder { _priv: () }
    }

    /// Appends `event` to `buf`.
    ///
    /// Reserves an estimate up front (exact for single-line data and
    /// comments); data with more lines grows the buffer while writing.
    pub fn encode(&self, event: &Event<'_>, buf: &mut BytesMut) {
        buf.reserve(size_hint(event));
        for c in &event.comments {
            write_lines(buf, b": ", c.as_bytes());
        }
        if let Some(id) = &event.id {
            write_field(buf, b"id: ", id.as_bytes());
        }
        if let Some(ev) = &event.event {
            write_field(buf, b"event: ", ev.as_bytes());
        }
        if let Some(ms) = event.retry {
            write_retry(buf, ms);
        }
        if let Some(data) = &event.data {
            write_lines(buf, b"data: ", data.as_bytes());
        }
        buf.put_u8(b'\n');
    }

    /// Encodes `event` once into shared bytes that can be written to many
    /// streams (the broadcast case).
    ///
    /// ```
    /// use rtwire::sse::{Encoder, Event};
    /// let shared = Encoder::new().encode_to_bytes(&Event::new("tick"));
    /// let copy = shared.clone(); // no copy of the bytes
    /// assert_eq!(copy.as_bytes().as_ref(), b"data: tick\n\n");
    /// ```
    pub fn encode_to_bytes(&self, event: &Event<'_>) -> EncodedEvent {
        let mut buf = BytesMut::with_capacity(size_hint(event));
        self.encode(event, &mut buf);
        EncodedEvent(buf.freeze())
    }

    /// Appends a keepalive comment ([`KEEPALIVE`]). Clients ignore it; it
    /// keeps proxies and load balancers from timing out an idle stream.
    pub fn keepalive(&self, buf: &mut BytesMut) {
        buf.put_slice(KEEPALIVE);
    }

    /// Appends a comment (`: text`, one line per line of `text`).
    pub fn comment(&self, text: &str, buf: &mut BytesMut) {
        buf.reserve(text.len() + 3);
        write_lines(buf, b": ", text.as_bytes());
    }

    /// Appends a lone `retry: millis` line, without ending an event: the
    /// client applies it at once and nothing is dispatched.
    pub fn retry(&self, millis: u64, buf: &mut BytesMut) {
        write_retry(buf, millis);
    }
}

impl Event<'_> {
    /// Encodes this event into shared bytes; see [`Encoder::encode_to_bytes`].
    pub fn to_encoded(&self) -> EncodedEvent {
        Encoder::new().encode_to_bytes(self)
    }
}

/// An event encoded once, cheap to clone and to write to many streams.
///
/// It always holds complete, well-formed events (it can only be made by the
/// [`Encoder`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EncodedEvent(Bytes);

impl EncodedEvent {
    /// The encoded bytes (ending with the blank line).
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The encoded length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: an encoded event ends with at least a blank line.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Longest `retry: <u64>\n`.
const RETRY_MAX: usize = 7 + 20 + 1;

/// Bytes needed for `event`, exact unless `data` or a comment has line breaks.
fn size_hint(event: &Event<'_>) -> usize {
    let mut n = 1; // final blank line
    for c in &event.comments {
        n += 3 + c.len();
    }
    if let Some(id) = &event.id {
        n += 5 + id.len();
    }
    if let Some(ev) = &event.event {
        n += 8 + ev.len();
    }
    if event.retry.is_some() {
        n += RETRY_MAX;
    }
    if let Some(d) = &event.data {
        n += 7 + d.len();
    }
    n
}

#[inline]
fn write_field(buf: &mut BytesMut, prefix: &[u8], value: &[u8]) {
    buf.put_slice(prefix);
    buf.put_slice(value);
    buf.put_u8(b'\n');
}

/// Writes `prefix line\n` for each line of `text`, a CRLF counting as one
/// break. Empty `text` is one empty line.
#[inline]
fn write_lines(buf: &mut BytesMut, prefix: &[u8], text: &[u8]) {
    let mut rest = text;
    while let Some(pos) = find_break(rest) {
        buf.put_slice(prefix);
        if rest[pos] == b'\n' {
            // The line and its LF in one copy: the output's line break is
            // the input's.
            buf.put_slice(&rest[..=pos]);
            rest = &rest[pos + 1..];
            continue;
        }
        buf.put_slice(&rest[..pos]);
        buf.put_u8(b'\n');
        // A CRLF is one break.
        let skip = if rest.get(pos + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        rest = &rest[pos + skip..];
    }
    write_field(buf, prefix, rest);
}

fn write_retry(buf: &mut BytesMut, millis: u64) {
    let mut digits = [0u8; 20];
    let n = format_u64(millis, &mut digits);
    buf.reserve(RETRY_MAX);
    buf.put_slice(b"retry: ");
    buf.put_slice(&digits[20 - n..]);
    buf.put_u8(b'\n');
}

/// Writes the decimal digits of `v` at the end of `out`; returns how many.
fn format_u64(mut v: u64, out: &mut [u8; 20]) -> usize {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return out.len() - i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(ev: &Event<'_>) -> String {
        let mut buf = BytesMut::new();
        Encoder::new().encode(ev, &mut buf);
        String::from_utf8(buf.to_vec()).unwrap()
    }

    #[test]
    fn every_field_in_order() {
        let ev = Event::new("d")
            .with_id("i")
            .unwrap()
            .with_event("e")
            .unwrap()
            .with_retry(0)
            .with_comment("c");
        assert_eq!(enc(&ev), ": c\nid: i\nevent: e\nretry: 0\ndata: d\n\n");
    }

    #[test]
    fn line_breaks_split_data() {
        assert_eq!(enc(&Event::new("")), "data: \n\n");
        assert_eq!(enc(&Event::new("a\nb")), "data: a\ndata: b\n\n");
        assert_eq!(enc(&Event::new("a\rb")), "data: a\ndata: b\n\n");
        assert_eq!(enc(&Event::new("a\r\nb")), "data: a\ndata: b\n\n");
        assert_eq!(enc(&Event::new("a\n\rb")), "data: a\ndata: \ndata: b\n\n");
        assert_eq!(enc(&Event::new("\r\n")), "data: \ndata: \n\n");
        assert_eq!(enc(&Event::new("a\r")), "data: a\ndata: \n\n");
        assert_eq!(enc(&Event::new(" x")), "data:  x\n\n");
    }

    #[test]
    fn comments_split_like_data() {
        let ev = Event::empty().with_comment("a\r\nb");
        assert_eq!(enc(&ev), ": a\n: b\n\n");
    }

    #[test]
    fn retry_digits() {
        let mut d = [0u8; 20];
        for v in [0u64, 7, 10, 500, 1234567890, u64::MAX] {
            let n = format_u64(v, &mut d);
            assert_eq!(&d[20 - n..], v.to_string().as_bytes());
        }
    }

    #[test]
    fn size_hint_is_exact_for_single_lines() {
        let ev = Event::new("data")
            .with_id("17")
            .unwrap()
            .with_event("e")
            .unwrap()
            .with_comment("hi");
        assert_eq!(size_hint(&ev), enc(&ev).len());
    }
}
