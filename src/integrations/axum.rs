//! axum 0.8 integration (feature `axum`): the [`WebSocketUpgrade`]
//! extractor, which upgrades with rtwire's whole handshake policy (origin,
//! auth hook, topics, subprotocols, permessage-deflate), and [`Sse`], an
//! SSE response encoded by rtwire's [`Encoder`](crate::sse::Encoder).
//!
//! ```no_run
//! use axum::routing::get;
//! use axum::Router;
//! use rtwire::axum::WebSocketUpgrade;
//!
//! async fn ws(upgrade: WebSocketUpgrade) -> axum::response::Response {
//!     upgrade.on_upgrade(|mut conn| async move {
//!         while let Ok(Some(msg)) = conn.read_message().await {
//!             if conn.feed_message(msg).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = Router::new().route("/ws", get(ws));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::http::request::Parts;
use ::http::StatusCode;
use ::hyper::upgrade::OnUpgrade;
use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_core::Stream;
use hyper_util::rt::TokioIo;

use crate::http::RequestHead;
use crate::hyper::{HyperConn, SseBody};
use crate::sse::Event;
use crate::ws::handshake::{self, Accepted};
use crate::ws::{Config, Conn, Role};
use crate::HandshakeError;

/// Extracts a WebSocket upgrade request; [`on_upgrade`](Self::on_upgrade)
/// runs the handshake checks and answers.
///
/// The [`Config`] (limits, timeouts, and in `config.server` the origin
/// policy, auth hook, topics and subprotocols) is, in order: the one
/// given to [`config`](Self::config) in the handler (e.g. from the
/// router's state), an `Arc<Config>` request extension (e.g. a
/// `.layer(axum::Extension(Arc::new(config)))`), or `Config::default()`.
///
/// Extraction fails when hyper offers no upgrade: the request did not
/// ask for one (answered as the handshake would: `426` with `Upgrade:
/// websocket`, `405`, ...), or the connection cannot be upgraded (not
/// HTTP/1 with upgrades on: `426`). Every other check runs in
/// `on_upgrade`, whose response is the `101` or the rejection
/// (`400`, `401`, `403`, `405`, `426`, ... with the same headers as
/// [`HandshakeError::write_response`](crate::HandshakeError::write_response)).
pub struct WebSocketUpgrade {
    head: Result<RequestHead, HandshakeError>,
    on_upgrade: OnUpgrade,
    config: Arc<Config>,
}

impl fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        let config = parts
            .extensions
            .get::<Arc<Config>>()
            .cloned()
            .unwrap_or_default();
        let head = crate::http_types::parts_head(parts);
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            // hyper offers an upgrade only to requests that ask for one:
            // a plain GET gets the handshake's own answer (426 with
            // `Upgrade: websocket`, 405, ...).
            if let Err(e) = head.and_then(|h| handshake::accept(h, &config.server)) {
                return Err(crate::http_types::rejection(&e).map(Body::from));
            }
            return Err((
                StatusCode::UPGRADE_REQUIRED,
                "this connection cannot be upgraded",
            )
                .into_response());
        };
        Ok(WebSocketUpgrade {
            head,
            on_upgrade,
            config,
        })
    }
}

impl WebSocketUpgrade {
    /// Uses `config` (limits, timeouts, and the policy in `config.server`).
    pub fn config(mut self, config: impl Into<Arc<Config>>) -> Self {
        self.config = config.into();
        self
    }

    /// The request head, as the policy hooks see it (an error when it is
    /// over rtwire's head limits; `on_upgrade` answers that with a 431).
    pub fn head(&self) -> Result<&RequestHead, &HandshakeError> {
        self.head.as_ref()
    }

    /// Runs the handshake checks with the config's policy. Accepted: the
    /// `101` is returned, and once hyper has sent it, `callback` runs in a
    /// task of its own with the connection. Refused: the rejection is
    /// returned and `callback` never runs.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(HyperConn) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_upgrade_accepted(|conn, _| callback(conn))
    }

    /// [`on_upgrade`](Self::on_upgrade), with the accepted request (path,
    /// query, headers, selected subprotocol, topics) for the callback.
    pub fn on_upgrade_accepted<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(HyperConn, Accepted) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let config = self.config;
        #[allow(unused_mut)]
        let mut accepted = match self.head.and_then(|h| handshake::accept(h, &config.server)) {
            Ok(a) => a,
            Err(e) => return crate::http_types::rejection(&e).map(Body::from),
        };
        #[cfg(feature = "deflate")]
        if let Some(d) = &config.deflate {
            accepted.negotiate_deflate(d);
        }
        let resp = crate::http_types::response(&accepted).map(|()| Body::empty());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                // The client left before the 101 went out.
                return;
            };
            let conn = Conn::from_upgraded(
                TokioIo::new(upgraded),
                Role::Server,
                &config,
                BytesMut::new(),
            );
            #[cfg(feature = "deflate")]
            let conn = match accepted.deflate {
                Some(p) => conn.with_deflate(p),
                None => conn,
            };
            callback(conn, accepted).await;
        });
        resp
    }
}

/// An SSE response: the events of `events`, encoded by rtwire's
/// [`Encoder`](crate::sse::Encoder) (data split on CR, LF and CRLF, one
/// `data:` line each and no stray CR: `"a\r\nb"` is `data: a` and
/// `data: b`), with an optional heartbeat comment while idle.
///
/// ```no_run
/// use std::time::Duration;
/// use axum::response::IntoResponse;
/// use rtwire::axum::Sse;
/// use rtwire::sse::Event;
///
/// async fn counter() -> impl IntoResponse {
///     let (tx, rx) = tokio::sync::mpsc::channel(8);
///     tokio::spawn(async move {
///         for i in 0.. {
///             let ev = Event::new(i.to_string()).with_id(i.to_string()).unwrap();
///             if tx.send(ev).await.is_err() {
///                 break; // the client left
///             }
///             tokio::time::sleep(Duration::from_secs(1)).await;
///         }
///     });
///     Sse::from_receiver(rx).heartbeat(Duration::from_secs(15))
/// }
/// ```
pub struct Sse<St> {
    body: SseBody<St>,
}

impl<St> fmt::Debug for Sse<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sse").field("body", &self.body).finish()
    }
}

impl<St> Sse<St> {
    /// The events of `events` (a `Stream` of [`Event`]s; the response
    /// ends when it does).
    pub fn new(events: St) -> Self {
        Sse {
            body: SseBody::new(events),
        }
    }

    /// Sends a `: keepalive` comment after `every` without an event.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.body = self.body.heartbeat(every);
        self
    }
}

impl<T> Sse<crate::hyper::ReceiverStream<T>> {
    /// The events received on `rx` (ends when every sender is dropped).
    pub fn from_receiver(rx: tokio::sync::mpsc::Receiver<T>) -> Self {
        Sse {
            body: SseBody::from_receiver(rx),
        }
    }
}

impl<St, E> IntoResponse for Sse<St>
where
    St: Stream<Item = E> + Unpin + Send + 'static,
    E: std::borrow::Borrow<Event<'static>>,
{
    fn into_response(self) -> Response {
        crate::hyper::sse_response(Body::new(self.body))
    }
}
