//! Pins the contract of the `server` example's `/sse` route (and checks
//! `/clock`) over loopback, with the crate's client.

#[path = "../examples/server/sse_routes.rs"]
mod sse_routes;

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rtwire::http::{HeadParser, Limits};
use rtwire::sse::{ClientConfig, MessageEvent, SseClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(10);

/// A tiny router in front of the routes, like the example's `main`.
async fn start(heartbeat: Option<Duration>) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let clock = sse_routes::Clock::with_period(Duration::from_millis(10));
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = l.accept().await.unwrap();
            let clock = Arc::clone(&clock);
            tokio::spawn(async move {
                let mut parser = HeadParser::new(Limits::default());
                let mut buf = BytesMut::new();
                let head = loop {
                    if let Some(h) = parser.parse_request(&mut buf).unwrap() {
                        break h;
                    }
                    if sock.read_buf(&mut buf).await.unwrap() == 0 {
                        return;
                    }
                };
                let r = match head.path() {
                    "/sse" if heartbeat.is_some() => {
                        sse_routes::serve_sse_with(sock, head, heartbeat).await
                    }
                    "/sse" => sse_routes::serve_sse(sock, head).await,
                    "/clock" => sse_routes::serve_clock(sock, head, clock).await,
                    _ => Ok(()),
                };
                r.unwrap();
            });
        }
    });
    addr
}

fn client_config() -> ClientConfig {
    ClientConfig::new().read_timeout(Some(LIMIT))
}

async fn open(addr: std::net::SocketAddr, path: &str, id: Option<&str>) -> SseClient<TcpStream> {
    let io = TcpStream::connect(addr).await.unwrap();
    SseClient::open(io, "localhost", path, id, client_config())
        .await
        .unwrap()
}

fn summary(ev: &MessageEvent) -> (String, String, String) {
    (
        ev.last_event_id().to_owned(),
        ev.event_type().to_owned(),
        ev.data().to_owned(),
    )
}

fn expected(ids: std::ops::RangeInclusive<usize>) -> Vec<(String, String, String)> {
    let all = [
        ("1", "greeting", "hello"),
        ("2", "message", "line one\nline two"),
        ("3", "update", "héllo wörld ✓ 🚀"),
        ("4", "update", "alpha\n\nomega"),
        ("5", "done", "bye"),
    ];
    all[ids.start() - 1..*ids.end()]
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[tokio::test]
async fn sse_without_last_event_id_sends_1_to_3_then_ends() {
    let addr = start(None).await;
    for id in [None, Some("abc"), Some("-7"), Some("0")] {
        let mut c = open(addr, "/sse", id).await;
        let mut got = Vec::new();
        while let Some(ev) = c.next_event().await.unwrap() {
            got.push(summary(&ev));
        }
        assert_eq!(got, expected(1..=3), "Last-Event-ID {id:?}");
        assert_eq!(c.retry(), Some(500));
    }
}

#[tokio::test]
async fn sse_resumes_after_k_below_3() {
    let addr = start(None).await;
    let mut c = open(addr, "/sse", Some("1")).await;
    let mut got = Vec::new();
    while let Some(ev) = c.next_event().await.unwrap() {
        got.push(summary(&ev));
    }
    assert_eq!(got, expected(2..=3));
}

#[tokio::test]
async fn sse_with_k_3_sends_4_and_5_and_stays_open() {
    let addr = start(Some(Duration::from_millis(10))).await;
    for (k, first) in [("3", 4), ("4", 5)] {
        let mut c = open(addr, "/sse", Some(k)).await;
        let mut got = Vec::new();
        for _ in first..=5 {
            got.push(summary(&c.next_event().await.unwrap().unwrap()));
        }
        assert_eq!(got, expected(first..=5));
        assert_eq!(c.retry(), Some(500));
    }
    // On the wire: the data lines, and heartbeats (not the last chunk)
    // after event 5.
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(b"GET /sse HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 3\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !String::from_utf8_lossy(&raw).contains("data: bye\n\n\r\n0000000c\r\n: keepalive\n") {
        assert!(tokio::time::Instant::now() < deadline);
        let n = tokio::time::timeout(LIMIT, sock.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(n, 0, "the response ended");
        raw.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("retry: 500\n"));
    assert!(text.contains("id: 4\nevent: update\ndata: alpha\ndata: \ndata: omega\n\n"));
    assert!(!text.contains("\r\n0\r\n\r\n"));
}

#[tokio::test]
async fn sse_line_breaks_on_the_wire() {
    let addr = start(None).await;
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(b"GET /sse HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(LIMIT, sock.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(text.contains("id: 2\ndata: line one\ndata: line two\n\n"));
    assert!(text.ends_with("\r\n0\r\n\r\n"));
}

#[tokio::test]
async fn clock_follows_live_and_resumes() {
    let addr = start(None).await;
    let mut c = open(addr, "/clock", None).await;
    let first = c.next_event().await.unwrap().unwrap();
    assert_eq!(first.event_type(), "tick");
    assert!(first.data().ends_with(" UTC"));
    let mut id: u64 = first.last_event_id().parse().unwrap();
    for _ in 0..3 {
        let ev = c.next_event().await.unwrap().unwrap();
        let next: u64 = ev.last_event_id().parse().unwrap();
        assert_eq!(next, id + 1, "no tick lost or repeated");
        id = next;
    }
    drop(c);
    // Resume: the ticks after `id`, with none missing.
    let mut c = open(addr, "/clock", Some(&id.to_string())).await;
    let ev = c.next_event().await.unwrap().unwrap();
    assert_eq!(ev.last_event_id(), (id + 1).to_string());
}

#[tokio::test]
async fn clock_start_publishes_a_tick_at_once() {
    let clock = sse_routes::Clock::start();
    let mut live = clock.store().subscribe("clock").unwrap();
    if clock.store().latest_id("clock") == 0 {
        tokio::time::timeout(LIMIT, live.changed())
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(clock.store().latest_id("clock"), 1);
}
