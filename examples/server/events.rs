//! The SSE manager routes of the `server` example:
//!
//! - `GET /events?channel=C[&tenant=…&subject=…]`: the manager's stream
//!   (replay on `Last-Event-ID`, then live events, heartbeats);
//! - `POST /publish?channel=C[&type=T&tenant=…&subject=…]` with the data
//!   as the body: publishes and answers `200` with the event id;
//! - the manager's counters for `/metrics`.
//!
//! In memory by default; with `--redis URL` the store and bus are Redis,
//! so several `server` processes serve one logical stream.

use std::io;

use bytes::BytesMut;
use rtwire::http::RequestHead;
use rtwire::pubsub::{Bus, ChannelName, PublishRequest, Store};
use rtwire::sse::{Handler, HandlerConfig, Manager, ManagerConfig};
use rtwire::upgrade::Rejection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest `POST /publish` body.
const MAX_BODY: usize = 64 * 1024;
/// How long the body may take to arrive.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The manager on its backend.
pub enum Events {
    /// One node.
    Memory(Handler<rtwire::pubsub::MemoryStore, rtwire::pubsub::MemoryBus>),
    /// Many nodes on one Redis.
    #[cfg(feature = "redis")]
    Redis(Handler<rtwire::pubsub::redis::RedisStore, rtwire::pubsub::redis::RedisBus>),
}

impl Events {
    /// The manager in memory, or on Redis at `redis_url`.
    pub async fn start(redis_url: Option<&str>, instance_id: Option<&str>) -> io::Result<Events> {
        let mut config = ManagerConfig::new();
        if let Some(id) = instance_id {
            config = config.instance_id(id);
        }
        match redis_url {
            None => Ok(Events::Memory(Handler::new(
                Manager::in_memory(config),
                HandlerConfig::new(),
            ))),
            #[cfg(feature = "redis")]
            Some(url) => {
                let (store, bus) = rtwire::pubsub::redis::connect(
                    rtwire::pubsub::redis::RedisConfig::default().url(url),
                )
                .await
                .map_err(io::Error::other)?;
                Ok(Events::Redis(Handler::new(
                    Manager::new(config, store, bus),
                    HandlerConfig::new(),
                )))
            }
            #[cfg(not(feature = "redis"))]
            Some(_) => Err(io::Error::other(
                "--redis needs the redis feature: cargo run --features redis --example server",
            )),
        }
    }

    /// Closes every stream (their browsers reconnect with `Last-Event-ID`).
    pub async fn close(&self) {
        match self {
            Events::Memory(h) => h.manager().close().await,
            #[cfg(feature = "redis")]
            Events::Redis(h) => h.manager().close().await,
        }
    }

    /// `GET /events`.
    pub async fn stream(&self, tcp: TcpStream, head: &RequestHead) -> Result<(), rtwire::Error> {
        match self {
            Events::Memory(h) => h.serve(tcp, head).await,
            #[cfg(feature = "redis")]
            Events::Redis(h) => h.serve(tcp, head).await,
        }
    }

    /// `POST /publish`.
    pub async fn publish(
        &self,
        tcp: TcpStream,
        head: &RequestHead,
        rest: BytesMut,
    ) -> Result<(), rtwire::Error> {
        match self {
            Events::Memory(h) => publish(h.manager(), tcp, head, rest).await,
            #[cfg(feature = "redis")]
            Events::Redis(h) => publish(h.manager(), tcp, head, rest).await,
        }
    }

    /// The counters in the Prometheus text format.
    pub fn write_metrics(&self, out: &mut String) {
        match self {
            Events::Memory(h) => h.manager().stats().write_prometheus(out),
            #[cfg(feature = "redis")]
            Events::Redis(h) => h.manager().stats().write_prometheus(out),
        }
    }
}

async fn publish<St: Store, B: Bus>(
    manager: &Manager<St, B>,
    mut tcp: TcpStream,
    head: &RequestHead,
    rest: BytesMut,
) -> Result<(), rtwire::Error> {
    let req = match request(head, &mut tcp, rest).await {
        Ok(req) => req,
        Err(rejection) => return Ok(rejection.send(&mut tcp).await?),
    };
    match manager.publish(req).await {
        Ok(p) => {
            let body = format!("{}\n", p.position);
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            tcp.write_all(resp.as_bytes()).await?;
            tcp.shutdown().await?;
            Ok(())
        }
        Err(e) => Ok(e.rejection().send(&mut tcp).await?),
    }
}

/// The publish request: method, query, and the body (by `Content-Length`).
async fn request(
    head: &RequestHead,
    tcp: &mut TcpStream,
    mut body: BytesMut,
) -> Result<PublishRequest, Rejection> {
    if head.method() != "POST" {
        return Err(Rejection::method_not_allowed_but("POST"));
    }
    let channel = head
        .query_param("channel")
        .ok_or_else(|| Rejection::bad_request("missing query parameter \"channel\""))?;
    let channel = ChannelName::new(&channel).map_err(|e| Rejection::bad_request(e.to_string()))?;
    if head.header("transfer-encoding").is_some() {
        return Err(Rejection::with_status(
            411,
            "send the body with Content-Length",
        ));
    }
    let raw = head
        .header_str("content-length")
        .ok_or_else(|| Rejection::with_status(411, "Content-Length required"))?;
    if raw.is_empty()
        || !raw.bytes().all(|b| b.is_ascii_digit())
        || head.headers_named("content-length").count() > 1
    {
        return Err(Rejection::bad_request("bad Content-Length"));
    }
    let len: usize = raw
        .parse()
        .map_err(|_| Rejection::with_status(413, "body too large"))?;
    if len > MAX_BODY {
        return Err(Rejection::with_status(413, "body too large"));
    }
    if len == 0 {
        // `data: ` with nothing is never dispatched by a browser.
        return Err(Rejection::bad_request("empty body: nothing to publish"));
    }
    let read = async {
        while body.len() < len {
            match tcp.read_buf(&mut body).await {
                Ok(0) | Err(_) => return Err(Rejection::bad_request("body cut short")),
                Ok(_) => {}
            }
        }
        Ok(())
    };
    // The head had its own timeout; a body that trickles gets one too.
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| Rejection::with_status(408, "body too slow"))??;
    body.truncate(len);
    let mut req = PublishRequest::new(channel, body.freeze());
    if let Some(t) = head.query_param("type") {
        req = req.event_type(t.into_owned());
    }
    if let Some(t) = head.query_param("tenant") {
        req = req.tenant(t.into_owned());
    }
    if let Some(s) = head.query_param("subject") {
        req = req.subject(s.into_owned());
    }
    Ok(req)
}
