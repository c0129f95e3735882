//! The hub on one node, with real clients over 127.0.0.1: rtwire's client
//! and tokio-tungstenite. Waiting is event-driven: a client reads until
//! the message it expects arrives; timeouts only guard against a stuck run.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rtwire::hub::{Hub, HubConfig, SlowPolicy};
use rtwire::ws::{read_request_head, Config, Conn, HeadAndRest, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message as TMsg;

const STUCK: Duration = Duration::from_secs(30);

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A server: `/?user=U&room=R[&except=1]` registers the connection as U,
/// joins R, and broadcasts every text message it sends to R (except to
/// itself with `except=1`).
async fn server(hub: Hub) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let hub = hub.clone();
            tokio::spawn(async move {
                let config = Config::default();
                let mut tcp = tcp;
                let Ok(HeadAndRest { head, rest }) = read_request_head(&mut tcp, &config).await
                else {
                    return;
                };
                let user = head.query_param("user").unwrap_or_default().to_string();
                let room = head.query_param("room").unwrap_or_default().to_string();
                let except = head.query_param("except").is_some();
                let Ok((conn, _)) = Conn::accept_head(tcp, head, rest, &config).await else {
                    return;
                };
                let (mut read, write) = conn.split();
                let mut reg = hub.register(write, &user, Default::default());
                hub.join(reg.id(), &room).await.unwrap();
                // Tell the client it is in (so it never races a broadcast).
                hub.send(reg.id(), &Message::text("joined")).unwrap();
                loop {
                    tokio::select! {
                        m = read.read_message() => match m {
                            Ok(Some(m)) => {
                                let ex = except.then_some(reg.id());
                                hub.broadcast(&room, &m, ex).await.unwrap();
                            }
                            _ => break,
                        },
                        _ = reg.closed() => break,
                    }
                }
                reg.unregister().await;
            });
        }
    });
    addr
}

async fn tung(addr: &str, q: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/?{q}"))
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await, "joined");
    ws
}

async fn next_text(ws: &mut Ws) -> String {
    loop {
        let m = tokio::time::timeout(STUCK, ws.next())
            .await
            .expect("stuck")
            .expect("open")
            .unwrap();
        if let TMsg::Text(t) = m {
            return t.to_string();
        }
    }
}

/// The default hub, or one with batched fan-out.
fn cfg(batched: bool) -> HubConfig {
    HubConfig::default().batch_broadcasts(batched)
}

#[tokio::test]
async fn broadcast_reaches_exactly_the_room_in_order_per_sender_and_except_works() {
    room_order_and_except(false).await
}

#[tokio::test]
async fn batched_broadcast_reaches_exactly_the_room_in_order_per_sender_and_except_works() {
    room_order_and_except(true).await
}

async fn room_order_and_except(batched: bool) {
    let hub = Hub::new(cfg(batched));
    let addr = server(hub.clone()).await;
    let mut a = tung(&addr, "user=a&room=r1&except=1").await;
    let mut b = tung(&addr, "user=b&room=r1").await;
    // An rtwire client in the room too.
    let tcp = TcpStream::connect(&addr).await.unwrap();
    let (mut c, _) = Conn::connect(
        tcp,
        &format!("ws://{addr}/?user=c&room=r1"),
        &Config::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        c.read_message().await.unwrap().unwrap(),
        Message::text("joined")
    );
    let mut other = tung(&addr, "user=d&room=r2").await;

    for i in 0..200 {
        a.send(TMsg::text(format!("a{i}"))).await.unwrap();
    }
    // b and c get a's messages in order; a (except=1) gets none of its own.
    for i in 0..200 {
        assert_eq!(next_text(&mut b).await, format!("a{i}"));
        match c.read_message().await.unwrap().unwrap() {
            Message::Text(t) => assert_eq!(t.as_str(), format!("a{i}")),
            m => panic!("{m:?}"),
        }
    }
    // A marker from b: a receives it as its next message (so nothing of
    // its own came before), and r2 gets nothing of r1.
    b.send(TMsg::text("from-b")).await.unwrap();
    assert_eq!(next_text(&mut a).await, "from-b");
    other.send(TMsg::text("r2-only")).await.unwrap();
    assert_eq!(next_text(&mut other).await, "r2-only");
    b.send(TMsg::text("b2")).await.unwrap();
    assert_eq!(next_text(&mut a).await, "b2");
    let s = hub.stats();
    assert_eq!(s.connections, 4);
    assert_eq!(s.rooms, 2);
    assert!(s.deliveries >= 400, "{s:?}");
}

#[tokio::test]
async fn leave_stops_delivery() {
    leave_stops(false).await
}

#[tokio::test]
async fn batched_leave_stops_delivery() {
    leave_stops(true).await
}

async fn leave_stops(batched: bool) {
    let hub = Hub::new(cfg(batched));
    let addr = server(hub.clone()).await;
    let mut a = tung(&addr, "user=a&room=r").await;
    let mut b = tung(&addr, "user=b&room=r").await;
    let ids = hub.room_size("r");
    assert_eq!(ids, 2);
    a.send(TMsg::text("one")).await.unwrap();
    assert_eq!(next_text(&mut b).await, "one");
    assert_eq!(next_text(&mut a).await, "one");
    // b's connection leaves the room: find it by user.
    let b_id = hub.connections_of("b")[0];
    hub.leave(b_id, "r").await.unwrap();
    assert_eq!(hub.room_size("r"), 1);
    a.send(TMsg::text("two")).await.unwrap();
    assert_eq!(next_text(&mut a).await, "two");
    // b gets a direct message next, not "two".
    hub.send(b_id, &Message::text("direct")).unwrap();
    assert_eq!(next_text(&mut b).await, "direct");
}

/// A client that completes the handshake and then never reads, with a
/// small receive buffer so the stall reaches the hub quickly.
async fn stalled_client(addr: &str, q: &str) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut tcp = sock.connect(addr.parse().unwrap()).await.unwrap();
    let req = format!(
        "GET /?{q} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    tcp
}

async fn slow_consumer(policy: SlowPolicy, batched: bool) -> (Hub, TcpStream, Vec<Ws>) {
    const MAX: usize = 64 * 1024;
    const N: usize = 10_000;
    let hub = Hub::new(
        cfg(batched)
            .max_queue_bytes(MAX)
            .policy(policy)
            .close_grace(Duration::from_millis(100)),
    );
    let addr = server(hub.clone()).await;
    let slow = stalled_client(&addr, "user=slow&room=r").await;
    let mut fast = Vec::new();
    for i in 0..3 {
        fast.push(tung(&addr, &format!("user=f{i}&room=r")).await);
    }
    let payload = Arc::new("x".repeat(1000));
    let mut max_queued = 0;
    // Paced in windows the fast readers confirm, so they never overflow.
    const WINDOW: usize = 20;
    for w in 0..N / WINDOW {
        for i in 0..WINDOW {
            let n = w * WINDOW + i;
            let m = Message::text(format!("{n:05}{payload}"));
            hub.broadcast("r", &m, None).await.unwrap();
        }
        max_queued = max_queued.max(hub.stats().queued_bytes);
        for f in fast.iter_mut() {
            for i in 0..WINDOW {
                let t = next_text(f).await;
                assert_eq!(&t[..5], format!("{:05}", w * WINDOW + i));
            }
        }
    }
    // Bounded: never more than the per-connection cap for each of the 4
    // (plus, batched, at most one window not yet delivered).
    let pending = if batched { WINDOW * 1010 } else { 0 };
    assert!(max_queued as usize <= 4 * MAX + pending, "{max_queued}");
    (hub, slow, fast)
}

#[tokio::test]
async fn slow_consumer_drop_newest_bounds_memory_and_others_get_everything() {
    drop_newest(false).await
}

#[tokio::test]
async fn batched_slow_consumer_drop_newest_bounds_memory_and_others_get_everything() {
    drop_newest(true).await
}

async fn drop_newest(batched: bool) {
    let (hub, slow, _fast) = slow_consumer(SlowPolicy::DropNewest, batched).await;
    let s = hub.stats();
    assert!(s.drops > 0, "the stalled client never overflowed: {s:?}");
    assert_eq!(s.slow_closes, 0);
    assert_eq!(s.connections, 4);
    // The stalled client reads again: every message it got plus the
    // "missed" notice it gets once caught up account for all 10,000.
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        tokio_tungstenite::MaybeTlsStream::Plain(slow),
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    let mut got = 0u64;
    let missed = loop {
        let t = next_text(&mut ws).await;
        if t == "joined" {
            continue;
        }
        if let Some(n) = t.strip_prefix("{\"type\":\"missed\",\"content\":") {
            break n.trim_end_matches('}').parse::<u64>().unwrap();
        }
        got += 1;
    };
    assert_eq!(got + missed, 10_000);
    assert_eq!(missed, hub.stats().drops);
}

#[tokio::test]
async fn slow_consumer_close_policy_closes_only_the_stalled_client() {
    close_policy(false).await
}

#[tokio::test]
async fn batched_slow_consumer_close_policy_closes_only_the_stalled_client() {
    close_policy(true).await
}

async fn close_policy(batched: bool) {
    let (hub, mut slow, _fast) = slow_consumer(SlowPolicy::Close, batched).await;
    let s = hub.stats();
    assert_eq!(s.slow_closes, 1, "{s:?}");
    assert_eq!(s.drops, 0);
    // The stalled client reads again: what the socket held, then the end
    // (the hub dropped the connection, which it does after unregistering).
    let mut sink = Vec::new();
    tokio::time::timeout(STUCK, slow.read_to_end(&mut sink))
        .await
        .expect("the slow consumer was not dropped")
        .ok();
    assert_eq!(hub.stats().connections, 3);
    assert_eq!(hub.connections_of("slow"), vec![]);
}

/// Batched fan-out keeps each connection's order across broadcasts from
/// several senders (each excepting itself), `broadcast_all` and direct
/// sends made while broadcasts are still queued, and delivers exactly what
/// each member should get.
#[tokio::test]
async fn batched_fan_out_keeps_order_across_broadcasts_excepts_and_sends() {
    let hub = Hub::new(cfg(true));
    let addr = server(hub.clone()).await;
    let mut a = tung(&addr, "user=a&room=r").await;
    let mut b = tung(&addr, "user=b&room=r").await;
    let mut c = tung(&addr, "user=c&room=r").await;
    let mut d = tung(&addr, "user=d&room=other").await;
    let id = |u: &str| hub.connections_of(u)[0];
    let (ia, ib, ic) = (id("a"), id("b"), id("c"));
    // What each of a, b, c, d must receive, in order.
    let mut want: [Vec<String>; 4] = Default::default();
    for i in 0..3000 {
        let m = format!("m{i}");
        match i % 10 {
            // a broadcast from a, then from b: not to themselves.
            0..=3 => {
                hub.broadcast("r", &Message::text(m.clone()), Some(ia))
                    .await
                    .unwrap();
                want[1].push(m.clone());
                want[2].push(m);
            }
            4..=6 => {
                hub.broadcast("r", &Message::text(m.clone()), Some(ib))
                    .await
                    .unwrap();
                want[0].push(m.clone());
                want[2].push(m);
            }
            7 => {
                hub.broadcast("r", &Message::text(m.clone()), None)
                    .await
                    .unwrap();
                for w in &mut want[..3] {
                    w.push(m.clone());
                }
            }
            8 => {
                hub.send(ic, &Message::text(m.clone())).unwrap();
                want[2].push(m);
            }
            _ => {
                hub.broadcast_all(&Message::text(m.clone()), Some(ia)).await;
                for w in &mut want[1..] {
                    w.push(m.clone());
                }
            }
        }
        if i % 500 == 0 {
            // Let the delivery task run between bursts too.
            tokio::task::yield_now().await;
        }
    }
    // A marker for each, sent last: everything before it must have come.
    for u in [ia, ib, ic, id("d")] {
        hub.send(u, &Message::text("end")).unwrap();
    }
    for (ws, want) in [&mut a, &mut b, &mut c, &mut d].into_iter().zip(want) {
        let mut got = Vec::new();
        loop {
            let t = next_text(ws).await;
            if t == "end" {
                break;
            }
            got.push(t);
        }
        assert_eq!(got.len(), want.len());
        assert!(got == want, "order or content differs");
    }
    let s = hub.stats();
    assert_eq!(s.drops, 0, "{s:?}");
    assert_eq!(s.queued_bytes, 0, "{s:?}");
}

/// A burst bigger than a member's queue bound: the member gets what fits
/// and a "missed" notice for the rest, in both modes (batched, the burst
/// is one batch: it must not be refused whole by an idle member).
async fn burst_over_the_bound(batched: bool) {
    const MAX: usize = 8 * 1024;
    const N: usize = 1000;
    let hub = Hub::new(cfg(batched).max_queue_bytes(MAX));
    let addr = server(hub.clone()).await;
    let mut a = tung(&addr, "user=a&room=r").await;
    // On this (current-thread) runtime no writer runs during the loop.
    for i in 0..N {
        let m = Message::text(format!("{i:04}{}", "y".repeat(96)));
        hub.broadcast("r", &m, None).await.unwrap();
    }
    let mut got = 0u64;
    let missed = loop {
        let t = next_text(&mut a).await;
        if let Some(n) = t.strip_prefix("{\"type\":\"missed\",\"content\":") {
            break n.trim_end_matches('}').parse::<u64>().unwrap();
        }
        assert_eq!(&t[..4], format!("{got:04}"), "in order, oldest first");
        got += 1;
    };
    assert!(got as usize >= MAX / 2 / 102, "only {got} of {N} fitted");
    assert_eq!(got + missed, N as u64);
    assert_eq!(hub.stats().drops, missed);
}

#[tokio::test]
async fn a_burst_over_the_bound_keeps_what_fits() {
    burst_over_the_bound(false).await
}

#[tokio::test]
async fn batched_a_burst_over_the_bound_keeps_what_fits() {
    burst_over_the_bound(true).await
}

/// `close` goes after what was queued before it, in the hub's queue too.
async fn close_after_queued(batched: bool) {
    let hub = Hub::new(cfg(batched));
    let addr = server(hub.clone()).await;
    let mut a = tung(&addr, "user=a&room=r").await;
    let id = hub.connections_of("a")[0];
    for i in 0..50 {
        hub.broadcast("r", &Message::text(format!("b{i}")), None)
            .await
            .unwrap();
    }
    hub.send(id, &Message::text("last words")).unwrap();
    hub.close(id, rtwire::ws::CloseCode::NORMAL, "bye").unwrap();
    for i in 0..50 {
        assert_eq!(next_text(&mut a).await, format!("b{i}"));
    }
    assert_eq!(next_text(&mut a).await, "last words");
    let end = tokio::time::timeout(STUCK, a.next()).await.expect("stuck");
    match end {
        Some(Ok(TMsg::Close(Some(f)))) => assert_eq!(u16::from(f.code), 1000),
        other => panic!("expected the close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn close_goes_after_what_was_queued() {
    close_after_queued(false).await
}

#[tokio::test]
async fn batched_close_goes_after_what_was_queued() {
    close_after_queued(true).await
}

/// `send_encoded` refuses frames the connection cannot take, in both
/// modes, before anything reaches the wire.
#[tokio::test]
async fn send_encoded_refuses_reserved_bits() {
    for batched in [false, true] {
        let hub = Hub::new(cfg(batched));
        let addr = server(hub.clone()).await;
        let mut a = tung(&addr, "user=a&room=r").await;
        let id = hub.connections_of("a")[0];
        // RSV2 set; then RSV1 to a connection without permessage-deflate.
        for bad in [[0xa1u8, 1, b'x'], [0xc1, 1, b'x']] {
            let r = hub.send_encoded(id, &bytes::Bytes::copy_from_slice(&bad));
            assert!(
                matches!(r, Err(rtwire::hub::HubError::InvalidFrames(_))),
                "{r:?}"
            );
        }
        let good = rtwire::hub::encode(&Message::text("fine"));
        hub.send_encoded(id, &good).unwrap();
        assert_eq!(next_text(&mut a).await, "fine");
    }
}
