//! Rooms with history (`HubConfig::history`) over loopback, with
//! tokio-tungstenite clients speaking the envelope protocol: positions on
//! every message, a reconnect that resumes with `since` and gets exactly
//! what it missed, history on join, every way a `since` can be wrong, and
//! the replay/live hand-off raced against a publisher 200 times. Waiting
//! is event-driven; `STUCK` only guards against a stuck run.
#![cfg(feature = "serde")]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;
use rtwire::hub::{envelope, HistoryConfig, Hub, HubConfig, HubError, JoinFrom};
use rtwire::pubsub::{MemoryBus, MemoryConfig, MemoryStore, Position};
use rtwire::ws::{Config, Conn, Message};
use serde_json::{json, Value};
use tokio::net::TcpListener;

mod hub_support;
use hub_support::{client, recv, send, until, STUCK};

async fn server(hub: Hub) -> String {
    hub_support::envelope_server(hub, 64 * 1024).await
}
use tokio_tungstenite::tungstenite::Message as TMsg;

fn config(history: HistoryConfig) -> HubConfig {
    envelope::configure(HubConfig::default().history(history))
}

fn pos(v: &Value) -> Position {
    Position::parse(v.as_str().expect("an id string")).unwrap()
}

fn contents(msgs: &[Value]) -> Vec<i64> {
    msgs.iter()
        .filter(|m| m["type"] == "message")
        .map(|m| m["content"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_reconnects_gets_exactly_what_it_missed_then_live() {
    let hub = Hub::new(config(HistoryConfig::default()));
    let addr = server(hub.clone()).await;
    let mut alice = client(&addr, "alice").await;
    send(&mut alice, json!({"type":"join","room":"r"})).await;
    let (_, joined) = until(&mut alice, "joined").await;
    assert_eq!(joined["content"]["recovered"], json!(true));
    let mut bob = client(&addr, "bob").await;
    send(&mut bob, json!({"type":"join","room":"r"})).await;
    let (_, joined) = until(&mut bob, "joined").await;
    let mut last = pos(&joined["content"]["top"]);
    for i in 1..=3 {
        send(&mut alice, json!({"type":"message","room":"r","content":i})).await;
    }
    // Every message carries its id, one past the one before.
    for i in 1..=3 {
        let (_, m) = until(&mut bob, "message").await;
        assert_eq!(m["content"], json!(i));
        let p = pos(&m["id"]);
        assert_eq!(p, last.next());
        last = p;
    }
    drop(bob);
    for i in 4..=10 {
        send(&mut alice, json!({"type":"message","room":"r","content":i})).await;
    }
    // alice sees her own, so all ten are stored once she has the tenth.
    loop {
        let (_, m) = until(&mut alice, "message").await;
        if m["content"] == json!(10) {
            break;
        }
    }
    let mut bob = client(&addr, "bob").await;
    send(
        &mut bob,
        json!({"type":"join","room":"r","since":last.to_string()}),
    )
    .await;
    let (replay, joined) = until(&mut bob, "joined").await;
    assert_eq!(contents(&replay), (4..=10).collect::<Vec<_>>());
    assert_eq!(
        joined["content"],
        json!({"recovered":true,"replayed":7,"top":replay[6]["id"]})
    );
    // Then live, the next position.
    send(
        &mut alice,
        json!({"type":"message","room":"r","content":11}),
    )
    .await;
    let (_, m) = until(&mut bob, "message").await;
    assert_eq!(m["content"], json!(11));
    assert_eq!(pos(&m["id"]), pos(&replay[6]["id"]).next());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_asking_for_history_gets_the_last_n_capped_then_live() {
    let hub = Hub::new(config(HistoryConfig::default().max_join_history(5)));
    let addr = server(hub.clone()).await;
    let mut alice = client(&addr, "alice").await;
    send(&mut alice, json!({"type":"join","room":"r"})).await;
    until(&mut alice, "joined").await;
    for i in 1..=8 {
        send(&mut alice, json!({"type":"message","room":"r","content":i})).await;
    }
    loop {
        if until(&mut alice, "message").await.1["content"] == json!(8) {
            break;
        }
    }
    let mut carl = client(&addr, "carl").await;
    send(&mut carl, json!({"type":"join","room":"r","history":100})).await;
    let (replay, joined) = until(&mut carl, "joined").await;
    assert_eq!(contents(&replay), [4, 5, 6, 7, 8]);
    assert_eq!(joined["content"]["replayed"], json!(5));
    assert_eq!(joined["content"]["recovered"], json!(true));
    // The API agrees.
    let h = hub.history("r", 3).await.unwrap();
    let ids: Vec<u64> = h.iter().map(|(p, _)| p.offset).collect();
    assert_eq!(ids, [6, 7, 8]);
    let text: Value = serde_json::from_str(h[2].1.as_text().unwrap()).unwrap();
    assert_eq!(text["id"].as_str().unwrap(), h[2].0.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_since_the_history_cannot_serve_is_a_reset_with_the_reason_and_the_connection_stays() {
    let hub = Hub::new(config(HistoryConfig::default().size(5)));
    let addr = server(hub.clone()).await;
    let mut alice = client(&addr, "alice").await;
    for room in ["r", "other"] {
        send(&mut alice, json!({"type":"join","room":room})).await;
        until(&mut alice, "joined").await;
    }
    for i in 1..=10 {
        send(&mut alice, json!({"type":"message","room":"r","content":i})).await;
    }
    send(
        &mut alice,
        json!({"type":"message","room":"other","content":0}),
    )
    .await;
    let mut top = None;
    let mut other = None;
    while top.is_none() || other.is_none() {
        let (_, m) = until(&mut alice, "message").await;
        match (m["room"].as_str(), m["content"].as_i64()) {
            (Some("r"), Some(10)) => top = Some(pos(&m["id"])),
            (Some("other"), _) => other = Some(pos(&m["id"])),
            _ => {}
        }
    }
    let mut top = top.unwrap();
    let other = other.unwrap();
    // (since, reason, missed), given the room's top now.
    type Case = fn(Position, Position) -> (Value, &'static str, Option<u64>);
    let cases: [Case; 4] = [
        // Malformed.
        |_, _| (json!("not-an-id"), "invalid-id", None),
        // Another room's position: another history.
        |_, other| (json!(other.to_string()), "epoch-changed", None),
        // Ahead of the room.
        |top, _| {
            (
                json!(Position::new(top.epoch, top.offset + 5).to_string()),
                "ahead",
                None,
            )
        },
        // Only 5 are kept: 2..=top-4 were evicted.
        |top, _| {
            (
                json!(Position::new(top.epoch, 1).to_string()),
                "evicted",
                Some(top.offset - 1),
            )
        },
    ];
    for case in cases {
        let (since, reason, missed) = case(top, other);
        let mut bob = client(&addr, "bob").await;
        send(&mut bob, json!({"type":"join","room":"r","since":since})).await;
        let (seen, joined) = until(&mut bob, "joined").await;
        assert_eq!(seen.len(), 1, "{reason}: {seen:?}");
        let reset = &seen[0];
        assert_eq!(reset["type"], "reset", "{reason}");
        assert_eq!(reset["content"]["reason"], reason);
        assert_eq!(reset["content"]["missed"], json!(missed), "{reason}");
        assert_eq!(pos(&reset["content"]["top"]), top, "{reason}");
        assert_eq!(joined["content"]["recovered"], json!(false));
        assert_eq!(joined["content"]["reason"], reason);
        // The connection is kept and live.
        send(
            &mut alice,
            json!({"type":"message","room":"r","content":"x"}),
        )
        .await;
        let (_, m) = until(&mut bob, "message").await;
        assert_eq!(m["content"], "x");
        // The next resume from there is complete.
        drop(bob);
        let last = pos(&m["id"]);
        send(
            &mut alice,
            json!({"type":"message","room":"r","content":"y"}),
        )
        .await;
        loop {
            let (_, m) = until(&mut alice, "message").await;
            if m["content"] == "y" {
                top = pos(&m["id"]);
                break;
            }
        }
        let mut bob = client(&addr, "bob").await;
        send(
            &mut bob,
            json!({"type":"join","room":"r","since":last.to_string()}),
        )
        .await;
        let (seen, joined) = until(&mut bob, "joined").await;
        assert_eq!(
            seen.iter()
                .map(|m| m["content"].clone())
                .collect::<Vec<_>>(),
            [json!("y")]
        );
        assert_eq!(joined["content"]["recovered"], json!(true));
    }
    // A wrongly typed `history` is an error; the connection stays.
    let mut bob = client(&addr, "bob").await;
    send(&mut bob, json!({"type":"join","room":"r","history":-1})).await;
    let e = recv(&mut bob).await;
    assert_eq!(e["type"], "error");
    send(&mut bob, json!({"type":"ping"})).await;
    assert_eq!(recv(&mut bob).await["type"], "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_publishes_with_positions_and_rooms_without_history_keep_the_old_path() {
    let hub =
        Hub::new(HubConfig::default().history(HistoryConfig::default().rooms(|r| r != "plain")));
    assert!(hub.has_history("r") && !hub.has_history("plain"));
    let a = hub.publish("r", &Message::text("one"), None).await.unwrap();
    let b = hub.publish("r", &Message::text("two"), None).await.unwrap();
    assert_eq!((b.epoch, b.offset), (a.epoch, a.offset + 1));
    assert_eq!(
        hub.publish("plain", &Message::text("x"), None).await,
        Err(HubError::NoHistory)
    );
    assert_eq!(hub.history("plain", 1).await, Err(HubError::NoHistory));
    let h = hub.history("r", 10).await.unwrap();
    assert_eq!(
        h,
        [(a, Message::text("one")), (b, Message::text("two"))],
        "no stamp configured: messages as sent"
    );
    assert_eq!(hub.stats().history_appends, 2);
}

/// The hand-off raced: a publisher never stops while a member rejoins
/// from a position some messages back; each of 200 rejoins must see every
/// position after its `since` exactly once, in order, up to a message
/// published after its join was live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_and_live_hand_off_loses_and_repeats_nothing_under_a_racing_publisher() {
    let hub = Hub::new(config(HistoryConfig::default().size(100_000)));
    let addr = server(hub.clone()).await;
    let stop = Arc::new(AtomicBool::new(false));
    // A publisher that never waits for anyone.
    let publisher = {
        let (hub, stop) = (hub.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let m = json!({"type":"message","room":"r","from":"pub","content":i});
                hub.publish("r", &Message::text(m.to_string()), None)
                    .await
                    .unwrap();
                if i.is_multiple_of(8) {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut dups = 0;
    for round in 0..200 {
        let now = hub.history("r", 1).await.unwrap();
        let since = now
            .first()
            .map(|(p, _)| Position::new(p.epoch, p.offset.saturating_sub(3 + round % 20)))
            .unwrap_or(Position::new(0, 0));
        let mut ws = client(&addr, "bob").await;
        let since_json = if since.epoch == 0 {
            json!({"type":"join","room":"r"})
        } else {
            json!({"type":"join","room":"r","since":since.to_string()})
        };
        send(&mut ws, since_json).await;
        let (replay, joined) = until(&mut ws, "joined").await;
        assert_eq!(joined["content"]["recovered"], json!(true), "round {round}");
        // The marker: published after the join was live.
        let marker = hub
            .publish(
                "r",
                &Message::text(json!({"type":"message","room":"r","content":-1}).to_string()),
                None,
            )
            .await
            .unwrap();
        let mut got: Vec<Position> = replay.iter().map(|m| pos(&m["id"])).collect();
        loop {
            let (_, m) = until(&mut ws, "message").await;
            let p = pos(&m["id"]);
            got.push(p);
            if p == marker {
                break;
            }
        }
        let start = if since.epoch == 0 {
            got[0].offset
        } else {
            since.offset + 1
        };
        let want: Vec<u64> = (start..=marker.offset).collect();
        let have: Vec<u64> = got.iter().map(|p| p.offset).collect();
        let distinct: BTreeSet<u64> = have.iter().copied().collect();
        dups += have.len() - distinct.len();
        assert_eq!(have, want, "round {round}: since {since}");
    }
    assert_eq!(dups, 0);
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_on_one_store_and_bus_resume_on_either() {
    let store = Arc::new(MemoryStore::new(MemoryConfig::default()));
    let bus = Arc::new(MemoryBus::new());
    let cfg = config(HistoryConfig::default());
    let a = Hub::with_bus(cfg.clone(), "a", store.clone(), bus.clone())
        .await
        .unwrap();
    let b = Hub::with_bus(cfg, "b", store, bus).await.unwrap();
    let (addr_a, addr_b) = (server(a.clone()).await, server(b.clone()).await);
    let mut ann = client(&addr_a, "ann").await;
    send(&mut ann, json!({"type":"join","room":"r"})).await;
    let (_, j) = until(&mut ann, "joined").await;
    let start = pos(&j["content"]["top"]);
    let mut ben = client(&addr_b, "ben").await;
    send(&mut ben, json!({"type":"join","room":"r"})).await;
    until(&mut ben, "joined").await;
    for i in 1..=5 {
        send(&mut ann, json!({"type":"message","room":"r","content":i})).await;
    }
    // Both instances deliver every message once, with the same ids.
    let mut ids = Vec::new();
    for i in 1..=5 {
        let (_, x) = until(&mut ann, "message").await;
        let (_, y) = until(&mut ben, "message").await;
        assert_eq!(
            (x["content"].clone(), y["content"].clone()),
            (json!(i), json!(i))
        );
        assert_eq!(x["id"], y["id"]);
        ids.push(pos(&x["id"]));
    }
    assert_eq!(ids[0], start.next());
    // ben leaves b after the second and resumes on a.
    drop(ben);
    let mut ben = client(&addr_a, "ben").await;
    send(
        &mut ben,
        json!({"type":"join","room":"r","since":ids[1].to_string()}),
    )
    .await;
    let (replay, joined) = until(&mut ben, "joined").await;
    assert_eq!(contents(&replay), [3, 4, 5]);
    assert_eq!(joined["content"]["recovered"], json!(true));
    drop(ben);
}

/// The API without the envelope: `join_since` on registered write halves,
/// its `Resume`, and the notices the member is sent in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_since_through_the_api_reports_what_it_did() {
    let hub = Hub::new(HubConfig::default().history(HistoryConfig::default().size(3)));
    let addr_hub = hub.clone();
    // A member whose connection is a real loopback pair.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        Conn::accept(tcp, &Config::default()).await.unwrap().0
    });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .unwrap();
    let (_read, write) = accept.await.unwrap().split();
    let reg = addr_hub.register(write, "m", Default::default());
    let mut last = None;
    for i in 0..5 {
        last = Some(
            hub.publish("r", &Message::text(format!("p{i}")), None)
                .await
                .unwrap(),
        );
    }
    let last = last.unwrap();
    // Two back: both still kept.
    let j = hub
        .join_since(
            reg.id(),
            "r",
            Some(Position::new(last.epoch, last.offset - 2)),
        )
        .await
        .unwrap();
    assert_eq!(
        j.resume,
        Some(rtwire::hub::Resume::Recovered {
            replayed: 2,
            top: last
        })
    );
    assert!(j.presence);
    let mut texts = Vec::new();
    while texts.len() < 3 {
        if let Some(Ok(TMsg::Text(t))) = tokio::time::timeout(STUCK, ws.next()).await.unwrap() {
            texts.push(t.to_string());
        }
    }
    assert_eq!(texts[..2], ["p3".to_string(), "p4".to_string()]);
    assert!(texts[2].contains(r#""type":"joined""#), "{texts:?}");
    // Again from the start: only 3 are kept, so a reset.
    hub.leave(reg.id(), "r").await.unwrap();
    let j = hub
        .join_since(reg.id(), "r", Some(Position::new(last.epoch, 0)))
        .await
        .unwrap();
    assert!(!j.resume.unwrap().recovered());
    assert_eq!(
        hub.join_with(reg.id(), "r", JoinFrom::Live)
            .await
            .unwrap()
            .resume,
        None,
        "already in the room: a no-op"
    );
}
