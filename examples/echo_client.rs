//! Autobahn fuzzingserver client: runs every case against rtwire's client.
//!
//! ```text
//! cargo run --release --example echo_client -- ws://127.0.0.1:9010 AGENT_NAME [--deflate]
//! ```
//!
//! `--deflate` (feature `deflate`) offers permessage-deflate with context
//! takeover allowed both ways and compresses every message (threshold 0),
//! so the fuzzingserver's 12.* and 13.* cases choose the parameters.
//!
//! 1. `/getCaseCount` sends the number of cases N;
//! 2. for each case, `/runCase?case=i&agent=AGENT` and echo every message
//!    until the server closes;
//! 3. `/updateReports?agent=AGENT` writes the report.

use rtwire::ws::{Config, Conn};
use rtwire::Error;
use tokio::net::TcpStream;

async fn open(base: &str, path: &str, config: &Config) -> Result<Conn<TcpStream>, Error> {
    let hostport = base.trim_start_matches("ws://").trim_end_matches('/');
    let tcp = TcpStream::connect(hostport).await?;
    tcp.set_nodelay(true)?;
    let (conn, _) = Conn::connect(
        tcp,
        &format!("{}{}", base.trim_end_matches('/'), path),
        config,
    )
    .await?;
    Ok(conn)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9010".into());
    let agent = args.next().unwrap_or_else(|| "rtwire".into());
    let deflate = args.next().is_some_and(|a| a == "--deflate");
    #[allow(unused_mut)]
    let mut builder = Config::builder()
        .max_frame_size(64 << 20)
        .max_message_size(64 << 20);
    if deflate {
        #[cfg(feature = "deflate")]
        {
            let mut d = rtwire::ws::DeflateConfig::default().threshold(0);
            // Let the server pick: offer no constraint at all.
            d.server_no_context_takeover = false;
            d.client_no_context_takeover = false;
            builder = builder.deflate(d);
        }
        #[cfg(not(feature = "deflate"))]
        return Err("--deflate needs the `deflate` feature".into());
    }
    let config = builder.build();

    let mut conn = open(&base, "/getCaseCount", &config).await?;
    let count: usize = match conn.read_message().await? {
        Some(m) => std::str::from_utf8(m.payload())?.trim().parse()?,
        None => return Err("no case count".into()),
    };
    while conn.read_message().await.ok().flatten().is_some() {}
    eprintln!("running {count} cases as agent {agent}");

    for case in 1..=count {
        let path = format!("/runCase?case={case}&agent={agent}");
        let mut conn = match open(&base, &path, &config).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("case {case}: connect failed: {e}");
                continue;
            }
        };
        while let Ok(Some(msg)) = conn.read_message().await {
            if conn.feed_message(msg).await.is_err() {
                break;
            }
        }
    }

    let mut conn = open(&base, &format!("/updateReports?agent={agent}"), &config).await?;
    while conn.read_message().await.ok().flatten().is_some() {}
    eprintln!("reports updated");
    Ok(())
}
