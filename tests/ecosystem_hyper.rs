//! Feature `hyper`: a real hyper 1 server on 127.0.0.1 (one
//! `http1::Builder` connection per client, upgrades on). `/ws` upgrades
//! with `rtwire::hyper::upgrade` under a policy and echoes; `/sse` streams
//! events from a channel through `SseBody`. Clients: tokio-tungstenite and
//! rtwire's own for WebSocket, rtwire's SSE client and a raw reader for
//! the event framing and the heartbeat.
#![cfg(feature = "hyper")]

mod conn_support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use conn_support::*;
use futures_util::{SinkExt, StreamExt};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rtwire::hyper::{sse_response, SseBody};
use rtwire::sse::{ClientConfig, Event, SseClient};
use rtwire::upgrade::Rejection;
use rtwire::ws::handshake::ServerConfig;
use rtwire::ws::{Config, Conn, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as TMsg;

type Body = BoxBody<Bytes, Infallible>;

struct App {
    ws: Config,
    /// Each `/sse` request hands its event sender to the test.
    sse_senders: mpsc::UnboundedSender<mpsc::Sender<Event<'static>>>,
}

async fn handle(mut req: Request<Incoming>, app: Arc<App>) -> Result<Response<Body>, Infallible> {
    match req.uri().path() {
        "/ws" => match rtwire::hyper::upgrade(&mut req, &app.ws) {
            Ok((resp, pending)) => {
                assert_eq!(pending.accepted().topics, ["t1"]);
                tokio::spawn(async move {
                    let mut conn = pending.await.expect("upgrade");
                    while let Some(m) = conn.read_message().await.expect("read") {
                        conn.feed_message(m).await.expect("feed");
                    }
                });
                Ok(resp.map(|b| b.boxed()))
            }
            Err(rejection) => Ok(rejection.map(|b| b.boxed())),
        },
        "/sse" => {
            let (tx, rx) = mpsc::channel(16);
            app.sse_senders.send(tx).unwrap();
            let body = SseBody::from_receiver(rx).heartbeat(Duration::from_millis(20));
            Ok(sse_response(body.boxed()))
        }
        _ => Ok(Response::builder()
            .status(404)
            .body(http_body_util::Full::new(Bytes::new()).boxed())
            .unwrap()),
    }
}

async fn serve() -> (
    SocketAddr,
    mpsc::UnboundedReceiver<mpsc::Sender<Event<'static>>>,
) {
    let (l, addr) = listener().await;
    let (sse_tx, sse_rx) = mpsc::unbounded_channel();
    let server = ServerConfig::new()
        .auth(|head| match head.header_str("authorization") {
            Some("Bearer good") => Ok(()),
            _ => Err(Rejection::unauthorized("no token")),
        })
        .topics_param("topics", 4, 16);
    let app = Arc::new(App {
        ws: Config::builder()
            .server(server)
            .max_message_size(4 << 20)
            .max_frame_size(4 << 20)
            .build(),
        sse_senders: sse_tx,
    });
    tokio::spawn(async move {
        loop {
            let (tcp, _) = l.accept().await.unwrap();
            let app = app.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(req, app.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (addr, sse_rx)
}

fn payloads() -> Vec<Vec<u8>> {
    (0..40)
        .map(|i| pattern(if i % 8 == 7 { 1 << 20 } else { i * 97 }, i as u8))
        .collect()
}

#[tokio::test]
async fn websocket_over_hyper_with_tungstenite() {
    let (addr, _sse) = serve().await;
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{addr}/ws?topics=t1"),
    )
    .unwrap();
    req.headers_mut()
        .insert("authorization", "Bearer good".parse().unwrap());
    let (mut ws, resp) = bounded("connect", tokio_tungstenite::connect_async(req))
        .await
        .unwrap();
    assert_eq!(resp.status(), 101);
    for p in payloads() {
        bounded("send", ws.send(TMsg::binary(p.clone())))
            .await
            .unwrap();
        let got = bounded("echo", ws.next()).await.unwrap().unwrap();
        assert_eq!(&got.into_data()[..], &p[..]);
    }
    bounded("send", ws.send(TMsg::text("done"))).await.unwrap();
    assert_eq!(
        bounded("echo", ws.next()).await.unwrap().unwrap(),
        TMsg::text("done")
    );
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn websocket_over_hyper_with_rtwire_and_the_policy() {
    let (addr, _sse) = serve().await;
    let config = Config::builder()
        .client_header("authorization", "Bearer good")
        .max_message_size(4 << 20)
        .max_frame_size(4 << 20)
        .build();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut conn, head) = bounded(
        "connect",
        Conn::connect(tcp, &format!("ws://{addr}/ws?topics=t1"), &config),
    )
    .await
    .unwrap();
    assert_eq!(head.status(), 101);
    for p in payloads() {
        conn.send_binary(p.clone()).await.unwrap();
        let got = bounded("echo", conn.read_message()).await.unwrap();
        assert_eq!(got, Some(Message::Binary(p.into())));
    }
    conn.close(rtwire::ws::CloseCode::NORMAL, "bye")
        .await
        .unwrap();

    // No token: the auth hook's 401 comes back through hyper.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let err = Conn::connect(
        tcp,
        &format!("ws://{addr}/ws?topics=t1"),
        &Config::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            rtwire::Error::Handshake(rtwire::HandshakeError::UnexpectedStatus(401))
        ),
        "{err:?}"
    );
    // Topics over the configured limit: 400.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let err = Conn::connect(tcp, &format!("ws://{addr}/ws?topics=a,b,c,d,e"), &config)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            rtwire::Error::Handshake(rtwire::HandshakeError::UnexpectedStatus(400))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn sse_body_over_hyper() {
    let (addr, mut senders) = serve().await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut client = bounded(
        "open",
        SseClient::open(tcp, &addr.to_string(), "/sse", None, ClientConfig::new()),
    )
    .await
    .unwrap();
    assert_eq!(client.head().header_str("cache-control"), Some("no-cache"));
    let tx = bounded("sender", senders.recv()).await.unwrap();
    for i in 0..50 {
        let ev = Event::new(format!("line {i}\r\nsecond\rthird\nlast"))
            .with_id(i.to_string())
            .unwrap()
            .with_event("tick")
            .unwrap();
        tx.send(ev).await.unwrap();
    }
    for i in 0..50 {
        let ev = bounded("event", client.next_event())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ev.event_type(), "tick");
        assert_eq!(ev.data(), format!("line {i}\nsecond\nthird\nlast"));
        assert_eq!(ev.last_event_id(), i.to_string());
    }
    // The sender gone, the body ends and so does the stream.
    drop(tx);
    assert!(bounded("end", client.next_event()).await.unwrap().is_none());
}

#[tokio::test]
async fn sse_body_framing_and_heartbeat_on_the_wire() {
    let (addr, mut senders) = serve().await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET /sse HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let tx = bounded("sender", senders.recv()).await.unwrap();
    tx.send(Event::new("a\r\nb")).await.unwrap();
    // Read until the event and then a heartbeat comment have both come.
    let mut seen = Vec::new();
    let want_event = b"data: a\ndata: b\n\n";
    let found = bounded("event and heartbeat", async {
        let mut buf = [0u8; 4096];
        loop {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "EOF: {:?}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
            let ev = find(&seen, want_event);
            if let Some(at) = ev {
                if find(&seen[at..], b": keepalive\n").is_some() {
                    return at;
                }
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text
        .to_ascii_lowercase()
        .contains("content-type: text/event-stream\r\n"));
    // No stray CR inside the event.
    assert!(!seen[found..found + want_event.len()].contains(&b'\r'));
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
