//! Encoding allocates nothing per event once the buffer has grown.
//!
//! A counting global allocator counts allocations made by this thread while
//! counting is switched on (other test threads are not counted).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::BytesMut;
use rtwire::sse::{Encoder, Event};

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

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    COUNT.with(|c| c.get())
}

#[test]
fn the_counter_counts() {
    let n = allocations(|| {
        let v: Vec<u8> = Vec::with_capacity(10);
        std::hint::black_box(v);
    });
    assert_eq!(n, 1);
}

#[test]
fn zero_allocations_per_event_once_the_buffer_has_grown() {
    let enc = Encoder::new();
    let mut buf = BytesMut::with_capacity(4096);
    let ids: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let payload = "line one\r\nline two\nline three\r{\"k\": [1, 2, 3]}";
    let n = allocations(|| {
        for (i, id) in ids.iter().enumerate() {
            // Built from borrowed strings: the event itself allocates nothing.
            let ev = Event::new(payload)
                .with_id(id.as_str())
                .unwrap()
                .with_event("update")
                .unwrap()
                .with_retry(i as u64)
                .with_comment("c");
            enc.encode(&ev, &mut buf);
            enc.keepalive(&mut buf);
            assert!(buf.ends_with(b"\n\n") || buf.ends_with(b"keepalive\n"));
            buf.clear();
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn a_growing_buffer_does_allocate() {
    // The counterpart: encoding into a buffer that is too small allocates,
    // so the zero above is a measurement, not a blind spot.
    let enc = Encoder::new();
    let mut buf = BytesMut::new();
    let big = "x".repeat(10_000);
    let ev = Event::new(big.as_str());
    let n = allocations(|| enc.encode(&ev, &mut buf));
    assert!(n >= 1);
}
