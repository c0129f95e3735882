//! An SSE client: [`SseClient`] reads one response, [`EventSource`]
//! reconnects after the server's `retry` delay with `Last-Event-ID`, as a
//! browser does.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

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

type ConnectFuture<S> = Pin<Box<dyn Future<Output = io::Result<S>> + Send>>;
type Connector<S> = Box<dyn FnMut() -> ConnectFuture<S> + Send>;
type OpenFuture<S> = Pin<Box<dyn Future<Output = Result<SseClient<S>, ClientError>> + Send>>;

/// A reconnecting client, like a browser's `EventSource`: when a response
/// ends or the connection fails, it waits the server's `retry` delay (or
/// [`ClientConfig::default_retry`]) and reconnects with `Last-Event-ID`.
/// It stops on a fatal error ([`ClientError::is_fatal`]): a status other
/// than 200 (including 204), a wrong content type, a malformed body.
///
/// ```no_run
/// use rtwire::sse::{ClientConfig, EventSource};
/// # async fn demo() -> Result<(), rtwire::sse::ClientError> {
/// let addr = "127.0.0.1:8080".parse().unwrap();
/// let mut source = EventSource::tcp(addr, "/clock", ClientConfig::default());
/// loop {
///     let ev = source.next().await?;
///     println!("{}: {}", ev.last_event_id(), ev.data());
/// }
/// # }
/// ```
pub struct EventSource<S = TcpStream> {
    connect: Connector<S>,
    host: String,
    path: String,
    config: ClientConfig,
    conn: Option<SseClient<S>>,
    last_event_id: String,
    retry: Option<u64>,
    connects: u64,
    /// When the next connection may be opened: set when one is lost or
    /// fails, so a cancelled [`EventSource::next`] does not restart the
    /// delay.
    reconnect_at: Option<Instant>,
    /// A connection attempt (connect, request, response head) in progress;
    /// kept across a cancelled [`EventSource::next`].
    opening: Option<OpenFuture<S>>,
    failed: bool,
}

impl<S> fmt::Debug for EventSource<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSource")
            .field("host", &self.host)
            .field("path", &self.path)
            .field("last_event_id", &self.last_event_id)
            .field("retry", &self.retry)
            .field("connects", &self.connects)
            .finish_non_exhaustive()
    }
}

impl EventSource<TcpStream> {
    /// An event source over TCP to `addr`.
    pub fn tcp(addr: SocketAddr, path: &str, config: ClientConfig) -> Self {
        EventSource::new(
            move || Box::pin(TcpStream::connect(addr)) as ConnectFuture<TcpStream>,
            &addr.to_string(),
            path,
            config,
        )
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> EventSource<S> {
    /// An event source that opens connections with `connect`.
    pub fn new<F, Fut>(mut connect: F, host: &str, path: &str, config: ClientConfig) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = io::Result<S>> + Send + 'static,
    {
        EventSource {
            connect: Box::new(move || Box::pin(connect()) as ConnectFuture<S>),
            host: host.to_owned(),
            path: path.to_owned(),
            config,
            conn: None,
            last_event_id: String::new(),
            retry: None,
            connects: 0,
            reconnect_at: None,
            opening: None,
            failed: false,
        }
    }

    /// Starts from `id` as if it had been received (sent as `Last-Event-ID`
    /// on the first connection).
    pub fn with_last_event_id(mut self, id: &str) -> Self {
        self.last_event_id = id.to_owned();
        self
    }

    /// The next event, reconnecting as needed. Errors are fatal: the source
    /// will not reconnect after one, and later calls return
    /// [`ClientError::Closed`].
    ///
    /// Cancel-safe: no event is lost, the reconnection deadline is set once,
    /// when the connection is lost (calling again after a cancelled call
    /// waits only for what is left of the delay), and a connection attempt
    /// in progress is kept and resumed by the next call.
    pub async fn next(&mut self) -> Result<MessageEvent, ClientError> {
        loop {
            if self.failed {
                return Err(ClientError::Closed);
            }
            if self.conn.is_none() {
                if self.opening.is_none() {
                    if let Some(at) = self.reconnect_at {
                        tokio::time::sleep_until(at).await;
                    }
                    self.connects += 1;
                    self.opening = Some(self.open());
                }
                let Some(opening) = self.opening.as_mut() else {
                    continue;
                };
                let opened = opening.await;
                self.opening = None;
                self.reconnect_at = None;
                match opened {
                    Ok(c) => self.conn = Some(c),
                    Err(e) if e.is_fatal() => {
                        self.failed = true;
                        return Err(e);
                    }
                    Err(_) => {
                        self.lost();
                        continue;
                    }
                }
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let r = conn.next_event().await;
            self.last_event_id = conn.last_event_id().to_owned();
            self.retry = conn.retry().or(self.retry);
            match r {
                Ok(Some(ev)) => return Ok(ev),
                Ok(None) => self.lost(),
                Err(e) if e.is_fatal() => {
                    self.conn = None;
                    self.failed = true;
                    return Err(e);
                }
                Err(_) => self.lost(),
            }
        }
    }

    /// Drops the current connection (the next call to [`EventSource::next`]
    /// reconnects after the delay), as a network failure would.
    /// A connection attempt in progress is dropped too.
    pub fn disconnect(&mut self) {
        if self.conn.is_some() || self.opening.take().is_some() {
            self.lost();
        }
    }

    /// The connection is gone: reconnect after the delay from now.
    fn lost(&mut self) {
        self.conn = None;
        self.reconnect_at = Some(Instant::now() + self.delay());
    }

    /// Connections opened so far (the first one included).
    pub fn connects(&self) -> u64 {
        self.connects
    }

    /// The last event id (sent as `Last-Event-ID` on reconnect).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection delay in force: the server's `retry`, clamped to
    /// [`ClientConfig::max_retry`], else [`ClientConfig::default_retry`].
    pub fn delay(&self) -> Duration {
        self.retry
            .map_or(self.config.default_retry, Duration::from_millis)
            .min(self.config.max_retry)
    }

    /// A connection attempt that owns what it needs, so it can be kept
    /// across cancelled calls.
    fn open(&mut self) -> OpenFuture<S> {
        let connect = (self.connect)();
        let host = self.host.clone();
        let path = self.path.clone();
        let id = self.last_event_id.clone();
        let config = self.config.clone();
        Box::pin(async move {
            let io = connect.await?;
            SseClient::open(io, &host, &path, Some(&id), config).await
        })
    }
}
