//! Hostile peers over real loopback TCP: each gets the right close code or
//! HTTP status, the server gets a typed error, nothing panics, and memory
//! stays bounded.
//!
//! The tests about timeouts (handshake, write) and about failing fast run
//! on tokio's paused clock: the timeout is asserted on paused time, which
//! only moves when every task waits (auto-advance to the next timer), so a
//! loaded machine cannot stretch or shrink it. Reads that must complete with
//! no timer firing are done with the clock held (`hold_clock`).
//!
//! Memory is checked with a global allocator that records, per thread, the
//! largest single allocation: every test runs on a current-thread runtime,
//! so server and peer allocations land on the test's thread. A server that
//! trusted a declared length, or queued a reply per flooded frame, would
//! show up as one large allocation.

mod conn_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use conn_support::*;
use rtwire::error::TimeoutKind;
use rtwire::upgrade::{OriginPolicy, Rejection};
use rtwire::ws::handshake::ServerConfig;
use rtwire::ws::{CloseCode, Config, Conn, Frame, Message, OpCode};
use rtwire::{Error, HandshakeError, ProtocolError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

struct MaxAlloc;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| {
        if size > l.get() {
            l.set(size)
        }
    });
}

// SAFETY: forwards every call unchanged to the system allocator; the only
// addition is recording a size in a const-initialized thread-local `Cell`
// (no allocation, no destructor).
unsafe impl GlobalAlloc for MaxAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: MaxAlloc = MaxAlloc;

/// Resets the largest-allocation record of this thread.
fn reset_largest() {
    LARGEST.with(|l| l.set(0));
}

fn largest() -> usize {
    LARGEST.with(|l| l.get())
}

const MIB: usize = 1 << 20;
const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

fn quick_close() -> Config {
    Config::builder()
        .close_timeout(Duration::from_secs(2))
        .build()
}

/// Fail fast: the close must come with the paused clock held, i.e. without
/// any timer firing (a server that waited for the declared bytes, or for a
/// timeout, would never answer and trip the bound).
#[tokio::test(start_paused = true)]
async fn huge_declared_lengths_fail_fast_without_allocating() {
    let cases: [(u64, u16); 3] = [
        (1 << 62, 1009),
        ((16 << 20) + 1, 1009), // one over the default 16 MiB frame limit
        (1 << 63, 1002),        // the top bit must be 0
    ];
    for (len, code) in cases {
        let (l, addr) = listener().await;
        let server = tokio::spawn(async move {
            let mut conn = accept(&l, &quick_close()).await;
            conn.read_frame().await
        });
        let mut c = hold_clock(RawClient::connect(addr, "/", "")).await;
        reset_largest();
        let mut bytes = raw_header(true, 0x2, len, KEY);
        bytes.extend_from_slice(&[0u8; 100]);
        c.w.send_raw(&bytes).await;
        assert_eq!(
            hold_clock(c.r.expect_close()).await,
            Some(code),
            "declared length {len}"
        );
        hold_clock(c.r.expect_eof_within(BOUND)).await;
        c.w.tcp.shutdown().await.unwrap();
        let err = hold_clock(bounded("server", server))
            .await
            .unwrap()
            .unwrap_err();
        match (code, err) {
            (1009, Error::Protocol(ProtocolError::FrameTooLarge { size, .. })) => {
                assert_eq!(size, len)
            }
            (1002, Error::Protocol(ProtocolError::LengthOverflow)) => {}
            (_, e) => panic!("declared length {len}: unexpected error {e:?}"),
        }
        assert!(
            largest() < MIB,
            "declared length {len}: an allocation of {} bytes",
            largest()
        );
    }
}

#[tokio::test]
async fn million_empty_continuations_close_1009_too_many_fragments() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &quick_close()).await;
        conn.read_message().await
    });
    let c = RawClient::connect(addr, "/", "").await;
    let (mut r, mut w) = (c.r, c.w);
    reset_largest();
    let closed = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let writer = {
        let (closed, sent) = (closed.clone(), sent.clone());
        tokio::spawn(async move {
            let mut out = BytesMut::new();
            w.encode(&Frame::new(OpCode::Text, "a").with_fin(false), &mut out);
            let cont = Frame::new(OpCode::Continuation, Bytes::new()).with_fin(false);
            const BATCH: u64 = 20_000;
            let mut total = 0u64;
            while total < 1_000_000 && !closed.load(Ordering::Acquire) {
                for _ in 0..BATCH {
                    w.encode(&cont, &mut out);
                }
                if w.tcp.write_all(&out).await.is_err() {
                    break; // the server is gone
                }
                out.clear();
                total += BATCH;
                sent.store(total, Ordering::Release);
            }
            // Let the server's drain see EOF.
            let _ = w.tcp.shutdown().await;
        })
    };
    assert_eq!(r.expect_close().await, Some(1009));
    closed.store(true, Ordering::Release);
    r.expect_eof_within(BOUND).await;
    bounded("writer", writer).await.unwrap();
    match bounded("server", server).await.unwrap() {
        Err(Error::Protocol(ProtocolError::TooManyFragments { max })) => assert_eq!(max, 100_000),
        other => panic!("expected TooManyFragments, got {other:?}"),
    }
    assert!(sent.load(Ordering::Acquire) > 100_000);
    assert!(largest() < 4 * MIB, "an allocation of {} bytes", largest());
}

#[tokio::test]
async fn ping_flood_while_server_streams_keeps_working_and_pongs_stay_bounded() {
    const MSGS: u32 = 256;
    const SIZE: usize = 64 * 1024;
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let conn = accept(&l, &Config::default()).await;
        let (mut rh, mut wh) = conn.split();
        let reader = tokio::spawn(async move {
            let mut pings = 0u64;
            loop {
                match rh.read_frame().await {
                    Ok(f) if f.opcode == OpCode::Ping => pings += 1,
                    Ok(f) if f.opcode == OpCode::Close => return Ok(pings),
                    Ok(f) => panic!("unexpected frame {f:?}"),
                    Err(e) => return Err(e),
                }
            }
        });
        for i in 0..MSGS {
            let mut p = pattern(SIZE, i as u8);
            p[..4].copy_from_slice(&i.to_be_bytes());
            wh.send_binary(p).await.unwrap();
        }
        wh.close(CloseCode::NORMAL, "stream done").await.unwrap();
        reader.await.unwrap()
    });
    let c = RawClient::connect(addr, "/", "").await;
    let (mut r, mut w) = (c.r, c.w);
    reset_largest();
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            let mut out = BytesMut::new();
            while !stop.load(Ordering::Acquire) {
                for _ in 0..500 {
                    n += 1;
                    w.encode(
                        &Frame::ping(Bytes::copy_from_slice(&n.to_be_bytes())),
                        &mut out,
                    );
                }
                w.tcp.write_all(&out).await.unwrap();
                out.clear();
                tokio::task::yield_now().await;
            }
            w.send(Frame::close(CloseCode::NORMAL, "")).await;
            n
        })
    };
    let mut next = 0u32;
    let mut pongs = 0u64;
    let mut last_pong = 0u64;
    loop {
        let f = r.frame().await;
        match f.opcode {
            OpCode::Binary => {
                assert_eq!(f.payload.len(), SIZE);
                assert_eq!(&f.payload[..4], &next.to_be_bytes());
                assert_eq!(&f.payload[4..], &pattern(SIZE, next as u8)[4..]);
                next += 1;
            }
            OpCode::Pong => {
                let v = u64::from_be_bytes(f.payload[..].try_into().unwrap());
                assert!(v > last_pong, "pong {v} after {last_pong}");
                last_pong = v;
                pongs += 1;
            }
            OpCode::Close => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(next, MSGS, "every streamed message arrived in order");
    stop.store(true, Ordering::Release);
    let pings_sent = bounded("flooder", flooder).await.unwrap();
    r.expect_eof_within(BOUND).await;
    let pings_seen = bounded("server", server).await.unwrap().unwrap();
    assert_eq!(pings_seen, pings_sent, "the server read every ping");
    assert!(
        pongs >= 1 && pongs <= pings_sent,
        "{pongs} pongs for {pings_sent} pings"
    );
    assert!(pings_sent > 1000, "only {pings_sent} pings: no flood");
    assert!(largest() < 2 * MIB, "an allocation of {} bytes", largest());
}

/// A client that completes the handshake and then never reads; its
/// receive buffer is kept small so the stall comes quickly.
async fn non_reading_client(addr: std::net::SocketAddr) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut tcp = sock.connect(addr).await.unwrap();
    tcp.write_all(upgrade_request(addr, "/", "").as_bytes())
        .await
        .unwrap();
    let (head, _) = read_response_head(&mut tcp).await;
    assert_eq!(head.status(), 101);
    tcp
}

/// Paused clock: once the peer's buffers are full every task waits, and
/// auto-advance jumps to the next timer, the write timeout of the stalled
/// flush; the time from the last successful write to the error is then the
/// write timeout exactly. (No handshake timeout, the only other timer.)
#[tokio::test(start_paused = true)]
async fn stalled_reader_bounds_buffer_and_write_times_out() {
    const HW: usize = 64 * 1024;
    const WRITE_TIMEOUT: Duration = Duration::from_millis(300);
    for size in [100usize, 16 * 1024] {
        let (l, addr) = listener().await;
        let config = Config::builder()
            .write_buffer_high_water(HW)
            .write_timeout(Some(WRITE_TIMEOUT))
            .handshake_timeout(None)
            .build();
        let server = tokio::spawn(async move {
            let mut conn = accept(&l, &config).await;
            let payload = Bytes::from(pattern(size, 1));
            let (mut max_buffered, mut fed) = (0usize, 0usize);
            let mut last_ok = Instant::now();
            let err = loop {
                match conn.feed_message(Message::Binary(payload.clone())).await {
                    Ok(()) => {
                        last_ok = Instant::now();
                        fed += size;
                        max_buffered = max_buffered.max(conn.buffered());
                    }
                    Err(e) => break e,
                }
            };
            // Bytes the stalled peer left stuck in our buffer.
            assert!(conn.buffered() > 0, "timed out with nothing buffered");
            (err, max_buffered, fed, last_ok.elapsed())
        });
        let client = non_reading_client(addr).await;
        let (err, max_buffered, fed, stalled_for) = bounded("server", server).await.unwrap();
        drop(client);
        assert!(
            matches!(err, Error::Timeout(TimeoutKind::Write)),
            "size {size}: {err:?}"
        );
        assert!(
            max_buffered <= HW + size + 14,
            "size {size}: {max_buffered} bytes buffered over a {HW} high-water mark"
        );
        assert!(fed > HW, "size {size}: fed only {fed}");
        assert!(
            stalled_for >= WRITE_TIMEOUT && stalled_for <= WRITE_TIMEOUT + Duration::from_millis(1),
            "size {size}: timeout after {stalled_for:?}"
        );
    }
}

/// Paused clock, as above: the write timeout fires once both directions
/// are stalled, in no real time.
#[tokio::test(start_paused = true)]
async fn echo_to_a_peer_that_never_reads_is_bounded_and_times_out() {
    const HW: usize = 32 * 1024;
    let (l, addr) = listener().await;
    let config = Config::builder()
        .write_buffer_high_water(HW)
        .write_timeout(Some(Duration::from_millis(300)))
        .handshake_timeout(None)
        .build();
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &config).await;
        let mut max_buffered = 0;
        let err = loop {
            let msg = match conn.read_message().await {
                Ok(Some(m)) => m,
                Ok(None) => panic!("peer did not close"),
                Err(e) => break e,
            };
            if let Err(e) = conn.feed_message(msg).await {
                break e;
            }
            max_buffered = max_buffered.max(conn.buffered());
        };
        (err, max_buffered)
    });
    let mut client = non_reading_client(addr).await;
    let writer = tokio::spawn(async move {
        let mut enc = rtwire::ws::Encoder::new(rtwire::ws::Role::Client);
        let mut out = BytesMut::new();
        for _ in 0..64 {
            enc.encode(&Frame::binary(pattern(1000, 2)), &mut out);
        }
        // Writes until the server stops reading (and the buffers fill).
        while client.write_all(&out).await.is_ok() {}
    });
    let (err, max_buffered) = bounded("server", server).await.unwrap();
    writer.abort();
    assert!(matches!(err, Error::Timeout(TimeoutKind::Write)), "{err:?}");
    assert!(
        max_buffered <= HW + 1000 + 14,
        "{max_buffered} bytes buffered over a {HW} high-water mark"
    );
}

/// Slowloris on the paused clock: one byte every 100 ms of paused time.
/// The handshake must still be pending after the byte sent at 400 ms and
/// fail at 500 ms exactly, with a 408.
#[tokio::test(start_paused = true)]
async fn trickled_handshake_ends_with_handshake_timeout() {
    const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(500);
    const PACE: Duration = Duration::from_millis(100);
    let (l, addr) = listener().await;
    let config = Config::builder()
        .handshake_timeout(Some(HANDSHAKE_TIMEOUT))
        .build();
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let start = Instant::now();
        let r = Conn::accept(tcp, &config).await.map(|_| ());
        (r, start.elapsed())
    });
    let mut tcp = hold_clock(async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        settle().await; // the server has accepted: its timeout runs
        tcp
    })
    .await;
    let t0 = Instant::now();
    let request = upgrade_request(addr, "/", "");
    let mut sent = 0;
    let mut ended_at = None;
    // The hostile peer's own pace: one byte per 100 ms.
    for b in request.as_bytes() {
        if tcp.write_all(&[*b]).await.is_err() {
            break;
        }
        sent += 1;
        tokio::time::sleep(PACE).await;
        hold_clock(settle()).await;
        if server.is_finished() {
            ended_at = Some(t0.elapsed());
            break;
        }
    }
    assert_eq!(
        ended_at,
        Some(HANDSHAKE_TIMEOUT),
        "the handshake ends at the timeout, not before or after"
    );
    assert_eq!(sent, 5, "bytes sent at 0, 100, .. 400 ms");
    assert!(sent < request.len());
    let (r, elapsed) = bounded("server", server).await.unwrap();
    assert!(
        matches!(r, Err(Error::Handshake(HandshakeError::Timeout))),
        "{r:?}"
    );
    assert_eq!(elapsed, HANDSHAKE_TIMEOUT);
    // The server answered 408 and closed the connection.
    let mut got = Vec::new();
    let mut b = [0u8; 256];
    hold_clock(bounded("EOF", async {
        loop {
            match tcp.read(&mut b).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&b[..n]),
            }
        }
    }))
    .await;
    assert!(
        got.starts_with(b"HTTP/1.1 408 Request Timeout\r\n"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}

/// Sends `bytes` after the handshake and returns the close code the server
/// answers with and the server's error.
async fn provoke(bytes: Vec<u8>, send_whole: bool) -> (Option<u16>, Error) {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &quick_close()).await;
        loop {
            match conn.read_message().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("closed cleanly"),
                Err(e) => return e,
            }
        }
    });
    let mut c = RawClient::connect(addr, "/", "").await;
    assert!(send_whole || !bytes.is_empty());
    c.w.send_raw(&bytes).await;
    let code = c.r.expect_close().await;
    c.r.expect_eof_within(BOUND).await;
    let _ = c.w.tcp.shutdown().await;
    let err = bounded("server", server).await.unwrap();
    (code, err)
}

fn masked(frames: &[Frame]) -> Vec<u8> {
    let mut enc = rtwire::ws::Encoder::new(rtwire::ws::Role::Client);
    let mut out = BytesMut::new();
    for f in frames {
        enc.encode(f, &mut out);
    }
    out.to_vec()
}

#[tokio::test]
async fn invalid_utf8_text_closes_1007() {
    let bad: Bytes = Bytes::from_static(b"ok \xff\xfe");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("single frame", masked(&[Frame::new(OpCode::Text, bad)])),
        (
            "bad continuation across fragments",
            masked(&[
                Frame::new(OpCode::Text, Bytes::from_static(b"a\xe2\x82")).with_fin(false),
                Frame::new(OpCode::Continuation, Bytes::from_static(b"(b")),
            ]),
        ),
        (
            "truncated sequence at the end of the message",
            masked(&[
                Frame::new(OpCode::Text, Bytes::from_static(b"abc")).with_fin(false),
                Frame::new(OpCode::Continuation, Bytes::from_static(b"\xe2\x82")),
            ]),
        ),
        (
            "invalid close reason",
            masked(&[Frame::new(
                OpCode::Close,
                Bytes::from_static(b"\x03\xe8\xff"),
            )]),
        ),
    ];
    for (what, bytes) in cases {
        let (code, err) = provoke(bytes, true).await;
        assert_eq!(code, Some(1007), "{what}");
        assert!(
            matches!(err, Error::Protocol(ProtocolError::InvalidUtf8)),
            "{what}: {err:?}"
        );
    }
}

#[tokio::test]
async fn invalid_utf8_fails_before_the_frame_is_complete() {
    // A 1000-byte text frame of which only 10 bytes are sent, the 6th
    // invalid: the server must not wait for the other 990.
    let mut bytes = raw_header(true, 0x1, 1000, KEY);
    let mut payload = *b"hello\xffworl";
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= KEY[i % 4];
    }
    bytes.extend_from_slice(&payload);
    let (code, err) = provoke(bytes, false).await;
    assert_eq!(code, Some(1007));
    assert!(
        matches!(err, Error::Protocol(ProtocolError::InvalidUtf8)),
        "{err:?}"
    );
}

#[tokio::test]
async fn protocol_violations_close_1002() {
    let mut unmasked = BytesMut::new();
    unmasked.put_slice(&[0x81, 0x02, b'h', b'i']);
    type Case = (&'static str, Vec<u8>, fn(&ProtocolError) -> bool);
    let cases: Vec<Case> = vec![
        ("unmasked client frame", unmasked.to_vec(), |e| {
            matches!(e, ProtocolError::UnmaskedFrame)
        }),
        (
            "continuation without a message",
            masked(&[Frame::new(OpCode::Continuation, "x")]),
            |e| matches!(e, ProtocolError::UnexpectedContinuation),
        ),
        (
            "new message inside a fragmented one",
            masked(&[
                Frame::new(OpCode::Text, "a").with_fin(false),
                Frame::new(OpCode::Binary, "b"),
            ]),
            |e| matches!(e, ProtocolError::ExpectedContinuation),
        ),
        ("reserved opcode", raw_header(true, 0x3, 0, KEY), |e| {
            matches!(e, ProtocolError::ReservedOpcode(3))
        }),
        (
            "close code 1005 on the wire",
            masked(&[Frame::new(OpCode::Close, Bytes::from_static(b"\x03\xed"))]),
            |e| matches!(e, ProtocolError::InvalidCloseCode(1005)),
        ),
    ];
    for (what, bytes, check) in cases {
        let (code, err) = provoke(bytes, true).await;
        assert_eq!(code, Some(1002), "{what}");
        match err {
            Error::Protocol(p) => assert!(check(&p), "{what}: {p:?}"),
            e => panic!("{what}: {e:?}"),
        }
    }
}

/// A server that runs `Conn::accept` on every connection and reports each
/// result.
async fn handshake_server(
    config: Config,
) -> (
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<Result<(), Error>>,
) {
    let (l, addr) = listener().await;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = l.accept().await.unwrap();
            let r = Conn::accept(tcp, &config).await.map(|_| ());
            if tx.send(r).is_err() {
                return;
            }
        }
    });
    (addr, rx)
}

fn check_rejection(what: &str, head: &rtwire::http::ResponseHead, body: &[u8], status: u16) {
    assert_eq!(head.status(), status, "{what}: {head:?}");
    let len: usize = head
        .header_str("content-length")
        .expect("Content-Length")
        .parse()
        .unwrap();
    assert_eq!(len, body.len(), "{what}: body {body:?}");
    assert!(!body.is_empty(), "{what}: empty body");
    assert_eq!(head.header_str("connection"), Some("close"), "{what}");
}

#[tokio::test]
async fn bad_handshakes_get_real_http_responses() {
    let server_cfg = ServerConfig::new()
        .origin(OriginPolicy::AllowList(vec!["https://good.example".into()]))
        .auth(|head| match head.query_param("token").as_deref() {
            Some("s3cret") => Ok(()),
            _ => Err(Rejection::unauthorized("bad token")),
        });
    let config = Config::builder().server(server_cfg).build();
    let (addr, mut results) = handshake_server(config).await;
    let ok = "/?token=s3cret";
    let base = |path: &str, version: &str, key: &str, extra: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n{extra}\r\n"
        )
    };
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    type Case = (&'static str, String, u16, fn(&HandshakeError) -> bool);
    let cases: Vec<Case> = vec![
        ("version 12", base(ok, "12", key, ""), 426, |e| {
            matches!(e, HandshakeError::UnsupportedVersion)
        }),
        ("no key", base(ok, "13", "", ""), 400, |e| {
            matches!(e, HandshakeError::InvalidKey)
        }),
        ("short key", base(ok, "13", "abc", ""), 400, |e| {
            matches!(e, HandshakeError::InvalidKey)
        }),
        (
            "no Upgrade",
            format!("GET {ok} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"),
            426,
            |e| matches!(e, HandshakeError::NotWebSocket),
        ),
        (
            "POST",
            base(ok, "13", key, "").replacen("GET", "POST", 1),
            405,
            |e| matches!(e, HandshakeError::Method),
        ),
        (
            "foreign origin",
            base(ok, "13", key, "Origin: https://evil.example\r\n"),
            403,
            |e| matches!(e, HandshakeError::OriginRefused),
        ),
        ("no token", base("/", "13", key, ""), 401, |e| {
            matches!(e, HandshakeError::Unauthorized { status: 401, .. })
        }),
        (
            "wrong token",
            base("/?token=nope", "13", key, ""),
            401,
            |e| matches!(e, HandshakeError::Unauthorized { status: 401, .. }),
        ),
        (
            "oversized head",
            base(ok, "13", key, &format!("X-Big: {}\r\n", "a".repeat(20_000))),
            431,
            |e| matches!(e, HandshakeError::Head(_)),
        ),
        (
            "garbage",
            "\x16\x03\x01 not http\r\n\r\n".to_string(),
            400,
            |e| matches!(e, HandshakeError::Head(_)),
        ),
    ];
    for (what, request, status, check) in cases {
        let (head, body) = bounded(what, http_exchange(addr, &request)).await;
        check_rejection(what, &head, &body, status);
        if status == 426 && what == "version 12" {
            assert_eq!(head.header_str("sec-websocket-version"), Some("13"));
        }
        match bounded("server result", results.recv()).await.unwrap() {
            Err(Error::Handshake(e)) => assert!(check(&e), "{what}: {e:?}"),
            other => panic!("{what}: server returned {other:?}"),
        }
    }
    // The allowed origin with the right token, and no origin at all, upgrade.
    for extra in ["Origin: https://good.example\r\n", ""] {
        let c = RawClient::connect(addr, ok, extra).await;
        assert_eq!(c.resp.status(), 101);
        bounded("server result", results.recv())
            .await
            .unwrap()
            .unwrap();
    }
}
