//! Regressions for the races of rooms with history, each pinned with a
//! store that can hold one read at a gate (so the test decides what
//! happens while a join or the feed waits for the store) and can be
//! flushed (a new history, as Redis after FLUSHALL). Members are real
//! connections over a pipe; every wait is for an event.
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rtwire::hub::{ConnId, HistoryConfig, Hub, HubConfig, JoinFrom, Registration, Resume};
use rtwire::pubsub::{ChannelName, MemoryBus, Store};
use rtwire::ws::{Config, Conn, Message, ReadHalf, Role};
use tokio::io::DuplexStream;

const STUCK: Duration = Duration::from_secs(30);

#[path = "pubsub_support/gated.rs"]
mod gated;
use gated::{Gated, Shared};

async fn hub(config: HubConfig) -> (Hub, Arc<Gated>, Arc<MemoryBus>) {
    let gated = Arc::new(Gated::default());
    let bus = Arc::new(MemoryBus::new());
    let hub = Hub::with_bus(config, "t", Arc::new(Shared(gated.clone())), bus.clone())
        .await
        .unwrap();
    (hub, gated, bus)
}

type Client = Conn<DuplexStream>;

/// A registered member over a pipe of `buf` bytes; its client reads only
/// when the test reads.
fn member(
    hub: &Hub,
    user: &str,
    buf: usize,
) -> (Client, Registration, ReadHalf<DuplexStream>, ConnId) {
    member_with(hub, user, buf, Config::default())
}

/// [`member`] whose server side has `server` as its config.
fn member_with(
    hub: &Hub,
    user: &str,
    buf: usize,
    server: Config,
) -> (Client, Registration, ReadHalf<DuplexStream>, ConnId) {
    let (c, s) = tokio::io::duplex(buf);
    let cfg = Config::default();
    let server = Conn::from_upgraded(s, Role::Server, &server, BytesMut::new());
    let (read, write) = server.split();
    let reg = hub.register(write, user, Default::default());
    let id = reg.id();
    (
        Conn::from_upgraded(c, Role::Client, &cfg, BytesMut::new()),
        reg,
        read,
        id,
    )
}

/// Reads texts until one equals `want`; returns those before it.
async fn read_until(c: &mut Client, want: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let m = tokio::time::timeout(STUCK, c.read_message())
            .await
            .expect("stuck")
            .unwrap()
            .expect("open");
        let s = m.as_text().unwrap_or("<binary>").to_owned();
        if s == want {
            return seen;
        }
        seen.push(s);
    }
}

fn text(s: &str) -> Message {
    Message::text(s.to_owned())
}

fn big(i: usize) -> Message {
    Message::text(format!("m{i:0>999}"))
}

/// A join that lost its room (left while its replay read the store) must
/// not undo the member's later join: before the fix its error path called
/// `leave` on whatever membership the connection had by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_join_does_not_undo_a_later_join() {
    let (hub, gated, _) = hub(HubConfig::default().history(HistoryConfig::default())).await;
    let (_x, _rx, _xr, x) = member(&hub, "x", 1 << 16);
    hub.join(x, "r").await.unwrap(); // the feed runs
    let first = hub.publish("r", &text("one"), None).await.unwrap();
    hub.publish("r", &text("two"), None).await.unwrap();
    let (mut m, _rm, _mr, id) = member(&hub, "m", 1 << 16);
    let (arrived, release) = gated.arm();
    let stale = {
        let hub = hub.clone();
        tokio::spawn(async move { hub.join_with(id, "r", JoinFrom::Since(first)).await })
    };
    arrived.await.unwrap(); // its replay is being read
    hub.leave(id, "r").await.unwrap();
    let j = hub.join_with(id, "r", JoinFrom::Live).await.unwrap();
    assert!(matches!(j.resume, Some(Resume::Live { .. })), "{j:?}");
    release.send(()).unwrap();
    assert!(stale.await.unwrap().is_err(), "the stale join gave up");
    assert_eq!(hub.rooms_of(id), ["r"], "the live join stands");
    hub.publish("r", &text("three"), None).await.unwrap();
    let before = read_until(&mut m, "three").await;
    assert!(
        !before.iter().any(|s| s == "two"),
        "the stale replay went on after the leave: {before:?}"
    );
}

/// A join whose replay was read in one history, handed off after the feed
/// moved to a new one: it must be told (a reset), then be live. Before the
/// fix it was parked in the feed for ever, waiting for a reset that had
/// already happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_across_an_epoch_change_is_told_and_goes_live() {
    let (hub, gated, _) = hub(HubConfig::default().history(HistoryConfig::default())).await;
    let (mut x, _rx, _xr, xid) = member(&hub, "x", 1 << 16);
    hub.join(xid, "r").await.unwrap();
    let first = hub.publish("r", &text("old-1"), None).await.unwrap();
    hub.publish("r", &text("old-2"), None).await.unwrap();
    read_until(&mut x, "old-2").await;
    let (mut m, _rm, _mr, mid) = member(&hub, "m", 1 << 16);
    let (arrived, release) = gated.arm();
    let join = {
        let hub = hub.clone();
        tokio::spawn(async move { hub.join_with(mid, "r", JoinFrom::Since(first)).await })
    };
    arrived.await.unwrap(); // m's replay is read, in the old history
    gated.flush();
    hub.publish("r", &text("new-1"), None).await.unwrap();
    // x, live through it: told, then the new history.
    let seen = read_until(&mut x, "new-1").await;
    assert!(
        seen.iter().any(|s| s.contains(r#""type":"reset""#)),
        "{seen:?}"
    );
    release.send(()).unwrap();
    let j = join.await.unwrap().unwrap();
    eprintln!("DEBUG {j:?}");
    assert!(
        matches!(j.resume, Some(Resume::Reset { .. })),
        "the join crossed a lost history: {j:?}"
    );
    hub.publish("r", &text("live-1"), None).await.unwrap();
    let seen = read_until(&mut m, "live-1").await;
    assert_eq!(seen[0], "old-2", "{seen:?}");
    assert!(seen[1].contains(r#""reason":"epoch-changed""#), "{seen:?}");
    assert!(seen[2].contains(r#""type":"joined""#), "{seen:?}");
}

/// The room emptied while its first join was starting the feed: the feed
/// must not run (before the fix its task followed the channel for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_whose_room_emptied_while_it_started_does_not_run() {
    let (hub, gated, bus) = hub(HubConfig::default().history(HistoryConfig::default())).await;
    let (_m, _rm, _mr, id) = member(&hub, "m", 1 << 16);
    let (arrived, release) = gated.arm();
    let join = {
        let hub = hub.clone();
        tokio::spawn(async move { hub.join_with(id, "r", JoinFrom::Live).await })
    };
    arrived.await.unwrap(); // the feed's start reads the store
    hub.leave(id, "r").await.unwrap();
    release.send(()).unwrap();
    assert!(join.await.unwrap().is_err());
    assert!(hub.room_names().is_empty());
    let log = ChannelName::new("hub.log.r").unwrap();
    assert!(
        !bus.has_subscribers(&log),
        "the gone room's feed follows its channel"
    );
}

/// A replay leaves half the connection's queue to its live traffic: a
/// member resuming a long history still gets every message of its other
/// rooms (before the fix they were dropped while the replay kept the
/// queue full).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_leaves_room_for_the_members_live_traffic() {
    let max = 16 * 1024;
    let (hub, _, _) = hub(HubConfig::default()
        .max_queue_bytes(max)
        .history(HistoryConfig::default().rooms(|r| r == "r")))
    .await;
    let mut first = None;
    for i in 0..100 {
        first.get_or_insert(hub.publish("r", &big(i), None).await.unwrap());
    }
    // A small socket buffer, so the hub's queue is where the replay waits.
    let small = Config::builder().write_buffer_high_water(2048).build();
    let (mut m, _rm, _mr, id) = member_with(&hub, "m", 2048, small);
    hub.join(id, "plain").await.unwrap();
    let join = {
        let hub = hub.clone();
        tokio::spawn(async move {
            hub.join_with(id, "r", JoinFrom::Since(first.unwrap()))
                .await
        })
    };
    // The client does not read: the replay fills what it may and waits.
    while hub.stats().queued_bytes < (max / 2 - 1100) as u64 {
        tokio::task::yield_now().await;
    }
    for i in 0..6 {
        let live = format!("plain-{i}-{:0>1000}", 0);
        let n = hub.broadcast("plain", &text(&live), None).await.unwrap();
        assert_eq!(n, 1, "plain-{i} was not queued for the resuming member");
    }
    assert_eq!(hub.stats().drops, 0);
    // The client reads everything now, up to the hand-off's notice.
    let mut plain = 0;
    let mut replayed = 0;
    loop {
        let m = tokio::time::timeout(STUCK, m.read_message())
            .await
            .expect("stuck")
            .unwrap()
            .expect("open");
        let s = m.as_text().unwrap().to_owned();
        if s.starts_with("plain-") {
            plain += 1;
        } else if s.starts_with('m') {
            replayed += 1;
        } else if s.contains(r#""type":"joined""#) {
            break;
        }
    }
    assert_eq!((plain, replayed), (6, 99));
    let j = join.await.unwrap().unwrap();
    assert_eq!(j.resume.map(|r| r.replayed()), Some(99));
}

/// A member waiting in the feed (its replay read the store ahead of the
/// feed) when the feed moves to a new history must be moved with it
/// whether or not the hub sends notices: with `room_notice` off it was
/// parked for ever, every message of the new history stale for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_member_crosses_a_new_history_without_notices() {
    let mut cfg = HubConfig::default().history(HistoryConfig::default());
    cfg.room_notice = None;
    let (hub, gated, _) = hub(cfg).await;
    let (_x, _rx, _xr, x) = member(&hub, "x", 1 << 16);
    hub.join(x, "r").await.unwrap(); // the feed runs
                                     // Stored behind the feed's back (no bus): the store is ahead of it.
    let log = ChannelName::new("hub.log.r").unwrap();
    let ahead = gated
        .store()
        .append(rtwire::pubsub::PublishRequest::new(log, "not a record"))
        .await
        .unwrap();
    let (mut m, _rm, _mr, id) = member(&hub, "m", 1 << 16);
    let j = hub.join_since(id, "r", Some(ahead.position)).await.unwrap();
    assert!(j.resume.is_some_and(|r| r.recovered()), "{j:?}");
    gated.flush();
    hub.publish("r", &text("new-1"), None).await.unwrap();
    let seen = read_until(&mut m, "new-1").await;
    assert!(seen.is_empty(), "{seen:?}");
}
