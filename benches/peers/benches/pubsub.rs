//! In-process fan-out cost per delivery.
//!
//! One iteration publishes one message (100 bytes, then 4 KiB) to N local subscribers
//! (N = 1, 100, 10,000) and has each of them receive it; criterion's
//! throughput is in deliveries, so time / N is the cost per delivery.
//!
//! - `rtwire`: `MemoryBus::publish` of a `Publication` (one
//!   `Arc<Publication>` shared by every subscriber), then
//!   `Subscription::try_recv` on each.
//! - `broadcast_string` / `broadcast_vec`: what a user writes without a
//!   pub/sub layer: one `tokio::sync::broadcast::channel::<String>` (or
//!   `Vec<u8>`), one `send`, N receivers (each `recv` clones the value).
//! - `broadcast_arc`: a reference, not a user's first attempt: the same
//!   broadcast carrying `Arc<Vec<u8>>`, i.e. rtwire's sharing without its
//!   channel map, lock and `Delivery` wrapper.
//! - `mpsc_vec`: one `tokio::sync::mpsc` per subscriber and a cloned
//!   `Vec<u8>` sent to each.
//!
//! Everything runs on one thread with `try_recv`, so this measures the
//! fan-out itself (locking, cloning, allocation), not task wake-ups.

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rtwire::pubsub::{
    Bus, ChannelName, Delivery, MemoryBus, Position, Publication, PublishRequest, Subscription,
};
use tokio::sync::{broadcast, mpsc};

const SIZES: [usize; 3] = [1, 100, 10_000];

/// Payload sizes, in bytes: a typical small JSON event, and a 4 KiB one.
const PAYLOADS: [usize; 2] = [100, 4096];

/// A JSON-looking payload of exactly `len` bytes.
fn payload(len: usize) -> String {
    let head = r#"{"type":"tick","seq":12345,"sym":"ABC","price":101.25,"pad":""#;
    let mut s = String::from(head);
    s.extend(std::iter::repeat_n('x', len - head.len() - 2));
    s.push_str("\"}");
    assert_eq!(s.len(), len);
    s
}

/// The memory bus's futures are ready at once: poll once.
fn now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("memory bus futures are ready"),
    }
}

fn fanout(c: &mut Criterion) {
    for &len in &PAYLOADS {
        fanout_of(c, len);
    }
}

fn fanout_of(c: &mut Criterion, len: usize) {
    let mut g = c.benchmark_group(format!("fanout_{len}B"));
    for &n in &SIZES {
        g.throughput(Throughput::Elements(n as u64));

        // rtwire MemoryBus.
        let ch = ChannelName::new("bench").unwrap();
        let bus = MemoryBus::with_capacity(16);
        let mut subs: Vec<Subscription> =
            (0..n).map(|_| now(bus.subscribe(&ch)).unwrap()).collect();
        let publication: Publication =
            PublishRequest::new(ch.clone(), payload(len)).into_publication(Position::new(1, 1));
        g.bench_with_input(BenchmarkId::new("rtwire", n), &n, |b, _| {
            b.iter(|| {
                now(bus.publish(black_box(&publication))).unwrap();
                for s in &mut subs {
                    match s.try_recv() {
                        Some(Delivery::Publication(p)) => {
                            black_box(&p);
                        }
                        other => panic!("{other:?}"),
                    }
                }
            })
        });
        drop(subs);

        // broadcast::<String>.
        let (tx, _) = broadcast::channel::<String>(16);
        let mut rxs: Vec<_> = (0..n).map(|_| tx.subscribe()).collect();
        let msg = payload(len);
        g.bench_with_input(BenchmarkId::new("broadcast_string", n), &n, |b, _| {
            b.iter(|| {
                tx.send(black_box(&msg).clone()).unwrap();
                for rx in &mut rxs {
                    black_box(rx.try_recv().unwrap());
                }
            })
        });
        drop(rxs);

        // broadcast::<Vec<u8>>.
        let (tx, _) = broadcast::channel::<Vec<u8>>(16);
        let mut rxs: Vec<_> = (0..n).map(|_| tx.subscribe()).collect();
        let msg = payload(len).into_bytes();
        g.bench_with_input(BenchmarkId::new("broadcast_vec", n), &n, |b, _| {
            b.iter(|| {
                tx.send(black_box(&msg).clone()).unwrap();
                for rx in &mut rxs {
                    black_box(rx.try_recv().unwrap());
                }
            })
        });
        drop(rxs);

        // broadcast::<Arc<Vec<u8>>> (reference).
        let (tx, _) = broadcast::channel::<Arc<Vec<u8>>>(16);
        let mut rxs: Vec<_> = (0..n).map(|_| tx.subscribe()).collect();
        let shared = Arc::new(msg.clone());
        g.bench_with_input(BenchmarkId::new("broadcast_arc", n), &n, |b, _| {
            b.iter(|| {
                tx.send(Arc::clone(black_box(&shared))).unwrap();
                for rx in &mut rxs {
                    black_box(rx.try_recv().unwrap());
                }
            })
        });
        drop(rxs);

        // One mpsc per subscriber, a cloned Vec<u8> each.
        let (txs, mut rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::channel::<Vec<u8>>(16)).unzip();
        g.bench_with_input(BenchmarkId::new("mpsc_vec", n), &n, |b, _| {
            b.iter(|| {
                for tx in &txs {
                    tx.try_send(black_box(&msg).clone()).unwrap();
                }
                for rx in &mut rxs {
                    black_box(rx.try_recv().unwrap());
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
