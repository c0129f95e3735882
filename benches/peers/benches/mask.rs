//! Unmasking throughput (GB/s) at 16 B to 1 MiB: rtwire's `apply_mask`, a
//! plain byte loop, fastwebsockets' public `unmask`, and `copy_from_slice`
//! of the same size as the memory-bandwidth reference.
//!
//! tokio-tungstenite (`tungstenite::protocol::frame::mask`) and
//! tokio-websockets (`mask::frame`, AVX2/AVX-512 by runtime detection) keep
//! their masking functions private, so they appear only inside the `conn`
//! bench.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const SIZES: [usize; 6] = [16, 125, 1024, 16 << 10, 64 << 10, 1 << 20];

fn mask(c: &mut Criterion) {
    let mut g = c.benchmark_group("mask");
    for &size in &SIZES {
        g.throughput(Throughput::BytesDecimal(size as u64));
        let mut buf = vec![0x5au8; size];
        let src = vec![0xa5u8; size];
        g.bench_with_input(BenchmarkId::new("rtwire", size), &size, |b, _| {
            b.iter(|| rtwire::ws::apply_mask(black_box(&mut buf), KEY, 0))
        });
        g.bench_with_input(BenchmarkId::new("byte_loop", size), &size, |b, _| {
            b.iter(|| rtwire::ws::apply_mask_bytes(black_box(&mut buf), KEY, 0))
        });
        g.bench_with_input(BenchmarkId::new("fastwebsockets", size), &size, |b, _| {
            b.iter(|| fastwebsockets::unmask(black_box(&mut buf), KEY))
        });
        g.bench_with_input(BenchmarkId::new("copy_from_slice", size), &size, |b, _| {
            b.iter(|| black_box(&mut buf).copy_from_slice(black_box(&src)))
        });
    }
    g.finish();
}

criterion_group!(benches, mask);
criterion_main!(benches);
