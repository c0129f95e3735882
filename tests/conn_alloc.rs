//! Steady-state frame traffic allocates nothing per frame.
//!
//! A counting global allocator counts allocations made on the test's
//! thread inside a window. Server and client `Conn`s run over real loopback
//! TCP on a current-thread runtime, driven from one task (no spawns inside
//! the window). After a warm-up, 10,000 round trips of 16-byte frames must
//! cost far fewer allocations than frames: the read arena takes a new
//! 256 KiB block now and then, and small payloads are copied into a 4 KiB
//! per-thread slab (so a message the application keeps pins 4 KiB at most,
//! not an arena block): two allocations per slab, one slab per 256 16-byte
//! payloads, two payloads read per round trip. Nothing else should
//! allocate.

mod conn_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use conn_support::*;
use rtwire::ws::{Config, Conn, Frame, Message, OpCode};
use tokio::net::TcpStream;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    if COUNTING.try_with(|c| c.get()).unwrap_or(false) {
        let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
    }
}

// SAFETY: forwards every call unchanged to the system allocator; the only
// addition is bumping a const-initialized thread-local counter while a
// thread-local flag is set (no allocation, no destructor).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Counts allocations made by this thread while `f` runs.
async fn allocations<F: std::future::Future>(f: F) -> (usize, F::Output) {
    let before = ALLOCS.with(|a| a.get());
    COUNTING.with(|c| c.set(true));
    let out = f.await;
    COUNTING.with(|c| c.set(false));
    (ALLOCS.with(|a| a.get()) - before, out)
}

static PAYLOAD: [u8; 16] = *b"0123456789abcdef";

async fn pair() -> (Conn<TcpStream>, Conn<TcpStream>) {
    let (l, addr) = listener().await;
    let client = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        Conn::connect(tcp, &format!("ws://{addr}/"), &Config::default())
            .await
            .unwrap()
            .0
    };
    let config = Config::default();
    let (server, client) = tokio::join!(accept(&l, &config), client);
    (server, client)
}

/// One round trip with the frame API: client -> server -> client.
async fn frame_round_trip(server: &mut Conn<TcpStream>, client: &mut Conn<TcpStream>) {
    client
        .write_frame(Frame::binary(Bytes::from_static(&PAYLOAD)))
        .await
        .unwrap();
    let f = server.read_frame().await.unwrap();
    debug_assert_eq!(&f.payload[..], &PAYLOAD);
    server.write_frame(f).await.unwrap();
    let back = client.read_frame().await.unwrap();
    assert_eq!(back.opcode, OpCode::Binary);
    assert_eq!(back.payload.len(), PAYLOAD.len());
}

/// One round trip with the message API, replies fed and flushed.
async fn message_round_trip(server: &mut Conn<TcpStream>, client: &mut Conn<TcpStream>) {
    client
        .feed_message(Message::Binary(Bytes::from_static(&PAYLOAD)))
        .await
        .unwrap();
    client.flush().await.unwrap();
    let m = server.read_message().await.unwrap().unwrap();
    server.feed_message(m).await.unwrap();
    server.flush().await.unwrap();
    let back = client.read_message().await.unwrap().unwrap();
    assert_eq!(back.payload().len(), PAYLOAD.len());
}

const N: usize = 10_000;

/// The single-threaded runtime every test here counts on.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn steady_state_round_trips_do_not_allocate_per_frame() {
    let rt = runtime();
    rt.block_on(async {
        let (mut server, mut client) = pair().await;
        for _ in 0..1000 {
            frame_round_trip(&mut server, &mut client).await;
        }
        let (allocs, ()) = allocations(async {
            for _ in 0..N {
                frame_round_trip(&mut server, &mut client).await;
            }
        })
        .await;
        // 4 frames written and read per round trip; the slab alone costs
        // 2 × 2N / 256 = N / 64.
        assert!(
            allocs < N / 50,
            "{allocs} allocations for {N} frame round trips"
        );

        for _ in 0..1000 {
            message_round_trip(&mut server, &mut client).await;
        }
        let (allocs, ()) = allocations(async {
            for _ in 0..N {
                message_round_trip(&mut server, &mut client).await;
            }
        })
        .await;
        assert!(
            allocs < N / 50,
            "{allocs} allocations for {N} message round trips"
        );
    });
}

#[test]
fn the_counter_sees_a_per_frame_allocation() {
    // The harness itself: a loop that allocates once per frame is caught.
    let rt = runtime();
    rt.block_on(async {
        let (mut server, mut client) = pair().await;
        for _ in 0..100 {
            frame_round_trip(&mut server, &mut client).await;
        }
        let (allocs, ()) = allocations(async {
            for _ in 0..1000 {
                client
                    .write_frame(Frame::binary(Bytes::copy_from_slice(&PAYLOAD)))
                    .await
                    .unwrap();
                let f = server.read_frame().await.unwrap();
                server.write_frame(f).await.unwrap();
                client.read_frame().await.unwrap();
            }
        })
        .await;
        assert!(allocs >= 1000, "only {allocs} allocations counted");
    });
}

/// Fills `buf` with the `i`th message of `len` bytes.
fn fill(buf: &mut Vec<u8>, i: usize, len: usize) {
    buf.clear();
    buf.extend((0..len).map(|k| (i + k) as u8));
}

/// Replies serialised into one reused scratch buffer and fed copied: no
/// `Bytes` is built, so nothing is allocated per reply, with messages of
/// 16 B and of 1 KiB (past the short header). 100 rounds of 1 KiB stay
/// well inside loopback's socket buffers, so the flushes never wait for
/// the reader (whose reads would be counted on this thread).
#[test]
fn copied_feeds_from_a_scratch_buffer_do_not_allocate() {
    const ROUNDS: usize = 100;
    let rt = runtime();
    rt.block_on(async {
        let (mut server, mut client) = pair().await;
        let mut scratch = Vec::with_capacity(2048);
        for len in [16usize, 1024] {
            // Warm-up, uncounted: the buffers reach their steady size.
            for i in 0..ROUNDS {
                fill(&mut scratch, i, len);
                server.feed_binary_copied(&scratch).await.unwrap();
                server.flush().await.unwrap();
                let got = client.read_message().await.unwrap().unwrap();
                assert_eq!(got.payload(), &scratch[..]);
            }
            let (allocs, ()) = allocations(async {
                for i in 0..ROUNDS {
                    fill(&mut scratch, i, len);
                    server.feed_binary_copied(&scratch).await.unwrap();
                    server.feed_text_copied("and a text").await.unwrap();
                    server.flush().await.unwrap();
                }
            })
            .await;
            assert!(
                allocs < ROUNDS / 10,
                "{allocs} allocations for {} copied feeds of {len} B",
                2 * ROUNDS
            );
            for i in 0..ROUNDS {
                fill(&mut scratch, i, len);
                let got = client.read_message().await.unwrap().unwrap();
                assert_eq!(got.payload(), &scratch[..], "message {i}");
                let t = client.read_message().await.unwrap().unwrap();
                assert_eq!(t, Message::text("and a text"));
            }
        }
    });
}
