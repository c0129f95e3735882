//! The hub's fan-out benchmark, with the server and its clients in two
//! processes so that the server's CPU is measured alone:
//!
//! ```text
//! hub_fanout server <hub|hub-batched|tungstenite|fastws> ADDR N M   # the server
//! hub_fanout clients ADDR N M                           # its N clients
//! hub_fanout run N M [KIND...]   # all four (or those named), one after the other
//! ```
//!
//! One room of N WebSocket subscribers over loopback; M binary messages of
//! 64 bytes are broadcast, and the run ends when every subscriber has
//! received all M. Three servers, each behind the same accept loop, the same
//! control connection and the same broadcast loop (send, `yield_now`,
//! repeat):
//!
//! - `hub` (`rtwire-hub`): `Hub::broadcast` (one encode, a copy of the
//!   small frame into each member's queue, one writer task per connection
//!   that writes what has queued in one go);
//! - `hub-batched` (`rtwire-hub-batched`): the same hub with
//!   `HubConfig::batch_broadcasts(true)`: `broadcast` queues the message
//!   and returns, the hub's delivery task pushes what has queued for the
//!   room to each member at once;
//! - `hub-history` (`rtwire-hub-history`) and `hub-batched-history`
//!   (`rtwire-hub-batched-history`): the two above with the room's
//!   history on (`HubConfig::history`): each broadcast is first appended
//!   to the in-memory store, and the room's feed task delivers it (in a
//!   room with history the feed delivers message by message, batched or
//!   not). What history costs per delivery is the difference;
//! - `tungstenite` (`broadcast+tungstenite`): the seeds' axum pattern, a
//!   `tokio::sync::broadcast` channel and one task per client that sends
//!   each message with tokio-tungstenite (an encode and a flush per client
//!   per message);
//! - `fastws` (`broadcast+fastwebsockets`): the same channel and one task
//!   per client, upgraded by fastwebsockets on hyper as in `fastws_echo`,
//!   each task encoding its own frame (`Frame::binary` + `write_frame` per
//!   message).
//!
//! The clients are raw TCP: a handshake, then a byte count (the frames are
//! 2 + 64 bytes, unmasked). Once all N are connected the client process
//! opens a control connection to the server's port (its first byte is `C`,
//! an upgrade request's is `G`) and writes `go`; when every client has its
//! N·66 bytes it writes `done`. The server measures its own CPU (user +
//! system, `getrusage`) and wall time from the first broadcast to `done`.
//! Both processes run tokio's multi-thread runtime with 2 workers. No
//! server sets `TCP_NODELAY` (rtwire's `Conn` does not either).
//!
//! The server also prints `window monotonic_ns=A..B` on stderr: the
//! broadcast's span on CLOCK_MONOTONIC, the clock of
//! `perf record -k CLOCK_MONOTONIC`, so that a profile of the server can
//! be cut to the broadcast (without the N handshakes).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};

const PAYLOAD: usize = 64;
/// A server frame of 64 bytes: 2 bytes of header.
const FRAME: usize = 2 + PAYLOAD;
/// A stuck run fails instead of hanging.
const GUARD: Duration = Duration::from_secs(600);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// User and system CPU of this process so far, in nanoseconds (the same
/// utime and stime as `/proc/self/stat`, at microsecond resolution).
fn cpu_ns() -> (u64, u64) {
    // SAFETY: `getrusage` only writes the struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    (ns(ru.ru_utime), ns(ru.ru_stime))
}

/// CLOCK_MONOTONIC in nanoseconds: the clock `perf record -k CLOCK_MONOTONIC`
/// stamps its samples with, so a profile can be cut to the broadcast.
fn mono_ns() -> u64 {
    // SAFETY: `clock_gettime` only writes the struct it is given.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        ts
    };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    args.get(i)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("argument {i}: {what}"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("server") => {
            let kind = args.get(2).expect("server kind").clone();
            let addr = args.get(3).expect("ADDR").clone();
            let (n, m) = (arg(&args, 4, "N"), arg(&args, 5, "M"));
            runtime().block_on(async {
                tokio::time::timeout(GUARD, server(&kind, &addr, n, m))
                    .await
                    .expect("server stuck")
            });
        }
        Some("clients") => {
            let addr = args.get(2).expect("ADDR").clone();
            let (n, m) = (arg(&args, 3, "N"), arg(&args, 4, "M"));
            runtime().block_on(async {
                tokio::time::timeout(GUARD, clients(&addr, n, m))
                    .await
                    .expect("clients stuck")
            });
        }
        Some("run") => {
            let kinds: Vec<&str> = args[4..].iter().map(String::as_str).collect();
            run(arg(&args, 2, "N"), arg(&args, 3, "M"), &kinds)
        }
        _ => {
            eprintln!(
                "usage: hub_fanout server <hub|tungstenite|fastws> ADDR N M | clients ADDR N M | run N M"
            );
            std::process::exit(2);
        }
    }
}

// ---------------------------------------------------------------- server

/// What the accept loop needs: the count of subscribers ready, and where
/// the control connection goes.
struct Accepted {
    joined: AtomicUsize,
    n: usize,
    all_in: Notify,
}

impl Accepted {
    fn one_in(&self) {
        if self.joined.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.all_in.notify_one();
        }
    }
}

/// The three servers' sending sides; each spawns its own connection tasks.
enum Server {
    Hub {
        hub: rtwire::hub::Hub,
        msg: rtwire::ws::Message,
    },
    Tungstenite {
        tx: tokio::sync::broadcast::Sender<tungstenite::Message>,
        msg: tungstenite::Message,
    },
    Fastws {
        tx: tokio::sync::broadcast::Sender<Bytes>,
        msg: Bytes,
    },
}

impl Server {
    fn new(kind: &str, m: usize) -> (Server, &'static str) {
        let payload = vec![7u8; PAYLOAD];
        match kind {
            "hub" => {
                let cfg = rtwire::hub::HubConfig::default().max_queue_bytes(m * FRAME + 4096);
                let hub = rtwire::hub::Hub::new(cfg);
                let msg = rtwire::ws::Message::binary(payload);
                (Server::Hub { hub, msg }, "rtwire-hub")
            }
            "hub-batched" => {
                let cfg = rtwire::hub::HubConfig::default()
                    .max_queue_bytes(m * FRAME + 4096)
                    .batch_broadcasts(true);
                let hub = rtwire::hub::Hub::new(cfg);
                let msg = rtwire::ws::Message::binary(payload);
                (Server::Hub { hub, msg }, "rtwire-hub-batched")
            }
            "hub-history" | "hub-batched-history" => {
                let history = rtwire::hub::HistoryConfig::default().size(m.max(1));
                let mut cfg = rtwire::hub::HubConfig::default()
                    .max_queue_bytes(m * FRAME + 4096)
                    .batch_broadcasts(kind == "hub-batched-history")
                    .history(history);
                // The clients count bytes of broadcast frames only: no
                // `joined` notice on join.
                cfg.room_notice = None;
                let hub = rtwire::hub::Hub::new(cfg);
                let msg = rtwire::ws::Message::binary(payload);
                let name = if kind == "hub-history" {
                    "rtwire-hub-history"
                } else {
                    "rtwire-hub-batched-history"
                };
                (Server::Hub { hub, msg }, name)
            }
            "tungstenite" => {
                let (tx, _) = tokio::sync::broadcast::channel(m + 16);
                let msg = tungstenite::Message::binary(payload);
                (Server::Tungstenite { tx, msg }, "broadcast+tungstenite")
            }
            "fastws" => {
                let (tx, _) = tokio::sync::broadcast::channel(m + 16);
                let msg = Bytes::from(payload);
                (Server::Fastws { tx, msg }, "broadcast+fastwebsockets")
            }
            other => panic!(
                "unknown server {other:?} (hub, hub-batched, hub-history, hub-batched-history, tungstenite or fastws)"
            ),
        }
    }

    /// Serves one subscriber on `tcp` until it goes away.
    fn spawn_subscriber(&self, tcp: TcpStream, acc: Arc<Accepted>) {
        match self {
            Server::Hub { hub, .. } => {
                let hub = hub.clone();
                tokio::spawn(async move {
                    let cfg = rtwire::ws::Config::default();
                    let Ok((conn, _)) = rtwire::ws::Conn::accept(tcp, &cfg).await else {
                        return;
                    };
                    let (mut read, write) = conn.split();
                    let reg = hub.register(write, "u", Default::default());
                    hub.join(reg.id(), "bench").await.unwrap();
                    acc.one_in();
                    while let Ok(Some(_)) = read.read_message().await {}
                    reg.unregister().await;
                });
            }
            Server::Tungstenite { tx, .. } => {
                let mut rx = tx.subscribe();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    acc.one_in();
                    while let Ok(msg) = rx.recv().await {
                        if ws.send(msg).await.is_err() {
                            return;
                        }
                    }
                });
            }
            Server::Fastws { tx, .. } => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |mut req| {
                        let (rx, acc) = (tx.subscribe(), acc.clone());
                        async move {
                            let (resp, fut) = fastwebsockets::upgrade::upgrade(&mut req)?;
                            tokio::spawn(fastws_subscriber(fut, rx, acc));
                            Ok::<_, fastwebsockets::WebSocketError>(resp)
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(tcp);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .with_upgrades()
                        .await;
                });
            }
        }
    }

    /// One message to every subscriber.
    async fn broadcast(&self) {
        match self {
            Server::Hub { hub, msg } => {
                hub.broadcast("bench", msg, None).await.unwrap();
            }
            Server::Tungstenite { tx, msg } => {
                let _ = tx.send(msg.clone());
            }
            Server::Fastws { tx, msg } => {
                let _ = tx.send(msg.clone());
            }
        }
    }
}

/// A fastwebsockets subscriber: its own frame for each message it receives.
async fn fastws_subscriber(
    fut: fastwebsockets::upgrade::UpgradeFut,
    mut rx: tokio::sync::broadcast::Receiver<Bytes>,
    acc: Arc<Accepted>,
) {
    let Ok(mut ws) = fut.await else { return };
    acc.one_in();
    while let Ok(msg) = rx.recv().await {
        let frame = fastwebsockets::Frame::binary(fastwebsockets::Payload::Borrowed(&msg));
        if ws.write_frame(frame).await.is_err() {
            return;
        }
    }
}

async fn server(kind: &str, addr: &str, n: usize, m: usize) {
    let (srv, name) = Server::new(kind, m);
    let srv = Arc::new(srv);
    let listener = TcpListener::bind(addr).await.expect("bind");
    println!("listening {}", listener.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    let acc = Arc::new(Accepted {
        joined: AtomicUsize::new(0),
        n,
        all_in: Notify::new(),
    });
    let (ctrl_tx, mut ctrl_rx) = mpsc::channel::<TcpStream>(1);
    let (s, a) = (srv.clone(), acc.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.expect("accept");
            let mut first = [0u8; 1];
            // Only the control connection's first byte is `C`; peeking
            // in the accept loop keeps the subscribers' order of arrival.
            match tcp.peek(&mut first).await {
                Ok(1) if first[0] == b'C' => {
                    let _ = ctrl_tx.send(tcp).await;
                }
                Ok(_) => s.spawn_subscriber(tcp, a.clone()),
                Err(_) => {}
            }
        }
    });
    let ctrl = ctrl_rx.recv().await.expect("control connection");
    let mut ctrl = tokio::io::BufReader::new(ctrl);
    let mut line = String::new();
    ctrl.read_line(&mut line).await.unwrap();
    assert_eq!(line.trim(), "CTRL go", "control: {line:?}");
    if acc.joined.load(Ordering::Acquire) < n {
        acc.all_in.notified().await;
    }

    let (t0, (u0, s0), m0) = (Instant::now(), cpu_ns(), mono_ns());
    for _ in 0..m {
        srv.broadcast().await;
        tokio::task::yield_now().await;
    }
    line.clear();
    ctrl.read_line(&mut line).await.unwrap();
    let (secs, (u1, s1)) = (t0.elapsed().as_secs_f64(), cpu_ns());
    assert_eq!(line.trim(), "done", "control: {line:?}");
    eprintln!("window monotonic_ns={m0}..{}", mono_ns());

    let deliveries = (n * m) as f64;
    let per = |ns: u64| ns as f64 / deliveries;
    println!(
        "RESULT server={name} subscribers={n} messages={m} deliveries_per_s={:.0} server_cpu_ns_per_delivery={:.0} user_ns={:.0} sys_ns={:.0} wall_ms={:.0}",
        deliveries / secs,
        per(u1 - u0 + s1 - s0),
        per(u1 - u0),
        per(s1 - s0),
        secs * 1e3,
    );
    std::io::stdout().flush().unwrap();
    let _ = ctrl.get_mut().write_all(b"bye\n").await;
}

// --------------------------------------------------------------- clients

/// Connects and upgrades one subscriber; returns the bytes read past the
/// response head (frames, if the server sent any yet).
async fn connect(addr: &str) -> (TcpStream, usize) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET /bench HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.expect("request");
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    loop {
        let k = tcp.read(&mut buf).await.expect("response");
        assert!(k > 0, "server closed during the handshake");
        head.extend_from_slice(&buf[..k]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            assert!(head.starts_with(b"HTTP/1.1 101"), "not upgraded");
            return (tcp, head.len() - (i + 4));
        }
    }
}

async fn clients(addr: &str, n: usize, m: usize) {
    let want = (m * FRAME) as u64;
    let left = Arc::new(AtomicUsize::new(n));
    let done = Arc::new(Notify::new());
    for _ in 0..n {
        let (mut tcp, extra) = connect(addr).await;
        let (left, done) = (left.clone(), done.clone());
        tokio::spawn(async move {
            let mut got = extra as u64;
            let mut buf = vec![0u8; 16 * 1024];
            let mut counted = false;
            loop {
                if got >= want && !counted {
                    assert_eq!(got, want, "more bytes than frames");
                    counted = true;
                    if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                        done.notify_one();
                    }
                }
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(k) => got += k as u64,
                }
            }
        });
    }
    let mut ctrl = TcpStream::connect(addr).await.expect("control");
    ctrl.write_all(b"CTRL go\n").await.unwrap();
    done.notified().await;
    ctrl.write_all(b"done\n").await.unwrap();
    // Wait for the server's result before closing the subscribers.
    let mut rest = Vec::new();
    let _ = ctrl.read_to_end(&mut rest).await;
}

// ------------------------------------------------------------------- run

struct Outcome {
    name: String,
    per_s: f64,
    cpu_ns: f64,
}

fn field(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        .to_string()
}

/// One server process and one client process.
fn run_one(exe: &std::path::Path, kind: &str, n: usize, m: usize) -> Outcome {
    let (ns, ms) = (n.to_string(), m.to_string());
    let mut server = Command::new(exe)
        .args(["server", kind, "127.0.0.1:0", &ns, &ms])
        .stdout(Stdio::piped())
        .spawn()
        .expect("server process");
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("server said {line:?}"))
        .trim()
        .to_string();
    let mut clients = Command::new(exe)
        .args(["clients", &addr, &ns, &ms])
        .spawn()
        .expect("client process");
    line.clear();
    out.read_line(&mut line).unwrap();
    let result = line.trim().to_string();
    assert!(result.starts_with("RESULT "), "server said {result:?}");
    println!("{result}");
    assert!(server.wait().unwrap().success());
    assert!(clients.wait().unwrap().success());
    Outcome {
        name: field(&result, "server"),
        per_s: field(&result, "deliveries_per_s").parse().unwrap(),
        cpu_ns: field(&result, "server_cpu_ns_per_delivery")
            .parse()
            .unwrap(),
    }
}

fn run(n: usize, m: usize, only: &[&str]) {
    let exe = std::env::current_exe().expect("own path");
    let runs: Vec<Outcome> = [
        "hub",
        "hub-batched",
        "hub-history",
        "hub-batched-history",
        "tungstenite",
        "fastws",
    ]
    .iter()
    .filter(|k| only.is_empty() || only.contains(k))
    .map(|kind| run_one(&exe, kind, n, m))
    .collect();
    let (ours, peers): (Vec<&Outcome>, Vec<&Outcome>) =
        runs.iter().partition(|o| o.name.starts_with("rtwire"));
    if peers.is_empty() {
        return;
    }
    let fastest = peers.iter().max_by(|a, b| a.per_s.total_cmp(&b.per_s));
    let leanest = peers.iter().min_by(|a, b| a.cpu_ns.total_cmp(&b.cpu_ns));
    let (fastest, leanest) = (fastest.unwrap(), leanest.unwrap());
    for hub in ours {
        for p in &peers {
            println!(
                "RATIO subscribers={n} {}_vs={} throughput={:.2}x server_cpu_per_delivery={:.2}x",
                hub.name,
                p.name,
                hub.per_s / p.per_s,
                p.cpu_ns / hub.cpu_ns.max(1e-9),
            );
        }
        println!(
            "RATIO subscribers={n} server={} best_peer_throughput={} {:.2}x best_peer_cpu={} {:.2}x",
            hub.name,
            fastest.name,
            hub.per_s / fastest.per_s,
            leanest.name,
            leanest.cpu_ns / hub.cpu_ns.max(1e-9),
        );
    }
}
