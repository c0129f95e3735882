//! A replay store for `Last-Event-ID` resume: an in-memory ring of encoded
//! events per channel.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use super::encoder::EncodedEvent;
use super::error::StoreError;
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
    name: Arc<str>,
    ring: VecDeque<StoredEvent>,
    next_id: u64,
    latest: watch::Sender<u64>,
    /// Its key in [`Channels::order`].
    used: u64,
}

/// The channels, with what the bound needs.
struct Channels {
    map: HashMap<Arc<str>, Channel>,
    /// Every channel by last use, least recent first.
    order: BTreeMap<u64, Arc<str>>,
    /// Channels created by `subscribe` that may still have no event.
    empties: Vec<Arc<str>>,
    /// Use counter.
    tick: u64,
    /// The highest id an evicted channel had given out: a channel created
    /// later starts above it, so ids are never reused under one name.
    id_floor: u64,
}

impl Channels {
    fn touch(&mut self, name: &str) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(ch) = self.map.get_mut(name) {
            self.order.remove(&ch.used);
            ch.used = tick;
            self.order.insert(tick, Arc::clone(&ch.name));
        }
    }

    fn remove(&mut self, name: &str) {
        if let Some(ch) = self.map.remove(name) {
            self.order.remove(&ch.used);
        }
    }

    /// The channel `name`, created if needed (evicting to make room).
    fn get_or_create(
        &mut self,
        name: &str,
        max: usize,
        by_subscribe: bool,
    ) -> Result<&mut Channel, StoreError> {
        if self.map.contains_key(name) {
            self.touch(name);
        } else {
            self.sweep_empties();
            if self.map.len() >= max && !self.evict_one() {
                return Err(StoreError::TooManyChannels { limit: max });
            }
            let name: Arc<str> = name.into();
            self.tick += 1;
            let ch = Channel {
                name: Arc::clone(&name),
                ring: VecDeque::new(),
                next_id: self.id_floor + 1,
                latest: watch::Sender::new(self.id_floor),
                used: self.tick,
            };
            self.order.insert(self.tick, Arc::clone(&name));
            if by_subscribe {
                self.empties.push(Arc::clone(&name));
            }
            self.map.insert(name, ch);
        }
        self.map
            .get_mut(name)
            .ok_or(StoreError::TooManyChannels { limit: max })
    }

    /// Removes the channels created by `subscribe` that never got an event
    /// and have no subscriber left.
    fn sweep_empties(&mut self) {
        let mut empties = std::mem::take(&mut self.empties);
        empties.retain(|name| match self.map.get(name) {
            Some(ch) if ch.ring.is_empty() => {
                if ch.latest.receiver_count() == 0 {
                    self.remove(name);
                    false
                } else {
                    true
                }
            }
            _ => false,
        });
        self.empties = empties;
    }

    /// Evicts the least recently used channel without a subscriber; false
    /// when every channel has one. Channels passed over (they are in use)
    /// move to the back, so the next pass does not scan them again first.
    fn evict_one(&mut self) -> bool {
        let mut busy = Vec::new();
        let mut victim = None;
        for name in self.order.values() {
            match self.map.get(name) {
                Some(ch) if ch.latest.receiver_count() > 0 => busy.push(Arc::clone(name)),
                _ => {
                    victim = Some(Arc::clone(name));
                    break;
                }
            }
        }
        for name in &busy {
            self.touch(name);
        }
        let Some(name) = victim else {
            return false;
        };
        if let Some(ch) = self.map.get(&name) {
            self.id_floor = self.id_floor.max(ch.next_id - 1);
        }
        self.remove(&name);
        true
    }
}

/// The default of [`ReplayStore::max_channels`].
pub const DEFAULT_MAX_CHANNELS: usize = 10_000;

/// An in-memory replay store: per channel, a ring of the last `capacity`
/// events, each encoded once; at most `max_channels` channels.
///
/// Ids are assigned by the store, increasing by one per event of a channel
/// (1, 2, 3, ... for a channel created while no channel has been evicted),
/// so "is this id still retained" has an exact answer and a client that
/// fell too far behind is told about the [`Gap`] instead of silently
/// missing events. Listeners learn about new events through
/// [`ReplayStore::subscribe`] and fetch them with [`ReplayStore::get_after`]:
/// a slow listener never makes the store buffer more than `capacity` events
/// per channel.
///
/// Channel names often come from clients, so the number of channels is
/// bounded ([`DEFAULT_MAX_CHANNELS`] unless set with
/// [`ReplayStore::with_max_channels`]):
///
/// - a channel created by `subscribe` that never got an event is removed
///   once its last subscriber is gone (when the next channel is created);
/// - creating a channel past the bound evicts the least recently used
///   (appended to, subscribed to or read) channel that has no live
///   subscriber; a client resuming on it later gets a [`Gap`], and a
///   recreated channel never reuses the evicted one's ids;
/// - when every channel has a live subscriber, a new channel is refused
///   with [`StoreError::TooManyChannels`]; existing channels keep working.
///
/// ```
/// use rtwire::sse::{Event, Gap, ReplayStore};
///
/// let store = ReplayStore::new(2);
/// for data in ["a", "b", "c"] {
///     store.append("news", Event::new(data))?;
/// }
/// let r = store.get_since("news", "2", 10);
/// assert_eq!(r.events.iter().map(|e| e.id()).collect::<Vec<_>>(), [3]);
/// assert_eq!(r.gap, None);
///
/// // Event 1 was evicted: a client that saw nothing after it is told.
/// let r = store.get_since("news", "0", 10);
/// assert_eq!(r.gap, Some(Gap::Evicted { first_retained: 2 }));
/// assert_eq!(r.events.len(), 2);
/// # Ok::<(), rtwire::sse::StoreError>(())
/// ```
pub struct ReplayStore {
    capacity: usize,
    max_channels: usize,
    channels: Mutex<Channels>,
}

impl std::fmt::Debug for ReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayStore")
            .field("capacity", &self.capacity)
            .field("max_channels", &self.max_channels)
            .finish_non_exhaustive()
    }
}

impl ReplayStore {
    /// A store keeping the last `capacity` events of each channel (at least
    /// one), and at most [`DEFAULT_MAX_CHANNELS`] channels.
    pub fn new(capacity: usize) -> Self {
        Self::with_max_channels(capacity, DEFAULT_MAX_CHANNELS)
    }

    /// A store keeping the last `capacity` events of each channel and at
    /// most `max_channels` channels (each at least one).
    pub fn with_max_channels(capacity: usize, max_channels: usize) -> Self {
        ReplayStore {
            capacity: capacity.max(1),
            max_channels: max_channels.max(1),
            channels: Mutex::new(Channels {
                map: HashMap::new(),
                order: BTreeMap::new(),
                empties: Vec::new(),
                tick: 0,
                id_floor: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Channels> {
        // Nothing in an update can panic halfway (no user code runs under
        // the lock), and each structure stays usable if one did, so
        // poisoning is ignored.
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `event` to `channel` with the next id (any id already on the
    /// event is replaced), evicting the oldest event when full. Returns the
    /// id and wakes the channel's subscribers.
    ///
    /// Creating the channel may evict another (see the type's docs); it
    /// fails with [`StoreError::TooManyChannels`] when none can go.
    pub fn append(&self, channel: &str, event: Event<'_>) -> Result<u64, StoreError> {
        let mut guard = self.lock();
        let ch = guard.get_or_create(channel, self.max_channels, false)?;
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
        Ok(id)
    }

    /// Channels held now.
    pub fn channel_count(&self) -> usize {
        self.lock().map.len()
    }

    /// The most channels held at once.
    pub fn max_channels(&self) -> usize {
        self.max_channels
    }

    /// The newest id of `channel` (0 when it has none).
    pub fn latest_id(&self, channel: &str) -> u64 {
        self.lock()
            .map
            .get(channel)
            .map_or(0, |ch| ch.next_id.saturating_sub(1))
    }

    /// A receiver of the newest id of `channel`, changed on every append.
    ///
    /// Creating the channel may evict another (see the type's docs); it
    /// fails with [`StoreError::TooManyChannels`] when none can go. The
    /// channel is kept while the receiver (or a clone) lives.
    pub fn subscribe(&self, channel: &str) -> Result<watch::Receiver<u64>, StoreError> {
        let mut guard = self.lock();
        let ch = guard.get_or_create(channel, self.max_channels, true)?;
        Ok(ch.latest.subscribe())
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
        let mut guard = self.lock();
        guard.touch(channel);
        let Some(ch) = guard.map.get(channel) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The side structures shrink with the map: nothing else grows.
    #[test]
    fn order_and_empties_stay_as_small_as_the_map() {
        let s = ReplayStore::with_max_channels(2, 100);
        let mut keep = Vec::new();
        for i in 0..10_000 {
            let rx = s.subscribe(&format!("s{i}")).unwrap();
            if i % 1000 == 0 {
                keep.push(rx);
            }
            s.append(&format!("a{i}"), Event::new("x")).unwrap();
            let g = s.lock();
            assert_eq!(g.order.len(), g.map.len());
            assert!(g.map.len() <= 100);
            assert!(g.empties.len() <= keep.len() + 1, "{}", g.empties.len());
        }
        let g = s.lock();
        for i in (0..10_000).step_by(1000) {
            assert!(g.map.contains_key(format!("s{i}").as_str()));
        }
    }
}
