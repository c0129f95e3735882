//! permessage-deflate: an echo server with every deflate setting, a load
//! client that counts the bytes on its socket, and an idle-connection
//! memory probe. Driven by `benches/deflate.sh` and `tests/deflate_interop.rs`.
//!
//! ```text
//! # Echo server (single thread); prints "PORT <n>". MODE: off | none
//! # (no context takeover) | ctx:BITS (context takeover both ways at BITS):
//! cargo run --release --features deflate --example deflate_bench -- \
//!     server 127.0.0.1:0 --deflate ctx:12 [--max-message BYTES] [--threshold BYTES]
//! # N JSON-like text messages of S bytes, D in flight; the client offers
//! # MODE and compresses everything (threshold 0):
//! cargo run --release --features deflate --example deflate_bench -- \
//!     load ws://127.0.0.1:9001/ -n 20000 -s 1024 -d 16 --deflate ctx:15
//! # C idle connections; the server's RSS per connection after the
//! # handshake and after one 16 KiB message each way (PID = the server):
//! cargo run --release --features deflate --example deflate_bench -- \
//!     idle 127.0.0.1:9001 -c 2000 --pid PID --deflate ctx:9
//! ```
//!
//! `load` prints `RESULT msgs_per_s=.. up_ratio=.. down_ratio=.. ext=..`:
//! the ratios are the bytes the client's socket wrote (frame headers and
//! masks included) and read, over the payload bytes of the messages. The
//! messages are 64 different documents (distinct ids) sent in turn, so that
//! context takeover cannot just repeat the previous message.

#[path = "common/counting_io.rs"]
mod counting_io;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use counting_io::Counts;
use rtwire::ws::{Config, Conn, DeflateConfig, Message};
use tokio::net::TcpStream;

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or_default();
    let target = args.get(1).cloned().unwrap_or_default();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let num = |name: &str, d: usize| opt(name).and_then(|v| v.parse().ok()).unwrap_or(d);
    let deflate = opt("--deflate").unwrap_or_else(|| "none".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match mode.as_str() {
        "server" => rt.block_on(server(
            target,
            deflate_config(&deflate, num("--threshold", 0)),
            num("--max-message", 64 << 20),
        )),
        "load" => rt.block_on(load(
            target,
            deflate_config(&deflate, 0),
            num("-n", 10_000),
            num("-s", 1024),
            num("-d", 16),
        )),
        "idle" => rt.block_on(idle(
            target,
            deflate_config(&deflate, 0),
            num("-c", 2000),
            num("--pid", 0) as u32,
        )),
        _ => {
            eprintln!("usage: deflate_bench server|load|idle ... (see the module docs)");
            std::process::exit(2);
        }
    }
}

/// `off`, `none` (no context takeover) or `ctx:BITS`.
fn deflate_config(mode: &str, threshold: usize) -> Option<DeflateConfig> {
    match mode {
        "off" => None,
        "none" => Some(DeflateConfig::default().threshold(threshold)),
        m => {
            let bits = m
                .strip_prefix("ctx:")
                .and_then(|b| b.parse().ok())
                .unwrap_or_else(|| panic!("--deflate off|none|ctx:BITS, not {m}"));
            Some(DeflateConfig::context_takeover(bits).threshold(threshold))
        }
    }
}

fn config(deflate: Option<DeflateConfig>, max_message: usize) -> Config {
    let mut b = Config::builder()
        .max_frame_size(max_message.max(16 << 20))
        .max_message_size(max_message);
    if let Some(d) = deflate {
        b = b.deflate(d);
    }
    b.build()
}

async fn server(
    addr: String,
    deflate: Option<DeflateConfig>,
    max_message: usize,
) -> io::Result<()> {
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("PORT {}", listener.local_addr()?.port());
    let config = Arc::new(config(deflate, max_message));
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let config = config.clone();
        tokio::spawn(async move {
            let Ok((mut conn, _)) = Box::pin(Conn::accept(tcp, &config)).await else {
                return;
            };
            // Replies are fed, not flushed: they go out when the
            // connection next waits for input (as echo_server does).
            while let Ok(Some(msg)) = conn.read_message().await {
                if conn.feed_message(msg).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// JSON-like text of exactly `n` bytes whose records start at id `first`
/// (the generator of tests/node/ws_peer.js and tests/python/ws_peer.py).
pub fn json_like(n: usize, first: usize) -> String {
    let mut s = String::with_capacity(n + 200);
    let mut i = first;
    while s.len() < n {
        s.push_str(&format!(
            "{{\"id\":{i},\"user\":\"user-{i}\",\"email\":\"user-{i}@example.com\",\
             \"active\":{},\"score\":{},\"tags\":[\"alpha\",\"beta\"],\"note\":\"caf\u{e9} \u{2713}\"}},",
            i.is_multiple_of(3),
            (i * 37) % 1000
        ));
        i += 1;
    }
    let mut cut = n;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    while s.len() < n {
        s.push(' ');
    }
    s
}

fn host_port(url: &str) -> &str {
    let rest = url.strip_prefix("ws://").unwrap_or(url);
    rest.split('/').next().unwrap_or(rest)
}

async fn load(
    url: String,
    deflate: Option<DeflateConfig>,
    n: usize,
    size: usize,
    depth: usize,
) -> io::Result<()> {
    let tcp = TcpStream::connect(host_port(&url)).await?;
    tcp.set_nodelay(true)?;
    let counts = Counts::default();
    let stream = counts.wrap(tcp);
    let config = config(deflate, 64 << 20);
    let (conn, head) = Conn::connect(stream, &url, &config)
        .await
        .map_err(io::Error::other)?;
    let ext = head
        .header_str("sec-websocket-extensions")
        .unwrap_or("none")
        .to_string();
    let pool: Vec<Message> = (0..64)
        .map(|k| Message::text(json_like(size, k * 1000)))
        .collect();
    let (r0, w0) = (counts.read(), counts.written());
    let (mut rd, mut wr) = conn.split();
    let window = Arc::new(tokio::sync::Semaphore::new(depth.max(1)));
    let start = Instant::now();
    let send = async {
        for i in 0..n {
            window.acquire().await.expect("semaphore").forget();
            wr.feed_message(pool[i % pool.len()].clone()).await?;
            if window.available_permits() == 0 || i + 1 == n {
                wr.flush().await?;
            }
        }
        Ok::<_, rtwire::Error>(())
    };
    let recv = async {
        for i in 0..n {
            match rd.read_message().await? {
                Some(m) if m.payload().len() == size => {}
                other => panic!("echo {i}: {:?}", other.map(|m| m.payload().len())),
            }
            window.add_permits(1);
        }
        Ok::<_, rtwire::Error>(())
    };
    let (s, r) = tokio::join!(send, recv);
    s.map_err(io::Error::other)?;
    r.map_err(io::Error::other)?;
    let secs = start.elapsed().as_secs_f64();
    let payload = (n * size) as f64;
    let up = (counts.written() - w0) as f64 / payload;
    let down = (counts.read() - r0) as f64 / payload;
    println!(
        "RESULT msgs_per_s={:.0} up_ratio={up:.4} down_ratio={down:.4} secs={secs:.3} ext={ext}",
        n as f64 / secs
    );
    Ok(())
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

async fn idle(addr: String, deflate: Option<DeflateConfig>, c: usize, pid: u32) -> io::Result<()> {
    let url = format!("ws://{addr}/");
    let config = config(deflate, 64 << 20);
    let settle = || tokio::time::sleep(Duration::from_millis(500));
    settle().await;
    let base = rss_kib(pid);
    let mut conns = Vec::with_capacity(c);
    let mut ext = None;
    for _ in 0..c {
        let tcp = TcpStream::connect(&addr).await?;
        tcp.set_nodelay(true)?;
        let (conn, _) = Conn::connect(tcp, &url, &config)
            .await
            .map_err(io::Error::other)?;
        ext.get_or_insert_with(|| {
            conn.deflate()
                .map_or("off".into(), |p| p.response_header().replace(' ', ""))
        });
        conns.push(conn);
    }
    settle().await;
    let idle = rss_kib(pid);
    let msg = Message::text(json_like(16 << 10, 0));
    for conn in &mut conns {
        conn.send_message(msg.clone())
            .await
            .map_err(io::Error::other)?;
        let back = conn.read_message().await.map_err(io::Error::other)?;
        assert_eq!(back.map(|m| m.payload().len()), Some(16 << 10));
    }
    settle().await;
    let warm = rss_kib(pid);
    let per = |kib: u64| kib.saturating_sub(base) as f64 / c as f64;
    println!(
        "RESULT conns={c} base_kib={base} idle_kib={idle} warm_kib={warm} \
         idle_per_conn_kib={:.2} warm_per_conn_kib={:.2} params={}",
        per(idle),
        per(warm),
        ext.unwrap_or_default()
    );
    Ok(())
}
