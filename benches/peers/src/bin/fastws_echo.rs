//! fastwebsockets echo server, as in the crate's own `echo_server` example:
//! hyper's HTTP/1 server with upgrades, `upgrade::upgrade`, then a
//! `FragmentCollector` whose `read_frame` / `write_frame` echo each data
//! frame (each `write_frame` writes immediately). The connection task runs
//! `unconstrained` as in the example. Single-threaded runtime (`--threads N`: N workers),
//! `TCP_NODELAY`.

use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use tokio::net::TcpListener;

async fn handle_client(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(fut.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
    Ok(())
}

async fn server_upgrade(
    mut req: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, fut) = upgrade::upgrade(&mut req)?;
    tokio::spawn(async move {
        let _ = tokio::task::unconstrained(handle_client(fut)).await;
    });
    Ok(response)
}

fn main() -> std::io::Result<()> {
    let addr = rtwire_peers::addr_arg();
    rtwire_peers::runtime().block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("fastws_echo listening on ws://{addr}");
        loop {
            let (tcp, _) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(tcp);
                let _ = http1::Builder::new()
                    .serve_connection(io, service_fn(server_upgrade))
                    .with_upgrades()
                    .await;
            });
        }
    })
}
