//! The sans-IO frame codec: header parse and encode, decoding a buffer of
//! many frames (16 B, 1 KiB, 64 KiB payloads), text frames with UTF-8
//! validation, and client-role encoding with masking.
//!
//! tungstenite's `FrameHeader::{parse, format}` are public and appear
//! beside rtwire. Its public `Frame::format` copies a masked payload into a
//! fresh `Vec` (its own writer uses a private in-place path), so the
//! client-encode case is rtwire alone, in GB/s. fastwebsockets and tokio-websockets
//! decode only from a stream: they are compared in the `conn` bench.

use std::hint::black_box;
use std::io::Cursor;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use rtwire::ws::{Decoder, Encoder, Frame, FrameHeader, Limits, OpCode, Role, MAX_HEADER_LEN};
use rtwire_peers::{ascii_payload, masked_frames};
use tungstenite::protocol::frame::FrameHeader as TFrameHeader;

fn header(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame/header");
    // A masked 16-byte binary frame header and a masked 1 KiB one (2 + 4
    // and 4 + 4 bytes).
    for (name, len) in [("short", 16usize), ("len16", 1024)] {
        let wire = masked_frames(2, &vec![0; len], 1);
        g.bench_function(BenchmarkId::new("parse/rtwire", name), |b| {
            b.iter(|| FrameHeader::parse(black_box(&wire)).unwrap().unwrap())
        });
        g.bench_function(BenchmarkId::new("parse/tungstenite", name), |b| {
            b.iter(|| {
                let mut cur = Cursor::new(black_box(&wire[..]));
                TFrameHeader::parse(&mut cur).unwrap().unwrap()
            })
        });
        let h = FrameHeader::parse(&wire).unwrap().unwrap().0;
        g.bench_function(BenchmarkId::new("encode/rtwire", name), |b| {
            let mut out = [0u8; MAX_HEADER_LEN];
            b.iter(|| black_box(&h).encode(&mut out))
        });
        let th = TFrameHeader::parse(&mut Cursor::new(&wire[..]))
            .unwrap()
            .unwrap()
            .0;
        g.bench_function(BenchmarkId::new("encode/tungstenite", name), |b| {
            let mut out = Vec::with_capacity(16);
            b.iter(|| {
                out.clear();
                black_box(&th).format(len as u64, &mut out).unwrap();
            })
        });
    }
    g.finish();
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame/decode");
    // (label, opcode, payload size, frames in the buffer): about 256 KiB each.
    let cases = [
        ("binary", 2u8, 16usize, 8192usize),
        ("binary", 2, 1024, 256),
        ("binary", 2, 64 << 10, 4),
        ("text_utf8", 1, 16, 8192),
        ("text_utf8", 1, 1024, 256),
        ("text_utf8", 1, 64 << 10, 4),
    ];
    for (label, op, size, count) in cases {
        let payload = if op == 1 {
            // ASCII with a two-byte and a three-byte character every 64
            // bytes: the validator's slow path runs too.
            let mut p = ascii_payload(size);
            for i in (0..size.saturating_sub(5)).step_by(64) {
                p[i..i + 5].copy_from_slice("é€".as_bytes());
            }
            p
        } else {
            vec![0xabu8; size]
        };
        let wire = BytesMut::from(&masked_frames(op, &payload, count)[..]);
        g.throughput(Throughput::Elements(count as u64));
        g.bench_function(BenchmarkId::new(format!("rtwire/{label}"), size), |b| {
            b.iter_batched(
                || (wire.clone(), Decoder::new(Role::Server, Limits::default())),
                |(mut buf, mut dec)| {
                    let mut n = 0;
                    while let Some(f) = dec.decode(&mut buf).unwrap() {
                        black_box(&f);
                        n += 1;
                    }
                    assert_eq!(n, count);
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn encode_client(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame/encode_client_masked");
    for size in [16usize, 1024, 64 << 10] {
        let payload = Bytes::from(vec![0xabu8; size]);
        g.throughput(Throughput::BytesDecimal(size as u64));
        let frame = Frame::new(OpCode::Binary, payload.clone());
        g.bench_function(BenchmarkId::new("rtwire", size), |b| {
            let mut enc = Encoder::new(Role::Client);
            let mut out = BytesMut::with_capacity(size + 14);
            b.iter(|| {
                out.clear();
                enc.encode(black_box(&frame), &mut out);
            })
        });
    }
    g.finish();
}

/// What a client's masking key costs: a 16-byte frame encoded in the
/// server role (no key), in the client role (a key from rand's ThreadRng,
/// a ChaCha12 CSPRNG seeded from the OS, as RFC 6455 §10.3 requires), and,
/// for scale, the xorshift64* generator rtwire used before (predictable:
/// not acceptable for masking).
fn mask_key_cost(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame/encode_16B_key_cost");
    let frame = Frame::new(OpCode::Binary, Bytes::from(vec![0xabu8; 16]));
    for (name, role) in [
        ("server_no_key", Role::Server),
        ("client_csprng_key", Role::Client),
    ] {
        g.bench_function(name, |b| {
            let mut enc = Encoder::new(role);
            let mut out = BytesMut::with_capacity(64);
            b.iter(|| {
                out.clear();
                enc.encode(black_box(&frame), &mut out);
            })
        });
    }
    g.bench_function("xorshift_key_alone", |b| {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        b.iter(|| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            black_box((x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32)
        })
    });
    g.finish();
}

criterion_group!(benches, header, decode, encode_client, mask_key_cost);
criterion_main!(benches);
