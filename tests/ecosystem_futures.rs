//! Feature `futures`: `Stream` and `Sink` for `Conn` and its halves, over
//! real loopback TCP. A server whose whole echo is `read.forward(write)`
//! against a tokio-tungstenite client and against rtwire's own client
//! (driven through the same traits), many text and binary messages up to
//! 1 MiB; the whole-`Conn` close handshake through `SinkExt::close`; and
//! `poll_ready` as backpressure: with a tiny high-water mark and a peer
//! that does not read, it goes `Pending` with the queue bounded, and comes
//! back once the peer reads.
#![cfg(feature = "futures")]

mod conn_support;

use std::future::poll_fn;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use conn_support::*;
use futures_util::{Sink, SinkExt, StreamExt};
use rtwire::ws::{CloseCode, Config, Conn, Message};
use rtwire::Error;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as TCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as TClose;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as TMsg;

const MIB: usize = 1 << 20;

fn config() -> Config {
    Config::builder()
        .max_frame_size(4 * MIB)
        .max_message_size(4 * MIB)
        .build()
}

/// The messages each echo test sends: text and binary, empty to 1 MiB.
fn messages() -> Vec<Message> {
    let mut out = Vec::new();
    for i in 0..200usize {
        let len = match i % 10 {
            0 => 0,
            3 => 125,
            5 => 70_000,
            9 if i % 40 == 9 => MIB,
            _ => 1 + i * 7,
        };
        let body = pattern(len, i as u8);
        out.push(if i % 2 == 0 {
            let text: String = body.iter().map(|b| char::from(b'a' + b % 26)).collect();
            Message::Text(text.into())
        } else {
            Message::Binary(Bytes::from(body))
        });
    }
    out
}

/// A server for one connection whose echo is `read.forward(write)`.
/// Returns the peer's close code once the handshake is done.
async fn forward_server() -> (SocketAddr, JoinHandle<Result<Option<u16>, Error>>) {
    let (l, addr) = listener().await;
    let h = tokio::spawn(async move {
        let conn = accept(&l, &config()).await;
        let (read, write) = conn.split();
        let mut read = read;
        (&mut read).forward(write).await?;
        Ok(read.peer_close_frame().map(|c| c.code.as_u16()))
    });
    (addr, h)
}

#[tokio::test]
async fn forward_echo_against_tungstenite() {
    let (addr, server) = forward_server().await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let t_config = WebSocketConfig {
        max_message_size: Some(4 * MIB),
        max_frame_size: Some(4 * MIB),
        ..Default::default()
    };
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(format!("ws://{addr}/"), tcp, Some(t_config))
            .await
            .expect("tungstenite handshake");
    let (mut tx, mut rx) = ws.split();
    let sent = messages();
    let expected = sent.clone();
    let send = async move {
        for m in sent {
            let t = match m {
                Message::Text(t) => TMsg::text(t.as_str()),
                Message::Binary(b) => TMsg::binary(b.to_vec()),
            };
            tx.feed(t).await.unwrap();
        }
        tx.flush().await.unwrap();
        tx
    };
    let recv = async move {
        for (i, want) in expected.iter().enumerate() {
            let got = rx.next().await.expect("echo ended").expect("echo read");
            match (want, got) {
                (Message::Text(w), TMsg::Text(g)) => assert_eq!(w.as_str(), g.as_str(), "{i}"),
                (Message::Binary(w), TMsg::Binary(g)) => assert_eq!(&w[..], &g[..], "{i}"),
                (w, g) => panic!("message {i}: sent {w:?}, got {g:?}"),
            }
        }
        rx
    };
    let (tx, rx) = bounded("echo", async { tokio::join!(send, recv) }).await;
    let mut ws = tx.reunite(rx).unwrap();
    let normal = TClose {
        code: TCode::Normal,
        reason: "".into(),
    };
    bounded("close", ws.close(Some(normal))).await.unwrap();
    while let Some(Ok(_)) = bounded("close reply", ws.next()).await {}
    let code = bounded("server end", server).await.unwrap().unwrap();
    assert_eq!(code, Some(1000));
}

#[tokio::test]
async fn forward_echo_against_rtwire_sink_and_stream() {
    let (addr, server) = forward_server().await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (conn, _) = Conn::connect(tcp, &format!("ws://{addr}/"), &config())
        .await
        .unwrap();
    let (mut rx, mut tx) = conn.split();
    let sent = messages();
    let expected = sent.clone();
    let send = async move {
        let mut items = futures_util::stream::iter(sent.into_iter().map(Ok));
        tx.send_all(&mut items).await.unwrap();
        tx
    };
    let recv = async move {
        for (i, want) in expected.iter().enumerate() {
            let got = rx.next().await.expect("echo ended").expect("echo read");
            assert_eq!(want, &got, "message {i}");
        }
        rx
    };
    let (mut tx, mut rx) = bounded("echo", async { tokio::join!(send, recv) }).await;
    // Our close through the Sink; the read half finishes the handshake.
    bounded("close", SinkExt::close(&mut tx)).await.unwrap();
    assert!(bounded("end", rx.next()).await.is_none());
    assert!(rx.is_closed());
    let code = bounded("server end", server).await.unwrap().unwrap();
    assert_eq!(code, Some(1000));
}

#[tokio::test]
async fn whole_conn_close_runs_the_handshake() {
    let (addr, server) = forward_server().await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut conn, _) = Conn::connect(tcp, &format!("ws://{addr}/"), &config())
        .await
        .unwrap();
    bounded("send", conn.send(Message::Text("one".into())))
        .await
        .unwrap();
    let echo = bounded("echo", conn.next()).await.unwrap().unwrap();
    assert_eq!(echo, Message::Text("one".into()));
    bounded("close", SinkExt::close(&mut conn)).await.unwrap();
    assert!(conn.is_closed());
    assert_eq!(
        conn.peer_close_frame().map(|c| c.code),
        Some(CloseCode::NORMAL)
    );
    assert!(
        conn.next().await.is_none(),
        "the stream ends after the handshake"
    );
    assert!(matches!(
        conn.send(Message::Text("late".into())).await,
        Err(Error::ConnectionClosed)
    ));
    assert_eq!(
        bounded("server end", server).await.unwrap().unwrap(),
        Some(1000)
    );
}

#[tokio::test]
async fn poll_ready_is_backpressure() {
    const HIGH_WATER: usize = 1024;
    const CHUNK: usize = 60_000;
    let (l, addr) = listener().await;
    let mut peer = TcpStream::connect(addr).await.unwrap();
    peer.write_all(upgrade_request(addr, "/", "").as_bytes())
        .await
        .unwrap();
    let config = Config::builder()
        .write_buffer_high_water(HIGH_WATER)
        .build();
    let mut conn = accept(&l, &config).await;
    let (head, rest) = read_response_head(&mut peer).await;
    assert_eq!(head.status(), 101);
    assert!(rest.is_empty());

    // The peer reads nothing: feed until poll_ready says wait.
    let payload = Bytes::from(pattern(CHUNK, 7));
    let mut fed = 0usize;
    let mut pending = false;
    for _ in 0..4096 {
        let ready = poll_fn(|cx| Poll::Ready(Pin::new(&mut conn).poll_ready(cx))).await;
        match ready {
            Poll::Ready(r) => r.unwrap(),
            Poll::Pending => {
                pending = true;
                break;
            }
        }
        assert!(
            Conn::buffered(&conn) <= HIGH_WATER,
            "poll_ready returned Ready with {} bytes queued",
            Conn::buffered(&conn)
        );
        Pin::new(&mut conn)
            .start_send(Message::Binary(payload.clone()))
            .unwrap();
        fed += 1;
    }
    assert!(pending, "poll_ready never waited ({fed} messages fed)");
    // Bounded: what is queued is at most one message over the mark.
    assert!(Conn::buffered(&conn) <= HIGH_WATER + CHUNK + 14);

    // Now the peer reads everything: the flush completes.
    let total = fed * (CHUNK + 4); // 2 + 2 bytes of header each
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0;
        while got < total {
            let n = peer.read(&mut buf).await.unwrap();
            assert!(n > 0, "EOF after {got} of {total} bytes");
            got += n;
        }
        got
    });
    bounded("flush", SinkExt::flush(&mut conn)).await.unwrap();
    assert_eq!(Conn::buffered(&conn), 0);
    assert_eq!(bounded("peer read", reader).await.unwrap(), total);
}

/// A `SinkExt::close` dropped while its close frame cannot be written
/// (the peer is not reading) loses nothing: the next one resumes, the
/// peer gets every message, then exactly one close frame, and the
/// handshake completes.
#[tokio::test]
async fn a_dropped_close_resumes() {
    const CHUNK: usize = 60_000;
    let (l, addr) = listener().await;
    let config = Config::builder().write_buffer_high_water(1024).build();
    let accept = tokio::spawn(async move { accept(&l, &config).await });
    let mut peer = RawClient::connect(addr, "/", "").await;
    let mut conn = accept.await.unwrap();

    // Fill the socket until a write would block.
    let payload = Bytes::from(pattern(CHUNK, 3));
    let mut fed = 0usize;
    loop {
        let ready = poll_fn(|cx| Poll::Ready(Pin::new(&mut conn).poll_ready(cx))).await;
        match ready {
            Poll::Ready(r) => r.unwrap(),
            Poll::Pending => break,
        }
        Pin::new(&mut conn)
            .start_send(Message::Binary(payload.clone()))
            .unwrap();
        fed += 1;
        assert!(fed < 4096, "the socket never filled");
    }
    // One poll of close, then the future is dropped.
    {
        let mut close = SinkExt::close(&mut conn);
        let first = poll_fn(|cx| Poll::Ready(Pin::new(&mut close).poll(cx))).await;
        assert!(
            first.is_pending(),
            "closing cannot finish: the peer is not reading"
        );
    }
    let peer_side = tokio::spawn(async move {
        for i in 0..fed {
            let f = peer.frame().await;
            assert_eq!(
                (f.opcode, f.payload.len()),
                (rtwire::ws::OpCode::Binary, CHUNK),
                "{i}"
            );
        }
        let f = peer.frame().await;
        assert_eq!(f.opcode, rtwire::ws::OpCode::Close);
        assert_eq!(&f.payload[..], &1000u16.to_be_bytes());
        peer.send(rtwire::ws::Frame::close(CloseCode::NORMAL, ""))
            .await;
        // Nothing after the one close: the server ends the stream.
        assert!(peer.r.recv().await.unwrap().is_none());
    });
    bounded("close again", SinkExt::close(&mut conn))
        .await
        .unwrap();
    assert!(conn.is_closed());
    bounded("peer", peer_side).await.unwrap();
}
