//! An SSE client: [`SseClient`] reads one response (the reconnecting
//! [`EventSource`](super::EventSource) is built on it).

use std::fmt;
use std::io;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::chunked::{dechunk, Chunk};
use super::decoder::{Decoder, Limits};
use super::error::ClientError;
use super::event::MessageEvent;
use crate::http::{self, has_token, HeadParser, ResponseHead};

/// Client settings.
///
/// Read the fields; build with [`ClientConfig::new`] (or `default()`) and
/// the setters:
///
/// | field | default |
/// |---|---|
/// | `limits` | [`Limits::default`] |
/// | `head_limits` | [`http::Limits::default`] |
/// | `default_retry` | 3 s (what browsers use) |
/// | `max_retry` | 60 s (a larger server `retry` is clamped) |
/// | `read_timeout` | none |
///
/// ```
/// use std::time::Duration;
/// use rtwire::sse::{ClientConfig, Limits};
///
/// let config = ClientConfig::new()
///     .limits(Limits::new().max_event(64 * 1024))
///     .default_retry(Duration::from_millis(500))
///     .read_timeout(Some(Duration::from_secs(30)));
/// assert_eq!(config.max_retry, Duration::from_secs(60));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Bounds on lines and events.
    pub limits: Limits,
    /// Bounds on the response head.
    pub head_limits: http::Limits,
    /// Reconnection delay until the server sends `retry`.
    pub default_retry: Duration,
    /// Upper bound on the reconnection delay.
    pub max_retry: Duration,
    /// Fail with [`ClientError::Timeout`] when nothing arrives for this long.
    pub read_timeout: Option<Duration>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            limits: Limits::default(),
            head_limits: http::Limits::default(),
            default_retry: Duration::from_secs(3),
            max_retry: Duration::from_secs(60),
            read_timeout: None,
        }
    }
}

impl ClientConfig {
    /// The defaults (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the decoder limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the response head limits.
    pub fn head_limits(mut self, limits: http::Limits) -> Self {
        self.head_limits = limits;
        self
    }

    /// Sets the reconnection delay used until the server sends `retry`.
    pub fn default_retry(mut self, delay: Duration) -> Self {
        self.default_retry = delay;
        self
    }

    /// Sets the upper bound on the reconnection delay.
    pub fn max_retry(mut self, delay: Duration) -> Self {
        self.max_retry = delay;
        self
    }

    /// Sets the read timeout (`None`: wait forever).
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.read_timeout = timeout;
        self
    }
}

/// How the response body is delimited.
#[derive(Debug)]
enum Body {
    Chunked(Chunk),
    Length(u64),
    Close,
}

const READ_SIZE: usize = 8 * 1024;

/// One event-stream response over `S`.
///
/// ```no_run
/// use rtwire::sse::{ClientConfig, SseClient};
/// # async fn demo() -> Result<(), rtwire::sse::ClientError> {
/// let io = tokio::net::TcpStream::connect("127.0.0.1:8080").await?;
/// let mut client = SseClient::open(io, "127.0.0.1", "/sse", None, ClientConfig::default()).await?;
/// while let Some(ev) = client.next_event().await? {
///     println!("{} {:?} id={}", ev.event_type(), ev.data(), ev.last_event_id());
/// }
/// # Ok(()) }
/// ```
pub struct SseClient<S> {
    io: S,
    read: BytesMut,
    body: BytesMut,
    framing: Body,
    decoder: Decoder,
    head: ResponseHead,
    read_timeout: Option<Duration>,
    eof: bool,
}

impl<S> fmt::Debug for SseClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseClient")
            .field("framing", &self.framing)
            .field("last_event_id", &self.decoder.last_event_id())
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> SseClient<S> {
    /// Sends `GET path` with `Accept: text/event-stream` (and
    /// `Last-Event-ID` when given and not empty), reads the response head
    /// and checks the status (200) and the content type.
    ///
    /// Nothing is written when `host` or `path` is empty or holds a control
    /// byte or a space, or `last_event_id` holds CR, LF or NUL:
    /// [`ClientError::InvalidRequest`].
    pub async fn open(
        io: S,
        host: &str,
        path: &str,
        last_event_id: Option<&str>,
        config: ClientConfig,
    ) -> Result<Self, ClientError> {
        check_request(host, path, last_event_id)?;
        let mut io = io;
        let mut req = BytesMut::with_capacity(128 + path.len() + host.len());
        req.put_slice(b"GET ");
        req.put_slice(path.as_bytes());
        req.put_slice(b" HTTP/1.1\r\nHost: ");
        req.put_slice(host.as_bytes());
        req.put_slice(b"\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n");
        let id = last_event_id.filter(|id| !id.is_empty());
        if let Some(id) = id {
            req.put_slice(b"Last-Event-ID: ");
            req.put_slice(id.as_bytes());
            req.put_slice(b"\r\n");
        }
        req.put_slice(b"\r\n");
        io.write_all(&req).await?;
        io.flush().await?;

        let mut parser = HeadParser::new(config.head_limits);
        let mut read = BytesMut::with_capacity(READ_SIZE);
        let head = loop {
            if let Some(head) = parser.parse_response(&mut read)? {
                break head;
            }
            if read_some(&mut io, &mut read, config.read_timeout).await? == 0 {
                return Err(ClientError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        };
        if head.status() != 200 {
            return Err(ClientError::Status(head.status()));
        }
        let ctype = head.header_str("content-type").unwrap_or("");
        let essence = ctype.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("text/event-stream") {
            return Err(ClientError::ContentType(ctype.to_owned()));
        }
        let framing = if head
            .headers_named("transfer-encoding")
            .any(|v| has_token(v, "chunked"))
        {
            Body::Chunked(Chunk::Size)
        } else if let Some(len) = head.header_str("content-length") {
            Body::Length(
                len.parse()
                    .map_err(|_| ClientError::Chunked("invalid Content-Length"))?,
            )
        } else {
            Body::Close
        };
        let decoder = match id {
            Some(id) => Decoder::with_last_event_id(config.limits, id),
            None => Decoder::new(config.limits),
        };
        Ok(SseClient {
            io,
            read,
            body: BytesMut::new(),
            framing,
            decoder,
            head,
            read_timeout: config.read_timeout,
            eof: false,
        })
    }

    /// The next event, or `None` when the response ended (a pending,
    /// unterminated event is discarded). Cancel-safe.
    pub async fn next_event(&mut self) -> Result<Option<MessageEvent>, ClientError> {
        loop {
            self.unframe()?;
            if let Some(ev) = self.decoder.decode(&mut self.body)? {
                return Ok(Some(ev));
            }
            if self.body_done() {
                self.decoder.reset_stream();
                self.body.clear();
                return Ok(None);
            }
            if self.eof {
                self.decoder.reset_stream();
                self.body.clear();
                return match self.framing {
                    Body::Close => Ok(None),
                    _ => Err(ClientError::Io(io::ErrorKind::UnexpectedEof.into())),
                };
            }
            if read_some(&mut self.io, &mut self.read, self.read_timeout).await? == 0 {
                self.eof = true;
            }
        }
    }

    /// The response head.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The last event id seen (what to send as `Last-Event-ID`).
    pub fn last_event_id(&self) -> &str {
        self.decoder.last_event_id()
    }

    /// The server's `retry`, in milliseconds, if it sent one.
    pub fn retry(&self) -> Option<u64> {
        self.decoder.retry()
    }

    /// The transport.
    pub fn into_inner(self) -> S {
        self.io
    }

    fn body_done(&self) -> bool {
        matches!(self.framing, Body::Chunked(Chunk::Done) | Body::Length(0))
    }

    /// Moves body bytes from the read buffer to the event-stream buffer.
    fn unframe(&mut self) -> Result<(), ClientError> {
        match &mut self.framing {
            Body::Close => {
                self.body.extend_from_slice(&self.read);
                self.read.clear();
            }
            Body::Length(left) => {
                let take = self
                    .read
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                self.body.extend_from_slice(&self.read[..take]);
                self.read.advance(take);
                *left -= take as u64;
            }
            Body::Chunked(state) => dechunk(state, &mut self.read, &mut self.body)?,
        }
        Ok(())
    }
}

/// Refuses request parts that would break out of the request line or a
/// header field.
fn check_request(host: &str, path: &str, last_event_id: Option<&str>) -> Result<(), ClientError> {
    // Host and request-target are tokens of the request: no CTL, no space.
    let token_ok = |s: &str| !s.is_empty() && !s.bytes().any(|b| b <= b' ' || b == 0x7f);
    if !token_ok(host) {
        return Err(ClientError::InvalidRequest("host"));
    }
    if !token_ok(path) {
        return Err(ClientError::InvalidRequest("path"));
    }
    // A field value: CR or LF would end it, NUL is never valid (and an SSE
    // id cannot hold one).
    if last_event_id.is_some_and(|id| id.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))) {
        return Err(ClientError::InvalidRequest("last event id"));
    }
    Ok(())
}

async fn read_some<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut BytesMut,
    timeout: Option<Duration>,
) -> Result<usize, ClientError> {
    buf.reserve(READ_SIZE);
    match timeout {
        None => Ok(io.read_buf(buf).await?),
        Some(t) => match tokio::time::timeout(t, io.read_buf(buf)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(ClientError::Timeout),
        },
    }
}
