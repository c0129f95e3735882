//! Connection configuration.

use std::time::Duration;

use super::handshake::ServerConfig;
use super::limits::Limits;
use super::message::Message;

/// Keepalive: ping when the peer has been quiet for `interval`; fail the
/// connection (close 1011, [`TimeoutKind::Keepalive`](crate::error::TimeoutKind))
/// when nothing at all arrived for `timeout`.
///
/// Keepalive runs inside the read calls (`read_frame` / `read_message`), so
/// it needs a task that keeps reading, as every WebSocket application has.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Keepalive {
    /// Quiet time before a ping is sent.
    pub interval: Duration,
    /// Quiet time after which the connection is failed.
    pub timeout: Duration,
    /// Send this application message instead of a ping (for peers that
    /// expect an application-level heartbeat).
    pub message: Option<Message>,
}

/// Configuration of a [`Conn`](super::Conn). Build it with
/// [`Config::builder`]; `Config::default()` is:
///
/// | setting | default |
/// |---|---|
/// | `limits.max_frame_size` | 16 MiB |
/// | `limits.max_message_size` | 64 MiB |
/// | `limits.max_fragments` | 100,000 |
/// | `head_limits` | 16 KiB head, 64 headers |
/// | `handshake_timeout` | 10 s |
/// | `write_buffer_high_water` | 128 KiB |
/// | `write_timeout` | 30 s |
/// | `close_timeout` | 5 s |
/// | `auto_pong` | on |
/// | `keepalive` | off |
/// | `timer` | [`Timer::Tokio`](super::Timer::Tokio) |
/// | `vectored_threshold` | 4 KiB |
/// | `deflate` (feature `deflate`) | off |
///
/// ```
/// use std::time::Duration;
/// use rtwire::ws::Config;
/// let config = Config::builder()
///     .max_message_size(1 << 20)
///     .write_timeout(Some(Duration::from_secs(5)))
///     .keepalive(Duration::from_secs(20), Duration::from_secs(60))
///     .subprotocols(["chat"])
///     .build();
/// assert_eq!(config.limits.max_message_size, 1 << 20);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Frame, message and fragment limits.
    pub limits: Limits,
    /// Limits on the HTTP head of the handshake.
    pub head_limits: crate::http::Limits,
    /// Time allowed for the whole opening handshake (`None`: no limit).
    pub handshake_timeout: Option<Duration>,
    /// Buffered outgoing bytes above which writers wait (backpressure) and
    /// reading pauses until the buffer drains.
    pub write_buffer_high_water: usize,
    /// Time a write may make no progress before failing with
    /// [`TimeoutKind::Write`](crate::error::TimeoutKind::Write).
    pub write_timeout: Option<Duration>,
    /// Time to wait for the peer's side of the closing handshake.
    pub close_timeout: Duration,
    /// Answer pings with pongs automatically.
    pub auto_pong: bool,
    /// Keepalive pings and dead-peer detection.
    pub keepalive: Option<Keepalive>,
    /// What the timeouts above run on: tokio's timer (the default; the
    /// runtime needs its time driver) or rtwire's own timer thread (the
    /// runtime needs none). See [`Timer`](super::Timer).
    pub timer: super::timer::Timer,
    /// Payloads of at least this size are written with a vectored write
    /// (header + payload, no copy) instead of being copied into the write
    /// buffer (server role; a client must mask, which copies).
    pub vectored_threshold: usize,
    /// Server-side handshake policy (subprotocols, origin, auth, topics).
    pub server: ServerConfig,
    /// Client side: subprotocols to offer.
    pub client_subprotocols: Vec<String>,
    /// Client side: extra request headers.
    pub client_headers: Vec<(String, String)>,
    /// permessage-deflate (RFC 7692): `None` is off; `Some` makes a server
    /// accept an acceptable offer and a client offer it. See
    /// [`deflate`](crate::ws::deflate).
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::ws::deflate::DeflateConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            head_limits: crate::http::Limits::default(),
            handshake_timeout: Some(Duration::from_secs(10)),
            write_buffer_high_water: 128 * 1024,
            write_timeout: Some(Duration::from_secs(30)),
            close_timeout: Duration::from_secs(5),
            auto_pong: true,
            keepalive: None,
            timer: super::timer::Timer::Tokio,
            vectored_threshold: 4096,
            server: ServerConfig::default(),
            client_subprotocols: Vec::new(),
            client_headers: Vec::new(),
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}

impl Config {
    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder(Config::default())
    }
}

/// Builder for [`Config`].
#[derive(Clone, Debug)]
pub struct ConfigBuilder(Config);

impl ConfigBuilder {
    /// Largest frame payload accepted.
    pub fn max_frame_size(mut self, n: usize) -> Self {
        self.0.limits.max_frame_size = n;
        self
    }
    /// Largest message accepted.
    pub fn max_message_size(mut self, n: usize) -> Self {
        self.0.limits.max_message_size = n;
        self
    }
    /// Most frames per message.
    pub fn max_fragments(mut self, n: usize) -> Self {
        self.0.limits.max_fragments = n;
        self
    }
    /// Limits on the handshake's HTTP head.
    pub fn head_limits(mut self, limits: crate::http::Limits) -> Self {
        self.0.head_limits = limits;
        self
    }
    /// Time allowed for the opening handshake.
    pub fn handshake_timeout(mut self, t: Option<std::time::Duration>) -> Self {
        self.0.handshake_timeout = t;
        self
    }
    /// Write buffer high-water mark.
    pub fn write_buffer_high_water(mut self, n: usize) -> Self {
        self.0.write_buffer_high_water = n;
        self
    }
    /// What the timeouts run on (see [`Timer`](super::Timer)).
    pub fn timer(mut self, timer: super::timer::Timer) -> Self {
        self.0.timer = timer;
        self
    }
    /// Write timeout.
    pub fn write_timeout(mut self, t: Option<std::time::Duration>) -> Self {
        self.0.write_timeout = t;
        self
    }
    /// Close timeout.
    pub fn close_timeout(mut self, t: std::time::Duration) -> Self {
        self.0.close_timeout = t;
        self
    }
    /// Automatic pongs.
    pub fn auto_pong(mut self, on: bool) -> Self {
        self.0.auto_pong = on;
        self
    }
    /// Keepalive with pings.
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.0.keepalive = Some(Keepalive {
            interval,
            timeout,
            message: None,
        });
        self
    }
    /// Keepalive with an application message instead of pings.
    pub fn keepalive_message(mut self, interval: Duration, timeout: Duration, m: Message) -> Self {
        self.0.keepalive = Some(Keepalive {
            interval,
            timeout,
            message: Some(m),
        });
        self
    }
    /// Vectored write threshold.
    pub fn vectored_threshold(mut self, n: usize) -> Self {
        self.0.vectored_threshold = n;
        self
    }
    /// Server handshake policy.
    pub fn server(mut self, server: ServerConfig) -> Self {
        self.0.server = server;
        self
    }
    /// Server subprotocols, most preferred first (client: the ones offered).
    pub fn subprotocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let p: Vec<String> = protocols.into_iter().map(Into::into).collect();
        self.0.server = std::mem::take(&mut self.0.server).subprotocols(p.clone());
        self.0.client_subprotocols = p;
        self
    }
    /// Client: an extra request header.
    pub fn client_header(mut self, name: &str, value: &str) -> Self {
        self.0.client_headers.push((name.into(), value.into()));
        self
    }
    /// Turns on permessage-deflate with `config` (feature `deflate`).
    #[cfg(feature = "deflate")]
    pub fn deflate(mut self, config: crate::ws::deflate::DeflateConfig) -> Self {
        self.0.deflate = Some(config);
        self
    }
    /// The finished configuration.
    pub fn build(self) -> Config {
        self.0
    }
}
