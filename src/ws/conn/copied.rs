//! Feeding a message from borrowed bytes: [`Conn::feed_binary_copied`]
//! and [`Conn::feed_text_copied`].
//!
//! A small message is copied into the write queue's coalescing buffer
//! anyway, so a `Bytes` built only to be fed is an allocation (or a
//! reference count taken and dropped) for nothing. These take a slice and
//! copy it straight into the queue: a message serialised into a reused
//! scratch buffer is sent with no allocation while the queue is under its
//! high-water mark and no compression is negotiated (otherwise the bytes
//! go into a `Bytes` of their own first), and the coalescing buffer is
//! kept between flushes (it is released past 64 KiB).

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Conn;
use crate::error::Error;
use crate::ws::frame::{Frame, OpCode};

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Queues a binary message copied from `data`, as
    /// [`feed_message`](Self::feed_message) would queue it (same checks,
    /// same backpressure, same cancel safety: a cancelled feed has queued
    /// nothing).
    ///
    /// The bytes are always copied, at any size; for a large payload you
    /// already hold as `Bytes`, [`feed_message`](Self::feed_message) writes
    /// it with no copy (a vectored write). When the queue is over its
    /// high-water mark, or the message has to be compressed, the bytes are
    /// first copied into a `Bytes` of their own.
    ///
    /// ```no_run
    /// # async fn demo(conn: &mut rtwire::ws::Conn<tokio::net::TcpStream>) -> Result<(), rtwire::Error> {
    /// let mut scratch = Vec::new();
    /// for n in 0..3u32 {
    ///     scratch.clear();
    ///     scratch.extend_from_slice(&n.to_be_bytes());
    ///     conn.feed_binary_copied(&scratch).await?;
    /// }
    /// conn.flush().await
    /// # }
    /// ```
    pub async fn feed_binary_copied(&mut self, data: &[u8]) -> Result<(), Error> {
        self.feed_copied(OpCode::Binary, data).await
    }

    /// Queues a text message copied from `text`; see
    /// [`feed_binary_copied`](Self::feed_binary_copied).
    pub async fn feed_text_copied(&mut self, text: &str) -> Result<(), Error> {
        self.feed_copied(OpCode::Text, text.as_bytes()).await
    }

    async fn feed_copied(&mut self, opcode: OpCode, data: &[u8]) -> Result<(), Error> {
        if let Some(r) = self.try_queue(|q| q.send_copied(opcode, data)) {
            return r;
        }
        // The writer's own feed, not `Conn::feed_frame`: a second caller of
        // that future makes the compiler stop inlining it into the common
        // `feed_message` loop.
        self.writer()
            .feed_frame(Frame::new(opcode, Bytes::copy_from_slice(data)))
            .await
    }
}
