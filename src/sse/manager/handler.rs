//! [`Handler`]: one HTTP request served end to end by a [`Manager`].

use std::fmt;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Manager, SubscribeRequest};
use crate::error::Error;
use crate::http::RequestHead;
use crate::pubsub::{Bus, Store};
use crate::sse::{accept, Config, SseStream};
use crate::upgrade::Rejection;

/// Most bytes of queued events written in one go.
const BATCH: usize = 64 * 1024;

/// The `authorize_subscribe` hook: runs after the origin and auth policy,
/// before anything is subscribed; an `Err` is the response (401, 403, ...).
pub type AuthorizeSubscribe =
    Arc<dyn Fn(&RequestHead, &SubscribeRequest) -> Result<(), Rejection> + Send + Sync>;

/// How the [`Handler`] reads a request.
///
/// | field | default |
/// |---|---|
/// | `sse` | [`Config::new`] (its `heartbeat` and `retry` are replaced by the manager's `heartbeat_interval` and `default_retry`) |
/// | `channel_param` | `channel` |
/// | `tenant_param` | `tenant` |
/// | `subject_param` | `subject` |
/// | `sse.last_event_id_param` | `last_event_id` (the `Last-Event-ID` header wins) |
/// | `authorize_subscribe` | none |
#[derive(Clone)]
#[non_exhaustive]
pub struct HandlerConfig {
    /// Method, origin and auth policy, `Last-Event-ID` rules, write timeout.
    pub sse: Config,
    /// Query parameter naming the channel (required: 400 without).
    pub channel_param: String,
    /// Query parameter for the tenant routing key.
    pub tenant_param: String,
    /// Query parameter for the subject routing key.
    pub subject_param: String,
    /// The subscribe authorization hook.
    pub authorize_subscribe: Option<AuthorizeSubscribe>,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        HandlerConfig {
            sse: Config::new(),
            channel_param: "channel".into(),
            tenant_param: "tenant".into(),
            subject_param: "subject".into(),
            authorize_subscribe: None,
        }
    }
}

impl fmt::Debug for HandlerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerConfig")
            .field("sse", &self.sse)
            .field("channel_param", &self.channel_param)
            .field("tenant_param", &self.tenant_param)
            .field("subject_param", &self.subject_param)
            .field("authorize_subscribe", &self.authorize_subscribe.is_some())
            .finish()
    }
}

impl HandlerConfig {
    /// The defaults (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the SSE policy and timings.
    pub fn sse(mut self, config: Config) -> Self {
        self.sse = config;
        self
    }

    /// Sets the three query parameter names.
    pub fn params(mut self, channel: &str, tenant: &str, subject: &str) -> Self {
        self.channel_param = channel.into();
        self.tenant_param = tenant.into();
        self.subject_param = subject.into();
        self
    }

    /// Sets the subscribe authorization hook.
    pub fn authorize_subscribe<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RequestHead, &SubscribeRequest) -> Result<(), Rejection> + Send + Sync + 'static,
    {
        self.authorize_subscribe = Some(Arc::new(hook));
        self
    }
}

/// Serves one SSE request with a [`Manager`]: checks it, subscribes, and
/// writes the head, the `retry`, the replay, then live events and
/// heartbeats until the client leaves or the subscriber is closed.
///
/// In order: the method (`GET`; `HEAD` gets the headers without a body;
/// other methods 405), the origin and auth policy of `config.sse` (403 /
/// the hook's status), the `Last-Event-ID` (header, else the query
/// parameter; 400 when malformed), the channel parameter (400 when missing
/// or invalid), `authorize_subscribe`, then the manager's limits (503 with
/// `Retry-After: 1`). Every refusal is written before any stream byte.
/// A transient failure ([`ManagerError::is_transient`](super::ManagerError::is_transient):
/// the backend, or the manager closing) is not a refusal: the response is
/// an empty stream with the `retry`, so a browser reconnects (its
/// EventSource stops for good on any status but 200).
///
/// ```no_run
/// use rtwire::sse::{Handler, HandlerConfig, Manager, ManagerConfig};
/// use rtwire::upgrade::Rejection;
/// # async fn run() -> std::io::Result<()> {
/// let manager = Manager::in_memory(ManagerConfig::new());
/// let handler = Handler::new(
///     manager.clone(),
///     HandlerConfig::new().authorize_subscribe(|head, req| {
///         match head.query_param("token") {
///             Some(t) if t == "secret" => Ok(()),
///             Some(_) => Err(Rejection::forbidden("bad token")),
///             None => Err(Rejection::unauthorized("token required")),
///         }
///     }),
/// );
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// loop {
///     let (mut tcp, _) = listener.accept().await?;
///     let handler = handler.clone();
///     tokio::spawn(async move {
///         let config = rtwire::ws::Config::default();
///         let head = rtwire::ws::read_request_head(&mut tcp, &config).await?;
///         handler.serve(tcp, &head.head).await
///     });
/// }
/// # }
/// ```
pub struct Handler<St: Store, B: Bus> {
    manager: Manager<St, B>,
    config: Arc<HandlerConfig>,
    /// `config.sse` with the manager's heartbeat and retry.
    sse: Arc<Config>,
}

impl<St: Store, B: Bus> Clone for Handler<St, B> {
    fn clone(&self) -> Self {
        Handler {
            manager: self.manager.clone(),
            config: self.config.clone(),
            sse: self.sse.clone(),
        }
    }
}

impl<St: Store, B: Bus> fmt::Debug for Handler<St, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<St: Store, B: Bus> Handler<St, B> {
    /// A handler for `manager`.
    pub fn new(manager: Manager<St, B>, config: HandlerConfig) -> Self {
        let m = manager.config();
        let sse = config
            .sse
            .clone()
            .heartbeat(m.heartbeat_interval)
            .retry(m.default_retry);
        Handler {
            manager,
            config: Arc::new(config),
            sse: Arc::new(sse),
        }
    }

    /// The manager.
    pub fn manager(&self) -> &Manager<St, B> {
        &self.manager
    }

    /// The subscription `head` asks for (no `Last-Event-ID`, which
    /// [`accept`] reads).
    fn request(&self, head: &RequestHead) -> Result<SubscribeRequest, Rejection> {
        let c = &self.config;
        let Some(channel) = head.query_param(&c.channel_param) else {
            return Err(Rejection::bad_request(format!(
                "missing query parameter {:?}",
                c.channel_param
            )));
        };
        let mut req = SubscribeRequest::new(channel.into_owned());
        req.tenant = head.query_param(&c.tenant_param).map(|t| t.into_owned());
        req.subject = head.query_param(&c.subject_param).map(|s| s.into_owned());
        Ok(req)
    }

    /// Serves the request whose head was read from `io` (an SSE request has
    /// no body: nothing after the head is read). Returns `Ok` when the
    /// response ended normally (refused, finished, or the client left);
    /// `Err` for a write timeout or another I/O error.
    pub async fn serve<S>(&self, mut io: S, head: &RequestHead) -> Result<(), Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let checked = accept(head, &self.sse).and_then(|sse_req| {
            let mut req = self.request(head)?;
            req.last_event_id = sse_req.last_event_id().map(str::to_owned);
            crate::pubsub::ChannelName::new(&req.channel)
                .map_err(|e| super::ManagerError::from(e).rejection())?;
            if let Some(hook) = &self.config.authorize_subscribe {
                hook(head, &req)?;
            }
            Ok((sse_req, req))
        });
        let (sse_req, req) = match checked {
            Ok(v) => v,
            Err(rejection) => return refuse(&mut io, &rejection).await,
        };
        if sse_req.is_head() {
            let sse = SseStream::start(io, sse_req, &self.sse).await?;
            sse.finish().await?;
            return Ok(());
        }
        let (mut sub, replay) = match self.manager.subscribe(req).await {
            Ok(v) => v,
            Err(e) if e.is_transient() => {
                // A browser's EventSource gives up for good on any status
                // but 200: for a backend failure or a node shutting down,
                // an empty stream (with `retry`) makes it come back.
                let sse = SseStream::start(io, sse_req, &self.sse).await?;
                return match sse.finish().await {
                    Ok(_) | Err(Error::ConnectionClosed) => Ok(()),
                    Err(e) => Err(e),
                };
            }
            Err(e) => return refuse(&mut io, &e.rejection()).await,
        };
        let _guard = self.manager.stream_guard();
        let mut sse = SseStream::start(io, sse_req, &self.sse).await?;
        let r = async {
            // Each replayed event is let go once it is in the stream's buffer.
            for ev in replay {
                sse.feed_encoded(ev.encoded())?;
                if sse.buffered() >= BATCH {
                    sse.flush().await?;
                }
            }
            sse.flush().await?;
            loop {
                tokio::select! {
                    ev = sub.recv() => match ev {
                        Some(ev) => {
                            sse.feed_encoded(ev.encoded())?;
                            while sse.buffered() < BATCH {
                                match sub.try_recv() {
                                    Some(ev) => sse.feed_encoded(ev.encoded())?,
                                    None => break,
                                }
                            }
                            sse.flush().await?;
                        }
                        None => return Ok(()),
                    },
                    gone = sse.idle() => match gone {
                        Err(e) => return Err(e),
                        Ok(never) => match never {},
                    },
                }
            }
        }
        .await;
        match r {
            Ok(()) => {
                // The subscriber was closed (disconnect, slow consumer,
                // shutdown): end the response; the browser reconnects.
                drop(sub);
                match sse.finish().await {
                    Ok(_) | Err(Error::ConnectionClosed) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(Error::ConnectionClosed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

async fn refuse<S: AsyncWrite + Unpin>(io: &mut S, rejection: &Rejection) -> Result<(), Error> {
    match rejection.send(io).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotConnected => Ok(()),
        Err(e) => Err(Error::Io(e)),
    }
}
