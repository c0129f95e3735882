//! Keepalive over real loopback TCP, on tokio's paused clock: time moves
//! only when the test lets it (a `sleep_until` that auto-advances to the
//! next timer, the server's keepalive timers included), and every read of
//! what the server sent in reaction is done with the clock held still
//! (`hold_clock`), so the loopback I/O hop cannot let auto-advance skip
//! ahead. The timeline is therefore exact: each ping, heartbeat and close
//! is checked to come at its instant, with nothing just before it.

mod conn_support;

use std::time::Duration;

use conn_support::*;
use rtwire::error::TimeoutKind;
use rtwire::ws::{CloseCode, Config, Frame, Message, OpCode};
use rtwire::Error;
use tokio::time::{sleep_until, Instant};

const INTERVAL: Duration = Duration::from_millis(50);
const TIMEOUT: Duration = Duration::from_millis(300);
const JUST_BEFORE: Duration = Duration::from_millis(1);

fn keepalive_config() -> Config {
    Config::builder()
        .keepalive(INTERVAL, TIMEOUT)
        .close_timeout(Duration::from_secs(2))
        .build()
}

/// Connects with the clock held, so the server's keepalive starts at the
/// returned instant.
async fn connect(addr: std::net::SocketAddr) -> (RawClient, Instant) {
    let c = hold_clock(RawClient::connect(addr, "/", "")).await;
    hold_clock(settle()).await;
    (c, Instant::now())
}

/// Asserts that nothing has arrived just before `at`, then lets time pass
/// to `at` and returns the frame the server sends then (read with the clock
/// held: it must come at `at` exactly).
async fn frame_at(c: &mut RawClient, at: Instant) -> Frame {
    sleep_until(at - JUST_BEFORE).await;
    hold_clock(settle()).await;
    match c.r.try_frame() {
        Ok(None) => {}
        other => panic!("{other:?} arrived before its time"),
    }
    sleep_until(at).await;
    hold_clock(c.frame()).await
}

/// Reads without answering until the server's close frame, checking that
/// each frame comes exactly one interval after the previous one (the peer
/// stays quiet); returns the pings seen, the close code and when it came.
async fn silent_until_close(c: &mut RawClient, t0: Instant) -> (u32, u16, Duration) {
    let mut pings = 0;
    let mut at = t0;
    loop {
        at += INTERVAL;
        let f = frame_at(c, at).await;
        match f.opcode {
            OpCode::Ping => pings += 1,
            OpCode::Close => {
                let code = u16::from_be_bytes([f.payload[0], f.payload[1]]);
                return (pings, code, at - t0);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn answering_peer_stays_alive_across_many_intervals() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &keepalive_config()).await;
        let start = Instant::now();
        let r = conn.read_message().await;
        (r, conn.peer_close_frame().map(|c| c.code), start.elapsed())
    });
    let (mut c, t0) = connect(addr).await;
    let mut at = t0;
    for _ in 0..12 {
        // Each pong resets the quiet time: the next ping is one interval
        // after it.
        at += INTERVAL;
        let f = frame_at(&mut c, at).await;
        assert_eq!(f.opcode, OpCode::Ping, "{f:?}");
        c.send(Frame::pong(f.payload)).await;
        hold_clock(settle()).await;
        assert!(!server.is_finished(), "server gave up at {:?}", at - t0);
    }
    c.send(Frame::close(CloseCode::NORMAL, "")).await;
    assert_eq!(hold_clock(c.r.expect_close()).await, Some(1000));
    hold_clock(c.r.expect_eof_within(BOUND)).await;
    let (r, code, alive) = bounded("server", server).await.unwrap();
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert_eq!(code, Some(CloseCode::NORMAL));
    // Alive well past the keepalive timeout thanks to the pongs.
    assert_eq!(alive, 12 * INTERVAL);
    assert!(alive >= 2 * TIMEOUT, "only {alive:?}");
}

#[tokio::test(start_paused = true)]
async fn silent_peer_gets_1011_and_keepalive_timeout() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &keepalive_config()).await;
        let start = Instant::now();
        let r = conn.read_message().await;
        (r, start.elapsed())
    });
    let (mut c, t0) = connect(addr).await;
    // Reads everything, answers nothing: a ping every interval, and the
    // 1011 close at the timeout, not before (checked by `frame_at`).
    let (pings, code, closed_at) = silent_until_close(&mut c, t0).await;
    assert_eq!(code, 1011);
    assert_eq!(closed_at, TIMEOUT);
    assert_eq!(pings, 5, "a ping every {INTERVAL:?} before {TIMEOUT:?}");
    hold_clock(c.r.expect_eof_within(BOUND)).await;
    let (r, elapsed) = bounded("server", server).await.unwrap();
    assert!(
        matches!(r, Err(Error::Timeout(TimeoutKind::Keepalive))),
        "{r:?}"
    );
    assert_eq!(elapsed, TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn split_read_half_runs_keepalive_too() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let conn = accept(&l, &keepalive_config()).await;
        let (mut rh, _wh) = conn.split();
        rh.read_message().await
    });
    let (mut c, t0) = connect(addr).await;
    let (pings, code, closed_at) = silent_until_close(&mut c, t0).await;
    assert_eq!(code, 1011);
    assert_eq!(closed_at, TIMEOUT);
    assert_eq!(pings, 5);
    let r = bounded("server", server).await.unwrap();
    assert!(
        matches!(r, Err(Error::Timeout(TimeoutKind::Keepalive))),
        "{r:?}"
    );
}

#[tokio::test(start_paused = true)]
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
    let (mut c, t0) = connect(addr).await;
    let mut at = t0;
    // Ten intervals, longer than the timeout: the data messages keep the
    // connection alive, no pong needed.
    for _ in 0..10 {
        at += INTERVAL;
        let f = frame_at(&mut c, at).await;
        assert_eq!((f.opcode, &f.payload[..]), (OpCode::Text, &b"hb"[..]));
        c.send(Frame::text("ack")).await;
        hold_clock(settle()).await;
    }
    assert!(at - t0 > TIMEOUT);
    c.send(Frame::close(CloseCode::NORMAL, "")).await;
    assert_eq!(hold_clock(c.r.expect_close()).await, Some(1000));
    assert_eq!(bounded("server", server).await.unwrap(), 10);
}
