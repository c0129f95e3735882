//! SSE encoding and decoding.
//!
//! Encoding typical events into a reused buffer, events/s (bytes per event
//! are printed at start-up, so bytes/s = events/s x size):
//! - `rtwire`: `sse::Encoder::encode` of an `Event` built from borrowed
//!   strings, into one `BytesMut` cleared per event.
//! - `format`: what a hand-written server does: one `format!` with the
//!   fields and `data.replace('\n', "\ndata: ")`, appended to the buffer.
//! - `axum_like`: axum's approach, reimplemented here (axum's `Event` cannot
//!   be encoded without a response body): a fresh `BytesMut` per event,
//!   each field appended after a `memchr2` check for CR/LF, data split on LF
//!   with `memchr` (axum refuses CR in data), frozen into a `Bytes` that the
//!   body would write.
//!
//! Decoding the same stream, cut into 4 KiB chunks as a socket would
//! deliver it: rtwire `sse::Decoder` against `eventsource-stream`.
//!
//! A counting allocator reports allocations per event for each encoder
//! before the timings.

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::StreamExt;
use rtwire::sse::{Decoder, Encoder, Event, Limits};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Case {
    name: &'static str,
    id: &'static str,
    event: &'static str,
    data: String,
}

fn cases() -> Vec<Case> {
    let json = r#"{"type":"tick","seq":12345,"sym":"ABC","price":101.25,"qty":300}"#;
    let multi = (0..5)
        .map(|i| format!("line {i}: the quick brown fox jumps over the lazy dog"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut big = String::from(r#"{"items":["#);
    while big.len() < 16 * 1024 - 40 {
        big.push_str(r#"{"k":"value","n":42},"#);
    }
    big.push_str(r#"{"k":"end"}]}"#);
    vec![
        Case {
            name: "short_json",
            id: "12345",
            event: "tick",
            data: json.to_string(),
        },
        Case {
            name: "multiline_5",
            id: "12346",
            event: "log",
            data: multi,
        },
        Case {
            name: "data_16k",
            id: "12347",
            event: "snapshot",
            data: big,
        },
    ]
}

fn enc_rtwire(c: &Case, buf: &mut BytesMut) {
    let ev = Event::new(c.data.as_str())
        .with_id(c.id)
        .unwrap()
        .with_event(c.event)
        .unwrap();
    Encoder::new().encode(&ev, buf);
}

fn enc_format(c: &Case, buf: &mut BytesMut) {
    let s = format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        c.id,
        c.event,
        c.data.replace('\n', "\ndata: ")
    );
    buf.extend_from_slice(s.as_bytes());
}

/// axum's approach, written from its documented behaviour.
fn enc_axum_like(c: &Case) -> Bytes {
    fn field(out: &mut BytesMut, name: &str, value: &[u8]) {
        assert!(memchr::memchr2(b'\r', b'\n', value).is_none());
        out.extend_from_slice(name.as_bytes());
        out.put_u8(b':');
        if value.first() == Some(&b' ') {
            out.put_u8(b' ');
        }
        out.extend_from_slice(value);
        out.put_u8(b'\n');
    }
    let mut out = BytesMut::new();
    let data = c.data.as_bytes();
    assert!(memchr::memchr(b'\r', data).is_none());
    let mut rest = data;
    while let Some(i) = memchr::memchr(b'\n', rest) {
        field(&mut out, "data", &rest[..i]);
        rest = &rest[i + 1..];
    }
    field(&mut out, "data", rest);
    field(&mut out, "event", c.event.as_bytes());
    assert!(memchr::memchr(0, c.id.as_bytes()).is_none());
    field(&mut out, "id", c.id.as_bytes());
    out.put_u8(b'\n');
    out.freeze()
}

fn allocs_per_event(f: &mut dyn FnMut()) -> f64 {
    for _ in 0..100 {
        f();
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        f();
    }
    (ALLOCS.load(Ordering::Relaxed) - before) as f64 / 1000.0
}

fn encode(c: &mut Criterion) {
    for case in cases() {
        let mut buf = BytesMut::with_capacity(32 * 1024);
        enc_rtwire(&case, &mut buf);
        let size = buf.len();
        let a_rt = allocs_per_event(&mut || {
            buf.clear();
            enc_rtwire(&case, &mut buf)
        });
        let a_fmt = allocs_per_event(&mut || {
            buf.clear();
            enc_format(&case, &mut buf)
        });
        let a_ax = allocs_per_event(&mut || drop(black_box(enc_axum_like(&case))));
        eprintln!(
            "sse/encode/{}: {size} bytes per event; allocations per event: rtwire {a_rt}, format {a_fmt}, axum_like {a_ax}",
            case.name
        );

        let mut g = c.benchmark_group(format!("sse/encode/{}", case.name));
        g.throughput(Throughput::Elements(1));
        g.bench_function("rtwire", |b| {
            b.iter(|| {
                buf.clear();
                enc_rtwire(black_box(&case), &mut buf);
            })
        });
        g.bench_function("format", |b| {
            b.iter(|| {
                buf.clear();
                enc_format(black_box(&case), &mut buf);
            })
        });
        g.bench_function("axum_like", |b| b.iter(|| enc_axum_like(black_box(&case))));
        g.finish();
    }
}

fn decode(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for case in cases() {
        let count = (256 * 1024 / (case.data.len() + 32)).max(16);
        let mut wire = BytesMut::new();
        for _ in 0..count {
            enc_rtwire(&case, &mut wire);
        }
        let chunks: Vec<Bytes> = wire.chunks(4096).map(Bytes::copy_from_slice).collect();
        let mut g = c.benchmark_group(format!("sse/decode/{}", case.name));
        g.throughput(Throughput::Elements(count as u64));
        g.bench_function(BenchmarkId::new("rtwire", count), |b| {
            b.iter(|| {
                let mut dec = Decoder::new(Limits::default());
                let mut buf = BytesMut::new();
                let mut n = 0;
                for ch in &chunks {
                    buf.extend_from_slice(ch);
                    while let Some(ev) = dec.decode(&mut buf).unwrap() {
                        black_box(ev);
                        n += 1;
                    }
                }
                assert_eq!(n, count);
            })
        });
        g.bench_function(BenchmarkId::new("eventsource_stream", count), |b| {
            b.iter(|| {
                rt.block_on(async {
                    use eventsource_stream::Eventsource;
                    let s =
                        futures_util::stream::iter(chunks.iter().cloned().map(Ok::<_, Infallible>));
                    let mut es = s.eventsource();
                    let mut n = 0;
                    while let Some(ev) = es.next().await {
                        black_box(ev.unwrap());
                        n += 1;
                    }
                    assert_eq!(n, count);
                })
            })
        });
        g.finish();
    }
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
