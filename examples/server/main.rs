//! The rtwire demo server: one listener, plain HTTP routing on the request
//! head, then WebSocket or SSE.
//!
//! ```text
//! cargo run --release --example server -- 127.0.0.1:8080
//! ```
//!
//! - `/`: an HTML page that uses the endpoints below;
//! - `/echo`: WebSocket echo (selects the `chat` subprotocol when offered);
//! - `/sse`: a fixed table of five events, resumable with `Last-Event-ID`;
//! - `/clock`: one event a second from a replay store.

mod sse_routes;

use std::sync::Arc;
use std::time::Duration;

use rtwire::ws::{read_request_head, Config, Conn, HeadAndRest};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const PAGE: &str = include_str!("index.html");

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(addr))
}

async fn serve(addr: String) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    eprintln!("rtwire demo: open http://{local}/  (ws://{local}/echo, http://{local}/sse, http://{local}/clock)");
    let config = Arc::new(
        Config::builder()
            .max_frame_size(64 << 20)
            .max_message_size(64 << 20)
            .subprotocols(["chat"])
            .build(),
    );
    let clock = sse_routes::Clock::start();
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let (config, clock) = (config.clone(), clock.clone());
        tokio::spawn(async move {
            if let Err(e) = route(tcp, &config, clock).await {
                eprintln!("connection ended: {e}");
            }
        });
    }
}

async fn route(
    mut tcp: TcpStream,
    config: &Config,
    clock: Arc<sse_routes::Clock>,
) -> Result<(), rtwire::Error> {
    let head = tokio::time::timeout(Duration::from_secs(10), read_request_head(&mut tcp, config))
        .await
        .map_err(|_| rtwire::Error::Handshake(rtwire::HandshakeError::Timeout))??;
    let HeadAndRest { head, rest } = head;
    match head.path() {
        "/echo" => {
            let (mut conn, _) = Conn::accept_head(tcp, head, rest, config).await?;
            while let Some(msg) = conn.read_message().await? {
                conn.feed_message(msg).await?;
            }
            Ok(())
        }
        "/sse" => Ok(sse_routes::serve_sse(tcp, head).await?),
        "/clock" => Ok(sse_routes::serve_clock(tcp, head, clock).await?),
        "/" | "/index.html" => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
                PAGE.len()
            );
            tcp.write_all(head.as_bytes()).await?;
            tcp.write_all(PAGE.as_bytes()).await?;
            tcp.shutdown().await?;
            Ok(())
        }
        _ => {
            let body = "not found\n";
            let resp = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            tcp.write_all(resp.as_bytes()).await?;
            tcp.shutdown().await?;
            Ok(())
        }
    }
}
