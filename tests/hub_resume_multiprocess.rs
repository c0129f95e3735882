//! Resume across processes: two `chat_node` processes on one real
//! `redis-server`, every room with history. A client on node A posts 300
//! messages at a steady pace while a client on node B loses its server
//! for a third of them, once to SIGKILL (and a restart) and once to a
//! drain (SIGTERM: close 1012, then it resumes on A); it rejoins with
//! `since` and must end with exactly 1..=300, once each, in order, with
//! no reset. After a FLUSHALL a resume is an explicit reset, then only
//! new messages, and a live member is told and given the new history.
//! Waiting is event-driven; `STUCK` only guards against a stuck run.
//!
//! Needs `redis-server` on the `PATH` (`scripts/test.sh` installs it).
#![cfg(all(feature = "redis", feature = "serde"))]

mod hub_support;
use std::time::Duration;

use hub_support::redis_support::RedisServer;
use hub_support::{client, next, recv, send, Node, Ws};
use rtwire::pubsub::Position;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Fast enough for 300 messages in well under a second; the rate limit
/// is raised to match.
const RATE: &[&str] = &["--rate", "5000", "--drain-ms", "300"];
const PACE: Duration = Duration::from_millis(1);

fn pos(v: &Value) -> Position {
    Position::parse(v.as_str().expect("an id")).unwrap()
}

/// What a resuming client saw.
#[derive(Debug, Default)]
struct Seen {
    contents: Vec<i64>,
    resets: Vec<Value>,
    joins: Vec<Value>,
    close_codes: Vec<Option<u16>>,
}

/// A client that joins `room` on the addresses it is given, one
/// connection each, and on every reconnect asks for what came after the
/// last position it has; it stops once it has seen `last`. `ready` fires
/// when its first join is live.
async fn resumer(
    user: &str,
    room: &str,
    mut addrs: mpsc::UnboundedReceiver<String>,
    ready: tokio::sync::oneshot::Sender<()>,
    last: i64,
) -> Seen {
    let mut seen = Seen::default();
    let mut cursor: Option<Position> = None;
    let mut ready = Some(ready);
    while let Some(addr) = addrs.recv().await {
        let mut ws = client(&addr, user).await;
        let join = match cursor {
            Some(p) => json!({"type":"join","room":room,"since":p.to_string()}),
            None => json!({"type":"join","room":room}),
        };
        send(&mut ws, join).await;
        loop {
            match next(&mut ws).await {
                Ok(v) => match v["type"].as_str() {
                    Some("message") => {
                        let p = pos(&v["id"]);
                        assert!(cursor.is_none_or(|c| c.epoch != p.epoch || p.offset > c.offset));
                        cursor = Some(p);
                        let n = v["content"].as_i64().unwrap();
                        seen.contents.push(n);
                        if n == last {
                            return seen;
                        }
                    }
                    Some("joined") => {
                        if let Some(t) = v["content"]["top"].as_str() {
                            cursor = Some(Position::parse(t).unwrap());
                        }
                        seen.joins.push(v);
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Some("reset") => {
                        cursor = Some(pos(&v["content"]["top"]));
                        seen.resets.push(v);
                    }
                    _ => {}
                },
                Err(code) => {
                    seen.close_codes.push(code);
                    break;
                }
            }
        }
    }
    panic!("no more addresses; saw {seen:?}");
}

async fn poster(addr: &str) -> Ws {
    let mut ws = client(addr, "alice").await;
    send(&mut ws, json!({"type":"join","room":"r"})).await;
    loop {
        if recv(&mut ws).await["type"] == "joined" {
            return ws;
        }
    }
}

/// B's client loses B for messages 101..=200 (`lose` takes B down at 100
/// and returns where the client goes next, and when); it must get all 300.
async fn three_hundred_with_b_lost(
    lose: impl FnOnce(&mut Node, &Node, &mpsc::UnboundedSender<String>),
    back: impl FnOnce(&RedisServer, &Node, &mpsc::UnboundedSender<String>) -> Option<Node>,
) -> Seen {
    let redis = RedisServer::start();
    let a = Node::start(&redis, "a", RATE);
    let mut b = Node::start(&redis, "b", RATE);
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(b.addr.clone()).unwrap();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let bob = tokio::spawn(async move { resumer("bob", "r", rx, ready_tx, 300).await });
    ready.await.unwrap();
    let mut alice = poster(&a.addr).await;
    let mut keep = Vec::new();
    let (mut lose, mut back) = (Some(lose), Some(back));
    for i in 1..=300 {
        send(&mut alice, json!({"type":"message","room":"r","content":i})).await;
        tokio::time::sleep(PACE).await;
        if i == 100 {
            (lose.take().unwrap())(&mut b, &a, &tx);
        }
        if i == 200 {
            keep.extend((back.take().unwrap())(&redis, &a, &tx));
        }
    }
    let seen = tokio::time::timeout(Duration::from_secs(60), bob)
        .await
        .expect("bob stuck")
        .unwrap();
    // alice got her own 300 too, each once.
    let mut mine = Vec::new();
    while mine.len() < 300 {
        let v = recv(&mut alice).await;
        if v["type"] == "message" {
            mine.push(v["content"].as_i64().unwrap());
        }
    }
    assert_eq!(mine, (1..=300).collect::<Vec<_>>());
    drop((a, b, keep));
    seen
}

fn assert_all_once(seen: &Seen) {
    assert_eq!(seen.contents, (1..=300).collect::<Vec<_>>(), "{seen:?}");
    assert!(seen.resets.is_empty(), "resets: {:?}", seen.resets);
    let rejoin = seen.joins.last().unwrap();
    assert_eq!(rejoin["content"]["recovered"], json!(true), "{rejoin}");
    assert!(
        rejoin["content"]["replayed"].as_u64().unwrap() > 0,
        "{rejoin}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_server_is_killed_and_restarted_gets_every_message_once_in_order() {
    let seen = three_hundred_with_b_lost(
        |b, _, _| b.kill(),
        |redis, _, tx| {
            // B restarted (a new process, a new instance id): the client
            // reconnects to it and resumes.
            let b2 = Node::start(redis, "b", RATE);
            tx.send(b2.addr.clone()).unwrap();
            Some(b2)
        },
    )
    .await;
    assert_all_once(&seen);
    assert_eq!(seen.close_codes, [None], "a killed server sends no close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_a_drained_server_is_closed_with_1012_and_resumes_on_the_other() {
    let seen = three_hundred_with_b_lost(
        |b, _, _| {
            b.term();
            let line = b.wait_drained();
            assert!(line.starts_with("drained 1 left 0"), "{line:?}");
        },
        |_, a, tx| {
            // The drained client comes back (after its backoff) on A.
            tx.send(a.addr.clone()).unwrap();
            None
        },
    )
    .await;
    assert_all_once(&seen);
    assert_eq!(seen.close_codes, [Some(1012)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_flushall_a_resume_is_an_explicit_reset_then_only_new_messages() {
    let redis = RedisServer::start();
    let a = Node::start(&redis, "a", RATE);
    let b = Node::start(&redis, "b", RATE);
    let mut alice = poster(&a.addr).await;
    let mut bob = client(&b.addr, "bob").await;
    send(&mut bob, json!({"type":"join","room":"r"})).await;
    while recv(&mut bob).await["type"] != "joined" {}
    for i in 1..=50 {
        send(&mut alice, json!({"type":"message","room":"r","content":i})).await;
    }
    let mut last = None;
    let mut got = 0;
    while got < 50 {
        let v = recv(&mut bob).await;
        if v["type"] == "message" {
            got += 1;
            last = Some(pos(&v["id"]));
        }
    }
    let old = last.unwrap();
    // alice has her own 50 too.
    let mut n = 0;
    while n < 50 {
        if recv(&mut alice).await["type"] == "message" {
            n += 1;
        }
    }
    drop(bob);
    redis.flushall();
    for i in 51..=60 {
        send(&mut alice, json!({"type":"message","room":"r","content":i})).await;
    }
    // alice, live through it: told, then the new history from its start.
    let reset = loop {
        let v = recv(&mut alice).await;
        if v["type"] == "reset" {
            break v;
        }
        assert_ne!(v["type"], "message", "a message before the reset: {v}");
    };
    assert_eq!(reset["content"]["reason"], "epoch-changed");
    let new_start = pos(&reset["content"]["top"]);
    assert_ne!(new_start.epoch, old.epoch);
    assert_eq!(new_start.offset, 0);
    let mut after = Vec::new();
    while after.len() < 10 {
        let v = recv(&mut alice).await;
        if v["type"] == "message" {
            assert_eq!(pos(&v["id"]).epoch, new_start.epoch);
            after.push(v["content"].as_i64().unwrap());
        }
    }
    assert_eq!(after, (51..=60).collect::<Vec<_>>());
    // bob resumes from before the flush: a reset, never 51..=60 passed off
    // as what followed his position.
    let mut bob = client(&b.addr, "bob").await;
    send(
        &mut bob,
        json!({"type":"join","room":"r","since":old.to_string()}),
    )
    .await;
    let mut before_joined = Vec::new();
    let joined = loop {
        let v = recv(&mut bob).await;
        match v["type"].as_str() {
            Some("joined") => break v,
            Some("message") | Some("reset") => before_joined.push(v),
            _ => {}
        }
    };
    assert_eq!(before_joined.len(), 1, "{before_joined:?}");
    assert_eq!(before_joined[0]["type"], "reset");
    assert_eq!(before_joined[0]["content"]["reason"], "epoch-changed");
    assert_eq!(
        pos(&before_joined[0]["content"]["top"]),
        Position::new(new_start.epoch, 10)
    );
    assert_eq!(joined["content"]["recovered"], json!(false));
    for i in 61..=65 {
        send(&mut alice, json!({"type":"message","room":"r","content":i})).await;
    }
    let mut live = Vec::new();
    while live.len() < 5 {
        let v = recv(&mut bob).await;
        if v["type"] == "message" {
            live.push(v["content"].as_i64().unwrap());
        }
    }
    assert_eq!(live, (61..=65).collect::<Vec<_>>());
}
