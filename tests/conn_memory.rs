//! Heap held per server connection: retained messages, partial frame
//! headers, idle connections.
//!
//! A counting global allocator keeps, per thread, the live heap bytes
//! (allocated − freed, realloc counted by its size change). The server —
//! listener, `Conn`s, one task per connection on a `LocalSet`, the read
//! arena — runs on the test's thread; the clients are plain blocking
//! `std::net::TcpStream`s on a helper thread, so their memory is not
//! counted and no allocation crosses between the two threads. Traffic is
//! real loopback TCP on 127.0.0.1.
//!
//! Sizes are the requested `Layout` sizes: allocator overhead (malloc's
//! chunk headers, rounding) is not included, so RSS per connection is
//! somewhat higher (see `examples/load.rs idle` for that figure).
//!
//! Every wait is event-driven: the server's stream is wrapped in
//! [`Counted`], which counts the bytes the server has read and wakes the
//! test, so the test knows when the server has consumed exactly what the
//! client sent, and every connection's read is pending again by then (a
//! task runs until it returns `Pending`, and the test only runs when it
//! has). The client thread moves one step at a time behind a [`Gate`]
//! that the test opens. The only timeout is an upper bound on the whole
//! scenario.
//!
//! The traffic is adversarial for a read arena whose blocks are pinned by
//! what is split from them: between two connections' bytes, a helper
//! connection delivers [`CHURN_PAYLOAD`] (256 KiB, in 8 KiB frames that
//! the helper's task reads and drops) on the same thread, so no two
//! connections' bytes can share a block of 256 KiB or less.

mod conn_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use conn_support::{raw_header, upgrade_request, within};
use rtwire::ws::{apply_mask, Config, Conn};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

// ---------------------------------------------------------------------------
// Live-bytes allocator

struct Counting;

thread_local! {
    /// Live heap bytes allocated minus freed by this thread.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    // `try_with`: the thread-local may be gone while the thread exits.
    let _ = LIVE.try_with(|l| l.set(l.get() + delta));
}

// SAFETY: forwards every call unchanged to the system allocator; the only
// addition is updating a const-initialized thread-local counter (no
// allocation, no destructor).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Live heap bytes of this thread.
fn live() -> isize {
    LIVE.with(|l| l.get())
}

#[test]
fn the_counter_tracks_live_bytes() {
    // The harness itself: an allocation shows up while it lives, growth by
    // realloc is counted, and freeing gives everything back.
    let before = live();
    let mut v: Vec<u8> = Vec::with_capacity(100_000);
    v.push(1);
    assert_eq!(live() - before, 100_000);
    v.reserve_exact(300_000);
    assert_eq!(live() - before, v.capacity() as isize);
    let b = Bytes::from(v);
    let small = b.slice(0..1);
    drop(b);
    // A 1-byte slice keeps the whole buffer alive: exactly what the
    // scenarios below must not see per connection.
    assert!(live() - before >= 300_000);
    drop(small);
    assert_eq!(live() - before, 0);
}

// ---------------------------------------------------------------------------
// Server side: a byte-counting stream and one task per connection

/// What the server's tasks report to the test.
#[derive(Default)]
struct Shared {
    /// Bytes read from the sockets by the server (handshakes included).
    bytes: Cell<usize>,
    /// Tasks that have started reading.
    started: Cell<usize>,
    /// Messages read by the measured connections (not the helper).
    messages: Cell<usize>,
    /// The messages the measured connections keep (capacity reserved before
    /// the baseline).
    kept: RefCell<Vec<Bytes>>,
    /// Woken on every change above.
    changed: Notify,
}

impl Shared {
    fn bump(&self, c: &Cell<usize>, n: usize) {
        c.set(c.get() + n);
        self.changed.notify_one();
    }

    /// Waits until `done` holds (re-checked on every change).
    async fn until(&self, done: impl Fn(&Shared) -> bool) {
        while !done(self) {
            self.changed.notified().await;
        }
    }
}

/// The server's stream: a `TcpStream` that reports the bytes it reads.
struct Counted {
    tcp: TcpStream,
    shared: Rc<Shared>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.tcp).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.shared.bump(&self.shared.bytes, n);
        }
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// Accepts one connection, runs the handshake, and spawns its reading task.
/// `keep`: the task keeps every message in `shared.kept` (the measured
/// connections) instead of dropping it (the helper).
async fn accept_and_serve(l: &TcpListener, shared: &Rc<Shared>, keep: bool) {
    let (tcp, _) = l.accept().await.expect("accept");
    tcp.set_nodelay(true).expect("nodelay");
    let io = Counted {
        tcp,
        shared: shared.clone(),
    };
    // Boxed, as a server would: the handshake state is freed once it is done.
    let (mut conn, _) = Box::pin(Conn::accept(io, &Config::default()))
        .await
        .expect("server handshake");
    let shared = shared.clone();
    // Detached: the task lives until the runtime is dropped.
    drop(tokio::task::spawn_local(async move {
        shared.bump(&shared.started, 1);
        // The read is pending from here on whenever the task is parked.
        while let Ok(Some(msg)) = conn.read_message().await {
            if keep {
                shared.kept.borrow_mut().push(msg.into_payload());
                shared.bump(&shared.messages, 1);
            }
        }
    }));
}

// ---------------------------------------------------------------------------
// Client side: a blocking thread, one gated step at a time

/// Steps the test has allowed the client thread to take.
#[derive(Default)]
struct Gate {
    open: Mutex<usize>,
    cv: Condvar,
}

impl Gate {
    fn open(&self, k: usize) {
        let mut g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        *g = (*g).max(k);
        self.cv.notify_all();
    }
    fn wait(&self, k: usize) {
        let mut g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        while *g < k {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Opens the gate completely when dropped, so that a failing test never
/// leaves the client thread blocked.
struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open(usize::MAX);
    }
}

/// Which client socket a step writes to.
#[derive(Clone, Copy)]
enum To {
    Helper,
    Conn(usize),
}

/// What the client thread does, in order. Gate 1: connect the helper (if
/// any) and send `warm` on it; gate 2: connect the `n` measured connections;
/// gate 3 + k: step k.
struct Script {
    helper: bool,
    warm: Option<Arc<[u8]>>,
    n: usize,
    steps: Vec<(To, Arc<[u8]>)>,
}

fn ws_connect(addr: SocketAddr) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.write_all(upgrade_request(addr, "/", "").as_bytes())
        .expect("send upgrade");
    let mut head = Vec::new();
    let mut b = [0u8; 512];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).expect("read 101");
        assert!(n > 0, "EOF before the 101");
        head.extend_from_slice(&b[..n]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "upgrade refused");
    s
}

fn run_client(addr: SocketAddr, script: Script, gate: Arc<Gate>) {
    gate.wait(1);
    let mut helper = script.helper.then(|| ws_connect(addr));
    if let (Some(h), Some(w)) = (helper.as_mut(), &script.warm) {
        h.write_all(w).expect("warm-up write");
    }
    gate.wait(2);
    let mut conns: Vec<_> = (0..script.n).map(|_| ws_connect(addr)).collect();
    for (k, (to, bytes)) in script.steps.iter().enumerate() {
        gate.wait(3 + k);
        let s = match *to {
            To::Helper => helper.as_mut().expect("no helper connection"),
            To::Conn(i) => &mut conns[i],
        };
        s.write_all(bytes).expect("client write");
    }
    // Keep every socket open until the test has measured.
    gate.wait(usize::MAX);
}

// ---------------------------------------------------------------------------
// Traffic

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Bytes of other traffic read on the server's thread between two measured
/// connections' bytes: at least one 256 KiB arena block.
const CHURN_PAYLOAD: usize = 256 * 1024;
/// Churn frame size: medium frames, which any read path reads through its
/// shared read memory (a path that reads large frames into buffers of
/// their own must still see this traffic).
const CHURN_FRAME: usize = 8 * 1024;

/// One masked binary frame, as a client sends it.
fn masked_binary(payload: &[u8]) -> Vec<u8> {
    let mut f = raw_header(true, 2, payload.len() as u64, KEY);
    let start = f.len();
    f.extend_from_slice(payload);
    apply_mask(&mut f[start..], KEY, 0);
    f
}

fn churn() -> Arc<[u8]> {
    let frame = masked_binary(&[0x5a; CHURN_FRAME]);
    frame.repeat(CHURN_PAYLOAD / CHURN_FRAME).into()
}

/// Connection `i`'s 16-byte message.
fn message(i: usize) -> [u8; 16] {
    let mut m = *b"conn-00000000000";
    let digits = format!("{i:011}");
    m[5..].copy_from_slice(digits.as_bytes());
    m
}

// ---------------------------------------------------------------------------
// Scenarios

/// The scenarios run one at a time (each opens up to 2N + 2 sockets).
static SERIAL: Mutex<()> = Mutex::new(());

/// Connections per scenario: 1000, fewer if the open-files limit is too low
/// for 2N sockets (client and server ends) plus a margin.
fn connections() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse::<usize>().ok())
        })
        .unwrap_or(4096);
    let n = 1000.min(soft.saturating_sub(64) / 2);
    assert!(
        n >= 200,
        "open-files limit {soft} is too low for a meaningful per-connection \
         figure: raise it (ulimit -n 4096)"
    );
    n
}

struct Measured {
    n: usize,
    /// Live heap per connection at the measuring point, over the baseline.
    per_conn: f64,
    /// Messages kept by the measured connections, when the test ends.
    kept: Vec<Bytes>,
}

/// Runs `script` against a server on this thread. The baseline is taken
/// once the helper (if any) is up and its warm-up read done, before the
/// measured connections connect; the measurement once steps
/// `..measure_after` have been read by the server and every task is parked
/// in a pending read. The remaining steps then run (e.g. to check that
/// the connections still work).
fn run(script: Script, measure_after: usize) -> Measured {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        within(Duration::from_secs(300), "memory scenario", async {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = l.local_addr().expect("local_addr");
            let n = script.n;
            let helper = script.helper;
            let warm_len = script.warm.as_ref().map_or(0, |w| w.len());
            let step_lens: Vec<usize> = script.steps.iter().map(|(_, b)| b.len()).collect();
            let shared = Rc::new(Shared::default());
            shared.kept.borrow_mut().reserve_exact(n);
            let gate = Arc::new(Gate::default());
            let open = OpenOnDrop(gate.clone());
            let client = {
                let gate = gate.clone();
                std::thread::spawn(move || run_client(addr, script, gate))
            };

            gate.open(1);
            if helper {
                accept_and_serve(&l, &shared, false).await;
                let want = shared.bytes.get() + warm_len;
                shared.until(|s| s.bytes.get() >= want).await;
            }
            let baseline = live();

            gate.open(2);
            for _ in 0..n {
                accept_and_serve(&l, &shared, true).await;
            }
            let tasks = n + usize::from(helper);
            shared.until(|s| s.started.get() == tasks).await;
            let mut want = shared.bytes.get();
            let mut per_conn = 0.0;
            for (k, len) in step_lens.iter().enumerate() {
                if k == measure_after {
                    per_conn = (live() - baseline) as f64 / n as f64;
                }
                gate.open(3 + k);
                want += len;
                shared.until(|s| s.bytes.get() >= want).await;
            }
            if measure_after >= step_lens.len() {
                per_conn = (live() - baseline) as f64 / n as f64;
            }
            assert_eq!(
                shared.bytes.get(),
                want,
                "the server read more than was sent"
            );

            drop(open);
            client.join().expect("client thread");
            let kept = std::mem::take(&mut *shared.kept.borrow_mut());
            Measured { n, per_conn, kept }
        })
        .await
    })
}

/// Scenario A: each connection reads one 16-byte message and the
/// application keeps it (as a chat server keeps the last message of each
/// client), with 256 KiB of other traffic read between two connections'
/// messages.
///
/// Bound: 4 KiB per connection. An idle connection costs under 2 KiB
/// (scenario C); the other 2 KiB are room for the 16-byte message itself
/// and whatever small read buffer it may keep. A message that pins a
/// shared 256 KiB read block costs 64 times the bound.
#[test]
fn retained_small_messages_do_not_pin_read_blocks() {
    const BOUND: f64 = 4096.0;
    let n = connections();
    let churn = churn();
    let mut steps = Vec::with_capacity(2 * n);
    for i in 0..n {
        steps.push((To::Conn(i), Arc::from(masked_binary(&message(i)))));
        steps.push((To::Helper, churn.clone()));
    }
    let script = Script {
        helper: true,
        warm: Some(churn),
        n,
        steps,
    };
    let m = run(script, usize::MAX);
    eprintln!(
        "retained 16-byte messages: {} connections, {:.0} heap bytes per connection (bound {BOUND})",
        m.n, m.per_conn
    );
    assert_eq!(m.kept.len(), m.n, "every connection read its message");
    for (i, b) in m.kept.iter().enumerate() {
        assert_eq!(&b[..], &message(i), "message of connection {i}");
    }
    assert!(
        m.per_conn <= BOUND,
        "{:.0} heap bytes per connection that keeps one 16-byte message \
         (bound {BOUND}): retained messages pin read memory",
        m.per_conn
    );
}

/// Scenario B: each connection receives the first byte of a frame header
/// and then nothing (a slow or idle peer), with 256 KiB of other traffic
/// between two connections' bytes; measured while every read is pending.
/// Then the rest of each frame arrives and every message must come out
/// intact.
///
/// Bound: 2 KiB per connection: an idle connection (under 2 KiB, scenario
/// C) plus the partial header (at most 14 bytes, kept in a small buffer).
/// The bound is the same as for idle connections: a byte of header must
/// not cost a read block, nor even a 4 KiB buffer.
#[test]
fn partial_headers_do_not_pin_read_blocks() {
    const BOUND: f64 = 2048.0;
    let n = connections();
    let churn = churn();
    let frames: Vec<Vec<u8>> = (0..n).map(|i| masked_binary(&message(i))).collect();
    let mut steps = Vec::with_capacity(3 * n);
    for (i, f) in frames.iter().enumerate() {
        steps.push((To::Conn(i), Arc::from(&f[..1])));
        steps.push((To::Helper, churn.clone()));
    }
    let measure_after = steps.len();
    for (i, f) in frames.iter().enumerate() {
        steps.push((To::Conn(i), Arc::from(&f[1..])));
    }
    let script = Script {
        helper: true,
        warm: Some(churn),
        n,
        steps,
    };
    let m = run(script, measure_after);
    eprintln!(
        "one header byte each: {} connections, {:.0} heap bytes per connection (bound {BOUND})",
        m.n, m.per_conn
    );
    assert_eq!(m.kept.len(), m.n, "every frame completed");
    for (i, b) in m.kept.iter().enumerate() {
        assert_eq!(&b[..], &message(i), "message of connection {i}");
    }
    assert!(
        m.per_conn <= BOUND,
        "{:.0} heap bytes per connection holding one byte of a frame header \
         (bound {BOUND}): partial headers pin read memory",
        m.per_conn
    );
}

/// Scenario C: connections with nothing after the handshake, each with a
/// pending read.
///
/// Bound: 2 KiB per connection, the idle budget (the `Conn`, its task and
/// read future, the socket's registration; measured at about 1.3 KB).
#[test]
fn idle_connections_stay_small() {
    const BOUND: f64 = 2048.0;
    let n = connections();
    // The helper's warm-up read sets up the thread's read state (the arena
    // block today) before the baseline: per thread, not per connection.
    let script = Script {
        helper: true,
        warm: Some(Arc::from(masked_binary(b"warm-up"))),
        n,
        steps: Vec::new(),
    };
    let m = run(script, 0);
    eprintln!(
        "idle: {} connections, {:.0} heap bytes per connection (bound {BOUND})",
        m.n, m.per_conn
    );
    assert!(
        m.per_conn <= BOUND,
        "{:.0} heap bytes per idle connection (bound {BOUND})",
        m.per_conn
    );
}
