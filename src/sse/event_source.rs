//! [`EventSource`]: reconnects after the server's `retry` delay with
//! `Last-Event-ID`, as a browser does.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::client::{ClientConfig, SseClient};
use super::error::ClientError;
use super::event::MessageEvent;

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
