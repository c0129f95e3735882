//! The size of what every idle connection keeps: the `Conn` and the
//! future of a task that echoes on it (read a message, feed it back).
//!
//! tokio allocates a task as one cell: a header, the core (scheduler
//! handle, task id, the future's stage) and a trailer, the whole aligned
//! and rounded up to 128 bytes on x86-64. So every 128 bytes of future
//! state is 128 bytes per connection, idle or not. Measured with a
//! counting allocator (tokio 1.54, x86-64): an echo task of a 624-byte
//! future is one 768-byte cell; it was 1,408 bytes before the write
//! futures were cut into steps. These bounds fail when a
//! change makes that state grow: a field added inline to the connection
//! that could live behind a pointer until it is needed, or a write future
//! that nests another future instead of being written as steps. They are
//! checked on 64-bit targets (where they were measured).

#![cfg(target_pointer_width = "64")]

use std::future::Future;
use std::mem::size_of;

use rtwire::ws::Conn;
use tokio::net::TcpStream;

/// The size of what `f` returns, without calling it.
fn returned_size<A, R>(_f: impl FnOnce(A) -> R) -> usize {
    size_of::<R>()
}

/// The task an echo server spawns per connection.
///
/// An `async move` block, not an `async fn` taking the connection: rustc
/// keeps an `async fn`'s by-value arguments in the future apart from the
/// locals they are moved into, so `async fn echo(conn: Conn<_>)` holds the
/// connection twice (1,120 bytes here instead of 640).
#[allow(clippy::manual_async_fn)]
fn echo_task(mut conn: Conn<TcpStream>) -> impl Future<Output = ()> {
    async move {
        while let Ok(Some(msg)) = conn.read_message().await {
            if conn.feed_message(msg).await.is_err() {
                break;
            }
        }
    }
}

/// A task that only waits for messages (a subscriber that never writes).
#[allow(clippy::manual_async_fn)]
fn read_task(mut conn: Conn<TcpStream>) -> impl Future<Output = ()> {
    async move { while let Ok(Some(_)) = conn.read_message().await {} }
}

#[test]
fn a_connection_is_at_most_512_bytes() {
    let n = size_of::<Conn<TcpStream>>();
    eprintln!("Conn<TcpStream>: {n} bytes");
    assert!(n <= 512, "Conn<TcpStream> is {n} bytes (bound 512)");
}

#[test]
fn feeding_a_message_adds_at_most_160_bytes_to_a_task() {
    let echo = returned_size(echo_task);
    let read = returned_size(read_task);
    eprintln!("echo task future: {echo} bytes, read-only task future: {read} bytes");
    // The write future (frame, connection pointer, wait state) on top of
    // what a read-only task holds: 128 bytes measured; it was over 500
    // when it nested the writer's own future.
    assert!(
        echo <= read + 160,
        "echo task {echo} bytes, read-only task {read} bytes (bound: read + 160)"
    );
}

#[test]
fn an_echo_task_fits_a_768_byte_tokio_cell() {
    let echo = returned_size(echo_task);
    // tokio 1.54's cell around the future: header 32 bytes, scheduler
    // handle and task id 16, the stage's tag 8, trailer 48; 768 bytes
    // holds a future of up to 664.
    assert!(echo <= 664, "echo task future is {echo} bytes (bound 664)");
}
