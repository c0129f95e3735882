//! The SSE manager's API on the in-memory stack: positions as ids, replay
//! and its `reset`, routing, both slow-client policies, limits, the client
//! id rules and shutdown. (Over HTTP: tests/sse_manager_http.rs.)

use std::sync::Arc;

use rtwire::pubsub::{ChannelName, MemoryBus, MemoryConfig, MemoryStore, Position, PublishRequest};
use rtwire::sse::{
    CloseReason, Decoder, EventKind, Limits, ManagedEvent, Manager, ManagerConfig, ManagerError,
    ResetReason, SubscribeRequest, Subscriber,
};

fn ch(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

async fn publish(m: &Manager, channel: &str, data: &str) -> Position {
    m.publish(PublishRequest::new(ch(channel), data.to_owned()))
        .await
        .unwrap()
        .position
}

/// The data of a publication event, decoded from its wire bytes.
fn wire_data(ev: &ManagedEvent) -> (String, String, String) {
    let mut dec = Decoder::new(Limits::default());
    let mut buf = bytes::BytesMut::from(ev.encoded().as_bytes().as_ref());
    let m = dec.decode(&mut buf).unwrap().expect("one whole event");
    assert!(buf.is_empty());
    (
        m.last_event_id().to_owned(),
        m.event_type().to_owned(),
        m.data().to_owned(),
    )
}

/// Lets the dispatchers run until `done` holds (no clock: they are tasks
/// on this runtime, so yielding is what lets them work).
async fn until(m: &Manager, done: impl Fn(&rtwire::sse::Stats) -> bool) {
    for _ in 0..100_000 {
        if done(&m.stats()) {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never reached: {:?}", m.stats());
}

async fn next_data(sub: &mut Subscriber) -> String {
    let ev = sub.recv().await.expect("an event");
    wire_data(&ev).2
}

#[tokio::test]
async fn ids_are_positions_and_a_resume_replays_exactly_what_was_missed() {
    let m = Manager::in_memory(ManagerConfig::new());
    let (mut live, replay) = m.subscribe(SubscribeRequest::new("news")).await.unwrap();
    assert!(replay.is_empty());
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(publish(&m, "news", &format!("e{i}")).await);
    }
    for (i, id) in ids.iter().enumerate() {
        let ev = live.recv().await.unwrap();
        let (wire_id, _, data) = wire_data(&ev);
        assert_eq!(wire_id, id.to_string());
        assert_eq!(data, format!("e{i}"));
    }
    assert!(ids.windows(2).all(|w| w[1].offset == w[0].offset + 1));
    // A client that saw e0..e3 resumes after e3: it gets e4..e9, then live.
    let req = SubscribeRequest::new("news").last_event_id(ids[3].to_string());
    let (mut resumed, replay) = m.subscribe(req).await.unwrap();
    let got: Vec<String> = replay.iter().map(|e| wire_data(e).2).collect();
    assert_eq!(got, (4..10).map(|i| format!("e{i}")).collect::<Vec<_>>());
    publish(&m, "news", "e10").await;
    assert_eq!(next_data(&mut resumed).await, "e10");
    assert_eq!(m.stats().replays_caught_up, 1);
    assert_eq!(m.stats().replayed_events, 6);
}

/// Publications stored before the replay's read but dispatched after the
/// registration are in the replay and in the live queue: the subscriber
/// sees them once.
#[tokio::test]
async fn live_events_already_in_the_replay_are_not_repeated() {
    let m = Manager::in_memory(ManagerConfig::new());
    let (_keep, _) = m.subscribe(SubscribeRequest::new("c")).await.unwrap();
    let first = publish(&m, "c", "a").await;
    let before = Position::new(first.epoch, 0);
    // Stored, but not yet dispatched (the dispatcher is a task that has
    // not run since): they will reach the new subscriber's queue too.
    for i in 0..200 {
        publish(&m, "c", &format!("p{i}")).await;
    }
    let req = SubscribeRequest::new("c").last_event_id(before.to_string());
    let (mut sub, replay) = m.subscribe(req).await.unwrap();
    let end = publish(&m, "c", "end").await;
    let mut seen: Vec<Position> = replay.iter().filter_map(|e| e.position()).collect();
    loop {
        let p = sub.recv().await.unwrap().position().unwrap();
        seen.push(p);
        if p == end {
            break;
        }
    }
    let want: Vec<Position> = (1..=202).map(|o| Position::new(first.epoch, o)).collect();
    assert_eq!(seen, want, "every position once, in order");
}

#[tokio::test]
async fn a_resume_the_store_cannot_serve_gets_one_reset_with_the_top_as_its_id() {
    let store = MemoryStore::new(MemoryConfig::default().max_publications(5));
    let m = Manager::new(ManagerConfig::new(), store, MemoryBus::new());
    let mut last = Position::new(0, 0);
    for i in 0..20 {
        last = m
            .publish(PublishRequest::new(ch("c"), format!("{i}")))
            .await
            .unwrap()
            .position;
    }
    let cases = [
        (
            Position::new(last.epoch, 2).to_string(),
            ResetReason::Gap(rtwire::pubsub::GapReason::Evicted),
        ),
        (
            Position::new(last.epoch, 99).to_string(),
            ResetReason::Gap(rtwire::pubsub::GapReason::Ahead),
        ),
        (
            Position::new(last.epoch + 1, 2).to_string(),
            ResetReason::Gap(rtwire::pubsub::GapReason::EpochChanged),
        ),
        ("not-an-id".to_owned(), ResetReason::InvalidId),
    ];
    for (id, want) in cases {
        let (_sub, replay) = m
            .subscribe(SubscribeRequest::new("c").last_event_id(id.clone()))
            .await
            .unwrap();
        assert_eq!(replay.len(), 1, "{id}");
        match replay[0].kind() {
            EventKind::Reset { reason, top } => {
                assert_eq!(*reason, want, "{id}");
                assert_eq!(*top, Some(last));
            }
            other => panic!("{id}: {other:?}"),
        }
        let (wire_id, ty, data) = wire_data(&replay[0]);
        assert_eq!(ty, "reset");
        assert_eq!(wire_id, last.to_string());
        assert_eq!(
            data,
            format!("{{\"reason\":\"{}\",\"top\":\"{last}\"}}", want.as_str())
        );
    }
    // Over the replay limit is a reset too.
    let m = Manager::in_memory(ManagerConfig::new().replay_limit(3));
    let p = publish(&m, "c", "x").await;
    for _ in 0..5 {
        publish(&m, "c", "y").await;
    }
    let (_s, replay) = m
        .subscribe(SubscribeRequest::new("c").last_event_id(p.to_string()))
        .await
        .unwrap();
    assert!(matches!(
        replay[0].kind(),
        EventKind::Reset {
            reason: ResetReason::Gap(rtwire::pubsub::GapReason::OverLimit),
            ..
        }
    ));
    assert_eq!(m.stats().replays_reset, 1);
}

#[tokio::test]
async fn tenant_and_subject_route_live_events_and_replays() {
    let m = Manager::in_memory(ManagerConfig::new());
    let (mut acme, _) = m
        .subscribe(SubscribeRequest::new("c").tenant("acme"))
        .await
        .unwrap();
    let (mut other, _) = m
        .subscribe(SubscribeRequest::new("c").tenant("other"))
        .await
        .unwrap();
    let (mut none, _) = m.subscribe(SubscribeRequest::new("c")).await.unwrap();
    let first = m
        .publish(PublishRequest::new(ch("c"), "for acme").tenant("acme"))
        .await
        .unwrap();
    m.publish(PublishRequest::new(ch("c"), "for all"))
        .await
        .unwrap();
    assert_eq!(next_data(&mut acme).await, "for acme");
    assert_eq!(next_data(&mut acme).await, "for all");
    assert_eq!(next_data(&mut other).await, "for all");
    assert_eq!(next_data(&mut none).await, "for all");
    assert!(other.try_recv().is_none() && none.try_recv().is_none());
    let before = Position::new(first.position.epoch, 0).to_string();
    let (_s, replay) = m
        .subscribe(
            SubscribeRequest::new("c")
                .tenant("other")
                .last_event_id(before),
        )
        .await
        .unwrap();
    let got: Vec<String> = replay.iter().map(|e| wire_data(e).2).collect();
    assert_eq!(got, ["for all"]);
}

#[tokio::test]
async fn a_full_queue_disconnects_the_slow_client_and_the_others_get_everything() {
    let m = Manager::in_memory(ManagerConfig::new().client_buffer(8));
    let (slow, _) = m
        .subscribe(SubscribeRequest::new("c").client_id("slow"))
        .await
        .unwrap();
    let (mut fast, _) = m.subscribe(SubscribeRequest::new("c")).await.unwrap();
    let mut got = 0;
    for i in 0..100 {
        publish(&m, "c", &format!("{i}")).await;
        // The fast one keeps up; the slow one never reads.
        fast.recv().await.unwrap();
        got += 1;
    }
    assert_eq!(got, 100);
    slow.closed().await;
    assert_eq!(slow.close_reason(), Some(CloseReason::SlowConsumer));
    assert_eq!(m.stats().slow_disconnects, 1);
    assert_eq!(slow.queued(), 0, "its queue is released");
}

#[tokio::test]
async fn drop_on_backpressure_drops_counts_and_tells_the_client_in_band() {
    let m = Manager::in_memory(
        ManagerConfig::new()
            .client_buffer(4)
            .drop_on_backpressure(true),
    );
    let (mut slow, _) = m.subscribe(SubscribeRequest::new("c")).await.unwrap();
    for i in 0..10 {
        publish(&m, "c", &format!("{i}")).await;
    }
    until(&m, |s| s.deliveries + s.drops == 10).await;
    let mut kinds = Vec::new();
    while let Some(ev) = slow.try_recv() {
        kinds.push(match ev.kind() {
            EventKind::Publication(_) => wire_data(&ev).2,
            EventKind::Dropped { missed } => {
                assert_eq!(wire_data(&ev).1, "dropped");
                format!("dropped {missed}")
            }
            k => panic!("{k:?}"),
        });
    }
    assert_eq!(kinds, ["0", "1", "2", "3", "dropped 6"]);
    publish(&m, "c", "10").await;
    assert_eq!(next_data(&mut slow).await, "10");
    assert!(!slow.is_closed());
    assert_eq!(m.stats().drops, 6);
    // A drop notice goes before the next event that fits.
    for i in 11..20 {
        publish(&m, "c", &format!("{i}")).await;
    }
    until(&m, |s| s.deliveries + s.drops == 20).await;
    for _ in 0..4 {
        slow.recv().await.unwrap();
    }
    publish(&m, "c", "20").await;
    let notice = slow.recv().await.unwrap();
    assert!(matches!(notice.kind(), EventKind::Dropped { missed: 5 }));
    assert_eq!(next_data(&mut slow).await, "20");
}

#[tokio::test]
async fn max_connections_plus_one_is_refused_and_a_slot_frees_on_drop() {
    let m = Manager::in_memory(ManagerConfig::new().max_connections(3));
    let mut subs = Vec::new();
    for _ in 0..3 {
        subs.push(m.subscribe(SubscribeRequest::new("c")).await.unwrap().0);
    }
    let err = m.subscribe(SubscribeRequest::new("c")).await.unwrap_err();
    assert!(matches!(err, ManagerError::TooManyConnections { limit: 3 }));
    assert_eq!(err.rejection().status(), 503);
    assert_eq!(err.rejection().retry_after(), Some(1));
    assert_eq!(m.stats().rejected_connections, 1);
    subs.pop();
    assert_eq!(m.stats().connections, 2);
    m.subscribe(SubscribeRequest::new("c")).await.unwrap();
}

#[tokio::test]
async fn invalid_channel_and_non_utf8_data_are_typed_400s() {
    let m = Manager::in_memory(ManagerConfig::new());
    for bad in ["", "a b", "x\ny", &"z".repeat(201)] {
        let err = m.subscribe(SubscribeRequest::new(bad)).await.unwrap_err();
        assert!(matches!(err, ManagerError::InvalidChannel(_)), "{bad:?}");
        assert_eq!(err.rejection().status(), 400);
    }
    let err = m
        .publish(PublishRequest::new(ch("c"), &b"\xff\xfe"[..]))
        .await
        .unwrap_err();
    assert!(matches!(err, ManagerError::InvalidData));
    assert_eq!(m.stats().connections, 0);
}

#[tokio::test]
async fn disconnect_by_id_and_a_second_subscriber_with_the_same_id_replaces_the_first() {
    let m = Manager::in_memory(ManagerConfig::new());
    let (mut a, _) = m
        .subscribe(SubscribeRequest::new("c").client_id("tab"))
        .await
        .unwrap();
    let (mut b, _) = m
        .subscribe(SubscribeRequest::new("c").client_id("tab"))
        .await
        .unwrap();
    assert_eq!(a.recv().await.map(|_| ()), None);
    assert_eq!(a.close_reason(), Some(CloseReason::Disconnected));
    assert_eq!(b.id(), "tab");
    assert!(m.disconnect("tab"));
    assert!(b.recv().await.is_none());
    assert!(!m.disconnect("nobody"));
    let (g, _) = m.subscribe(SubscribeRequest::new("c")).await.unwrap();
    assert!(g.id().starts_with(&m.config().instance_id));
}

#[tokio::test]
async fn the_last_subscriber_out_releases_the_channel() {
    let m = Manager::new(
        ManagerConfig::new(),
        MemoryStore::new(MemoryConfig::default()),
        MemoryBus::new(),
    );
    let bus = m.bus();
    let (a, _) = m.subscribe(SubscribeRequest::new("c")).await.unwrap();
    let (b, _) = m.subscribe(SubscribeRequest::new("c")).await.unwrap();
    assert_eq!(m.stats().channels, 1);
    drop(a);
    assert!(bus.has_subscribers(&ch("c")));
    drop(b);
    assert_eq!(m.stats().channels, 0);
    // The dispatcher lets go of its bus subscription once it sees that.
    for _ in 0..100 {
        if !bus.has_subscribers(&ch("c")) {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(!bus.has_subscribers(&ch("c")));
    // And a new subscriber starts it again.
    let (mut c, _) = m.subscribe(SubscribeRequest::new("c")).await.unwrap();
    publish(&m, "c", "again").await;
    assert_eq!(next_data(&mut c).await, "again");
}

#[tokio::test]
async fn close_ends_every_subscriber_then_refuses() {
    let m = Manager::in_memory(ManagerConfig::new());
    let (mut a, _) = m.subscribe(SubscribeRequest::new("c")).await.unwrap();
    let (mut b, _) = m.subscribe(SubscribeRequest::new("d")).await.unwrap();
    m.close().await;
    assert!(a.recv().await.is_none() && b.recv().await.is_none());
    assert_eq!(a.close_reason(), Some(CloseReason::Shutdown));
    assert!(matches!(
        m.subscribe(SubscribeRequest::new("c")).await,
        Err(ManagerError::Closed)
    ));
    assert!(matches!(
        m.publish(PublishRequest::new(ch("c"), "x")).await,
        Err(ManagerError::Closed)
    ));
}

/// One encoding per publish, shared: every subscriber's event is the same
/// allocation.
#[tokio::test]
async fn a_publication_is_encoded_once_for_every_subscriber() {
    let m = Manager::in_memory(ManagerConfig::new());
    let mut subs = Vec::new();
    for _ in 0..50 {
        subs.push(m.subscribe(SubscribeRequest::new("c")).await.unwrap().0);
    }
    publish(&m, "c", "shared").await;
    let mut evs: Vec<Arc<ManagedEvent>> = Vec::new();
    for s in &mut subs {
        evs.push(s.recv().await.unwrap());
    }
    let p = evs[0].encoded().as_bytes().as_ptr();
    assert!(evs.iter().all(|e| Arc::ptr_eq(e, &evs[0])));
    assert!(evs.iter().all(|e| e.encoded().as_bytes().as_ptr() == p));
    assert_eq!(m.stats().deliveries, 50);
}

/// The review's finding: events dispatched after a resuming client joined
/// but covered by its replay counted against its queue limit, so it was
/// closed as slow (or told of drops) for events it had.
async fn resume_behind_a_backlog(drop_mode: bool) -> (Manager, Subscriber, Subscriber) {
    let m = Manager::in_memory(
        ManagerConfig::new()
            .client_buffer(2)
            .drop_on_backpressure(drop_mode),
    );
    // Keeps the room's dispatcher; nothing below routes to it.
    let (keep, _) = m
        .subscribe(SubscribeRequest::new("c").subject("other"))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        // Stored; not dispatched yet (the dispatcher has not run).
        let p = PublishRequest::new(ch("c"), format!("e{i}")).subject("s");
        ids.push(m.publish(p).await.unwrap().position);
    }
    let before = Position::new(ids[0].epoch, 0);
    let req = SubscribeRequest::new("c")
        .subject("s")
        .last_event_id(before.to_string());
    let (sub, replay) = m.subscribe(req).await.unwrap();
    assert_eq!(replay.len(), 5);
    // The backlog reaches the dispatcher now.
    let end = m
        .publish(PublishRequest::new(ch("c"), "end").subject("other"))
        .await
        .unwrap()
        .position;
    let mut keep = keep;
    while keep.recv().await.unwrap().position() != Some(end) {}
    (m, keep, sub)
}

#[tokio::test]
async fn a_resuming_client_is_not_cut_off_for_live_events_its_replay_holds() {
    let (_m, _keep, sub) = resume_behind_a_backlog(false).await;
    assert_eq!(sub.close_reason(), None);
    assert_eq!(sub.queued(), 0, "the replayed events left its queue");
}

#[tokio::test]
async fn a_resuming_client_gets_no_dropped_notice_for_events_its_replay_holds() {
    let (m, _keep, mut sub) = resume_behind_a_backlog(true).await;
    let p = m
        .publish(PublishRequest::new(ch("c"), "live").subject("s"))
        .await
        .unwrap();
    let ev = sub.recv().await.unwrap();
    assert_eq!(ev.position(), Some(p.position), "{:?}", ev.kind());
    assert_eq!(m.stats().drops, 0);
}

/// The review's finding: a client reset into a new history (the store
/// lost the channel) then got the old history's backlog: ids went back.
#[tokio::test]
async fn after_a_reset_into_a_new_history_no_event_of_the_old_one_arrives() {
    let store = MemoryStore::new(MemoryConfig::default().max_channels(1));
    let m = Manager::new(ManagerConfig::new(), store, MemoryBus::new());
    let (mut keep, _) = m
        .subscribe(SubscribeRequest::new("c").subject("other"))
        .await
        .unwrap();
    let mut old = Vec::new();
    for i in 0..3 {
        let p = PublishRequest::new(ch("c"), format!("e{i}")).subject("s");
        old.push(m.publish(p).await.unwrap().position);
    }
    m.publish(PublishRequest::new(ch("d"), "x")).await.unwrap(); // evicts "c"
    let before = Position::new(old[0].epoch, 0);
    let req = SubscribeRequest::new("c")
        .subject("s")
        .last_event_id(before.to_string());
    let (mut b, replay) = m.subscribe(req).await.unwrap();
    let top = match replay[0].kind() {
        EventKind::Reset { top, .. } => top.unwrap(),
        o => panic!("{o:?}"),
    };
    assert_ne!(top.epoch, old[0].epoch);
    let live = m
        .publish(PublishRequest::new(ch("c"), "new").subject("s"))
        .await
        .unwrap();
    let ev = b.recv().await.unwrap();
    assert_eq!(ev.position(), Some(live.position), "{:?}", ev.kind());
    // The subscriber that was on the old history is told, then moved.
    let mut kinds = Vec::new();
    while let Some(ev) = keep.try_recv() {
        kinds.push(ev.kind().clone());
    }
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, EventKind::Reset { top: Some(t), .. } if t.epoch == top.epoch)),
        "{kinds:?}"
    );
}
