//! Two demo `server` processes (`examples/server`) on one real
//! `redis-server` serve one logical event stream: a client streaming from
//! the first, which is killed with SIGKILL mid-stream, reconnects to the
//! second with `Last-Event-ID` and receives every event once, in order.
//!
//! Waiting is event-driven (lines a process prints, events a client
//! reads); [`STUCK`] only guards against a hung run.
#![cfg(feature = "redis")]

mod example_support;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rtwire::pubsub::Position;
use rtwire::sse::{ClientConfig, EventSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod redis_support;
use redis_support::RedisServer;

const STUCK: Duration = Duration::from_secs(90);

/// The demo server built with `redis` (see tests/pubsub_multiprocess.rs
/// for why it is built here).
fn server_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // The features of this test's own build, so the library is not
        // rebuilt with others (and the chat route is on with `serde`).
        let features = if cfg!(feature = "serde") {
            "redis,serde"
        } else {
            "redis"
        };
        example_support::build_example("server", features)
    })
}

/// A `server` process on a free port; SIGKILLed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(redis: &str, id: &str) -> Server {
        let mut child = Command::new(server_bin())
            .args(["127.0.0.1:0", "--redis", redis, "--instance-id", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        // "rtwire demo: open http://127.0.0.1:PORT/ ..."
        let addr = loop {
            let line = rx.recv_timeout(STUCK).expect("the server's banner");
            if let Some(rest) = line.strip_prefix("rtwire demo: open http://") {
                break rest.split('/').next().unwrap().parse().unwrap();
            }
        };
        Server { child, addr }
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP/1.1 request; the response's status and body.
async fn http(addr: SocketAddr, method: &str, target: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// The value of a metric on `/metrics`.
async fn metric(addr: SocketAddr, name: &str) -> u64 {
    let (_, body) = http(addr, "GET", "/metrics", "").await;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_a_killed_instance_resumes_on_the_other_and_misses_nothing() {
    let redis = RedisServer::start();
    let url = redis.url();
    let mut a = Server::start(&url, "a");
    let b = Server::start(&url, "b");
    let (addr_a, addr_b) = (a.addr, b.addr);
    tokio::time::timeout(STUCK, async move {
        // The client's transport: instance A until it is gone, then B (a
        // load balancer's view of it).
        let a_gone = Arc::new(AtomicBool::new(false));
        let gone = a_gone.clone();
        let connect = move || {
            let gone = gone.clone();
            async move {
                if !gone.load(Ordering::Acquire) {
                    match TcpStream::connect(addr_a).await {
                        Ok(s) => return Ok(s),
                        Err(_) => gone.store(true, Ordering::Release),
                    }
                }
                TcpStream::connect(addr_b).await
            }
        };
        let config = ClientConfig::new().max_retry(Duration::from_millis(20));
        let mut es = EventSource::new(connect, "x", "/events?channel=feed", config);
        // Its first connection is to A; events are published to B.
        let first = tokio::spawn(async move {
            let ev = es.next().await.unwrap();
            (es, ev)
        });
        while metric(addr_a, "rtwire_sse_connections").await != 1 {
            tokio::task::yield_now().await;
        }
        const N: usize = 300;
        let publisher = tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..N {
                let (status, id) =
                    http(addr_b, "POST", "/publish?channel=feed", &format!("e{i}")).await;
                assert_eq!(status, 200, "{id}");
                ids.push(Position::parse(id.trim()).unwrap());
            }
            ids
        });
        let (mut es, ev) = first.await.unwrap();
        let mut got = vec![(ev.last_event_id().to_owned(), ev.data().to_owned())];
        while got.len() < N {
            if got.len() == N / 3 {
                a.kill();
                a_gone.store(true, Ordering::Release);
            }
            let ev = es.next().await.unwrap();
            got.push((ev.last_event_id().to_owned(), ev.data().to_owned()));
        }
        let ids = publisher.await.unwrap();
        let want: Vec<(String, String)> = ids
            .iter()
            .enumerate()
            .map(|(i, p)| (p.to_string(), format!("e{i}")))
            .collect();
        assert_eq!(got, want, "every event once, in order, across the kill");
        assert_eq!(es.connects(), 2, "one reconnect, to B");
        assert_eq!(
            metric(addr_b, "rtwire_sse_replays_caught_up_total").await,
            1
        );
        drop(b);
    })
    .await
    .expect("stuck");
}
