//! permessage-deflate's read path: a client-role `Conn` with deflate
//! negotiated reads a frame stream built from the input, on a paused-clock
//! runtime.
//!
//! Layout: byte 0 picks the negotiated parameters (bit 0: the server takes
//! over context; bits 1-2: window bits 9, 10, 12 or 15). The rest is a
//! sequence of frames, each `[flags, len_lo, len_hi, payload...]`:
//! flags bit 0 FIN, bit 1 RSV1, bits 2-3 opcode (text, binary,
//! continuation, ping), bit 4 "payload is plain data to compress with
//! `encode_compressed`" (else the payload goes on the wire as it is, so
//! RSV1 frames carry arbitrary deflate data).
//!
//! It must end in a typed error or a clean end of stream, never a panic or
//! a hang; every message within the 64 KiB limit (on the inflated size);
//! and a stream made only of whole messages compressed by
//! `encode_compressed` (no context) reads back exactly.
#![no_main]

use bytes::{BufMut, BytesMut};
use libfuzzer_sys::fuzz_target;
use rtwire::ws::deflate::{encode_compressed, parse_extensions, server_negotiate};
use rtwire::ws::{Config, Conn, DeflateConfig, Encoder, Frame, Message, OpCode, Role};

const MAX_MESSAGE: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let bits = [9u8, 10, 12, 15][usize::from((mode >> 1) & 3)];
    let server = if mode & 1 == 1 {
        DeflateConfig::context_takeover(bits)
    } else {
        let mut d = DeflateConfig::default();
        d.server_max_window_bits = Some(bits);
        d
    };
    let offers = parse_extensions(b"permessage-deflate; client_max_window_bits").unwrap();
    let params = server_negotiate(&offers, &server).expect("negotiates");

    let mut wire = BytesMut::new();
    let mut enc = Encoder::new(Role::Server);
    let mut expected = Vec::new();
    let mut all_whole = true;
    while rest.len() >= 3 {
        let (flags, len) = (rest[0], usize::from(u16::from_le_bytes([rest[1], rest[2]])));
        let payload = &rest[3..(3 + len).min(rest.len())];
        rest = &rest[3 + payload.len()..];
        let opcode = [OpCode::Text, OpCode::Binary, OpCode::Continuation, OpCode::Ping]
            [usize::from((flags >> 2) & 3)];
        if flags & 0x10 != 0 && matches!(opcode, OpCode::Text | OpCode::Binary) {
            // A valid whole compressed message (text only if it is UTF-8).
            let opcode = if std::str::from_utf8(payload).is_ok() { opcode } else { OpCode::Binary };
            wire.put_slice(&encode_compressed(opcode, payload, bits, 6));
            expected.push(if opcode == OpCode::Text {
                Message::text(String::from_utf8(payload.to_vec()).unwrap())
            } else {
                Message::binary(payload.to_vec())
            });
            continue;
        }
        all_whole = false;
        let mut f = Frame::new(opcode, payload.to_vec()).with_fin(flags & 1 == 1);
        if flags & 2 != 0 {
            f.rsv = 0b100;
        }
        enc.encode(&f, &mut wire);
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (io, peer) = tokio::io::duplex(64 * 1024);
        let config = Config::builder()
            .max_message_size(MAX_MESSAGE)
            .max_frame_size(MAX_MESSAGE)
            .build();
        let mut conn = Conn::from_upgraded(io, Role::Client, &config, wire).with_deflate(params);
        drop(peer);
        let mut got = Vec::new();
        let run = async {
            loop {
                match conn.read_message().await {
                    Ok(Some(m)) => {
                        assert!(m.payload().len() <= MAX_MESSAGE, "message over the limit");
                        got.push(m);
                    }
                    Ok(None) | Err(_) => return,
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), run)
            .await
            .expect("hang");
        if all_whole {
            let fits: Vec<_> = expected
                .iter()
                .take_while(|m| m.payload().len() <= MAX_MESSAGE)
                .cloned()
                .collect();
            assert_eq!(got, fits);
        }
    });
});
