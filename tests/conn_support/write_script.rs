//! A script of outgoing frames written through a server-role `Conn` or its
//! split `WriteHalf` into a [`ChaosIo`](super::chaos_io::ChaosIo), and the
//! check that the captured bytes decode (client role, no limits) to exactly
//! the frames the script wrote, in order, with nothing after them.
//!
//! Shared by `tests/conn_write_prop.rs` (proptest) and the `conn_write`
//! fuzz target (which includes this file and `chaos_io.rs` by path), so
//! only std, tokio, bytes and rtwire are used here.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use rtwire::ws::{Config, Conn, Decoder, Encoder, Frame, Limits, Message, OpCode, Role};

use super::chaos_io::{ChaosConfig, ChaosIo, ChaosStats};

/// Largest payload a script frame carries.
pub const MAX_PAYLOAD: usize = 200 * 1024;
/// Most frames one fragmented message is cut into (the fragment size is
/// raised to respect it).
pub const MAX_FRAGMENTS: usize = 256;

/// The kind of a single frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Binary,
    Ping,
    Pong,
}

/// How a whole message is handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgHow {
    /// `Conn::feed_message` (split half: `feed_frame`).
    Feed,
    /// `send_message`.
    SendMessage,
    /// `send_text` / `send_binary`.
    SendTyped,
    /// `feed_text_copied` / `feed_binary_copied` (from a borrowed slice).
    Copied,
}

/// One step of a script, before payloads are made (sizes only). `build`
/// turns these into [`Op`]s, normalising what the protocol requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpSpec {
    /// One frame through `feed_frame` (`write: false`) or `write_frame`.
    /// Control payloads are cut to 125 bytes.
    Frame { kind: Kind, len: usize, write: bool },
    /// A whole message as one frame.
    Message { text: bool, len: usize, how: MsgHow },
    /// A message in fragments of `frame_size` bytes: `Conn::send_fragmented`
    /// when `send_fragmented` (a `Conn`, no interleaved ping), otherwise
    /// Text/Binary with fin=false then Continuation frames, each through
    /// `feed_frame` or `write_frame` (`write`), with a ping after fragment
    /// `ping_after` (modulo the fragment count) if set.
    Fragmented {
        text: bool,
        len: usize,
        frame_size: usize,
        send_fragmented: bool,
        write: bool,
        ping_after: Option<usize>,
    },
    /// Frames encoded once with a server-role `Encoder` and handed over as
    /// one `Bytes` with `Conn::feed_encoded` (split half: `feed_frame` each).
    Encoded { frames: Vec<(Kind, usize)> },
    /// `ping(payload)` (cut to 125 bytes).
    Ping { len: usize },
    /// `flush()`.
    Flush,
}

/// One step of a script, with its payloads.
#[derive(Clone, Debug)]
pub enum Op {
    Frame {
        frame: Frame,
        write: bool,
    },
    Message {
        msg: Message,
        how: MsgHow,
    },
    Fragmented {
        msg: Message,
        frame_size: usize,
        send_fragmented: bool,
        write: bool,
        ping: Option<(usize, Bytes)>,
    },
    Encoded {
        frames: Vec<Frame>,
    },
    Ping(Bytes),
    Flush,
}

/// Which API the script is written through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A whole `Conn` (server role).
    Conn,
    /// The `WriteHalf` of `Conn::split`.
    Split,
}

/// A whole test case.
#[derive(Clone, Debug)]
pub struct Case {
    pub ops: Vec<Op>,
    pub vectored_threshold: usize,
    pub high_water: usize,
    pub chaos: ChaosConfig,
    pub target: Target,
}

/// `n` bytes of binary payload whose content depends on `seed` and on the
/// position (no short period, so a shifted or misplaced run of bytes shows).
pub fn binary_payload(n: usize, seed: u32) -> Bytes {
    let mut x = u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// Valid UTF-8 of exactly `n` bytes: ASCII letters that vary with `seed`
/// and position, mixed with 2-, 3- and 4-byte characters (so fragments can
/// end inside a code point).
pub fn text_payload(n: usize, seed: u32) -> String {
    const WIDE: [char; 3] = ['\u{e9}', '\u{20ac}', '\u{1f600}'];
    let mut s = String::with_capacity(n);
    let mut i = seed as usize;
    while s.len() < n {
        i = i.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let pick = (i >> 16) % 8;
        let c = if pick < 3 && s.len() + WIDE[pick].len_utf8() <= n {
            WIDE[pick]
        } else {
            char::from(b'a' + ((i >> 20) % 26) as u8)
        };
        s.push(c);
    }
    s
}

fn payload(kind: Kind, n: usize, seed: u32) -> Bytes {
    match kind {
        Kind::Text => Bytes::from(text_payload(n, seed)),
        _ => binary_payload(n, seed),
    }
}

fn opcode(kind: Kind) -> OpCode {
    match kind {
        Kind::Text => OpCode::Text,
        Kind::Binary => OpCode::Binary,
        Kind::Ping => OpCode::Ping,
        Kind::Pong => OpCode::Pong,
    }
}

fn message(text: bool, n: usize, seed: u32) -> Message {
    if text {
        Message::text(text_payload(n, seed))
    } else {
        Message::binary(binary_payload(n, seed))
    }
}

/// Turns specs into ops: payload sizes capped at [`MAX_PAYLOAD`] and
/// control payloads at 125, at most [`MAX_FRAGMENTS`] fragments, and the
/// total payload bytes capped at `budget` (sizes are cut to fit). Every
/// frame gets its own payload seed.
pub fn build(specs: &[OpSpec], budget: usize) -> Vec<Op> {
    let mut left = budget;
    let mut seed = 0u32;
    let mut take = |n: usize, cap: usize| -> (usize, u32) {
        let n = n.min(cap).min(left);
        left -= n;
        seed += 1;
        (n, seed)
    };
    let mut ops = Vec::with_capacity(specs.len());
    for spec in specs {
        let op = match spec {
            OpSpec::Frame { kind, len, write } => {
                let cap = if matches!(kind, Kind::Ping | Kind::Pong) {
                    125
                } else {
                    MAX_PAYLOAD
                };
                let (n, s) = take(*len, cap);
                Op::Frame {
                    frame: Frame::new(opcode(*kind), payload(*kind, n, s)),
                    write: *write,
                }
            }
            OpSpec::Message { text, len, how } => {
                let (n, s) = take(*len, MAX_PAYLOAD);
                Op::Message {
                    msg: message(*text, n, s),
                    how: *how,
                }
            }
            OpSpec::Fragmented {
                text,
                len,
                frame_size,
                send_fragmented,
                write,
                ping_after,
            } => {
                let (n, s) = take(*len, MAX_PAYLOAD);
                let frame_size = (*frame_size).max(1).max(n.div_ceil(MAX_FRAGMENTS));
                let count = fragment_count(n, frame_size);
                let ping = ping_after.map(|k| {
                    let (pn, ps) = take(k % 126, 125);
                    (k % count, binary_payload(pn, ps))
                });
                Op::Fragmented {
                    msg: message(*text, n, s),
                    frame_size,
                    send_fragmented: *send_fragmented,
                    write: *write,
                    ping,
                }
            }
            OpSpec::Encoded { frames } => Op::Encoded {
                frames: frames
                    .iter()
                    .map(|&(kind, len)| {
                        let cap = if matches!(kind, Kind::Ping | Kind::Pong) {
                            125
                        } else {
                            MAX_PAYLOAD
                        };
                        let (n, s) = take(len, cap);
                        Frame::new(opcode(kind), payload(kind, n, s))
                    })
                    .collect(),
            },
            OpSpec::Ping { len } => {
                let (n, s) = take(*len, 125);
                Op::Ping(binary_payload(n, s))
            }
            OpSpec::Flush => Op::Flush,
        };
        ops.push(op);
    }
    ops
}

fn fragment_count(len: usize, frame_size: usize) -> usize {
    len.div_ceil(frame_size).max(1)
}

/// The fragments of `msg` in frames of at most `frame_size` bytes, as
/// `send_fragmented` documents them (at least one frame).
pub fn fragments(msg: &Message, frame_size: usize) -> Vec<Frame> {
    let payload = msg.payload();
    let size = frame_size.max(1);
    let count = fragment_count(payload.len(), size);
    (0..count)
        .map(|i| {
            let start = i * size;
            let end = (start + size).min(payload.len());
            let op = if i == 0 {
                msg.opcode()
            } else {
                OpCode::Continuation
            };
            Frame::new(op, payload.slice(start..end)).with_fin(i + 1 == count)
        })
        .collect()
}

/// The fragments of a manually fragmented op with its interleaved ping.
fn manual_fragments(msg: &Message, frame_size: usize, ping: &Option<(usize, Bytes)>) -> Vec<Frame> {
    let mut out = Vec::new();
    for (i, f) in fragments(msg, frame_size).into_iter().enumerate() {
        out.push(f);
        if let Some((k, p)) = ping {
            if *k == i {
                out.push(Frame::ping(p.clone()));
            }
        }
    }
    out
}

/// Every frame the script writes, in order.
pub fn expected(ops: &[Op]) -> Vec<Frame> {
    let mut out = Vec::new();
    for op in ops {
        match op {
            Op::Frame { frame, .. } => out.push(frame.clone()),
            Op::Message { msg, .. } => out.push(Frame::new(msg.opcode(), msg.payload().clone())),
            Op::Fragmented {
                msg,
                frame_size,
                ping,
                ..
            } => out.extend(manual_fragments(msg, *frame_size, ping)),
            Op::Encoded { frames } => out.extend(frames.iter().cloned()),
            Op::Ping(p) => out.push(Frame::ping(p.clone())),
            Op::Flush => {}
        }
    }
    out
}

/// Total bytes of payload in the script.
pub fn payload_bytes(ops: &[Op]) -> usize {
    expected(ops).iter().map(|f| f.payload.len()).sum()
}

fn err(i: usize, op: &Op, e: rtwire::Error) -> String {
    let what = match op {
        Op::Frame { write: false, .. } => "feed_frame",
        Op::Frame { write: true, .. } => "write_frame",
        Op::Message {
            how: MsgHow::Feed, ..
        } => "feed_message",
        Op::Message {
            how: MsgHow::SendMessage,
            ..
        } => "send_message",
        Op::Message {
            how: MsgHow::SendTyped,
            ..
        } => "send_text/send_binary",
        Op::Message {
            how: MsgHow::Copied,
            ..
        } => "feed_text_copied/feed_binary_copied",
        Op::Fragmented { .. } => "fragmented message",
        Op::Encoded { .. } => "feed_encoded",
        Op::Ping(_) => "ping",
        Op::Flush => "flush",
    };
    format!("op {i} ({what}) failed: {e}")
}

fn encode_all(frames: &[Frame]) -> Bytes {
    let mut enc = Encoder::new(Role::Server);
    let mut out = BytesMut::new();
    for f in frames {
        enc.encode(f, &mut out);
    }
    out.freeze()
}

/// Writes the script through a whole `Conn`, then flushes.
pub async fn write_conn(ops: &[Op], config: &Config, io: ChaosIo) -> Result<(), String> {
    let mut conn = Conn::from_upgraded(io, Role::Server, config, BytesMut::new());
    for (i, op) in ops.iter().enumerate() {
        let r = match op {
            Op::Frame {
                frame,
                write: false,
            } => conn.feed_frame(frame.clone()).await,
            Op::Frame { frame, write: true } => conn.write_frame(frame.clone()).await,
            Op::Message { msg, how } => match how {
                MsgHow::Feed => conn.feed_message(msg.clone()).await,
                MsgHow::SendMessage => conn.send_message(msg.clone()).await,
                MsgHow::SendTyped => match msg {
                    Message::Text(t) => conn.send_text(t.clone()).await,
                    Message::Binary(b) => conn.send_binary(b.clone()).await,
                },
                MsgHow::Copied => match msg {
                    Message::Text(t) => conn.feed_text_copied(t.as_str()).await,
                    Message::Binary(b) => conn.feed_binary_copied(b).await,
                },
            },
            Op::Fragmented {
                msg,
                frame_size,
                send_fragmented: true,
                ping: None,
                ..
            } => conn.send_fragmented(msg.clone(), *frame_size).await,
            Op::Fragmented {
                msg,
                frame_size,
                write,
                ping,
                ..
            } => {
                let mut r = Ok(());
                for f in manual_fragments(msg, *frame_size, ping) {
                    r = if *write {
                        conn.write_frame(f).await
                    } else {
                        conn.feed_frame(f).await
                    };
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
            Op::Encoded { frames } => conn.feed_encoded(encode_all(frames)).await,
            Op::Ping(p) => conn.ping(p.clone()).await,
            Op::Flush => conn.flush().await,
        };
        r.map_err(|e| err(i, op, e))?;
    }
    conn.flush()
        .await
        .map_err(|e| format!("final flush failed: {e}"))?;
    if conn.buffered() != 0 {
        return Err(format!(
            "{} bytes still buffered after the final flush",
            conn.buffered()
        ));
    }
    Ok(())
}

/// Writes the script through the `WriteHalf` of a split `Conn`, then
/// flushes.
pub async fn write_split(ops: &[Op], config: &Config, io: ChaosIo) -> Result<(), String> {
    let conn = Conn::from_upgraded(io, Role::Server, config, BytesMut::new());
    // The read half stays alive (and idle) for the whole run.
    let (_rh, mut wh) = conn.split();
    for (i, op) in ops.iter().enumerate() {
        let r = match op {
            Op::Frame {
                frame,
                write: false,
            } => wh.feed_frame(frame.clone()).await,
            Op::Frame { frame, write: true } => wh.write_frame(frame.clone()).await,
            Op::Message { msg, how } => match how {
                MsgHow::Feed => {
                    wh.feed_frame(Frame::new(msg.opcode(), msg.payload().clone()))
                        .await
                }
                MsgHow::SendMessage => wh.send_message(msg.clone()).await,
                MsgHow::SendTyped => match msg {
                    Message::Text(t) => wh.send_text(t.clone()).await,
                    Message::Binary(b) => wh.send_binary(b.clone()).await,
                },
                MsgHow::Copied => match msg {
                    Message::Text(t) => wh.feed_text_copied(t.as_str()).await,
                    Message::Binary(b) => wh.feed_binary_copied(b).await,
                },
            },
            Op::Fragmented {
                msg,
                frame_size,
                write,
                ping,
                ..
            } => {
                let mut r = Ok(());
                for f in manual_fragments(msg, *frame_size, ping) {
                    r = if *write {
                        wh.write_frame(f).await
                    } else {
                        wh.feed_frame(f).await
                    };
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
            Op::Encoded { frames } => {
                let mut r = Ok(());
                for f in frames {
                    r = wh.feed_frame(f.clone()).await;
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
            Op::Ping(p) => wh.ping(p.clone()).await,
            Op::Flush => wh.flush().await,
        };
        r.map_err(|e| err(i, op, e))?;
    }
    wh.flush()
        .await
        .map_err(|e| format!("final flush failed: {e}"))
}

/// Checks that `wire` decodes to exactly `expected`, in order, and nothing
/// more. The error names the first frame that differs and how.
pub fn check(wire: &[u8], expected: &[Frame]) -> Result<(), String> {
    let mut dec = Decoder::new(Role::Client, Limits::unlimited());
    let mut buf = BytesMut::from(wire);
    let mut offset = 0;
    for (i, want) in expected.iter().enumerate() {
        let before = buf.len();
        match dec.decode(&mut buf) {
            Ok(Some(got)) => {
                if got != *want {
                    return Err(format!(
                        "frame {i} of {} (at wire offset {offset}) differs: {}",
                        expected.len(),
                        describe(&got, want)
                    ));
                }
            }
            Ok(None) => {
                return Err(format!(
                    "the output ends inside frame {i} of {} ({} bytes of it present; want {})",
                    expected.len(),
                    buf.len(),
                    summary(want)
                ))
            }
            Err(e) => {
                return Err(format!(
                    "frame {i} of {} (at wire offset {offset}) does not decode: {e}; want {}",
                    expected.len(),
                    summary(want)
                ))
            }
        }
        offset += before - buf.len();
    }
    if !buf.is_empty() {
        return Err(format!(
            "{} unexpected bytes after the last of {} frames",
            buf.len(),
            expected.len()
        ));
    }
    Ok(())
}

fn summary(f: &Frame) -> String {
    format!(
        "{:?} fin={} rsv={} len={}",
        f.opcode,
        f.fin,
        f.rsv,
        f.payload.len()
    )
}

fn describe(got: &Frame, want: &Frame) -> String {
    let first_diff = got
        .payload
        .iter()
        .zip(want.payload.iter())
        .position(|(a, b)| a != b);
    let at = match first_diff {
        Some(k) => format!("; payloads first differ at byte {k}"),
        None => String::new(),
    };
    format!("got {}, want {}{at}", summary(got), summary(want))
}

/// Runs `case` on a fresh current-thread runtime and checks the output.
/// Returns what the stream saw on success.
pub fn run_case(case: &Case) -> Result<ChaosStats, String> {
    let config = Config::builder()
        .vectored_threshold(case.vectored_threshold)
        .write_buffer_high_water(case.high_water)
        .build();
    let (io, captured) = ChaosIo::new(case.chaos);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let written = rt.block_on(async {
        match case.target {
            Target::Conn => write_conn(&case.ops, &config, io).await,
            Target::Split => write_split(&case.ops, &config, io).await,
        }
    });
    let out = captured.lock().unwrap_or_else(|p| p.into_inner());
    let checked = check(&out.bytes, &expected(&case.ops));
    match (written, checked) {
        (Ok(()), Ok(())) => Ok(out.stats),
        (Ok(()), Err(c)) => Err(format!("output corrupted: {c}")),
        (Err(w), Ok(())) => Err(w),
        (Err(w), Err(c)) => Err(format!("{w} (and the output so far: {c})")),
    }
}
