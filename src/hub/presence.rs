//! Presence: who is online in a room, and the join/leave events.
//!
//! A *presence* is a user in a room, whatever number of connections
//! (tabs) it has there: it starts with the user's first connection and
//! ends with its last. On one node the hub's rooms are the whole truth; on
//! many, each instance keeps its share in a shared backend under a lease
//! (see [`RedisPresence`](super::RedisPresence), feature `redis`).

use std::collections::HashMap;
#[cfg(feature = "redis")]
use std::sync::Arc;

/// Whether a user came or went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresenceKind {
    /// The user's first connection joined the room.
    Join,
    /// The user's last connection left the room (or its instance died).
    Leave,
}

/// A presence change in a room, announced to its members with
/// [`HubConfig::presence_format`](super::HubConfig::presence_format).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceEvent {
    /// Join or leave.
    pub kind: PresenceKind,
    /// The room.
    pub room: String,
    /// The user.
    pub user: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// One user online in a room ([`Hub::online`](super::Hub::online)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PresenceInfo {
    /// The user.
    pub user: String,
    /// Its connections in the room (on every instance).
    pub connections: u32,
    /// When its first connection joined, in ms since the Unix epoch.
    pub joined_at_ms: u64,
    /// Its latest activity (an inbound message, or the join), in ms since
    /// the Unix epoch.
    pub last_seen_ms: u64,
}

/// A user's presence in a room on this instance.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LocalPresence {
    pub(crate) conns: u32,
    pub(crate) joined_at_ms: u64,
}

/// Merges per-instance entries of one room into one entry per user.
pub(crate) fn merge(entries: impl IntoIterator<Item = PresenceInfo>) -> Vec<PresenceInfo> {
    let mut by_user: HashMap<String, PresenceInfo> = HashMap::new();
    for e in entries {
        match by_user.get_mut(&e.user) {
            Some(p) => {
                p.connections += e.connections;
                p.joined_at_ms = p.joined_at_ms.min(e.joined_at_ms);
                p.last_seen_ms = p.last_seen_ms.max(e.last_seen_ms);
            }
            None => {
                by_user.insert(e.user.clone(), e);
            }
        }
    }
    let mut v: Vec<PresenceInfo> = by_user.into_values().collect();
    v.sort_by(|a, b| {
        a.joined_at_ms
            .cmp(&b.joined_at_ms)
            .then(a.user.cmp(&b.user))
    });
    v
}

/// Where presence beyond this instance lives.
#[derive(Clone)]
pub(crate) enum Backend {
    /// This instance only.
    Local,
    /// Shared, with leases.
    #[cfg(feature = "redis")]
    Redis(Arc<super::redis::RedisPresence>),
}

impl Backend {
    /// Records `user`'s presence in `room` on this instance with `conns`
    /// connections; whether the user is new to the room (on every
    /// instance).
    pub(crate) async fn join(&self, room: &str, user: &str, conns: u32, joined_at_ms: u64) -> bool {
        match self {
            Backend::Local => {
                let _ = (room, user, conns, joined_at_ms);
                true
            }
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.join(room, user, conns, joined_at_ms).await,
        }
    }

    /// Removes `user`'s presence in `room` on this instance; whether the
    /// user is gone from the room (on every instance).
    pub(crate) async fn leave(&self, room: &str, user: &str, room_empty: bool) -> bool {
        match self {
            Backend::Local => {
                let _ = (room, user, room_empty);
                true
            }
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.leave(room, user, room_empty).await,
        }
    }

    /// The other instances' share of `room` (`None`: local only).
    pub(crate) async fn remote(&self, room: &str) -> Option<Vec<PresenceInfo>> {
        match self {
            Backend::Local => {
                let _ = room;
                None
            }
            #[cfg(feature = "redis")]
            Backend::Redis(r) => Some(r.remote(room).await),
        }
    }
}
