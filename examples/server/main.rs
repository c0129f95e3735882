//! The rtwire demo server: one listener, plain HTTP routing on the request
//! head, then WebSocket or SSE.
//!
//! ```text
//! cargo run --release --example server -- 127.0.0.1:8080
//! cargo run --release --features redis --example server -- 127.0.0.1:8081 \
//!     --redis redis://127.0.0.1:6379 --instance-id b
//! ```
//!
//! - `/`: an HTML page that uses the endpoints below;
//! - `/echo`: WebSocket echo (selects the `chat` subprotocol when offered);
//! - `/sse`: a fixed table of five events, resumable with `Last-Event-ID`;
//! - `/clock`: one event a second from a replay store;
//! - `/events?channel=C[&tenant=…&subject=…]`: the SSE manager's stream,
//!   and `POST /publish?channel=C[&type=T…]` to publish to it;
//! - `/chat?user=NAME`: the hub's chat (the seeds' JSON envelope protocol,
//!   rooms, presence; build with `--features serde`), page at `/chat.html`;
//! - `/metrics`: the SSE manager's and the hub's counters in the
//!   Prometheus text format.
//!
//! Options: `--redis URL` puts the SSE manager and the chat on Redis (build
//! with `--features redis`), so two servers on one Redis serve one stream
//! and one chat; `--instance-id NAME` names this node; `--chat-token T`
//! makes `/chat` require `token=T` (401 otherwise); `--drain-ms N` (default
//! 2000): on SIGTERM the server stops accepting and closes every chat
//! connection with 1012 at a random moment within N ms (their pages
//! resume on another server, or on this one restarted), closes the SSE
//! streams (their browsers resume with `Last-Event-ID`), and exits.
//!
//! Built with `--features deflate`, `/echo` and `/chat` accept
//! permessage-deflate (browsers offer it).

mod chat_routes;
mod events;
mod sse_routes;

use std::sync::Arc;
use std::time::Duration;

use rtwire::ws::{read_request_head, Config, Conn, HeadAndRest};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const PAGE: &str = include_str!("index.html");

/// The command line.
#[derive(Default)]
struct Args {
    addr: Option<String>,
    redis: Option<String>,
    instance_id: Option<String>,
    chat_token: Option<String>,
    drain_ms: Option<u64>,
}

fn parse_args() -> std::io::Result<Args> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    let usage = |what: &str| {
        std::io::Error::other(format!(
            "{what}; usage: server [ADDR] [--redis URL] [--instance-id NAME] [--chat-token T] [--drain-ms N]"
        ))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--redis" => args.redis = Some(it.next().ok_or_else(|| usage("--redis needs a URL"))?),
            "--instance-id" => {
                args.instance_id = Some(
                    it.next()
                        .ok_or_else(|| usage("--instance-id needs a name"))?,
                )
            }
            "--chat-token" => {
                args.chat_token = Some(
                    it.next()
                        .ok_or_else(|| usage("--chat-token needs a value"))?,
                )
            }
            "--drain-ms" => {
                args.drain_ms = Some(
                    it.next()
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| usage("--drain-ms needs milliseconds"))?,
                )
            }
            _ if a.starts_with("--") => return Err(usage(&format!("unknown option {a}"))),
            _ if args.addr.is_none() => args.addr = Some(a),
            _ => return Err(usage(&format!("unexpected argument {a}"))),
        }
    }
    Ok(args)
}

fn main() -> std::io::Result<()> {
    let args = parse_args()?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(args))
}

async fn serve(args: Args) -> std::io::Result<()> {
    let addr = args.addr.as_deref().unwrap_or("127.0.0.1:8080");
    let events =
        Arc::new(events::Events::start(args.redis.as_deref(), args.instance_id.as_deref()).await?);
    let instance = args
        .instance_id
        .clone()
        .unwrap_or_else(|| format!("demo-{}", std::process::id()));
    let chat = Arc::new(
        chat_routes::Chat::new(args.redis.as_deref(), &instance, args.chat_token.clone()).await,
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    eprintln!("rtwire demo: open http://{local}/  (ws://{local}/echo, http://{local}/sse, http://{local}/clock, http://{local}/events?channel=demo)");
    let builder = Config::builder()
        .max_frame_size(64 << 20)
        .max_message_size(64 << 20)
        .subprotocols(["chat"]);
    // Browsers offer permessage-deflate: accept it (no context takeover, so
    // an idle connection holds no compression state).
    #[cfg(feature = "deflate")]
    let builder = builder.deflate(rtwire::ws::DeflateConfig::default());
    let config = Arc::new(builder.build());
    let clock = sse_routes::Clock::start();
    let drain = Duration::from_millis(args.drain_ms.unwrap_or(2000));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = term.recv() => {
                drop(listener);
                eprintln!("rtwire demo: SIGTERM, draining within {drain:?}");
                let d = chat.drain(drain).await;
                events.close().await;
                eprintln!("rtwire demo: drained {} chat connections ({} left)", d.closed, d.left);
                return Ok(());
            }
        };
        let _ = tcp.set_nodelay(true);
        let (config, clock, events, chat) =
            (config.clone(), clock.clone(), events.clone(), chat.clone());
        tokio::spawn(async move {
            if let Err(e) = route(tcp, &config, clock, &events, &chat).await {
                eprintln!("connection ended: {e}");
            }
        });
    }
}

async fn route(
    mut tcp: TcpStream,
    config: &Config,
    clock: Arc<sse_routes::Clock>,
    events: &events::Events,
    chat: &chat_routes::Chat,
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
        "/events" => events.stream(tcp, &head).await,
        "/publish" => events.publish(tcp, &head, rest).await,
        "/chat" => {
            chat.serve(tcp, head, rest).await;
            Ok(())
        }
        "/chat.html" => Ok(chat.serve_page(tcp).await?),
        "/metrics" => {
            let mut body = String::new();
            events.write_metrics(&mut body);
            chat.write_metrics(&mut body);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
                body.len()
            );
            tcp.write_all(head.as_bytes()).await?;
            tcp.write_all(body.as_bytes()).await?;
            tcp.shutdown().await?;
            Ok(())
        }
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
