//! rtwire inside an axum app: `/ws` echoes with rtwire's
//! `WebSocketUpgrade` (the origin policy and the config come from the
//! shared state), `/sse` streams a counter with rtwire's `Sse`, and both
//! count their clients in the shared state (`/stats`).
//!
//! ```sh
//! cargo run --features axum --example axum -- 127.0.0.1:3000
//! ```
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rtwire::axum::{Sse, WebSocketUpgrade};
use rtwire::sse::Event;
use rtwire::upgrade::OriginPolicy;
use rtwire::ws::handshake::ServerConfig;
use rtwire::ws::Config;

#[derive(Clone)]
struct AppState {
    ws: Arc<Config>,
    ws_clients: Arc<AtomicU64>,
    sse_clients: Arc<AtomicU64>,
}

async fn ws(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .config(state.ws.clone())
        .on_upgrade(move |mut conn| async move {
            state.ws_clients.fetch_add(1, Ordering::Relaxed);
            // Replies are fed, and flushed together when the next read waits.
            while let Ok(Some(msg)) = conn.read_message().await {
                if conn.feed_message(msg).await.is_err() {
                    break;
                }
            }
        })
}

async fn sse(State(state): State<AppState>) -> impl IntoResponse {
    state.sse_clients.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for i in 0u64.. {
            tick.tick().await;
            let ev = Event::new(format!("count {i}"))
                .with_id(i.to_string())
                .and_then(|e| e.with_event("tick"))
                .expect("ids and event names without line breaks");
            if tx.send(ev).await.is_err() {
                break; // the client left
            }
        }
    });
    Sse::from_receiver(rx).heartbeat(Duration::from_secs(15))
}

async fn stats(State(state): State<AppState>) -> String {
    format!(
        "ws_clients {}\nsse_clients {}\n",
        state.ws_clients.load(Ordering::Relaxed),
        state.sse_clients.load(Ordering::Relaxed)
    )
}

/// The app, also run by `tests/ecosystem_axum.rs`.
pub fn app(origins: Vec<String>) -> Router {
    let server = ServerConfig::new().origin(OriginPolicy::AllowList(origins));
    let state = AppState {
        ws: Arc::new(Config::builder().server(server).build()),
        ws_clients: Arc::default(),
        sse_clients: Arc::default(),
    };
    Router::new()
        .route("/ws", get(ws))
        .route("/sse", get(sse))
        .route("/stats", get(stats))
        .with_state(state)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{addr} (/ws, /sse, /stats)");
    axum::serve(listener, app(vec!["http://localhost:3000".into()])).await
}
