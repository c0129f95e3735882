//! The embedded store and bus: order, gaps, idempotency, bounds, epochs,
//! exactly-once resume, and the bus's fan-out, unsubscribe, lag and close.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use proptest::prelude::*;
use rtwire::pubsub::{
    Bus, ChannelName, Delivery, GapReason, MemoryBus, MemoryConfig, MemoryStore, Position,
    PubSubError, Publication, PublishRequest, Since, Store, Subscription,
};

/// Every future of the memory backends is ready at once (they never wait):
/// polls it once and fails the test if it is not.
fn now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a memory backend future was not ready"),
    }
}

fn ch(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

fn append(s: &MemoryStore, c: &ChannelName, data: &str) -> Publication {
    now(s.append(PublishRequest::new(c.clone(), data.to_owned()))).unwrap()
}

fn since(s: &MemoryStore, c: &ChannelName, after: Option<Position>, limit: usize) -> Since {
    now(s.since(c, after, limit)).unwrap()
}

fn offsets(s: &Since) -> Vec<u64> {
    match s {
        Since::Publications { publications, .. } => {
            publications.iter().map(|p| p.position.offset).collect()
        }
        other => panic!("expected publications, got {other:?}"),
    }
}

fn gap(s: &Since) -> GapReason {
    match s {
        Since::CannotCatchUp { reason, .. } => *reason,
        other => panic!("expected a gap, got {other:?}"),
    }
}

fn top(s: &Since) -> Position {
    match s {
        Since::Publications { top, .. } | Since::CannotCatchUp { top, .. } => *top,
    }
}

fn filled(cfg: MemoryConfig, c: &ChannelName, n: u64) -> (MemoryStore, Vec<Publication>) {
    let s = MemoryStore::new(cfg);
    let ps = (1..=n).map(|i| append(&s, c, &format!("p{i}"))).collect();
    (s, ps)
}

// ---- store: order and positions ----

#[test]
fn offsets_start_at_one_and_grow_by_one_in_one_epoch() {
    let c = ch("c");
    let (_, ps) = filled(MemoryConfig::default(), &c, 5);
    let epoch = ps[0].position.epoch;
    assert_ne!(epoch, 0);
    for (i, p) in ps.iter().enumerate() {
        assert_eq!(p.position, Position::new(epoch, i as u64 + 1));
        assert_eq!(&p.data[..], format!("p{}", i + 1).as_bytes());
        assert_eq!(p.channel, c);
    }
}

#[test]
fn since_returns_everything_after_in_order() {
    let c = ch("c");
    let (s, ps) = filled(MemoryConfig::default(), &c, 5);
    let r = since(&s, &c, Some(ps[1].position), 100);
    assert_eq!(offsets(&r), [3, 4, 5]);
    assert_eq!(top(&r), ps[4].position);
    match r {
        Since::Publications { publications, .. } => assert_eq!(publications, ps[2..]),
        _ => unreachable!(),
    }
    // From "before the first" and from the top.
    let e = ps[0].position.epoch;
    assert_eq!(
        offsets(&since(&s, &c, Some(Position::new(e, 0)), 5)),
        [1, 2, 3, 4, 5]
    );
    assert!(offsets(&since(&s, &c, Some(ps[4].position), 0)).is_empty());
}

#[test]
fn since_none_is_a_new_subscriber_nothing_to_replay() {
    let c = ch("c");
    let (s, ps) = filled(MemoryConfig::default(), &c, 3);
    let r = since(&s, &c, None, 100);
    assert!(offsets(&r).is_empty());
    assert_eq!(top(&r), ps[2].position);
}

#[test]
fn channels_are_independent_histories() {
    let (a, b) = (ch("a"), ch("b"));
    let s = MemoryStore::default();
    let a1 = append(&s, &a, "x");
    let b1 = append(&s, &b, "y");
    let a2 = append(&s, &a, "z");
    assert_eq!(
        (a1.position.offset, b1.position.offset, a2.position.offset),
        (1, 1, 2)
    );
    assert_ne!(a1.position.epoch, b1.position.epoch);
    assert_eq!(
        offsets(&since(&s, &b, Some(Position::new(b1.position.epoch, 0)), 9)),
        [1]
    );
}

// ---- store: every gap reason ----

#[test]
fn gap_epoch_changed_for_a_foreign_epoch() {
    let c = ch("c");
    let (s, ps) = filled(MemoryConfig::default(), &c, 3);
    let p = ps[1].position;
    let r = since(&s, &c, Some(Position::new(p.epoch ^ 1, p.offset)), 100);
    assert_eq!(gap(&r), GapReason::EpochChanged);
    assert_eq!(top(&r), ps[2].position);
}

#[test]
fn gap_epoch_changed_after_a_restart() {
    let c = ch("c");
    let (old, ps) = filled(MemoryConfig::default(), &c, 3);
    drop(old);
    let (new, _) = filled(MemoryConfig::default(), &c, 5);
    assert_eq!(
        gap(&since(&new, &c, Some(ps[1].position), 100)),
        GapReason::EpochChanged
    );
}

#[test]
fn gap_epoch_changed_for_an_unknown_channel_which_it_creates() {
    let s = MemoryStore::default();
    let c = ch("never");
    let r = since(&s, &c, Some(Position::new(0xabc, 4)), 100);
    assert_eq!(gap(&r), GapReason::EpochChanged);
    let t = top(&r);
    assert_eq!(t.offset, 0);
    assert_eq!(s.channel_count(), 1);
    // The top it answered is the one later publications follow.
    let p = append(&s, &c, "x");
    assert_eq!(p.position, t.next());
    assert_eq!(offsets(&since(&s, &c, Some(t), 10)), [1]);
}

#[test]
fn since_none_on_an_unknown_channel_gives_a_top_that_later_publications_follow() {
    let s = MemoryStore::default();
    let c = ch("fresh");
    let t = top(&since(&s, &c, None, 10));
    assert_eq!(t.offset, 0);
    append(&s, &c, "a");
    append(&s, &c, "b");
    assert_eq!(offsets(&since(&s, &c, Some(t), 10)), [1, 2]);
}

#[test]
fn gap_ahead_for_an_offset_past_the_top() {
    let c = ch("c");
    let (s, ps) = filled(MemoryConfig::default(), &c, 3);
    let r = since(&s, &c, Some(ps[2].position.next()), 100);
    assert_eq!(gap(&r), GapReason::Ahead);
    assert_eq!(top(&r), ps[2].position);
}

#[test]
fn gap_over_limit_never_a_partial_replay() {
    let c = ch("c");
    let (s, ps) = filled(MemoryConfig::default(), &c, 10);
    let at = ps[4].position; // 5 missing
    assert_eq!(offsets(&since(&s, &c, Some(at), 5)), [6, 7, 8, 9, 10]);
    assert_eq!(gap(&since(&s, &c, Some(at), 4)), GapReason::OverLimit);
    assert_eq!(gap(&since(&s, &c, Some(at), 0)), GapReason::OverLimit);
}

#[test]
fn gap_evicted_by_count() {
    let c = ch("c");
    let (s, ps) = filled(MemoryConfig::default().max_publications(3), &c, 10);
    // Kept: 8, 9, 10.
    assert_eq!(
        offsets(&since(&s, &c, Some(ps[6].position), 100)),
        [8, 9, 10]
    );
    let r = since(&s, &c, Some(ps[5].position), 100);
    assert_eq!(gap(&r), GapReason::Evicted);
    assert_eq!(top(&r), ps[9].position);
    let e = ps[0].position.epoch;
    assert_eq!(
        gap(&since(&s, &c, Some(Position::new(e, 0)), 100)),
        GapReason::Evicted
    );
}

// ---- store: bounds ----

#[test]
fn bound_by_bytes_keeps_the_newest_that_fit() {
    let c = ch("c");
    let s = MemoryStore::new(MemoryConfig::default().max_bytes(10));
    let ps: Vec<_> = (0..5).map(|_| append(&s, &c, "abcd")).collect(); // 4 bytes each
    assert_eq!(s.total_bytes(), 8);
    assert_eq!(offsets(&since(&s, &c, Some(ps[2].position), 100)), [4, 5]);
    assert_eq!(
        gap(&since(&s, &c, Some(ps[1].position), 100)),
        GapReason::Evicted
    );
    // Routing fields count too: 4 + "t" + "s" + "ev" = 8 bytes, only it fits.
    let req = PublishRequest::new(c.clone(), "abcd")
        .tenant("t")
        .subject("s")
        .event_type("ev");
    let p6 = now(s.append(req)).unwrap();
    assert_eq!(s.total_bytes(), 8);
    assert_eq!(
        gap(&since(&s, &c, Some(ps[3].position), 100)),
        GapReason::Evicted
    );
    assert_eq!(
        offsets(&since(&s, &c, Some(Position::new(p6.position.epoch, 5)), 9)),
        [6]
    );
}

#[test]
fn a_publication_bigger_than_max_bytes_gets_a_position_but_is_not_kept() {
    let c = ch("c");
    let s = MemoryStore::new(MemoryConfig::default().max_bytes(10));
    let p1 = append(&s, &c, "small");
    let big = append(&s, &c, "far too big for ten");
    assert_eq!(big.position, p1.position.next());
    assert_eq!(s.total_bytes(), 0);
    // Neither it nor what came before can be replayed...
    assert_eq!(
        gap(&since(&s, &c, Some(p1.position), 100)),
        GapReason::Evicted
    );
    // ...but from it onwards the history is whole.
    let p3 = append(&s, &c, "ok");
    assert_eq!(offsets(&since(&s, &c, Some(big.position), 100)), [3]);
    assert_eq!(top(&since(&s, &c, None, 1)), p3.position);
}

#[test]
fn bound_by_channels_drops_the_least_recently_used() {
    let s = MemoryStore::new(MemoryConfig::default().max_channels(2));
    let (a, b, c) = (ch("a"), ch("b"), ch("c"));
    let a1 = append(&s, &a, "1");
    let b1 = append(&s, &b, "1");
    // Reading a makes b the least recently used.
    assert!(offsets(&since(&s, &a, Some(a1.position), 9)).is_empty());
    append(&s, &c, "1");
    assert_eq!(s.channel_count(), 2);
    assert!(offsets(&since(&s, &a, Some(a1.position), 9)).is_empty());
    // b's history is gone: its old position is from another epoch (and
    // this read recreates b, dropping c, now the least recently used).
    let r = since(&s, &b, Some(b1.position), 9);
    assert_eq!(gap(&r), GapReason::EpochChanged);
    assert_ne!(top(&r).epoch, b1.position.epoch);
    assert_eq!(s.channel_count(), 2);
}

#[test]
fn bound_by_total_bytes_drops_other_channels() {
    let s = MemoryStore::new(MemoryConfig::default().max_total_bytes(10));
    let (a, b) = (ch("a"), ch("b"));
    let a1 = append(&s, &a, "123456");
    append(&s, &b, "123456"); // 12 > 10: a goes
    assert_eq!(s.channel_count(), 1);
    assert_eq!(s.total_bytes(), 6);
    assert_eq!(
        gap(&since(&s, &a, Some(a1.position), 9)),
        GapReason::EpochChanged
    );
}

#[test]
fn an_evicted_channel_recreated_gets_a_new_epoch_never_reused_offsets() {
    let s = MemoryStore::new(MemoryConfig::default().max_channels(1));
    let (a, b) = (ch("a"), ch("b"));
    let old: Vec<_> = (0..3).map(|_| append(&s, &a, "x")).collect();
    append(&s, &b, "x"); // drops a
    let new: Vec<_> = (0..5).map(|_| append(&s, &a, "y")).collect();
    assert_eq!(new[0].position.offset, 1);
    assert_ne!(new[0].position.epoch, old[0].position.epoch);
    // Offset 2 exists again, but under the new epoch only.
    assert_eq!(
        gap(&since(&s, &a, Some(old[1].position), 100)),
        GapReason::EpochChanged
    );
    assert_eq!(
        offsets(&since(&s, &a, Some(new[1].position), 100)),
        [3, 4, 5]
    );
}

#[test]
fn many_recreations_never_repeat_an_epoch() {
    let s = MemoryStore::new(MemoryConfig::default().max_channels(1));
    let (a, b) = (ch("a"), ch("b"));
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2000 {
        let e = append(&s, &a, "x").position.epoch;
        assert_ne!(e, 0);
        assert!(seen.insert(e), "epoch {e:x} reused");
        append(&s, &b, "x");
    }
}

// ---- store: idempotency ----

#[test]
fn idempotency_key_returns_the_stored_publication() {
    let c = ch("c");
    let s = MemoryStore::default();
    let req = PublishRequest::new(c.clone(), "pay").idempotency_key("k1");
    let first = now(s.append(req.clone())).unwrap();
    append(&s, &c, "other");
    let again = now(s.append(req)).unwrap();
    assert_eq!(again, first);
    // Nothing new was stored; the same key on another channel is new.
    assert_eq!(top(&since(&s, &c, None, 0)).offset, 2);
    let d = ch("d");
    let on_d = now(s.append(PublishRequest::new(d, "pay").idempotency_key("k1"))).unwrap();
    assert_eq!(on_d.position.offset, 1);
}

#[test]
fn idempotency_window_is_the_kept_publications() {
    let c = ch("c");
    let s = MemoryStore::new(MemoryConfig::default().max_publications(2));
    let req = PublishRequest::new(c.clone(), "pay").idempotency_key("k");
    let first = now(s.append(req.clone())).unwrap();
    assert_eq!(now(s.append(req.clone())).unwrap(), first);
    append(&s, &c, "a");
    append(&s, &c, "b"); // first evicted, and its key with it
    let again = now(s.append(req)).unwrap();
    assert_eq!(again.position.offset, 4);
}

#[test]
fn invalid_requests_are_refused_and_take_no_offset() {
    let c = ch("c");
    let s = MemoryStore::default();
    let bad = PublishRequest::new(c.clone(), "x").tenant("a\nb");
    assert_eq!(now(s.append(bad)), Err(PubSubError::InvalidField("tenant")));
    assert_eq!(append(&s, &c, "ok").position.offset, 1);
}

#[test]
fn closed_store_refuses_everything() {
    let c = ch("c");
    let (s, ps) = filled(MemoryConfig::default(), &c, 2);
    now(s.close());
    assert_eq!(
        now(s.append(PublishRequest::new(c.clone(), "x"))),
        Err(PubSubError::Closed)
    );
    assert_eq!(
        now(s.since(&c, Some(ps[0].position), 9)),
        Err(PubSubError::Closed)
    );
    assert_eq!(now(s.since(&c, None, 9)), Err(PubSubError::Closed));
    assert_eq!(s.channel_count(), 0);
}

// ---- resume: everything exactly once ----

/// A subscriber as an application would write it: it records the last
/// position it handled, and on a notice (or a reconnect) subscribes again
/// and then asks the store for what it missed, skipping what it has.
struct Client {
    sub: Option<Subscription>,
    last: Position,
    got: Vec<u64>,
    gaps: Vec<GapReason>,
}

impl Client {
    fn take(&mut self, p: &Publication) {
        assert_eq!(p.position.epoch, self.last.epoch, "epoch changed under us");
        if p.position.offset <= self.last.offset {
            return; // already handled (replayed, then live)
        }
        assert_eq!(
            p.position.offset,
            self.last.offset + 1,
            "a gap went unnoticed"
        );
        self.got.push(p.position.offset);
        self.last = p.position;
    }

    fn resume(&mut self, store: &MemoryStore, bus: &MemoryBus, c: &ChannelName, limit: usize) {
        // Subscribe first, then read the history: whatever is published in
        // between arrives live too and is skipped as a duplicate.
        self.sub = Some(now(bus.subscribe(c)).unwrap());
        match since(store, c, Some(self.last), limit) {
            Since::Publications { publications, top } => {
                for p in &publications {
                    self.take(p);
                }
                assert_eq!(self.last, top);
            }
            Since::CannotCatchUp { reason, top } => {
                self.gaps.push(reason);
                self.last = top; // start over from the top
            }
        }
    }

    fn drain(&mut self, store: &MemoryStore, bus: &MemoryBus, c: &ChannelName, limit: usize) {
        while let Some(d) = self.sub.as_mut().and_then(Subscription::try_recv) {
            match d {
                Delivery::Publication(p) => self.take(&p),
                Delivery::Lagged { .. } => self.resume(store, bus, c, limit),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Publish(u8),
    Disconnect,
    Resume,
    Drain,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![
            4 => (1u8..6).prop_map(Op::Publish),
            1 => Just(Op::Disconnect),
            1 => Just(Op::Resume),
            2 => Just(Op::Drain),
        ],
        0..60,
    )
}

/// Runs `ops`; returns the client and the number of publications.
fn run(ops: &[Op], cfg: MemoryConfig, bus_cap: usize, limit: usize) -> (Client, u64) {
    let store = MemoryStore::new(cfg);
    let bus = MemoryBus::with_capacity(bus_cap);
    let c = ch("room");
    let mut client = Client {
        sub: None,
        last: Position::new(0, 0),
        got: Vec::new(),
        gaps: Vec::new(),
    };
    // A new subscriber: subscribe, then learn the top (nothing to replay).
    client.sub = Some(now(bus.subscribe(&c)).unwrap());
    client.last = top(&since(&store, &c, None, limit));
    let mut published = 0u64;
    for op in ops {
        match op {
            Op::Publish(n) => {
                for _ in 0..*n {
                    let p = append(&store, &c, "x");
                    now(bus.publish(&p)).unwrap();
                    published += 1;
                }
            }
            Op::Disconnect => client.sub = None,
            Op::Resume => {
                if client.sub.is_none() {
                    client.resume(&store, &bus, &c, limit);
                }
            }
            Op::Drain => client.drain(&store, &bus, &c, limit),
        }
    }
    if client.sub.is_none() {
        client.resume(&store, &bus, &c, limit);
    }
    client.drain(&store, &bus, &c, limit);
    (client, published)
}

proptest! {
    /// With enough history, the client sees every publication exactly
    /// once, in order, through disconnects and local lag.
    #[test]
    fn resume_delivers_everything_exactly_once(ops in ops(), cap in 1usize..8) {
        let (client, published) = run(&ops, MemoryConfig::default(), cap, 10_000);
        prop_assert!(client.gaps.is_empty(), "{:?}", client.gaps);
        prop_assert_eq!(client.got, (1..=published).collect::<Vec<_>>());
    }

    /// With a short history or a small limit, a resume either catches up
    /// whole or says why not; what the client got is never duplicated or
    /// out of order, and nothing is lost without a notice.
    #[test]
    fn resume_with_short_history_is_whole_or_reported(
        ops in ops(), cap in 1usize..8, kept in 1usize..10, limit in 0usize..10,
    ) {
        let cfg = MemoryConfig::default().max_publications(kept);
        let (client, published) = run(&ops, cfg, cap, limit);
        prop_assert!(client.got.windows(2).all(|w| w[0] < w[1]));
        let missed = published - client.got.len() as u64;
        if client.gaps.is_empty() {
            prop_assert_eq!(missed, 0);
        } else {
            prop_assert!(client.gaps.iter().all(|g| matches!(g, GapReason::Evicted | GapReason::OverLimit)));
        }
        prop_assert!(client.got.last().copied().unwrap_or(0) <= published);
    }
}

// ---- bus ----

fn publication(c: &ChannelName, offset: u64) -> Publication {
    PublishRequest::new(c.clone(), format!("m{offset}")).into_publication(Position::new(9, offset))
}

fn offsets_of(sub: &mut Subscription) -> Vec<u64> {
    let mut out = Vec::new();
    while let Some(d) = sub.try_recv() {
        match d {
            Delivery::Publication(p) => out.push(p.position.offset),
            other => panic!("unexpected {other:?}"),
        }
    }
    out
}

#[test]
fn bus_delivers_only_to_subscribers_of_the_channel() {
    let bus = MemoryBus::new();
    let (a, b) = (ch("a"), ch("b"));
    let mut sa1 = now(bus.subscribe(&a)).unwrap();
    let mut sa2 = now(bus.subscribe(&a)).unwrap();
    let mut sb = now(bus.subscribe(&b)).unwrap();
    now(bus.publish(&publication(&a, 1))).unwrap();
    now(bus.publish(&publication(&a, 2))).unwrap();
    now(bus.publish(&publication(&ch("nobody"), 1))).unwrap();
    assert_eq!(offsets_of(&mut sa1), [1, 2]);
    assert_eq!(offsets_of(&mut sa2), [1, 2]);
    assert!(offsets_of(&mut sb).is_empty());
    assert_eq!(sb.channel(), &b);
}

#[test]
fn bus_shares_one_publication_between_subscribers() {
    let bus = MemoryBus::new();
    let a = ch("a");
    let mut s1 = now(bus.subscribe(&a)).unwrap();
    let mut s2 = now(bus.subscribe(&a)).unwrap();
    now(bus.publish(&publication(&a, 1))).unwrap();
    match (s1.try_recv(), s2.try_recv()) {
        (Some(Delivery::Publication(x)), Some(Delivery::Publication(y))) => {
            assert!(std::sync::Arc::ptr_eq(&x, &y));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bus_unsubscribes_when_the_last_subscriber_leaves() {
    let bus = MemoryBus::new();
    let (a, b) = (ch("a"), ch("b"));
    let s1 = now(bus.subscribe(&a)).unwrap();
    let s2 = now(bus.subscribe(&a)).unwrap();
    let s3 = now(bus.subscribe(&b)).unwrap();
    assert_eq!(bus.channel_count(), 2);
    drop(s1);
    assert!(bus.has_subscribers(&a));
    drop(s2);
    assert!(!bus.has_subscribers(&a));
    assert_eq!(bus.channel_count(), 1);
    drop(s3);
    assert_eq!(bus.channel_count(), 0);
    // And a channel can be subscribed again afterwards.
    let mut again = now(bus.subscribe(&a)).unwrap();
    now(bus.publish(&publication(&a, 5))).unwrap();
    assert_eq!(offsets_of(&mut again), [5]);
}

#[test]
fn bus_reports_lag_with_the_number_missed_and_keeps_going() {
    let bus = MemoryBus::with_capacity(4);
    let a = ch("a");
    let mut slow = now(bus.subscribe(&a)).unwrap();
    let mut fast = now(bus.subscribe(&a)).unwrap();
    for i in 1..=10 {
        now(bus.publish(&publication(&a, i))).unwrap();
        if i <= 2 {
            assert_eq!(offsets_of(&mut fast), [i]);
        }
    }
    assert_eq!(slow.try_recv(), Some(Delivery::Lagged { missed: 6 }));
    assert_eq!(offsets_of(&mut slow), [7, 8, 9, 10]);
    // The other one lagged by its own count.
    assert_eq!(fast.try_recv(), Some(Delivery::Lagged { missed: 4 }));
    assert_eq!(offsets_of(&mut fast), [7, 8, 9, 10]);
}

#[tokio::test]
async fn bus_close_ends_recv_and_refuses_more() {
    let bus = MemoryBus::new();
    let a = ch("a");
    let mut sub = bus.subscribe(&a).await.unwrap();
    bus.publish(&publication(&a, 1)).await.unwrap();
    let waiter = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(d) = sub.recv().await {
            got.push(d);
        }
        got
    });
    bus.close().await;
    let got = waiter.await.unwrap();
    assert_eq!(got.len(), 1, "buffered deliveries drain before the end");
    assert_eq!(
        bus.publish(&publication(&a, 2)).await,
        Err(PubSubError::Closed)
    );
    assert_eq!(bus.subscribe(&a).await.err(), Some(PubSubError::Closed));
    assert_eq!(bus.channel_count(), 0);
}

#[tokio::test]
async fn bus_recv_waits_for_a_publication() {
    let bus = std::sync::Arc::new(MemoryBus::new());
    let a = ch("a");
    let mut sub = bus.subscribe(&a).await.unwrap();
    let waiter = tokio::spawn(async move { sub.recv().await });
    tokio::task::yield_now().await;
    bus.publish(&publication(&a, 3)).await.unwrap();
    match waiter.await.unwrap() {
        Some(Delivery::Publication(p)) => assert_eq!(p.position.offset, 3),
        other => panic!("{other:?}"),
    }
}
