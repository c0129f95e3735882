//! The replay store: strictly newer, oldest first, limits, and gaps.

use bytes::BytesMut;
use rtwire::sse::{Decoder, Event, Gap, Limits, ReplayStore, StoreError};

fn ids(r: &rtwire::sse::Replay) -> Vec<u64> {
    r.events.iter().map(|e| e.id()).collect()
}

fn filled(capacity: usize, n: u64) -> ReplayStore {
    let s = ReplayStore::new(capacity);
    for i in 1..=n {
        assert_eq!(s.append("c", Event::new(format!("e{i}"))), Ok(i));
    }
    s
}

#[test]
fn strictly_newer_oldest_first() {
    let s = filled(10, 5);
    let r = s.get_since("c", "2", 100);
    assert_eq!(ids(&r), [3, 4, 5]);
    assert_eq!((r.gap, r.more, r.cursor), (None, false, 5));
    assert!(s.get_since("c", "5", 100).events.is_empty());
}

#[test]
fn limit_and_cursor() {
    let s = filled(10, 5);
    let r = s.get_since("c", "0", 2);
    assert_eq!((ids(&r), r.more, r.cursor), (vec![1, 2], true, 2));
    let r = s.get_after("c", r.cursor, 2);
    assert_eq!((ids(&r), r.more), (vec![3, 4], true));
    let r = s.get_after("c", r.cursor, 2);
    assert_eq!((ids(&r), r.more), (vec![5], false));
}

#[test]
fn evicted_id_is_a_gap_not_silence() {
    let s = filled(3, 10);
    let r = s.get_since("c", "5", 100);
    assert_eq!(r.gap, Some(Gap::Evicted { first_retained: 8 }));
    assert_eq!(ids(&r), [8, 9, 10]);
    // The id just before the oldest retained one is no gap.
    let r = s.get_since("c", "7", 100);
    assert_eq!((r.gap, ids(&r)), (None, vec![8, 9, 10]));
}

#[test]
fn unknown_ids_are_a_gap() {
    let s = filled(3, 4);
    for bad in ["abc", "-1", "99", "1.5"] {
        let r = s.get_since("c", bad, 100);
        assert_eq!(r.gap, Some(Gap::UnknownId), "{bad}");
        assert_eq!(ids(&r), [2, 3, 4]);
    }
    let r = s.get_since("other", "3", 100);
    assert_eq!((r.gap, r.events.len()), (Some(Gap::UnknownId), 0));
}

#[test]
fn empty_id_starts_live() {
    let s = filled(3, 4);
    let r = s.get_since("c", "", 100);
    assert_eq!((r.events.len(), r.gap, r.cursor), (0, None, 4));
}

#[test]
fn stored_events_carry_their_id_on_the_wire() {
    let s = filled(3, 2);
    let r = s.get_since("c", "1", 1);
    let mut dec = Decoder::new(Limits::default());
    let mut buf = BytesMut::from(&r.events[0].encoded().as_bytes()[..]);
    let ev = dec.decode(&mut buf).unwrap().unwrap();
    assert_eq!((ev.data(), ev.last_event_id()), ("e2", "2"));
}

#[tokio::test]
async fn subscribers_are_woken_on_append() {
    let s = ReplayStore::new(3);
    let mut rx = s.subscribe("c").unwrap();
    assert_eq!(*rx.borrow(), 0);
    s.append("c", Event::new("x")).unwrap();
    rx.changed().await.unwrap();
    assert_eq!(*rx.borrow_and_update(), 1);
    assert_eq!(s.latest_id("c"), 1);
}

#[test]
fn a_slow_follower_sees_a_gap_and_memory_stays_bounded() {
    // The store never holds more than `capacity` events per channel, however
    // far behind a follower is; the follower learns what it missed.
    let s = filled(100, 10_000);
    let r = s.get_after("c", 10, usize::MAX);
    assert_eq!(r.events.len(), 100);
    assert_eq!(
        r.gap,
        Some(Gap::Evicted {
            first_retained: 9901
        })
    );
}

/// Clients name channels (a path, a query parameter): subscribing to
/// 100,000 distinct ones and leaving must not leave 100,000 channels behind.
#[test]
fn subscribed_and_dropped_channels_do_not_accumulate() {
    let s = ReplayStore::with_max_channels(4, 1000);
    for i in 0..100_000 {
        let rx = s.subscribe(&format!("client-{i}")).unwrap();
        drop(rx);
        assert!(
            s.channel_count() <= 2,
            "{} channels at {i}",
            s.channel_count()
        );
    }
    // The same holds with the default bound.
    let s = ReplayStore::new(4);
    assert_eq!(s.max_channels(), rtwire::sse::DEFAULT_MAX_CHANNELS);
    for i in 0..100_000 {
        drop(s.subscribe(&format!("client-{i}")).unwrap());
    }
    assert!(s.channel_count() <= 2, "{} channels", s.channel_count());
}

/// Channels with events but no subscriber are kept for replay, up to the
/// bound; past it the least recently used one goes.
#[test]
fn idle_channels_are_evicted_least_recently_used_first() {
    let s = ReplayStore::with_max_channels(4, 3);
    for ch in ["a", "b", "c"] {
        s.append(ch, Event::new("x")).unwrap();
    }
    // "a" is used again: "b" is now the least recently used.
    s.append("a", Event::new("y")).unwrap();
    s.append("d", Event::new("x")).unwrap();
    assert_eq!(s.channel_count(), 3);
    assert_eq!(s.latest_id("b"), 0, "b was evicted");
    assert_eq!((s.latest_id("a"), s.latest_id("c")), (2, 1));
    for i in 0..100_000 {
        s.append(&format!("n{i}"), Event::new("x")).unwrap();
        assert!(s.channel_count() <= 3);
    }
}

/// A channel with a live subscriber is never evicted, and when every
/// channel has one a new channel is refused with a typed error.
#[test]
fn subscribed_channels_stay_and_a_full_store_refuses() {
    let s = ReplayStore::with_max_channels(4, 2);
    let rx_a = s.subscribe("a").unwrap();
    s.append("a", Event::new("kept")).unwrap();
    for i in 0..1000 {
        s.append(&format!("other-{i}"), Event::new("x")).unwrap();
    }
    assert_eq!(s.latest_id("a"), 1, "a was evicted under its subscriber");
    let rx_b = s.subscribe("b").unwrap();
    let full = StoreError::TooManyChannels { limit: 2 };
    assert_eq!(s.subscribe("c").unwrap_err(), full);
    assert_eq!(s.append("c", Event::new("x")).unwrap_err(), full);
    // Existing channels still work.
    let b = s.append("b", Event::new("x")).unwrap();
    assert_eq!(s.latest_id("b"), b);
    assert!(s.subscribe("a").is_ok());
    // Once a subscriber leaves, its channel can go.
    drop(rx_b);
    let c = s.append("c", Event::new("x")).unwrap();
    assert_eq!((s.latest_id("b"), s.latest_id("c")), (0, c));
    assert_eq!(s.latest_id("a"), 1);
    drop(rx_a);
}

/// An evicted channel that comes back does not reuse old ids: a client
/// resuming from an id of the old channel is told about the gap instead
/// of being handed unrelated events under ids it has already seen.
#[test]
fn a_recreated_channel_does_not_reuse_ids() {
    let s = ReplayStore::with_max_channels(8, 1);
    for _ in 0..5 {
        s.append("a", Event::new("old")).unwrap();
    }
    s.append("b", Event::new("x")).unwrap(); // evicts "a"
    let id = s.append("a", Event::new("new")).unwrap(); // evicts "b"
    assert!(id > 5, "id {id} reused");
    let r = s.get_since("a", "3", 10);
    assert!(matches!(r.gap, Some(Gap::Evicted { .. })), "{:?}", r.gap);
    assert_eq!(ids(&r), [id]);
}
