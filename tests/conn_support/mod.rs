//! Helpers shared by the `conn_*` and `interop_*` integration tests: a raw
//! WebSocket peer over real loopback TCP (its frames are encoded and decoded
//! with rtwire's sans-IO codec, so the test controls every byte on the wire),
//! and small utilities. Included with `mod conn_support;`.
#![allow(dead_code)]

pub mod chaos_io;
pub mod write_script;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use rtwire::http::{HeadParser, ResponseHead};
use rtwire::ws::{Config, Conn, Decoder, Encoder, Frame, Limits, OpCode, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// Upper bound for anything that should happen promptly.
pub const BOUND: Duration = Duration::from_secs(10);

/// Runs `f` with an upper bound; panics with `what` if it takes longer.
///
/// The bound is real (wall-clock) time, not a tokio timer, so it means the
/// same with tokio's paused clock: it registers no timer that auto-advance
/// could jump to, and only fires when the test is really stuck.
pub async fn bounded<F: Future>(what: &str, f: F) -> F::Output {
    within(BOUND, what, f).await
}

/// Runs `f` with a specific upper bound in real time (see [`bounded`]).
pub async fn within<F: Future>(t: Duration, what: &str, f: F) -> F::Output {
    tokio::select! {
        biased;
        v = f => v,
        () = watchdog::RealDeadline::after(t) => panic!("timed out after {t:?} (real time): {what}"),
    }
}

/// A wall-clock deadline for stuck tests that registers no tokio timer: one
/// background thread wakes every waiting deadline a few times a second, and
/// each checks `std::time::Instant` when it is polled.
mod watchdog {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Mutex, Once};
    use std::task::{Context, Poll, Waker};
    use std::time::{Duration, Instant};

    static WAITING: Mutex<Vec<Waker>> = Mutex::new(Vec::new());
    static TICKER: Once = Once::new();

    fn register(w: &Waker) {
        TICKER.call_once(|| {
            std::thread::spawn(|| loop {
                std::thread::sleep(Duration::from_millis(100));
                let wakers = std::mem::take(&mut *WAITING.lock().unwrap());
                for w in wakers {
                    w.wake();
                }
            });
        });
        let mut waiting = WAITING.lock().unwrap();
        if !waiting.iter().any(|x| x.will_wake(w)) {
            waiting.push(w.clone());
        }
    }

    pub struct RealDeadline(Instant);

    impl RealDeadline {
        pub fn after(t: Duration) -> Self {
            RealDeadline(Instant::now() + t)
        }
    }

    impl Future for RealDeadline {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if Instant::now() >= self.0 {
                return Poll::Ready(());
            }
            register(cx.waker());
            Poll::Pending
        }
    }
}

/// Lets woken tasks and loopback I/O already in the kernel run, without
/// moving a paused clock: while a task is yielding, the runtime polls its
/// I/O driver without blocking and never auto-advances.
pub async fn settle() {
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
}

/// Awaits `f` with a paused clock held still. Auto-advance jumps to the next
/// timer whenever the runtime is idle, even while loopback I/O is on its way
/// to a task (an I/O hop always goes through an idle park); a spinning
/// `yield_now` keeps the runtime busy, so `f` must complete with no time
/// passing. A `f` that needs a timer to fire never completes: that is a
/// failure, caught by the caller's [`bounded`].
pub async fn hold_clock<F: Future>(f: F) -> F::Output {
    tokio::select! {
        biased;
        v = f => v,
        () = async { loop { tokio::task::yield_now().await } } => unreachable!(),
    }
}

/// A listener on 127.0.0.1, port 0.
pub async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("local_addr");
    (l, a)
}

/// Accepts one TCP connection and runs the server handshake.
pub async fn accept(l: &TcpListener, config: &Config) -> Conn<TcpStream> {
    let (tcp, _) = l.accept().await.expect("accept");
    tcp.set_nodelay(true).expect("nodelay");
    let (conn, _) = Conn::accept(tcp, config).await.expect("server handshake");
    conn
}

/// A valid upgrade request with `extra` header lines (each ending in CRLF).
pub fn upgrade_request(addr: SocketAddr, path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Reads one response head from `tcp` (bytes after it stay in the
/// returned buffer).
pub async fn read_response_head(tcp: &mut TcpStream) -> (ResponseHead, BytesMut) {
    let mut parser = HeadParser::new(Default::default());
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if let Some(h) = parser.parse_response(&mut buf).expect("response head") {
            return (h, buf);
        }
        let n = tcp.read_buf(&mut buf).await.expect("read response");
        assert!(n > 0, "EOF before the response head: {buf:?}");
    }
}

/// Sends `request` on a fresh connection, reads the response head and the
/// body until the server closes. For rejected handshakes.
pub async fn http_exchange(addr: SocketAddr, request: &str) -> (ResponseHead, Vec<u8>) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request.as_bytes())
        .await
        .expect("send request");
    let (head, rest) = read_response_head(&mut tcp).await;
    let mut body = rest.to_vec();
    // The server shuts the stream down after a rejection: read to EOF.
    let _ = tcp.read_to_end(&mut body).await;
    (head, body)
}

/// The reading side of a raw peer.
pub struct RawReader {
    pub tcp: OwnedReadHalf,
    pub dec: Decoder,
    pub buf: BytesMut,
}

/// The writing side of a raw peer (client role: masks every frame).
pub struct RawWriter {
    pub tcp: OwnedWriteHalf,
    pub enc: Encoder,
}

/// A raw WebSocket client: handshake by hand, then frames encoded with
/// rtwire's client [`Encoder`] and written as bytes the test controls.
pub struct RawClient {
    pub r: RawReader,
    pub w: RawWriter,
    pub resp: ResponseHead,
}

impl RawReader {
    /// The next frame; `Ok(None)` at end of stream.
    pub async fn recv(&mut self) -> io::Result<Option<Frame>> {
        loop {
            match self.dec.decode(&mut self.buf) {
                Ok(Some(f)) => return Ok(Some(f)),
                Ok(None) => {}
                Err(e) => panic!("server sent an invalid frame: {e}"),
            }
            self.buf.reserve(64 * 1024);
            if self.tcp.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// A frame that has already arrived, without waiting: `Ok(None)` when
    /// nothing complete is there yet, an `UnexpectedEof` error at end of
    /// stream.
    pub fn try_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            match self.dec.decode(&mut self.buf) {
                Ok(Some(f)) => return Ok(Some(f)),
                Ok(None) => {}
                Err(e) => panic!("server sent an invalid frame: {e}"),
            }
            self.buf.reserve(64 * 1024);
            match self.tcp.try_read_buf(&mut self.buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// The next frame, which must arrive.
    pub async fn frame(&mut self) -> Frame {
        bounded("frame from server", self.recv())
            .await
            .expect("read")
            .expect("EOF instead of a frame")
    }

    /// Reads until a close frame and returns its code (`None` for an empty
    /// close); data frames before it are skipped.
    pub async fn expect_close(&mut self) -> Option<u16> {
        bounded("close frame from server", async {
            loop {
                match self.recv().await {
                    Ok(Some(f)) if f.opcode == OpCode::Close => {
                        return (f.payload.len() >= 2)
                            .then(|| u16::from_be_bytes([f.payload[0], f.payload[1]]));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("EOF before a close frame"),
                    Err(e) => panic!("read error before a close frame: {e}"),
                }
            }
        })
        .await
    }

    /// Asserts that the server closes the TCP connection within `t`
    /// (anything still arriving must be non-data).
    pub async fn expect_eof_within(&mut self, t: Duration) {
        within(t, "server closing TCP", async {
            loop {
                match self.recv().await {
                    Ok(None) => return,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return,
                    Err(e) => panic!("read error waiting for EOF: {e}"),
                    Ok(Some(f)) => assert!(f.opcode.is_control(), "data frame after close: {f:?}"),
                }
            }
        })
        .await
    }
}

impl RawWriter {
    /// Encodes `frame` (masked) onto `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) {
        self.enc.encode(frame, out);
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: Frame) {
        let mut out = BytesMut::new();
        self.enc.encode(&frame, &mut out);
        self.tcp.write_all(&out).await.expect("send frame");
    }

    /// Sends raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).await.expect("send raw");
    }
}

impl RawClient {
    /// Connects to `addr`, upgrades on `path` with `extra` headers, and
    /// asserts a `101`.
    pub async fn connect(addr: SocketAddr, path: &str, extra: &str) -> RawClient {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        tcp.write_all(upgrade_request(addr, path, extra).as_bytes())
            .await
            .expect("send upgrade");
        let (resp, rest) = bounded("101 response", read_response_head(&mut tcp)).await;
        assert_eq!(resp.status(), 101, "upgrade refused: {resp:?}");
        let (r, w) = tcp.into_split();
        RawClient {
            r: RawReader {
                tcp: r,
                dec: Decoder::new(Role::Client, Limits::unlimited()),
                buf: rest,
            },
            w: RawWriter {
                tcp: w,
                enc: Encoder::new(Role::Client),
            },
            resp,
        }
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: Frame) {
        self.w.send(frame).await
    }

    /// The next frame, which must arrive.
    pub async fn frame(&mut self) -> Frame {
        self.r.frame().await
    }
}

/// A masked frame header for a payload of `len` bytes with `key`, built by
/// hand (for lengths no real payload could have).
pub fn raw_header(fin: bool, opcode: u8, len: u64, key: [u8; 4]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u8((u8::from(fin) << 7) | opcode);
    if len < 126 {
        out.put_u8(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.put_u8(0x80 | 126);
        out.put_u16(len as u16);
    } else {
        out.put_u8(0x80 | 127);
        out.put_u64(len);
    }
    out.put_slice(&key);
    out.to_vec()
}

/// A deterministic pseudo-random generator (xorshift64*) for payloads and
/// chunk sizes, so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// A payload of `n` bytes whose content depends on `seed` (cheap to build
/// for large sizes).
pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}
