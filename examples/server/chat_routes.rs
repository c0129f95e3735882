//! The demo server's chat: `GET /chat?user=NAME[&token=T]` upgrades to the
//! hub's JSON envelope protocol (`rtwire::hub::envelope`), with NAME as the
//! `from` of that connection's messages; `chat.html` is its page. With a
//! Redis URL, every server process on that Redis is one chat (messages and
//! presence). Needs the `serde` feature (and `redis` for `--redis`).
//!
//! Every room keeps a history (the last 1,000 messages, for an hour): each
//! message has an `id`, a page that reconnects joins with `since` and gets
//! what it missed, on any instance, and a newcomer gets the last 50.
//! [`Chat::drain`] (the servers call it on SIGTERM) closes every connection
//! with 1012 spread over a deadline, so its clients resume elsewhere.
//!
//! Also used by `examples/chat_node.rs` (the multi-process test's node).
#![allow(dead_code)] // each binary that includes this uses a part

use std::time::Duration;

use bytes::BytesMut;
use rtwire::http::RequestHead;
use rtwire::hub::{Drained, HistoryConfig, Hub, HubConfig, SlowPolicy};
use rtwire::upgrade::Rejection;
use rtwire::ws::Config;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The chat page.
pub const CHAT_PAGE: &str = include_str!("chat.html");

/// Longest user name accepted.
const MAX_USER: usize = 64;

/// The chat: one hub (one node, or one instance of many on Redis).
pub struct Chat {
    hub: Hub,
    token: Option<String>,
    config: Config,
}

/// How a [`Chat`] is set up.
#[derive(Clone, Debug)]
pub struct ChatOptions {
    /// Shared by every instance on this Redis (`None`: this process only).
    pub redis_url: Option<String>,
    /// This instance's name.
    pub instance_id: String,
    /// Require `token=T` on `/chat` (401 otherwise).
    pub token: Option<String>,
    /// The presence lease (ttl, heartbeat) instead of the default.
    pub lease: Option<(Duration, Duration)>,
    /// Inbound messages per second per connection (default 20).
    pub rate: f64,
}

impl ChatOptions {
    /// The defaults for instance `instance_id`.
    pub fn new(instance_id: &str) -> Self {
        ChatOptions {
            redis_url: None,
            instance_id: instance_id.to_owned(),
            token: None,
            lease: None,
            rate: 20.0,
        }
    }
}

fn hub_config(rate: f64) -> HubConfig {
    let c = HubConfig::default()
        .max_queue_bytes(256 * 1024)
        .policy(SlowPolicy::DropNewest)
        .max_rooms_per_conn(16)
        .rate_limit(rtwire::hub::RateLimit::new(rate, 64.0 * 1024.0))
        .keepalive(Duration::from_secs(20), Duration::from_secs(60))
        .history(HistoryConfig::default());
    #[cfg(feature = "serde")]
    let c = rtwire::hub::envelope::configure(c);
    c
}

impl Chat {
    /// A chat on this process only, or, with `redis_url`, shared by every
    /// instance on that Redis (`instance_id` names this one). `token`:
    /// require `token=T` on `/chat` (401 otherwise).
    pub async fn new(redis_url: Option<&str>, instance_id: &str, token: Option<String>) -> Chat {
        let mut o = ChatOptions::new(instance_id);
        o.redis_url = redis_url.map(str::to_owned);
        o.token = token;
        Chat::with_options(o).await
    }

    /// A chat set up by `o`.
    pub async fn with_options(o: ChatOptions) -> Chat {
        let ChatOptions {
            redis_url,
            instance_id,
            token,
            lease,
            rate,
        } = o;
        let hub_config = || hub_config(rate);
        let instance_id = instance_id.as_str();
        let hub = match redis_url.as_deref() {
            None => Hub::new(hub_config()),
            #[cfg(feature = "redis")]
            Some(url) => {
                use rtwire::hub::PresenceLease;
                use rtwire::pubsub::redis::RedisConfig;
                let lease =
                    lease.map_or_else(PresenceLease::default, |(t, h)| PresenceLease::new(t, h));
                let rc = RedisConfig::default().url(url);
                match Hub::with_redis(hub_config(), instance_id, rc, lease).await {
                    Ok(h) => h,
                    Err(e) => {
                        eprintln!("chat: Redis at {url}: {e}; running on this node only");
                        Hub::new(hub_config())
                    }
                }
            }
            #[cfg(not(feature = "redis"))]
            Some(url) => {
                let _ = (instance_id, lease);
                eprintln!("chat: built without the redis feature; ignoring {url}");
                Hub::new(hub_config())
            }
        };
        let base = Config::builder().max_message_size(64 * 1024);
        #[cfg(feature = "deflate")]
        let base = base.deflate(rtwire::ws::DeflateConfig::default());
        let config = hub.config().conn_config(&base.build());
        Chat { hub, token, config }
    }

    /// The hub.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Serves `GET /chat?user=NAME[&token=T]` on a connection whose head
    /// was read (`rest`: the bytes after it).
    pub async fn serve(&self, mut tcp: TcpStream, head: RequestHead, rest: BytesMut) {
        if let Some(t) = &self.token {
            if head.query_param("token").as_deref() != Some(t.as_str()) {
                let _ = Rejection::unauthorized("bad or missing token")
                    .send(&mut tcp)
                    .await;
                return;
            }
        }
        let user = head
            .query_param("user")
            .map(|u| u.trim().to_string())
            .unwrap_or_default();
        if user.is_empty() || user.len() > MAX_USER || user.chars().any(char::is_control) {
            let _ = Rejection::bad_request("user must be 1-64 printable characters")
                .send(&mut tcp)
                .await;
            return;
        }
        #[cfg(feature = "serde")]
        {
            let Ok((conn, _)) = rtwire::ws::Conn::accept_head(tcp, head, rest, &self.config).await
            else {
                return;
            };
            let _ = rtwire::hub::envelope::serve(&self.hub, conn, &user, Default::default()).await;
        }
        #[cfg(not(feature = "serde"))]
        {
            let _ = (head, rest);
            let _ = Rejection::with_status(501, "built without the serde feature")
                .send(&mut tcp)
                .await;
        }
    }

    /// Serves the page.
    pub async fn serve_page(&self, mut tcp: TcpStream) -> std::io::Result<()> {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
            CHAT_PAGE.len()
        );
        tcp.write_all(head.as_bytes()).await?;
        tcp.write_all(CHAT_PAGE.as_bytes()).await?;
        tcp.shutdown().await
    }

    /// Appends the hub's counters in the Prometheus text format
    /// (`rtwire_hub_*`).
    pub fn write_metrics(&self, out: &mut String) {
        self.hub.stats().write_prometheus("rtwire_hub", out);
    }

    /// Closes every connection and gives up this instance's presence.
    pub async fn shutdown(&self) {
        self.hub.shutdown().await;
    }

    /// Drains for a restart: every connection closed with 1012 at a random
    /// moment within `deadline`, new ones refused the same way, then the
    /// presence lease given up.
    pub async fn drain(&self, deadline: Duration) -> Drained {
        self.hub.drain(deadline).await
    }
}
