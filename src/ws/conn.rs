//! [`Conn`]: a WebSocket connection over any `AsyncRead + AsyncWrite`.

use std::future::poll_fn;
use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::close::{CloseCode, CloseFrame};
use super::codec::{Decoder, Encoder, Role};
use super::config::Config;
use super::core::{check_outgoing, timed, Link, ReadCore, Settings};
use super::frame::{Frame, OpCode};
use super::handshake::{self, Accepted, ClientHandshake};
use super::io::{ReadState, WriteState};
use super::message::{Message, Utf8Bytes};
use crate::error::{Error, HandshakeError, TimeoutKind};
use crate::http::{HeadParser, RequestHead, ResponseHead};

/// Write-side state of a whole connection.
#[derive(Debug)]
pub(crate) struct WriteCore {
    pub(crate) ws: WriteState,
    pub(crate) close_sent: bool,
}

/// A WebSocket connection, server or client, over any stream `S`
/// (a `TcpStream`, a TLS stream, or the IO an HTTP server's upgrade hands
/// over).
///
/// Two levels of API:
/// - frames: [`read_frame`](Self::read_frame) returns every frame, control
///   frames included, with its payload split off the read buffer (zero copy);
///   [`write_frame`](Self::write_frame) writes one.
/// - messages: [`read_message`](Self::read_message) assembles fragments and
///   hides control frames; [`send_text`](Self::send_text),
///   [`send_binary`](Self::send_binary), [`send_fragmented`](Self::send_fragmented),
///   [`ping`](Self::ping), [`close`](Self::close).
///
/// Pings are answered automatically (unless turned off in [`Config`]), the
/// closing handshake is run for you, and a protocol error closes the
/// connection with its close code (1002, 1007, 1009) before it is returned.
///
/// **Writes are coalesced.** `feed*` methods encode into a write buffer;
/// the buffer is written when it passes the high-water mark, on
/// [`flush`](Self::flush), by the `send*` methods, and — automatically —
/// whenever a read call has to wait for the peer. An echo loop that feeds
/// every reply therefore answers a whole read's worth of frames with one
/// write.
///
/// **Cancellation safety:** `read_frame` and `read_message` may be dropped
/// at any await point (e.g. in `tokio::select!`) without losing bytes or
/// corrupting state; the next call resumes.
///
/// ```no_run
/// use rtwire::ws::{Config, Conn, Message};
/// # async fn run() -> Result<(), rtwire::Error> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// let (tcp, _) = listener.accept().await?;
/// let (mut conn, accepted) = Conn::accept(tcp, &Config::default()).await?;
/// println!("upgrade on {}", accepted.head.path());
/// while let Some(msg) = conn.read_message().await? {
///     conn.feed_message(msg).await?; // flushed when the next read waits
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Conn<S> {
    io: S,
    rc: ReadCore,
    wc: WriteCore,
}

struct ConnLink<'a, S> {
    io: &'a mut S,
    wc: &'a mut WriteCore,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Link for ConnLink<'_, S> {
    fn poll_fill(&mut self, rs: &mut ReadState, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.wc.ws.buffered() > 0 {
            // Push out replies while waiting for input; a stalled write
            // does not stop reading (backpressure handles the bound).
            if let Poll::Ready(Err(e)) = self.wc.ws.poll_flush(self.io, cx) {
                return Poll::Ready(Err(e));
            }
        }
        rs.poll_fill(self.io, cx)
    }
    fn queue(&mut self, frame: Frame) {
        self.wc.ws.feed(&frame);
    }
    fn close_sent(&self) -> bool {
        self.wc.close_sent
    }
    fn set_close_sent(&mut self) {
        self.wc.close_sent = true;
    }
    async fn flush(&mut self, t: Option<Duration>) -> Result<(), Error> {
        let (io, ws) = (&mut *self.io, &mut self.wc.ws);
        timed(t, TimeoutKind::Write, async {
            Ok(poll_fn(|cx| ws.poll_flush(io, cx)).await?)
        })
        .await
    }
    async fn after_control(&mut self, _t: Option<Duration>) -> Result<(), Error> {
        Ok(())
    }
    fn flushes_after_control(&self) -> bool {
        false
    }
    fn over_high_water(&self, s: &Settings) -> bool {
        self.wc.ws.buffered() > s.high_water
    }
    async fn shutdown(&mut self) {
        let _ = self.io.shutdown().await;
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Wraps a stream whose handshake is already done (by this crate or by
    /// an HTTP server's upgrade). `leftover` holds bytes read past the
    /// handshake, which are the start of the frame stream.
    pub fn from_upgraded(io: S, role: Role, config: &Config, leftover: BytesMut) -> Self {
        let decoder = Decoder::new(role, config.limits);
        // An empty leftover may still reference the handshake's read buffer
        // (shared with the request head): do not let it pin that memory.
        let leftover = if leftover.is_empty() {
            BytesMut::new()
        } else {
            leftover
        };
        Conn {
            io,
            rc: ReadCore::new(ReadState::new(decoder, leftover), role, config),
            wc: WriteCore {
                ws: WriteState::new(Encoder::new(role), config.vectored_threshold),
                close_sent: false,
            },
        }
    }

    /// Server side: reads the request head, runs every handshake check
    /// ([`handshake::accept`] with `config.server`), and writes the `101`
    /// response, or the rejection response (then shuts the stream down and
    /// returns [`Error::Handshake`]). The whole exchange is bounded by
    /// `config.handshake_timeout`.
    pub async fn accept(mut stream: S, config: &Config) -> Result<(Self, Accepted), Error> {
        let read = read_request_head(&mut stream, config);
        let (head, leftover) = match config.handshake_timeout {
            Some(t) => match tokio::time::timeout(t, read).await {
                Ok(r) => r,
                Err(_) => {
                    // Best effort 408: the peer may not be reading either.
                    let e = HandshakeError::Timeout;
                    let _ = tokio::time::timeout(t / 4, reject(&mut stream, &e)).await;
                    Err(Error::Handshake(e))
                }
            },
            None => read.await,
        }?
        .into_parts();
        Self::accept_head(stream, head, leftover, config).await
    }

    /// Server side, when the request head was already read (e.g. by a
    /// router that serves other paths too): checks it and writes the `101`
    /// or the rejection.
    pub async fn accept_head(
        mut stream: S,
        head: RequestHead,
        leftover: BytesMut,
        config: &Config,
    ) -> Result<(Self, Accepted), Error> {
        match handshake::accept(head, &config.server) {
            Ok(accepted) => {
                let mut out = BytesMut::with_capacity(256);
                accepted.write_response(&mut out);
                stream.write_all(&out).await?;
                stream.flush().await?;
                Ok((
                    Self::from_upgraded(stream, Role::Server, config, leftover),
                    accepted,
                ))
            }
            Err(e) => {
                reject(&mut stream, &e).await;
                Err(Error::Handshake(e))
            }
        }
    }

    /// Client side: sends the upgrade request for `url`
    /// (`ws://host[:port]/path?query`; `wss://` when `stream` is already
    /// TLS) with `config.client_subprotocols` and `config.client_headers`,
    /// and validates the `101` response. Returns the connection and the
    /// response head (e.g. for the selected subprotocol).
    pub async fn connect(
        mut stream: S,
        url: &str,
        config: &Config,
    ) -> Result<(Self, ResponseHead), Error> {
        let (host, path) = split_url(url).ok_or_else(|| {
            Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "URL must be ws://host[:port]/path",
            ))
        })?;
        let fut = async {
            let mut out = BytesMut::with_capacity(256);
            let protos: Vec<&str> = config
                .client_subprotocols
                .iter()
                .map(|s| s.as_str())
                .collect();
            let headers: Vec<(&str, &str)> = config
                .client_headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let hs = ClientHandshake::new(host, &path, &protos, &headers, &mut out)?;
            stream.write_all(&out).await?;
            stream.flush().await?;
            let mut parser = HeadParser::new(config.head_limits);
            let mut buf = BytesMut::with_capacity(1024);
            let resp = loop {
                if let Some(resp) = parser
                    .parse_response(&mut buf)
                    .map_err(HandshakeError::Head)?
                {
                    break resp;
                }
                if tokio::io::AsyncReadExt::read_buf(&mut stream, &mut buf).await? == 0 {
                    return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
                }
            };
            hs.validate(&resp)?;
            Ok((resp, buf))
        };
        let (resp, leftover) = match config.handshake_timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .map_err(|_| Error::Handshake(HandshakeError::Timeout))??,
            None => fut.await?,
        };
        Ok((
            Self::from_upgraded(stream, Role::Client, config, leftover),
            resp,
        ))
    }

    fn parts(&mut self) -> (&mut ReadCore, ConnLink<'_, S>) {
        (
            &mut self.rc,
            ConnLink {
                io: &mut self.io,
                wc: &mut self.wc,
            },
        )
    }

    /// Reads the next frame, control frames included. Pings are answered
    /// (when auto-pong is on); a close frame is answered and the stream shut
    /// down before it is returned; after that, [`Error::ConnectionClosed`].
    pub async fn read_frame(&mut self) -> Result<Frame, Error> {
        let (rc, mut link) = self.parts();
        rc.read_frame(&mut link).await
    }

    /// Reads the next complete message (fragments assembled, control frames
    /// handled). `Ok(None)` once the closing handshake is done.
    pub async fn read_message(&mut self) -> Result<Option<Message>, Error> {
        let (rc, mut link) = self.parts();
        rc.read_message(&mut link).await
    }

    fn check_write(&self, frame: &Frame) -> Result<(), Error> {
        if self.rc.is_closed() {
            return Err(Error::ConnectionClosed);
        }
        if self.wc.close_sent {
            return Err(if frame.opcode == OpCode::Close {
                Error::ConnectionClosed
            } else {
                Error::AlreadyClosing
            });
        }
        check_outgoing(frame)
    }

    /// Buffers a frame (no write unless the buffer passes its high-water
    /// mark, in which case this waits for it to drain: backpressure).
    pub async fn feed_frame(&mut self, frame: Frame) -> Result<(), Error> {
        self.check_write(&frame)?;
        if frame.opcode == OpCode::Close {
            self.wc.close_sent = true;
        }
        self.wc.ws.feed(&frame);
        self.backpressure().await
    }

    /// Waits for the write buffer to drain when it is above the high-water
    /// mark (a sync check on the hot path; the flush future is boxed).
    async fn backpressure(&mut self) -> Result<(), Error> {
        let s = self.rc.settings;
        if self.wc.ws.buffered() > s.high_water {
            let (_, mut link) = self.parts();
            Box::pin(link.flush(s.write_timeout)).await?;
        }
        Ok(())
    }

    /// Writes one frame now (buffers it, then flushes).
    pub async fn write_frame(&mut self, frame: Frame) -> Result<(), Error> {
        self.feed_frame(frame).await?;
        self.flush().await
    }

    /// Buffers an already-encoded frame, e.g. one encoded once with a
    /// server-role [`Encoder`] and sent to many connections (server frames
    /// are unmasked, so the same bytes fit every connection). The bytes must
    /// be exactly one or more complete frames. Server role only: a client
    /// must mask every frame with a fresh key, so this returns an error.
    pub async fn feed_encoded(&mut self, frames: Bytes) -> Result<(), Error> {
        if self.rc.role != Role::Server {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "pre-encoded frames are unmasked: server role only",
            )));
        }
        if self.wc.close_sent {
            return Err(Error::AlreadyClosing);
        }
        self.wc.ws.feed_raw(frames);
        self.backpressure().await
    }

    /// Writes out everything buffered, bounded by the write timeout.
    pub async fn flush(&mut self) -> Result<(), Error> {
        let t = self.rc.settings.write_timeout;
        let (_, mut link) = self.parts();
        link.flush(t).await
    }

    /// Bytes buffered and not yet written.
    pub fn buffered(&self) -> usize {
        self.wc.ws.buffered()
    }

    /// Buffers a message as one frame.
    pub async fn feed_message(&mut self, msg: Message) -> Result<(), Error> {
        let frame = Frame::new(msg.opcode(), msg.into_payload());
        self.feed_frame(frame).await
    }

    /// Sends a message as one frame and flushes.
    pub async fn send_message(&mut self, msg: Message) -> Result<(), Error> {
        self.feed_message(msg).await?;
        self.flush().await
    }

    /// Sends a text message and flushes.
    pub async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), Error> {
        self.send_message(Message::Text(text.into())).await
    }

    /// Sends a binary message and flushes.
    pub async fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), Error> {
        self.send_message(Message::Binary(data.into())).await
    }

    /// Sends `msg` split into frames of at most `frame_size` bytes (at
    /// least one frame, even for an empty message), then flushes. Each frame
    /// is a slice of the payload: no copy.
    pub async fn send_fragmented(&mut self, msg: Message, frame_size: usize) -> Result<(), Error> {
        let opcode = msg.opcode();
        let payload = msg.into_payload();
        let size = frame_size.max(1);
        let mut start = 0;
        loop {
            let end = (start + size).min(payload.len());
            let fin = end == payload.len();
            let op = if start == 0 {
                opcode
            } else {
                OpCode::Continuation
            };
            self.feed_frame(Frame::new(op, payload.slice(start..end)).with_fin(fin))
                .await?;
            if fin {
                break;
            }
            start = end;
        }
        self.flush().await
    }

    /// Sends a ping (payload at most 125 bytes) and flushes.
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.write_frame(Frame::ping(payload)).await
    }

    /// Runs the closing handshake: sends a close frame with `code` and
    /// `reason`, waits (up to the close timeout) for the peer's close,
    /// discarding data that arrives meanwhile, and shuts the stream down.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if self.rc.is_closed() {
            return Ok(());
        }
        if !self.wc.close_sent {
            self.wc.ws.feed(&Frame::close(code, reason));
            self.wc.close_sent = true;
        }
        let close_timeout = self.rc.settings.close_timeout;
        let (rc, mut link) = self.parts();
        link.flush(Some(close_timeout)).await?;
        let waited = tokio::time::timeout(close_timeout, async {
            loop {
                match rc.read_frame(&mut link).await {
                    Ok(f) if f.opcode == OpCode::Close => return Ok(()),
                    Ok(_) => {}
                    Err(Error::ConnectionClosed) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        if !rc.is_closed() {
            link.shutdown().await;
            rc.set_closed();
        }
        match waited {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(TimeoutKind::Close)),
        }
    }

    /// The peer's close frame, once received (`None` if it had no code).
    pub fn peer_close_frame(&self) -> Option<&CloseFrame> {
        self.rc.peer_close()
    }

    /// Whether the connection is finished (close handshake done, or failed).
    pub fn is_closed(&self) -> bool {
        self.rc.is_closed()
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.rc.role
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The underlying stream, mutably (writing to it directly corrupts the
    /// frame stream).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// Splits into a read half and a write half usable from two tasks.
    /// The read half still answers pings and closes through the shared
    /// writer.
    pub fn split(self) -> (super::split::ReadHalf<S>, super::split::WriteHalf<S>) {
        super::split::split(self.io, self.rc, self.wc)
    }
}

#[cfg(feature = "serde")]
impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Sends `value` as a JSON text message (like gorilla's `WriteJSON`).
    pub async fn send_json<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), Error> {
        let text = serde_json::to_string(value).map_err(Error::Json)?;
        self.send_text(text).await
    }

    /// Reads the next message and parses it as JSON (text or binary).
    /// `Ok(None)` once the closing handshake is done.
    pub async fn read_json<T: serde::de::DeserializeOwned>(&mut self) -> Result<Option<T>, Error> {
        match self.read_message().await? {
            Some(m) => Ok(Some(
                serde_json::from_slice(m.payload()).map_err(Error::Json)?,
            )),
            None => Ok(None),
        }
    }
}

/// A request head and the bytes read after it.
#[derive(Debug)]
pub struct HeadAndRest {
    /// The request head.
    pub head: RequestHead,
    /// Bytes read past the head (the start of what follows).
    pub rest: BytesMut,
}

impl HeadAndRest {
    fn into_parts(self) -> (RequestHead, BytesMut) {
        (self.head, self.rest)
    }
}

/// Reads one request head from `stream` with `config.head_limits`.
/// On a bad or oversized head the rejection response is written, the
/// stream shut down, and the error returned. No timeout: wrap the call (as
/// [`Conn::accept`] does with `config.handshake_timeout`).
pub async fn read_request_head<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    config: &Config,
) -> Result<HeadAndRest, Error> {
    let mut parser = HeadParser::new(config.head_limits);
    let mut buf = BytesMut::new();
    loop {
        match parser.parse_request(&mut buf) {
            Ok(Some(head)) => return Ok(HeadAndRest { head, rest: buf }),
            Ok(None) => {}
            Err(e) => {
                let e = HandshakeError::Head(e);
                reject(stream, &e).await;
                return Err(Error::Handshake(e));
            }
        }
        buf.reserve(1024);
        if tokio::io::AsyncReadExt::read_buf(stream, &mut buf).await? == 0 {
            return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
        }
    }
}

/// Writes the rejection response for `e` and shuts the stream down
/// (errors ignored: the peer may already be gone).
pub async fn reject<S: AsyncWrite + Unpin>(stream: &mut S, e: &HandshakeError) {
    let mut out = BytesMut::new();
    e.write_response(&mut out);
    let _ = stream.write_all(&out).await;
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
}

/// Splits `ws://host[:port]/path?query` into (`host[:port]`, `/path?query`).
fn split_url(url: &str) -> Option<(&str, String)> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))?;
    let (host, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    if host.is_empty() {
        return None;
    }
    Some((host, path))
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_host_and_target() {
        assert_eq!(split_url("ws://a:1/x?y=1"), Some(("a:1", "/x?y=1".into())));
        assert_eq!(split_url("ws://a?y=1"), Some(("a", "/?y=1".into())));
        assert_eq!(split_url("wss://a"), Some(("a", "/".into())));
        assert_eq!(split_url("http://a/"), None);
        assert_eq!(split_url("ws:///x"), None);
    }
}
