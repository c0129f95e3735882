//! Load test of rtwire's Redis pub/sub backend against the naive baseline,
//! side by side, in one process on one `redis-server`.
//!
//! ```text
//! cargo run --release --features redis --example pubsub_load -- [URL] [--n N]
//! bash benches/pubsub-redis.sh     # starts a throwaway redis-server, runs this
//! ```
//!
//! `URL` defaults to `redis://127.0.0.1:6379/`; **every key this touches is
//! under the prefix `rtwire-load`**, and it should be a server of its own
//! (the script starts one). `N` (default 30,000) is the publications per cell.
//!
//! ## What is measured
//!
//! Two "instances" of a service: A publishes, B has `S` local subscribers of
//! the channel. Per cell (payload 100 B and 1 KiB, `S` = 1 and 100, `W` = 1
//! and 16 publishers in flight), each side publishes `N` messages to a fresh
//! channel:
//!
//! - **rtwire**: A and B are two [`connect`] calls (each a command
//!   connection and a pub/sub connection; the `W` publishers share A's
//!   command connection). A does
//!   [`Store::append`] + [`Bus::publish`] per message (the append runs
//!   one Lua script: `HINCRBY` the offset, `XADD` to the history, `PEXPIRE`,
//!   `PUBLISH`); B's bus delivers to `S` [`Subscription`]s.
//! - **naive**: the simplest thing a user would write with the `redis`
//!   crate. A does `PUBLISH channel payload` on one multiplexed connection
//!   shared by the `W` publishers (no history, no positions, no gap
//!   detection); B has one pub/sub connection whose messages one task
//!   re-broadcasts into a `tokio::sync::broadcast::channel::<Bytes>` with
//!   `S` receivers (the same buffer as rtwire's per-subscriber buffer, 1024).
//!
//! Each payload starts with its sequence number and the nanoseconds since a
//! shared [`Instant`] taken just before the publish call (both instances are
//! in this process, so one monotonic clock serves both); every subscriber
//! computes publish → delivered latency for every message it gets.
//!
//! Reported per cell: `pub_per_s`, publications acknowledged per second
//! (the first publish call to the last reply); `e2e_per_s`, publications
//! per second until the last subscriber got the last one; latency p50, p99
//! and max over every (message, subscriber) pair; `lost`, deliveries a
//! subscriber did not get (lagged, or missing at the deadline), which
//! should be 0. With `W` = 16 each side runs flat out, so its latency is
//! the latency at *its own* saturation rate, not at an equal offered load
//! (the naive side, publishing about twice as fast, queues more on its
//! single subscription). The two sides are run cell by cell, interleaved, so that
//! background load falls on both alike. Output: a table, then one
//! `RESULT` line per cell and one `RATIO` line (rtwire / naive) per pair.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use redis::AsyncCommands;
use rtwire::pubsub::redis::{connect, RedisBus, RedisConfig, RedisStore};
use rtwire::pubsub::{Bus, ChannelName, Delivery, PublishRequest, Store, Subscription};
use tokio::sync::broadcast;
use tokio::task::JoinSet;

/// The key and channel prefix of every run.
const PREFIX: &str = "rtwire-load";
/// Deliveries buffered per subscriber, on both sides (rtwire's default).
const BUFFER: usize = 1024;
/// How long a cell may take from the first publish to the last delivery.
const DEADLINE: Duration = Duration::from_secs(20);
/// Publications sent before the measured cells, per side.
const WARMUP: u64 = 2_000;

const PAYLOADS: [usize; 2] = [100, 1024];
const SUBSCRIBERS: [usize; 2] = [1, 100];
const WRITERS: [usize; 2] = [1, 16];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Rtwire,
    Naive,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Rtwire => "rtwire",
            Side::Naive => "naive",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Cell {
    payload: usize,
    subs: usize,
    writers: usize,
    n: u64,
}

/// One subscriber's view of a cell.
#[derive(Default)]
struct Received {
    /// Publish → delivered, ns, one per delivered message.
    latencies: Vec<u64>,
    /// Deliveries it missed (lagged).
    lagged: u64,
    /// When it got its last message.
    last: Option<Instant>,
}

struct Outcome {
    pub_per_s: f64,
    e2e_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    lost: u64,
}

/// A payload of `len` bytes (at least 16): `seq`, then the nanoseconds
/// since `base`, both little-endian, then filler.
fn payload(len: usize, seq: u64, base: Instant) -> Vec<u8> {
    let mut v = Vec::with_capacity(len.max(16));
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend_from_slice(&(base.elapsed().as_nanos() as u64).to_le_bytes());
    v.resize(len.max(16), b'x');
    v
}

/// The latency of a payload made by [`payload`], measured now.
fn latency(data: &[u8], base: Instant) -> Option<u64> {
    let sent = u64::from_le_bytes(data.get(8..16)?.try_into().ok()?);
    Some((base.elapsed().as_nanos() as u64).saturating_sub(sent))
}

/// A subscriber of either side.
enum Source {
    Rtwire(Subscription),
    Naive(broadcast::Receiver<Bytes>),
}

impl Source {
    /// The next message's data, or how many were missed; `None` when
    /// closed.
    async fn next(&mut self) -> Option<Result<Bytes, u64>> {
        match self {
            Source::Rtwire(sub) => loop {
                match sub.recv().await? {
                    Delivery::Publication(p) => return Some(Ok(p.data.clone())),
                    Delivery::Lagged { missed } => return Some(Err(missed)),
                    // Not expected here; the missing messages count as lost.
                    _ => continue,
                }
            },
            Source::Naive(rx) => match rx.recv().await {
                Ok(b) => Some(Ok(b)),
                Err(broadcast::error::RecvError::Lagged(n)) => Some(Err(n)),
                Err(broadcast::error::RecvError::Closed) => None,
            },
        }
    }

    /// Counts deliveries until `n` messages are accounted for or the
    /// deadline passes.
    async fn drain(mut self, n: u64, base: Instant, deadline: Instant) -> Received {
        let mut r = Received {
            latencies: Vec::with_capacity(n as usize),
            ..Received::default()
        };
        while (r.latencies.len() as u64) + r.lagged < n {
            let got = match tokio::time::timeout_at(deadline.into(), self.next()).await {
                Ok(Some(g)) => g,
                // Closed, or the deadline: what is missing is lost.
                Ok(None) | Err(_) => break,
            };
            match got {
                Ok(data) => {
                    if let Some(l) = latency(&data, base) {
                        r.latencies.push(l);
                        r.last = Some(Instant::now());
                    }
                }
                Err(missed) => r.lagged += missed,
            }
        }
        r
    }
}

/// The two instances of each side, connected once for the whole run.
struct World {
    base: Instant,
    client: redis::Client,
    a_store: RedisStore,
    a_bus: RedisBus,
    b_bus: RedisBus,
    // Kept so that B is a whole instance (its store is unused here).
    _b_store: RedisStore,
    naive_pub: redis::aio::MultiplexedConnection,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl World {
    async fn new(url: &str) -> Result<Self, BoxError> {
        let cfg = RedisConfig::default()
            .url(url)
            .prefix(PREFIX)
            .subscriber_buffer(BUFFER);
        let (a_store, a_bus) = connect(cfg.clone()).await?;
        let (b_store, b_bus) = connect(cfg).await?;
        let client = redis::Client::open(url)?;
        let naive_pub = client.get_multiplexed_async_connection().await?;
        Ok(World {
            base: Instant::now(),
            client,
            a_store,
            a_bus,
            b_bus,
            _b_store: b_store,
            naive_pub,
        })
    }

    async fn run(&self, side: Side, cell: Cell, channel: &str) -> Result<Outcome, BoxError> {
        let base = self.base;
        let n = cell.n;
        let mut subs: JoinSet<Received> = JoinSet::new();
        // Set after subscribing, so that the deadline covers the cell only.
        let deadline;
        let mut forwarder = None;
        match side {
            Side::Rtwire => {
                let ch = ChannelName::new(channel)?;
                let mut list = Vec::with_capacity(cell.subs);
                for _ in 0..cell.subs {
                    list.push(self.b_bus.subscribe(&ch).await?);
                }
                deadline = Instant::now() + DEADLINE;
                for sub in list {
                    subs.spawn(Source::Rtwire(sub).drain(n, base, deadline));
                }
            }
            Side::Naive => {
                let mut ps = self.client.get_async_pubsub().await?;
                ps.subscribe(format!("{PREFIX}:{channel}")).await?;
                let (tx, _) = broadcast::channel::<Bytes>(BUFFER);
                let list: Vec<_> = (0..cell.subs).map(|_| tx.subscribe()).collect();
                forwarder = Some(tokio::spawn(async move {
                    let mut stream = ps.into_on_message();
                    while let Some(msg) = stream.next().await {
                        let _ = tx.send(Bytes::copy_from_slice(msg.get_payload_bytes()));
                    }
                }));
                deadline = Instant::now() + DEADLINE;
                for rx in list {
                    subs.spawn(Source::Naive(rx).drain(n, base, deadline));
                }
            }
        }

        let next = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut writers: JoinSet<Result<(), BoxError>> = JoinSet::new();
        for _ in 0..cell.writers {
            let next = next.clone();
            let len = cell.payload;
            match side {
                Side::Rtwire => {
                    let store = self.a_store.clone();
                    let bus = self.a_bus.clone();
                    let ch = ChannelName::new(channel)?;
                    writers.spawn(async move {
                        loop {
                            let seq = next.fetch_add(1, Ordering::Relaxed);
                            if seq >= n {
                                return Ok(());
                            }
                            let req = PublishRequest::new(ch.clone(), payload(len, seq, base));
                            let p = store.append(req).await?;
                            bus.publish(&p).await?;
                        }
                    });
                }
                Side::Naive => {
                    let mut conn = self.naive_pub.clone();
                    let ch = format!("{PREFIX}:{channel}");
                    writers.spawn(async move {
                        loop {
                            let seq = next.fetch_add(1, Ordering::Relaxed);
                            if seq >= n {
                                return Ok(());
                            }
                            let _: i64 = conn.publish(&ch, payload(len, seq, base)).await?;
                        }
                    });
                }
            }
        }
        while let Some(r) = writers.join_next().await {
            r??;
        }
        let published = start.elapsed();

        let mut latencies = Vec::with_capacity(n as usize * cell.subs);
        let mut lost = 0;
        let mut last = start;
        while let Some(r) = subs.join_next().await {
            let r = r?;
            lost += n - r.latencies.len() as u64;
            last = last.max(r.last.unwrap_or(start));
            latencies.extend(r.latencies);
        }
        if let Some(f) = forwarder {
            f.abort();
        }
        latencies.sort_unstable();
        let pct = |q: f64| -> f64 {
            if latencies.is_empty() {
                return f64::NAN;
            }
            let i = ((latencies.len() - 1) as f64 * q).round() as usize;
            latencies[i] as f64 / 1_000.0
        };
        Ok(Outcome {
            pub_per_s: n as f64 / published.as_secs_f64(),
            e2e_per_s: n as f64 / (last - start).as_secs_f64(),
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            max_us: pct(1.0),
            lost,
        })
    }
}

fn usage() -> ! {
    eprintln!("usage: pubsub_load [URL] [--n N]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut url = "redis://127.0.0.1:6379/".to_string();
    let mut n: u64 = 30_000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--n" => match args.next().and_then(|v| v.parse().ok()) {
                Some(v) if v > 0 => n = v,
                _ => usage(),
            },
            s if s.starts_with("redis://") => url = s.to_string(),
            _ => usage(),
        }
    }

    let world = World::new(&url).await?;
    let run_started = Instant::now();
    println!(
        "pubsub_load: n={n} per cell, buffer={BUFFER}, url={url}, tokio workers={}",
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );

    // Warm-up: connections, the script cache, allocators.
    for side in [Side::Rtwire, Side::Naive] {
        let cell = Cell {
            payload: 100,
            subs: 1,
            writers: 16,
            n: WARMUP,
        };
        world
            .run(side, cell, &format!("warmup-{}", side.name()))
            .await?;
    }

    let mut rows = Vec::new();
    for &payload in &PAYLOADS {
        for &subs in &SUBSCRIBERS {
            for &writers in &WRITERS {
                let cell = Cell {
                    payload,
                    subs,
                    writers,
                    n,
                };
                let mut pair = Vec::new();
                for side in [Side::Rtwire, Side::Naive] {
                    let channel = format!("{}-p{payload}-s{subs}-w{writers}", side.name());
                    let o = world.run(side, cell, &channel).await?;
                    pair.push((side, o));
                }
                rows.push((cell, pair));
            }
        }
    }
    let elapsed = run_started.elapsed();

    println!();
    println!(
        "{:<7} {:>7} {:>4} {:>3} | {:>10} {:>10} | {:>9} {:>9} {:>9} | {:>5}",
        "side", "payload", "S", "W", "pub/s", "e2e/s", "p50 us", "p99 us", "max us", "lost"
    );
    println!("{}", "-".repeat(92));
    for (cell, pair) in &rows {
        for (side, o) in pair {
            println!(
                "{:<7} {:>7} {:>4} {:>3} | {:>10.0} {:>10.0} | {:>9.1} {:>9.1} {:>9.1} | {:>5}",
                side.name(),
                cell.payload,
                cell.subs,
                cell.writers,
                o.pub_per_s,
                o.e2e_per_s,
                o.p50_us,
                o.p99_us,
                o.max_us,
                o.lost
            );
        }
        let (r, b) = (&pair[0].1, &pair[1].1);
        println!(
            "{:<7} {:>7} {:>4} {:>3} | {:>9.2}x {:>9.2}x | {:>8.2}x {:>8.2}x {:>8.2}x |",
            "ratio",
            "",
            "",
            "",
            r.pub_per_s / b.pub_per_s,
            r.e2e_per_s / b.e2e_per_s,
            r.p50_us / b.p50_us,
            r.p99_us / b.p99_us,
            r.max_us / b.max_us
        );
    }
    println!();
    for (cell, pair) in &rows {
        for (side, o) in pair {
            println!(
                "RESULT side={} payload={} subs={} writers={} n={} pub_per_s={:.0} e2e_per_s={:.0} \
                 p50_us={:.1} p99_us={:.1} max_us={:.1} lost={}",
                side.name(),
                cell.payload,
                cell.subs,
                cell.writers,
                cell.n,
                o.pub_per_s,
                o.e2e_per_s,
                o.p50_us,
                o.p99_us,
                o.max_us,
                o.lost
            );
        }
    }
    for (cell, pair) in &rows {
        let (r, b) = (&pair[0].1, &pair[1].1);
        println!(
            "RATIO rtwire/naive payload={} subs={} writers={} pub_per_s={:.2} e2e_per_s={:.2} \
             p50={:.2} p99={:.2}",
            cell.payload,
            cell.subs,
            cell.writers,
            r.pub_per_s / b.pub_per_s,
            r.e2e_per_s / b.e2e_per_s,
            r.p50_us / b.p50_us,
            r.p99_us / b.p99_us
        );
    }
    println!("total {:.1} s", elapsed.as_secs_f64());

    world.a_store.close().await;
    world.a_bus.close().await;
    world.b_bus.close().await;
    Ok(())
}
