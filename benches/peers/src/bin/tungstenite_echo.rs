//! tokio-tungstenite echo server, as in the crate's own `echo-server`
//! example: `accept_async`, then `read.forward(write)` over the split halves
//! (`forward` feeds each message and flushes only when the stream has no
//! more ready, so replies to a batch of frames are coalesced).
//! Single-threaded runtime (`--threads N`: N workers), `TCP_NODELAY`.

use futures_util::{future, StreamExt, TryStreamExt};
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let addr = rtwire_peers::addr_arg();
    rtwire_peers::runtime().block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("tungstenite_echo listening on ws://{addr}");
        loop {
            let (tcp, _) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let (write, read) = ws.split();
                let _ = read
                    .try_filter(|m| future::ready(m.is_text() || m.is_binary()))
                    .forward(write)
                    .await;
            });
        }
    })
}
