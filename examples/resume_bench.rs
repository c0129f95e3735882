//! Resume latency of the hub's rooms with history: how long a client that
//! reconnects takes to have every message it missed.
//!
//! ```text
//! cargo run --release --example resume_bench --features serde[,redis] -- \
//!     [--missed 100,10000] [--rounds 200] [--redis redis://127.0.0.1:6379/]
//! ```
//!
//! One process: a hub (in memory, or on Redis with `--redis`) serving the
//! envelope protocol on loopback, and a tokio-tungstenite client. The room
//! holds the history; for each round the client opens a new connection,
//! joins with `since` set `MISSED` messages before the room's top, and the
//! clock runs from before the TCP connect to the arrival of the last
//! missed message (connect, handshake, join, the replay through the
//! client's parser). Prints p50, p99 and max per `MISSED`, in ms. Both
//! sides share the runtime's two workers: a figure for this machine, not a
//! ratio.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rtwire::hub::{envelope, HistoryConfig, Hub, HubConfig};
use rtwire::pubsub::Position;
use rtwire::ws::{read_request_head, Config, Conn, HeadAndRest, Message};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as TMsg;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let missed: Vec<u64> = arg("--missed")
        .unwrap_or_else(|| "100,10000".into())
        .split(',')
        .map(|n| n.parse().expect("--missed N[,N...]"))
        .collect();
    let rounds: usize = arg("--rounds").map_or(200, |r| r.parse().expect("--rounds N"));
    let most = *missed.iter().max().unwrap();
    let history = HistoryConfig::default()
        .size(most as usize + 10)
        .max_bytes(1 << 30)
        .replay_limit(most as usize + 10);
    let config = envelope::configure(
        HubConfig::default()
            .max_queue_bytes(1 << 20)
            .history(history),
    );
    let hub = match arg("--redis") {
        None => Hub::new(config),
        #[cfg(feature = "redis")]
        Some(url) => Hub::with_redis(
            config,
            "bench",
            rtwire::pubsub::redis::RedisConfig::default()
                .url(url)
                .prefix(format!("bench{}", std::process::id())),
            Default::default(),
        )
        .await
        .expect("redis"),
        #[cfg(not(feature = "redis"))]
        Some(_) => panic!("--redis needs the redis feature"),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let h = hub.clone();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let _ = tcp.set_nodelay(true);
            let hub = h.clone();
            tokio::spawn(async move {
                let config = Config::default();
                let Ok(HeadAndRest { head, rest }) = read_request_head(&mut tcp, &config).await
                else {
                    return;
                };
                let Ok((conn, _)) = Conn::accept_head(tcp, head, rest, &config).await else {
                    return;
                };
                let _ = envelope::serve(&hub, conn, "bob", Default::default()).await;
            });
        }
    });
    // The room's history: `most` chat messages of about 100 bytes.
    let mut top = Position::new(0, 0);
    for i in 0..most {
        let m = json!({"type":"message","room":"r","from":"alice","content":format!("message number {i} of the history")});
        top = hub
            .publish("r", &Message::text(m.to_string()), None)
            .await
            .unwrap();
    }
    let backend = if arg("--redis").is_some() {
        "redis"
    } else {
        "memory"
    };
    for &n in &missed {
        let since = Position::new(top.epoch, top.offset - n);
        let rounds = if n >= 10_000 {
            rounds.div_ceil(10)
        } else {
            rounds
        };
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t0 = Instant::now();
            let url = format!("ws://{addr}/chat");
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            let join = json!({"type":"join","room":"r","since":since.to_string()});
            ws.send(TMsg::text(join.to_string())).await.unwrap();
            let mut got = 0;
            loop {
                let TMsg::Text(t) = ws.next().await.unwrap().unwrap() else {
                    continue;
                };
                let v: Value = serde_json::from_str(&t).unwrap();
                assert_ne!(v["type"], "reset", "the history could not serve it: {v}");
                if v["type"] == "message" {
                    got += 1;
                    if v["id"] == top.to_string() {
                        break;
                    }
                }
            }
            times.push(t0.elapsed());
            assert_eq!(got, n, "every missed message, once");
            let _ = ws.close(None).await;
        }
        times.sort();
        println!(
            "RESULT backend={backend} missed={n} rounds={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
            times.len(),
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times.last().unwrap().as_secs_f64() * 1e3,
        );
    }
}
