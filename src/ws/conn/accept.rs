//! The server's side of the upgrade over a stream: read the request head,
//! run the checks, write the `101` or the rejection, all within the
//! handshake timeout.

use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::deadline::run_until;
use super::Conn;
use crate::error::{Error, HandshakeError};
use crate::http::{HeadParser, RequestHead};
use crate::ws::config::Config;
use crate::ws::handshake::{self, Accepted};
use crate::ws::role::Role;
use crate::ws::timer::Timer;

/// A request head and the bytes read after it.
#[derive(Debug)]
pub struct HeadAndRest {
    /// The request head.
    pub head: RequestHead,
    /// Bytes read past the head (the start of what follows).
    pub rest: BytesMut,
}

/// Runs `f` until `deadline` (no bound without one), on `timer`.
async fn until<T>(
    timer: Timer,
    deadline: Option<Instant>,
    f: impl std::future::Future<Output = T>,
) -> Result<T, HandshakeError> {
    run_until(timer, deadline, f)
        .await
        .map_err(|()| HandshakeError::Timeout)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Server side: reads the request head, runs every handshake check
    /// ([`handshake::accept`] with `config.server`), and writes the `101`
    /// response, or the rejection response (then shuts the stream down and
    /// returns [`Error::Handshake`]). The whole exchange — reading the head
    /// and writing the answer — is bounded by `config.handshake_timeout`
    /// (a head that does not arrive in time gets a best-effort 408).
    pub async fn accept(mut stream: S, config: &Config) -> Result<(Self, Accepted), Error> {
        let deadline = config.handshake_timeout.map(|t| config.timer.now() + t);
        let read = read_request_head(&mut stream, config);
        let HeadAndRest { head, rest } = match until(config.timer, deadline, read).await {
            Ok(r) => r?,
            Err(e) => {
                // Best effort 408: the peer may not be reading either.
                let grace = config.handshake_timeout.unwrap_or_default() / 4;
                let _ = until(
                    config.timer,
                    Some(config.timer.now() + grace),
                    reject(&mut stream, &e),
                )
                .await;
                return Err(Error::Handshake(e));
            }
        };
        Self::answer(stream, head, rest, config, deadline).await
    }

    /// Server side, when the request head was already read (e.g. by a
    /// router that serves other paths too): checks it and writes the `101`
    /// or the rejection, within `config.handshake_timeout`.
    pub async fn accept_head(
        stream: S,
        head: RequestHead,
        leftover: BytesMut,
        config: &Config,
    ) -> Result<(Self, Accepted), Error> {
        let deadline = config.handshake_timeout.map(|t| config.timer.now() + t);
        Self::answer(stream, head, leftover, config, deadline).await
    }

    async fn answer(
        mut stream: S,
        head: RequestHead,
        leftover: BytesMut,
        config: &Config,
        deadline: Option<Instant>,
    ) -> Result<(Self, Accepted), Error> {
        match handshake::accept(head, &config.server) {
            #[allow(unused_mut)]
            Ok(mut accepted) => {
                #[cfg(feature = "deflate")]
                if let Some(d) = &config.deflate {
                    accepted.negotiate_deflate(d);
                }
                let mut out = BytesMut::with_capacity(256);
                accepted.write_response(&mut out);
                until(config.timer, deadline, async {
                    stream.write_all(&out).await?;
                    stream.flush().await
                })
                .await??;
                let conn = Self::from_upgraded(stream, Role::Server, config, leftover);
                #[cfg(feature = "deflate")]
                let conn = match accepted.deflate {
                    Some(p) => conn.with_deflate(p),
                    None => conn,
                };
                Ok((conn, accepted))
            }
            Err(e) => {
                let _ = until(config.timer, deadline, reject(&mut stream, &e)).await;
                Err(Error::Handshake(e))
            }
        }
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
