//! Incremental, linear-time head parsing.

use bytes::{Buf, BytesMut};
use smallvec::{smallvec, SmallVec};

use super::head::{span_of, HeaderSpans, RequestHead, ResponseHead};

/// Limits on a head. Defaults: 16 KiB head, 64 header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Maximum size of a head in bytes, including the request/status line,
    /// the final blank line and any empty lines skipped before the start
    /// line. Default 16 KiB. Over it: [`HeadError::TooLarge`] (431).
    pub max_head_size: usize,
    /// Maximum number of header fields. Default 64. Over it:
    /// [`HeadError::TooManyHeaders`] (431).
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_size: 16 * 1024,
            max_headers: 64,
        }
    }
}

impl Limits {
    /// Sets the largest head, in bytes.
    ///
    /// ```
    /// let limits = rtwire::http::Limits::default().max_head_size(4096).max_headers(32);
    /// assert_eq!((limits.max_head_size, limits.max_headers), (4096, 32));
    /// ```
    pub fn max_head_size(mut self, n: usize) -> Self {
        self.max_head_size = n;
        self
    }

    /// Sets the most header fields.
    pub fn max_headers(mut self, n: usize) -> Self {
        self.max_headers = n;
        self
    }
}

/// Why a head could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeadError {
    /// The head is larger than [`Limits::max_head_size`]. HTTP 431.
    TooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// The head has more fields than [`Limits::max_headers`]. HTTP 431.
    TooManyHeaders {
        /// The limit in force.
        limit: usize,
    },
    /// The head is not valid HTTP/1.x. HTTP 400.
    Malformed(&'static str),
}

impl HeadError {
    /// The HTTP status a server answers with: 431 for limits, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            HeadError::TooLarge { .. } | HeadError::TooManyHeaders { .. } => 431,
            HeadError::Malformed(_) => 400,
        }
    }
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::TooLarge { limit } => write!(f, "HTTP head larger than {limit} bytes"),
            HeadError::TooManyHeaders { limit } => write!(f, "more than {limit} header fields"),
            HeadError::Malformed(why) => write!(f, "malformed HTTP head: {why}"),
        }
    }
}

impl std::error::Error for HeadError {}

fn malformed(e: httparse::Error) -> HeadError {
    HeadError::Malformed(match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::Version => "invalid HTTP version",
        httparse::Error::TooManyHeaders => "too many headers",
    })
}

/// An incremental parser for one request or response head.
///
/// Feed it the connection's read buffer after each read; it returns
/// `Ok(None)` until the head is complete, then splits the head off the front
/// of the buffer (what follows the head stays in the buffer).
///
/// Scanning for the end of the head resumes where the previous call stopped,
/// so the total work is linear in the head size however it is chunked.
#[derive(Debug, Clone)]
pub struct HeadParser {
    limits: Limits,
    /// Offset up to which the buffer has been scanned for the blank line.
    scanned: usize,
    /// Total bytes examined by the end-of-head scan (for tests and metrics).
    work: u64,
    /// Empty-line bytes discarded before the start line; they count against
    /// the head-size limit so an endless stream of CRLFs is refused.
    skipped: usize,
}

impl HeadParser {
    /// A parser with the given limits.
    pub fn new(limits: Limits) -> Self {
        HeadParser {
            limits,
            scanned: 0,
            work: 0,
            skipped: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Total bytes examined while looking for the end of the head so far.
    /// Stays at about the head size however the head was chunked.
    pub fn bytes_scanned(&self) -> u64 {
        self.work
    }

    /// Forgets progress so the parser can be reused for the next head.
    pub fn reset(&mut self) {
        self.scanned = 0;
        self.skipped = 0;
    }

    /// Finds the end of the head (index just past the blank line), resuming
    /// the scan at `self.scanned`.
    fn find_end(&mut self, buf: &[u8]) -> Option<usize> {
        let mut pos = self.scanned.min(buf.len());
        while let Some(i) = memchr::memchr(b'\n', &buf[pos..]) {
            let lf = pos + i;
            self.work += (i + 1) as u64;
            match (buf.get(lf + 1), buf.get(lf + 2)) {
                // LF LF (lenient, as httparse accepts bare LF line ends)
                (Some(b'\n'), _) => return Some(lf + 2),
                (Some(b'\r'), Some(b'\n')) => return Some(lf + 3),
                // Not enough bytes yet to know whether a blank line follows:
                // look at this LF again on the next call.
                (None, _) | (Some(b'\r'), None) => {
                    self.scanned = lf;
                    return None;
                }
                _ => pos = lf + 1,
            }
        }
        self.work += (buf.len() - pos) as u64;
        self.scanned = buf.len();
        None
    }

    fn take_head(&mut self, buf: &mut BytesMut) -> Result<Option<bytes::Bytes>, HeadError> {
        if self.scanned == 0 {
            // RFC 9112 §2.2: ignore empty lines (CRLF) received before the
            // start line, e.g. left over from a previous request's body. A
            // lone CR may be the first half of one: wait for more.
            let blank = buf
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            let blank = if buf.get(blank.saturating_sub(1)) == Some(&b'\r') {
                blank - 1
            } else {
                blank
            };
            if blank > 0 {
                buf.advance(blank);
                self.work += blank as u64;
                self.skipped = self.skipped.saturating_add(blank);
                if self.skipped > self.limits.max_head_size {
                    return Err(HeadError::TooLarge {
                        limit: self.limits.max_head_size,
                    });
                }
            }
            if buf.len() <= 1 && buf.first().is_none_or(|&b| b == b'\r') {
                // Nothing but (half of) an empty line so far.
                return Ok(None);
            }
        }
        let room = self.limits.max_head_size - self.skipped;
        match self.find_end(buf) {
            Some(end) if end > room => Err(HeadError::TooLarge {
                limit: self.limits.max_head_size,
            }),
            Some(end) => {
                self.scanned = 0;
                self.skipped = 0;
                Ok(Some(buf.split_to(end).freeze()))
            }
            None if buf.len() > room => Err(HeadError::TooLarge {
                limit: self.limits.max_head_size,
            }),
            None => Ok(None),
        }
    }

    /// Parses a request head from the front of `buf`.
    pub fn parse_request(&mut self, buf: &mut BytesMut) -> Result<Option<RequestHead>, HeadError> {
        let Some(raw) = self.take_head(buf)? else {
            return Ok(None);
        };
        let mut storage: SmallVec<[httparse::Header<'_>; 64]> =
            smallvec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut req = httparse::Request::new(&mut storage);
        match req.parse(&raw) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(HeadError::Malformed("incomplete head")),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HeadError::TooManyHeaders {
                    limit: self.limits.max_headers,
                })
            }
            Err(e) => return Err(malformed(e)),
        }
        let (Some(m), Some(t)) = (req.method, req.path) else {
            return Err(HeadError::Malformed("incomplete request line"));
        };
        let method = span_of(&raw, m.as_bytes());
        let target = span_of(&raw, t.as_bytes());
        let minor_version = req.version.unwrap_or(1);
        let headers: HeaderSpans = req
            .headers
            .iter()
            .map(|h| (span_of(&raw, h.name.as_bytes()), span_of(&raw, h.value)))
            .collect();
        drop(storage);
        Ok(Some(RequestHead {
            raw,
            method,
            target,
            minor_version,
            headers,
        }))
    }

    /// Parses a response head from the front of `buf`.
    pub fn parse_response(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<ResponseHead>, HeadError> {
        let Some(raw) = self.take_head(buf)? else {
            return Ok(None);
        };
        let mut storage: SmallVec<[httparse::Header<'_>; 64]> =
            smallvec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut resp = httparse::Response::new(&mut storage);
        match resp.parse(&raw) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(HeadError::Malformed("incomplete head")),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HeadError::TooManyHeaders {
                    limit: self.limits.max_headers,
                })
            }
            Err(e) => return Err(malformed(e)),
        }
        let status = resp.code.unwrap_or(0);
        let reason = match resp.reason {
            Some(r) if !r.is_empty() => span_of(&raw, r.as_bytes()),
            _ => (0, 0),
        };
        let minor_version = resp.version.unwrap_or(1);
        let headers: HeaderSpans = resp
            .headers
            .iter()
            .map(|h| (span_of(&raw, h.name.as_bytes()), span_of(&raw, h.value)))
            .collect();
        drop(storage);
        Ok(Some(ResponseHead {
            raw,
            status,
            reason,
            minor_version,
            headers,
        }))
    }
}
