//! Serving SSE over loopback TCP, checked with the crate's own client and
//! decoder: the response head, rejections, `Last-Event-ID`, heartbeats,
//! disconnect detection, a slow client, and resume without loss or
//! duplicates across dropped connections.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rtwire::error::TimeoutKind;
use rtwire::http::{HeadParser, Limits, RequestHead};
use rtwire::sse::{
    accept, ClientConfig, ClientError, Config, Decoder, Event, EventSource, ReplayStore, SseClient,
    SseStream,
};
use rtwire::upgrade::Rejection;
use rtwire::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Upper bound for anything a test awaits.
const LIMIT: Duration = Duration::from_secs(10);

async fn read_head(sock: &mut TcpStream) -> RequestHead {
    let mut parser = HeadParser::new(Limits::default());
    let mut buf = BytesMut::new();
    loop {
        if let Some(h) = parser.parse_request(&mut buf).unwrap() {
            return h;
        }
        assert_ne!(sock.read_buf(&mut buf).await.unwrap(), 0, "EOF in head");
    }
}

/// Accepts one connection on `l`, reads its request head and starts an
/// event stream on it with `config`.
async fn serve_one(l: &TcpListener, config: Config) -> SseStream<TcpStream> {
    let (mut sock, _) = l.accept().await.unwrap();
    let head = read_head(&mut sock).await;
    let req = accept(&head, &config).unwrap();
    SseStream::start(sock, req, &config).await.unwrap()
}

fn head_of(raw: &str) -> RequestHead {
    let mut buf = BytesMut::from(raw.as_bytes());
    HeadParser::new(Limits::default())
        .parse_request(&mut buf)
        .unwrap()
        .unwrap()
}

async fn listener() -> (TcpListener, std::net::SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

fn fast_client() -> ClientConfig {
    ClientConfig::new()
        .default_retry(Duration::from_millis(5))
        .read_timeout(Some(LIMIT))
}

#[tokio::test]
async fn response_head_retry_events_and_end() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut sse = serve_one(&l, Config::new().retry(Some(500))).await;
        sse.send(&Event::new("a\r\nb").with_id("1").unwrap())
            .await
            .unwrap();
        sse.send_encoded(&Event::new("c").with_event("x").unwrap().to_encoded())
            .await
            .unwrap();
        sse.finish().await.unwrap();
    });
    let io = TcpStream::connect(addr).await.unwrap();
    let mut c = SseClient::open(io, "localhost", "/sse", None, fast_client())
        .await
        .unwrap();
    let h = c.head();
    assert_eq!(h.status(), 200);
    assert_eq!(h.header_str("content-type"), Some("text/event-stream"));
    assert_eq!(h.header_str("cache-control"), Some("no-cache"));
    assert_eq!(h.header_str("x-accel-buffering"), Some("no"));
    assert_eq!(h.header_str("transfer-encoding"), Some("chunked"));
    let e1 = c.next_event().await.unwrap().unwrap();
    assert_eq!((e1.data(), e1.last_event_id()), ("a\nb", "1"));
    assert_eq!(c.retry(), Some(500));
    let e2 = c.next_event().await.unwrap().unwrap();
    assert_eq!(
        (e2.event_type(), e2.data(), e2.last_event_id()),
        ("x", "c", "1")
    );
    // The last chunk ends the response cleanly.
    assert!(c.next_event().await.unwrap().is_none());
    server.await.unwrap();
}

#[tokio::test]
async fn http10_gets_a_close_delimited_body() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut sse = serve_one(&l, Config::new()).await;
        sse.send(&Event::new("one")).await.unwrap();
        sse.finish().await.unwrap();
    });
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(b"GET /sse HTTP/1.0\r\n\r\n").await.unwrap();
    let mut raw = Vec::new();
    sock.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("\r\nConnection: close"));
    assert!(!head.contains("chunked"));
    let mut dec = Decoder::new(rtwire::sse::Limits::default());
    let mut buf = BytesMut::from(body.as_bytes());
    assert_eq!(dec.decode(&mut buf).unwrap().unwrap().data(), "one");
    server.await.unwrap();
}

#[test]
fn last_event_id_header_first_then_query_parameter() {
    let config = Config::new();
    let both = head_of("GET /s?last_event_id=7 HTTP/1.1\r\nLast-Event-ID: 9\r\n\r\n");
    assert_eq!(accept(&both, &config).unwrap().last_event_id(), Some("9"));
    let query = head_of("GET /s?a=1&last_event_id=%37%38 HTTP/1.1\r\n\r\n");
    assert_eq!(accept(&query, &config).unwrap().last_event_id(), Some("78"));
    let none = head_of("GET /s HTTP/1.1\r\nLast-Event-ID: \r\n\r\n");
    assert_eq!(accept(&none, &config).unwrap().last_event_id(), None);
    // Another parameter name, or none at all.
    let custom = Config::new().last_event_id_param(Some("lei"));
    let q = head_of("GET /s?lei=3&last_event_id=4 HTTP/1.1\r\n\r\n");
    assert_eq!(accept(&q, &custom).unwrap().last_event_id(), Some("3"));
    let header_only = Config::new().last_event_id_param(None);
    assert_eq!(accept(&q, &header_only).unwrap().last_event_id(), None);
}

#[test]
fn typed_rejections() {
    let config = Config::new();
    let post = head_of("POST /s HTTP/1.1\r\n\r\n");
    let r = accept(&post, &config).unwrap_err();
    assert_eq!(r.status(), 405);
    let mut buf = BytesMut::new();
    r.write_response(&mut buf);
    assert!(std::str::from_utf8(&buf)
        .unwrap()
        .contains("\r\nAllow: GET, HEAD\r\n"));

    let long = format!(
        "GET /s HTTP/1.1\r\nLast-Event-ID: {}\r\n\r\n",
        "x".repeat(300)
    );
    assert_eq!(accept(&head_of(&long), &config).unwrap_err().status(), 400);
    let bad_query = head_of("GET /s?last_event_id=%FF HTTP/1.1\r\n\r\n");
    assert_eq!(accept(&bad_query, &config).unwrap_err().status(), 400);
    let nul_query = head_of("GET /s?last_event_id=a%00 HTTP/1.1\r\n\r\n");
    assert_eq!(accept(&nul_query, &config).unwrap_err().status(), 400);

    let auth = Config::new().auth(|h| match h.header_str("authorization") {
        Some("Bearer ok") => Ok(()),
        _ => Err(Rejection::unauthorized("token required")),
    });
    let anon = head_of("GET /s HTTP/1.1\r\n\r\n");
    assert_eq!(accept(&anon, &auth).unwrap_err().status(), 401);
    let ok = head_of("GET /s HTTP/1.1\r\nAuthorization: Bearer ok\r\n\r\n");
    assert!(accept(&ok, &auth).is_ok());

    let origin = Config::new().origin(rtwire::upgrade::OriginPolicy::AllowList(vec![
        "https://a.example".into(),
    ]));
    let evil = head_of("GET /s HTTP/1.1\r\nOrigin: https://evil.example\r\n\r\n");
    assert_eq!(accept(&evil, &origin).unwrap_err().status(), 403);
    let good = head_of("GET /s HTTP/1.1\r\nOrigin: https://A.example\r\n\r\n");
    assert!(accept(&good, &origin).is_ok());
    // An Origin that is not UTF-8 passes no policy, not even allow-all.
    let mut raw = BytesMut::from(&b"GET /s HTTP/1.1\r\nOrigin: https://\xff\r\n\r\n"[..]);
    let not_utf8 = HeadParser::new(Limits::default())
        .parse_request(&mut raw)
        .unwrap()
        .unwrap();
    assert_eq!(accept(&not_utf8, &origin).unwrap_err().status(), 403);
    assert_eq!(accept(&not_utf8, &config).unwrap_err().status(), 403);

    let limited = Config::new().max_streams(1);
    let first = accept(&anon, &limited).unwrap();
    let second = accept(&anon, &limited.clone()).unwrap_err();
    assert_eq!(second.status(), 503);
    drop(first);
    assert!(accept(&anon, &limited).is_ok(), "permit released on drop");
}

#[tokio::test]
async fn rejection_reaches_the_client_as_a_status() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut sock, _) = l.accept().await.unwrap();
        let head = read_head(&mut sock).await;
        let config = Config::new().auth(|_| Err(Rejection::forbidden("no")));
        let rej = accept(&head, &config).unwrap_err();
        rej.send(&mut sock).await.unwrap();
    });
    let io = TcpStream::connect(addr).await.unwrap();
    let err = SseClient::open(io, "h", "/", None, fast_client())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Status(403)));
    assert!(err.is_fatal());
    server.await.unwrap();
}

#[tokio::test]
async fn heartbeats_while_idle() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut sse = serve_one(&l, Config::new().heartbeat(Some(Duration::from_millis(20)))).await;
        sse.send(&Event::new("first")).await.unwrap();
        // Runs until the client leaves.
        sse.idle().await.unwrap_err()
    });
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 512];
    // Two heartbeats, each its own chunk, after the event.
    let needle = b"\r\n: keepalive\n\r\n";
    let deadline = tokio::time::Instant::now() + LIMIT;
    while raw.windows(needle.len()).filter(|w| w == needle).count() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no heartbeats");
        let n = tokio::time::timeout(LIMIT, sock.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(n, 0);
        raw.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(text.find("data: first").unwrap() < text.find(": keepalive").unwrap());
    drop(sock);
    let why = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert!(matches!(why, Error::ConnectionClosed), "{why:?}");
}

#[tokio::test]
async fn idle_notices_a_client_that_left() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut sse = serve_one(&l, Config::new().heartbeat(None)).await;
        let why = sse.idle().await.unwrap_err();
        // Every later call reports the same.
        let again = sse.send(&Event::new("late")).await.unwrap_err();
        (why, again)
    });
    let io = TcpStream::connect(addr).await.unwrap();
    let c = SseClient::open(io, "h", "/", None, fast_client())
        .await
        .unwrap();
    drop(c);
    let (why, again) = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert!(matches!(why, Error::ConnectionClosed), "{why:?}");
    assert!(matches!(again, Error::ConnectionClosed), "{again:?}");
}

#[tokio::test]
async fn sending_to_a_client_that_left_fails() {
    let (l, addr) = listener().await;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let mut sse = serve_one(&l, Config::new().heartbeat(None)).await;
        rx.await.unwrap();
        let ev = Event::new("x".repeat(1024));
        for _ in 0..100_000 {
            if let Err(e) = sse.send(&ev).await {
                return e;
            }
        }
        panic!("writes to a closed connection kept succeeding");
    });
    let io = TcpStream::connect(addr).await.unwrap();
    let c = SseClient::open(io, "h", "/", None, fast_client())
        .await
        .unwrap();
    drop(c);
    tx.send(()).unwrap();
    let e = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert!(matches!(e, Error::ConnectionClosed), "{e:?}");
}

/// A client that never reads cannot make the server buffer: each send waits
/// for the socket, the stream holds at most the event being written, and the
/// write timeout ends the stream.
#[tokio::test]
async fn slow_client_cannot_make_the_server_buffer() {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_send_buffer_size(16 * 1024).unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let l = sock.listen(8).unwrap();
    let addr = l.local_addr().unwrap();
    const EVENT: usize = 1024;
    let server = tokio::spawn(async move {
        let mut sse = serve_one(
            &l,
            Config::new()
                .heartbeat(None)
                .write_timeout(Duration::from_millis(50)),
        )
        .await;
        let ev = Event::new("x".repeat(EVENT));
        let mut sent = 0usize;
        loop {
            match sse.send(&ev).await {
                Ok(()) => {
                    assert_eq!(sse.buffered(), 0);
                    sent += 1;
                    assert!(sent < 1 << 20, "the server never felt backpressure");
                }
                Err(e) => return (e, sent, sse.buffered()),
            }
        }
    });
    let client = TcpSocket::new_v4().unwrap();
    client.set_recv_buffer_size(4 * 1024).unwrap();
    let mut client = client.connect(addr).await.unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // ... and never reads.
    let (e, sent, buffered) = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert!(matches!(e, Error::Timeout(TimeoutKind::Write)), "{e:?}");
    // What the server holds: at most one framed event.
    assert!(buffered <= EVENT + 32, "buffered {buffered}");
    // What got out fits in the kernel's socket buffers, not more.
    assert!(sent * EVENT < 8 << 20, "sent {sent} events");
    drop(client);
}

/// Serves the channel `ch` of `store`: replays after `Last-Event-ID`, then
/// follows live events; drops the connection after `drop_after` events.
async fn serve_channel(
    mut sock: TcpStream,
    store: Arc<ReplayStore>,
    config: Config,
    drop_after: usize,
) -> Result<(), Error> {
    let head = read_head(&mut sock).await;
    let req = accept(&head, &config).unwrap();
    // This endpoint replays everything to a new client.
    let mut cursor: u64 = req.last_event_id().map_or(0, |id| id.parse().unwrap());
    let mut sse = SseStream::start(sock, req, &config).await?;
    let mut live = store.subscribe("ch").unwrap();
    let mut sent = 0;
    loop {
        let replay = store.get_after("ch", cursor, 8);
        assert_eq!(replay.gap, None);
        for ev in &replay.events {
            sse.send_encoded(ev.encoded()).await?;
            sent += 1;
            if sent == drop_after {
                return Ok(()); // abrupt: no last chunk
            }
        }
        cursor = replay.cursor;
        if replay.more {
            continue;
        }
        tokio::select! {
            changed = live.changed() => if changed.is_err() { return Ok(()) },
            gone = sse.idle() => { gone?; }
        }
    }
}

#[tokio::test]
async fn resume_after_dropped_connections_without_loss_or_duplicates() {
    const TOTAL: u64 = 60;
    let store = Arc::new(ReplayStore::new(1000));
    for i in 1..=10 {
        store
            .append("ch", Event::new(format!("event {i}")))
            .unwrap();
    }
    let (l, addr) = listener().await;
    let config = Config::new().retry(Some(5));
    let st = Arc::clone(&store);
    let server = tokio::spawn(async move {
        loop {
            let (sock, _) = l.accept().await.unwrap();
            tokio::spawn(serve_channel(sock, Arc::clone(&st), config.clone(), 7));
        }
    });
    let producer_store = Arc::clone(&store);
    let producer = tokio::spawn(async move {
        for i in 11..=TOTAL {
            producer_store
                .append("ch", Event::new(format!("event {i}")))
                .unwrap();
            tokio::task::yield_now().await;
        }
    });
    let mut source = EventSource::tcp(addr, "/ch", fast_client());
    let mut ids = Vec::new();
    while ids.len() < TOTAL as usize {
        let ev = tokio::time::timeout(LIMIT, source.next())
            .await
            .unwrap()
            .unwrap();
        let id: u64 = ev.last_event_id().parse().unwrap();
        assert_eq!(ev.data(), format!("event {id}"));
        ids.push(id);
        if ids.len() == 25 {
            source.disconnect(); // the client side drops too
        }
    }
    assert_eq!(ids, (1..=TOTAL).collect::<Vec<_>>());
    assert!(source.connects() >= 9, "connects {}", source.connects());
    assert_eq!(source.delay(), Duration::from_millis(5));
    producer.await.unwrap();
    server.abort();
}

/// `HEAD` on the event-stream endpoint gets the response head a `GET`
/// would get, and no body; the stream is then over.
#[tokio::test]
async fn head_gets_the_headers_without_a_body() {
    let config = Config::new();
    assert!(accept(&head_of("HEAD /s HTTP/1.1\r\n\r\n"), &config)
        .unwrap()
        .is_head());
    assert!(!accept(&head_of("GET /s HTTP/1.1\r\n\r\n"), &config)
        .unwrap()
        .is_head());
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut sse = serve_one(&l, Config::new().retry(Some(500))).await;
        let sent = sse.send(&Event::new("not for HEAD")).await;
        let io = sse.finish().await.unwrap();
        drop(io);
        sent
    });
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(b"HEAD /sse HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(LIMIT, sock.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text:?}");
    assert!(text.contains("\r\nContent-Type: text/event-stream\r\n"));
    assert!(
        text.ends_with("\r\n\r\n"),
        "a body after the head: {text:?}"
    );
    assert_eq!(text.matches("\r\n\r\n").count(), 1, "{text:?}");
    let sent = server.await.unwrap();
    assert!(matches!(sent, Err(Error::ConnectionClosed)), "{sent:?}");
}

/// `send` cancelled while the client does not read (here by a 100 ms
/// timer in `select!`, paused clock): the stream must not pile up one more
/// event per cancelled call, and the write timeout must still fire, counted
/// from when writing stalled, not restarted by every call.
#[tokio::test(start_paused = true)]
async fn cancelled_sends_neither_pile_up_nor_dodge_the_write_timeout() {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_send_buffer_size(16 * 1024).unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let l = sock.listen(8).unwrap();
    let addr = l.local_addr().unwrap();
    const EVENT: usize = 1024;
    let server = tokio::spawn(async move {
        let mut sse = serve_one(
            &l,
            Config::new()
                .heartbeat(None)
                .write_timeout(Duration::from_secs(1)),
        )
        .await;
        let ev = Event::new("x".repeat(EVENT));
        let mut most = 0;
        let mut cancelled = 0;
        while cancelled < 100 {
            tokio::select! {
                biased;
                r = sse.send(&ev) => if let Err(e) = r {
                    return (Some(e), most, cancelled);
                },
                () = tokio::time::sleep(Duration::from_millis(100)) => cancelled += 1,
            }
            most = most.max(sse.buffered());
        }
        (None, most, cancelled)
    });
    let client = TcpSocket::new_v4().unwrap();
    client.set_recv_buffer_size(4 * 1024).unwrap();
    let mut client = client.connect(addr).await.unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // ... and never reads.
    let (e, most, cancelled) = server.await.unwrap();
    assert!(most <= EVENT + 32, "the stream held {most} bytes");
    assert!(
        matches!(e, Some(Error::Timeout(TimeoutKind::Write))),
        "{e:?} after {cancelled} cancelled sends"
    );
    assert!(
        cancelled <= 12,
        "timed out after {cancelled} cancelled sends"
    );
    drop(client);
}
