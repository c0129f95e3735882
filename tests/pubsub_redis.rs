//! The Redis backend against a real `redis-server` (started per test by
//! `redis_support`): positions, replay, idempotency, several instances,
//! and the failures (pub/sub connection killed, FLUSHALL, restart, Redis
//! down). Waits are on events; every timeout here is only a guard against
//! a stuck test.

#![cfg(feature = "redis")]

mod redis_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_support::RedisServer;
use rtwire::pubsub::redis::{connect, envelope, RedisBus, RedisConfig, RedisStore};
use rtwire::pubsub::{
    Bus, ChannelName, Delivery, GapReason, Position, PubSubError, Publication, PublishRequest,
    Since, Store, Subscription,
};

/// Only against a stuck test; nothing should come near it.
const STUCK: Duration = Duration::from_secs(20);

fn config(s: &RedisServer) -> RedisConfig {
    RedisConfig::default()
        .url(s.url())
        .op_timeout(Duration::from_millis(500))
        .reconnect_min(Duration::from_millis(20))
        .reconnect_max(Duration::from_millis(200))
        .sync_interval(Duration::from_millis(200))
}

async fn instance(c: RedisConfig) -> (RedisStore, RedisBus) {
    connect(c).await.expect("connect")
}

fn ch(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

async fn publish(store: &RedisStore, c: &ChannelName, data: &str) -> Publication {
    store
        .append(PublishRequest::new(c.clone(), data.to_owned()))
        .await
        .expect("append")
}

async fn next(sub: &mut Subscription) -> Delivery {
    tokio::time::timeout(STUCK, sub.recv())
        .await
        .expect("stuck waiting for a delivery")
        .expect("subscription ended")
}

async fn next_pub(sub: &mut Subscription) -> Arc<Publication> {
    match next(sub).await {
        Delivery::Publication(p) => p,
        other => panic!("expected a publication, got {other:?}"),
    }
}

/// Polls `cond` (cheap, local) until it holds; a guard against a stuck
/// test, not a time window.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < STUCK, "stuck waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn replay(s: Since) -> (Vec<Publication>, Position) {
    match s {
        Since::Publications { publications, top } => (publications, top),
        other => panic!("expected publications, got {other:?}"),
    }
}

fn gap(s: Since) -> (GapReason, Position) {
    match s {
        Since::CannotCatchUp { reason, top } => (reason, top),
        other => panic!("expected a gap, got {other:?}"),
    }
}

#[tokio::test]
async fn append_and_since_in_order_with_every_gap_reason() {
    let server = RedisServer::start();
    let (store, _bus) = instance(config(&server).history_size(10)).await;
    let c = ch("orders");

    // A new channel: an epoch at once, offset 0.
    let (none, top0) = replay(store.since(&c, None, 100).await.unwrap());
    assert!(none.is_empty());
    assert_eq!(top0.offset, 0);

    let mut ps = Vec::new();
    for i in 1..=5 {
        let req = PublishRequest::new(c.clone(), format!("m{i}"))
            .event_type("e")
            .tenant("t")
            .retry_ms(7);
        ps.push(store.append(req).await.unwrap());
    }
    let epoch = ps[0].position.epoch;
    assert_eq!(
        epoch, top0.epoch,
        "the epoch handed out before the first publish"
    );
    for (i, p) in ps.iter().enumerate() {
        assert_eq!(p.position, Position::new(epoch, i as u64 + 1));
        assert_eq!(&p.data[..], format!("m{}", i + 1).as_bytes());
    }

    let (got, top) = replay(store.since(&c, Some(ps[1].position), 100).await.unwrap());
    assert_eq!(top, ps[4].position);
    assert_eq!(
        got,
        ps[2..].to_vec(),
        "exactly what append returned, in order"
    );
    let (got, _) = replay(store.since(&c, Some(ps[4].position), 100).await.unwrap());
    assert!(got.is_empty());
    let (got, _) = replay(store.since(&c, Some(ps[1].position), 3).await.unwrap());
    assert_eq!(got.len(), 3, "exactly the limit is fine");

    assert_eq!(
        gap(store
            .since(&c, Some(Position::new(epoch ^ 1, 2)), 100)
            .await
            .unwrap()),
        (GapReason::EpochChanged, top)
    );
    assert_eq!(
        gap(store
            .since(&c, Some(Position::new(epoch, 6)), 100)
            .await
            .unwrap()),
        (GapReason::Ahead, top)
    );
    assert_eq!(
        gap(store
            .since(&c, Some(Position::new(epoch, 1)), 3)
            .await
            .unwrap()),
        (GapReason::OverLimit, top)
    );

    // Trimming (MAXLEN ~ 10 drops whole stream nodes of 100 entries).
    for i in 6..=250 {
        publish(&store, &c, &format!("m{i}")).await;
    }
    let (reason, top) = gap(store
        .since(&c, Some(Position::new(epoch, 1)), 1000)
        .await
        .unwrap());
    assert_eq!((reason, top.offset), (GapReason::Evicted, 250));
    let (got, _) = replay(
        store
            .since(&c, Some(Position::new(epoch, 240)), 1000)
            .await
            .unwrap(),
    );
    let offsets: Vec<u64> = got.iter().map(|p| p.position.offset).collect();
    assert_eq!(offsets, (241..=250).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_idempotency_key_stores_once() {
    let server = RedisServer::start();
    let (store, _bus) = instance(config(&server)).await;
    let c = ch("idem");
    let req = PublishRequest::new(c.clone(), "pay 10").idempotency_key("k-1");
    let first = store.append(req.clone()).await.unwrap();
    let again = store.append(req.clone()).await.unwrap();
    assert_eq!(again, first, "the stored publication, not a new one");
    // Another instance sees the same key.
    let (other, _b) = instance(config(&server)).await;
    assert_eq!(other.append(req).await.unwrap(), first);
    let next = store
        .append(PublishRequest::new(c.clone(), "pay 20").idempotency_key("k-2"))
        .await
        .unwrap();
    assert_eq!(next.position, first.position.next());
    let (all, _) = replay(
        store
            .since(&c, Some(Position::new(first.position.epoch, 0)), 10)
            .await
            .unwrap(),
    );
    assert_eq!(all.len(), 2, "the retries stored nothing");
}

#[tokio::test]
async fn two_instances_publishing_at_once_get_unique_contiguous_positions() {
    let server = RedisServer::start();
    let (a, _ba) = instance(config(&server)).await;
    let (b, _bb) = instance(config(&server)).await;
    let c = ch("race");
    let mut tasks = Vec::new();
    for (n, store) in [a.clone(), b.clone()].into_iter().enumerate() {
        for i in 0..100 {
            let (store, c) = (store.clone(), c.clone());
            tasks.push(tokio::spawn(async move {
                publish(&store, &c, &format!("{n}/{i}")).await.position
            }));
        }
    }
    let mut positions = Vec::new();
    for t in tasks {
        positions.push(t.await.unwrap());
    }
    let epoch = positions[0].epoch;
    assert!(positions.iter().all(|p| p.epoch == epoch));
    let mut offsets: Vec<u64> = positions.iter().map(|p| p.offset).collect();
    offsets.sort_unstable();
    assert_eq!(offsets, (1..=200).collect::<Vec<_>>());
    let (all, _) = replay(
        a.since(&c, Some(Position::new(epoch, 0)), 200)
            .await
            .unwrap(),
    );
    assert_eq!(all.len(), 200);
}

#[tokio::test]
async fn the_bus_delivers_across_instances_in_order() {
    let server = RedisServer::start();
    let (sa, ba) = instance(config(&server)).await;
    let (sb, bb) = instance(config(&server)).await;
    let c = ch("room:1");
    let mut on_a = ba.subscribe(&c).await.unwrap();
    let mut on_b = bb.subscribe(&c).await.unwrap();
    let mut sent = Vec::new();
    for i in 0..50 {
        let store = if i % 2 == 0 { &sa } else { &sb };
        let p = publish(store, &c, &format!("m{i}")).await;
        ba.publish(&p).await.unwrap(); // a no-op, by contract
        sent.push(p);
    }
    for sub in [&mut on_a, &mut on_b] {
        for p in &sent {
            assert_eq!(&*next_pub(sub).await, p);
        }
        assert!(sub.try_recv().is_none());
    }
    // A publication's envelope on the wire is what the store returned.
    let raw = envelope::encode(&sent[0]);
    assert_eq!(envelope::decode(&raw).unwrap(), sent[0]);
    assert_eq!(ba.stats().delivered, 50);
}

#[tokio::test]
async fn a_subscribe_racing_the_last_unsubscribe_keeps_the_channel() {
    let server = RedisServer::start();
    let (store, bus) = instance(config(&server)).await;
    let c = ch("flap");
    for i in 0..30 {
        let sub = bus.subscribe(&c).await.unwrap();
        drop(sub); // the last one leaves: an UNSUBSCRIBE is queued
        let mut again = bus.subscribe(&c).await.unwrap();
        let p = publish(&store, &c, &format!("m{i}")).await;
        assert_eq!(*next_pub(&mut again).await, p, "round {i}");
    }
}

/// Writes a publication into the stream the way the append script does,
/// but without PUBLISH: a message lost on the way.
async fn store_without_publish(server: &RedisServer, c: &ChannelName) -> Publication {
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let meta = format!("rtwire:{{{c}}}:meta");
    let epoch: String = redis::cmd("HGET")
        .arg(&meta)
        .arg("e")
        .query_async(&mut conn)
        .await
        .unwrap();
    let offset: u64 = redis::cmd("HINCRBY")
        .arg(&meta)
        .arg("o")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let p = PublishRequest::new(c.clone(), "lost").into_publication(Position::new(
        u64::from_str_radix(&epoch, 16).unwrap(),
        offset,
    ));
    let _: String = redis::cmd("XADD")
        .arg(format!("rtwire:{{{c}}}:stream"))
        .arg(format!("0-{offset}"))
        .arg("d")
        .arg(&envelope::encode(&p)[..])
        .query_async(&mut conn)
        .await
        .unwrap();
    p
}

#[tokio::test]
async fn a_gap_in_offsets_is_healed_from_the_stream() {
    let server = RedisServer::start();
    // Sync far away: only the gap in the next message can heal.
    let (store, bus) = instance(config(&server).sync_interval(Duration::from_secs(3600))).await;
    let c = ch("gap");
    let mut sub = bus.subscribe(&c).await.unwrap();
    let p1 = publish(&store, &c, "one").await;
    let lost = store_without_publish(&server, &c).await;
    let p3 = publish(&store, &c, "three").await;
    assert_eq!(*next_pub(&mut sub).await, p1);
    assert_eq!(*next_pub(&mut sub).await, lost);
    assert_eq!(*next_pub(&mut sub).await, p3);
    let s = bus.stats();
    assert_eq!((s.healed, s.resets, s.delivered), (2, 0, 3)); // lost and p3
}

#[tokio::test]
async fn the_periodic_sync_heals_a_lost_message_with_nothing_after_it() {
    let server = RedisServer::start();
    let (store, bus) = instance(config(&server)).await;
    let c = ch("quiet");
    let mut sub = bus.subscribe(&c).await.unwrap();
    let p1 = publish(&store, &c, "one").await;
    assert_eq!(*next_pub(&mut sub).await, p1);
    let lost = store_without_publish(&server, &c).await;
    // No message will ever say it exists: the sync (200 ms) finds it.
    assert_eq!(*next_pub(&mut sub).await, lost);
    assert_eq!(bus.stats().healed, 1);
}

#[tokio::test]
async fn killed_pubsub_connections_lose_nothing() {
    let server = RedisServer::start();
    let (sa, ba) = instance(config(&server)).await;
    let (sb, bb) = instance(config(&server)).await;
    let c = ch("kill");
    let mut on_a = ba.subscribe(&c).await.unwrap();
    let mut on_b = bb.subscribe(&c).await.unwrap();
    let mut sent = Vec::new();
    for round in 0..3 {
        for i in 0..5 {
            let store = if i % 2 == 0 { &sa } else { &sb };
            sent.push(publish(store, &c, &format!("r{round}m{i}")).await);
        }
        assert!(server.kill_pubsub_clients() >= 1);
        // Published while (or before) the buses notice: they were sent on
        // dead connections, or on none.
        for i in 0..5 {
            sent.push(publish(&sa, &c, &format!("r{round}k{i}")).await);
        }
        let want = round + 1;
        until("both buses reconnected", || {
            ba.stats().reconnects >= want && bb.stats().reconnects >= want
        })
        .await;
    }
    sent.push(publish(&sb, &c, "after").await);
    for sub in [&mut on_a, &mut on_b] {
        for p in &sent {
            assert_eq!(&*next_pub(sub).await, p, "in order, none lost, none twice");
        }
        assert!(sub.try_recv().is_none());
    }
    for bus in [&ba, &bb] {
        let s = bus.stats();
        eprintln!("after 3 kills: {s:?}");
        assert_eq!(s.delivered, sent.len() as u64);
        assert_eq!(s.resets, 0);
    }
}

#[tokio::test]
async fn flushall_changes_the_epoch_and_resets_live_subscribers() {
    let server = RedisServer::start();
    let (store, bus) = instance(config(&server)).await;
    let c = ch("flush");
    let mut live = bus.subscribe(&c).await.unwrap();
    let p1 = publish(&store, &c, "before").await;
    assert_eq!(*next_pub(&mut live).await, p1);

    server.flushall();

    // A subscriber resuming from p1 is told its history is gone.
    let (reason, top) = gap(store.since(&c, Some(p1.position), 100).await.unwrap());
    assert_eq!(reason, GapReason::EpochChanged);
    assert_ne!(top.epoch, p1.position.epoch);
    assert_eq!(top.offset, 0);
    let p2 = publish(&store, &c, "after").await;
    assert_eq!(p2.position, Position::new(top.epoch, 1));

    // The live one: a Reset, then the new history from its start.
    assert_eq!(
        next(&mut live).await,
        Delivery::Reset {
            reason: GapReason::EpochChanged
        }
    );
    assert_eq!(*next_pub(&mut live).await, p2);
    let p3 = publish(&store, &c, "later").await;
    assert_eq!(*next_pub(&mut live).await, p3);
    assert_eq!(bus.stats().resets, 1);
}

/// Retries a publish while the store's connection comes back (the first
/// command after a restart may fail on the dead connection).
async fn publish_when_back(store: &RedisStore, c: &ChannelName, data: &str) -> Publication {
    let t = Instant::now();
    loop {
        match store
            .append(PublishRequest::new(c.clone(), data.to_owned()))
            .await
        {
            Ok(p) => return p,
            Err(PubSubError::Backend(_)) => {
                assert!(t.elapsed() < STUCK, "Redis never came back");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test]
async fn a_redis_restart_changes_the_epoch_and_resets_live_subscribers() {
    let mut server = RedisServer::start();
    let (store, bus) = instance(config(&server)).await;
    let (other, other_bus) = instance(config(&server)).await;
    let c = ch("restart");
    let mut live = bus.subscribe(&c).await.unwrap();
    let mut live_other = other_bus.subscribe(&c).await.unwrap();
    let p1 = publish(&store, &c, "before").await;
    assert_eq!(*next_pub(&mut live).await, p1);
    assert_eq!(*next_pub(&mut live_other).await, p1);

    server.restart(); // empty: no persistence

    let p2 = publish_when_back(&other, &c, "after").await;
    assert_ne!(p2.position.epoch, p1.position.epoch);
    assert_eq!(p2.position.offset, 1);
    let (reason, _) = gap(store.since(&c, Some(p1.position), 100).await.unwrap());
    assert_eq!(reason, GapReason::EpochChanged);

    for (sub, b) in [(&mut live, &bus), (&mut live_other, &other_bus)] {
        assert_eq!(
            next(sub).await,
            Delivery::Reset {
                reason: GapReason::EpochChanged
            }
        );
        assert_eq!(*next_pub(sub).await, p2);
        until("the reconnection is counted", || b.stats().reconnects >= 1).await;
        assert_eq!(b.stats().resets, 1);
    }
    let p3 = publish(&store, &c, "later").await;
    assert_eq!(*next_pub(&mut live).await, p3);
    assert_eq!(*next_pub(&mut live_other).await, p3);
}

#[tokio::test]
async fn with_redis_down_publish_fails_within_op_timeout() {
    let mut server = RedisServer::start();
    let op = Duration::from_millis(300);
    let (store, bus) = instance(config(&server).op_timeout(op)).await;
    let c = ch("down");
    publish(&store, &c, "up").await;
    server.stop();
    for _ in 0..3 {
        let t = Instant::now();
        let r = store.append(PublishRequest::new(c.clone(), "lost?")).await;
        let took = t.elapsed();
        assert!(matches!(r, Err(PubSubError::Backend(_))), "{r:?}");
        // op_timeout bounds it; the margin is for a loaded machine.
        assert!(took < op + Duration::from_millis(700), "took {took:?}");
    }
    let t = Instant::now();
    let r = store.since(&c, None, 10).await;
    assert!(matches!(r, Err(PubSubError::Backend(_))), "{r:?}");
    assert!(t.elapsed() < op + Duration::from_millis(700));
    let r = bus.subscribe(&ch("new-while-down")).await;
    assert!(matches!(r, Err(PubSubError::Backend(_))), "{r:?}");
    // Connecting fails the same way.
    let t = Instant::now();
    let r = connect(config(&server).op_timeout(op)).await;
    assert!(matches!(r, Err(PubSubError::Backend(_))), "{r:?}");
    assert!(t.elapsed() < op + Duration::from_millis(700));
}

#[tokio::test]
async fn close_ends_subscriptions_and_later_calls() {
    let server = RedisServer::start();
    let (store, bus) = instance(config(&server)).await;
    let c = ch("close");
    let mut sub = bus.subscribe(&c).await.unwrap();
    bus.close().await;
    assert!(tokio::time::timeout(STUCK, sub.recv())
        .await
        .unwrap()
        .is_none());
    assert_eq!(bus.subscribe(&c).await.unwrap_err(), PubSubError::Closed);
    store.close().await;
    assert_eq!(
        store.append(PublishRequest::new(c, "x")).await.unwrap_err(),
        PubSubError::Closed
    );
    assert!(matches!(
        connect(config(&server).prefix("bad{prefix")).await,
        Err(PubSubError::InvalidField(_))
    ));
}

/// Found in review: Redis restarted from a snapshot that predates some
/// publications kept the epoch, so their offsets were handed out again to
/// new publications and a client resuming from one of the lost positions
/// got a silent partial replay. The meta now records the server's run id,
/// and the first read after the restart (the subscribed instance's heal
/// on reconnect) replaces a restored history with a new epoch.
#[tokio::test]
async fn regression_snapshot_restore_reused_positions() {
    let mut server = RedisServer::start();
    let c = ch("snap");
    let (store, bus) = instance(config(&server)).await;
    let mut sub = bus.subscribe(&c).await.unwrap();
    for i in 1..=3 {
        publish(&store, &c, &format!("old{i}")).await;
    }
    assert_eq!(server.cli(&["SAVE"]), "OK");
    let mut lost = Vec::new();
    for i in 4..=6 {
        lost.push(publish(&store, &c, &format!("lost{i}")).await);
    }
    for _ in 0..6 {
        next_pub(&mut sub).await;
    }
    // SIGKILL: it comes back from the dump taken at offset 3.
    server.restart();
    // The live subscriber is told as soon as its instance reconnects.
    match next(&mut sub).await {
        Delivery::Reset {
            reason: GapReason::EpochChanged,
        } => {}
        d => panic!("expected a reset, got {d:?}"),
    }
    let fresh = publish_when_back(&store, &c, "new").await;
    assert_ne!(
        fresh.position.epoch, lost[2].position.epoch,
        "a restored history must not keep its epoch"
    );
    // A client that saw the lost publications cannot be caught up.
    let s = store.since(&c, Some(lost[2].position), 100).await.unwrap();
    assert!(
        matches!(
            s,
            Since::CannotCatchUp {
                reason: GapReason::EpochChanged,
                ..
            }
        ),
        "{s:?}"
    );
    assert_eq!(next_pub(&mut sub).await.position, fresh.position);
}

/// Found in review: one history entry this version cannot decode made the
/// channel's replay fail forever (no publications, no reset). It is now a
/// hole in the history: `Evicted`, and a reset for live subscribers.
#[tokio::test]
async fn regression_undecodable_entry_stalled_the_channel() {
    let server = RedisServer::start();
    let c = ch("poison");
    let (store, _bus) = instance(config(&server)).await;
    let first = publish(&store, &c, "ok").await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let meta = format!("rtwire:{{{c}}}:meta");
    let offset: u64 = redis::cmd("HINCRBY")
        .arg(&meta)
        .arg("o")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg(format!("rtwire:{{{c}}}:stream"))
        .arg(format!("0-{offset}"))
        .arg("d")
        .arg(&b"\xffnot an envelope"[..])
        .query_async(&mut conn)
        .await
        .unwrap();
    let s = store.since(&c, Some(first.position), 100).await.unwrap();
    assert!(
        matches!(
            s,
            Since::CannotCatchUp {
                reason: GapReason::Evicted,
                ..
            }
        ),
        "{s:?}"
    );
}
