//! The JSON envelope protocol (feature `serde`) over loopback with
//! tokio-tungstenite clients: presence with two tabs, errors that keep the
//! connection, 1009 over the size limit, the rate limit, and two hubs
//! joined by an in-memory bus. Waiting is event-driven; timeouts only
//! guard against a stuck run.
#![cfg(feature = "serde")]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rtwire::hub::{envelope, Hub, HubConfig, RateLimit};
use rtwire::pubsub::{MemoryBus, MemoryStore};
use serde_json::{json, Value};

mod hub_support;
use hub_support::{client, envelope_server as server, recv, recv_kind, send, STUCK};
use tokio_tungstenite::tungstenite::Message as TMsg;

fn users(presence: &Value) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = presence["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["user"].as_str().unwrap().to_owned(),
                p["connections"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn hub_config() -> HubConfig {
    envelope::configure(HubConfig::default())
}

#[tokio::test]
async fn presence_two_tabs_are_one_user_and_leave_fires_with_the_last() {
    let hub = Hub::new(hub_config());
    let addr = server(hub.clone(), 64 * 1024).await;
    let mut bob = client(&addr, "bob").await;
    send(&mut bob, json!({"type":"join","room":"general"})).await;
    let p = recv_kind(&mut bob, "presence").await;
    assert_eq!(users(&p), vec![("bob".into(), 1)]);

    let mut alice1 = client(&addr, "alice").await;
    send(&mut alice1, json!({"type":"join","room":"general"})).await;
    let p = recv_kind(&mut alice1, "presence").await;
    assert_eq!(users(&p), vec![("alice".into(), 1), ("bob".into(), 1)]);
    let j = recv(&mut bob).await;
    assert_eq!(
        (j["type"].as_str(), j["from"].as_str()),
        (Some("join"), Some("alice"))
    );
    assert!(j["timestamp"].as_str().unwrap().ends_with('Z'));

    // A second tab: no join event; the list counts two connections.
    let mut alice2 = client(&addr, "alice").await;
    send(&mut alice2, json!({"type":"join","room":"general"})).await;
    let p = recv_kind(&mut alice2, "presence").await;
    assert_eq!(users(&p), vec![("alice".into(), 2), ("bob".into(), 1)]);

    // The first tab goes: still no leave. bob's next event is the message.
    alice1.close(None).await.unwrap();
    send(
        &mut alice2,
        json!({"type":"message","room":"general","content":"still here"}),
    )
    .await;
    let m = recv(&mut bob).await;
    assert_eq!(m["type"], "message");
    assert_eq!(m["from"], "alice");
    assert_eq!(m["content"], "still here");
    // The last tab leaves: bob gets the leave.
    send(&mut alice2, json!({"type":"leave","room":"general"})).await;
    let l = recv(&mut bob).await;
    assert_eq!(
        (l["type"].as_str(), l["from"].as_str()),
        (Some("leave"), Some("alice"))
    );
    let online = hub.online("general").await;
    assert_eq!(online.len(), 1);
    assert_eq!(online[0].user, "bob");
}

#[tokio::test]
async fn bad_json_and_unknown_types_get_an_error_and_keep_the_connection() {
    let hub = Hub::new(hub_config());
    let addr = server(hub.clone(), 1024).await;
    let mut c = client(&addr, "carol").await;
    c.send(TMsg::text("{not json")).await.unwrap();
    let e = recv(&mut c).await;
    assert_eq!(e["type"], "error");
    assert!(e["content"].as_str().unwrap().contains("invalid JSON"));
    send(&mut c, json!({"type":"dance"})).await;
    let e = recv(&mut c).await;
    assert_eq!(e["content"], "unknown type: dance");
    send(
        &mut c,
        json!({"type":"message","room":"nope","content":"x"}),
    )
    .await;
    assert_eq!(recv(&mut c).await["type"], "error");
    // Still open: ping answers pong; broadcast reaches everyone.
    send(&mut c, json!({"type":"ping"})).await;
    assert_eq!(recv(&mut c).await["type"], "pong");
    send(
        &mut c,
        json!({"type":"broadcast","content":"hello all","from":"mallory"}),
    )
    .await;
    let b = recv(&mut c).await;
    assert_eq!(
        (b["type"].as_str(), b["from"].as_str()),
        (Some("broadcast"), Some("carol"))
    );

    // Over the size limit: closed with 1009.
    c.send(TMsg::text("x".repeat(2000))).await.unwrap();
    let code = loop {
        match tokio::time::timeout(STUCK, c.next()).await.expect("stuck") {
            Some(Ok(TMsg::Close(f))) => break f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(code, Some(1009));
}

#[tokio::test]
async fn rate_limit_answers_errors_then_closes_1008() {
    let rl = RateLimit::new(3.0, 1e6)
        .max_violations(2)
        .violation_window(Duration::from_secs(3600));
    let hub = Hub::new(hub_config().rate_limit(rl));
    let addr = server(hub.clone(), 1024).await;
    let mut c = client(&addr, "dave").await;
    for _ in 0..6 {
        send(&mut c, json!({"type":"ping"})).await;
    }
    // 3 within the burst, 2 rejected with errors, the 6th closes.
    let mut pongs = 0;
    let mut errors = 0;
    let code = loop {
        match tokio::time::timeout(STUCK, c.next()).await.expect("stuck") {
            Some(Ok(TMsg::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                match v["type"].as_str().unwrap() {
                    "pong" => pongs += 1,
                    "error" => errors += 1,
                    k => panic!("{k}"),
                }
            }
            Some(Ok(TMsg::Close(f))) => break f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!((pongs, errors, code), (3, 2, Some(1008)));
    let s = hub.stats();
    assert_eq!((s.rate_limited, s.rate_limit_closes), (3, 1));
}

#[tokio::test]
async fn two_hubs_on_one_bus_share_rooms_without_double_delivery() {
    let store = std::sync::Arc::new(MemoryStore::default());
    let bus = std::sync::Arc::new(MemoryBus::new());
    let a = Hub::with_bus(hub_config(), "a", store.clone(), bus.clone())
        .await
        .unwrap();
    let b = Hub::with_bus(hub_config(), "b", store, bus).await.unwrap();
    let (addr_a, addr_b) = (server(a.clone(), 4096).await, server(b.clone(), 4096).await);
    let mut on_a = client(&addr_a, "ann").await;
    let mut on_b = client(&addr_b, "ben").await;
    send(&mut on_a, json!({"type":"join","room":"r"})).await;
    recv_kind(&mut on_a, "presence").await;
    send(&mut on_b, json!({"type":"join","room":"r"})).await;
    recv_kind(&mut on_b, "presence").await;
    // ann learns of ben across instances.
    let j = recv(&mut on_a).await;
    assert_eq!(
        (j["type"].as_str(), j["from"].as_str()),
        (Some("join"), Some("ben"))
    );
    for i in 0..50 {
        send(&mut on_a, json!({"type":"message","room":"r","content":i})).await;
    }
    for i in 0..50 {
        assert_eq!(recv(&mut on_b).await["content"], i);
        // The sender's own instance delivers it once, not again from the bus.
        assert_eq!(recv(&mut on_a).await["content"], i);
    }
    send(
        &mut on_b,
        json!({"type":"message","room":"r","content":"end"}),
    )
    .await;
    assert_eq!(recv(&mut on_a).await["content"], "end");
    // b got a's 50 messages; a got ben's join and "end".
    assert_eq!(b.stats().bus_received, 50);
    assert_eq!(a.stats().bus_received, 2);
}

#[tokio::test]
async fn rooms_per_connection_are_capped_and_bad_room_names_refused() {
    let hub = Hub::new(hub_config().max_rooms_per_conn(2));
    let addr = server(hub.clone(), 4096).await;
    let mut c = client(&addr, "eve").await;
    for r in ["a", "b"] {
        send(&mut c, json!({"type":"join","room":r})).await;
        assert_eq!(recv(&mut c).await["type"], "presence");
    }
    send(&mut c, json!({"type":"join","room":"c"})).await;
    let e = recv(&mut c).await;
    assert_eq!(e["content"], "already in 2 rooms");
    send(&mut c, json!({"type":"leave","room":"a"})).await;
    send(&mut c, json!({"type":"join","room":"bad room"})).await;
    let e = recv(&mut c).await;
    assert!(
        e["content"].as_str().unwrap().starts_with("invalid room"),
        "{e}"
    );
    send(&mut c, json!({"type":"join","room":"c"})).await;
    assert_eq!(recv(&mut c).await["type"], "presence");
    assert_eq!(hub.rooms_of(hub.connections_of("eve")[0]), ["b", "c"]);
}
