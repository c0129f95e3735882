//! One chat server process on a shared Redis: the node the multi-process
//! hub test (`tests/hub_multiprocess.rs`) starts and kills.
//!
//! ```text
//! cargo run --example chat_node --features serde,redis -- \
//!     --addr 127.0.0.1:0 --redis redis://127.0.0.1:6379/ --id a \
//!     [--lease-ms 1000 --heartbeat-ms 200] [--rate 20] [--drain-ms 2000]
//! ```
//!
//! Prints `listening ADDR` once it accepts connections; serves
//! `/chat?user=NAME` (the envelope protocol), `/` (the page) and
//! `/metrics`. On SIGTERM it stops accepting, drains (every connection
//! closed with 1012 within `--drain-ms`, presence given up), prints
//! `drained N` and exits.
//!
//! (The hub's fan-out benchmark, once a `fanout` mode here, is
//! `benches/peers/src/bin/hub_fanout.rs`: its server and clients run in two
//! processes.)

#[path = "server/chat_routes.rs"]
mod chat_routes;

use std::io::Write;
use std::time::Duration;

use rtwire::ws::{read_request_head, Config, HeadAndRest};
use tokio::io::AsyncWriteExt;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn ms(name: &str) -> Option<Duration> {
    arg(name)
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = arg("--addr").unwrap_or_else(|| "127.0.0.1:8090".into());
    let redis = arg("--redis");
    let id = arg("--id").unwrap_or_else(|| "node".into());
    let mut opts = chat_routes::ChatOptions::new(&id);
    opts.redis_url = redis;
    opts.token = arg("--token");
    opts.lease = ms("--lease-ms").zip(ms("--heartbeat-ms"));
    if let Some(r) = arg("--rate").and_then(|r| r.parse().ok()) {
        opts.rate = r;
    }
    let drain = ms("--drain-ms").unwrap_or(Duration::from_secs(2));
    let chat = std::sync::Arc::new(chat_routes::Chat::with_options(opts).await);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (mut tcp, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = term.recv() => {
                drop(listener);
                let d = chat.drain(drain).await;
                println!("drained {} left {}", d.closed, d.left);
                std::io::stdout().flush()?;
                return Ok(());
            }
        };
        let _ = tcp.set_nodelay(true);
        let chat = chat.clone();
        tokio::spawn(async move {
            let Ok(HeadAndRest { head, rest }) =
                read_request_head(&mut tcp, &Config::default()).await
            else {
                return;
            };
            match head.path() {
                "/chat" => chat.serve(tcp, head, rest).await,
                "/metrics" => {
                    let mut body = String::new();
                    chat.write_metrics(&mut body);
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tcp.write_all(resp.as_bytes()).await;
                }
                _ => {
                    let _ = chat.serve_page(tcp).await;
                }
            }
        });
    }
}
