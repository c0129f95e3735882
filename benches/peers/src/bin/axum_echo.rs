//! One axum `Router`, two WebSocket extractors: rtwire's
//! (`rtwire::axum::WebSocketUpgrade`, feature `axum`) or axum's own
//! (`axum::extract::ws::WebSocketUpgrade`, tungstenite inside), so that
//! the comparison sees the same HTTP server, router and runtime and
//! differs only in the WebSocket layer.
//!
//! ```text
//! cargo run --release --bin axum_echo -- rtwire|axum 127.0.0.1:9001
//! ```
//!
//! Both echo every data message with the same type on `/ws` (and on `/`,
//! the path `examples/load.rs` requests), set `TCP_NODELAY`, and run on a
//! current-thread runtime, as `examples/echo_server.rs` does: one core
//! serves. The rtwire side feeds each reply (they go out in one write when
//! the connection next waits for input); the axum side does what its
//! documentation shows, `socket.send(msg).await` per message, which
//! flushes each one.

use axum::extract::ws::{Message as AxumMessage, WebSocketUpgrade as AxumUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use rtwire::axum::WebSocketUpgrade;

async fn echo_rtwire(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut conn| async move {
        while let Ok(Some(msg)) = conn.read_message().await {
            if conn.feed_message(msg).await.is_err() {
                break;
            }
        }
    })
}

async fn echo_axum(upgrade: AxumUpgrade) -> Response {
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(Ok(msg)) = socket.recv().await {
            match msg {
                // tungstenite answers pings itself; a close ends the loop
                // (its reply is tungstenite's too).
                AxumMessage::Text(_) | AxumMessage::Binary(_) => {
                    if socket.send(msg).await.is_err() {
                        break;
                    }
                }
                AxumMessage::Ping(_) | AxumMessage::Pong(_) => {}
                AxumMessage::Close(_) => break,
            }
        }
    })
}

fn usage() -> ! {
    eprintln!("usage: axum_echo rtwire|axum ADDR");
    std::process::exit(2);
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let side = args.next().unwrap_or_else(|| usage());
    let addr = args.next().unwrap_or_else(|| usage());
    let app = match side.as_str() {
        // Same handler on both paths: load.rs upgrades on `/`.
        "rtwire" => Router::new()
            .route("/ws", get(echo_rtwire))
            .route("/", get(echo_rtwire)),
        "axum" => Router::new()
            .route("/ws", get(echo_axum))
            .route("/", get(echo_axum)),
        _ => usage(),
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(&addr).await?;
            eprintln!(
                "axum_echo ({side}) listening on ws://{}/ws",
                listener.local_addr()?
            );
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app).await
        })
}
