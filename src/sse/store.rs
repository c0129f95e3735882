//! A replay store for `Last-Event-ID` resume: an in-memory ring of encoded
//! events per channel.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::watch;

use super::encoder::EncodedEvent;
use super::event::Event;

/// An event kept by a [`ReplayStore`]: its id and its encoded bytes (with
/// the `id:` line), shared by every stream that replays it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    id: u64,
    encoded: EncodedEvent,
}

impl StoredEvent {
    /// The id the store gave the event (1, 2, 3, ... per channel).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The encoded event, ready for
    /// [`SseStream::send_encoded`](super::SseStream::send_encoded).
    pub fn encoded(&self) -> &EncodedEvent {
        &self.encoded
    }
}

/// Why a [`Replay`] cannot be complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Gap {
    /// Events after the client's id were evicted from the ring; the replay
    /// starts at the oldest retained event, `first_retained`.
    Evicted {
        /// The id of the oldest event still retained.
        first_retained: u64,
    },
    /// The id is not one this store gave out (not a number, or newer than
    /// the newest event, e.g. after a server restart); the replay starts at
    /// the oldest retained event.
    UnknownId,
}

/// The answer of [`ReplayStore::get_since`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    /// Events strictly newer than the requested id, oldest first.
    pub events: Vec<StoredEvent>,
    /// `Some` when events between the requested id and `events` are missing.
    pub gap: Option<Gap>,
    /// True when `limit` cut the replay short: ask again from `cursor`.
    pub more: bool,
    /// The id to continue from: the last returned event's, else the one
    /// the replay started after.
    pub cursor: u64,
}

struct Channel {
    ring: VecDeque<StoredEvent>,
    next_id: u64,
    latest: watch::Sender<u64>,
}

impl Channel {
    fn new() -> Self {
        Channel {
            ring: VecDeque::new(),
            next_id: 1,
            latest: watch::Sender::new(0),
        }
    }
}

/// An in-memory replay store: per channel, a ring of the last `capacity`
/// events, each encoded once.
///
/// Ids are assigned by the store, 1, 2, 3, ... per channel, so "is this id
/// still retained" has an exact answer and a client that fell too far
/// behind is told about the [`Gap`] instead of silently missing events.
/// Listeners learn about new events through [`ReplayStore::subscribe`] and
/// fetch them with [`ReplayStore::get_after`]: a slow listener never makes
/// the store buffer more than `capacity` events per channel.
///
/// ```
/// use rtwire::sse::{Event, Gap, ReplayStore};
///
/// let store = ReplayStore::new(2);
/// for data in ["a", "b", "c"] {
///     store.append("news", Event::new(data));
/// }
/// let r = store.get_since("news", "2", 10);
/// assert_eq!(r.events.iter().map(|e| e.id()).collect::<Vec<_>>(), [3]);
/// assert_eq!(r.gap, None);
///
/// // Event 1 was evicted: a client that saw nothing after it is told.
/// let r = store.get_since("news", "0", 10);
/// assert_eq!(r.gap, Some(Gap::Evicted { first_retained: 2 }));
/// assert_eq!(r.events.len(), 2);
/// ```
pub struct ReplayStore {
    capacity: usize,
    channels: Mutex<HashMap<String, Channel>>,
}

impl std::fmt::Debug for ReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayStore")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl ReplayStore {
    /// A store keeping the last `capacity` events of each channel (at least
    /// one).
    pub fn new(capacity: usize) -> Self {
        ReplayStore {
            capacity: capacity.max(1),
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Channel>> {
        // A panic while holding the lock cannot leave a channel half
        // updated (every update is a push or pop), so poisoning is ignored.
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `event` to `channel` with the next id (any id already on the
    /// event is replaced), evicting the oldest event when full. Returns the
    /// id and wakes the channel's subscribers.
    pub fn append(&self, channel: &str, event: Event<'_>) -> u64 {
        let mut map = self.lock();
        let ch = match map.get_mut(channel) {
            Some(ch) => ch,
            None => map.entry(channel.to_owned()).or_insert_with(Channel::new),
        };
        let id = ch.next_id;
        ch.next_id += 1;
        let mut event = event;
        // A decimal number is always a valid id.
        event.id = Some(id.to_string().into());
        ch.ring.push_back(StoredEvent {
            id,
            encoded: event.to_encoded(),
        });
        while ch.ring.len() > self.capacity {
            ch.ring.pop_front();
        }
        ch.latest.send_replace(id);
        id
    }

    /// The newest id of `channel` (0 when it has none).
    pub fn latest_id(&self, channel: &str) -> u64 {
        self.lock()
            .get(channel)
            .map_or(0, |ch| ch.next_id.saturating_sub(1))
    }

    /// A receiver of the newest id of `channel`, changed on every append.
    pub fn subscribe(&self, channel: &str) -> watch::Receiver<u64> {
        let mut map = self.lock();
        map.entry(channel.to_owned())
            .or_insert_with(Channel::new)
            .latest
            .subscribe()
    }

    /// Events of `channel` strictly newer than `last_event_id` (a
    /// `Last-Event-ID` value), oldest first, at most `limit`.
    ///
    /// An empty id means a new client: nothing to replay, and
    /// [`Replay::cursor`] is the newest id (follow live events from there).
    /// An id that is not a number or is newer than the newest event is
    /// [`Gap::UnknownId`]; an id whose successors were evicted is
    /// [`Gap::Evicted`]. Either way the replay then starts at the oldest
    /// retained event.
    pub fn get_since(&self, channel: &str, last_event_id: &str, limit: usize) -> Replay {
        if last_event_id.is_empty() {
            return Replay {
                events: Vec::new(),
                gap: None,
                more: false,
                cursor: self.latest_id(channel),
            };
        }
        match last_event_id.parse::<u64>() {
            Ok(after) if after <= self.latest_id(channel) => self.get_after(channel, after, limit),
            _ => {
                let mut r = self.get_after(channel, 0, limit);
                r.gap = Some(Gap::UnknownId);
                r
            }
        }
    }

    /// Events of `channel` with an id greater than `after`, oldest first,
    /// at most `limit`; [`Gap::Evicted`] when some were evicted.
    pub fn get_after(&self, channel: &str, after: u64, limit: usize) -> Replay {
        let map = self.lock();
        let Some(ch) = map.get(channel) else {
            return Replay {
                events: Vec::new(),
                gap: None,
                more: false,
                cursor: after,
            };
        };
        let first = ch.ring.front().map_or(ch.next_id, |e| e.id);
        let gap = (after.saturating_add(1) < first).then_some(Gap::Evicted {
            first_retained: first,
        });
        // Ids in the ring are consecutive: index of the first id > after.
        let start = usize::try_from(after.saturating_add(1).saturating_sub(first))
            .unwrap_or(usize::MAX)
            .min(ch.ring.len());
        let available = ch.ring.len() - start;
        let events: Vec<StoredEvent> = ch.ring.range(start..).take(limit).cloned().collect();
        let cursor = events.last().map_or(after, |e| e.id);
        Replay {
            more: available > events.len(),
            events,
            gap,
            cursor,
        }
    }
}
