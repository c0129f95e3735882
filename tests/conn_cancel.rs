//! Cancellation safety: `read_frame` and `read_message` dropped inside
//! `tokio::select!` racing a short timer, while a raw peer trickles frames
//! over loopback TCP a few bytes at a time (headers split, fragmented
//! messages, pings in between). Every frame or message must arrive exactly
//! once, intact and in order, every ping must be answered exactly once, and
//! the timer must actually have won many races.

mod conn_support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use conn_support::*;
use rtwire::ws::{CloseCode, Config, Frame, Message, OpCode};
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

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

/// Writes `frames` (masked) in small pieces with a pause after each piece:
/// headers and short payloads go 1-7 bytes at a time, long payloads in
/// bigger pieces. Then sends a close. Returns when everything is written.
async fn trickle(w: &mut RawWriter, frames: &[Frame], seed: u64) {
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
            // The peer's own pace, not a wait for the server.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    w.send(Frame::close(CloseCode(4321), "done")).await;
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

const SHORT: Duration = Duration::from_micros(300);

#[tokio::test]
async fn read_frame_dropped_in_select_loses_nothing() {
    let sc = script(1);
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &Config::default()).await;
        let (mut got, mut fired) = (Vec::new(), 0u32);
        loop {
            tokio::select! {
                r = conn.read_frame() => {
                    let f = r.expect("read_frame");
                    if f.opcode == OpCode::Close {
                        break;
                    }
                    got.push(f);
                }
                _ = tokio::time::sleep(SHORT) => fired += 1,
            }
        }
        assert!(conn.read_frame().await.is_err(), "read after close");
        (got, fired)
    });
    let c = RawClient::connect(addr, "/", "").await;
    let (mut r, mut w) = (c.r, c.w);
    let frames = sc.frames.clone();
    let writer = tokio::spawn(async move { trickle(&mut w, &frames, 2).await });
    let (pongs, code) = bounded("pongs", collect_pongs(&mut r)).await;
    bounded("writer", writer).await.unwrap();
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
    assert!(fired > 200, "the timer won only {fired} races");
}

#[tokio::test]
async fn read_message_dropped_in_select_loses_nothing() {
    let sc = script(3);
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &Config::default()).await;
        let (mut got, mut fired) = (Vec::new(), 0u32);
        loop {
            tokio::select! {
                r = conn.read_message() => match r.expect("read_message") {
                    Some(m) => got.push(m),
                    None => break,
                },
                _ = tokio::time::sleep(SHORT) => fired += 1,
            }
        }
        let code = conn.peer_close_frame().map(|c| c.code);
        (got, fired, code)
    });
    let c = RawClient::connect(addr, "/", "").await;
    let (mut r, mut w) = (c.r, c.w);
    let frames = sc.frames.clone();
    let writer = tokio::spawn(async move { trickle(&mut w, &frames, 4).await });
    let (pongs, code) = bounded("pongs", collect_pongs(&mut r)).await;
    bounded("writer", writer).await.unwrap();
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
    assert!(fired > 200, "the timer won only {fired} races");
}

/// The split read half answers a ping through the shared writer; while the
/// write half holds it (stalled on a peer that is not reading), the read
/// half's pong flush waits. Cancelling `read_frame` there must not lose the
/// ping frame: the next call still returns it.
#[tokio::test]
async fn regression_ping_lost_when_split_read_cancelled_during_pong_flush() {
    let (l, addr) = listener().await;
    let (stalled_tx, stalled_rx) = oneshot::channel::<()>();
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
        let mut stalled_tx = Some(stalled_tx);
        loop {
            tokio::select! {
                r = rh.read_frame() => {
                    let f = r.expect("read_frame");
                    if f.opcode == OpCode::Close {
                        break;
                    }
                    got.push(f);
                }
                _ = tokio::time::sleep(SHORT) => {
                    fired += 1;
                    if fired == 50 {
                        if let Some(tx) = stalled_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                }
            }
        }
        drop(writer.await.unwrap());
        got
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
    // Let the server's read race its timer for a while, then read.
    bounded("server stalled", stalled_rx).await.unwrap();
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
    let got = bounded("server", server).await.unwrap();
    let ops: Vec<_> = got.iter().map(|f| f.opcode).collect();
    assert_eq!(
        ops,
        [OpCode::Ping, OpCode::Text],
        "frames seen by the read half"
    );
}

/// Runs a select loop racing `read_frame` against a short timer until the
/// read returns an error; reports each timer win on `fired`.
async fn read_until_error(
    conn: &mut rtwire::ws::Conn<tokio::net::TcpStream>,
    fired: tokio::sync::mpsc::UnboundedSender<()>,
) -> rtwire::Error {
    loop {
        tokio::select! {
            r = conn.read_frame() => match r {
                Ok(f) => panic!("unexpected frame {f:?}"),
                Err(e) => return e,
            },
            _ = tokio::time::sleep(SHORT) => { let _ = fired.send(()); }
        }
    }
}

/// A protocol error closes the connection (close frame, shutdown, then
/// waiting for the peer's side). A read cancelled during that wait must not
/// turn the protocol error into `ConnectionClosed` on the next call.
#[tokio::test]
async fn regression_protocol_error_lost_when_read_cancelled_during_close() {
    let (l, addr) = listener().await;
    let (fired_tx, mut fired_rx) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &Config::default()).await;
        read_until_error(&mut conn, fired_tx).await
    });
    let mut c = RawClient::connect(addr, "/", "").await;
    c.send(Frame::new(OpCode::Text, Bytes::from_static(b"\xff")))
        .await;
    assert_eq!(c.r.expect_close().await, Some(1007));
    c.r.expect_eof_within(Duration::from_secs(2)).await;
    // The server is now waiting for our side; let its timer win a while.
    bounded("timer wins", async {
        for _ in 0..20 {
            fired_rx.recv().await.unwrap();
        }
    })
    .await;
    c.send(Frame::close(CloseCode::INVALID_PAYLOAD, "")).await;
    c.w.tcp.shutdown().await.unwrap();
    let err = bounded("server", server).await.unwrap();
    assert!(
        matches!(
            err,
            rtwire::Error::Protocol(rtwire::ProtocolError::InvalidUtf8)
        ),
        "{err:?}"
    );
}

/// Same, with a peer that never finishes the close: cancelled reads must
/// not restart the close timeout forever.
#[tokio::test]
async fn protocol_error_close_wait_is_bounded_across_cancelled_reads() {
    let (l, addr) = listener().await;
    let (fired_tx, _fired_rx) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        let config = Config::builder()
            .close_timeout(Duration::from_millis(300))
            .build();
        let mut conn = accept(&l, &config).await;
        let start = std::time::Instant::now();
        (read_until_error(&mut conn, fired_tx).await, start.elapsed())
    });
    let mut c = RawClient::connect(addr, "/", "").await;
    c.send(Frame::new(OpCode::Text, Bytes::from_static(b"\xff")))
        .await;
    assert_eq!(c.r.expect_close().await, Some(1007));
    // Never answer, never close.
    let (err, elapsed) = bounded("server", server).await.unwrap();
    assert!(
        matches!(
            err,
            rtwire::Error::Protocol(rtwire::ProtocolError::InvalidUtf8)
        ),
        "{err:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    drop(c);
}
