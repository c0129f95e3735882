//! A closed-loop WebSocket load generator (in the spirit of uWebSockets'
//! `load_test`), cheap enough that the server is the bottleneck.
//!
//! ```text
//! # C connections, payload S bytes, P messages in flight per connection, T seconds:
//! cargo run --release --example load -- echo 127.0.0.1:9001 -c 16 -s 16 -p 1 -t 3 [--text] [--raw]
//! # N idle upgraded connections; server RSS per connection and handshakes/s:
//! cargo run --release --example load -- idle 127.0.0.1:9001 -n 5000 --pid PID [--warm [--churn BYTES]]
//! # Exactly N 16-byte echoes on one connection (for callgrind), P in flight:
//! cargo run --release --example load -- count 127.0.0.1:9001 -n 20000 -s 16 [-p 32]
//! ```
//!
//! Every connection sends pre-encoded, pre-masked frames (one fixed key):
//! the client never encodes or masks while it runs. Replies are not
//! unmasked or validated either: the client parses frame headers only,
//! skipping payloads, so its cost per message is a few dozen instructions
//! plus the syscalls. `--raw` skips the upgrade, for a raw TCP echo server
//! (which echoes the masked frames back: the parser accepts both).
//!
//! Each run prints one human line and one `RESULT key=value ...` line for
//! scripts. Latency is measured per message from the write that sent it to
//! the read that completed its echo (a closed loop: a connection sends one
//! new message for each echo it receives).
//!
//! In `idle` mode, `--warm` sends one 16-byte message on each connection
//! (and waits for its echo) before RSS is measured; against
//! `echo_server --keep-last` every connection then holds its last message.
//! Sent back to back, those messages are read one after another and may
//! share read memory on the server; `--churn BYTES` makes the server read
//! BYTES of other traffic (8 KiB messages on one extra connection, echoed
//! and counted) after each connection's message, as a busy server does
//! between two messages of one client, so that memory a retained message
//! holds on to shows up per connection.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const UPGRADE: &str = "GET / HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

#[derive(Clone, Debug)]
struct Opts {
    mode: String,
    addr: String,
    conns: usize,
    size: usize,
    depth: usize,
    secs: f64,
    warmup: f64,
    text: bool,
    raw: bool,
    n: usize,
    pid: Option<u32>,
    warm: bool,
    churn: usize,
}

fn parse_args() -> Opts {
    let mut o = Opts {
        mode: "echo".into(),
        addr: "127.0.0.1:9001".into(),
        conns: 1,
        size: 16,
        depth: 1,
        secs: 3.0,
        warmup: 0.5,
        text: false,
        raw: false,
        n: 1000,
        pid: None,
        warm: false,
        churn: 0,
    };
    let mut args = std::env::args().skip(1);
    let mut positional = 0;
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_default();
        match a.as_str() {
            "-c" => o.conns = val().parse().unwrap_or(1),
            "-s" => o.size = val().parse().unwrap_or(16),
            "-p" => o.depth = val().parse::<usize>().unwrap_or(1).max(1),
            "-t" => o.secs = val().parse().unwrap_or(3.0),
            "-w" => o.warmup = val().parse().unwrap_or(0.5),
            "-n" => o.n = val().parse().unwrap_or(1000),
            "--pid" => o.pid = val().parse().ok(),
            "--text" => o.text = true,
            "--raw" => o.raw = true,
            "--warm" => o.warm = true,
            "--churn" => o.churn = val().parse().unwrap_or(0),
            _ => {
                match positional {
                    0 => o.mode = a,
                    _ => o.addr = a,
                }
                positional += 1;
            }
        }
    }
    o
}

fn main() -> std::io::Result<()> {
    let o = parse_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    match o.mode.as_str() {
        "echo" => local.block_on(&rt, echo(o)),
        "idle" => local.block_on(&rt, idle(o)),
        "count" => local.block_on(&rt, count(o)),
        m => Err(std::io::Error::other(format!(
            "unknown mode {m}: echo | idle | count"
        ))),
    }
}

/// One client frame, masked with [`KEY`].
fn masked_frame(text: bool, size: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(size + 14);
    f.push(0x80 | if text { 1 } else { 2 });
    if size < 126 {
        f.push(0x80 | size as u8);
    } else if size <= 0xFFFF {
        f.push(0x80 | 126);
        f.extend_from_slice(&(size as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(size as u64).to_be_bytes());
    }
    f.extend_from_slice(&KEY);
    f.extend((0..size).map(|i| (b'a' + (i % 26) as u8) ^ KEY[i & 3]));
    f
}

async fn connect(addr: &str, raw: bool) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    if raw {
        return Ok(s);
    }
    s.write_all(UPGRADE.as_bytes()).await?;
    let mut head = Vec::with_capacity(256);
    let mut b = [0u8; 512];
    loop {
        let n = s.read(&mut b).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&b[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            if !head.starts_with(b"HTTP/1.1 101") {
                return Err(std::io::Error::other("upgrade refused"));
            }
            if end + 4 != head.len() {
                return Err(std::io::Error::other("bytes after the 101"));
            }
            return Ok(s);
        }
    }
}

/// Counts complete frames in a byte stream without buffering payloads:
/// headers are gathered (at most 14 bytes), payloads skipped.
#[derive(Default)]
struct FrameCounter {
    hdr: [u8; 14],
    have: usize,
    skip: u64,
}

impl FrameCounter {
    /// Feeds bytes; returns how many frames completed.
    fn feed(&mut self, mut data: &[u8]) -> usize {
        let mut done = 0;
        while !data.is_empty() {
            if self.skip > 0 {
                let k = (self.skip as usize).min(data.len());
                self.skip -= k as u64;
                data = &data[k..];
                if self.skip == 0 {
                    done += 1;
                }
                continue;
            }
            let take = (14 - self.have).min(data.len());
            self.hdr[self.have..self.have + take].copy_from_slice(&data[..take]);
            let avail = self.have + take;
            if avail < 2 {
                self.have = avail;
                return done;
            }
            let masked = self.hdr[1] & 0x80 != 0;
            let (len, mut hl) = match self.hdr[1] & 0x7F {
                126 => (u64::from(u16::from_be_bytes([self.hdr[2], self.hdr[3]])), 4),
                127 => (
                    u64::from_be_bytes(self.hdr[2..10].try_into().unwrap_or([0; 8])),
                    10,
                ),
                n => (u64::from(n), 2),
            };
            if masked {
                hl += 4;
            }
            if avail < hl {
                self.have = avail;
                return done;
            }
            // Bytes of `data` that belonged to the header.
            let used = hl - self.have;
            data = &data[used..];
            self.have = 0;
            if len == 0 {
                done += 1;
            } else {
                self.skip = len;
            }
        }
        done
    }
}

/// Latency histogram: 1 µs buckets up to 100 ms, then one overflow bucket.
struct Hist {
    buckets: Vec<u64>,
    count: u64,
}

impl Hist {
    fn new() -> Self {
        Hist {
            buckets: vec![0; 100_001],
            count: 0,
        }
    }
    fn record(&mut self, d: Duration, n: u64) {
        let us = (d.as_micros() as usize).min(100_000);
        self.buckets[us] += n;
        self.count += n;
    }
    fn quantile(&self, q: f64) -> usize {
        let target = (self.count as f64 * q).ceil() as u64;
        let mut acc = 0;
        for (us, &c) in self.buckets.iter().enumerate() {
            acc += c;
            if acc >= target.max(1) {
                return us;
            }
        }
        100_000
    }
}

struct Stats {
    msgs: u64,
    hist: Hist,
}

async fn echo(o: Opts) -> std::io::Result<()> {
    let frame = masked_frame(o.text, o.size);
    let block: Rc<Vec<u8>> = Rc::new(frame.repeat(o.depth));
    let flen = frame.len();
    let stats = Rc::new(RefCell::new(Stats {
        msgs: 0,
        hist: Hist::new(),
    }));
    let mut conns = Vec::with_capacity(o.conns);
    for _ in 0..o.conns {
        conns.push(connect(&o.addr, o.raw).await?);
    }
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(o.warmup);
    let end = measure_from + Duration::from_secs_f64(o.secs);
    let mut tasks = Vec::new();
    for mut s in conns {
        let block = block.clone();
        let stats = stats.clone();
        let depth = o.depth;
        tasks.push(tokio::task::spawn_local(async move {
            let mut sent_at: VecDeque<Instant> = VecDeque::with_capacity(depth);
            let mut counter = FrameCounter::default();
            let mut buf = vec![0u8; 256 * 1024];
            let now = Instant::now();
            s.write_all(&block).await?;
            sent_at.extend(std::iter::repeat_n(now, depth));
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
                }
                let k = counter.feed(&buf[..n]);
                if k == 0 {
                    continue;
                }
                let now = Instant::now();
                if now >= measure_from && now < end {
                    let mut st = stats.borrow_mut();
                    st.msgs += k as u64;
                    for t in sent_at.drain(..k) {
                        st.hist.record(now - t, 1);
                    }
                } else {
                    sent_at.drain(..k);
                }
                if now >= end {
                    return Ok::<(), std::io::Error>(());
                }
                s.write_all(&block[..k * flen]).await?;
                sent_at.extend(std::iter::repeat_n(now, k));
            }
        }));
    }
    let mut errors = 0;
    for t in tasks {
        if !matches!(t.await, Ok(Ok(()))) {
            errors += 1;
        }
    }
    let st = stats.borrow();
    let secs = o.secs;
    let rate = st.msgs as f64 / secs;
    let mbs = rate * o.size as f64 / 1e6;
    let (p50, p99) = (st.hist.quantile(0.50), st.hist.quantile(0.99));
    println!(
        "{} conns x {} B x depth {} ({}): {:.0} msgs/s, {:.1} MB/s, p50 {} us, p99 {} us{}",
        o.conns,
        o.size,
        o.depth,
        if o.text { "text" } else { "binary" },
        rate,
        mbs,
        p50,
        p99,
        if errors > 0 {
            format!(", {errors} connections failed")
        } else {
            String::new()
        }
    );
    println!(
        "RESULT mode=echo conns={} size={} depth={} msgs_s={:.0} mb_s={:.2} p50_us={} p99_us={} errors={}",
        o.conns, o.size, o.depth, rate, mbs, p50, p99, errors
    );
    Ok(())
}

fn rss_kb(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no VmRSS"))
}

async fn idle(o: Opts) -> std::io::Result<()> {
    let pid = o
        .pid
        .ok_or_else(|| std::io::Error::other("idle mode needs --pid SERVER_PID"))?;
    // The churn connection (if any) is opened before the first RSS reading:
    // it is not one of the `n`.
    const CHURN_FRAME: usize = 8 * 1024;
    let churn_frames = o.churn.div_ceil(CHURN_FRAME);
    let churn_block = masked_frame(false, CHURN_FRAME).repeat(churn_frames);
    let mut churner = if o.warm && churn_frames > 0 {
        Some(connect(&o.addr, o.raw).await?)
    } else {
        None
    };
    let before = rss_kb(pid)?;
    // Open connections 64 at a time: handshakes in flight, like a burst
    // of reconnecting clients, without overrunning the accept backlog.
    let start = Instant::now();
    let mut conns: Vec<TcpStream> = Vec::with_capacity(o.n);
    let frame = masked_frame(false, 16);
    while conns.len() < o.n {
        let batch = (o.n - conns.len()).min(64);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..batch {
            let addr = o.addr.clone();
            let raw = o.raw;
            set.spawn_local(async move { connect(&addr, raw).await });
        }
        while let Some(r) = set.join_next().await {
            conns.push(r.map_err(std::io::Error::other)??);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    if o.warm {
        // One echo on each connection, so that every read path has run.
        let mut b = [0u8; 64];
        for s in &mut conns {
            s.write_all(&frame).await?;
            let mut got = 0;
            while got < 18 {
                got += s.read(&mut b).await?;
            }
            if let Some(c) = churner.as_mut() {
                churn(c, &churn_block, churn_frames).await?;
            }
        }
    }
    // Let the server finish whatever the last handshakes left to do.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kb(pid)?;
    let per_conn = (after as f64 - before as f64) * 1024.0 / o.n as f64;
    println!(
        "{} idle connections{}: server RSS {} kB -> {} kB, {:.0} bytes per connection; {:.0} handshakes/s",
        o.n,
        match (o.warm, churn_frames) {
            (false, _) => String::new(),
            (true, 0) => " (after one echo each)".to_string(),
            (true, _) => format!(" (after one echo each, {} B of churn between)", churn_block.len()),
        },
        before,
        after,
        per_conn,
        o.n as f64 / elapsed
    );
    println!(
        "RESULT mode=idle n={} warm={} churn={} rss_before_kb={} rss_after_kb={} bytes_per_conn={:.0} handshakes_s={:.0}",
        o.n,
        o.warm,
        if churner.is_some() { churn_block.len() } else { 0 },
        before,
        after,
        per_conn,
        o.n as f64 / elapsed
    );
    Ok(())
}

/// Sends `block` (`frames` whole frames) on `s` and reads their echoes,
/// writing and reading at once so that neither side's buffers fill up.
async fn churn(s: &mut TcpStream, block: &[u8], frames: usize) -> std::io::Result<()> {
    let (mut r, mut w) = s.split();
    let read = async {
        let mut counter = FrameCounter::default();
        let mut buf = vec![0u8; 64 * 1024];
        let mut done = 0;
        while done < frames {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
            }
            done += counter.feed(&buf[..n]);
        }
        Ok(())
    };
    tokio::try_join!(w.write_all(block), read)?;
    Ok(())
}

async fn count(o: Opts) -> std::io::Result<()> {
    let frame = masked_frame(o.text, o.size);
    // The window: `depth` messages in flight, one new message sent for
    // each echo received (as `echo` does), `n` echoes in all.
    let depth = o.depth.min(o.n.max(1));
    let block = frame.repeat(depth);
    let mut s = connect(&o.addr, o.raw).await?;
    let mut counter = FrameCounter::default();
    let mut buf = vec![0u8; 256 * 1024];
    let start = Instant::now();
    let mut sent = 0usize;
    let mut received = 0usize;
    if o.n > 0 {
        s.write_all(&block).await?;
        sent = depth;
    }
    while received < o.n {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let k = counter.feed(&buf[..n]);
        received += k;
        let more = k.min(o.n - sent).min(depth);
        if more > 0 {
            s.write_all(&block[..more * frame.len()]).await?;
            sent += more;
        }
    }
    // A clean close: close frame (masked, empty), then wait for the reply.
    if !o.raw {
        s.write_all(&[0x88, 0x80, KEY[0], KEY[1], KEY[2], KEY[3]])
            .await?;
        let _ = s.read(&mut buf).await;
    }
    println!(
        "RESULT mode=count n={} size={} depth={} secs={:.3}",
        o.n,
        o.size,
        depth,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_handles_split_headers_and_masks() {
        let mut wire = masked_frame(false, 70_000);
        wire.extend(masked_frame(true, 5));
        wire.extend([0x82, 0x00]);
        for cut in [1, 2, 3, 7, 13, 14, 15, 1000, wire.len()] {
            let mut c = FrameCounter::default();
            let mut total = 0;
            for chunk in wire.chunks(cut) {
                total += c.feed(chunk);
            }
            assert_eq!(total, 3, "chunk size {cut}");
        }
    }
}
