//! The channel half of the replay/live hand-off, [`Follower`], on the
//! in-memory store and bus (with a store that can hold or fail its reads):
//! nothing published while it subscribes is lost or held back, duplicates
//! and lags are absorbed, a new history is a reset followed by all of the
//! new one, and publications keep flowing after the store failed.
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rtwire::pubsub::{
    Bus, ChannelName, Followed, Follower, MemoryBus, Position, PublishRequest, ResetReason, Store,
};

#[path = "pubsub_support/gated.rs"]
mod gated;
use gated::{Gated, Shared};

/// Guards against a stuck run (every wait is for an event).
const STUCK: std::time::Duration = std::time::Duration::from_secs(30);

/// The follower's next, or a panic if nothing comes.
async fn next<St: Store>(f: &mut Follower<St>) -> Followed {
    tokio::time::timeout(STUCK, f.next()).await.expect("stuck")
}

fn ch() -> ChannelName {
    ChannelName::new("c").unwrap()
}

async fn publish(store: &Gated, bus: &MemoryBus, data: &str) -> Position {
    let p = store
        .append(PublishRequest::new(ch(), data.to_owned()))
        .await
        .unwrap();
    bus.publish(&p).await.unwrap();
    p.position
}

fn data(f: &Followed) -> String {
    match f {
        Followed::Publication(p) => String::from_utf8_lossy(&p.data).into_owned(),
        other => format!("{other:?}"),
    }
}

/// The regression behind a stuck SSE resume test: a publication made while
/// the follower subscribes (after its first read of the top, before the
/// subscription) was dropped as "already seen" when the top was read after
/// subscribing, and held until the next one when it was read before.
#[tokio::test]
async fn a_publication_made_while_it_subscribes_is_yielded_at_once() {
    let store = Arc::new(Gated::default());
    let bus = Arc::new(MemoryBus::new());
    publish(&store, &bus, "before").await;
    let (arrived, release) = store.arm();
    let start = {
        let (store, bus) = (Arc::new(Shared(store.clone())), bus.clone());
        tokio::spawn(async move { Follower::start(store, &*bus, ch(), 100).await })
    };
    arrived.await.unwrap(); // its first read of the top is done, held
    let window = publish(&store, &bus, "in the window").await;
    release.send(()).unwrap();
    let mut f = start.await.unwrap().unwrap();
    let first = next(&mut f).await;
    assert_eq!(data(&first), "in the window");
    assert_eq!(f.position(), Some(window));
    // And on from there, each once.
    let after = publish(&store, &bus, "next").await;
    assert_eq!(data(&next(&mut f).await), "next");
    assert_eq!(f.position(), Some(after));
}

#[tokio::test]
async fn duplicates_are_dropped_and_a_lag_is_healed_from_the_store() {
    let store = Arc::new(Gated::default());
    let bus = MemoryBus::with_capacity(2);
    let mut f = Follower::start(Arc::new(Shared(store.clone())), &bus, ch(), 100)
        .await
        .unwrap();
    let p1 = store.append(PublishRequest::new(ch(), "1")).await.unwrap();
    bus.publish(&p1).await.unwrap();
    bus.publish(&p1).await.unwrap(); // redelivered
    assert_eq!(data(&next(&mut f).await), "1");
    // Five more than the bus buffers: the follower lags, then heals.
    for i in 2..=6 {
        publish(&store, &bus, &i.to_string()).await;
    }
    let got: Vec<String> = {
        let mut v = Vec::new();
        for _ in 2..=6 {
            v.push(data(&next(&mut f).await));
        }
        v
    };
    assert_eq!(got, ["2", "3", "4", "5", "6"]);
    assert!(f.healed() >= 3, "healed {}", f.healed());
}

#[tokio::test]
async fn a_new_history_is_a_reset_then_all_of_the_new_one() {
    let store = Arc::new(Gated::default());
    let bus = MemoryBus::new();
    let mut f = Follower::start(Arc::new(Shared(store.clone())), &bus, ch(), 100)
        .await
        .unwrap();
    let old = publish(&store, &bus, "old").await;
    assert_eq!(data(&next(&mut f).await), "old");
    store.flush();
    // Two of the new history are stored; the bus carries only the second.
    let lost = store
        .append(PublishRequest::new(ch(), "new-1"))
        .await
        .unwrap();
    let second = publish(&store, &bus, "new-2").await;
    assert_ne!(lost.position.epoch, old.epoch);
    match next(&mut f).await {
        Followed::Reset { reason, top } => {
            assert_eq!(
                reason,
                ResetReason::Gap(rtwire::pubsub::GapReason::EpochChanged)
            );
            assert_eq!(top, Some(Position::new(second.epoch, 0)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(data(&next(&mut f).await), "new-1");
    assert_eq!(data(&next(&mut f).await), "new-2");
}

/// After the store failed during a heal (everyone was told, with a reset
/// that could not say where to start over), publications the bus carries
/// flow again: before the follower, the SSE dispatcher delivered them, and
/// the first follower owed a heal the failing store never paid.
#[tokio::test]
async fn after_the_store_failed_publications_flow_again() {
    let store = Arc::new(Gated::default());
    let bus = MemoryBus::new();
    let mut f = Follower::start(Arc::new(Shared(store.clone())), &bus, ch(), 100)
        .await
        .unwrap();
    // One the bus never carries: the next is a jump, healed from the store.
    store
        .append(PublishRequest::new(ch(), "unseen"))
        .await
        .unwrap();
    store.fail.store(true, Ordering::SeqCst);
    publish(&store, &bus, "2").await;
    match next(&mut f).await {
        Followed::Reset { reason, top } => assert_eq!((reason, top), (ResetReason::Lost, None)),
        other => panic!("{other:?}"),
    }
    publish(&store, &bus, "3").await;
    publish(&store, &bus, "4").await;
    assert_eq!(data(&next(&mut f).await), "3");
    assert_eq!(data(&next(&mut f).await), "4");
}

#[tokio::test]
async fn try_next_takes_what_is_ready_without_waiting() {
    let store = Arc::new(Gated::default());
    let bus = MemoryBus::new();
    let mut f = Follower::start(Arc::new(Shared(store.clone())), &bus, ch(), 100)
        .await
        .unwrap();
    assert!(f.try_next().is_none(), "nothing published");
    for i in 1..=3 {
        publish(&store, &bus, &i.to_string()).await;
    }
    assert_eq!(data(&next(&mut f).await), "1");
    assert_eq!(data(&f.try_next().unwrap()), "2");
    assert_eq!(data(&f.try_next().unwrap()), "3");
    assert!(f.try_next().is_none());
    // A jump needs the store: try_next leaves it to next.
    store.append(PublishRequest::new(ch(), "4")).await.unwrap();
    publish(&store, &bus, "5").await;
    assert!(f.try_next().is_none());
    assert_eq!(data(&next(&mut f).await), "4");
    assert_eq!(data(&f.try_next().unwrap()), "5");
}
