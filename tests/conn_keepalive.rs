//! Keepalive over real loopback TCP with small real durations (tokio's
//! paused clock would auto-advance while the sockets wait). Durations are
//! only lower/upper bounds on what the server does by itself.

mod conn_support;

use std::time::{Duration, Instant};

use conn_support::*;
use rtwire::error::TimeoutKind;
use rtwire::ws::{CloseCode, Config, Frame, Message, OpCode};
use rtwire::Error;

const INTERVAL: Duration = Duration::from_millis(50);
const TIMEOUT: Duration = Duration::from_millis(300);

/// Reads frames without answering them until the server's close frame;
/// returns the pings seen before it and the close code.
async fn pings_until_close(c: &mut RawClient) -> (u32, u16) {
    let mut pings = 0;
    loop {
        let f = c.frame().await;
        match f.opcode {
            OpCode::Ping => pings += 1,
            OpCode::Close => return (pings, u16::from_be_bytes([f.payload[0], f.payload[1]])),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn keepalive_config() -> Config {
    Config::builder()
        .keepalive(INTERVAL, TIMEOUT)
        .close_timeout(Duration::from_secs(2))
        .build()
}

#[tokio::test]
async fn answering_peer_stays_alive_across_many_intervals() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &keepalive_config()).await;
        let start = Instant::now();
        let r = conn.read_message().await;
        (r, conn.peer_close_frame().map(|c| c.code), start.elapsed())
    });
    let mut c = RawClient::connect(addr, "/", "").await;
    let mut pings = 0;
    while pings < 12 {
        let f = c.frame().await;
        assert_eq!(f.opcode, OpCode::Ping, "{f:?}");
        pings += 1;
        c.send(Frame::pong(f.payload)).await;
    }
    c.send(Frame::close(CloseCode::NORMAL, "")).await;
    assert_eq!(c.r.expect_close().await, Some(1000));
    c.r.expect_eof_within(Duration::from_secs(2)).await;
    let (r, code, alive) = bounded("server", server).await.unwrap();
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert_eq!(code, Some(CloseCode::NORMAL));
    // Alive well past the keepalive timeout thanks to the pongs.
    assert!(alive > 2 * TIMEOUT, "only {alive:?}");
}

#[tokio::test]
async fn silent_peer_gets_1011_and_keepalive_timeout() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &keepalive_config()).await;
        let start = Instant::now();
        let r = conn.read_message().await;
        (r, start.elapsed())
    });
    let mut c = RawClient::connect(addr, "/", "").await;
    // Reads everything, answers nothing.
    let (pings, code) = pings_until_close(&mut c).await;
    assert_eq!(code, 1011);
    assert!(pings >= 2, "only {pings} pings before giving up");
    c.r.expect_eof_within(Duration::from_secs(2)).await;
    let (r, elapsed) = bounded("server", server).await.unwrap();
    assert!(
        matches!(r, Err(Error::Timeout(TimeoutKind::Keepalive))),
        "{r:?}"
    );
    assert!(
        elapsed >= TIMEOUT - Duration::from_millis(20) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn split_read_half_runs_keepalive_too() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let conn = accept(&l, &keepalive_config()).await;
        let (mut rh, _wh) = conn.split();
        rh.read_message().await
    });
    let mut c = RawClient::connect(addr, "/", "").await;
    let (pings, code) = pings_until_close(&mut c).await;
    assert_eq!(code, 1011);
    assert!(pings >= 2, "only {pings} pings");
    let r = bounded("server", server).await.unwrap();
    assert!(
        matches!(r, Err(Error::Timeout(TimeoutKind::Keepalive))),
        "{r:?}"
    );
}

#[tokio::test]
async fn keepalive_message_replaces_pings_and_any_input_counts() {
    let (l, addr) = listener().await;
    let config = Config::builder()
        .keepalive_message(INTERVAL, TIMEOUT, Message::text("hb"))
        .build();
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &config).await;
        let mut acks = 0;
        while let Some(m) = conn.read_message().await.unwrap() {
            assert_eq!(m, Message::text("ack"));
            acks += 1;
        }
        acks
    });
    let mut c = RawClient::connect(addr, "/", "").await;
    for _ in 0..10 {
        let f = c.frame().await;
        assert_eq!((f.opcode, &f.payload[..]), (OpCode::Text, &b"hb"[..]));
        c.send(Frame::text("ack")).await;
    }
    c.send(Frame::close(CloseCode::NORMAL, "")).await;
    assert_eq!(c.r.expect_close().await, Some(1000));
    assert_eq!(bounded("server", server).await.unwrap(), 10);
}
