//! The Redis backend across OS processes: each instance of a service is a
//! separate `pubsub_node` process (`examples/pubsub_node.rs`) on one real
//! `redis-server`, and the test observes only what those processes print.
//!
//! Each test starts its own `redis-server` (`tests/redis_support`: a free
//! 127.0.0.1 port, a temporary directory, no persistence), since some of
//! them flush, restart or cut its clients. Waiting is event-driven: a test reads a
//! process's lines until the ones it expects arrive; the timeout only
//! guards against a stuck run ([`STUCK`]). Every child process (nodes and
//! Redis) is killed when its guard drops, also when a test fails.
//!
//! Needs `redis-server` and `redis-cli` on the `PATH`.
#![cfg(feature = "redis")]

mod example_support;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rtwire::pubsub::Position;

mod redis_support;
use redis_support::RedisServer;

/// The longest any expected line may take: a stuck guard, not a wait.
const STUCK: Duration = Duration::from_secs(60);

/// The bus settings the nodes run with (`RedisConfig::default()`), for
/// the bound on healing after a lost connection.
const RECONNECT_MIN: Duration = Duration::from_millis(50);
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
const OP_TIMEOUT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------- nodes

/// The `pubsub_node` example, next to this test in the target directory
/// (`target/<profile>/examples/`). `cargo test` builds it along with this
/// test (both need the `redis` feature), but `cargo test --test
/// pubsub_multiprocess` does not, and would run a stale or missing one; so
/// it is (re)built once per run, with this test's features and profile
/// (a no-op when it is up to date).
fn node_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let features = if cfg!(feature = "serde") {
            "redis,serde"
        } else {
            "redis"
        };
        example_support::build_example("pubsub_node", features)
    })
}

/// One line a node printed, and when the test read it.
#[derive(Clone, Debug)]
struct Line {
    at: Instant,
    text: String,
}

/// A `pubsub_node` process; its stdout read line by line on a thread.
/// Killed (SIGKILL) on drop.
struct Node {
    name: String,
    child: Child,
    rx: Receiver<Line>,
    /// Every line read so far.
    lines: Vec<Line>,
    /// Lines before this index were already returned by `expect`.
    cursor: usize,
    eof: bool,
}

impl Node {
    fn spawn(name: &str, args: &[&str]) -> Node {
        let mut child = Command::new(node_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for text in BufReader::new(out).lines() {
                let Ok(text) = text else { break };
                if tx
                    .send(Line {
                        at: Instant::now(),
                        text,
                    })
                    .is_err()
                {
                    break;
                }
            }
        });
        Node {
            name: name.to_string(),
            child,
            rx,
            lines: Vec::new(),
            cursor: 0,
            eof: false,
        }
    }

    fn sub(name: &str, url: &str, channel: &str, from: Option<Position>) -> Node {
        let from = from.map(|p| p.to_string());
        let mut args = vec!["sub", url, channel];
        if let Some(f) = &from {
            args.extend(["--from", f.as_str()]);
        }
        let mut n = Node::spawn(name, &args);
        n.expect(|l| l == "ready", "ready");
        n
    }

    fn publisher(name: &str, url: &str, channel: &str, count: u64, every_ms: u64) -> Node {
        let count = count.to_string();
        let every = every_ms.to_string();
        let mut args = vec!["pub", url, channel, &count, name];
        if every_ms > 0 {
            args.extend(["--every-ms", every.as_str()]);
        }
        Node::spawn(name, &args)
    }

    /// Takes in whatever lines have arrived, without waiting.
    fn poll(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(l) => self.lines.push(l),
                Err(mpsc::TryRecvError::Empty) => return,
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.eof = true;
                    return;
                }
            }
        }
    }

    /// Reads lines until one after the cursor satisfies `pred`; returns it
    /// and moves the cursor past it. Panics (with every line so far) on an
    /// `error` line, at end of output, or after [`STUCK`].
    fn expect(&mut self, pred: impl Fn(&str) -> bool, what: &str) -> Line {
        let deadline = Instant::now() + STUCK;
        loop {
            while self.cursor < self.lines.len() {
                let l = self.lines[self.cursor].clone();
                self.cursor += 1;
                assert!(
                    !l.text.starts_with("error"),
                    "{}: {} (waiting for {what}); lines: {:#?}",
                    self.name,
                    l.text,
                    self.texts()
                );
                if pred(&l.text) {
                    return l;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => self.lines.push(l),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: stuck waiting for {what}; lines: {:#?}",
                    self.name,
                    self.texts()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "{}: output ended waiting for {what}; lines: {:#?}",
                    self.name,
                    self.texts()
                ),
            }
        }
    }

    /// Waits for the `pub` line of `pos`.
    fn expect_pub(&mut self, pos: Position) -> Line {
        let want = format!("pub {pos} ");
        self.expect(|l| l.starts_with(&want), &format!("pub {pos}"))
    }

    /// Waits for a publisher's `published` line of `pos`.
    fn expect_published(&mut self, pos: Position) -> Line {
        let want = format!("published {pos}");
        self.expect(|l| l == want, &want)
    }

    /// SIGKILL, then reads the rest of its output (what it wrote before
    /// dying) to the end.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.drain();
    }

    /// Waits for the process to exit by itself and reads all its output.
    fn wait_exit(&mut self) {
        let st = self.child.wait().unwrap();
        self.drain();
        assert!(
            st.success(),
            "{}: exited {st}; lines: {:#?}",
            self.name,
            self.texts()
        );
    }

    fn drain(&mut self) {
        let deadline = Instant::now() + STUCK;
        while !self.eof {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => self.lines.push(l),
                Err(RecvTimeoutError::Disconnected) => self.eof = true,
                Err(RecvTimeoutError::Timeout) => panic!("{}: output did not end", self.name),
            }
        }
    }

    fn texts(&self) -> Vec<&str> {
        self.lines.iter().map(|l| l.text.as_str()).collect()
    }

    /// The `pub` lines: (position, data, when read).
    fn pubs(&self) -> Vec<(Position, String, Instant)> {
        self.lines
            .iter()
            .filter_map(|l| {
                let rest = l.text.strip_prefix("pub ")?;
                let (pos, data) = rest.split_once(' ').unwrap();
                Some((Position::parse(pos).unwrap(), data.to_string(), l.at))
            })
            .collect()
    }

    /// The `published` lines of a publisher: (position, when read).
    fn published(&self) -> Vec<(Position, Instant)> {
        self.lines
            .iter()
            .filter_map(|l| {
                let pos = l.text.strip_prefix("published ")?;
                Some((Position::parse(pos).unwrap(), l.at))
            })
            .collect()
    }

    /// Lines starting with `prefix` (e.g. `reset`, `lagged`).
    fn with_prefix(&self, prefix: &str) -> Vec<&str> {
        self.texts()
            .into_iter()
            .filter(|t| t.starts_with(prefix))
            .collect()
    }

    /// The last `stats` line: (reconnects, healed, resets, duplicates).
    fn last_stats(&self) -> (u64, u64, u64, u64) {
        let Some(s) = self.with_prefix("stats ").last().copied() else {
            return (0, 0, 0, 0);
        };
        let v: Vec<u64> = s[6..].split(' ').map(|x| x.parse().unwrap()).collect();
        (v[0], v[1], v[2], v[3])
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Positions `first..=last` of `epoch`, with the data publisher `prefix`
/// gave them when its `i`-th publication was the `i + first - 1`-th.
fn expected(epoch: u64, first: u64, last: u64, prefix: &str) -> Vec<(Position, String)> {
    (first..=last)
        .map(|o| (Position::new(epoch, o), format!("{prefix}-{o}")))
        .collect()
}

fn strip_times(v: &[(Position, String, Instant)]) -> Vec<(Position, String)> {
    v.iter().map(|(p, d, _)| (*p, d.clone())).collect()
}

/// A publisher's positions are one epoch's offsets 1..=count, in order.
fn assert_fresh_run(b: &Node, count: u64) -> u64 {
    let published = b.published();
    let epoch = published[0].0.epoch;
    let got: Vec<Position> = published.iter().map(|(p, _)| *p).collect();
    let want: Vec<Position> = (1..=count).map(|o| Position::new(epoch, o)).collect();
    assert_eq!(got, want, "{}'s positions", b.name);
    epoch
}

// ---------------------------------------------------------------- tests

/// Two instances on one Redis: subscriber A receives what publisher B
/// publishes, in order, each once.
#[test]
fn subscriber_process_receives_every_publication_of_another_process_once_in_order() {
    let redis = RedisServer::start();
    let url = redis.url();
    let mut a = Node::sub("a", &url, "two", None);
    let mut b = Node::publisher("b", &url, "two", 200, 0);
    b.wait_exit();
    let epoch = assert_fresh_run(&b, 200);
    a.expect_pub(Position::new(epoch, 200));
    a.kill();
    assert_eq!(strip_times(&a.pubs()), expected(epoch, 1, 200, "b"));
    let lines: Vec<&str> = a
        .texts()
        .into_iter()
        .filter(|t| !t.starts_with("stats"))
        .collect();
    assert_eq!(lines.len(), 201, "ready + 200 pub lines: {lines:#?}");
    eprintln!("two instances: A printed 200/200 publications of B, offsets 1..=200 of {epoch:x}");
}

/// `kill -9` a subscriber while it streams: resumed from the last position
/// it printed, a new subscriber gets every remaining publication exactly
/// once, in order, while the publisher keeps publishing.
#[test]
fn sigkilled_subscriber_is_resumed_from_its_last_position_exactly_once() {
    const N: u64 = 300;
    let redis = RedisServer::start();
    let url = redis.url();
    let mut a = Node::sub("a", &url, "kill9", None);
    let mut b = Node::publisher("b", &url, "kill9", N, 5);
    // A streams for a while...
    let first = b.expect(|l| l.starts_with("published "), "the first publish");
    let epoch = Position::parse(&first.text["published ".len()..])
        .unwrap()
        .epoch;
    a.expect_pub(Position::new(epoch, 40));
    // ...and dies mid-stream.
    a.kill();
    b.poll();
    let published_at_kill = b.published().len() as u64;
    assert!(
        published_at_kill < N,
        "the publisher had finished before the kill"
    );
    let a_pubs = strip_times(&a.pubs());
    let last = a_pubs.last().unwrap().0;
    assert!(last.offset >= 40);
    assert_eq!(a_pubs, expected(epoch, 1, last.offset, "b"));

    // The publisher goes on while A is dead: C will have ten or more to
    // replay.
    b.expect_published(Position::new(epoch, last.offset + 10));
    b.poll();
    let published_at_resume = b.published().len();

    // The client resumes on another instance from the last position A
    // printed.
    let mut c = Node::sub("c", &url, "kill9", Some(last));
    let replayed = c.expect(
        |l| l.starts_with("replayed ") || l.starts_with("reset"),
        "replay",
    );
    assert!(replayed.text.starts_with("replayed "), "{}", replayed.text);
    let n_replayed: u64 = replayed.text.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(n_replayed >= 10, "{}", replayed.text);
    b.wait_exit();
    assert_fresh_run(&b, N);
    c.expect_pub(Position::new(epoch, N));
    c.kill();
    assert_eq!(
        strip_times(&c.pubs()),
        expected(epoch, last.offset + 1, N, "b"),
        "C's lines: {:#?}",
        c.texts()
    );
    assert!(c.with_prefix("reset").is_empty() && c.with_prefix("lagged").is_empty());
    eprintln!(
        "kill -9: A printed 1..={} ({published_at_kill} seen published when it died, \
         {published_at_resume} when C started); C replayed {n_replayed}, \
         then {} live ({} overlap lines), {}..={N} each once",
        last.offset,
        c.pubs().len() as u64 - n_replayed,
        c.with_prefix("overlap").len(),
        last.offset + 1
    );
}

/// `CLIENT KILL TYPE pubsub` while a publisher publishes: the subscriber
/// still prints every publication exactly once, in order; the ones
/// published while its pub/sub connection was down arrive healed within
/// the documented bound.
#[test]
fn pubsub_connection_killed_gap_is_healed_exactly_once_in_order() {
    const N: u64 = 400;
    let redis = RedisServer::start();
    let url = redis.url();
    let mut a = Node::sub("a", &url, "cut", None);
    let mut b = Node::publisher("b", &url, "cut", N, 5);
    let first = b.expect(|l| l.starts_with("published "), "the first publish");
    let epoch = Position::parse(&first.text["published ".len()..])
        .unwrap()
        .epoch;
    a.expect_pub(Position::new(epoch, 50));
    let killed_at = Instant::now();
    let killed = redis.kill_pubsub_clients();
    assert!(killed >= 1, "no pub/sub connection was killed");
    b.wait_exit();
    assert_fresh_run(&b, N);
    a.expect_pub(Position::new(epoch, N));
    a.kill();

    let a_pubs = a.pubs();
    assert_eq!(
        strip_times(&a_pubs),
        expected(epoch, 1, N, "b"),
        "A's lines: {:#?}",
        a.texts()
    );
    assert!(a.with_prefix("reset").is_empty() && a.with_prefix("lagged").is_empty());
    let (reconnects, healed, _, duplicates) = a.last_stats();
    assert!(reconnects >= 1, "A never reconnected: {:#?}", a.texts());
    assert!(healed >= 1, "nothing was lost to heal: {:#?}", a.texts());

    // How late each publication made after the kill reached A (from B
    // printing it stored to A printing it delivered).
    let published = b.published();
    let mut worst = Duration::ZERO;
    let mut after_kill = 0;
    for ((pos, stored_at), (apos, _, got_at)) in published.iter().zip(&a_pubs) {
        assert_eq!(pos, apos);
        if *stored_at >= killed_at {
            after_kill += 1;
            worst = worst.max(got_at.saturating_duration_since(*stored_at));
        }
    }
    let bound = RECONNECT_MIN + SYNC_INTERVAL + OP_TIMEOUT;
    eprintln!(
        "CLIENT KILL: {killed} pub/sub connection(s) killed; A printed {N}/{N} once in order; \
         reconnects {reconnects}, healed {healed}, duplicates dropped {duplicates}; \
         {after_kill} stored after the kill, the latest delivered {worst:?} after it was \
         stored (bound {bound:?})"
    );
    assert!(worst < bound, "healed after {worst:?}, bound {bound:?}");
}

/// The history lost under old positions (`lose` flushes it or restarts
/// Redis): a resume from an old position is `reset EpochChanged`, never a
/// partial replay, also once the new history has publications; a live
/// subscriber gets a `reset` and then the new history.
fn lost_history_is_a_reset(what: &str, lose: impl FnOnce(&mut RedisServer)) {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let ch = "lost";
    let mut a = Node::sub("a", &url, ch, None);
    let mut b = Node::publisher("old", &url, ch, 20, 0);
    b.wait_exit();
    let old_epoch = assert_fresh_run(&b, 20);
    let old_last = Position::new(old_epoch, 20);
    a.expect_pub(old_last);

    let lost_at = Instant::now();
    lose(&mut redis);
    let reset = a.expect(|l| l.starts_with("reset"), "the live reset");
    let reset_after = reset.at - lost_at;
    assert_eq!(reset.text, "reset EpochChanged", "A: {:#?}", a.texts());
    // Nothing tells the bus of a flush: its periodic sync finds it.
    let bound = RECONNECT_MIN + SYNC_INTERVAL + OP_TIMEOUT;
    assert!(
        reset_after < bound,
        "reset after {reset_after:?}, bound {bound:?}"
    );

    // Resuming from the old position before anything is published anew.
    let mut c = Node::sub("c", &url, ch, Some(old_last));
    let c_reset = c.expect(|l| !l.starts_with("stats"), "C's replay");
    let top = c_reset
        .text
        .strip_prefix("reset EpochChanged ")
        .unwrap_or_else(|| panic!("C: {:#?}", c.texts()));
    let top = Position::parse(top).unwrap();
    assert_ne!(top.epoch, old_epoch);
    assert_eq!(top.offset, 0);

    // The new history.
    let mut b2 = Node::publisher("new", &url, ch, 5, 0);
    b2.wait_exit();
    let new_epoch = assert_fresh_run(&b2, 5);
    assert_eq!(new_epoch, top.epoch);
    a.expect_pub(Position::new(new_epoch, 5));
    c.expect_pub(Position::new(new_epoch, 5));

    // Resuming from the old position now that the new history has 5: still
    // a reset, not those 5 as if they followed the old position.
    let mut d = Node::sub("d", &url, ch, Some(old_last));
    let d_first = d.expect(|l| !l.starts_with("stats"), "D's replay");
    assert_eq!(
        d_first.text,
        format!("reset EpochChanged {}", Position::new(new_epoch, 5))
    );
    d.kill();
    assert!(d.pubs().is_empty(), "D replayed: {:#?}", d.texts());

    a.kill();
    c.kill();
    // A: the old history, one reset, the new history.
    let mut want = expected(old_epoch, 1, 20, "old");
    want.extend(expected(new_epoch, 1, 5, "new"));
    assert_eq!(strip_times(&a.pubs()), want, "A: {:#?}", a.texts());
    let a_reset_index = a
        .texts()
        .iter()
        .position(|t| t.starts_with("reset"))
        .unwrap();
    let a_first_new = a
        .texts()
        .iter()
        .position(|t| t.starts_with(&format!("pub {new_epoch:x}-")))
        .unwrap();
    assert!(a_reset_index < a_first_new);
    assert_eq!(a.with_prefix("reset").len(), 1, "A: {:#?}", a.texts());
    assert_eq!(strip_times(&c.pubs()), expected(new_epoch, 1, 5, "new"));
    let (reconnects, healed, resets, duplicates) = a.last_stats();
    assert_eq!(resets, 1);
    eprintln!(
        "{what}: live A printed `{}` {reset_after:?} after (sync interval {SYNC_INTERVAL:?}), \
         then {new_epoch:x}-1..=5 (A's bus: reconnects {reconnects}, healed {healed}, \
         resets {resets}, duplicates {duplicates}); C from {old_last} printed `{}`; \
         D from {old_last} after 5 new printed `{}` and no pub",
        reset.text, c_reset.text, d_first.text
    );
}

#[test]
fn flushall_turns_old_positions_into_resets() {
    lost_history_is_a_reset("FLUSHALL", |r| r.flushall());
}

#[test]
fn redis_restart_turns_old_positions_into_resets() {
    lost_history_is_a_reset("restart", RedisServer::restart);
}

/// Two publisher processes on one channel at once: the union of the
/// positions they were given is unique and contiguous, 1..=N in one epoch,
/// and a subscriber gets all N in that order.
#[test]
fn concurrent_publisher_processes_get_unique_contiguous_positions() {
    const EACH: u64 = 150;
    let redis = RedisServer::start();
    let url = redis.url();
    let mut a = Node::sub("a", &url, "two-pubs", None);
    let mut x = Node::publisher("x", &url, "two-pubs", EACH, 0);
    let mut y = Node::publisher("y", &url, "two-pubs", EACH, 0);
    x.wait_exit();
    y.wait_exit();
    let px = x.published();
    let py = y.published();
    assert_eq!(px.len() as u64, EACH);
    assert_eq!(py.len() as u64, EACH);
    let epoch = px[0].0.epoch;
    // Who got which position, and the data it published there.
    let mut by_pos = std::collections::BTreeMap::new();
    for (name, list) in [("x", &px), ("y", &py)] {
        let offsets: Vec<u64> = list.iter().map(|(p, _)| p.offset).collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "{name}: {offsets:?}"
        );
        for (i, (p, _)) in list.iter().enumerate() {
            assert_eq!(p.epoch, epoch);
            let prev = by_pos.insert(p.offset, format!("{name}-{}", i + 1));
            assert!(prev.is_none(), "offset {} given twice", p.offset);
        }
    }
    let offsets: Vec<u64> = by_pos.keys().copied().collect();
    assert_eq!(offsets, (1..=2 * EACH).collect::<Vec<_>>());
    let interleavings = by_pos
        .values()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0].as_bytes()[0] != w[1].as_bytes()[0])
        .count();

    a.expect_pub(Position::new(epoch, 2 * EACH));
    a.kill();
    let want: Vec<(Position, String)> = by_pos
        .into_iter()
        .map(|(o, d)| (Position::new(epoch, o), d))
        .collect();
    assert_eq!(strip_times(&a.pubs()), want);
    eprintln!(
        "two publishers: {} positions, 1..={} of {epoch:x}, unique; {interleavings} switches \
         between x and y; A printed all in order",
        2 * EACH,
        2 * EACH
    );
}
