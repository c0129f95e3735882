//! hyper 1 integration (feature `hyper`): [`upgrade`] a request to a
//! WebSocket [`Conn`] with the whole [`Config`] policy, and [`SseBody`],
//! an `http_body::Body` of SSE events with heartbeats.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use std::sync::Arc;
//!
//! use http_body_util::Full;
//! use hyper::body::{Bytes, Incoming};
//! use hyper::{Request, Response};
//! use rtwire::ws::Config;
//!
//! async fn handle(
//!     mut req: Request<Incoming>,
//!     config: Arc<Config>,
//! ) -> Result<Response<Full<Bytes>>, Infallible> {
//!     match rtwire::hyper::upgrade(&mut req, &config) {
//!         Ok((resp, upgrade)) => {
//!             tokio::spawn(async move {
//!                 let Ok(mut conn) = upgrade.await else { return };
//!                 while let Ok(Some(msg)) = conn.read_message().await {
//!                     if conn.feed_message(msg).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!             });
//!             Ok(resp)
//!         }
//!         Err(rejection) => Ok(rejection),
//!     }
//! }
//! # let _ = handle;
//! ```

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ::http::{header, HeaderValue, Request, Response, StatusCode};
use ::hyper::upgrade::{OnUpgrade, Upgraded};
use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::time::{Instant, Sleep};

use crate::error::Error;
use crate::sse::{Encoder, Event, KEEPALIVE};
use crate::ws::handshake::Accepted;
use crate::ws::{Config, Conn, Role};

/// The IO of an upgraded hyper connection, as tokio sees it.
pub type Io = TokioIo<Upgraded>;

/// The connection a hyper upgrade ends in.
pub type HyperConn = Conn<Io>;

/// The handshake's answer: the `101`, or a rejection with a text body.
pub type HandshakeResponse = Response<Full<Bytes>>;

/// What [`upgrade`] hands back with the `101`: the accepted request, and
/// (awaited) the connection once hyper has sent the `101` and given up the
/// stream. Await it in a task of its own, after returning the response.
pub struct PendingUpgrade {
    accepted: Accepted,
    on_upgrade: OnUpgrade,
    config: Config,
}

impl fmt::Debug for PendingUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingUpgrade")
            .field("accepted", &self.accepted)
            .finish_non_exhaustive()
    }
}

impl PendingUpgrade {
    /// The request that passed the checks: path, query, headers, the
    /// selected subprotocol, topics.
    pub fn accepted(&self) -> &Accepted {
        &self.accepted
    }

    /// Waits for the upgrade and returns the connection and the accepted
    /// request. Fails when hyper could not hand the stream over (the
    /// client went away before the `101` was written).
    pub async fn into_conn(self) -> Result<(HyperConn, Accepted), Error> {
        let upgraded = self
            .on_upgrade
            .await
            .map_err(|e| Error::Io(io::Error::other(e)))?;
        // hyper's `Upgraded` replays whatever it read past the request
        // head through its reads: nothing is left over here.
        let conn = Conn::from_upgraded(
            TokioIo::new(upgraded),
            Role::Server,
            &self.config,
            BytesMut::new(),
        );
        #[cfg(feature = "deflate")]
        let conn = match self.accepted.deflate {
            Some(p) => conn.with_deflate(p),
            None => conn,
        };
        Ok((conn, self.accepted))
    }
}

impl std::future::IntoFuture for PendingUpgrade {
    type Output = Result<HyperConn, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<HyperConn, Error>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.into_conn().await.map(|(c, _)| c) })
    }
}

/// Checks a hyper request against `config` (the handshake checks and
/// `config.server`'s origin policy, auth hook, topics and subprotocols;
/// permessage-deflate when `config.deflate` is set) and prepares the
/// upgrade. `Ok`: the `101` to return and the [`PendingUpgrade`] to await
/// in another task. `Err`: the rejection to return (status and headers of
/// the [`HandshakeError`](crate::HandshakeError), its text as the body).
///
/// Works with any request body type; the request must come from a hyper
/// HTTP/1 connection served with upgrades on
/// (`serve_connection(..).with_upgrades()`, or hyper-util's auto builder's
/// `serve_connection_with_upgrades`), or the upgrade fails with an error.
// The `Err` is a response that goes straight back to hyper, no larger
// than the `Ok`: boxing it would only add an allocation per rejection.
#[allow(clippy::result_large_err)]
pub fn upgrade<B>(
    req: &mut Request<B>,
    config: &Config,
) -> Result<(HandshakeResponse, PendingUpgrade), HandshakeResponse> {
    let checked = crate::http_types::accept(req, &config.server);
    #[allow(unused_mut)]
    let mut accepted = match checked {
        Ok(a) => a,
        Err(e) => return Err(crate::http_types::rejection(&e).map(Full::from)),
    };
    #[cfg(feature = "deflate")]
    if let Some(d) = &config.deflate {
        accepted.negotiate_deflate(d);
    }
    let resp = crate::http_types::response(&accepted).map(|()| Full::new(Bytes::new()));
    let on_upgrade = ::hyper::upgrade::on(req);
    Ok((
        resp,
        PendingUpgrade {
            accepted,
            on_upgrade,
            config: config.clone(),
        },
    ))
}

/// The events an [`SseBody`] sends: any `Stream` of events, or a tokio
/// channel's receiver ([`SseBody::from_receiver`]).
pub struct ReceiverStream<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

impl<T> fmt::Debug for ReceiverStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReceiverStream(..)")
    }
}

/// Bytes an [`SseBody`] gathers from events that are ready at once before
/// it hands them to hyper as one frame.
const COALESCE: usize = 16 * 1024;

/// An HTTP response body of Server-Sent Events: each event from the
/// stream is encoded with rtwire's [`Encoder`] (data split on CR, LF and
/// CRLF into `data:` lines, so a browser gets its text back with LF line
/// breaks), events that are ready together go out as one frame, and after
/// `heartbeat` without an event a `: keepalive` comment keeps proxies from
/// closing the idle stream. The body ends when the stream does.
///
/// ```no_run
/// use rtwire::hyper::{sse_response, SseBody};
/// use rtwire::sse::Event;
/// use std::time::Duration;
///
/// let (tx, rx) = tokio::sync::mpsc::channel::<Event<'static>>(16);
/// let resp = sse_response(SseBody::from_receiver(rx).heartbeat(Duration::from_secs(15)));
/// // ... return `resp` from the hyper service; send events with `tx`:
/// # async { tx.send(Event::new("hello")).await.unwrap(); };
/// ```
pub struct SseBody<St> {
    events: St,
    done: bool,
    buf: BytesMut,
    heartbeat: Option<Duration>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<St> fmt::Debug for SseBody<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseBody")
            .field("done", &self.done)
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}

impl<T> SseBody<ReceiverStream<T>> {
    /// A body of the events received on `rx` (ends when every sender is
    /// dropped).
    pub fn from_receiver(rx: tokio::sync::mpsc::Receiver<T>) -> Self {
        SseBody::new(ReceiverStream(rx))
    }
}

impl<St> SseBody<St> {
    /// A body of the events of `events`, without heartbeats.
    pub fn new(events: St) -> Self {
        SseBody {
            events,
            done: false,
            buf: BytesMut::new(),
            heartbeat: None,
            timer: None,
        }
    }

    /// Sends a `: keepalive` comment after `every` without an event.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = Some(every.max(Duration::from_millis(1)));
        self
    }
}

impl<St, E> Body for SseBody<St>
where
    St: Stream<Item = E> + Unpin,
    E: std::borrow::Borrow<Event<'static>>,
{
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        while !this.done && this.buf.len() < COALESCE {
            match Pin::new(&mut this.events).poll_next(cx) {
                Poll::Ready(Some(ev)) => Encoder::new().encode(ev.borrow(), &mut this.buf),
                Poll::Ready(None) => this.done = true,
                Poll::Pending => break,
            }
        }
        if !this.buf.is_empty() {
            if let (Some(every), Some(t)) = (this.heartbeat, this.timer.as_mut()) {
                t.as_mut().reset(Instant::now() + every);
            }
            return Poll::Ready(Some(Ok(Frame::data(this.buf.split().freeze()))));
        }
        if this.done {
            return Poll::Ready(None);
        }
        let Some(every) = this.heartbeat else {
            return Poll::Pending;
        };
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(every)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                timer.as_mut().reset(Instant::now() + every);
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(KEEPALIVE)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.buf.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A `200` response for an SSE body: `Content-Type: text/event-stream`,
/// `Cache-Control: no-cache`, and `X-Accel-Buffering: no` (so nginx
/// passes events on as they come).
pub fn sse_response<B>(body: B) -> Response<B> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}
