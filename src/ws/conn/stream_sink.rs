//! `futures` `Stream` and `Sink` for [`Conn`] and its halves (feature
//! `futures`), straight on the poll-based read engine and writer: no
//! boxed futures, no extra buffering.
//!
//! - `Stream<Item = Result<Message, Error>>`: [`Conn::read_message`] one
//!   item at a time. It ends (`None`) after the closing handshake, or
//!   after the error that ended the connection.
//! - `Sink<Message>`: `poll_ready` is the backpressure wait (the write
//!   queue above `write_buffer_high_water` drains first), `start_send`
//!   queues the message (coalesced, nothing written), `poll_flush` writes
//!   everything queued, `poll_close` sends a close frame with 1000
//!   (Normal Closure) and flushes it. On a whole [`Conn`], `poll_close`
//!   then finishes the closing handshake like [`Conn::close`]; on a
//!   [`WriteHalf`] the [`ReadHalf`] does (read it until it ends).
//!
//! Every poll keeps its progress in the connection, so a dropped
//! `send`/`flush`/`close` future loses nothing and the next call resumes.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};

use super::wire::Wire;
use super::{Conn, ReadHalf, WriteHalf};
use crate::error::{Error, TimeoutKind};
use crate::ws::close::CloseCode;
use crate::ws::frame::{Frame, OpCode};
use crate::ws::message::Message;

/// `read_message`'s result as a stream item: the connection ending (by
/// the handshake, or after the error that ended it) ends the stream.
pub(super) fn item(r: Result<Option<Message>, Error>) -> Option<Result<Message, Error>> {
    match r {
        Ok(Some(m)) => Some(Ok(m)),
        Ok(None) | Err(Error::ConnectionClosed) => None,
        Err(e) => Some(Err(e)),
    }
}

/// The frame a message is sent as.
pub(super) fn frame_of(msg: Message) -> Frame {
    Frame::new(msg.opcode(), msg.into_payload())
}

/// The close frame `poll_close` sends.
pub(super) fn normal_close() -> Frame {
    Frame::close(CloseCode::NORMAL, "")
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for Conn<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let (r, mut w) = self.get_mut().wire();
        r.poll_message(&mut w, cx).map(item)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for Conn<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.reader.is_closed() {
            return Poll::Ready(Err(Error::ConnectionClosed));
        }
        this.writer().poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, msg: Message) -> Result<(), Error> {
        let this = self.get_mut();
        if this.reader.is_closed() {
            return Err(Error::ConnectionClosed);
        }
        let frame = frame_of(msg);
        this.tx.check(&frame)?;
        this.tx.start_send(&frame);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.reader.is_closed() && this.tx.buffered() == 0 {
            return Poll::Ready(Ok(()));
        }
        this.writer().poll_flush(cx)
    }

    /// Sends close 1000 and flushes it, then waits (up to the close
    /// timeout) for the peer's close, discarding data that arrives
    /// meanwhile, as [`Conn::close`] does.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.reader.is_closed() {
            return Poll::Ready(Ok(()));
        }
        // Fixed on the first call: a resumed close keeps its timeout.
        let deadline = this.reader.close_deadline();
        this.tx.push_close(&normal_close());
        loop {
            let (r, mut w) = this.wire();
            match r.poll_next(&mut w, cx) {
                Poll::Ready(Ok(f)) if f.opcode == OpCode::Close => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(_)) => continue,
                Poll::Ready(Err(Error::ConnectionClosed)) => return Poll::Ready(Ok(())),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
            // Waiting for the peer's close (the read also pushed our close
            // out). The reader's timer may have been armed for a keepalive
            // instant; re-arming it for the close deadline can only make
            // that wake later than the close deadline, which ends us then.
            ready!(this.reader.deadline.poll_at(cx, deadline));
            let (_, mut w) = this.wire();
            // Best effort, once: a peer that does not read may never take
            // a TLS close_notify.
            let _ = w.poll_shutdown(cx);
            this.reader.set_closed();
            return Poll::Ready(Err(Error::Timeout(TimeoutKind::Close)));
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_read_message(cx).map(item)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_write_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, msg: Message) -> Result<(), Error> {
        self.get_mut().start_send_message(msg)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_write_flush(cx)
    }

    /// Sends close 1000 (unless a close is already queued, e.g. the read
    /// half's reply to the peer's close) and flushes. The read half
    /// finishes the handshake: keep reading it until it ends.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_write_close(cx)
    }
}
