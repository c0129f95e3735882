//! The `/echo` contract, checked against an in-process echo loop identical
//! to `examples/echo_server.rs` (same config limits and loop: every message
//! fed back with the same type, flushed when the next read waits), plus the
//! `chat` subprotocol, served on a port-0 loopback listener.

mod conn_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use conn_support::*;
use futures_util::{SinkExt, StreamExt};
use rtwire::ws::{CloseCode, Config, Conn, Frame, Message, OpCode};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as TMsg;

const BIG: usize = 16 << 20;

/// The echo server of `examples/echo_server.rs`, configured with `chat`.
async fn echo_server() -> SocketAddr {
    let (l, addr) = listener().await;
    let config = Arc::new(
        Config::builder()
            .max_frame_size(64 << 20)
            .max_message_size(64 << 20)
            .subprotocols(["chat"])
            .build(),
    );
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                return;
            };
            let _ = tcp.set_nodelay(true);
            let config = config.clone();
            tokio::spawn(async move {
                let Ok((mut conn, _)) = Conn::accept(tcp, &config).await else {
                    return;
                };
                while let Ok(Some(msg)) = conn.read_message().await {
                    if conn.feed_message(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn t_config() -> WebSocketConfig {
    WebSocketConfig {
        max_message_size: Some(64 << 20),
        max_frame_size: Some(64 << 20),
        ..Default::default()
    }
}

async fn t_client(
    addr: SocketAddr,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let (ws, resp) = tokio_tungstenite::connect_async_with_config(
        format!("ws://{addr}/echo"),
        Some(t_config()),
        true,
    )
    .await
    .expect("tungstenite handshake");
    assert_eq!(resp.status().as_u16(), 101);
    ws
}

#[tokio::test]
async fn upgrade_answers_101_with_and_without_origin() {
    let addr = echo_server().await;
    for extra in ["", "Origin: https://anything.example\r\n"] {
        let mut c = RawClient::connect(addr, "/echo", extra).await;
        assert_eq!(c.resp.status(), 101);
        // RFC 6455 §1.3's sample key and accept value.
        assert_eq!(
            c.resp.header_str("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        assert_eq!(c.resp.header_str("sec-websocket-protocol"), None);
        c.send(Frame::text("hi")).await;
        let f = c.frame().await;
        assert_eq!((f.opcode, &f.payload[..]), (OpCode::Text, &b"hi"[..]));
    }
}

#[tokio::test]
async fn every_message_echoed_in_order_with_same_type_and_payload() {
    let addr = echo_server().await;
    let ws = t_client(addr).await;
    let msgs = vec![
        TMsg::Text("first".into()),
        TMsg::Text(String::new()),
        TMsg::Binary(Vec::new()),
        TMsg::Binary(vec![0, 0xff, 0x80, 0x7f]),
        TMsg::Text("ünïcödé ✓ 🦀".into()),
        TMsg::Binary(pattern(BIG, 11)),
        TMsg::Text("é✓".repeat(BIG / 5 + 1)),
        TMsg::Binary(pattern(65_536, 12)),
        TMsg::Text("last".into()),
    ];
    // Pipelined: the sender never waits for an echo; the receiver reads
    // concurrently (a client that wrote 48 MiB without reading would
    // rightly stall against the server's bounded write buffer).
    let (mut sink, mut stream) = ws.split();
    let sent = msgs.clone();
    let sender = tokio::spawn(async move {
        for m in sent {
            sink.feed(m).await.unwrap();
        }
        sink.flush().await.unwrap();
        sink
    });
    for (i, m) in msgs.iter().enumerate() {
        let got = bounded("echo", stream.next()).await.unwrap().unwrap();
        assert!(got == *m, "message {i} differs (len {})", got.len());
    }
    let mut ws = bounded("sender", sender)
        .await
        .unwrap()
        .reunite(stream)
        .unwrap();
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn fragmented_messages_are_reassembled_and_utf8_checked_whole() {
    let addr = echo_server().await;
    let mut c = RawClient::connect(addr, "/echo", "").await;
    let text = "ünïcödé ✓ across fragments 🦀";
    let b = Bytes::from(text);
    // Cut inside multi-byte characters.
    let cuts = [0, 1, 2, 5, 13, 14, b.len() - 2, b.len()];
    for w in cuts.windows(2) {
        let op = if w[0] == 0 {
            OpCode::Text
        } else {
            OpCode::Continuation
        };
        c.send(Frame::new(op, b.slice(w[0]..w[1])).with_fin(w[1] == b.len()))
            .await;
    }
    let f = c.frame().await;
    assert_eq!(
        (f.opcode, f.fin, &f.payload[..]),
        (OpCode::Text, true, text.as_bytes())
    );

    let bin = Bytes::from(pattern(300_000, 4));
    for (i, chunk) in bin.chunks(70_000).enumerate() {
        let op = if i == 0 {
            OpCode::Binary
        } else {
            OpCode::Continuation
        };
        let last = (i + 1) * 70_000 >= bin.len();
        c.send(Frame::new(op, Bytes::copy_from_slice(chunk)).with_fin(last))
            .await;
    }
    let f = c.frame().await;
    assert_eq!((f.opcode, f.payload.len()), (OpCode::Binary, bin.len()));
    assert!(f.payload == bin);

    // Each fragment is fine alone up to its cut, the whole is not UTF-8.
    c.send(Frame::new(OpCode::Text, Bytes::from_static(b"ok \xe2\x82")).with_fin(false))
        .await;
    c.send(Frame::new(
        OpCode::Continuation,
        Bytes::from_static(b"\xff"),
    ))
    .await;
    assert_eq!(c.r.expect_close().await, Some(1007));
    c.r.expect_eof_within(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn pings_are_answered_with_their_payload_also_mid_message() {
    let addr = echo_server().await;
    let mut c = RawClient::connect(addr, "/echo", "").await;
    for p in [&b""[..], b"x", &[0xee; 125]] {
        c.send(Frame::ping(Bytes::copy_from_slice(p))).await;
        let f = c.frame().await;
        assert_eq!((f.opcode, &f.payload[..]), (OpCode::Pong, p));
    }
    c.send(Frame::new(OpCode::Text, "before ").with_fin(false))
        .await;
    c.send(Frame::ping("in the middle")).await;
    c.send(Frame::new(OpCode::Continuation, "after")).await;
    let f = c.frame().await;
    assert_eq!(
        (f.opcode, &f.payload[..]),
        (OpCode::Pong, &b"in the middle"[..])
    );
    let f = c.frame().await;
    assert_eq!(
        (f.opcode, &f.payload[..]),
        (OpCode::Text, &b"before after"[..])
    );
}

#[tokio::test]
async fn chat_is_selected_when_offered() {
    let addr = echo_server().await;
    for (offer, want) in [
        ("Sec-WebSocket-Protocol: chat\r\n", Some("chat")),
        ("Sec-WebSocket-Protocol: superchat, chat\r\n", Some("chat")),
        (
            "Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: chat\r\n",
            Some("chat"),
        ),
        ("Sec-WebSocket-Protocol: chat2\r\n", None),
        ("", None),
    ] {
        let c = RawClient::connect(addr, "/echo", offer).await;
        assert_eq!(
            c.resp.header_str("sec-websocket-protocol"),
            want,
            "{offer:?}"
        );
    }
    // An rtwire client offering it sees it selected.
    let config = Config::builder().subprotocols(["x", "chat"]).build();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (_c, resp) = Conn::connect(tcp, &format!("ws://{addr}/echo"), &config)
        .await
        .unwrap();
    assert_eq!(resp.header_str("sec-websocket-protocol"), Some("chat"));
}

#[tokio::test]
async fn close_code_comes_back_and_tcp_closes_within_2s() {
    let addr = echo_server().await;
    for code in [1000u16, 1001, 1008, 3001, 4000, 4999] {
        let mut c = RawClient::connect(addr, "/echo", "").await;
        c.send(Frame::text("x")).await;
        c.send(Frame::close(CloseCode(code), "bye")).await;
        assert_eq!(c.frame().await.opcode, OpCode::Text);
        assert_eq!(c.r.expect_close().await, Some(code));
        c.r.expect_eof_within(Duration::from_secs(2)).await;
    }
    let mut c = RawClient::connect(addr, "/echo", "").await;
    c.send(Frame::close_empty()).await;
    assert_eq!(c.r.expect_close().await, Some(1000));
    c.r.expect_eof_within(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_connections_with_hundred_pipelined_messages_each() {
    let addr = echo_server().await;
    let mut tasks = Vec::new();
    for conn_id in 0..100u32 {
        tasks.push(tokio::spawn(async move {
            let msg = |i: u32| -> Vec<u8> {
                let mut p = pattern(((conn_id * 131 + i * 17) % 2000) as usize + 8, i as u8);
                p[..4].copy_from_slice(&conn_id.to_be_bytes());
                p[4..8].copy_from_slice(&i.to_be_bytes());
                p
            };
            if conn_id % 2 == 0 {
                let mut ws = t_client(addr).await;
                for i in 0..100 {
                    let m = if i % 2 == 0 {
                        TMsg::Binary(msg(i))
                    } else {
                        TMsg::Text(format!("{conn_id}/{i}"))
                    };
                    ws.feed(m).await.unwrap();
                }
                ws.flush().await.unwrap();
                for i in 0..100 {
                    let got = ws.next().await.unwrap().unwrap();
                    if i % 2 == 0 {
                        assert!(got == TMsg::Binary(msg(i)), "conn {conn_id} msg {i}");
                    } else {
                        assert_eq!(got, TMsg::Text(format!("{conn_id}/{i}")));
                    }
                }
                ws.close(None).await.unwrap();
            } else {
                let tcp = TcpStream::connect(addr).await.unwrap();
                tcp.set_nodelay(true).unwrap();
                let (mut conn, _) =
                    Conn::connect(tcp, &format!("ws://{addr}/echo"), &Config::default())
                        .await
                        .unwrap();
                for i in 0..100 {
                    let m = if i % 2 == 0 {
                        Message::binary(msg(i))
                    } else {
                        Message::text(format!("{conn_id}/{i}"))
                    };
                    conn.feed_message(m).await.unwrap();
                }
                conn.flush().await.unwrap();
                for i in 0..100 {
                    let got = conn.read_message().await.unwrap().unwrap();
                    if i % 2 == 0 {
                        assert!(got == Message::binary(msg(i)), "conn {conn_id} msg {i}");
                    } else {
                        assert_eq!(got, Message::text(format!("{conn_id}/{i}")));
                    }
                }
                conn.close(CloseCode::NORMAL, "").await.unwrap();
            }
        }));
    }
    bounded("100 connections", async {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await;
}
