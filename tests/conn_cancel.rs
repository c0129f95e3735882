//! Cancellation safety: `read_frame` and `read_message` dropped inside
//! `tokio::select!`, while a raw peer trickles frames over loopback TCP a
//! few bytes at a time (headers split, fragmented messages, pings in
//! between). Every frame or message must arrive exactly once, intact and in
//! order, and every ping must be answered exactly once.
//!
//! The reads are interrupted by events, not timers: after each piece it
//! writes, the peer sends a "tick" on a channel that the server's `select!`
//! races against the read (the read polled first, so the tick only wins
//! while the read is waiting), and waits for the server to acknowledge it.
//! A seeded number of `yield_now`s before each tick decides whether the
//! server's read has already consumed the piece (it is then waiting in the
//! middle of a frame) or not yet. Every tick must have interrupted a read.

mod conn_support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use conn_support::*;
use rtwire::ws::{CloseCode, Config, Frame, Message, OpCode};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// The server's end of the interruption channel: each tick carries the
/// sender of its acknowledgement.
type Ticks = mpsc::UnboundedReceiver<oneshot::Sender<()>>;

/// The peer's end of the interruption channel.
#[derive(Clone)]
struct Ticker(mpsc::UnboundedSender<oneshot::Sender<()>>);

fn ticks() -> (Ticker, Ticks) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Ticker(tx), rx)
}

impl Ticker {
    /// Interrupts the server's read once; returns when the server's
    /// `select!` has taken the tick (and dropped its read future).
    async fn tick(&self) {
        let (ack, acked) = oneshot::channel();
        self.0.send(ack).expect("server gone");
        acked.await.expect("tick dropped");
    }
}

/// What the peer sends: frames, and the messages they make.
struct Script {
    frames: Vec<Frame>,
    messages: Vec<Message>,
    pings: Vec<Bytes>,
}

fn script(seed: u64) -> Script {
    let mut rng = Rng::new(seed);
    let mut frames = Vec::new();
    let mut messages = Vec::new();
    let mut pings = Vec::new();
    let mut ping = |frames: &mut Vec<Frame>, rng: &mut Rng| {
        let n = rng.range(0, 125);
        let p = Bytes::from(rng.bytes(n));
        pings.push(p.clone());
        frames.push(Frame::ping(p));
    };
    for i in 0..40 {
        match i % 5 {
            0 => {
                // Text, sometimes with a 16-bit length.
                let n = if i % 2 == 0 {
                    rng.range(0, 30)
                } else {
                    rng.range(126, 300)
                };
                let s: String = (0..n).map(|k| ['a', 'é', '✓', 'z'][k % 4]).collect();
                frames.push(Frame::text(s.clone()));
                messages.push(Message::text(s));
            }
            1 => {
                let n = rng.range(0, 200);
                let b = Bytes::from(rng.bytes(n));
                frames.push(Frame::binary(b.clone()));
                messages.push(Message::Binary(b));
            }
            2 => ping(&mut frames, &mut rng),
            3 => {
                // A fragmented text with multi-byte characters split
                // across frames and a ping between two fragments.
                let s = format!("fragmented {i}: ünïcödé ✓✓✓ end");
                let b = Bytes::from(s.clone());
                let cuts = [0, 13, 14, 21, 25, b.len()];
                for w in cuts.windows(2) {
                    let op = if w[0] == 0 {
                        OpCode::Text
                    } else {
                        OpCode::Continuation
                    };
                    frames.push(Frame::new(op, b.slice(w[0]..w[1])).with_fin(w[1] == b.len()));
                    if w[0] == 13 {
                        ping(&mut frames, &mut rng);
                    }
                }
                messages.push(Message::text(s));
            }
            _ => {
                // A binary message in two fragments, one with a 64-bit
                // length when i is a multiple of 20.
                let n = if i % 20 == 4 {
                    70_000
                } else {
                    rng.range(1, 500)
                };
                let b = Bytes::from(rng.bytes(n));
                let cut = n / 3;
                frames.push(Frame::new(OpCode::Binary, b.slice(..cut)).with_fin(false));
                frames.push(Frame::new(OpCode::Continuation, b.slice(cut..)));
                messages.push(Message::Binary(b));
            }
        }
    }
    Script {
        frames,
        messages,
        pings,
    }
}

/// Writes `frames` (masked) in small pieces, interrupting the server's read
/// after each piece: headers and short payloads go 1-7 bytes at a time, long
/// payloads in bigger pieces. Then sends a close. Returns the number of
/// ticks, when everything is written.
async fn trickle(w: &mut RawWriter, frames: &[Frame], seed: u64, ticker: &Ticker) -> u32 {
    let mut ticks = 0;
    let mut rng = Rng::new(seed);
    for f in frames {
        let mut out = BytesMut::new();
        w.encode(f, &mut out);
        let mut pos = 0;
        while pos < out.len() {
            let n = if pos < 16 || out.len() < 1000 {
                rng.range(1, 7)
            } else {
                rng.range(1000, 9000)
            };
            let end = (pos + n).min(out.len());
            w.tcp.write_all(&out[pos..end]).await.unwrap();
            pos = end;
            // 0: the server has not seen the piece yet when its read is
            // dropped; 1-3: each yield lets the runtime poll its I/O driver,
            // so the read has taken the piece and waits for more.
            for _ in 0..rng.range(0, 3) {
                tokio::task::yield_now().await;
            }
            ticker.tick().await;
            ticks += 1;
        }
    }
    w.send(Frame::close(CloseCode(4321), "done")).await;
    ticks
}

/// Collects pong payloads until the server's close reply.
async fn collect_pongs(r: &mut RawReader) -> (Vec<Bytes>, Option<u16>) {
    let mut pongs = Vec::new();
    loop {
        let f = r.frame().await;
        match f.opcode {
            OpCode::Pong => pongs.push(f.payload),
            OpCode::Close => {
                let code = u16::from_be_bytes([f.payload[0], f.payload[1]]);
                return (pongs, Some(code));
            }
            other => panic!("unexpected {other:?} from server"),
        }
    }
}

#[tokio::test]
async fn read_frame_dropped_in_select_loses_nothing() {
    let sc = script(1);
    let (l, addr) = listener().await;
    let (ticker, mut ticks) = ticks();
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &Config::default()).await;
        let (mut got, mut fired) = (Vec::new(), 0u32);
        loop {
            tokio::select! {
                biased;
                r = conn.read_frame() => {
                    let f = r.expect("read_frame");
                    if f.opcode == OpCode::Close {
                        break;
                    }
                    got.push(f);
                }
                Some(ack) = ticks.recv() => {
                    fired += 1;
                    let _ = ack.send(());
                }
            }
        }
        assert!(conn.read_frame().await.is_err(), "read after close");
        (got, fired)
    });
    let c = RawClient::connect(addr, "/", "").await;
    let (mut r, mut w) = (c.r, c.w);
    let frames = sc.frames.clone();
    let writer = tokio::spawn(async move { trickle(&mut w, &frames, 2, &ticker).await });
    let (pongs, code) = bounded("pongs", collect_pongs(&mut r)).await;
    let sent = bounded("writer", writer).await.unwrap();
    let (got, fired) = bounded("server", server).await.unwrap();
    assert_eq!(code, Some(4321));
    assert_eq!(got.len(), sc.frames.len());
    for (i, (g, want)) in got.iter().zip(&sc.frames).enumerate() {
        assert_eq!(g, want, "frame {i}");
    }
    assert_eq!(
        pongs, sc.pings,
        "every ping answered exactly once, in order"
    );
    assert_eq!(fired, sent, "every tick interrupted a read");
    assert!(fired > 200, "only {fired} interruptions");
}

#[tokio::test]
async fn read_message_dropped_in_select_loses_nothing() {
    let sc = script(3);
    let (l, addr) = listener().await;
    let (ticker, mut ticks) = ticks();
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &Config::default()).await;
        let (mut got, mut fired) = (Vec::new(), 0u32);
        loop {
            tokio::select! {
                biased;
                r = conn.read_message() => match r.expect("read_message") {
                    Some(m) => got.push(m),
                    None => break,
                },
                Some(ack) = ticks.recv() => {
                    fired += 1;
                    let _ = ack.send(());
                }
            }
        }
        let code = conn.peer_close_frame().map(|c| c.code);
        (got, fired, code)
    });
    let c = RawClient::connect(addr, "/", "").await;
    let (mut r, mut w) = (c.r, c.w);
    let frames = sc.frames.clone();
    let writer = tokio::spawn(async move { trickle(&mut w, &frames, 4, &ticker).await });
    let (pongs, code) = bounded("pongs", collect_pongs(&mut r)).await;
    let sent = bounded("writer", writer).await.unwrap();
    let (got, fired, peer_code) = bounded("server", server).await.unwrap();
    assert_eq!(code, Some(4321));
    assert_eq!(peer_code, Some(CloseCode(4321)));
    assert_eq!(got.len(), sc.messages.len());
    for (i, (g, want)) in got.iter().zip(&sc.messages).enumerate() {
        assert_eq!(g, want, "message {i}");
    }
    assert_eq!(
        pongs, sc.pings,
        "every ping answered exactly once, in order"
    );
    assert_eq!(fired, sent, "every tick interrupted a read");
    assert!(fired > 200, "only {fired} interruptions");
}

/// The split read half answers a ping through the shared writer; while the
/// write half holds it (stalled on a peer that is not reading), the read
/// half's pong flush waits. Cancelling `read_frame` there must not lose the
/// ping frame: the next call still returns it.
#[tokio::test]
async fn regression_ping_lost_when_split_read_cancelled_during_pong_flush() {
    let (l, addr) = listener().await;
    let (ticker, mut ticks) = ticks();
    let server = tokio::spawn(async move {
        let conn = accept(&l, &Config::default()).await;
        let (mut rh, mut wh) = conn.split();
        let writer = tokio::spawn(async move {
            // Far more than the socket buffers hold: the write half keeps
            // the writer until the peer reads.
            wh.send_binary(Bytes::from(vec![7u8; 16 << 20]))
                .await
                .unwrap();
            wh
        });
        let mut got = Vec::new();
        let mut fired = 0u32;
        loop {
            tokio::select! {
                biased;
                r = rh.read_frame() => {
                    let f = r.expect("read_frame");
                    if f.opcode == OpCode::Close {
                        break;
                    }
                    got.push(f);
                }
                Some(ack) = ticks.recv() => {
                    fired += 1;
                    let _ = ack.send(());
                }
            }
        }
        drop(writer.await.unwrap());
        (got, fired)
    });
    let c = RawClient::connect(addr, "/", "").await;
    let (mut r, mut w) = (c.r, c.w);
    // The server's big frame has started: the write half holds the writer.
    if r.buf.is_empty() {
        let mut b = [0u8; 1];
        tokio::io::AsyncReadExt::read_exact(&mut r.tcp, &mut b)
            .await
            .unwrap();
        r.buf.extend_from_slice(&b);
    }
    assert_eq!(r.buf[0], 0x82);
    w.send(Frame::ping(Bytes::from_static(b"are you there")))
        .await;
    // Interrupt the server's read half 50 times while its pong waits for
    // the writer (the yields let it read the ping first), then read.
    bounded("server stalled", async {
        for _ in 0..50 {
            settle().await;
            ticker.tick().await;
        }
    })
    .await;
    let big = r.frame().await;
    assert_eq!(big.payload.len(), 16 << 20);
    let pong = r.frame().await;
    assert_eq!(
        (pong.opcode, &pong.payload[..]),
        (OpCode::Pong, &b"are you there"[..])
    );
    w.send(Frame::text("after")).await;
    w.send(Frame::close(CloseCode::NORMAL, "")).await;
    assert_eq!(r.expect_close().await, Some(1000));
    let (got, fired) = bounded("server", server).await.unwrap();
    assert_eq!(fired, 50);
    let ops: Vec<_> = got.iter().map(|f| f.opcode).collect();
    assert_eq!(
        ops,
        [OpCode::Ping, OpCode::Text],
        "frames seen by the read half"
    );
}

/// Runs a select loop racing `read_frame` against the peer's ticks until the
/// read returns an error; returns it and the number of interrupted reads.
async fn read_until_error(
    conn: &mut rtwire::ws::Conn<tokio::net::TcpStream>,
    ticks: &mut Ticks,
) -> (rtwire::Error, u32) {
    let mut fired = 0;
    loop {
        tokio::select! {
            biased;
            r = conn.read_frame() => match r {
                Ok(f) => panic!("unexpected frame {f:?}"),
                Err(e) => return (e, fired),
            },
            Some(ack) = ticks.recv() => {
                fired += 1;
                let _ = ack.send(());
            }
        }
    }
}

/// A protocol error closes the connection (close frame, shutdown, then
/// waiting for the peer's side). A read cancelled during that wait must not
/// turn the protocol error into `ConnectionClosed` on the next call.
#[tokio::test]
async fn regression_protocol_error_lost_when_read_cancelled_during_close() {
    let (l, addr) = listener().await;
    let (ticker, mut ticks) = ticks();
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &Config::default()).await;
        read_until_error(&mut conn, &mut ticks).await
    });
    let mut c = RawClient::connect(addr, "/", "").await;
    c.send(Frame::new(OpCode::Text, Bytes::from_static(b"\xff")))
        .await;
    assert_eq!(c.r.expect_close().await, Some(1007));
    c.r.expect_eof_within(Duration::from_secs(2)).await;
    // The server is now waiting for our side; interrupt that wait a while.
    bounded("interruptions", async {
        for _ in 0..20 {
            settle().await;
            ticker.tick().await;
        }
    })
    .await;
    c.send(Frame::close(CloseCode::INVALID_PAYLOAD, "")).await;
    c.w.tcp.shutdown().await.unwrap();
    let (err, fired) = bounded("server", server).await.unwrap();
    assert_eq!(fired, 20);
    assert!(
        matches!(
            err,
            rtwire::Error::Protocol(rtwire::ProtocolError::InvalidUtf8)
        ),
        "{err:?}"
    );
}

/// Same, with a peer that never finishes the close: cancelled reads must
/// not restart the close timeout. On the paused clock: the server's reads
/// are interrupted at 50, 100, ... 250 ms, and the error must still come
/// at the close timeout counted from the protocol error, 300 ms, not 300 ms
/// after the last interruption.
#[tokio::test(start_paused = true)]
async fn protocol_error_close_wait_is_bounded_across_cancelled_reads() {
    const CLOSE_TIMEOUT: Duration = Duration::from_millis(300);
    const EVERY: Duration = Duration::from_millis(50);
    let (l, addr) = listener().await;
    let (ticker, mut ticks) = ticks();
    let server = tokio::spawn(async move {
        let config = Config::builder().close_timeout(CLOSE_TIMEOUT).build();
        let mut conn = accept(&l, &config).await;
        let start = Instant::now();
        let (err, fired) = read_until_error(&mut conn, &mut ticks).await;
        (err, fired, start.elapsed())
    });
    // The handshake and the protocol error happen with the clock held, at
    // the start instant (auto-advance would otherwise jump to the close
    // deadline while the close frame is on its way to us).
    let mut c = hold_clock(RawClient::connect(addr, "/", "")).await;
    let t0 = Instant::now();
    c.send(Frame::new(OpCode::Text, Bytes::from_static(b"\xff")))
        .await;
    assert_eq!(hold_clock(c.r.expect_close()).await, Some(1007));
    // Never answer, never close; interrupt the server's wait every 50 ms.
    let mut at = t0;
    for _ in 0..5 {
        at += EVERY;
        tokio::time::sleep_until(at).await;
        hold_clock(ticker.tick()).await;
        assert!(!server.is_finished(), "gave up at {:?}", at - t0);
    }
    let (err, fired, elapsed) = bounded("server", server).await.unwrap();
    assert!(
        matches!(
            err,
            rtwire::Error::Protocol(rtwire::ProtocolError::InvalidUtf8)
        ),
        "{err:?}"
    );
    assert_eq!(fired, 5, "every tick interrupted a read");
    assert_eq!(elapsed, CLOSE_TIMEOUT);
    drop(c);
}
