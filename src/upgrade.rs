//! The policy both upgrades share: which origins may connect and an
//! authorization hook, checked on the request head before a WebSocket `101`
//! or an SSE `200` is written. A refusal is a [`Rejection`]: an HTTP status,
//! a short text body and, for 503, a `Retry-After`.
//!
//! ```
//! use bytes::BytesMut;
//! use rtwire::http::{HeadParser, Limits};
//! use rtwire::upgrade::{OriginPolicy, Policy, Rejection};
//!
//! let policy = Policy::new()
//!     .origin(OriginPolicy::AllowList(vec!["https://example.com".into()]))
//!     .auth(|head| match head.query_param("token").as_deref() {
//!         Some("s3cret") => Ok(()),
//!         _ => Err(Rejection::unauthorized("bad token")),
//!     });
//! let mut buf = BytesMut::from(
//!     &b"GET /chat?token=nope HTTP/1.1\r\nHost: x\r\nOrigin: https://example.com\r\n\r\n"[..],
//! );
//! let head = HeadParser::new(Limits::default()).parse_request(&mut buf).unwrap().unwrap();
//! assert_eq!(policy.check(&head).unwrap_err().status(), 401);
//! ```

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::http::response::write_text_response;
use crate::http::{trim, RequestHead};

/// A custom origin check for [`OriginPolicy::Custom`]: gets the `Origin`
/// value (`None` when absent) and returns whether it may connect.
pub type OriginCheck = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// Which `Origin` values may connect. A refused origin gets 403.
///
/// A request without `Origin` comes from a non-browser client (browsers
/// always send it on WebSocket requests); [`OriginPolicy::AllowList`]
/// accepts it, as gorilla/websocket's default check does. Use
/// [`OriginPolicy::Custom`] to refuse it.
#[derive(Clone, Default)]
pub enum OriginPolicy {
    /// Any origin, or none.
    #[default]
    AllowAll,
    /// Only these origins (ASCII case-insensitive, e.g.
    /// `"https://example.com"`), or no `Origin` header at all.
    AllowList(Vec<String>),
    /// A predicate over the `Origin` value (`None` when absent).
    Custom(OriginCheck),
}

impl OriginPolicy {
    /// Whether `origin` passes this policy.
    ///
    /// ```
    /// use rtwire::upgrade::OriginPolicy;
    /// let p = OriginPolicy::AllowList(vec!["https://a.example".into()]);
    /// assert!(p.allows(Some("HTTPS://A.EXAMPLE")));
    /// assert!(p.allows(None));
    /// assert!(!p.allows(Some("https://evil.example")));
    /// ```
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match self {
            OriginPolicy::AllowAll => true,
            OriginPolicy::AllowList(list) => {
                origin.is_none_or(|o| list.iter().any(|a| a.eq_ignore_ascii_case(o)))
            }
            OriginPolicy::Custom(f) => f(origin),
        }
    }

    /// Whether the `Origin` header of `head` passes this policy. A missing
    /// header is `None` for [`allows`](Self::allows); a value that is not
    /// UTF-8 passes no policy, not even [`AllowAll`](Self::AllowAll).
    pub fn allows_request(&self, head: &RequestHead) -> bool {
        match head.header("origin").map(|o| std::str::from_utf8(trim(o))) {
            None => self.allows(None),
            Some(Ok(o)) => self.allows(Some(o)),
            Some(Err(_)) => false,
        }
    }
}

impl fmt::Debug for OriginPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginPolicy::AllowAll => f.write_str("AllowAll"),
            OriginPolicy::AllowList(l) => f.debug_tuple("AllowList").field(l).finish(),
            OriginPolicy::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// A refusal before the upgrade: an HTTP status and a short text body.
///
/// ```
/// use bytes::BytesMut;
/// use rtwire::upgrade::Rejection;
///
/// let mut buf = BytesMut::new();
/// Rejection::unavailable(5).write_response(&mut buf);
/// let text = std::str::from_utf8(&buf).unwrap();
/// assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
/// assert!(text.contains("\r\nRetry-After: 5\r\n"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    status: u16,
    reason: String,
    retry_after: Option<u32>,
    allow: &'static str,
}

impl Rejection {
    /// A refusal with `status` and `reason` as the body. It must be 4xx or
    /// 5xx: anything else is answered as 500 (a refusal must read as one).
    pub fn with_status(status: u16, reason: impl Into<String>) -> Self {
        Rejection {
            status: if (400..=599).contains(&status) {
                status
            } else {
                500
            },
            reason: reason.into(),
            retry_after: None,
            allow: "GET",
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

    /// 405 Method Not Allowed with `Allow: allow` (e.g. `"GET, HEAD"`).
    ///
    /// ```
    /// let mut buf = bytes::BytesMut::new();
    /// rtwire::upgrade::Rejection::method_not_allowed_but("GET, HEAD").write_response(&mut buf);
    /// assert!(std::str::from_utf8(&buf).unwrap().contains("\r\nAllow: GET, HEAD\r\n"));
    /// ```
    pub fn method_not_allowed_but(allow: &'static str) -> Self {
        Rejection {
            allow,
            ..Self::with_status(405, format!("method must be {allow}"))
        }
    }

    /// 503 Service Unavailable with `Retry-After: secs`.
    pub fn unavailable(secs: u32) -> Self {
        Rejection {
            retry_after: Some(secs),
            ..Self::with_status(503, "too many streams")
        }
    }

    /// The HTTP status (always 400-599).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body text.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The `Retry-After` seconds, if any.
    pub fn retry_after(&self) -> Option<u32> {
        self.retry_after
    }

    /// Appends the complete response (with `Connection: close`) to `buf`.
    pub fn write_response(&self, buf: &mut BytesMut) {
        let extra = match (self.status, self.retry_after) {
            (405, _) => format!("Allow: {}\r\n", self.allow),
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

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

impl std::error::Error for Rejection {}

/// An authorization hook: sees the whole request head (headers, query) and
/// may refuse the upgrade.
pub type AuthHook = Arc<dyn Fn(&RequestHead) -> Result<(), Rejection> + Send + Sync>;

/// Origin policy and authorization hook, as one value that the WebSocket
/// ([`ws::handshake::ServerConfig`](crate::ws::handshake::ServerConfig)) and
/// SSE ([`sse::Config`](crate::sse::Config)) servers both run.
/// `Policy::new()` allows any origin and has no hook.
#[derive(Clone, Default)]
pub struct Policy {
    origin: OriginPolicy,
    auth: Option<AuthHook>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("origin", &self.origin)
            .field("auth", &self.auth.as_ref().map(|_| ".."))
            .finish()
    }
}

impl Policy {
    /// Any origin, no hook.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the origin policy.
    pub fn origin(mut self, policy: OriginPolicy) -> Self {
        self.origin = policy;
        self
    }

    /// Sets the authorization hook (run after the origin check).
    pub fn auth<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RequestHead) -> Result<(), Rejection> + Send + Sync + 'static,
    {
        self.auth = Some(Arc::new(hook));
        self
    }

    /// The origin policy.
    pub fn origin_policy(&self) -> &OriginPolicy {
        &self.origin
    }

    /// Whether an authorization hook is set.
    pub fn has_auth(&self) -> bool {
        self.auth.is_some()
    }

    /// Runs the origin check (403 on refusal) and then the hook.
    pub fn check(&self, head: &RequestHead) -> Result<(), Rejection> {
        if !self.origin.allows_request(head) {
            return Err(Rejection::forbidden("origin not allowed"));
        }
        self.authorize(head)
    }

    /// Runs only the hook (`Ok` without one).
    pub fn authorize(&self, head: &RequestHead) -> Result<(), Rejection> {
        match &self.auth {
            Some(hook) => hook(head),
            None => Ok(()),
        }
    }
}
