//! permessage-deflate (RFC 7692) against real peers over loopback TCP:
//! Python `websockets` (tests/python/ws_peer.py) and Node `ws`
//! (tests/node/ws_peer.js), each as a separate process, in both roles and
//! against every rtwire setting (no context takeover, context takeover at
//! 15 and at 9 bits), with peers that use their defaults and peers that ask
//! for 10-bit windows. Then hostile compressed input from a raw client: a
//! 1 GiB deflate bomb against a server process (`examples/deflate_bench`)
//! whose memory is read from /proc, RSV1 where it is not allowed, and
//! garbage deflate data.
//!
//! The peers are installed by scripts/test.sh (`pip install websockets`,
//! `npm install` in tests/node). A missing peer fails these tests; they
//! never skip.
#![cfg(feature = "deflate")]

mod conn_support;

mod example_support;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use conn_support::*;
use rtwire::ws::{CloseCode, Config, Conn, Decoder, DeflateConfig, DeflateParams, Limits};
use rtwire::ws::{Message, Role};
use rtwire::HandshakeError;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};

/// Upper bound for one whole exchange with a peer process (megabytes of
/// deflate in Python and Node on a shared machine): only for stuck runs.
const PEER_BOUND: Duration = Duration::from_secs(240);

// ---------------------------------------------------------------- peers

#[derive(Clone, Copy, Debug)]
enum Peer {
    Python,
    Node,
}

/// A peer process, killed on drop (a failing test leaves none behind).
struct PeerProcess {
    child: Child,
    what: String,
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn spawn_peer(peer: Peer, args: &[&str]) -> PeerProcess {
    let (prog, script) = match peer {
        Peer::Python => ("python3", manifest_dir().join("tests/python/ws_peer.py")),
        Peer::Node => ("node", manifest_dir().join("tests/node/ws_peer.js")),
    };
    if let Peer::Node = peer {
        assert!(
            manifest_dir().join("tests/node/node_modules/ws").exists(),
            "Node `ws` is not installed: run scripts/test.sh (npm install in tests/node)"
        );
    }
    let child = Command::new(prog)
        .arg(&script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {prog} (run scripts/test.sh): {e}"));
    PeerProcess {
        child,
        what: format!("{peer:?} {}", args.join(" ")),
    }
}

/// Reads the "PORT <n>" line a server peer prints once it listens.
async fn read_port(p: &mut PeerProcess) -> (SocketAddr, BufReader<ChildStdout>) {
    let mut out = BufReader::new(p.child.stdout.take().expect("stdout"));
    let mut line = String::new();
    bounded("peer server PORT line", out.read_line(&mut line))
        .await
        .expect("read peer stdout");
    let port: u16 = line
        .strip_prefix("PORT ")
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("{}: no PORT line, got {line:?}", p.what));
    (SocketAddr::from(([127, 0, 0, 1], port)), out)
}

// ------------------------------------------------------------ messages

/// JSON-like text of exactly `n` bytes (the generator of the peers).
fn json_like(n: usize) -> String {
    let mut s = String::with_capacity(n + 200);
    let mut i = 0usize;
    while s.len() < n {
        s.push_str(&format!(
            "{{\"id\":{i},\"user\":\"user-{i}\",\"email\":\"user-{i}@example.com\",\
             \"active\":{},\"score\":{},\"tags\":[\"alpha\",\"beta\"],\"note\":\"caf\u{e9} \u{2713}\"}},",
            i.is_multiple_of(3),
            (i * 37) % 1000
        ));
        i += 1;
    }
    let mut cut = n;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    while s.len() < n {
        s.push(' ');
    }
    s
}

/// What rtwire sends to a peer server: (message, fragment size or 0).
fn rtwire_messages() -> Vec<(Message, usize)> {
    let mut rng = Rng::new(0xdef1a7e);
    let mut out = Vec::new();
    for n in [16, 1024, 64 << 10, 1 << 20] {
        out.push((Message::text(json_like(n)), 0));
        out.push((Message::binary(rng.bytes(n)), 0));
    }
    out.push((Message::text(json_like(64 << 10)), 20_000));
    out.push((Message::binary(rng.bytes(100_000)), 25_000));
    out.push((Message::binary(json_like(200_000).into_bytes()), 40_000));
    out.push((Message::text(""), 0));
    out
}

fn digest(m: &Message) -> String {
    let hex: String = Sha1::digest(m.payload())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let kind = if m.is_text() { 't' } else { 'b' };
    format!("{kind}:{}:{hex}", m.payload().len())
}

// -------------------------------------------------- byte-counting stream

#[path = "../examples/common/counting_io.rs"]
mod counting_io;
use counting_io::Counts;

// ------------------------------------------------------------- configs

#[derive(Clone, Copy, Debug)]
enum Rt {
    /// `DeflateConfig::default()`: no context takeover either way.
    NoContext,
    /// `DeflateConfig::context_takeover(bits)`.
    Context(u8),
}

fn rt_config(rt: Rt) -> Config {
    let d = match rt {
        Rt::NoContext => DeflateConfig::default(),
        Rt::Context(bits) => DeflateConfig::context_takeover(bits),
    };
    Config::builder()
        .max_frame_size(64 << 20)
        .max_message_size(64 << 20)
        .deflate(d)
        .build()
}

/// What must hold of the agreed parameters for `rt` against a peer
/// `variant` ("small" asks for or imposes 10-bit windows both ways).
fn check_params(p: &DeflateParams, rt: Rt, variant: &str, what: &str) {
    match rt {
        Rt::NoContext => {
            assert!(p.server_no_context_takeover, "{what}: {p:?}");
            assert!(p.client_no_context_takeover, "{what}: {p:?}");
        }
        Rt::Context(bits) => {
            assert!(p.server_max_window_bits <= bits, "{what}: {p:?}");
            // Only a client can be told its window: a peer server that
            // imposes one (or offers none) may leave ours at most `bits`.
            assert!(p.client_max_window_bits <= 15, "{what}: {p:?}");
        }
    }
    if variant == "small" {
        assert!(p.server_max_window_bits <= 10, "{what}: {p:?}");
        assert!(p.client_max_window_bits <= 10, "{what}: {p:?}");
    }
}

/// Wire bytes over payload bytes must show compression: the messages are
/// about half JSON (compresses ~10:1) and half random.
fn check_compressed(wire: u64, payload: u64, what: &str) {
    assert!(
        wire * 4 < payload * 3,
        "{what}: {wire} wire bytes for {payload} payload bytes: not compressed"
    );
}

// ---------------------------------------- rtwire server <- peer client

async fn rtwire_server_with_peer_client(peer: Peer, rt: Rt, variant: &str) {
    let (l, addr) = listener().await;
    let config = rt_config(rt);
    let mut p = spawn_peer(peer, &["client", &format!("ws://{addr}/echo"), variant]);
    let what = format!("rtwire server {rt:?} <- {}", p.what);
    let mut stdout = p.child.stdout.take().expect("stdout");
    let counts = Counts::default();
    let server = async {
        let (tcp, _) = l.accept().await.expect("accept");
        tcp.set_nodelay(true).expect("nodelay");
        let (mut conn, acc) = Conn::accept(counts.wrap(tcp), &config)
            .await
            .expect("server handshake");
        let params = acc.deflate.expect("the server did not negotiate deflate");
        let mut payload = 0u64;
        let mut n = 0;
        let end = loop {
            match conn.read_message().await {
                Ok(Some(m)) => {
                    payload += m.payload().len() as u64;
                    n += 1;
                    if let Err(e) = conn.send_message(m).await {
                        break Err(e);
                    }
                }
                Ok(None) => break Ok(conn.peer_close_frame().map(|c| c.code.as_u16())),
                Err(e) => break Err(e),
            }
        };
        (params, payload, n, end)
    };
    let peer_run = async {
        let mut out = String::new();
        stdout.read_to_string(&mut out).await.expect("peer stdout");
        let status = p.child.wait().await.expect("peer wait");
        (status, out)
    };
    let ((params, payload, n, end), (status, out)) =
        within(PEER_BOUND, &what, async { tokio::join!(server, peer_run) }).await;
    assert!(status.success(), "{what}: peer failed: {out}");
    let ext = out
        .lines()
        .find_map(|l| l.strip_prefix("OK ext="))
        .unwrap_or_else(|| panic!("{what}: no OK line: {out}"));
    let ext = ext.split(" messages=").next().unwrap();
    assert_eq!(ext, params.response_header(), "{what}");
    check_params(&params, rt, variant, &what);
    assert_eq!(end.expect("server side"), Some(1000), "{what}");
    assert_eq!(n, 12, "{what}: messages echoed");
    check_compressed(counts.read(), payload, &format!("{what}: peer to rtwire"));
    check_compressed(
        counts.written(),
        payload,
        &format!("{what}: rtwire to peer"),
    );
}

// ---------------------------------------- rtwire client -> peer server

async fn rtwire_client_with_peer_server(peer: Peer, rt: Rt, variant: &str) {
    let mut p = spawn_peer(peer, &["server", variant]);
    let what = format!("rtwire client {rt:?} -> {}", p.what);
    let (addr, _stdout) = read_port(&mut p).await;
    let config = rt_config(rt);
    let counts = Counts::default();
    within(PEER_BOUND, &what, async {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        let res = Conn::connect(counts.wrap(tcp), &format!("ws://{addr}/"), &config).await;
        if let (Peer::Node, Rt::Context(bits), "small") = (peer, rt, variant) {
            if bits < 10 {
                // ws refuses an offer whose server_max_window_bits is below
                // its own serverMaxWindowBits, and when no offer is left it
                // fails the handshake with 400 instead of declining the
                // extension (RFC 7692 lets a server just not answer it).
                assert!(
                    matches!(
                        res,
                        Err(rtwire::Error::Handshake(HandshakeError::UnexpectedStatus(
                            400
                        )))
                    ),
                    "{what}: {res:?}"
                );
                return;
            }
        }
        let (mut conn, head) = res.expect("client handshake");
        let params = *conn
            .deflate()
            .expect("the client did not negotiate deflate");
        check_params(&params, rt, variant, &what);
        let msgs = rtwire_messages();
        let mut payload = 0u64;
        for (i, (m, frag)) in msgs.iter().enumerate() {
            payload += m.payload().len() as u64;
            if *frag > 0 {
                conn.send_fragmented(m.clone(), *frag).await.expect("send");
            } else {
                conn.send_message(m.clone()).await.expect("send");
            }
            let back = conn.read_message().await.expect("read").expect("echo");
            assert!(back == *m, "{what}: echo {i} differs");
        }
        conn.send_text("__report__").await.expect("report");
        let report = match conn.read_message().await.expect("read").expect("report") {
            Message::Text(t) => t.as_str().to_string(),
            m => panic!("{what}: report {m:?}"),
        };
        let report: serde_json::Value = serde_json::from_str(&report).expect("report JSON");
        let peer_digests: Vec<String> = report["digests"]
            .as_array()
            .expect("digests")
            .iter()
            .map(|d| d.as_str().unwrap().to_string())
            .collect();
        let ours: Vec<String> = msgs.iter().map(|(m, _)| digest(m)).collect();
        assert_eq!(peer_digests, ours, "{what}: what the peer received");
        assert_eq!(
            report["ext"].as_str(),
            head.header_str("sec-websocket-extensions"),
            "{what}"
        );
        assert!(
            report["ext"]
                .as_str()
                .is_some_and(|e| e.starts_with("permessage-deflate")),
            "{what}: {report}"
        );
        conn.close(CloseCode::NORMAL, "").await.expect("close");
        check_compressed(
            counts.written(),
            payload,
            &format!("{what}: rtwire to peer"),
        );
        check_compressed(counts.read(), payload, &format!("{what}: peer to rtwire"));
    })
    .await;
}

macro_rules! peer_tests {
    ($($name:ident: $peer:expr, $rt:expr;)*) => {$(
        mod $name {
            use super::*;
            #[tokio::test]
            async fn server_peer_default() {
                rtwire_server_with_peer_client($peer, $rt, "default").await;
            }
            #[tokio::test]
            async fn server_peer_small_windows() {
                rtwire_server_with_peer_client($peer, $rt, "small").await;
            }
            #[tokio::test]
            async fn client_peer_default() {
                rtwire_client_with_peer_server($peer, $rt, "default").await;
            }
            #[tokio::test]
            async fn client_peer_small_windows() {
                rtwire_client_with_peer_server($peer, $rt, "small").await;
            }
        }
    )*};
}

peer_tests! {
    python_no_context: Peer::Python, Rt::NoContext;
    python_context_15: Peer::Python, Rt::Context(15);
    python_context_9: Peer::Python, Rt::Context(9);
    node_no_context: Peer::Node, Rt::NoContext;
    node_context_15: Peer::Node, Rt::Context(15);
    node_context_9: Peer::Node, Rt::Context(9);
}

// ------------------------------------------------------ hostile input

/// One masked client frame with the first header byte `b0` (FIN, RSV,
/// opcode), masked here with a fixed key.
fn masked_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x1f, 0x2e, 0x3d, 0x4c];
    let mut out = vec![b0];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;

/// Raw deflate of `data` (sync flush, the 00 00 FF FF tail removed, as
/// RFC 7692 sends a message), made with Python's zlib.
fn py_deflate(expr: &str) -> Vec<u8> {
    let script = format!(
        "import sys, zlib\n\
         c = zlib.compressobj(9, zlib.DEFLATED, -15)\n\
         out = bytearray()\n\
         for chunk in {expr}:\n    out += c.compress(chunk)\n\
         out += c.flush(zlib.Z_SYNC_FLUSH)\n\
         assert out[-4:] == b'\\x00\\x00\\xff\\xff'\n\
         sys.stdout.buffer.write(out[:-4])\n"
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 (run scripts/test.sh)");
    assert!(out.status.success(), "python zlib failed");
    out.stdout
}

/// A raw client that negotiated permessage-deflate (checked in the 101).
async fn raw_deflate_client(addr: SocketAddr) -> (RawReader, tokio::net::tcp::OwnedWriteHalf) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let req = upgrade_request(
        addr,
        "/",
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    );
    tcp.write_all(req.as_bytes()).await.expect("upgrade");
    let (resp, rest) = bounded("101", read_response_head(&mut tcp)).await;
    assert_eq!(resp.status(), 101);
    let ext = resp
        .header_str("sec-websocket-extensions")
        .expect("no extension in the 101");
    assert!(ext.starts_with("permessage-deflate"), "{ext}");
    let (r, w) = tcp.into_split();
    // The server's frames are checked as a deflate client reads them.
    let mut dec = Decoder::new(Role::Client, Limits::unlimited());
    dec.set_per_message_deflate(true);
    let reader = RawReader {
        tcp: r,
        dec,
        buf: rest,
    };
    (reader, w)
}

/// An in-process rtwire echo server with deflate (default config).
async fn in_process_server() -> SocketAddr {
    let (l, addr) = listener().await;
    let config = rt_config(Rt::NoContext);
    tokio::spawn(async move {
        let mut conn = accept(&l, &config).await;
        while let Ok(Some(m)) = conn.read_message().await {
            if conn.send_message(m).await.is_err() {
                break;
            }
        }
    });
    addr
}

async fn expect_close_after(frames: &[Vec<u8>], code: u16, what: &str) {
    let addr = in_process_server().await;
    let (mut r, mut w) = raw_deflate_client(addr).await;
    for f in frames {
        // The server may close before reading everything.
        let _ = w.write_all(f).await;
    }
    assert_eq!(r.expect_close().await, Some(code), "{what}");
}

#[tokio::test]
async fn rsv1_on_a_continuation_frame_is_1002() {
    let part = py_deflate("[b'hello ']");
    // A compressed first fragment, then a continuation with RSV1.
    let frames = [
        masked_frame(RSV1 | 0x1, &part),
        masked_frame(FIN | RSV1, b"world"),
    ];
    expect_close_after(&frames, 1002, "RSV1 on a continuation").await;
    // An uncompressed first fragment, then a continuation with RSV1.
    let frames = [masked_frame(0x2, b"abc"), masked_frame(FIN | RSV1, b"def")];
    expect_close_after(&frames, 1002, "RSV1 on a continuation (plain)").await;
}

#[tokio::test]
async fn rsv1_on_a_ping_is_1002() {
    let frames = [masked_frame(FIN | RSV1 | 0x9, b"ping")];
    expect_close_after(&frames, 1002, "RSV1 on a ping").await;
    // Also in the middle of a compressed message.
    let part = py_deflate("[b'hello ']");
    let frames = [
        masked_frame(RSV1 | 0x1, &part),
        masked_frame(FIN | RSV1 | 0x9, b""),
    ];
    expect_close_after(&frames, 1002, "RSV1 on a ping mid-message").await;
}

#[tokio::test]
async fn garbage_compressed_data_is_1007() {
    // BTYPE 11 (reserved) in the first block header.
    let frames = [masked_frame(FIN | RSV1 | 0x2, &[0xff; 32])];
    expect_close_after(&frames, 1007, "invalid deflate").await;
    // Valid deflate that inflates to invalid UTF-8 in a text message.
    let bad = py_deflate("[b'ok \\xff\\xfe not utf-8']");
    let frames = [masked_frame(FIN | RSV1 | 0x1, &bad)];
    expect_close_after(&frames, 1007, "compressed invalid UTF-8").await;
}

#[tokio::test]
async fn a_raw_compressed_frame_is_echoed() {
    // The raw client's compressed frames are valid for a real server:
    // the hostile cases above fail for the reason they test.
    let addr = in_process_server().await;
    let (mut r, mut w) = raw_deflate_client(addr).await;
    let z = py_deflate("[b'hello, compressed world']");
    w.write_all(&masked_frame(FIN | RSV1 | 0x1, &z))
        .await
        .unwrap();
    let f = r.frame().await;
    assert_eq!(f.opcode, rtwire::ws::OpCode::Text);
}

/// `examples/deflate_bench`, built once per run with this test's profile
/// (as tests/hub_multiprocess.rs builds chat_node).
fn bench_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| example_support::build_example("deflate_bench", "deflate"))
}

/// `VmHWM` and `VmRSS` of `pid`, in KiB.
fn mem_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[tokio::test]
async fn one_gib_deflate_bomb_is_1009_and_memory_stays_flat() {
    // ~1 MiB of deflate that inflates to 1 GiB of zeros: one frame.
    let bomb = py_deflate("(bytes(1 << 20) for _ in range(1024))");
    assert!(bomb.len() < 2 << 20, "bomb of {} bytes", bomb.len());
    let child = Command::new(bench_bin())
        .args(["server", "127.0.0.1:0", "--deflate", "none"])
        .args(["--max-message", &(1 << 20).to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("deflate_bench server");
    let mut p = PeerProcess {
        child,
        what: "deflate_bench server".into(),
    };
    let pid = p.child.id().expect("pid");
    let (addr, _stdout) = read_port(&mut p).await;
    let (mut r, mut w) = raw_deflate_client(addr).await;
    // A small compressed message first: the server's codec paths are warm
    // before the baseline is read.
    let z = py_deflate("[b'warm up ' * 100]");
    w.write_all(&masked_frame(FIN | RSV1 | 0x1, &z))
        .await
        .unwrap();
    let echo = r.frame().await;
    assert_eq!(echo.opcode, rtwire::ws::OpCode::Text);
    let (hwm_before, rss_before) = mem_kib(pid);
    let frame = masked_frame(FIN | RSV1 | 0x2, &bomb);
    let send = tokio::spawn(async move {
        // The server may close before it has read the whole frame.
        let _ = w.write_all(&frame).await;
        w
    });
    assert_eq!(r.expect_close().await, Some(1009), "bomb close code");
    let (hwm_after, rss_after) = mem_kib(pid);
    let _ = send.await;
    eprintln!(
        "bomb: server VmHWM {hwm_before} -> {hwm_after} KiB, VmRSS {rss_before} -> {rss_after} KiB"
    );
    assert!(
        hwm_after < hwm_before + 8 * 1024,
        "server peak RSS grew from {hwm_before} to {hwm_after} KiB"
    );
    drop(p);
}
