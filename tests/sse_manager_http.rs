//! The SSE manager's `Handler` over loopback TCP against real clients
//! (rtwire's `EventSource` and raw sockets): the wire a browser sees,
//! resume with `Last-Event-ID`, refusals before any stream byte, limits,
//! a stalled client, and heartbeats through an idle-timeout proxy.

mod conn_support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use conn_support::bounded;
use rtwire::pubsub::{ChannelName, MemoryBus, MemoryStore, Position, PublishRequest};
use rtwire::sse::{
    ClientConfig, Decoder, EventSource, Handler, HandlerConfig, Limits, Manager, ManagerConfig,
};
use rtwire::upgrade::Rejection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type H = Handler<MemoryStore, MemoryBus>;

/// Serves `handler` on a loopback port.
async fn serve(handler: H) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = l.accept().await.unwrap();
            let h = handler.clone();
            tokio::spawn(async move {
                let config = rtwire::ws::Config::default();
                let head = rtwire::ws::read_request_head(&mut tcp, &config).await?;
                h.serve(tcp, &head.head).await
            });
        }
    });
    addr
}

fn manager(config: ManagerConfig) -> Manager {
    // A short retry so reconnecting clients do not wait 3 s.
    Manager::in_memory(config.default_retry(Some(10)))
}

async fn publish(m: &Manager, data: &str) -> Position {
    m.publish(PublishRequest::new(
        ChannelName::new("c").unwrap(),
        data.to_owned(),
    ))
    .await
    .unwrap()
    .position
}

/// Waits until the manager counts `n` subscribers (each stream subscribes
/// before it writes its head, so this is when publishing reaches it).
async fn connected(m: &Manager, n: u64) {
    while m.stats().connections != n {
        tokio::task::yield_now().await;
    }
}

/// A raw request; the whole response until the server closes.
async fn raw(addr: SocketAddr, req: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn every_event_has_an_increasing_id_and_a_reconnect_gets_exactly_the_missing_ones() {
    bounded("resume over http", async {
        let m = manager(ManagerConfig::new());
        let addr = serve(Handler::new(m.clone(), HandlerConfig::new())).await;
        let mut es = EventSource::tcp(addr, "/events?channel=c", ClientConfig::new());
        let first = tokio::spawn({
            let m = m.clone();
            async move {
                connected(&m, 1).await;
                for i in 0..5 {
                    publish(&m, &format!("a{i}")).await;
                }
            }
        });
        let mut ids = Vec::new();
        for i in 0..5 {
            let ev = es.next().await.unwrap();
            assert_eq!(ev.data(), format!("a{i}"));
            ids.push(Position::parse(ev.last_event_id()).expect("every event has our id"));
        }
        first.await.unwrap();
        // The connection drops; five more are published meanwhile.
        es.disconnect();
        connected(&m, 0).await;
        for i in 5..10 {
            publish(&m, &format!("a{i}")).await;
        }
        let mut got = Vec::new();
        for _ in 5..10 {
            let ev = es.next().await.unwrap();
            ids.push(Position::parse(ev.last_event_id()).unwrap());
            got.push(ev.data().to_owned());
        }
        assert_eq!(got, (5..10).map(|i| format!("a{i}")).collect::<Vec<_>>());
        assert_eq!(es.connects(), 2);
        // Then live again, and no duplicate anywhere.
        publish(&m, "live").await;
        assert_eq!(es.next().await.unwrap().data(), "live");
        assert!(ids
            .windows(2)
            .all(|w| w[1].epoch == w[0].epoch && w[1].offset == w[0].offset + 1));
        assert_eq!(m.stats().replays_caught_up, 1);
    })
    .await;
}

#[tokio::test]
async fn the_header_wins_over_the_query_and_a_reset_is_an_event_a_browser_can_listen_for() {
    bounded("reset over http", async {
        let m = manager(ManagerConfig::new());
        let addr = serve(Handler::new(m.clone(), HandlerConfig::new())).await;
        let p1 = publish(&m, "one").await;
        let p2 = publish(&m, "two").await;
        // The header (after p1) wins over the query (before p1).
        let before = Position::new(p1.epoch, 0);
        let req = format!(
            "GET /events?channel=c&last_event_id={before} HTTP/1.1\r\nHost: x\r\nLast-Event-ID: {p1}\r\n\r\n"
        );
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let want = format!("id: {p2}\ndata: two\n\n");
        while !String::from_utf8_lossy(&buf).contains(&want) {
            assert_ne!(s.read_buf(&mut buf).await.unwrap(), 0);
        }
        assert!(!String::from_utf8_lossy(&buf).contains("data: one"));
        // An id from another history: one `reset` event, id = the top.
        let mut es = EventSource::tcp(addr, "/events?channel=c", ClientConfig::new())
            .with_last_event_id(&Position::new(p1.epoch + 1, 7).to_string());
        let ev = es.next().await.unwrap();
        assert_eq!(ev.event_type(), "reset");
        assert_eq!(ev.last_event_id(), p2.to_string());
        assert_eq!(ev.data(), format!("{{\"reason\":\"epoch-changed\",\"top\":\"{p2}\"}}"));
        publish(&m, "three").await;
        assert_eq!(es.next().await.unwrap().data(), "three");
    })
    .await;
}

#[tokio::test]
async fn refusals_come_before_any_stream_byte() {
    bounded("refusals", async {
        let m = manager(ManagerConfig::new().max_connections(1));
        let config = HandlerConfig::new().authorize_subscribe(|head, req| {
            if req.channel == "private" {
                return match head.query_param("token").as_deref() {
                    Some("ok") => Ok(()),
                    Some(_) => Err(Rejection::forbidden("bad token")),
                    None => Err(Rejection::unauthorized("token required")),
                };
            }
            Ok(())
        });
        let addr = serve(Handler::new(m.clone(), config)).await;
        let cases = [
            ("GET /events HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
            (
                "GET /events?channel=a%20b HTTP/1.1\r\nHost: x\r\n\r\n",
                "400",
            ),
            (
                "POST /events?channel=c HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                "405",
            ),
            (
                "GET /events?channel=private HTTP/1.1\r\nHost: x\r\n\r\n",
                "401",
            ),
            (
                "GET /events?channel=private&token=no HTTP/1.1\r\nHost: x\r\n\r\n",
                "403",
            ),
            (
                "GET /events?channel=c HTTP/1.1\r\nHost: x\r\nLast-Event-ID: a\0b\r\n\r\n",
                "400",
            ),
        ];
        for (req, status) in cases {
            let resp = raw(addr, req).await;
            assert!(
                resp.starts_with(&format!("HTTP/1.1 {status} ")),
                "{req:?} -> {resp:?}"
            );
            assert!(!resp.contains("text/event-stream"), "{resp}");
        }
        let resp = raw(
            addr,
            "POST /events?channel=c HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert!(resp.contains("Allow: GET, HEAD\r\n"), "{resp}");
        // HEAD: the stream's headers, no body, nothing subscribed.
        let resp = raw(
            addr,
            "HEAD /events?channel=private&token=ok HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await;
        assert!(
            resp.starts_with("HTTP/1.1 200 OK\r\n") && resp.contains("text/event-stream"),
            "{resp}"
        );
        assert!(resp.ends_with("\r\n\r\n"), "no body: {resp:?}");
        assert_eq!(m.stats().connections_total, 0);
        // max_connections (1) + 1: 503 with Retry-After.
        let mut es = EventSource::tcp(addr, "/events?channel=c", ClientConfig::new());
        let pubs = tokio::spawn({
            let m = m.clone();
            async move {
                connected(&m, 1).await;
                publish(&m, "x").await;
            }
        });
        assert_eq!(es.next().await.unwrap().data(), "x");
        pubs.await.unwrap();
        let resp = raw(addr, "GET /events?channel=c HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 503 "), "{resp}");
        assert!(resp.contains("Retry-After: 1\r\n"), "{resp}");
        assert_eq!(m.stats().rejected_connections, 1);
    })
    .await;
}

/// A client that stops reading: its queue fills, it is disconnected (the
/// policy off) and counted; a reader on the same channel gets everything.
#[tokio::test]
async fn a_stalled_reader_is_cut_off_and_the_others_get_every_event() {
    bounded("stalled reader", async {
        let m = manager(ManagerConfig::new().client_buffer(16));
        let addr = serve(Handler::new(m.clone(), HandlerConfig::new())).await;
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        stalled
            .write_all(b"GET /events?channel=c HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut es = EventSource::tcp(addr, "/events?channel=c", ClientConfig::new());
        let big = "x".repeat(16 * 1024);
        let n = 2_000;
        // The reader keeps up by construction: the publisher stays at most
        // 8 events (half its queue) ahead of what it has read, however the
        // machine schedules them. The stalled client never reads.
        let (seen_tx, mut seen) = tokio::sync::watch::channel(0usize);
        let publisher = tokio::spawn({
            let m = m.clone();
            async move {
                connected(&m, 2).await;
                for i in 0..n {
                    seen.wait_for(|&s| s + 8 >= i).await.unwrap();
                    publish(&m, &format!("{i} {big}")).await;
                }
            }
        });
        for i in 0..n {
            let ev = es.next().await.unwrap();
            assert!(
                ev.data().starts_with(&format!("{i} ")),
                "event {i}: {}",
                ev.event_type()
            );
            seen_tx.send_replace(i + 1);
        }
        publisher.await.unwrap();
        assert_eq!(m.stats().slow_disconnects, 1, "{:?}", m.stats());
        assert_eq!(es.connects(), 1, "the reader was never cut off");
        // The stalled client's response ends (chunked terminator, then EOF).
        let mut rest = Vec::new();
        stalled.read_to_end(&mut rest).await.unwrap();
        assert!(rest.ends_with(b"0\r\n\r\n"));
    })
    .await;
}

/// A proxy that drops a connection idle for 60 s: with heartbeats every
/// 15 s the stream lives through ten idle minutes; without, it is cut.
#[tokio::test(start_paused = true)]
async fn heartbeats_keep_an_idle_stream_alive_through_an_idle_timeout_proxy() {
    async fn idle_minutes(heartbeat: Option<Duration>) -> (bool, usize) {
        let m = Manager::in_memory(ManagerConfig::new().heartbeat_interval(heartbeat));
        let h = Handler::new(m, HandlerConfig::new());
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let mut buf = BytesMut::from(&b"GET /events?channel=c HTTP/1.1\r\nHost: x\r\n\r\n"[..]);
        let head = rtwire::http::HeadParser::new(rtwire::http::Limits::default())
            .parse_request(&mut buf)
            .unwrap()
            .unwrap();
        tokio::spawn(async move { h.serve(&mut server, &head).await });
        let (mut rd, _wr) = tokio::io::split(client);
        let mut heartbeats = 0;
        let mut seen = Vec::new();
        let end = tokio::time::Instant::now() + Duration::from_secs(600);
        while tokio::time::Instant::now() < end {
            let mut chunk = [0u8; 512];
            match tokio::time::timeout(Duration::from_secs(60), rd.read(&mut chunk)).await {
                Err(_) => return (false, heartbeats),
                Ok(r) => {
                    let n = r.unwrap();
                    assert_ne!(n, 0);
                    seen.extend_from_slice(&chunk[..n]);
                    heartbeats = seen.windows(11).filter(|w| w == b": keepalive").count();
                }
            }
        }
        (true, heartbeats)
    }
    let (alive, beats) = idle_minutes(Some(Duration::from_secs(15))).await;
    assert!(alive);
    assert!(beats >= 600 / 15 - 1, "{beats} heartbeats");
    let (alive, beats) = idle_minutes(None).await;
    assert!(!alive, "without heartbeats the proxy cuts the stream");
    assert_eq!(beats, 0);
}

/// What a browser gets is well-formed `text/event-stream` in chunks: the
/// decoder reads each event whole, `retry` first.
#[tokio::test]
async fn the_stream_starts_with_retry_and_decodes_event_by_event() {
    bounded("wire", async {
        let m = manager(ManagerConfig::new());
        let addr = serve(Handler::new(m.clone(), HandlerConfig::new())).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /events?channel=c HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        connected(&m, 1).await;
        m.publish(
            PublishRequest::new(ChannelName::new("c").unwrap(), "a\r\nb")
                .event_type("update")
                .retry_ms(1234),
        )
        .await
        .unwrap();
        let mut wire = Vec::new();
        while !wire.ends_with(b"\n\n\r\n") {
            assert_ne!(s.read_buf(&mut wire).await.unwrap(), 0);
        }
        let text = String::from_utf8(wire).unwrap();
        let body_at = text.find("\r\n\r\n").unwrap() + 4;
        let body = rtwire_dechunk(&text[body_at..]);
        assert!(body.starts_with("retry: 10\n"), "{body:?}");
        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::from(body.as_bytes());
        let ev = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!((ev.event_type(), ev.data()), ("update", "a\nb"));
        assert!(Position::parse(ev.last_event_id()).is_ok());
    })
    .await;
}

/// The body of a chunked response (complete chunks only).
fn rtwire_dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some(i) = s.find("\r\n") {
        let len = usize::from_str_radix(&s[..i], 16).unwrap();
        out.push_str(&s[i + 2..i + 2 + len]);
        s = &s[i + 2 + len + 2..];
    }
    out
}

/// `close` ends every open stream cleanly (the last chunk), waits for them,
/// and only then returns; a new request gets an empty stream to retry.
#[tokio::test]
async fn close_finishes_open_streams_then_refuses() {
    bounded("close", async {
        let m = manager(ManagerConfig::new());
        let addr = serve(Handler::new(m.clone(), HandlerConfig::new())).await;
        let mut streams = Vec::new();
        for _ in 0..3 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /events?channel=c HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            streams.push(s);
        }
        connected(&m, 3).await;
        m.close().await;
        assert_eq!(m.stats().connections, 0, "close waited for the streams");
        for mut s in streams {
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            assert!(all.starts_with(b"HTTP/1.1 200 OK\r\n"));
            assert!(
                all.ends_with(b"0\r\n\r\n"),
                "{:?}",
                String::from_utf8_lossy(&all)
            );
        }
        // Not a 503 (a browser would stop for good): an empty stream with
        // the retry, so it comes back (to this node or another).
        let resp = raw(addr, "GET /events?channel=c HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert!(
            resp.contains("retry: 10\n") && resp.ends_with("0\r\n\r\n"),
            "{resp:?}"
        );
    })
    .await;
}
