//! WebSocket echo server: the Autobahn and benchmark target.
//!
//! ```text
//! cargo run --release --example echo_server -- 127.0.0.1:9001 [--threads N] [--keep-last] [--thread-timer]
//! cargo run --release --features deflate --example echo_server -- 127.0.0.1:9001 --deflate [context]
//! ```
//!
//! `--deflate` accepts permessage-deflate with the defaults (no context
//! takeover), compressing every message (threshold 0, as Autobahn's 12.*
//! and 13.* want something to check); `--deflate context` with context
//! takeover both ways at window bits 15.
//!
//! Accepts upgrades on any path, echoes every message with the same type,
//! sets `TCP_NODELAY`, and runs on a single-threaded runtime unless
//! `--threads N` asks for more. Replies are fed, not flushed: they go out
//! in one write when the connection next waits for input.
//!
//! The connections' timeouts (rtwire's defaults: handshake 10 s, write
//! 30 s, close 5 s) run on tokio's timer, as `Config::default()` has it
//! (runtime with `enable_all()`). `--thread-timer` runs them on rtwire's
//! timer thread (`Timer::Thread`) with a runtime built with `enable_io()`
//! alone, which skips tokio's time driver on every wake-up (about 12%
//! fewer instructions per echo, but, measured, a lower handshake rate:
//! BENCHMARKS.md). `--hub` always uses tokio's timer (the hub's own timers
//! are tokio's).
//!
//! `--keep-last` makes every connection keep (a clone of) the last message
//! it received until the next one arrives, as an application that stores
//! each client's latest state does: with `load idle --warm`, the server's
//! RSS per connection then includes whatever memory a retained message
//! holds on to (e.g. a shared read buffer it was split from).

use rtwire::ws::{Config, Conn, Message, Timer};

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:9001".to_string();
    let mut threads = 1usize;
    let mut keep_last = false;
    let mut hub = false;
    let mut deflate: Option<String> = None;
    let mut thread_timer = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => threads = args.next().and_then(|t| t.parse().ok()).unwrap_or(1),
            "--keep-last" => keep_last = true,
            "--thread-timer" => thread_timer = true,
            // Each connection registered in one hub and in its room
            // "bench" (no echo): memory per idle hub member.
            "--hub" => hub = true,
            "--deflate" => deflate = Some(String::new()),
            "context" if deflate.is_some() => deflate = Some(a),
            _ => addr = a,
        }
    }
    let tokio_timer = !thread_timer || hub;
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    if tokio_timer {
        builder.enable_all();
    } else {
        builder.enable_io();
    }
    let rt = builder.build()?;
    let timer = if tokio_timer {
        Timer::Tokio
    } else {
        Timer::Thread
    };
    rt.block_on(serve(addr, keep_last, hub, deflate, timer))
}

async fn serve(
    addr: String,
    keep_last: bool,
    hub: bool,
    deflate: Option<String>,
    timer: Timer,
) -> std::io::Result<()> {
    let hub = hub.then(|| rtwire::hub::Hub::new(rtwire::hub::HubConfig::default()));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("echo_server listening on ws://{}", listener.local_addr()?);
    // Large enough for Autobahn 9.* (16 MiB messages) and the /echo contract.
    #[allow(unused_mut)]
    let mut builder = Config::builder()
        .timer(timer)
        .max_frame_size(64 << 20)
        .max_message_size(64 << 20);
    if let Some(mode) = deflate {
        #[cfg(feature = "deflate")]
        {
            use rtwire::ws::DeflateConfig;
            let d = if mode == "context" {
                DeflateConfig::context_takeover(15)
            } else {
                DeflateConfig::default()
            };
            builder = builder.deflate(d.threshold(0));
        }
        #[cfg(not(feature = "deflate"))]
        {
            let _ = mode;
            eprintln!("--deflate needs the `deflate` feature");
            std::process::exit(2);
        }
    }
    let config = std::sync::Arc::new(builder.build());
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let config = config.clone();
        // One task body per mode, each its own future: a task is as large
        // as the largest state of its future, so the plain echo task must
        // not carry the hub member's or `--keep-last`'s states.
        match (&hub, keep_last) {
            (Some(hub), _) => tokio::spawn(hub_member(tcp, config, hub.clone())),
            (None, true) => tokio::spawn(echo_keep_last(tcp, config)),
            (None, false) => tokio::spawn(echo(tcp, config)),
        };
    }
}

/// The upgrade. Boxed: the handshake state (about 1.4 KB) lives on the
/// heap only while the handshake runs, so the task that stays alive for an
/// idle connection holds just the connection and its read future.
async fn accept(
    tcp: tokio::net::TcpStream,
    config: &Config,
) -> Option<Conn<tokio::net::TcpStream>> {
    Box::pin(Conn::accept(tcp, config))
        .await
        .ok()
        .map(|(conn, _)| conn)
}

/// Echoes every message.
async fn echo(tcp: tokio::net::TcpStream, config: std::sync::Arc<Config>) {
    let Some(mut conn) = accept(tcp, &config).await else {
        return;
    };
    while let Ok(Some(msg)) = conn.read_message().await {
        if conn.feed_message(msg).await.is_err() {
            break;
        }
    }
}

/// Echoes every message and keeps the last one until the next arrives.
async fn echo_keep_last(tcp: tokio::net::TcpStream, config: std::sync::Arc<Config>) {
    let Some(mut conn) = accept(tcp, &config).await else {
        return;
    };
    // The clone shares the payload: keeping it keeps alive exactly what
    // the received message references.
    let mut last: Option<Message> = None;
    while let Ok(Some(msg)) = conn.read_message().await {
        last.replace(msg.clone());
        if conn.feed_message(msg).await.is_err() {
            break;
        }
    }
}

/// Registers the connection in the hub and its room "bench"; reads (and
/// drops) whatever it sends.
async fn hub_member(
    tcp: tokio::net::TcpStream,
    config: std::sync::Arc<Config>,
    hub: rtwire::hub::Hub,
) {
    let Some(conn) = accept(tcp, &config).await else {
        return;
    };
    let (mut read, write) = conn.split();
    let reg = hub.register(write, "bench", Default::default());
    if hub.join(reg.id(), "bench").await.is_err() {
        return;
    }
    while let Ok(Some(_)) = read.read_message().await {}
}
