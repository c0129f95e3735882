//! Parsed request and response heads that own their bytes.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use smallvec::SmallVec;

/// Byte range `(start, end)` into a head's raw bytes.
pub(crate) type Span = (u32, u32);

pub(crate) type HeaderSpans = SmallVec<[(Span, Span); 16]>;

pub(crate) fn span_of(raw: &[u8], part: &[u8]) -> Span {
    let start = part.as_ptr() as usize - raw.as_ptr() as usize;
    (start as u32, (start + part.len()) as u32)
}

fn slice(raw: &Bytes, (s, e): Span) -> &[u8] {
    &raw[s as usize..e as usize]
}

fn str_of(raw: &Bytes, span: Span) -> &str {
    // Spans that are exposed as `&str` were `&str` in httparse's output.
    std::str::from_utf8(slice(raw, span)).unwrap_or("")
}

/// Iterator over `(name, value)` header pairs, in the order they were received.
pub struct HeaderIter<'a> {
    raw: &'a Bytes,
    inner: std::slice::Iter<'a, (Span, Span)>,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a str, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let (n, v) = self.inner.next()?;
        Some((str_of(self.raw, *n), slice(self.raw, *v)))
    }
}

/// A complete HTTP/1.x request head (request line and header fields).
///
/// It owns the received bytes (one `Bytes`), and refers into them: parsing
/// copies nothing and cloning is cheap.
#[derive(Clone)]
pub struct RequestHead {
    pub(crate) raw: Bytes,
    pub(crate) method: Span,
    pub(crate) target: Span,
    pub(crate) minor_version: u8,
    pub(crate) headers: HeaderSpans,
}

impl RequestHead {
    /// The request method, e.g. `"GET"` (case-sensitive, as received).
    pub fn method(&self) -> &str {
        str_of(&self.raw, self.method)
    }

    /// The request target as received, e.g. `"/chat?topics=a,b"`.
    pub fn target(&self) -> &str {
        str_of(&self.raw, self.target)
    }

    /// The path part of the target (before any `?`).
    pub fn path(&self) -> &str {
        let t = self.target();
        t.split_once('?').map_or(t, |(p, _)| p)
    }

    /// The raw query string (after the first `?`, without it), if any.
    pub fn query(&self) -> Option<&str> {
        self.target().split_once('?').map(|(_, q)| q)
    }

    /// The first value of query parameter `name`, percent-decoded.
    /// `None` when absent or not valid UTF-8 after decoding.
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        let q = self.query()?;
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if k == name {
                if v.bytes().any(|b| b == b'%' || b == b'+') {
                    super::percent_decode(v).map(Cow::Owned)
                } else {
                    Some(Cow::Borrowed(v))
                }
            } else {
                None
            }
        })
    }

    /// The HTTP minor version: `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub fn minor_version(&self) -> u8 {
        self.minor_version
    }

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first header named `name` as a trimmed `&str`, if it is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name)
            .and_then(|v| std::str::from_utf8(super::trim(v)).ok())
    }

    /// Every value of the headers named `name`, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// All header fields in the order received.
    pub fn headers(&self) -> HeaderIter<'_> {
        HeaderIter {
            raw: &self.raw,
            inner: self.headers.iter(),
        }
    }

    /// The raw bytes of the whole head, including the final blank line.
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }
}

impl fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("minor_version", &self.minor_version)
            .field("headers", &self.headers.len())
            .finish()
    }
}

/// A complete HTTP/1.x response head (status line and header fields).
#[derive(Clone)]
pub struct ResponseHead {
    pub(crate) raw: Bytes,
    pub(crate) status: u16,
    pub(crate) reason: Span,
    pub(crate) minor_version: u8,
    pub(crate) headers: HeaderSpans,
}

impl ResponseHead {
    /// The status code, e.g. `101`.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase as received (may be empty).
    pub fn reason(&self) -> &str {
        str_of(&self.raw, self.reason)
    }

    /// The HTTP minor version: `1` for HTTP/1.1.
    pub fn minor_version(&self) -> u8 {
        self.minor_version
    }

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first header named `name` as a trimmed `&str`, if it is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name)
            .and_then(|v| std::str::from_utf8(super::trim(v)).ok())
    }

    /// Every value of the headers named `name`, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// All header fields in the order received.
    pub fn headers(&self) -> HeaderIter<'_> {
        HeaderIter {
            raw: &self.raw,
            inner: self.headers.iter(),
        }
    }

    /// The raw bytes of the whole head, including the final blank line.
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }
}

impl fmt::Debug for ResponseHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseHead")
            .field("status", &self.status)
            .field("reason", &self.reason())
            .field("headers", &self.headers.len())
            .finish()
    }
}
