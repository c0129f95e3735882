//! The replay store: strictly newer, oldest first, limits, and gaps.

use bytes::BytesMut;
use rtwire::sse::{Decoder, Event, Gap, Limits, ReplayStore};

fn ids(r: &rtwire::sse::Replay) -> Vec<u64> {
    r.events.iter().map(|e| e.id()).collect()
}

fn filled(capacity: usize, n: u64) -> ReplayStore {
    let s = ReplayStore::new(capacity);
    for i in 1..=n {
        assert_eq!(s.append("c", Event::new(format!("e{i}"))), i);
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
    let mut rx = s.subscribe("c");
    assert_eq!(*rx.borrow(), 0);
    s.append("c", Event::new("x"));
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
