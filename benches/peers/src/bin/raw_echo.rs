//! Raw TCP echo server: the floor for every WebSocket server here. It reads
//! into a 64 KiB buffer and writes back what it read, with no framing.
//! Single-threaded runtime (`--threads N`: N workers), `TCP_NODELAY`.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let addr = rtwire_peers::addr_arg();
    rtwire_peers::runtime().block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("raw_echo listening on tcp://{addr}");
        loop {
            let (mut tcp, _) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tcp.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    })
}
