//! A server-role `Conn` on a current-thread runtime (paused clock) over an
//! in-memory duplex, fed arbitrary bytes by a peer that then half-closes
//! and reads everything the server writes.
//!
//! Byte 0 picks the entry point: even = `Conn::accept` (the input starts
//! with the HTTP request head), odd = `Conn::from_upgraded` (the input is
//! the frame stream). The server echoes every message.
//!
//! It must end with a typed error or a clean close — never a panic or a
//! hang (with the clock paused, a hang shows as the 60 s virtual deadline
//! firing) — and never buffer more than its limits allow.
#![no_main]

use std::time::Duration;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rtwire::ws::{Config, Conn, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MAX_MESSAGE: usize = 4096;
const HIGH_WATER: usize = 8192;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (mut peer, server) = tokio::io::duplex(16 * 1024);
        let config = Config::builder()
            .max_frame_size(1024)
            .max_message_size(MAX_MESSAGE)
            .max_fragments(64)
            .write_buffer_high_water(HIGH_WATER)
            .write_timeout(Some(Duration::from_secs(1)))
            .close_timeout(Duration::from_secs(1))
            .handshake_timeout(Some(Duration::from_secs(1)))
            .build();
        let input = input.to_vec();
        let peer_task = tokio::spawn(async move {
            let _ = peer.write_all(&input).await;
            let _ = peer.shutdown().await;
            let mut sink = vec![0u8; 4096];
            while let Ok(n) = peer.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        });
        let server_run = async {
            let mut conn = if mode % 2 == 0 {
                match Conn::accept(server, &config).await {
                    Ok((c, _)) => c,
                    Err(_) => return,
                }
            } else {
                Conn::from_upgraded(server, Role::Server, &config, BytesMut::new())
            };
            loop {
                match conn.read_message().await {
                    Ok(Some(msg)) => {
                        assert!(msg.payload().len() <= MAX_MESSAGE, "message over the limit");
                        if conn.feed_message(msg).await.is_err() {
                            break;
                        }
                        assert!(
                            conn.buffered() <= HIGH_WATER + MAX_MESSAGE + 14,
                            "write buffer over its bound: {}",
                            conn.buffered()
                        );
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), server_run)
            .await
            .expect("server hung");
        let _ = tokio::time::timeout(Duration::from_secs(60), peer_task).await;
    });
});
