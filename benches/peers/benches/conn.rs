//! The connection read and write paths without a network.
//!
//! Read: pre-encoded masked client frames sit behind an in-memory
//! `AsyncRead` that hands them out 64 KiB per read (like a socket), and each
//! library reads them as a server, message by message: rtwire
//! `Conn::read_message` (and `read_frame`), tokio-tungstenite `next()`,
//! fastwebsockets `FragmentCollector::read_frame` (its idiomatic reader;
//! `WebSocket::read_frame` for frames), tokio-websockets `next()`.
//!
//! Write: each library sends messages as a server into an in-memory sink
//! that accepts every write (vectored too), either one flush per message
//! (`send`) or all fed, then one flush (`feed` + `flush`) where the API has
//! it. fastwebsockets writes every frame as it is given, from a borrowed
//! payload; rtwire's borrowed-payload feed (`feed_binary_copied`) is its
//! own row.
//!
//! Connections are built once per case; each iteration rewinds the input.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::{SinkExt, StreamExt};
use rtwire::ws::{Config, Conn, Message, Role};
use rtwire_peers::{ascii_payload, masked_frames, MemInput, MemStream};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

struct Case {
    label: &'static str,
    opcode: u8,
    size: usize,
    count: usize,
}

const READ_CASES: [Case; 4] = [
    Case {
        label: "binary",
        opcode: 2,
        size: 16,
        count: 4096,
    },
    Case {
        label: "binary",
        opcode: 2,
        size: 1024,
        count: 256,
    },
    Case {
        label: "binary",
        opcode: 2,
        size: 64 << 10,
        count: 8,
    },
    Case {
        label: "text",
        opcode: 1,
        size: 1024,
        count: 256,
    },
];

fn read_path(c: &mut Criterion) {
    let rt = rt();
    for case in READ_CASES {
        let mut g = c.benchmark_group(format!("conn/read/{}", case.label));
        g.throughput(Throughput::Elements(case.count as u64));
        let payload = ascii_payload(case.size);
        let input = MemInput::new(masked_frames(case.opcode, &payload, case.count));
        let n = case.count;
        let size = case.size;

        let mut conn = Conn::from_upgraded(
            MemStream::new(input.clone()),
            Role::Server,
            &Config::default(),
            BytesMut::new(),
        );
        g.bench_function(BenchmarkId::new("rtwire_read_message", size), |b| {
            b.iter(|| {
                input.rewind();
                rt.block_on(async {
                    for _ in 0..n {
                        let m = conn.read_message().await.unwrap().unwrap();
                        debug_assert_eq!(m.payload().len(), size);
                        black_box(m);
                    }
                })
            })
        });
        g.bench_function(BenchmarkId::new("rtwire_read_frame", size), |b| {
            b.iter(|| {
                input.rewind();
                rt.block_on(async {
                    for _ in 0..n {
                        black_box(conn.read_frame().await.unwrap());
                    }
                })
            })
        });
        drop(conn);

        let mut ws = rt.block_on(tokio_tungstenite::WebSocketStream::from_raw_socket(
            MemStream::new(input.clone()),
            tungstenite::protocol::Role::Server,
            None,
        ));
        g.bench_function(BenchmarkId::new("tokio_tungstenite", size), |b| {
            b.iter(|| {
                input.rewind();
                rt.block_on(async {
                    for _ in 0..n {
                        black_box(ws.next().await.unwrap().unwrap());
                    }
                })
            })
        });
        drop(ws);

        let mut fc =
            fastwebsockets::FragmentCollector::new(fastwebsockets::WebSocket::after_handshake(
                MemStream::new(input.clone()),
                fastwebsockets::Role::Server,
            ));
        g.bench_function(BenchmarkId::new("fastwebsockets_collector", size), |b| {
            b.iter(|| {
                input.rewind();
                rt.block_on(async {
                    for _ in 0..n {
                        let f = fc.read_frame().await.unwrap();
                        debug_assert_eq!(f.payload.len(), size);
                        black_box(f);
                    }
                })
            })
        });
        drop(fc);
        let mut fw = fastwebsockets::WebSocket::after_handshake(
            MemStream::new(input.clone()),
            fastwebsockets::Role::Server,
        );
        g.bench_function(BenchmarkId::new("fastwebsockets_frame", size), |b| {
            b.iter(|| {
                input.rewind();
                rt.block_on(async {
                    for _ in 0..n {
                        black_box(fw.read_frame().await.unwrap());
                    }
                })
            })
        });
        drop(fw);

        let mut tw = tokio_websockets::ServerBuilder::new().serve(MemStream::new(input.clone()));
        g.bench_function(BenchmarkId::new("tokio_websockets", size), |b| {
            b.iter(|| {
                input.rewind();
                rt.block_on(async {
                    for _ in 0..n {
                        black_box(tw.next().await.unwrap().unwrap());
                    }
                })
            })
        });
        g.finish();
    }
}

const WRITE_CASES: [(usize, usize); 3] = [(16, 1024), (1024, 256), (64 << 10, 16)];

fn write_path(c: &mut Criterion) {
    let rt = rt();
    let empty = MemInput::new(Vec::new());
    for (size, n) in WRITE_CASES {
        let mut g = c.benchmark_group("conn/write/binary");
        g.throughput(Throughput::Elements(n as u64));
        let payload = Bytes::from(vec![0xabu8; size]);

        let mut conn = Conn::from_upgraded(
            MemStream::new(empty.clone()),
            Role::Server,
            &Config::default(),
            BytesMut::new(),
        );
        g.bench_function(BenchmarkId::new("rtwire_send_each", size), |b| {
            b.iter(|| {
                rt.block_on(async {
                    for _ in 0..n {
                        conn.send_binary(payload.clone()).await.unwrap();
                    }
                })
            })
        });
        g.bench_function(BenchmarkId::new("rtwire_feed_then_flush", size), |b| {
            b.iter(|| {
                rt.block_on(async {
                    for _ in 0..n {
                        conn.feed_message(Message::Binary(payload.clone()))
                            .await
                            .unwrap();
                    }
                    conn.flush().await.unwrap();
                })
            })
        });
        g.bench_function(
            BenchmarkId::new("rtwire_feed_copied_then_flush", size),
            |b| {
                b.iter(|| {
                    rt.block_on(async {
                        for _ in 0..n {
                            conn.feed_binary_copied(&payload).await.unwrap();
                        }
                        conn.flush().await.unwrap();
                    })
                })
            },
        );
        drop(conn);

        let mut ws = rt.block_on(tokio_tungstenite::WebSocketStream::from_raw_socket(
            MemStream::new(empty.clone()),
            tungstenite::protocol::Role::Server,
            None,
        ));
        g.bench_function(BenchmarkId::new("tokio_tungstenite_send_each", size), |b| {
            b.iter(|| {
                rt.block_on(async {
                    for _ in 0..n {
                        ws.send(tungstenite::Message::Binary(payload.clone()))
                            .await
                            .unwrap();
                    }
                })
            })
        });
        g.bench_function(
            BenchmarkId::new("tokio_tungstenite_feed_then_flush", size),
            |b| {
                b.iter(|| {
                    rt.block_on(async {
                        for _ in 0..n {
                            ws.feed(tungstenite::Message::Binary(payload.clone()))
                                .await
                                .unwrap();
                        }
                        ws.flush().await.unwrap();
                    })
                })
            },
        );
        drop(ws);

        let mut fw = fastwebsockets::WebSocket::after_handshake(
            MemStream::new(empty.clone()),
            fastwebsockets::Role::Server,
        );
        g.bench_function(BenchmarkId::new("fastwebsockets_write_frame", size), |b| {
            b.iter(|| {
                rt.block_on(async {
                    for _ in 0..n {
                        let f = fastwebsockets::Frame::binary(fastwebsockets::Payload::Borrowed(
                            &payload,
                        ));
                        fw.write_frame(f).await.unwrap();
                    }
                })
            })
        });
        drop(fw);

        let mut tw = tokio_websockets::ServerBuilder::new().serve(MemStream::new(empty.clone()));
        g.bench_function(BenchmarkId::new("tokio_websockets_send_each", size), |b| {
            b.iter(|| {
                rt.block_on(async {
                    for _ in 0..n {
                        tw.send(tokio_websockets::Message::binary(payload.clone()))
                            .await
                            .unwrap();
                    }
                })
            })
        });
        g.bench_function(
            BenchmarkId::new("tokio_websockets_feed_then_flush", size),
            |b| {
                b.iter(|| {
                    rt.block_on(async {
                        for _ in 0..n {
                            tw.feed(tokio_websockets::Message::binary(payload.clone()))
                                .await
                                .unwrap();
                        }
                        tw.flush().await.unwrap();
                    })
                })
            },
        );
        g.finish();
    }
}

criterion_group!(benches, read_path, write_path);
criterion_main!(benches);
