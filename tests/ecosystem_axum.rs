//! Feature `axum`: the app of `examples/axum.rs` (rtwire's
//! `WebSocketUpgrade` and `Sse` in an axum Router with shared state), and
//! a second router that takes its config from a request extension and
//! runs the whole policy (auth hook, topics, subprotocols), served by
//! `axum::serve` on 127.0.0.1 against tokio-tungstenite, rtwire's client
//! and rtwire's SSE client.
#![cfg(feature = "axum")]

mod conn_support;

#[allow(dead_code)]
#[path = "../examples/axum.rs"]
mod example;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use conn_support::*;
use futures_util::{SinkExt, StreamExt};
use rtwire::axum::{Sse, WebSocketUpgrade};
use rtwire::sse::{ClientConfig, Event, SseClient};
use rtwire::upgrade::Rejection;
use rtwire::ws::handshake::ServerConfig;
use rtwire::ws::{CloseCode, Config, Conn, Message};
use rtwire::{Error, HandshakeError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as TMsg;

async fn serve(app: Router) -> SocketAddr {
    let (l, addr) = listener().await;
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn example_app_echoes_and_streams() {
    let addr = serve(example::app(vec!["https://ok.example".into()])).await;

    // WebSocket echo with a tungstenite client, big and small.
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "https://ok.example".parse().unwrap());
    let (mut ws, _) = bounded("connect", tokio_tungstenite::connect_async(req))
        .await
        .unwrap();
    for i in 0..20usize {
        let p = pattern(if i == 7 { 1 << 20 } else { i * 31 }, i as u8);
        let m = if i % 2 == 0 {
            TMsg::binary(p)
        } else {
            TMsg::text(format!("text {i}"))
        };
        bounded("send", ws.send(m.clone())).await.unwrap();
        assert_eq!(bounded("echo", ws.next()).await.unwrap().unwrap(), m);
    }
    ws.close(None).await.unwrap();

    // The origin policy of the state's config: 403.
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }

    // The counter over SSE (the first event comes at once).
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut sse = SseClient::open(tcp, &addr.to_string(), "/sse", None, ClientConfig::new())
        .await
        .unwrap();
    let ev = bounded("first tick", sse.next_event())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ev.event_type(), ev.data()), ("tick", "count 0"));
    assert_eq!(sse.last_event_id(), "0");

    // Shared state saw both.
    let stats = http_get(addr, "/stats").await;
    assert!(stats.contains("ws_clients 1\n"), "{stats}");
    assert!(stats.contains("sse_clients 1\n"), "{stats}");
}

/// GET `path` with `Connection: close`, the whole response as text.
async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    bounded("response", tcp.read_to_end(&mut out))
        .await
        .unwrap();
    String::from_utf8(out).unwrap()
}

/// A router with the config in a request extension; `/ws` reports what
/// it accepted in its first message.
fn policy_app() -> Router {
    let server = ServerConfig::new()
        .subprotocols(["v2", "v1"])
        .auth(|head| match head.query_param("token").as_deref() {
            Some("secret") => Ok(()),
            _ => Err(Rejection::with_status(403, "bad token")),
        })
        .topics_param("topics", 2, 8);
    let config = Arc::new(Config::builder().server(server).build());
    async fn ws(upgrade: WebSocketUpgrade) -> Response {
        upgrade.on_upgrade_accepted(|mut conn, accepted| async move {
            let hello = format!("{:?} {:?}", accepted.subprotocol, accepted.topics);
            if conn.send_text(hello).await.is_err() {
                return;
            }
            while let Ok(Some(m)) = conn.read_message().await {
                if conn.feed_message(m).await.is_err() {
                    return;
                }
            }
        })
    }
    async fn sse() -> Sse<rtwire::hyper::ReceiverStream<Event<'static>>> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            for data in ["one\r\ntwo", "\r\n", "x\ry"] {
                tx.send(Event::new(data)).await.unwrap();
            }
        });
        Sse::from_receiver(rx).heartbeat(Duration::from_secs(3600))
    }
    Router::new()
        .route("/ws", get(ws))
        .route("/sse", get(sse))
        .layer(Extension(config))
}

#[tokio::test]
async fn full_policy_through_the_extractor() {
    let addr = serve(policy_app()).await;
    let config = Config::builder().subprotocols(["v1", "v2"]).build();

    let tcp = TcpStream::connect(addr).await.unwrap();
    let url = format!("ws://{addr}/ws?token=secret&topics=a,b");
    let (mut conn, head) = bounded("connect", Conn::connect(tcp, &url, &config))
        .await
        .unwrap();
    // The server's order of preference wins.
    assert_eq!(head.header_str("sec-websocket-protocol"), Some("v2"));
    let hello = bounded("hello", conn.read_message()).await.unwrap();
    assert_eq!(
        hello,
        Some(Message::Text(r#"Some("v2") ["a", "b"]"#.into()))
    );
    conn.send_binary(vec![1u8; 70_000]).await.unwrap();
    assert_eq!(
        bounded("echo", conn.read_message()).await.unwrap(),
        Some(Message::Binary(vec![1u8; 70_000].into()))
    );
    conn.close(CloseCode::NORMAL, "").await.unwrap();

    for (url, status) in [
        (format!("ws://{addr}/ws?token=wrong"), 403),
        (format!("ws://{addr}/ws?token=secret&topics=a,b,c"), 400),
    ] {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let err = Conn::connect(tcp, &url, &config).await.unwrap_err();
        assert!(
            matches!(err, Error::Handshake(HandshakeError::UnexpectedStatus(s)) if s == status),
            "{url}: {err:?}"
        );
    }
    // Not an upgrade at all: 426 with `Upgrade: websocket`.
    let resp = http_get(addr, "/ws").await;
    assert!(resp.starts_with("HTTP/1.1 426 "), "{resp}");
    assert!(
        resp.to_ascii_lowercase().contains("upgrade: websocket\r\n"),
        "{resp}"
    );
}

#[tokio::test]
async fn sse_lines_have_no_stray_cr() {
    let addr = serve(policy_app()).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut sse = SseClient::open(tcp, &addr.to_string(), "/sse", None, ClientConfig::new())
        .await
        .unwrap();
    for want in ["one\ntwo", "\n", "x\ny"] {
        let ev = bounded("event", sse.next_event()).await.unwrap().unwrap();
        assert_eq!(ev.data(), want);
    }
    assert!(bounded("end", sse.next_event()).await.unwrap().is_none());
    // On the wire: one `data:` line per line of the text, LF only.
    let resp = http_get(addr, "/sse").await;
    let body = &resp[resp.find("\r\n\r\n").unwrap() + 4..];
    for line in [
        "data: one\ndata: two\n\n",
        "data: \ndata: \n\n",
        "data: x\ndata: y\n\n",
    ] {
        assert!(body.contains(line), "{body:?}");
    }
    assert!(!body.contains("one\r") && !body.contains("x\r"), "{body:?}");
}
