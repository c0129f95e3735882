//! Feature `http`: the handshake in the `http` crate's types over real
//! loopback TCP. The server reads the head off the socket, turns it into
//! an `http::Request`, checks it with `http_types::accept` under a policy
//! (origin allow-list, an auth hook on `Authorization`, topics,
//! subprotocols) and writes the `http::Response` it gets back; the client
//! is `http_types::connect` from an `http::Request<()>` with extra
//! headers, and tokio-tungstenite for the refusals.
#![cfg(feature = "http")]

mod conn_support;

use std::net::SocketAddr;

use bytes::{BufMut, BytesMut};
use conn_support::*;
use rtwire::http_types;
use rtwire::upgrade::{OriginPolicy, Rejection};
use rtwire::ws::handshake::ServerConfig;
use rtwire::ws::{read_request_head, Config, Conn, Message, Role};
use rtwire::{Error, HandshakeError};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

fn policy() -> ServerConfig {
    ServerConfig::new()
        .subprotocols(["chat.v2", "chat"])
        .origin(OriginPolicy::AllowList(vec!["https://app.example".into()]))
        .auth(|head| match head.header_str("authorization") {
            Some("Bearer good") => Ok(()),
            _ => Err(Rejection::unauthorized("bad token")),
        })
        .topics_param("topics", 4, 16)
}

/// Writes an `http::Response` as HTTP/1.1 bytes.
fn write_response<B: AsRef<[u8]>>(resp: &http::Response<B>) -> BytesMut {
    let mut out = BytesMut::new();
    let status = resp.status();
    out.put_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    for (n, v) in resp.headers() {
        out.put_slice(n.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(v.as_bytes());
        out.put_slice(b"\r\n");
    }
    let body = resp.body().as_ref();
    if status != http::StatusCode::SWITCHING_PROTOCOLS {
        out.put_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.put_slice(b"\r\n");
    out.put_slice(body);
    out
}

/// Serves upgrades through the `http` types, echoing messages, for
/// `count` connections; reports each one's topics and subprotocol (or the
/// rejection status).
async fn server(l: TcpListener, count: usize) -> Vec<Result<(Vec<String>, Option<String>), u16>> {
    let config = Config::default();
    let server = policy();
    let mut out = Vec::new();
    for _ in 0..count {
        let (mut tcp, _) = l.accept().await.unwrap();
        let got = read_request_head(&mut tcp, &config).await.unwrap();
        let req = http_types::to_request(&got.head).unwrap();
        match http_types::accept(&req, &server) {
            Ok(accepted) => {
                let resp = http_types::response(&accepted);
                let resp = resp.map(|()| Vec::<u8>::new());
                tcp.write_all(&write_response(&resp)).await.unwrap();
                let mut conn = Conn::from_upgraded(tcp, Role::Server, &config, got.rest);
                while let Some(m) = conn.read_message().await.unwrap() {
                    conn.send_message(m).await.unwrap();
                }
                out.push(Ok((accepted.topics, accepted.subprotocol)));
            }
            Err(e) => {
                let resp = http_types::rejection(&e);
                tcp.write_all(&write_response(&resp)).await.unwrap();
                tcp.shutdown().await.unwrap();
                out.push(Err(resp.status().as_u16()));
            }
        }
    }
    out
}

fn request(addr: SocketAddr, auth: &str, origin: &str) -> http::Request<()> {
    http::Request::get(format!("ws://{addr}/room?topics=a,b"))
        .header("authorization", auth)
        .header("origin", origin)
        .header("sec-websocket-protocol", "chat, other")
        .body(())
        .unwrap()
}

#[tokio::test]
async fn accept_and_connect_through_http_types() {
    let (l, addr) = listener().await;
    let srv = tokio::spawn(server(l, 3));

    // Accepted: policy passed, topics and the subprotocol agreed.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let req = request(addr, "Bearer good", "https://app.example");
    let (mut conn, resp) = bounded("connect", http_types::connect(tcp, req, &Config::default()))
        .await
        .unwrap();
    assert_eq!(resp.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(resp.headers()["sec-websocket-protocol"], "chat");
    conn.send_text("over http types").await.unwrap();
    let echo = bounded("echo", conn.read_message()).await.unwrap();
    assert_eq!(echo, Some(Message::Text("over http types".into())));
    conn.close(rtwire::ws::CloseCode::NORMAL, "").await.unwrap();

    // Refused by the auth hook: 401.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let req = request(addr, "Bearer bad", "https://app.example");
    let err = bounded("connect", http_types::connect(tcp, req, &Config::default()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Handshake(HandshakeError::UnexpectedStatus(401))),
        "{err:?}"
    );

    // Refused by the origin policy, seen by a tungstenite client: 403
    // with the reason as the body.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{addr}/"),
    )
    .unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let tcp = TcpStream::connect(addr).await.unwrap();
    match tokio_tungstenite::client_async(req, tcp).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 403);
            assert_eq!(resp.body().as_deref(), Some(&b"origin not allowed"[..]));
        }
        other => panic!("expected a 403, got {other:?}"),
    }

    let results = bounded("server", srv).await.unwrap();
    assert_eq!(
        results,
        [
            Ok((
                vec!["a".to_owned(), "b".to_owned()],
                Some("chat".to_owned())
            )),
            Err(401),
            Err(403)
        ]
    );
}

#[test]
fn rejections_carry_their_headers() {
    let cases = [
        (
            HandshakeError::UnsupportedVersion,
            426,
            "sec-websocket-version",
            "13",
        ),
        (HandshakeError::NotWebSocket, 426, "upgrade", "websocket"),
        (HandshakeError::Method, 405, "allow", "GET"),
    ];
    for (e, status, name, value) in cases {
        let resp = http_types::rejection(&e);
        assert_eq!(resp.status().as_u16(), status, "{e:?}");
        assert_eq!(resp.headers()[name], value, "{e:?}");
        assert_eq!(resp.body(), &e.to_string());
    }
    let e = HandshakeError::Unauthorized {
        status: 299,
        reason: "odd".into(),
    };
    assert_eq!(http_types::rejection(&e).status().as_u16(), 500);
}

#[test]
fn heads_round_trip_between_rtwire_and_http() {
    let req = http::Request::get("/p?q=%20x")
        .header("host", "h")
        .header("x-multi", "1")
        .header("x-multi", "2")
        .body(())
        .unwrap();
    let head = http_types::request_head(&req).unwrap();
    assert_eq!(head.target(), "/p?q=%20x");
    assert_eq!(head.query_param("q").as_deref(), Some(" x"));
    assert_eq!(head.headers_named("x-multi").count(), 2);
    let back = http_types::to_request(&head).unwrap();
    assert_eq!(back.uri(), "/p?q=%20x");
    assert_eq!(back.headers().get_all("x-multi").iter().count(), 2);
    // HTTP/2 style: the host only in the URI's authority.
    let h2 = http::Request::get("https://example.com/x")
        .version(http::Version::HTTP_2)
        .body(())
        .unwrap();
    let head = rtwire::http::RequestHead::try_from(&h2).unwrap();
    assert_eq!(head.header_str("host"), Some("example.com"));
    assert_eq!(head.path(), "/x");
}
