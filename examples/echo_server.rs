//! WebSocket echo server: the Autobahn and benchmark target.
//!
//! ```text
//! cargo run --release --example echo_server -- 127.0.0.1:9001 [--threads N]
//! ```
//!
//! Accepts upgrades on any path, echoes every message with the same type,
//! sets `TCP_NODELAY`, and runs on a single-threaded runtime unless
//! `--threads N` asks for more. Replies are fed, not flushed: they go out
//! in one write when the connection next waits for input.

use rtwire::ws::{Config, Conn};

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:9001".to_string();
    let mut threads = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => threads = args.next().and_then(|t| t.parse().ok()).unwrap_or(1),
            _ => addr = a,
        }
    }
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    rt.block_on(serve(addr))
}

async fn serve(addr: String) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("echo_server listening on ws://{}", listener.local_addr()?);
    // Large enough for Autobahn 9.* (16 MiB messages) and the /echo contract.
    let config = std::sync::Arc::new(
        Config::builder()
            .max_frame_size(64 << 20)
            .max_message_size(64 << 20)
            .build(),
    );
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let config = config.clone();
        tokio::spawn(async move {
            // Boxed: the handshake state (about 1.4 KB) lives on the heap
            // only while the handshake runs, so the task that stays alive
            // for an idle connection holds just the connection and its read
            // future (about 1 KB).
            let Ok((mut conn, _)) = Box::pin(Conn::accept(tcp, &config)).await else {
                return;
            };
            while let Ok(Some(msg)) = conn.read_message().await {
                if conn.feed_message(msg).await.is_err() {
                    break;
                }
            }
        });
    }
}
