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

mod hub_support;
use std::time::{Duration, Instant};

use hub_support::redis_support::RedisServer;
use hub_support::{client as connect, recv, recv_kind, send, Node, Ws};
use serde_json::json;

/// The nodes' presence lease: a dead node's users must leave within
/// `LEASE + HEARTBEAT` (plus a Redis round trip and the bus delivery, for
/// which the test allows `SLACK`).
const LEASE: Duration = Duration::from_millis(1000);
const HEARTBEAT: Duration = Duration::from_millis(200);
const SLACK: Duration = Duration::from_millis(1500);

fn start(redis: &RedisServer, id: &str) -> Node {
    let (l, h) = (
        LEASE.as_millis().to_string(),
        HEARTBEAT.as_millis().to_string(),
    );
    Node::start(redis, id, &["--lease-ms", &l, "--heartbeat-ms", &h])
}

async fn client(node: &Node, user: &str) -> Ws {
    connect(&node.addr, user).await
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
    let a = start(&redis, "a");
    let mut b = start(&redis, "b");

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
