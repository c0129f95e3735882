//! Checking a request for an event stream ([`accept`]): policy
//! ([`Config`]), `Last-Event-ID`, typed refusals ([`Rejection`]) and
//! the `200` response head.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::http::RequestHead;
use crate::upgrade::{OriginPolicy, Policy, Rejection};

/// Server-side SSE policy and timings.
///
/// Read the fields; build with [`Config::new`] (or `default()`) and the
/// setters.
///
/// | field (setter) | default |
/// |---|---|
/// | `last_event_id_param` | `Some("last_event_id")` |
/// | `max_last_event_id_len` | 256 bytes |
/// | `heartbeat` | 15 s |
/// | `retry` | none |
/// | `write_timeout` | 10 s |
/// | `policy` (`origin`, `auth`, `policy`) | any origin, no auth hook |
/// | (`max_streams`) | unlimited |
///
/// ```
/// use std::time::Duration;
/// use rtwire::sse::Config;
///
/// let config = Config::new()
///     .heartbeat(Some(Duration::from_secs(20)))
///     .retry(Some(2000))
///     .max_streams(10_000);
/// assert_eq!(config.retry, Some(2000));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
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
    /// Origin policy (403 otherwise) and authorization hook, run after the
    /// method check.
    pub policy: Policy,
    streams: Option<Arc<Semaphore>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            last_event_id_param: Some("last_event_id".to_owned()),
            max_last_event_id_len: 256,
            heartbeat: Some(Duration::from_secs(15)),
            retry: None,
            write_timeout: Duration::from_secs(10),
            policy: Policy::new(),
            streams: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("last_event_id_param", &self.last_event_id_param)
            .field("max_last_event_id_len", &self.max_last_event_id_len)
            .field("heartbeat", &self.heartbeat)
            .field("retry", &self.retry)
            .field("write_timeout", &self.write_timeout)
            .field("policy", &self.policy)
            .field("streams", &self.streams)
            .finish()
    }
}

impl Config {
    /// The defaults (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the `Last-Event-ID` query parameter fallback (`None`: header only).
    pub fn last_event_id_param(mut self, param: Option<&str>) -> Self {
        self.last_event_id_param = param.map(str::to_owned);
        self
    }

    /// Sets the longest accepted last event id (longer is a 400).
    pub fn max_last_event_id_len(mut self, bytes: usize) -> Self {
        self.max_last_event_id_len = bytes;
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
        self.policy = self.policy.origin(policy);
        self
    }

    /// Sets the authorization hook.
    pub fn auth<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RequestHead) -> Result<(), Rejection> + Send + Sync + 'static,
    {
        self.policy = self.policy.auth(hook);
        self
    }

    /// Sets origin policy and hook at once (e.g. one [`Policy`] shared with
    /// a WebSocket endpoint).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
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
    pub(crate) head: bool,
    pub(crate) http10: bool,
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

impl SseRequest {
    /// The client's last event id (header, else query parameter), if any.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// Whether this is a `HEAD` request: the response is the head alone
    /// ([`SseStream::start`](super::SseStream::start) writes no body).
    pub fn is_head(&self) -> bool {
        self.head
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

/// Checks a request for an event stream: method `GET` or `HEAD` (405;
/// see [`SseRequest::is_head`]), origin (403),
/// the auth hook (its status), `Last-Event-ID` from the header or the query
/// parameter (400 when it is not UTF-8, has NUL or is too long), and the
/// stream limit (503).
///
/// ```
/// use bytes::BytesMut;
/// use rtwire::http::{HeadParser, Limits};
/// use rtwire::sse::{accept, Config};
///
/// let mut buf = BytesMut::from(&b"GET /sse?last_event_id=41 HTTP/1.1\r\nHost: x\r\n\r\n"[..]);
/// let head = HeadParser::new(Limits::default()).parse_request(&mut buf).unwrap().unwrap();
/// let req = accept(&head, &Config::new()).unwrap();
/// assert_eq!(req.last_event_id(), Some("41"));
/// ```
pub fn accept(head: &RequestHead, config: &Config) -> Result<SseRequest, Rejection> {
    let is_head = match head.method() {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(Rejection::method_not_allowed_but("GET, HEAD")),
    };
    config.policy.check(head)?;
    let last_event_id = match head.header("last-event-id") {
        Some(raw) => Some(valid_id(raw, config)?),
        None => match &config.last_event_id_param {
            Some(p) => match head.query_param(p) {
                Some(v) => Some(valid_id(v.as_bytes(), config)?),
                None if head.query().is_some_and(|q| has_param(q, p)) => {
                    return Err(Rejection::bad_request("invalid last event id"))
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
                .map_err(|_| Rejection::unavailable(1))?,
        ),
        None => None,
    };
    Ok(SseRequest {
        last_event_id,
        head: is_head,
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

fn valid_id(raw: &[u8], config: &Config) -> Result<String, Rejection> {
    let bad = || Rejection::bad_request("invalid last event id");
    if raw.len() > config.max_last_event_id_len || raw.contains(&0) {
        return Err(bad());
    }
    let s = std::str::from_utf8(raw).map_err(|_| bad())?;
    Ok(s.trim_matches([' ', '\t']).to_owned())
}
