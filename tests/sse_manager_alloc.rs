//! The SSE manager's steady state allocates per publish, not per
//! subscriber: one encoding shared by every queue, and the handler's
//! streams copy it into buffers they keep.
//!
//! A counting global allocator counts allocations on this thread while
//! counting is on; the runtime is current-thread, so the dispatcher, the
//! handlers and the readers all run here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::BytesMut;
use rtwire::pubsub::{ChannelName, PublishRequest};
use rtwire::sse::{Handler, HandlerConfig, Manager, ManagerConfig, SubscribeRequest};
use tokio::io::AsyncReadExt;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the thread-locals may be gone while the thread exits.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count(on: bool) -> usize {
    COUNTING.with(|c| c.set(on));
    COUNT.with(|c| c.replace(0))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

const SUBSCRIBERS: usize = 1_000;
const PUBLISHES: usize = 200;

#[test]
fn publishing_to_many_subscribers_allocates_per_publish_not_per_subscriber() {
    runtime().block_on(async {
        let m = Manager::in_memory(ManagerConfig::new());
        let mut subs = Vec::new();
        for _ in 0..SUBSCRIBERS {
            subs.push(m.subscribe(SubscribeRequest::new("c")).await.unwrap().0);
        }
        let channel = ChannelName::new("c").unwrap();
        let payload = bytes::Bytes::from(vec![b'x'; 100]);
        // 50 rounds to let the queues and the store's ring grow, then count.
        for (i, n) in [50, PUBLISHES].into_iter().enumerate() {
            count(i == 1);
            for _ in 0..n {
                m.publish(PublishRequest::new(channel.clone(), payload.clone()))
                    .await
                    .unwrap();
                for s in subs.iter_mut() {
                    let ev = s.recv().await.unwrap();
                    assert!(ev.encoded().as_bytes().ends_with(b"xxxx\n\n"));
                }
            }
        }
        let n = count(false);
        let per_publish = n as f64 / PUBLISHES as f64;
        eprintln!("{n} allocations for {PUBLISHES} publishes to {SUBSCRIBERS} subscribers ({per_publish:.1} per publish)");
        assert!(
            n < PUBLISHES * 16,
            "{n} allocations: {per_publish:.1} per publish to {SUBSCRIBERS} subscribers"
        );
    });
}

/// The same through the `Handler` with real streams (in-memory pipes, each
/// drained by a reader task): writing an event to a client copies it into
/// that stream's buffer, which does not allocate once it has grown.
#[test]
fn streaming_to_many_clients_through_the_handler_allocates_per_publish() {
    const CLIENTS: usize = 200;
    runtime().block_on(async {
        let m = Manager::in_memory(ManagerConfig::new().heartbeat_interval(None));
        let h = Handler::new(m.clone(), HandlerConfig::new());
        let (tx, mut done) = tokio::sync::mpsc::unbounded_channel::<()>();
        for _ in 0..CLIENTS {
            let (mut client, mut server) = tokio::io::duplex(64 * 1024);
            let mut buf = BytesMut::from(&b"GET /events?channel=c HTTP/1.1\r\nHost: x\r\n\r\n"[..]);
            let head = rtwire::http::HeadParser::new(rtwire::http::Limits::default())
                .parse_request(&mut buf)
                .unwrap()
                .unwrap();
            let h = h.clone();
            tokio::spawn(async move { h.serve(&mut server, &head).await });
            let tx = tx.clone();
            tokio::spawn(async move {
                // Count events by their blank line; one signal per event.
                let mut chunk = [0u8; 4096];
                let mut prev = 0u8;
                loop {
                    let n = client.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    for &b in &chunk[..n] {
                        if b == b'\n' && prev == b'\n' {
                            let _ = tx.send(());
                        }
                        prev = b;
                    }
                }
            });
        }
        while m.stats().connections < CLIENTS as u64 {
            tokio::task::yield_now().await;
        }
        let channel = ChannelName::new("c").unwrap();
        let payload = bytes::Bytes::from(vec![b'y'; 100]);
        for (i, n) in [20, PUBLISHES].into_iter().enumerate() {
            count(i == 1);
            for _ in 0..n {
                m.publish(PublishRequest::new(channel.clone(), payload.clone()))
                    .await
                    .unwrap();
                for _ in 0..CLIENTS {
                    done.recv().await.unwrap();
                }
            }
        }
        let n = count(false);
        let per_publish = n as f64 / PUBLISHES as f64;
        eprintln!("{n} allocations for {PUBLISHES} publishes streamed to {CLIENTS} clients ({per_publish:.1} per publish)");
        assert!(
            n < PUBLISHES * 16,
            "{n} allocations: {per_publish:.1} per publish to {CLIENTS} clients"
        );
    });
}
