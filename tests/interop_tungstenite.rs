//! Interop with tokio-tungstenite over real loopback TCP, both ways:
//! rtwire server (`Conn::accept`) against a tungstenite client, and rtwire
//! client (`Conn::connect`) against a tungstenite server.

mod conn_support;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use conn_support::*;
use futures_util::{SinkExt, StreamExt};
use rtwire::ws::{CloseCode, Config, Conn, Frame, Message, OpCode};
use rtwire::{Error, HandshakeError};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{
    CloseCode as TCode, Data, OpCode as TOp,
};
use tokio_tungstenite::tungstenite::protocol::frame::Frame as TFrame;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame as TClose, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as TMsg;
use tokio_tungstenite::WebSocketStream;

type TWs = WebSocketStream<TcpStream>;

const BIG: usize = 16 << 20;

fn big_config() -> Config {
    Config::builder()
        .max_frame_size(64 << 20)
        .max_message_size(64 << 20)
        .build()
}

fn t_config() -> WebSocketConfig {
    WebSocketConfig {
        max_message_size: Some(64 << 20),
        max_frame_size: Some(64 << 20),
        ..Default::default()
    }
}

/// An rtwire echo server for one connection. Returns the peer's close
/// code once the closing handshake is done.
async fn rtwire_echo(config: Config) -> (SocketAddr, JoinHandle<Result<Option<u16>, Error>>) {
    let (l, addr) = listener().await;
    let h = tokio::spawn(async move {
        let mut conn = accept(&l, &config).await;
        while let Some(msg) = conn.read_message().await? {
            conn.send_message(msg).await?;
        }
        Ok(conn.peer_close_frame().map(|c| c.code.as_u16()))
    });
    (addr, h)
}

async fn t_client(addr: SocketAddr, protocols: Option<&str>) -> TWs {
    let mut req = format!("ws://{addr}/").into_client_request().unwrap();
    if let Some(p) = protocols {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async_with_config(req, tcp, Some(t_config()))
        .await
        .expect("tungstenite client handshake");
    ws
}

async fn t_next(ws: &mut TWs) -> TMsg {
    bounded("tungstenite next", ws.next())
        .await
        .expect("stream ended")
        .expect("tungstenite read error")
}

fn t_frag(data: &[u8], op: Data, fin: bool) -> TMsg {
    TMsg::Frame(TFrame::message(data.to_vec(), TOp::Data(op), fin))
}

/// After the close handshake, the raw TCP stream under tungstenite must
/// reach EOF within 2 s: the server closed it.
async fn assert_tcp_closed(ws: &mut TWs) {
    let mut b = [0u8; 64];
    let r = within(
        Duration::from_secs(2),
        "server closing TCP",
        ws.get_mut().read(&mut b),
    )
    .await;
    match r {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected EOF after close, got {other:?}"),
    }
}

#[tokio::test]
async fn rtwire_server_echoes_text_binary_and_empty_to_tungstenite() {
    let (addr, server) = rtwire_echo(Config::default()).await;
    let mut ws = t_client(addr, None).await;
    let msgs = [
        TMsg::Text("hello, wörld ✓".into()),
        TMsg::Binary(vec![0, 1, 2, 0xff, 0x80]),
        TMsg::Text(String::new()),
        TMsg::Binary(Vec::new()),
        TMsg::Binary(pattern(70_000, 7)),
        TMsg::Text("x".repeat(300)),
    ];
    for m in &msgs {
        ws.send(m.clone()).await.unwrap();
    }
    for m in &msgs {
        assert_eq!(&t_next(&mut ws).await, m);
    }
    ws.close(None).await.unwrap();
    assert_eq!(bounded("server", server).await.unwrap().unwrap(), None);
}

#[tokio::test]
async fn rtwire_server_16mib_messages_with_tungstenite() {
    let (addr, server) = rtwire_echo(big_config()).await;
    let mut ws = t_client(addr, None).await;
    let bin = pattern(BIG + 3, 1);
    ws.send(TMsg::Binary(bin.clone())).await.unwrap();
    assert_eq!(t_next(&mut ws).await, TMsg::Binary(bin));
    let text = "ab\u{e9}\u{2713}".repeat(BIG / 6 + 1);
    assert!(text.len() >= BIG);
    ws.send(TMsg::Text(text.clone())).await.unwrap();
    assert_eq!(t_next(&mut ws).await, TMsg::Text(text));
    ws.close(None).await.unwrap();
    assert_eq!(bounded("server", server).await.unwrap().unwrap(), None);
}

#[tokio::test]
async fn rtwire_server_assembles_tungstenite_fragments_with_ping_in_between() {
    let (addr, server) = rtwire_echo(Config::default()).await;
    let mut ws = t_client(addr, None).await;
    // "é" (C3 A9) and "✓" (E2 9C 93) are split across fragments: UTF-8 is
    // validated over the whole message, not per frame.
    let text = "caf\u{e9} \u{2713} ok";
    let b = text.as_bytes();
    ws.send(t_frag(&b[..4], Data::Text, false)).await.unwrap();
    ws.send(TMsg::Ping(b"mid-message".to_vec())).await.unwrap();
    ws.send(t_frag(&b[4..8], Data::Continue, false))
        .await
        .unwrap();
    ws.send(t_frag(&b[8..], Data::Continue, true))
        .await
        .unwrap();
    assert_eq!(t_next(&mut ws).await, TMsg::Pong(b"mid-message".to_vec()));
    assert_eq!(t_next(&mut ws).await, TMsg::Text(text.into()));

    let bin = pattern(1000, 9);
    ws.send(t_frag(&bin[..1], Data::Binary, false))
        .await
        .unwrap();
    ws.send(t_frag(&[], Data::Continue, false)).await.unwrap();
    ws.send(t_frag(&bin[1..], Data::Continue, true))
        .await
        .unwrap();
    assert_eq!(t_next(&mut ws).await, TMsg::Binary(bin));

    let max_ping = vec![0xa5u8; 125];
    ws.send(TMsg::Ping(max_ping.clone())).await.unwrap();
    assert_eq!(t_next(&mut ws).await, TMsg::Pong(max_ping));
    ws.close(None).await.unwrap();
    assert_eq!(bounded("server", server).await.unwrap().unwrap(), None);
}

#[tokio::test]
async fn rtwire_server_sends_fragments_and_mid_message_ping_to_tungstenite() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &Config::default()).await;
        conn.send_fragmented(Message::text("fragmented \u{2713} text"), 3)
            .await
            .unwrap();
        conn.send_fragmented(Message::binary(pattern(10_000, 3)), 4096)
            .await
            .unwrap();
        conn.send_fragmented(Message::text(""), 3).await.unwrap();
        // A ping between the fragments of a message.
        conn.feed_frame(Frame::new(OpCode::Text, Bytes::from_static(b"part1 ")).with_fin(false))
            .await
            .unwrap();
        conn.ping(Bytes::from_static(b"server-ping")).await.unwrap();
        conn.write_frame(Frame::new(
            OpCode::Continuation,
            Bytes::from_static(b"part2"),
        ))
        .await
        .unwrap();
        // The tungstenite client answers the ping.
        let pong = bounded("pong", async {
            loop {
                let f = conn.read_frame().await.unwrap();
                if f.opcode == OpCode::Pong {
                    return f;
                }
            }
        })
        .await;
        assert_eq!(&pong.payload[..], b"server-ping");
        conn.close(CloseCode(4000), "done").await
    });
    let mut ws = t_client(addr, None).await;
    assert_eq!(
        t_next(&mut ws).await,
        TMsg::Text("fragmented \u{2713} text".into())
    );
    assert_eq!(t_next(&mut ws).await, TMsg::Binary(pattern(10_000, 3)));
    assert_eq!(t_next(&mut ws).await, TMsg::Text(String::new()));
    assert_eq!(t_next(&mut ws).await, TMsg::Ping(b"server-ping".to_vec()));
    assert_eq!(t_next(&mut ws).await, TMsg::Text("part1 part2".into()));
    match t_next(&mut ws).await {
        TMsg::Close(Some(c)) => assert_eq!((u16::from(c.code), &*c.reason), (4000, "done")),
        other => panic!("expected close 4000, got {other:?}"),
    }
    let end = bounded("tungstenite end", ws.next()).await;
    assert!(!matches!(end, Some(Ok(_))), "data after close: {end:?}");
    bounded("server", server).await.unwrap().unwrap();
}

#[tokio::test]
async fn rtwire_server_echoes_close_code_and_closes_tcp() {
    for code in [1000u16, 1001, 1003, 3000, 4001, 4999] {
        let (addr, server) = rtwire_echo(Config::default()).await;
        let mut ws = t_client(addr, None).await;
        ws.send(TMsg::Text("before close".into())).await.unwrap();
        assert_eq!(t_next(&mut ws).await, TMsg::Text("before close".into()));
        ws.close(Some(TClose {
            code: TCode::from(code),
            reason: Cow::Borrowed("bye"),
        }))
        .await
        .unwrap();
        match t_next(&mut ws).await {
            TMsg::Close(Some(c)) => assert_eq!(u16::from(c.code), code),
            other => panic!("expected close {code}, got {other:?}"),
        }
        assert_tcp_closed(&mut ws).await;
        assert_eq!(
            bounded("server", server).await.unwrap().unwrap(),
            Some(code)
        );
    }
}

#[tokio::test]
async fn rtwire_server_answers_empty_close_with_1000() {
    let (addr, server) = rtwire_echo(Config::default()).await;
    let mut ws = t_client(addr, None).await;
    ws.close(None).await.unwrap();
    match t_next(&mut ws).await {
        TMsg::Close(Some(c)) => assert_eq!(u16::from(c.code), 1000),
        other => panic!("expected close 1000, got {other:?}"),
    }
    assert_tcp_closed(&mut ws).await;
    assert_eq!(bounded("server", server).await.unwrap().unwrap(), None);
}

#[tokio::test]
async fn rtwire_server_close_code_reaches_tungstenite() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut conn = accept(&l, &Config::default()).await;
        conn.close(CloseCode(4002), "going").await
    });
    let mut ws = t_client(addr, None).await;
    match t_next(&mut ws).await {
        TMsg::Close(Some(c)) => assert_eq!((u16::from(c.code), &*c.reason), (4002, "going")),
        other => panic!("expected close 4002, got {other:?}"),
    }
    // tungstenite writes its reply when polled again; then the server's
    // close() completes cleanly and the server closes the TCP connection.
    let end = bounded("tungstenite end", ws.next()).await;
    assert!(!matches!(end, Some(Ok(_))), "data after close: {end:?}");
    bounded("server close", server).await.unwrap().unwrap();
    assert_tcp_closed(&mut ws).await;
}

#[tokio::test]
async fn rtwire_server_selects_offered_subprotocol_only() {
    let cases: [(&[&str], Option<&str>, Option<&str>); 6] = [
        (&["chat"], Some("chat"), Some("chat")),
        (&["chat"], Some("superchat, chat, other"), Some("chat")),
        (&["chat"], Some("other"), None),
        (&["chat"], Some("chatty,xchat"), None),
        (&["chat"], None, None),
        (&["v2", "chat"], Some("chat, v2"), Some("v2")),
    ];
    for (server_protos, offered, want) in cases {
        let config = Config::builder()
            .subprotocols(server_protos.iter().copied())
            .build();
        let (l, addr) = listener().await;
        let server = tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let (_conn, accepted) = Conn::accept(tcp, &config).await.unwrap();
            accepted.subprotocol
        });
        let extra = offered.map_or(String::new(), |p| {
            format!("Sec-WebSocket-Protocol: {p}\r\n")
        });
        let c = RawClient::connect(addr, "/", &extra).await;
        assert_eq!(
            c.resp.header_str("sec-websocket-protocol"),
            want,
            "offered {offered:?} to a server with {server_protos:?}"
        );
        assert_eq!(bounded("server", server).await.unwrap().as_deref(), want);
    }
    // tungstenite checks the selection itself (it splits the offer on ","
    // without trimming, hence no space).
    let (addr, server) = rtwire_echo(Config::builder().subprotocols(["chat"]).build()).await;
    let mut ws = t_client(addr, Some("other,chat")).await;
    ws.send(TMsg::Text("hi".into())).await.unwrap();
    assert_eq!(t_next(&mut ws).await, TMsg::Text("hi".into()));
    ws.close(None).await.unwrap();
    bounded("server", server).await.unwrap().unwrap();
}

// ---------------------------------------------------------------------------
// rtwire client against a tungstenite server.

/// A tungstenite echo server for one connection; returns the close frame
/// it received (tungstenite replies to it).
async fn t_echo_server() -> (SocketAddr, JoinHandle<Option<u16>>) {
    let (l, addr) = listener().await;
    let h = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async_with_config(tcp, Some(t_config()))
            .await
            .unwrap();
        while let Some(m) = ws.next().await {
            match m.expect("tungstenite server read") {
                m @ (TMsg::Text(_) | TMsg::Binary(_)) => ws.send(m).await.unwrap(),
                TMsg::Close(c) => {
                    // Let tungstenite send its reply, then drop the TCP.
                    let _ = ws.flush().await;
                    return c.map(|c| u16::from(c.code));
                }
                _ => {}
            }
        }
        None
    });
    (addr, h)
}

async fn r_client(addr: SocketAddr, config: &Config) -> Conn<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (conn, resp) = Conn::connect(tcp, &format!("ws://{addr}/path?q=1"), config)
        .await
        .expect("rtwire client handshake");
    assert_eq!(resp.status(), 101);
    conn
}

async fn r_next(conn: &mut Conn<TcpStream>) -> Message {
    bounded("rtwire read_message", conn.read_message())
        .await
        .expect("read_message")
        .expect("connection closed")
}

#[tokio::test]
async fn rtwire_client_round_trips_with_tungstenite_server() {
    let (addr, server) = t_echo_server().await;
    let mut conn = r_client(addr, &big_config()).await;
    let msgs = [
        Message::text("hello from rtwire ✓"),
        Message::binary(vec![9u8, 8, 7, 0]),
        Message::text(""),
        Message::binary(Bytes::new()),
        Message::binary(pattern(BIG + 5, 4)),
        Message::text("é".repeat(BIG / 2 + 1)),
    ];
    for m in &msgs {
        conn.send_message(m.clone()).await.unwrap();
        assert_eq!(&r_next(&mut conn).await, m);
    }
    // Fragmented sends, with multi-byte characters split across frames.
    let text = Message::text("ünïcödé ✓ fragments");
    conn.send_fragmented(text.clone(), 3).await.unwrap();
    assert_eq!(r_next(&mut conn).await, text);
    let bin = Message::binary(pattern(100_000, 5));
    conn.send_fragmented(bin.clone(), 9_999).await.unwrap();
    assert_eq!(r_next(&mut conn).await, bin);
    // Ping: tungstenite answers with the same payload.
    conn.ping(Bytes::from_static(b"client-ping")).await.unwrap();
    let pong = bounded("pong", conn.read_frame()).await.unwrap();
    assert_eq!(
        (pong.opcode, &pong.payload[..]),
        (OpCode::Pong, &b"client-ping"[..])
    );
    // Our close code reaches tungstenite, which replies.
    bounded("close", conn.close(CloseCode(4004), "bye"))
        .await
        .unwrap();
    assert!(conn.is_closed());
    assert_eq!(bounded("server", server).await.unwrap(), Some(4004));
}

#[tokio::test]
async fn rtwire_client_assembles_tungstenite_fragments_and_answers_mid_message_ping() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let text = "fragments \u{2713} from tungstenite".as_bytes().to_vec();
        ws.send(t_frag(&text[..12], Data::Text, false))
            .await
            .unwrap();
        ws.send(TMsg::Ping(b"t-ping".to_vec())).await.unwrap();
        ws.send(t_frag(&text[12..], Data::Continue, true))
            .await
            .unwrap();
        // The rtwire client's pong.
        let pong = match ws.next().await.unwrap().unwrap() {
            TMsg::Pong(p) => p,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(pong, b"t-ping");
        ws.send(TMsg::Close(Some(TClose {
            code: TCode::from(4003),
            reason: "server done".into(),
        })))
        .await
        .unwrap();
        // Our close reply carries the same code.
        match ws.next().await {
            Some(Ok(TMsg::Close(Some(c)))) => u16::from(c.code),
            other => panic!("expected close reply, got {other:?}"),
        }
    });
    let mut conn = r_client(addr, &Config::default()).await;
    assert_eq!(
        r_next(&mut conn).await,
        Message::text("fragments \u{2713} from tungstenite")
    );
    // The pong goes out when the next read waits; the server then closes.
    assert_eq!(bounded("close", conn.read_message()).await.unwrap(), None);
    let cf = conn.peer_close_frame().expect("peer close frame");
    assert_eq!((cf.code, cf.reason_str()), (CloseCode(4003), "server done"));
    assert_eq!(bounded("server", server).await.unwrap(), 4003);
    assert!(matches!(conn.read_message().await, Ok(None)));
}

#[tokio::test]
async fn rtwire_client_subprotocol_negotiation_with_tungstenite_server() {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    #[allow(clippy::result_large_err)] // tungstenite's callback signature
    async fn serve(l: TcpListener, select: &'static str) -> Option<String> {
        let (tcp, _) = l.accept().await.unwrap();
        let mut offered = None;
        let r = tokio_tungstenite::accept_hdr_async(tcp, |req: &Request, mut resp: Response| {
            offered = req
                .headers()
                .get("Sec-WebSocket-Protocol")
                .map(|v| v.to_str().unwrap().to_owned());
            resp.headers_mut()
                .insert("Sec-WebSocket-Protocol", select.parse().unwrap());
            Ok(resp)
        })
        .await;
        drop(r);
        offered
    }
    let config = Config::builder().subprotocols(["chat", "v2"]).build();

    let (l, addr) = listener().await;
    let server = tokio::spawn(serve(l, "chat"));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (_conn, resp) = Conn::connect(tcp, &format!("ws://{addr}/"), &config)
        .await
        .unwrap();
    assert_eq!(resp.header_str("sec-websocket-protocol"), Some("chat"));
    assert_eq!(
        bounded("server", server).await.unwrap().as_deref(),
        Some("chat, v2")
    );

    // A server selecting a protocol we never offered is refused.
    let (l, addr) = listener().await;
    let server = tokio::spawn(serve(l, "evil"));
    let tcp = TcpStream::connect(addr).await.unwrap();
    match Conn::connect(tcp, &format!("ws://{addr}/"), &config).await {
        Err(Error::Handshake(HandshakeError::ProtocolNotOffered(p))) => assert_eq!(p, "evil"),
        other => panic!("expected ProtocolNotOffered, got {:?}", other.map(|_| ())),
    }
    bounded("server", server).await.unwrap();
}
