//! Who is subscribed where: the rooms (one per channel with a local
//! subscriber) and the client ids.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use tokio::sync::{Notify, OnceCell};

use super::subscriber::{CloseReason, Shared};
use crate::pubsub::ChannelName;

/// One channel's local subscribers and its dispatcher's life.
pub(crate) struct Room {
    pub(crate) channel: ChannelName,
    subs: RwLock<HashMap<u64, Arc<Shared>>>,
    /// Set once the bus subscription is up and the dispatcher runs.
    pub(crate) ready: OnceCell<()>,
    /// Set when the last subscriber left: the dispatcher stops.
    dead: AtomicBool,
    pub(crate) stop: Notify,
}

impl Room {
    pub(crate) fn subscribers(&self) -> RwLockReadGuard<'_, HashMap<u64, Arc<Shared>>> {
        self.subs.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }
}

#[derive(Default)]
struct Maps {
    rooms: HashMap<ChannelName, Arc<Room>>,
    clients: HashMap<String, Arc<Shared>>,
}

/// Rooms and client ids, under one lock taken only to join and leave (the
/// dispatchers read their own room's list).
#[derive(Default)]
pub(crate) struct Registry {
    maps: Mutex<Maps>,
    next_key: AtomicU64,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `shared` to its channel's room (made if needed) and under its
    /// id, closing an older subscriber with the same id. Returns the room
    /// and `shared`'s key in it.
    pub(crate) fn add(&self, shared: &Arc<Shared>) -> (Arc<Room>, u64) {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let mut maps = self.lock();
        let room = maps
            .rooms
            .entry(shared.channel.clone())
            .or_insert_with(|| {
                Arc::new(Room {
                    channel: shared.channel.clone(),
                    subs: RwLock::new(HashMap::new()),
                    ready: OnceCell::new(),
                    dead: AtomicBool::new(false),
                    stop: Notify::new(),
                })
            })
            .clone();
        room.subs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, shared.clone());
        let older = maps.clients.insert(shared.id.clone(), shared.clone());
        drop(maps);
        if let Some(older) = older {
            older.close(CloseReason::Disconnected);
        }
        (room, key)
    }

    /// Removes the subscriber `key` of `shared`'s room; the last one out
    /// stops the room's dispatcher.
    pub(crate) fn remove(&self, shared: &Arc<Shared>, key: u64) {
        let mut maps = self.lock();
        if maps
            .clients
            .get(&shared.id)
            .is_some_and(|s| Arc::ptr_eq(s, shared))
        {
            maps.clients.remove(&shared.id);
        }
        let Some(room) = maps.rooms.get(&shared.channel).cloned() else {
            return;
        };
        let mut subs = room.subs.write().unwrap_or_else(|p| p.into_inner());
        if !subs.get(&key).is_some_and(|s| Arc::ptr_eq(s, shared)) {
            return; // a room retired meanwhile; this is its successor
        }
        subs.remove(&key);
        if subs.is_empty() {
            drop(subs);
            maps.rooms.remove(&shared.channel);
            room.dead.store(true, Ordering::Release);
            room.stop.notify_one();
        }
    }

    /// Takes `room` out of the map (if it is still the channel's room) and
    /// marks it dead: its dispatcher is gone, a new subscriber makes a new
    /// room.
    pub(crate) fn retire(&self, room: &Arc<Room>) {
        let mut maps = self.lock();
        if maps
            .rooms
            .get(&room.channel)
            .is_some_and(|r| Arc::ptr_eq(r, room))
        {
            maps.rooms.remove(&room.channel);
        }
        room.dead.store(true, Ordering::Release);
    }

    /// The subscriber with this client id, if connected.
    pub(crate) fn client(&self, id: &str) -> Option<Arc<Shared>> {
        self.lock().clients.get(id).cloned()
    }

    /// Every subscriber (for shutdown).
    pub(crate) fn all(&self) -> Vec<Arc<Shared>> {
        self.lock().clients.values().cloned().collect()
    }

    /// Channels with a local subscriber.
    pub(crate) fn channel_count(&self) -> usize {
        self.lock().rooms.len()
    }
}
