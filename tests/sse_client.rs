//! The SSE client against real loopback peers: request validation before
//! anything is written, and the reconnecting `EventSource`'s lifecycle
//! (reconnect deadline under cancellation, the state after a fatal error).

use std::time::Duration;

use bytes::BytesMut;
use rtwire::http::{HeadParser, Limits, RequestHead};
use rtwire::sse::{ClientConfig, ClientError, SseClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn listener() -> (TcpListener, std::net::SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// Reads one request head, or `None` when the peer closed first.
async fn read_head(sock: &mut TcpStream) -> Option<RequestHead> {
    let mut parser = HeadParser::new(Limits::default());
    let mut buf = BytesMut::new();
    loop {
        if let Some(h) = parser.parse_request(&mut buf).unwrap() {
            return Some(h);
        }
        if sock.read_buf(&mut buf).await.unwrap() == 0 {
            assert!(buf.is_empty(), "the client wrote {buf:?}");
            return None;
        }
    }
}

const EMPTY_STREAM: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 0\r\n\r\n";

/// CR, LF or NUL in the host, the path or the last event id would let a
/// caller (or whoever chose those strings) add headers or a second request.
/// `open` refuses them before writing a byte.
#[tokio::test]
async fn open_refuses_header_injection_before_writing() {
    let cases: [(&str, &str, Option<&str>); 9] = [
        ("h\r\nX-Injected: 1", "/", None),
        ("h\nX-Injected: 1", "/", None),
        ("h\0", "/", None),
        ("h", "/ HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /", None),
        ("h", "/a\nb", None),
        ("h", "/a\0", None),
        ("h", "/", Some("1\r\nX-Injected: 1")),
        ("h", "/", Some("1\n")),
        ("h", "/", Some("1\0")),
    ];
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..cases.len() {
            let (mut sock, _) = l.accept().await.unwrap();
            // A head means the client wrote a request: answer it so the
            // client does not wait, and keep it for the assertion.
            match read_head(&mut sock).await {
                Some(h) => {
                    sock.write_all(EMPTY_STREAM).await.unwrap();
                    seen.push(Some(h.header_str("x-injected").is_some()));
                }
                None => seen.push(None),
            }
        }
        seen
    });
    for (host, path, id) in cases {
        let io = TcpStream::connect(addr).await.unwrap();
        let r = SseClient::open(io, host, path, id, ClientConfig::new()).await;
        match r {
            Err(ClientError::InvalidRequest(_)) => {}
            other => panic!("{host:?} {path:?} {id:?}: {other:?}"),
        }
    }
    let seen = server.await.unwrap();
    assert!(
        seen.iter().all(Option::is_none),
        "requests written: {seen:?}"
    );
}

/// The check is not over-eager: tabs, spaces and other bytes are fine in an
/// id, and a query string in the path.
#[tokio::test]
async fn open_accepts_ordinary_requests() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut sock, _) = l.accept().await.unwrap();
        let h = read_head(&mut sock).await.unwrap();
        sock.write_all(EMPTY_STREAM).await.unwrap();
        (
            h.path().to_owned(),
            h.query().map(str::to_owned),
            h.header_str("last-event-id").map(str::to_owned),
            h.header_str("host").map(str::to_owned),
        )
    });
    let io = TcpStream::connect(addr).await.unwrap();
    let mut c = SseClient::open(
        io,
        "[::1]:80",
        "/s?a=1&b=%20",
        Some("é 1\t2"),
        ClientConfig::new(),
    )
    .await
    .unwrap();
    assert!(c.next_event().await.unwrap().is_none());
    let (path, query, id, host) = server.await.unwrap();
    assert_eq!((path.as_str(), query.as_deref()), ("/s", Some("a=1&b=%20")));
    assert_eq!(id.as_deref(), Some("é 1\t2"));
    assert_eq!(host.as_deref(), Some("[::1]:80"));
}
