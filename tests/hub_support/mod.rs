//! The hub tests' pieces: `chat_node` processes (`examples/chat_node.rs`)
//! for the multi-process tests, an in-process envelope server on
//! loopback, and a tokio-tungstenite client of the envelope protocol.
#![allow(dead_code)] // each test uses a part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as TMsg;

#[path = "../example_support/mod.rs"]
mod example_support;
#[path = "../redis_support/mod.rs"]
pub mod redis_support;
use redis_support::RedisServer;

/// Guards against a stuck run; every wait is for an event.
pub const STUCK: Duration = Duration::from_secs(20);

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// The `chat_node` example, (re)built once per run with this test's
/// profile (see `tests/pubsub_multiprocess.rs` for why).
pub fn node_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| example_support::build_example("chat_node", "redis,serde"))
}

/// A running node, killed (SIGKILL) on drop.
pub struct Node {
    child: Child,
    out: Option<BufReader<ChildStdout>>,
    pub addr: String,
}

impl Node {
    /// Starts a node on `redis` named `id`, with `extra` arguments.
    pub fn start(redis: &RedisServer, id: &str, extra: &[&str]) -> Node {
        let mut child = Command::new(node_bin())
            .args(["--addr", "127.0.0.1:0", "--redis", &redis.url(), "--id", id])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("chat_node");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).expect("a line from chat_node");
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected {line:?}"))
            .to_owned();
        Node {
            child,
            out: Some(out),
            addr,
        }
    }

    /// SIGKILL, and wait for the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (a drain); returns without waiting.
    pub fn term(&mut self) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -TERM {pid}");
    }

    /// Waits for the node to exit after a drain; returns its `drained N
    /// left M` line.
    pub fn wait_drained(&mut self) -> String {
        let mut out = self.out.take().expect("stdout");
        let mut line = String::new();
        out.read_line(&mut line).expect("the drain line");
        let _ = self.child.wait();
        line.trim().to_owned()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Serves the envelope protocol of `hub` on a loopback port (the user is
/// the `user` query parameter; messages up to `max_message` bytes);
/// returns the address.
pub async fn envelope_server(hub: rtwire::hub::Hub, max_message: usize) -> String {
    use rtwire::ws::{read_request_head, Config, Conn, HeadAndRest};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let hub = hub.clone();
            tokio::spawn(async move {
                let config = Config::builder().max_message_size(max_message).build();
                let Ok(HeadAndRest { head, rest }) = read_request_head(&mut tcp, &config).await
                else {
                    return;
                };
                let user = head.query_param("user").unwrap_or_default().to_string();
                let Ok((conn, _)) = Conn::accept_head(tcp, head, rest, &config).await else {
                    return;
                };
                let _ = rtwire::hub::envelope::serve(&hub, conn, &user, Default::default()).await;
            });
        }
    });
    addr
}

pub async fn client(addr: &str, user: &str) -> Ws {
    let url = format!("ws://{addr}/chat?user={user}");
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(TMsg::text(v.to_string())).await.unwrap();
}

/// The next text envelope; `Err(code)` when the server closed with it (or
/// `Err(None)` when the connection just ended).
pub async fn next(ws: &mut Ws) -> Result<Value, Option<u16>> {
    loop {
        let m = tokio::time::timeout(STUCK, ws.next()).await.expect("stuck");
        match m {
            Some(Ok(TMsg::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
            Some(Ok(TMsg::Close(c))) => return Err(c.map(|c| u16::from(c.code))),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err(None),
        }
    }
}

pub async fn recv(ws: &mut Ws) -> Value {
    next(ws).await.expect("open")
}

/// Reads until an envelope of `kind` arrives.
pub async fn recv_kind(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = recv(ws).await;
        if v["type"] == kind {
            return v;
        }
    }
}

/// Reads until an envelope of `kind` arrives; the `message` and `reset`
/// envelopes before it are returned too.
pub async fn until(ws: &mut Ws, kind: &str) -> (Vec<Value>, Value) {
    let mut seen = Vec::new();
    loop {
        let v = recv(ws).await;
        if v["type"] == kind {
            return (seen, v);
        }
        if v["type"] == "message" || v["type"] == "reset" {
            seen.push(v);
        }
    }
}
