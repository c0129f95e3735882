//! The SSE client against real loopback peers: request validation before
//! anything is written, and the reconnecting `EventSource`'s lifecycle
//! (reconnect deadline under cancellation, the state after a fatal error).

use std::time::Duration;

use bytes::BytesMut;
use rtwire::http::{HeadParser, Limits, RequestHead};
use std::sync::{Arc, Mutex};

use rtwire::sse::{
    accept, ClientConfig, ClientError, Config, Event, EventSource, SseClient, SseStream,
};
use rtwire::upgrade::Rejection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

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

/// Serves every connection on `l`: `retry: 1000`, then one event whose id
/// is the connection's number, then stays open until the client leaves.
async fn serve_numbered(l: TcpListener) {
    let config = Config::new().retry(Some(1000)).heartbeat(None);
    for n in 1u64.. {
        let (mut sock, _) = l.accept().await.unwrap();
        let config = config.clone();
        tokio::spawn(async move {
            let Some(head) = read_head(&mut sock).await else {
                return;
            };
            let req = accept(&head, &config).unwrap();
            let mut sse = SseStream::start(sock, req, &config).await.unwrap();
            sse.send(&Event::new("x").with_id(n.to_string()).unwrap())
                .await
                .unwrap();
            let _ = sse.idle().await;
        });
    }
}

/// Cancelling `next()` while it waits out the reconnection delay, and
/// calling it again, must not start the delay over: the reconnect happens
/// at the deadline set when the connection was lost. Paused clock: the
/// 100 ms sleeps and the 1 s delay advance virtual time only.
#[tokio::test(start_paused = true)]
async fn cancelled_next_keeps_the_reconnect_deadline() {
    let (l, addr) = listener().await;
    tokio::spawn(serve_numbered(l));
    let attempts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = Arc::clone(&attempts);
    let mut source = EventSource::new(
        move || {
            seen.lock().unwrap().push(Instant::now());
            TcpStream::connect(addr)
        },
        "localhost",
        "/",
        ClientConfig::new(),
    );
    let first = source.next().await.unwrap();
    assert_eq!(first.last_event_id(), "1");
    assert_eq!(source.delay(), Duration::from_millis(1000));

    source.disconnect();
    let lost = Instant::now();
    let mut cancelled = 0;
    let second = loop {
        tokio::select! {
            biased;
            ev = source.next() => break ev.unwrap(),
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                cancelled += 1;
                assert!(cancelled < 50, "no reconnect 5 s after a 1 s delay");
            }
        }
    };
    // The attempt is not abandoned by later cancellations either: the
    // server saw exactly one more connection.
    assert_eq!(second.last_event_id(), "2");
    assert!(cancelled >= 9, "next() was cancelled {cancelled} times");
    let attempts = attempts.lock().unwrap();
    assert_eq!(attempts.len(), 2);
    let reconnect = attempts[1] - lost;
    assert!(
        reconnect >= Duration::from_millis(1000) && reconnect < Duration::from_millis(1010),
        "reconnected {reconnect:?} after the loss"
    );
}

/// After a fatal error the source is closed, and says so on every later
/// call without connecting again.
#[tokio::test]
async fn a_failed_source_reports_closed() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut sock, _) = l.accept().await.unwrap();
        read_head(&mut sock).await.unwrap();
        Rejection::with_status(404, "no such stream")
            .send(&mut sock)
            .await
            .unwrap();
        // Anything else would be a reconnect.
        l
    });
    let mut source = EventSource::tcp(addr, "/missing", ClientConfig::new());
    let err = source.next().await.unwrap_err();
    assert!(matches!(err, ClientError::Status(404)), "{err:?}");
    let l = server.await.unwrap();
    for _ in 0..3 {
        let again = source.next().await.unwrap_err();
        assert!(
            matches!(again, ClientError::Closed),
            "a later call reports {again:?}"
        );
        assert!(again.is_fatal());
    }
    assert_eq!(source.connects(), 1);
    drop(l);
}

/// A server slower to answer than the caller's select tick: cancelled
/// `next()` calls must resume the same connection attempt, not start over
/// (which would never connect).
#[tokio::test(start_paused = true)]
async fn a_slow_handshake_survives_cancelled_next() {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        let config = Config::new().heartbeat(None);
        loop {
            let (mut sock, _) = l.accept().await.unwrap();
            let config = config.clone();
            tokio::spawn(async move {
                let Some(head) = read_head(&mut sock).await else {
                    return;
                };
                tokio::time::sleep(Duration::from_millis(550)).await;
                let req = accept(&head, &config).unwrap();
                // An abandoned attempt is gone by now: nothing to serve.
                let Ok(mut sse) = SseStream::start(sock, req, &config).await else {
                    return;
                };
                if sse.send(&Event::new("late")).await.is_ok() {
                    let _ = sse.idle().await;
                }
            });
        }
    });
    let mut source = EventSource::tcp(addr, "/", ClientConfig::new());
    let mut cancelled = 0;
    let ev = loop {
        tokio::select! {
            biased;
            ev = source.next() => break ev.unwrap(),
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                cancelled += 1;
                assert!(cancelled < 50, "never connected ({} attempts)", source.connects());
            }
        }
    };
    assert_eq!(ev.data(), "late");
    assert!(cancelled >= 5, "cancelled {cancelled} times");
    assert_eq!(source.connects(), 1);
}
