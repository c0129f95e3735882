//! tokio-websockets echo server, as in the crate's own `echo_server`
//! example: `ServerBuilder::accept`, then `next()` / `send()` for each data
//! message, the task `unconstrained`, unlimited frame size and limits.
//! Single-threaded runtime (`--threads N`: N workers), `TCP_NODELAY`.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_websockets::{Config, Limits, ServerBuilder};

fn main() -> std::io::Result<()> {
    let addr = rtwire_peers::addr_arg();
    rtwire_peers::runtime().block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("tokiows_echo listening on ws://{addr}");
        loop {
            let (tcp, _) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            tokio::spawn(tokio::task::unconstrained(async move {
                let Ok((_req, mut ws)) = ServerBuilder::new()
                    .config(Config::default().frame_size(usize::MAX))
                    .limits(Limits::unlimited())
                    .accept(tcp)
                    .await
                else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            }));
        }
    })
}
