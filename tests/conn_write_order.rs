//! Regression tests over real loopback TCP (a stream that really writes
//! vectored, unlike `tokio::io::duplex`) for the write side's segment
//! queue: frames must leave in the order they were queued, byte for byte,
//! however many vectored segments are waiting.
//!
//! The peer is `conn_support::RawClient` (rtwire's codec over TCP); the
//! server is a plain `rtwire::ws::Conn`.

mod conn_support;

use bytes::{Bytes, BytesMut};
use conn_support::*;
use rtwire::ws::{CloseCode, Config, Frame, Message, OpCode};
use tokio::sync::oneshot;

/// Asserts that frame `i` is `want` (opcode, FIN, RSV, payload), naming
/// the first payload byte that differs instead of dumping the payloads.
fn assert_frame(i: usize, got: &Frame, want: &Frame) {
    let first_diff = got
        .payload
        .iter()
        .zip(want.payload.iter())
        .position(|(a, b)| a != b);
    assert!(
        got == want,
        "frame {i}: got {:?} fin={} rsv={} len={}, want {:?} fin={} rsv={} len={}; \
         payloads first differ at byte {}",
        got.opcode,
        got.fin,
        got.rsv,
        got.payload.len(),
        want.opcode,
        want.fin,
        want.rsv,
        want.payload.len(),
        first_diff.map_or("(none)".to_string(), |k| k.to_string()),
    );
}

/// Client side of the end of a test: close, the server's close reply, and
/// the server task's result.
async fn close_and_join(
    mut c: RawClient,
    server: tokio::task::JoinHandle<Result<(), rtwire::Error>>,
) {
    c.send(Frame::close(CloseCode::NORMAL, "")).await;
    assert_eq!(c.r.expect_close().await, Some(1000));
    bounded("server task", server)
        .await
        .expect("server task panicked")
        .expect("server echo loop failed");
}

/// The README's echo loop, fed eight pipelined 5,000-byte binary messages
/// and a small text message in one write. Each echo is at least the 4 KiB
/// vectored threshold, so the eight echoes queue sixteen segments, and the
/// text echo is coalesced behind them; it used to be written as the 16th
/// slice, ahead of the 8th payload, which then arrived corrupted.
#[tokio::test]
async fn regression_readme_echo_corrupts_8th_of_8_pipelined_5000_byte_messages() {
    let (l, addr) = listener().await;
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &Config::default()).await;
        // Start reading once the whole pipeline has been written, so that
        // one read sees all nine messages (they fit one 64 KiB read).
        go_rx.await.expect("client signal");
        while let Some(msg) = conn.read_message().await? {
            conn.feed_message(msg).await?;
        }
        Ok(())
    });
    let mut c = RawClient::connect(addr, "/", "").await;
    let sent: Vec<Frame> = (0..8u8)
        .map(|i| Frame::binary(pattern(5_000, i)))
        .chain([Frame::text("end of the pipeline")])
        .collect();
    let mut wire = BytesMut::new();
    for f in &sent {
        c.w.encode(f, &mut wire);
    }
    c.w.send_raw(&wire).await;
    go_tx.send(()).expect("server waiting");
    for (i, want) in sent.iter().enumerate() {
        let got = c.frame().await;
        assert_frame(i, &got, want);
    }
    close_and_join(c, server).await;
}

/// `send_fragmented` of a 9 x 4096 + 10-byte message in 4096-byte
/// fragments: nine vectored fragments (eighteen segments) and a 10-byte
/// final fragment coalesced behind them, which used to be written in the
/// middle of fragment 8.
#[tokio::test]
async fn regression_send_fragmented_corrupts_fragment_8_of_9x4096_plus_10() {
    const LEN: usize = 9 * 4096 + 10;
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &Config::default()).await;
        conn.send_fragmented(Message::binary(pattern(LEN, 9)), 4096)
            .await?;
        while conn.read_message().await?.is_some() {}
        Ok(())
    });
    let mut c = RawClient::connect(addr, "/", "").await;
    let payload = Bytes::from(pattern(LEN, 9));
    for i in 0..10 {
        let start = i * 4096;
        let end = (start + 4096).min(LEN);
        let op = if i == 0 {
            OpCode::Binary
        } else {
            OpCode::Continuation
        };
        let want = Frame::new(op, payload.slice(start..end)).with_fin(i == 9);
        let got = c.frame().await;
        assert_frame(i, &got, &want);
    }
    close_and_join(c, server).await;
}

/// Runs of 6 to 24 pipelined binary messages of 4 to 9 KiB, each run ended
/// by a small text message, through the README's echo loop: every echo
/// must come back intact and in order. A run's final read often holds
/// eight or more vectored echoes with the small text echo behind them.
#[tokio::test]
async fn regression_pipelined_runs_of_4_to_9_kib_messages_echo_intact() {
    const RUNS: usize = 40;
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &Config::default()).await;
        while let Some(msg) = conn.read_message().await? {
            conn.feed_message(msg).await?;
        }
        Ok(())
    });
    let mut c = RawClient::connect(addr, "/", "").await;
    let mut rng = Rng::new(0x5eed_0de5);
    let mut bad = Vec::new();
    let mut echoes = 0;
    for run in 0..RUNS {
        let n = rng.range(6, 24);
        let sent: Vec<Frame> = (0..n)
            .map(|i| Frame::binary(pattern(rng.range(4096, 9 * 1024), (run * 31 + i) as u8)))
            .chain([Frame::text(format!("end of run {run}"))])
            .collect();
        let mut wire = BytesMut::new();
        for f in &sent {
            c.w.encode(f, &mut wire);
        }
        // Write the run while reading its echoes (a run can exceed what
        // the socket buffers hold).
        let (w, r) = (&mut c.w, &mut c.r);
        let ((), got) = tokio::join!(w.send_raw(&wire), async {
            let mut got = Vec::with_capacity(sent.len());
            for _ in 0..sent.len() {
                got.push(r.frame().await);
            }
            got
        });
        for (i, (g, want)) in got.iter().zip(&sent).enumerate() {
            echoes += 1;
            if g != want {
                bad.push(format!(
                    "run {run} (of {} messages) echo {i}: got {:?} len {}, want {:?} len {}",
                    sent.len(),
                    g.opcode,
                    g.payload.len(),
                    want.opcode,
                    want.payload.len()
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {echoes} echoes differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
    close_and_join(c, server).await;
}

/// With `vectored_threshold(0)` an empty payload is queued as an empty
/// segment; once the header before it was written, the flush offered the
/// stream nothing but that empty slice, got `Ok(0)` and failed with
/// `WriteZero`.
#[tokio::test]
async fn regression_empty_frame_with_vectored_threshold_0_is_not_write_zero() {
    let (l, addr) = listener().await;
    let (sent_tx, sent_rx) = oneshot::channel::<Result<(), String>>();
    let server = tokio::spawn(async move {
        let config = Config::builder().vectored_threshold(0).build();
        let mut conn = accept(&l, &config).await;
        let sent = async {
            conn.send_binary(Bytes::new()).await?;
            conn.send_text("").await?;
            conn.ping(Bytes::new()).await?;
            conn.send_text("after the empty frames").await
        }
        .await;
        let failed = sent.is_err();
        sent_tx
            .send(sent.map_err(|e| e.to_string()))
            .expect("client waiting");
        if !failed {
            while conn.read_message().await?.is_some() {}
        }
        Ok(())
    });
    let mut c = RawClient::connect(addr, "/", "").await;
    let sent = bounded("server sends", sent_rx)
        .await
        .expect("server result");
    assert_eq!(
        sent,
        Ok(()),
        "sending empty frames with vectored_threshold(0)"
    );
    let want = [
        Frame::binary(Bytes::new()),
        Frame::text(""),
        Frame::ping(Bytes::new()),
        Frame::text("after the empty frames"),
    ];
    for (i, want) in want.iter().enumerate() {
        let got = c.frame().await;
        assert_frame(i, &got, want);
    }
    close_and_join(c, server).await;
}
