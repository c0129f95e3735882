//! [`SseStream`]: the async writer of an accepted event stream, with
//! heartbeat, write timeout and disconnect detection.

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use super::accept::{Config, SseRequest};
use super::encoder::{EncodedEvent, Encoder, KEEPALIVE};
use super::event::Event;
use crate::error::{Error, TimeoutKind};

/// Largest chunk-size header: 8 hex digits and CRLF.
const CHUNK_HEAD: usize = 10;
/// Idle write buffer capacity; a larger one is released after a write.
const IDLE_CAPACITY: usize = 4 * 1024;

/// An event stream being served over `S`.
///
/// Every write goes out whole (chunk-framed on HTTP/1.1) and is flushed
/// before the call returns, so the stream holds at most the event being
/// written: a slow client slows the producer down (backpressure) and one
/// that stops reading trips the write timeout. [`SseStream::idle`] sends
/// heartbeats and notices a client that went away.
///
/// Errors are [`crate::Error`]: `Timeout(TimeoutKind::Write)`,
/// `ConnectionClosed` (the client left: read EOF, reset or broken pipe;
/// every later call returns it too) or `Io`.
///
/// ```no_run
/// use rtwire::sse::{accept, Event, Config, SseStream};
/// # async fn serve(io: tokio::net::TcpStream, head: rtwire::http::RequestHead,
/// #                mut rx: tokio::sync::mpsc::Receiver<String>) -> Result<(), rtwire::Error> {
/// let config = Config::new();
/// let req = match accept(&head, &config) {
///     Ok(req) => req,
///     Err(rejection) => {
///         let mut io = io;
///         return Ok(rejection.send(&mut io).await?);
///     }
/// };
/// let mut sse = SseStream::start(io, req, &config).await?;
/// loop {
///     tokio::select! {
///         msg = rx.recv() => match msg {
///             Some(text) => sse.send(&Event::new(text)).await?,
///             None => break,
///         },
///         gone = sse.idle() => { gone?; }
///     }
/// }
/// sse.finish().await?;
/// # Ok(()) }
/// ```
pub struct SseStream<S> {
    io: S,
    /// Bytes not yet written (framed). Survives a cancelled call.
    buf: BytesMut,
    chunked: bool,
    encoder: Encoder,
    heartbeat: Option<Duration>,
    next_heartbeat: Pin<Box<Sleep>>,
    write_timeout: Duration,
    /// When the write in progress times out; kept across cancelled calls
    /// and cleared by progress.
    stall_deadline: Option<Instant>,
    last_event_id: Option<String>,
    closed: bool,
    /// A `HEAD` response: the head was the whole response.
    head_only: bool,
    _permit: Option<OwnedSemaphorePermit>,
}

impl<S> fmt::Debug for SseStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseStream")
            .field("buffered", &self.buf.len())
            .field("chunked", &self.chunked)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::WriteZero
            | io::ErrorKind::UnexpectedEof
    )
}

impl<S: AsyncWrite + Unpin> SseStream<S> {
    /// Writes the response head of `req` (and the configured `retry`) and
    /// returns the stream.
    ///
    /// For a `HEAD` request ([`SseRequest::is_head`]) only the head is
    /// written: the response is complete, later sends return
    /// `ConnectionClosed` as if the client had left, and
    /// [`SseStream::finish`] returns the transport.
    pub async fn start(io: S, req: SseRequest, config: &Config) -> Result<Self, Error> {
        let mut head = BytesMut::with_capacity(256);
        req.write_head(&mut head);
        let heartbeat = config.heartbeat;
        let mut s = SseStream {
            io,
            buf: head,
            chunked: !req.http10,
            encoder: Encoder::new(),
            heartbeat,
            next_heartbeat: Box::pin(tokio::time::sleep(
                heartbeat.unwrap_or(Duration::from_secs(86_400)),
            )),
            write_timeout: config.write_timeout,
            stall_deadline: None,
            last_event_id: req.last_event_id,
            closed: false,
            head_only: req.head,
            _permit: req.permit,
        };
        if let Some(ms) = config.retry.filter(|_| !s.head_only) {
            let enc = s.encoder;
            s.framed(|buf| enc.retry(ms, buf));
        }
        s.flush_buf().await?;
        s.closed = s.head_only;
        Ok(s)
    }

    /// The client's last event id from the request, if any.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// Bytes accepted but not yet written to `S` (non-zero only while a
    /// write is in progress or after a cancelled one).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Sends `event` and flushes.
    ///
    /// Cancel-safe in this sense: if the call is cancelled, the event is
    /// either not sent or finishes with the next call (which first finishes
    /// it, then takes its own), so the stream never holds more than one
    /// event however often calls are cancelled; and the write timeout
    /// counts from when writing stalled, not from each call.
    pub async fn send(&mut self, event: &Event<'_>) -> Result<(), Error> {
        self.ready().await?;
        let enc = self.encoder;
        self.framed(|buf| enc.encode(event, buf));
        self.flush_buf().await
    }

    /// Sends an event encoded once for many streams.
    /// Cancel-safe as [`SseStream::send`] is.
    pub async fn send_encoded(&mut self, event: &EncodedEvent) -> Result<(), Error> {
        self.ready().await?;
        self.framed(|buf| buf.put_slice(event.as_bytes()));
        self.flush_buf().await
    }

    /// Queues an event encoded once for many streams without writing it:
    /// [`SseStream::flush`] (or the next send, or [`SseStream::idle`])
    /// writes everything queued in one go. The caller bounds what it
    /// queues (see [`SseStream::buffered`]).
    pub fn feed_encoded(&mut self, event: &EncodedEvent) -> Result<(), Error> {
        self.check_open()?;
        self.framed(|buf| buf.put_slice(event.as_bytes()));
        Ok(())
    }

    /// Writes and flushes what [`SseStream::feed_encoded`] queued.
    /// Cancel-safe as [`SseStream::send`] is.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.check_open()?;
        self.flush_buf().await
    }

    /// Sends a keepalive comment now.
    pub async fn heartbeat(&mut self) -> Result<(), Error> {
        self.ready().await?;
        self.framed(|buf| buf.put_slice(KEEPALIVE));
        self.flush_buf().await
    }

    /// Ends the response (the last chunk on HTTP/1.1; a shutdown on
    /// HTTP/1.0) and returns the transport. After a `HEAD` response there
    /// is nothing to end (HTTP/1.0: the write side is shut down).
    pub async fn finish(mut self) -> Result<S, Error> {
        if self.head_only {
            if !self.chunked {
                self.io.shutdown().await?;
            }
            return Ok(self.io);
        }
        self.check_open()?;
        if self.chunked {
            self.buf.put_slice(b"0\r\n\r\n");
            self.flush_buf().await?;
        } else {
            self.flush_buf().await?;
            self.io.shutdown().await?;
        }
        Ok(self.io)
    }

    /// Drops the stream, returning the transport as it is.
    pub fn into_inner(self) -> S {
        self.io
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.closed {
            Err(Error::ConnectionClosed)
        } else {
            Ok(())
        }
    }

    /// Checks the stream is open and finishes what a cancelled call left
    /// in the buffer, so a new event is only added to an empty one.
    async fn ready(&mut self) -> Result<(), Error> {
        self.check_open()?;
        if !self.buf.is_empty() {
            self.flush_buf().await?;
        }
        Ok(())
    }

    /// Appends what `write` produces as one chunk (if chunked).
    fn framed(&mut self, write: impl FnOnce(&mut BytesMut)) {
        if !self.chunked {
            write(&mut self.buf);
            return;
        }
        // The chunk size goes in a fixed-width (zero-padded) field filled in
        // once the body is written: no second buffer, no copy.
        let head_at = self.buf.len();
        self.buf.put_slice(b"00000000\r\n");
        write(&mut self.buf);
        let len = self.buf.len() - head_at - CHUNK_HEAD;
        let field = &mut self.buf[head_at..head_at + 8];
        let mut v = len;
        for b in field.iter_mut().rev() {
            *b = b"0123456789abcdef"[v & 0xf];
            v >>= 4;
        }
        self.buf.put_slice(b"\r\n");
    }

    /// Writes the whole buffer, failing when writing makes no progress
    /// within the write timeout (measured across cancelled calls).
    async fn flush_buf(&mut self) -> Result<(), Error> {
        let r = self.write_all_timed().await;
        if r.is_err() {
            self.closed = true;
        }
        r
    }

    async fn write_all_timed(&mut self) -> Result<(), Error> {
        // Each write (and the flush) is tried once before a timer is armed:
        // a socket with room takes it at once, and no timer is registered
        // for it (a timer per write was most of the cost of an event).
        while !self.buf.is_empty() {
            let timeout = self.write_timeout;
            let r = {
                let mut write = std::pin::pin!(self.io.write(&self.buf));
                match poll_once(write.as_mut()).await {
                    Some(r) => Ok(r),
                    None => {
                        let deadline = *self
                            .stall_deadline
                            .get_or_insert_with(|| Instant::now() + timeout);
                        tokio::time::timeout_at(deadline, write).await
                    }
                }
            };
            let n = match r {
                Err(_) => return Err(Error::Timeout(TimeoutKind::Write)),
                Ok(Ok(0)) => return Err(Error::ConnectionClosed),
                Ok(Ok(n)) => n,
                Ok(Err(e)) if is_disconnect(&e) => return Err(Error::ConnectionClosed),
                Ok(Err(e)) => return Err(Error::Io(e)),
            };
            bytes::Buf::advance(&mut self.buf, n);
            self.stall_deadline = None;
        }
        let timeout = self.write_timeout;
        let r = {
            let mut flush = std::pin::pin!(self.io.flush());
            match poll_once(flush.as_mut()).await {
                Some(r) => Ok(r),
                None => {
                    let deadline = *self
                        .stall_deadline
                        .get_or_insert_with(|| Instant::now() + timeout);
                    tokio::time::timeout_at(deadline, flush).await
                }
            }
        };
        match r {
            Err(_) => return Err(Error::Timeout(TimeoutKind::Write)),
            Ok(Err(e)) if is_disconnect(&e) => return Err(Error::ConnectionClosed),
            Ok(Err(e)) => return Err(Error::Io(e)),
            Ok(Ok(())) => self.stall_deadline = None,
        }
        if self.buf.capacity() > IDLE_CAPACITY {
            // After a large event, give the memory back.
            self.buf = BytesMut::new();
        }
        if let Some(every) = self.heartbeat {
            self.next_heartbeat.as_mut().reset(Instant::now() + every);
        }
        Ok(())
    }
}

/// Polls `fut` once: its output if it is ready now, `None` if it is not
/// (its waker is registered; keep polling the same future).
async fn poll_once<F: std::future::Future>(fut: Pin<&mut F>) -> Option<F::Output> {
    let mut fut = fut;
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

impl<S: AsyncRead + AsyncWrite + Unpin> SseStream<S> {
    /// Waits while there is nothing to send: writes a heartbeat whenever one
    /// is due, and returns only when the stream is over, with why
    /// (`ConnectionClosed` when the client closed its side; bytes it sends
    /// are read and ignored). Cancel-safe: use it in `select!` next to the
    /// event source.
    pub async fn idle(&mut self) -> Result<Infallible, Error> {
        self.check_open()?;
        if !self.buf.is_empty() {
            // A cancelled write left bytes behind: finish them first.
            self.flush_buf().await?;
        }
        let mut scratch = [0u8; 256];
        loop {
            let heartbeat_on = self.heartbeat.is_some();
            tokio::select! {
                r = self.io.read(&mut scratch) => match r {
                    Ok(0) => {
                        self.closed = true;
                        return Err(Error::ConnectionClosed);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.closed = true;
                        return Err(if is_disconnect(&e) { Error::ConnectionClosed } else { Error::Io(e) });
                    }
                },
                () = self.next_heartbeat.as_mut(), if heartbeat_on => {
                    self.framed(|buf| buf.put_slice(KEEPALIVE));
                    self.flush_buf().await?;
                }
            }
        }
    }
}
