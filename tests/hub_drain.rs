//! `Hub::drain` on tokio's paused clock, members over pipes: every
//! connection gets what was queued for it, then close 1012, at moments
//! spread over the deadline; a connection registered during the drain is
//! closed at once; the drain returns when all are gone.
use std::time::Duration;

use bytes::BytesMut;
use rtwire::hub::{Hub, HubConfig, DRAIN_CLOSE};
use rtwire::ws::{CloseCode, Config, Conn, Message, Role};
use rtwire::Error;
use tokio::io::DuplexStream;
use tokio::time::Instant;

type Client = Conn<DuplexStream>;

fn member(hub: &Hub, user: &str) -> (Client, tokio::task::JoinHandle<()>) {
    let (c, s) = tokio::io::duplex(1 << 16);
    let cfg = Config::default();
    let server = Conn::from_upgraded(s, Role::Server, &cfg, BytesMut::new());
    let (mut read, write) = server.split();
    let mut reg = hub.register(write, user, Default::default());
    // The application's read loop, as `envelope::serve` runs it.
    let app = tokio::spawn(async move {
        loop {
            tokio::select! {
                m = read.read_message() => if !matches!(m, Ok(Some(_))) { break },
                _ = reg.closed() => break,
            }
        }
        reg.unregister().await;
    });
    (
        Conn::from_upgraded(c, Role::Client, &cfg, BytesMut::new()),
        app,
    )
}

/// Reads a client until its connection closes: the texts, the close code,
/// and when the close came.
async fn read_to_close(mut c: Client) -> (Vec<String>, Option<CloseCode>, Instant) {
    let mut texts = Vec::new();
    loop {
        match c.read_message().await {
            Ok(Some(m)) => texts.push(m.as_text().unwrap_or("").to_owned()),
            Ok(None) => {
                let code = c.peer_close_frame().map(|f| f.code);
                return (texts, code, Instant::now());
            }
            Err(Error::Io(_)) | Err(_) => return (texts, None, Instant::now()),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn drain_flushes_then_closes_every_connection_with_1012_spread_over_the_deadline() {
    let hub = Hub::new(HubConfig::default());
    let start = Instant::now();
    let mut readers = Vec::new();
    let mut apps = Vec::new();
    for i in 0..40 {
        let (c, app) = member(&hub, &format!("u{i}"));
        apps.push(app);
        readers.push(tokio::spawn(read_to_close(c)));
    }
    let ids: Vec<_> = (0..40)
        .flat_map(|i| hub.connections_of(&format!("u{i}")))
        .collect();
    for id in &ids {
        hub.send(*id, &Message::text("queued before the drain"))
            .unwrap();
    }
    let deadline = Duration::from_secs(10);
    let drain = {
        let hub = hub.clone();
        tokio::spawn(async move { hub.drain(deadline).await })
    };
    // A connection that arrives during the drain is closed at once.
    while !hub.is_draining() {
        tokio::task::yield_now().await;
    }
    let (late, late_app) = member(&hub, "late");
    // (A virtual-time bound: the paused clock jumps to the drain's end if
    // nothing closes it.)
    let (texts, code, at) = tokio::time::timeout(deadline * 2, read_to_close(late))
        .await
        .expect("the late connection was not closed");
    assert_eq!((texts.len(), code), (0, Some(DRAIN_CLOSE)));
    assert!(
        at - start < Duration::from_millis(10),
        "late closed after {:?}",
        at - start
    );
    late_app.await.unwrap();
    let mut times = Vec::new();
    for r in readers {
        let (texts, code, at) = r.await.unwrap();
        assert_eq!(texts, ["queued before the drain"], "flushed first");
        assert_eq!(code, Some(DRAIN_CLOSE));
        times.push(at - start);
    }
    let d = drain.await.unwrap();
    assert_eq!((d.closed, d.left), (40, 0));
    // Spread: within the deadline, and not in one burst.
    times.sort();
    assert!(*times.last().unwrap() < deadline, "{times:?}");
    let first_half = times.iter().filter(|t| **t < deadline / 2).count();
    assert!(
        (8..=32).contains(&first_half),
        "{first_half} of 40 in the first half: {times:?}"
    );
    assert!(
        times.windows(2).filter(|w| w[0] == w[1]).count() < 5,
        "{times:?}"
    );
    for a in apps {
        a.await.unwrap();
    }
    assert_eq!(hub.stats().connections, 0);
}
