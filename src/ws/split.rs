//! Split halves of a [`Conn`](super::Conn), usable from two tasks.

use std::future::poll_fn;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

use super::close::{CloseCode, CloseFrame};
use super::conn::WriteCore;
use super::core::{check_outgoing, timed, Link, ReadCore, Settings};
use super::frame::{Frame, OpCode};
use super::io::{ReadState, WriteState};
use super::message::{Message, Utf8Bytes};
use crate::error::{Error, TimeoutKind};

struct Writer<S> {
    io: tokio::io::WriteHalf<S>,
    ws: WriteState,
}

struct Shared<S> {
    writer: Mutex<Writer<S>>,
    /// Control replies queued by the read half; drained by whoever holds
    /// the writer next. Bounded: only the newest pong is kept (RFC 6455
    /// §5.5.3 allows answering only the most recent ping).
    control: StdMutex<Vec<Frame>>,
    close_sent: AtomicBool,
    settings: Settings,
}

impl<S: AsyncWrite> Shared<S> {
    fn drain_control(&self, w: &mut Writer<S>) {
        let frames = std::mem::take(&mut *self.control.lock().unwrap_or_else(|p| p.into_inner()));
        for f in &frames {
            w.ws.feed(f);
        }
    }

    async fn flush(&self, t: Option<Duration>) -> Result<(), Error> {
        let mut w = self.writer.lock().await;
        self.drain_control(&mut w);
        let Writer { io, ws } = &mut *w;
        timed(t, TimeoutKind::Write, async {
            Ok(poll_fn(|cx| ws.poll_flush(io, cx)).await?)
        })
        .await
    }
}

/// The read half: reads frames and messages; answers pings and closes
/// through the shared writer.
pub struct ReadHalf<S> {
    io: tokio::io::ReadHalf<S>,
    rc: ReadCore,
    shared: Arc<Shared<S>>,
}

/// The write half: sends frames and messages. Cloneable handles are not
/// provided; wrap it in a mutex or a channel-fed task to share it.
pub struct WriteHalf<S> {
    shared: Arc<Shared<S>>,
}

impl<S> std::fmt::Debug for ReadHalf<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadHalf").finish_non_exhaustive()
    }
}

impl<S> std::fmt::Debug for WriteHalf<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteHalf").finish_non_exhaustive()
    }
}

pub(crate) fn split<S: AsyncRead + AsyncWrite>(
    io: S,
    rc: ReadCore,
    wc: WriteCore,
) -> (ReadHalf<S>, WriteHalf<S>) {
    let (r, w) = tokio::io::split(io);
    let shared = Arc::new(Shared {
        writer: Mutex::new(Writer { io: w, ws: wc.ws }),
        control: StdMutex::new(Vec::new()),
        close_sent: AtomicBool::new(wc.close_sent),
        settings: rc.settings,
    });
    (
        ReadHalf {
            io: r,
            rc,
            shared: shared.clone(),
        },
        WriteHalf { shared },
    )
}

struct HalfLink<'a, S> {
    io: &'a mut tokio::io::ReadHalf<S>,
    shared: &'a Shared<S>,
}

impl<S: AsyncRead + AsyncWrite> Link for HalfLink<'_, S> {
    fn poll_fill(&mut self, rs: &mut ReadState, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        rs.poll_fill(self.io, cx)
    }
    fn queue(&mut self, frame: Frame) {
        let mut q = self
            .shared
            .control
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if frame.opcode == OpCode::Pong {
            q.retain(|f| f.opcode != OpCode::Pong);
        }
        q.push(frame);
    }
    fn close_sent(&self) -> bool {
        self.shared.close_sent.load(Ordering::Acquire)
    }
    fn set_close_sent(&mut self) {
        self.shared.close_sent.store(true, Ordering::Release);
    }
    async fn flush(&mut self, t: Option<Duration>) -> Result<(), Error> {
        self.shared.flush(t).await
    }
    async fn after_control(&mut self, t: Option<Duration>) -> Result<(), Error> {
        self.shared.flush(t).await
    }
    fn flushes_after_control(&self) -> bool {
        true
    }
    fn over_high_water(&self, _s: &Settings) -> bool {
        false
    }
    async fn shutdown(&mut self) {
        let mut w = self.shared.writer.lock().await;
        let _ = w.io.shutdown().await;
    }
}

impl<S: AsyncRead + AsyncWrite> ReadHalf<S> {
    /// Reads the next frame; see [`Conn::read_frame`](super::Conn::read_frame).
    pub async fn read_frame(&mut self) -> Result<Frame, Error> {
        let mut link = HalfLink {
            io: &mut self.io,
            shared: &self.shared,
        };
        self.rc.read_frame(&mut link).await
    }

    /// Reads the next message; see [`Conn::read_message`](super::Conn::read_message).
    pub async fn read_message(&mut self) -> Result<Option<Message>, Error> {
        let mut link = HalfLink {
            io: &mut self.io,
            shared: &self.shared,
        };
        self.rc.read_message(&mut link).await
    }

    /// The peer's close frame, once received.
    pub fn peer_close_frame(&self) -> Option<&CloseFrame> {
        self.rc.peer_close()
    }
}

impl<S: AsyncRead + AsyncWrite> WriteHalf<S> {
    /// Buffers a frame; waits for the buffer to drain when it passes the
    /// high-water mark.
    pub async fn feed_frame(&mut self, frame: Frame) -> Result<(), Error> {
        check_outgoing(&frame)?;
        let s = self.shared.settings;
        let mut w = self.shared.writer.lock().await;
        if self.shared.close_sent.load(Ordering::Acquire) {
            return Err(Error::AlreadyClosing);
        }
        if frame.opcode == OpCode::Close {
            self.shared.close_sent.store(true, Ordering::Release);
        }
        self.shared.drain_control(&mut w);
        w.ws.feed(&frame);
        if w.ws.buffered() > s.high_water {
            let Writer { io, ws } = &mut *w;
            timed(s.write_timeout, TimeoutKind::Write, async {
                Ok(poll_fn(|cx| ws.poll_flush(io, cx)).await?)
            })
            .await?;
        }
        Ok(())
    }

    /// Writes out everything buffered.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.shared.flush(self.shared.settings.write_timeout).await
    }

    /// Writes one frame now.
    pub async fn write_frame(&mut self, frame: Frame) -> Result<(), Error> {
        self.feed_frame(frame).await?;
        self.flush().await
    }

    /// Sends a message as one frame and flushes.
    pub async fn send_message(&mut self, msg: Message) -> Result<(), Error> {
        self.write_frame(Frame::new(msg.opcode(), msg.into_payload()))
            .await
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), Error> {
        self.send_message(Message::Text(text.into())).await
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), Error> {
        self.send_message(Message::Binary(data.into())).await
    }

    /// Sends a ping.
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.write_frame(Frame::ping(payload)).await
    }

    /// Sends a close frame. The read half completes the handshake when the
    /// peer's close arrives (keep reading until it returns `Ok(None)`).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.write_frame(Frame::close(code, reason)).await
    }
}
