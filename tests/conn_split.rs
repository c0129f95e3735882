//! `Conn::split`: the read half in one task, the write half in another.

mod conn_support;

use std::time::Duration;

use bytes::Bytes;
use conn_support::*;
use rtwire::ws::{CloseCode, Config, Frame, Message, OpCode};
use rtwire::Error;
use tokio::sync::oneshot;

#[tokio::test]
async fn read_half_answers_pings_and_close_while_write_half_idles() {
    let (l, addr) = listener().await;
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let conn = accept(&l, &Config::default()).await;
        let (mut rh, mut wh) = conn.split();
        // The write half sits idle in its own task until the read half is
        // done, then tries to send.
        let writer = tokio::spawn(async move {
            done_rx.await.unwrap();
            wh.send_text("too late").await
        });
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(m) = rh.read_message().await.unwrap() {
                got.push(m);
            }
            (got, rh.peer_close_frame().map(|c| c.code))
        });
        let r = reader.await.unwrap();
        done_tx.send(()).unwrap();
        (r, writer.await.unwrap())
    });
    let mut c = RawClient::connect(addr, "/", "").await;
    for p in [&b"p1"[..], b"", &[0x5a; 125]] {
        c.send(Frame::ping(Bytes::copy_from_slice(p))).await;
        let f = c.frame().await;
        assert_eq!((f.opcode, &f.payload[..]), (OpCode::Pong, p));
    }
    c.send(Frame::text("hello")).await;
    c.send(Frame::new(OpCode::Binary, "frag").with_fin(false))
        .await;
    c.send(Frame::ping("mid")).await;
    let f = c.frame().await;
    assert_eq!((f.opcode, &f.payload[..]), (OpCode::Pong, &b"mid"[..]));
    c.send(Frame::new(OpCode::Continuation, "ment")).await;
    c.send(Frame::close(CloseCode(4005), "bye")).await;
    assert_eq!(c.r.expect_close().await, Some(4005));
    c.r.expect_eof_within(Duration::from_secs(2)).await;
    let ((got, code), late) = bounded("server", server).await.unwrap();
    assert_eq!(
        got,
        [Message::text("hello"), Message::binary(&b"fragment"[..])]
    );
    assert_eq!(code, Some(CloseCode(4005)));
    assert!(
        matches!(late, Err(Error::AlreadyClosing | Error::ConnectionClosed)),
        "{late:?}"
    );
}

#[tokio::test]
async fn halves_stream_both_ways_concurrently_and_close_from_the_write_half() {
    const N: u32 = 1000;
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let conn = accept(&l, &Config::default()).await;
        let (mut rh, mut wh) = conn.split();
        let writer = tokio::spawn(async move {
            for i in 0..N {
                let mut p = pattern(1 + (i as usize * 37) % 3000, i as u8);
                p[0] = i as u8;
                wh.send_binary(p).await.unwrap();
            }
            wh.close(CloseCode(4006), "writer done").await.unwrap();
        });
        let mut got = 0u32;
        while let Some(m) = rh.read_message().await.unwrap() {
            assert_eq!(m, Message::text(format!("client {got}")));
            got += 1;
        }
        writer.await.unwrap();
        got
    });
    let c = RawClient::connect(addr, "/", "").await;
    let (mut r, mut w) = (c.r, c.w);
    let client_writer = tokio::spawn(async move {
        for i in 0..N {
            w.send(Frame::text(format!("client {i}"))).await;
        }
        w
    });
    let mut i = 0u32;
    let code = loop {
        let f = r.frame().await;
        match f.opcode {
            OpCode::Binary => {
                let mut want = pattern(1 + (i as usize * 37) % 3000, i as u8);
                want[0] = i as u8;
                assert_eq!(&f.payload[..], &want[..], "message {i}");
                i += 1;
            }
            OpCode::Close => break u16::from_be_bytes([f.payload[0], f.payload[1]]),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!((i, code), (N, 4006));
    let mut w = bounded("client writer", client_writer).await.unwrap();
    w.send(Frame::close(CloseCode(4006), "")).await;
    r.expect_eof_within(Duration::from_secs(2)).await;
    assert_eq!(bounded("server", server).await.unwrap(), N);
}
