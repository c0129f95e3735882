//! Compress once: a broadcast to members with permessage-deflate is
//! compressed once per distinct window among those that can share an
//! encoding (no server context takeover), whatever their number; members
//! with context takeover compress it themselves, members without deflate
//! get it plain. Real clients over 127.0.0.1, plus a raw TCP client that
//! offers permessage-deflate and looks at the bytes on the wire.
#![cfg(feature = "deflate")]

use std::sync::Arc;
use std::time::Duration;

use rtwire::hub::{Hub, HubConfig};
use rtwire::pubsub::{MemoryBus, MemoryStore};
use rtwire::ws::{Config, Conn, DeflateConfig, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const STUCK: Duration = Duration::from_secs(30);
const ROOM: &str = "feed";

/// A listener whose connections (negotiated with `config`) join `ROOM`
/// of `hub`, get "joined", then stay until they close.
async fn server(hub: Hub, config: Config) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let config = Arc::new(config);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (hub, config) = (hub.clone(), config.clone());
            tokio::spawn(async move {
                let Ok((conn, _)) = Conn::accept(tcp, &config).await else {
                    return;
                };
                let (mut read, write) = conn.split();
                let mut reg = hub.register(write, "u", Default::default());
                hub.join(reg.id(), ROOM).await.unwrap();
                hub.send(reg.id(), &Message::text("joined")).unwrap();
                loop {
                    tokio::select! {
                        m = read.read_message() => match m {
                            Ok(Some(_)) => {}
                            _ => break,
                        },
                        _ = reg.closed() => break,
                    }
                }
                reg.unregister().await;
            });
        }
    });
    addr
}

fn deflate_config(d: DeflateConfig) -> Config {
    Config::builder().deflate(d).build()
}

type Client = Conn<TcpStream>;

async fn client(addr: &str, config: &Config) -> Client {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut c, _) = Conn::connect(tcp, &format!("ws://{addr}/"), config)
        .await
        .unwrap();
    assert_eq!(next(&mut c).await, Message::text("joined"));
    c
}

async fn next(c: &mut Client) -> Message {
    tokio::time::timeout(STUCK, c.read_message())
        .await
        .expect("stuck")
        .unwrap()
        .expect("open")
}

/// A raw client that offers permessage-deflate: reads frames as bytes.
struct Raw {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(addr: &str) -> Raw {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Raw {
            tcp,
            buf: Vec::new(),
        };
        let end = loop {
            if let Some(i) = raw.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            raw.fill().await;
        };
        let head = String::from_utf8(raw.buf.drain(..end).collect()).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("permessage-deflate"),
            "{head}"
        );
        let (b0, payload) = raw.frame().await;
        assert_eq!((b0, &payload[..]), (0x81, &b"joined"[..]));
        raw
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(STUCK, self.tcp.read(&mut chunk))
            .await
            .expect("stuck")
            .unwrap();
        assert!(n > 0, "closed");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// The next frame's first byte and payload (server frames: unmasked).
    async fn frame(&mut self) -> (u8, Vec<u8>) {
        loop {
            if self.buf.len() >= 2 {
                let (len, hl) = match self.buf[1] & 0x7f {
                    126 if self.buf.len() >= 4 => {
                        (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
                    }
                    127 if self.buf.len() >= 10 => (
                        u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize,
                        10,
                    ),
                    126 | 127 => (usize::MAX, 0),
                    n => (n as usize, 2),
                };
                if len != usize::MAX && self.buf.len() >= hl + len {
                    let b0 = self.buf[0];
                    let payload = self.buf[hl..hl + len].to_vec();
                    self.buf.drain(..hl + len);
                    return (b0, payload);
                }
            }
            self.fill().await;
        }
    }
}

/// About 4 KiB of JSON-like text.
fn feed_text() -> String {
    let mut s = String::from("[");
    let mut i = 0;
    while s.len() < 4096 - 80 {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"id":{i},"user":"user-{}","kind":"price","value":{}.{:02}}}"#,
            i % 7,
            100 + i * 3,
            i % 100
        ));
        i += 1;
    }
    s.push(']');
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_is_compressed_once_for_every_member_that_can_share_it() {
    compressed_once(false).await
}

/// The same with batched fan-out: members that compress go message by
/// message, and each message is still compressed once per window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_broadcast_is_compressed_once_for_every_member_that_can_share_it() {
    compressed_once(true).await
}

async fn compressed_once(batched: bool) {
    let hub = Hub::new(HubConfig::default().batch_broadcasts(batched));
    let shared = server(hub.clone(), deflate_config(DeflateConfig::default())).await;
    let takeover = server(
        hub.clone(),
        deflate_config(DeflateConfig::context_takeover(15)),
    )
    .await;

    let with = deflate_config(DeflateConfig::default());
    let mut sharing = Vec::new();
    for _ in 0..4 {
        let c = client(&shared, &with).await;
        assert!(c.deflate().is_some());
        sharing.push(c);
    }
    let mut plain = client(&shared, &Config::default()).await;
    assert!(plain.deflate().is_none());
    let mut own = client(
        &takeover,
        &deflate_config(DeflateConfig::context_takeover(15)),
    )
    .await;
    assert!(own.deflate().is_some_and(|p| !p.server_no_context_takeover));
    let mut raw = Raw::connect(&shared).await;
    // With context takeover the server's compressor keeps its window: a
    // repeated message refers back to the previous one.
    let mut raw_own = Raw::connect(&takeover).await;
    // Another window: its own shared encoding.
    let mut small_window = DeflateConfig::default();
    small_window.server_max_window_bits = Some(10);
    let narrow = server(hub.clone(), deflate_config(small_window.clone())).await;
    let mut narrow_client = client(&narrow, &deflate_config(small_window)).await;
    assert_eq!(
        narrow_client.deflate().map(|p| p.server_max_window_bits),
        Some(10)
    );
    assert_eq!(hub.room_size(ROOM), 9);

    let text = feed_text();
    assert!((4000..=4096).contains(&text.len()));
    let n = hub
        .broadcast(ROOM, &Message::text(text.clone()), None)
        .await
        .unwrap();
    assert_eq!(n, 9);
    for c in sharing
        .iter_mut()
        .chain([&mut plain, &mut own, &mut narrow_client])
    {
        assert_eq!(next(c).await, Message::text(text.clone()));
    }
    // On the wire: one frame, FIN + RSV1 + text, a fraction of the text.
    let (b0, z) = raw.frame().await;
    assert_eq!(b0, 0x80 | 0x40 | 0x1);
    assert!(z.len() < text.len() / 3, "{} bytes", z.len());
    let (b0, z_own) = raw_own.frame().await;
    assert_eq!(b0, 0xc1);
    // The five members that share the 15-bit encoding (four clients and
    // the raw one) cost one compression, the 10-bit member another; the
    // context-takeover members compressed it themselves.
    assert_eq!(hub.stats().broadcast_compressions, 2);

    // A second message: one more; under the threshold: none, and plain.
    let small = r#"{"id":1}"#;
    hub.broadcast(ROOM, &Message::text(text.clone()), None)
        .await
        .unwrap();
    hub.broadcast(ROOM, &Message::text(small), None)
        .await
        .unwrap();
    for c in sharing
        .iter_mut()
        .chain([&mut plain, &mut own, &mut narrow_client])
    {
        assert_eq!(next(c).await, Message::text(text.clone()));
        assert_eq!(next(c).await, Message::text(small));
    }
    assert_eq!(raw.frame().await, (0xc1, z.clone()));
    assert_eq!(raw.frame().await, (0x81, small.as_bytes().to_vec()));
    let (b0, z_own2) = raw_own.frame().await;
    assert_eq!(b0, 0xc1);
    assert!(
        z_own2.len() * 4 < z_own.len(),
        "{} then {} bytes",
        z_own.len(),
        z_own2.len()
    );
    assert_eq!(raw_own.frame().await, (0x81, small.as_bytes().to_vec()));
    assert_eq!(hub.stats().broadcast_compressions, 4);

    // broadcast_all takes the same path.
    hub.broadcast_all(&Message::text(text.clone()), None).await;
    for c in sharing
        .iter_mut()
        .chain([&mut plain, &mut own, &mut narrow_client])
    {
        assert_eq!(next(c).await, Message::text(text.clone()));
    }
    assert_eq!(raw.frame().await, (0xc1, z));
    assert_eq!(hub.stats().broadcast_compressions, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_from_another_instance_is_compressed_once_here() {
    let store = Arc::new(MemoryStore::default());
    let bus = Arc::new(MemoryBus::new());
    let a = Hub::with_bus(HubConfig::default(), "a", store.clone(), bus.clone())
        .await
        .unwrap();
    let b = Hub::with_bus(HubConfig::default(), "b", store, bus)
        .await
        .unwrap();
    let addr = server(b.clone(), deflate_config(DeflateConfig::default())).await;
    let with = deflate_config(DeflateConfig::default());
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(client(&addr, &with).await);
    }
    let mut raw = Raw::connect(&addr).await;
    // a has no members; its broadcast reaches b's through the bus.
    let text = feed_text();
    a.broadcast(ROOM, &Message::text(text.clone()), None)
        .await
        .unwrap();
    for c in &mut members {
        assert_eq!(next(c).await, Message::text(text.clone()));
    }
    assert_eq!(raw.frame().await.0, 0xc1);
    assert_eq!(a.stats().broadcast_compressions, 0);
    assert_eq!(b.stats().broadcast_compressions, 1);
}
