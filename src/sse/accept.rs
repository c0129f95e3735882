//! Checking a request for an event stream ([`accept`]): policy
//! ([`SseConfig`]), `Last-Event-ID`, typed refusals ([`SseRejection`]) and
//! the `200` response head.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::write_text_response;
use crate::http::RequestHead;
use crate::ws::handshake::OriginPolicy;

/// A refusal before the stream starts: an HTTP status and a short text body.
///
/// ```
/// use bytes::BytesMut;
/// use rtwire::sse::SseRejection;
///
/// let mut buf = BytesMut::new();
/// SseRejection::unavailable(5).write_response(&mut buf);
/// let text = std::str::from_utf8(&buf).unwrap();
/// assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
/// assert!(text.contains("\r\nRetry-After: 5\r\n"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseRejection {
    status: u16,
    reason: String,
    retry_after: Option<u32>,
}

impl SseRejection {
    /// Any status with `reason` as the body.
    pub fn with_status(status: u16, reason: impl Into<String>) -> Self {
        SseRejection {
            status,
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::with_status(400, reason)
    }

    /// 401 Unauthorized.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::with_status(401, reason)
    }

    /// 403 Forbidden.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::with_status(403, reason)
    }

    /// 405 Method Not Allowed (with `Allow: GET`).
    pub fn method_not_allowed() -> Self {
        Self::with_status(405, "method must be GET")
    }

    /// 503 Service Unavailable with `Retry-After: secs`.
    pub fn unavailable(secs: u32) -> Self {
        SseRejection {
            retry_after: Some(secs),
            ..Self::with_status(503, "too many streams")
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body text.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Appends the complete response (with `Connection: close`) to `buf`.
    pub fn write_response(&self, buf: &mut BytesMut) {
        let extra = match (self.status, self.retry_after) {
            (405, _) => "Allow: GET\r\n".to_owned(),
            (_, Some(s)) => format!("Retry-After: {s}\r\n"),
            _ => String::new(),
        };
        write_text_response(buf, self.status, &extra, &self.reason);
    }

    /// Writes the response to `io` and shuts its write side down.
    pub async fn send<S: AsyncWrite + Unpin>(&self, io: &mut S) -> io::Result<()> {
        let mut buf = BytesMut::new();
        self.write_response(&mut buf);
        io.write_all(&buf).await?;
        io.shutdown().await
    }
}

impl fmt::Display for SseRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

impl std::error::Error for SseRejection {}

/// An authorization hook: sees the request head and may refuse the stream.
pub type SseAuthHook = Arc<dyn Fn(&RequestHead) -> Result<(), SseRejection> + Send + Sync>;

/// Server-side SSE policy and timings.
///
/// | field | default |
/// |---|---|
/// | `last_event_id_param` | `Some("last_event_id")` |
/// | `max_last_event_id_len` | 256 bytes |
/// | `heartbeat` | 15 s |
/// | `retry` | none |
/// | `write_timeout` | 10 s |
/// | `origin` | any |
/// | `auth` | none |
/// | `max_streams` | unlimited |
///
/// ```
/// use std::time::Duration;
/// use rtwire::sse::SseConfig;
///
/// let config = SseConfig::new()
///     .heartbeat(Some(Duration::from_secs(20)))
///     .retry(Some(2000))
///     .max_streams(10_000);
/// assert_eq!(config.retry, Some(2000));
/// ```
#[derive(Clone)]
pub struct SseConfig {
    /// Query parameter read when there is no `Last-Event-ID` header (for
    /// clients that cannot set headers on a reconnect).
    pub last_event_id_param: Option<String>,
    /// Longest accepted last event id; longer is a 400.
    pub max_last_event_id_len: usize,
    /// Send a keepalive comment after this long without a write.
    pub heartbeat: Option<Duration>,
    /// A `retry:` (milliseconds) sent right after the head.
    pub retry: Option<u64>,
    /// A write that makes no progress for this long fails with
    /// `Error::Timeout(TimeoutKind::Write)`.
    pub write_timeout: Duration,
    /// Which `Origin` values are allowed (403 otherwise).
    pub origin: OriginPolicy,
    /// Authorization hook, run after the method and origin checks.
    pub auth: Option<SseAuthHook>,
    streams: Option<Arc<Semaphore>>,
}

impl Default for SseConfig {
    fn default() -> Self {
        SseConfig {
            last_event_id_param: Some("last_event_id".to_owned()),
            max_last_event_id_len: 256,
            heartbeat: Some(Duration::from_secs(15)),
            retry: None,
            write_timeout: Duration::from_secs(10),
            origin: OriginPolicy::AllowAll,
            auth: None,
            streams: None,
        }
    }
}

impl fmt::Debug for SseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseConfig")
            .field("last_event_id_param", &self.last_event_id_param)
            .field("max_last_event_id_len", &self.max_last_event_id_len)
            .field("heartbeat", &self.heartbeat)
            .field("retry", &self.retry)
            .field("write_timeout", &self.write_timeout)
            .field("origin", &self.origin)
            .field("auth", &self.auth.as_ref().map(|_| ".."))
            .field("streams", &self.streams)
            .finish()
    }
}

impl SseConfig {
    /// The defaults (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the `Last-Event-ID` query parameter fallback (`None`: header only).
    pub fn last_event_id_param(mut self, param: Option<&str>) -> Self {
        self.last_event_id_param = param.map(str::to_owned);
        self
    }

    /// Sets the heartbeat interval (`None`: no heartbeat).
    pub fn heartbeat(mut self, every: Option<Duration>) -> Self {
        self.heartbeat = every;
        self
    }

    /// Sets the `retry:` sent after the head.
    pub fn retry(mut self, millis: Option<u64>) -> Self {
        self.retry = millis;
        self
    }

    /// Sets the write timeout.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Sets the origin policy.
    pub fn origin(mut self, policy: OriginPolicy) -> Self {
        self.origin = policy;
        self
    }

    /// Sets the authorization hook.
    pub fn auth<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RequestHead) -> Result<(), SseRejection> + Send + Sync + 'static,
    {
        self.auth = Some(Arc::new(hook));
        self
    }

    /// Allows at most `n` streams at once through this config (and its
    /// clones); more get 503 with `Retry-After: 1`.
    pub fn max_streams(mut self, n: usize) -> Self {
        self.streams = Some(Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS))));
        self
    }
}

/// A request that passed [`accept`]: what the stream starts from.
#[derive(Debug)]
pub struct SseRequest {
    pub(crate) last_event_id: Option<String>,
    pub(crate) http10: bool,
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

impl SseRequest {
    /// The client's last event id (header, else query parameter), if any.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// Appends the `200` response head to `buf`: `Content-Type:
    /// text/event-stream`, `Cache-Control: no-cache`, `X-Accel-Buffering:
    /// no`, and `Transfer-Encoding: chunked` (HTTP/1.1) or `Connection:
    /// close` (HTTP/1.0, close-delimited body).
    pub fn write_head(&self, buf: &mut BytesMut) {
        buf.put_slice(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n",
        );
        if self.http10 {
            buf.put_slice(b"Connection: close\r\n\r\n");
        } else {
            buf.put_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        }
    }
}

/// Checks a request for an event stream: method `GET` (405), origin (403),
/// the auth hook (its status), `Last-Event-ID` from the header or the query
/// parameter (400 when it is not UTF-8, has NUL or is too long), and the
/// stream limit (503).
///
/// ```
/// use bytes::BytesMut;
/// use rtwire::http::{HeadParser, Limits};
/// use rtwire::sse::{accept, SseConfig};
///
/// let mut buf = BytesMut::from(&b"GET /sse?last_event_id=41 HTTP/1.1\r\nHost: x\r\n\r\n"[..]);
/// let head = HeadParser::new(Limits::default()).parse_request(&mut buf).unwrap().unwrap();
/// let req = accept(&head, &SseConfig::new()).unwrap();
/// assert_eq!(req.last_event_id(), Some("41"));
/// ```
pub fn accept(head: &RequestHead, config: &SseConfig) -> Result<SseRequest, SseRejection> {
    if head.method() != "GET" {
        return Err(SseRejection::method_not_allowed());
    }
    if !config.origin.allows_request(head) {
        return Err(SseRejection::forbidden("origin not allowed"));
    }
    if let Some(hook) = &config.auth {
        hook(head)?;
    }
    let last_event_id = match head.header("last-event-id") {
        Some(raw) => Some(valid_id(raw, config)?),
        None => match &config.last_event_id_param {
            Some(p) => match head.query_param(p) {
                Some(v) => Some(valid_id(v.as_bytes(), config)?),
                None if head.query().is_some_and(|q| has_param(q, p)) => {
                    return Err(SseRejection::bad_request("invalid last event id"))
                }
                None => None,
            },
            None => None,
        },
    }
    .filter(|id| !id.is_empty());
    let permit = match &config.streams {
        Some(sem) => Some(
            Arc::clone(sem)
                .try_acquire_owned()
                .map_err(|_| SseRejection::unavailable(1))?,
        ),
        None => None,
    };
    Ok(SseRequest {
        last_event_id,
        http10: head.minor_version() == 0,
        permit,
    })
}

/// Whether the query names `param` (its value failed to decode).
fn has_param(query: &str, param: &str) -> bool {
    query
        .split('&')
        .any(|kv| kv.split_once('=').map_or(kv, |(k, _)| k) == param)
}

fn valid_id(raw: &[u8], config: &SseConfig) -> Result<String, SseRejection> {
    let bad = || SseRejection::bad_request("invalid last event id");
    if raw.len() > config.max_last_event_id_len || raw.contains(&0) {
        return Err(bad());
    }
    let s = std::str::from_utf8(raw).map_err(|_| bad())?;
    Ok(s.trim_matches([' ', '\t']).to_owned())
}
