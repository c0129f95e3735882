//! The hub's fan-out benchmark, run by `chat_node fanout` (this file is
//! included by `examples/chat_node.rs`):
//!
//! ```text
//! cargo run --release --example chat_node --features serde,redis -- fanout 1000 200 [hub|tungstenite]
//! ```
//!
//! One room of N WebSocket subscribers over 127.0.0.1; M messages of 64
//! bytes are broadcast, and the run ends when every subscriber has
//! received all M. Two servers, one after the other, in the same process
//! and with the same clients:
//!
//! - `rtwire-hub`: `Hub::broadcast` (one encode, a `Bytes` clone per
//!   member, one writer task per connection);
//! - `broadcast+tungstenite`: the seeds' axum pattern, a
//!   `tokio::sync::broadcast` channel and one task per client that sends
//!   each message with tokio-tungstenite (an encode and a flush per client
//!   per message).
//!
//! The clients parse frame headers only (64-byte payloads, fixed size), so
//! their cost is the same for both. Reported: deliveries per second (wall
//! time) and the process's CPU time per delivery (user + system, clients
//! included, from `/proc/self/stat`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use rtwire::hub::{Hub, HubConfig};
use rtwire::ws::{Config, Conn, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

const PAYLOAD: usize = 64;
/// A server frame of 64 bytes: 2 bytes of header.
const FRAME: u64 = 2 + PAYLOAD as u64;

/// CPU seconds (user + system) of this process so far.
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are at 11, 12 after the ')'.
    (t(11) + t(12)) / 100.0
}

/// Connects `n` clients that count received bytes.
async fn clients(addr: &str, n: usize, got: Arc<AtomicU64>, done: Arc<Notify>, want: u64) {
    for _ in 0..n {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "GET /bench HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            tcp.read_exact(&mut b).await.unwrap();
            head.push(b[0]);
        }
        let (got, done) = (got.clone(), done.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(k) => {
                        if got.fetch_add(k as u64, Ordering::Relaxed) + k as u64 == want {
                            done.notify_one();
                        }
                    }
                }
            }
        });
    }
}

struct Run {
    secs: f64,
    cpu: f64,
    deliveries: u64,
}

async fn run_hub(n: usize, m: usize) -> Run {
    let hub = Hub::new(HubConfig::default().max_queue_bytes(m * FRAME as usize + 4096));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let joined = Arc::new(AtomicU64::new(0));
    let all_in = Arc::new(Notify::new());
    let (h, j, a) = (hub.clone(), joined.clone(), all_in.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (h, j, a) = (h.clone(), j.clone(), a.clone());
            tokio::spawn(async move {
                let (conn, _) = Conn::accept(tcp, &Config::default()).await.unwrap();
                let (mut read, write) = conn.split();
                let reg = h.register(write, "u", Default::default());
                h.join(reg.id(), "bench").await.unwrap();
                if j.fetch_add(1, Ordering::Relaxed) + 1 == n as u64 {
                    a.notify_one();
                }
                while let Ok(Some(_)) = read.read_message().await {}
                reg.unregister().await;
            });
        }
    });
    let want = (n * m) as u64 * FRAME;
    let (got, done) = (Arc::new(AtomicU64::new(0)), Arc::new(Notify::new()));
    clients(&addr, n, got, done.clone(), want).await;
    all_in.notified().await;
    let msg = Message::binary(vec![7u8; PAYLOAD]);
    let (t0, c0) = (Instant::now(), cpu_secs());
    for _ in 0..m {
        hub.broadcast("bench", &msg, None).await.unwrap();
        tokio::task::yield_now().await;
    }
    done.notified().await;
    Run {
        secs: t0.elapsed().as_secs_f64(),
        cpu: cpu_secs() - c0,
        deliveries: (n * m) as u64,
    }
}

async fn run_tungstenite(n: usize, m: usize) -> Run {
    use tokio_tungstenite::tungstenite::Message as TMsg;
    let (tx, _) = tokio::sync::broadcast::channel::<TMsg>(m + 16);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let joined = Arc::new(AtomicU64::new(0));
    let all_in = Arc::new(Notify::new());
    let (t, j, a) = (tx.clone(), joined.clone(), all_in.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut rx = t.subscribe();
            let (j, a) = (j.clone(), a.clone());
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                if j.fetch_add(1, Ordering::Relaxed) + 1 == n as u64 {
                    a.notify_one();
                }
                while let Ok(msg) = rx.recv().await {
                    if ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let want = (n * m) as u64 * FRAME;
    let (got, done) = (Arc::new(AtomicU64::new(0)), Arc::new(Notify::new()));
    clients(&addr, n, got, done.clone(), want).await;
    all_in.notified().await;
    let msg = TMsg::binary(vec![7u8; PAYLOAD]);
    let (t0, c0) = (Instant::now(), cpu_secs());
    for _ in 0..m {
        let _ = tx.send(msg.clone());
        tokio::task::yield_now().await;
    }
    done.notified().await;
    Run {
        secs: t0.elapsed().as_secs_f64(),
        cpu: cpu_secs() - c0,
        deliveries: (n * m) as u64,
    }
}

/// Runs `which` (`hub`, `tungstenite`, or both) and prints one line each
/// (and the ratios when both ran). Run them one per process when 4·N file
/// descriptors do not fit the limit (each run keeps its 2·N sockets).
pub async fn main(n: usize, m: usize, which: &str) {
    let guard = Duration::from_secs(300);
    let mut runs = Vec::new();
    if which != "tungstenite" {
        let r = tokio::time::timeout(guard, run_hub(n, m))
            .await
            .expect("stuck");
        runs.push(("rtwire-hub", r));
    }
    if which != "hub" {
        let r = tokio::time::timeout(guard, run_tungstenite(n, m))
            .await
            .expect("stuck");
        runs.push(("broadcast+tungstenite", r));
    }
    for (name, r) in &runs {
        println!(
            "RESULT server={name} subscribers={n} messages={m} deliveries_per_s={:.0} cpu_ns_per_delivery={:.0}",
            r.deliveries as f64 / r.secs,
            r.cpu * 1e9 / r.deliveries as f64
        );
    }
    if let [(_, hub), (_, tung)] = &runs[..] {
        println!(
            "RATIO subscribers={n} throughput={:.2}x cpu_per_delivery={:.2}x",
            tung.secs / hub.secs,
            tung.cpu / hub.cpu.max(1e-9)
        );
    }
}
