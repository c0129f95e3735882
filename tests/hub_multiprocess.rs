//! The hub across OS processes: two `chat_node` processes
//! (`examples/chat_node.rs`) on one real `redis-server`
//! (`tests/redis_support`), with tokio-tungstenite clients. Cross-instance
//! broadcast and presence; then one node is killed with SIGKILL and its
//! users' leave events must reach the other node's clients within the
//! presence lease. Waiting is event-driven (a client reads until what it
//! expects arrives); [`STUCK`] only guards against a stuck run.
//!
//! Needs `redis-server` on the `PATH` (`scripts/test.sh` installs it).
#![cfg(all(feature = "redis", feature = "serde"))]

mod example_support;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as TMsg;

mod redis_support;
use redis_support::RedisServer;

const STUCK: Duration = Duration::from_secs(20);
/// The nodes' presence lease: a dead node's users must leave within
/// `LEASE + HEARTBEAT` (plus a Redis round trip and the bus delivery, for
/// which the test allows `SLACK`).
const LEASE: Duration = Duration::from_millis(1000);
const HEARTBEAT: Duration = Duration::from_millis(200);
const SLACK: Duration = Duration::from_millis(1500);

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// The `chat_node` example, (re)built once per run with this test's
/// profile (see `tests/pubsub_multiprocess.rs` for why).
fn node_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| example_support::build_example("chat_node", "redis,serde"))
}

/// A running node, killed (SIGKILL) on drop.
struct Node {
    child: Child,
    addr: String,
}

impl Node {
    fn start(redis: &RedisServer, id: &str) -> Node {
        let mut child = Command::new(node_bin())
            .args(["--addr", "127.0.0.1:0", "--redis", &redis.url(), "--id", id])
            .args(["--lease-ms", &LEASE.as_millis().to_string()])
            .args(["--heartbeat-ms", &HEARTBEAT.as_millis().to_string()])
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
        Node { child, addr }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn client(node: &Node, user: &str) -> Ws {
    let url = format!("ws://{}/chat?user={user}", node.addr);
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(TMsg::text(v.to_string())).await.unwrap();
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(STUCK, ws.next())
            .await
            .expect("stuck")
            .expect("open")
            .unwrap();
        if let TMsg::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// Reads until an envelope of `kind` arrives.
async fn recv_kind(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = recv(ws).await;
        if v["type"] == kind {
            return v;
        }
    }
}

async fn join(ws: &mut Ws, room: &str) -> Vec<String> {
    send(ws, json!({"type":"join","room":room})).await;
    loop {
        let v = recv(ws).await;
        if v["type"] == "presence" {
            let mut users: Vec<String> = v["content"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["user"].as_str().unwrap().to_owned())
                .collect();
            users.sort();
            return users;
        }
    }
}

#[tokio::test]
async fn two_processes_share_messages_and_presence_and_a_killed_ones_users_leave_within_the_lease()
{
    let redis = RedisServer::start();
    let a = Node::start(&redis, "a");
    let mut b = Node::start(&redis, "b");

    let mut ann = client(&a, "ann").await;
    assert_eq!(join(&mut ann, "r").await, ["ann"]);
    let mut ben = client(&b, "ben").await;
    // Presence across instances: ben on b sees ann on a.
    assert_eq!(join(&mut ben, "r").await, ["ann", "ben"]);
    let j = recv(&mut ann).await;
    assert_eq!(
        (j["type"].as_str(), j["from"].as_str()),
        (Some("join"), Some("ben"))
    );
    // ben's second tab, on a: one presence, no join event.
    let mut ben2 = client(&a, "ben").await;
    assert_eq!(join(&mut ben2, "r").await, ["ann", "ben"]);
    let mut cat = client(&b, "cat").await;
    assert_eq!(join(&mut cat, "r").await, ["ann", "ben", "cat"]);
    let j = recv(&mut ann).await;
    assert_eq!(
        (j["type"].as_str(), j["from"].as_str()),
        (Some("join"), Some("cat"))
    );

    // Broadcast across instances, in order, exactly once each (within
    // the chat's rate limit of 20 messages a second).
    for i in 0..10 {
        send(&mut ann, json!({"type":"message","room":"r","content":i})).await;
    }
    for i in 0..10 {
        for ws in [&mut ben, &mut cat, &mut ann] {
            let m = recv_kind(ws, "message").await;
            assert_eq!(
                (m["from"].as_str(), &m["content"]),
                (Some("ann"), &json!(i))
            );
        }
    }
    send(
        &mut cat,
        json!({"type":"message","room":"r","content":"from b"}),
    )
    .await;
    let m = recv(&mut ann).await;
    assert_eq!(
        (m["from"].as_str(), m["content"].as_str()),
        (Some("cat"), Some("from b"))
    );

    // kill -9 b: cat (only on b) leaves; ben keeps his tab on a, so no
    // leave for ben. The leave reaches ann within the lease.
    b.kill();
    let killed = Instant::now();
    let l = recv(&mut ann).await;
    let took = killed.elapsed();
    assert_eq!(
        (l["type"].as_str(), l["from"].as_str()),
        (Some("leave"), Some("cat"))
    );
    assert!(
        took <= LEASE + HEARTBEAT + SLACK,
        "leave after {took:?}, lease {LEASE:?} + heartbeat {HEARTBEAT:?}"
    );
    // No ghosts: a newcomer sees ann and ben only; ann's next event is
    // the newcomer's join (no leave for ben came before it).
    let mut dan = client(&a, "dan").await;
    assert_eq!(join(&mut dan, "r").await, ["ann", "ben", "dan"]);
    let j = recv(&mut ann).await;
    assert_eq!(
        (j["type"].as_str(), j["from"].as_str()),
        (Some("join"), Some("dan"))
    );
    drop((ben, ben2, cat, dan));
}
