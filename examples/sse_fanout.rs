//! SSE fan-out benchmark: one channel of N subscribers over 127.0.0.1,
//! M events of 64 bytes published back to back; the run ends when every
//! subscriber has every event. Run by `benches/sse-fanout.sh`:
//!
//! ```text
//! cargo run --release --example sse_fanout -- 1000 200 rtwire|go-style|broadcast [burst|paced]
//! ```
//!
//! Servers (one per run, same clients, same process):
//!
//! - `rtwire`: `sse::Manager` + `sse::Handler` (one encoding per event,
//!   shared; each stream writes what is queued in one go);
//! - `go-style`: the seeds' `ClientManager.Broadcast` in Rust: one bounded
//!   mpsc of `String` per client, each event `format!`-encoded per client,
//!   written and flushed one by one;
//! - `broadcast`: the seeds' axum pattern without axum's own layers: one
//!   `tokio::sync::broadcast` receiver per client, each event encoded per
//!   client as it is received and written (axum's `Sse` does this encode per
//!   client; leaving axum out only flatters this peer).
//!
//! `burst` publishes the M events back to back (a stream can write what
//! has queued in one go); `paced` publishes the next only when every
//! subscriber has the last (one write per event per client for everyone).
//!
//! Clients read raw bytes and count events by their blank line. Reported:
//! deliveries per second (wall time) and the process's CPU time per
//! delivery (user + system, clients included, from `/proc/self/stat`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rtwire::pubsub::{ChannelName, PublishRequest};
use rtwire::sse::{Handler, HandlerConfig, Manager, ManagerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, Notify};

const PAYLOAD: usize = 64;
const HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";

fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// Skips the request head.
async fn read_head(tcp: &mut TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut b).await?;
        head.push(b[0]);
    }
    Ok(())
}

/// One chunk of an event, encoded for one client (what the peers do).
fn chunk_for(id: u64, data: &str) -> String {
    let ev = format!("id: {id}\ndata: {data}\n\n");
    format!("{:x}\r\n{ev}\r\n", ev.len())
}

enum Server {
    Rtwire(Manager),
    GoStyle(Arc<std::sync::Mutex<Vec<mpsc::Sender<String>>>>),
    Broadcast(broadcast::Sender<Arc<(u64, String)>>),
}

async fn start(kind: &str) -> (SocketAddr, Server) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = match kind {
        "rtwire" => {
            let m = Manager::in_memory(
                ManagerConfig::new()
                    .max_connections(100_000)
                    .client_buffer(1024)
                    .heartbeat_interval(None)
                    .default_retry(None),
            );
            let h = Handler::new(m.clone(), HandlerConfig::new());
            tokio::spawn(async move {
                loop {
                    let (mut tcp, _) = l.accept().await.unwrap();
                    let h = h.clone();
                    tokio::spawn(async move {
                        let c = rtwire::ws::Config::default();
                        let head = rtwire::ws::read_request_head(&mut tcp, &c).await?;
                        h.serve(tcp, &head.head).await
                    });
                }
            });
            Server::Rtwire(m)
        }
        "go-style" => {
            let clients = Arc::new(std::sync::Mutex::new(Vec::new()));
            let reg = clients.clone();
            tokio::spawn(async move {
                loop {
                    let (mut tcp, _) = l.accept().await.unwrap();
                    let (tx, mut rx) = mpsc::channel::<String>(1024);
                    reg.lock().unwrap().push(tx);
                    tokio::spawn(async move {
                        read_head(&mut tcp).await?;
                        tcp.write_all(HEAD).await?;
                        while let Some(chunk) = rx.recv().await {
                            tcp.write_all(chunk.as_bytes()).await?;
                            tcp.flush().await?;
                        }
                        std::io::Result::Ok(())
                    });
                }
            });
            Server::GoStyle(clients)
        }
        "broadcast" => {
            let (tx, _) = broadcast::channel::<Arc<(u64, String)>>(1024);
            let t = tx.clone();
            tokio::spawn(async move {
                loop {
                    let (mut tcp, _) = l.accept().await.unwrap();
                    let mut rx = t.subscribe();
                    tokio::spawn(async move {
                        read_head(&mut tcp).await?;
                        tcp.write_all(HEAD).await?;
                        while let Ok(ev) = rx.recv().await {
                            let chunk = chunk_for(ev.0, &ev.1);
                            tcp.write_all(chunk.as_bytes()).await?;
                            tcp.flush().await?;
                        }
                        std::io::Result::Ok(())
                    });
                }
            });
            Server::Broadcast(tx)
        }
        other => panic!("unknown server {other:?}"),
    };
    (addr, server)
}

/// `n` clients that count events (blank lines); `done` fires when the
/// total reaches `want`. Returns when all are connected and streaming.
async fn clients(
    addr: SocketAddr,
    n: usize,
    got: Arc<AtomicU64>,
    done: Arc<Notify>,
    want: Arc<AtomicU64>,
) {
    let ready = Arc::new(AtomicU64::new(0));
    let all_ready = Arc::new(Notify::new());
    for _ in 0..n {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /events?channel=bench HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (got, done, ready, all_ready, want) = (
            got.clone(),
            done.clone(),
            ready.clone(),
            all_ready.clone(),
            want.clone(),
        );
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut prev = 0u8;
            let mut head_seen = false;
            loop {
                let k = match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(k) => k,
                };
                let mut events = 0;
                for &b in &buf[..k] {
                    if b == b'\n' && prev == b'\n' {
                        events += 1;
                    }
                    prev = b;
                }
                if !head_seen {
                    head_seen = true;
                    if ready.fetch_add(1, Ordering::AcqRel) + 1 == n as u64 {
                        all_ready.notify_one();
                    }
                }
                if events > 0
                    && got.fetch_add(events, Ordering::AcqRel) + events
                        == want.load(Ordering::Acquire)
                {
                    done.notify_one();
                }
            }
        });
    }
    all_ready.notified().await;
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let m: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(200);
    let kind = args.next().unwrap_or_else(|| "rtwire".into());
    // `burst`: publish all M back to back; `paced`: publish the next only
    // when every subscriber has the last (no batching of writes possible).
    let paced = args.next().is_some_and(|v| v == "paced");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (addr, server) = start(&kind).await;
        let got = Arc::new(AtomicU64::new(0));
        let done = Arc::new(Notify::new());
        let want = n as u64 * m;
        // What `done` waits for: every event (burst), the current one (paced).
        let target = Arc::new(AtomicU64::new(if paced { n as u64 } else { want }));
        clients(addr, n, got.clone(), done.clone(), target.clone()).await;
        if let Server::Rtwire(mgr) = &server {
            while mgr.stats().connections < n as u64 {
                tokio::task::yield_now().await;
            }
        }
        if let Server::GoStyle(c) = &server {
            while c.lock().unwrap().len() < n {
                tokio::task::yield_now().await;
            }
        }
        let data = "x".repeat(PAYLOAD);
        let (t0, c0) = (Instant::now(), cpu_secs());
        let ch = ChannelName::new("bench").unwrap();
        for id in 1..=m {
            let waiting = done.notified();
            tokio::pin!(waiting);
            waiting.as_mut().enable();
            if paced {
                target.store(n as u64 * id, Ordering::Release);
            }
            match &server {
                Server::Rtwire(mgr) => {
                    mgr.publish(PublishRequest::new(ch.clone(), data.clone()))
                        .await
                        .unwrap();
                }
                Server::GoStyle(c) => {
                    for tx in c.lock().unwrap().iter() {
                        // The seeds' Broadcast: a non-blocking send per client.
                        let _ = tx.try_send(chunk_for(id, &data));
                    }
                }
                Server::Broadcast(tx) => {
                    let _ = tx.send(Arc::new((id, data.clone())));
                }
            }
            if paced || id == m {
                waiting.await;
            } else {
                tokio::task::yield_now().await;
            }
        }
        let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - c0);
        let deliveries = want as f64;
        println!(
            "{kind:10} {} n={n:6} m={m:4} deliveries={want:8} wall={wall:.3}s deliveries/s={:.0} cpu/delivery={:.0}ns",
            if paced { "paced" } else { "burst" },
            deliveries / wall,
            cpu * 1e9 / deliveries
        );
        assert_eq!(got.load(Ordering::Acquire), want);
    });
}
