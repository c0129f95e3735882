//! Rooms: membership, the local share of presence, and the announcements
//! of joins and leaves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLockReadGuard, RwLockWriteGuard};

use tokio::task::AbortHandle;

use super::conn::{ConnId, Slot};
use super::feed::Feed;
use super::history::{JoinFrom, Joined};
use super::presence::{merge, LocalPresence, PresenceEvent, PresenceInfo, PresenceKind};
use super::stats::bump;
use super::time::now_ms;
use super::{Hub, HubError, MAX_ROOM_LEN};
use crate::pubsub::ChannelName;

/// One room's local state.
#[derive(Default)]
pub(crate) struct Room {
    /// Live members: what the room delivers goes to each of them.
    pub(crate) members: HashMap<ConnId, Arc<Slot>>,
    /// Members of a room with history that are not live yet (their replay
    /// is running, or their hand-off waits for the feed): see `resume.rs`.
    pub(crate) joining: HashMap<ConnId, Joining>,
    pub(crate) users: HashMap<Arc<str>, LocalPresence>,
    /// The bus subscription's task, when the hub has a bus.
    pub(crate) pump: Option<AbortHandle>,
    /// The stored messages' feed, for a room with history.
    pub(crate) feed: Option<Arc<Feed>>,
}

/// A member of a room with history on its way in.
pub(crate) struct Joining {
    pub(crate) slot: Arc<Slot>,
    /// This join's ticket: `false` once the member left (or the join was
    /// abandoned). A join acts on the room only while its ticket is the
    /// member's current one, so a stale join never undoes a later one.
    pub(crate) ticket: Ticket,
}

/// A join's ticket (compared by identity).
pub(crate) type Ticket = Arc<AtomicBool>;

impl Room {
    /// Whether `ticket` is `id`'s current join.
    pub(crate) fn holds(&self, id: ConnId, ticket: &Ticket) -> bool {
        self.joining
            .get(&id)
            .is_some_and(|j| Arc::ptr_eq(&j.ticket, ticket))
    }

    /// Whether this room's feed is `feed` (not a later room's).
    pub(crate) fn has_feed(&self, feed: &Arc<Feed>) -> bool {
        self.feed.as_ref().is_some_and(|f| Arc::ptr_eq(f, feed))
    }

    /// Local members, live or joining.
    pub(crate) fn len(&self) -> usize {
        self.members.len() + self.joining.len()
    }

    /// Whether `id` is a member (live or joining).
    pub(crate) fn has(&self, id: ConnId) -> bool {
        self.members.contains_key(&id) || self.joining.contains_key(&id)
    }
}

/// The bus channel of `room` (which also validates the name).
pub(crate) fn room_channel(room: &str) -> Result<ChannelName, HubError> {
    if room.len() > MAX_ROOM_LEN {
        return Err(HubError::InvalidRoom(format!(
            "longer than {MAX_ROOM_LEN} bytes"
        )));
    }
    if room.is_empty() {
        return Err(HubError::InvalidRoom("empty".into()));
    }
    ChannelName::new(&format!("hub.room.{room}")).map_err(|e| HubError::InvalidRoom(e.to_string()))
}

/// The channel of `room`'s stored messages (a room with history).
pub(crate) fn log_channel(room: &str) -> Result<ChannelName, HubError> {
    room_channel(room)?;
    ChannelName::new(&format!("hub.log.{room}")).map_err(|e| HubError::InvalidRoom(e.to_string()))
}

/// What a join or leave changed locally.
pub(crate) struct Change {
    /// The user's first (join) or last (leave) local connection in the room.
    user_edge: bool,
    /// The room's first (join) or last (leave) local member.
    pub(crate) room_edge: bool,
    conns: u32,
    joined_at_ms: u64,
    /// A join into a room with history: its ticket.
    pub(crate) ticket: Option<Ticket>,
}

impl Hub {
    pub(crate) fn rooms(&self) -> RwLockReadGuard<'_, HashMap<Arc<str>, Room>> {
        self.inner.rooms.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn rooms_mut(&self) -> RwLockWriteGuard<'_, HashMap<Arc<str>, Room>> {
        self.inner.rooms.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a connection to `room` (up to
    /// [`max_rooms_per_conn`](super::HubConfig::max_rooms_per_conn)). When
    /// it is the user's first connection there and the user is new to the
    /// room on every instance, a join is announced to the room's other
    /// members. Joining a room twice is a no-op. Returns whether this was
    /// the user's presence join. In a room with history this is
    /// [`join_with`](Self::join_with) from [`JoinFrom::Live`].
    pub async fn join(&self, id: ConnId, room: &str) -> Result<bool, HubError> {
        Ok(self.join_with(id, room, JoinFrom::Live).await?.presence)
    }

    /// [`join`](Self::join), and in a room with history
    /// ([`HubConfig::history`](super::HubConfig::history)) what the member
    /// asks for before live messages: what it missed since a position, or
    /// the last N messages. The replay goes into the connection's queue
    /// (waiting for room: a replay is never dropped), followed by a
    /// [`RoomNotice::Joined`](super::RoomNotice::Joined) notice, followed
    /// by the live messages, with none lost and none repeated at the
    /// hand-off. When the history cannot give what was missed the member
    /// is sent a [`RoomNotice::Reset`](super::RoomNotice::Reset) first,
    /// never a partial replay. In a room without history `from` is
    /// ignored. Cancel-safe: a join whose caller is dropped completes (in
    /// a task of its own) or is undone.
    pub async fn join_with(
        &self,
        id: ConnId,
        room: &str,
        from: JoinFrom,
    ) -> Result<Joined, HubError> {
        if !self.has_history(room) {
            let presence = self.join_plain(id, room).await?;
            return Ok(Joined {
                presence,
                resume: None,
            });
        }
        let hub = self.clone();
        let room = room.to_owned();
        let task = tokio::spawn(async move { hub.join_history(id, &room, from).await });
        task.await
            .unwrap_or_else(|e| Err(HubError::Backend(format!("join task: {e}"))))
    }

    /// [`join_with`](Self::join_with) from `since` when there is one
    /// ([`JoinFrom::Since`]), else live: what a reconnecting client does
    /// with the last position it has. `resume` says whether everything
    /// after `since` was given (`Resume::Recovered`) or the member was told
    /// to start over (`Resume::Reset`).
    ///
    /// ```no_run
    /// # async fn demo(hub: rtwire::hub::Hub, id: rtwire::hub::ConnId, last: Option<rtwire::pubsub::Position>) {
    /// let joined = hub.join_since(id, "lobby", last).await.unwrap();
    /// if joined.resume.is_some_and(|r| !r.recovered()) {
    ///     // The client was sent a reset notice: it refetches its state.
    /// }
    /// # }
    /// ```
    pub async fn join_since(
        &self,
        id: ConnId,
        room: &str,
        since: Option<crate::pubsub::Position>,
    ) -> Result<Joined, HubError> {
        let from = since.map_or(JoinFrom::Live, JoinFrom::Since);
        self.join_with(id, room, from).await
    }

    /// Records `slot` in `room` (live, or joining in a room with
    /// history): `None` when it is in the room already.
    pub(crate) fn enter(
        &self,
        slot: &Arc<Slot>,
        room: &str,
        feed: Option<&dyn Fn() -> Arc<Feed>>,
    ) -> Result<Option<Change>, HubError> {
        let mut rooms_of = slot.rooms();
        // unregister marks the slot done before it takes its rooms.
        if slot.is_done() {
            return Err(HubError::UnknownConnection(slot.id));
        }
        if rooms_of.iter().any(|r| &**r == room) {
            return Ok(None);
        }
        let limit = self.inner.config.max_rooms_per_conn;
        if rooms_of.len() >= limit {
            return Err(HubError::TooManyRooms { limit });
        }
        let name: Arc<str> = room.into();
        rooms_of.push(name.clone());
        let mut rooms = self.rooms_mut();
        let room_edge = !rooms.contains_key(room);
        let r = rooms.entry(name).or_default();
        let mut ticket = None;
        match feed {
            None => {
                r.members.insert(slot.id, slot.clone());
            }
            Some(make) => {
                r.feed.get_or_insert_with(make);
                let t: Ticket = Arc::new(AtomicBool::new(true));
                ticket = Some(t.clone());
                r.joining.insert(
                    slot.id,
                    Joining {
                        slot: slot.clone(),
                        ticket: t,
                    },
                );
            }
        }
        let p = r.users.entry(slot.user.clone()).or_insert(LocalPresence {
            conns: 0,
            joined_at_ms: now_ms(),
        });
        p.conns += 1;
        Ok(Some(Change {
            user_edge: p.conns == 1,
            room_edge,
            conns: p.conns,
            joined_at_ms: p.joined_at_ms,
            ticket,
        }))
    }

    /// The presence half of a join: records the user's presence and
    /// announces it when the user is new to the room everywhere.
    pub(crate) async fn presence_join(&self, slot: &Slot, room: &str, change: &Change) -> bool {
        if !change.user_edge {
            return false;
        }
        let new = self
            .backend()
            .join(room, &slot.user, change.conns, change.joined_at_ms)
            .await;
        if new {
            self.announce(PresenceKind::Join, room, &slot.user, Some(slot.id))
                .await;
        }
        new
    }

    async fn join_plain(&self, id: ConnId, room: &str) -> Result<bool, HubError> {
        let channel = room_channel(room)?;
        let slot = self.slot(id)?;
        let Some(change) = self.enter(&slot, room, None)? else {
            return Ok(false);
        };
        if change.room_edge {
            if let Some(c) = self.inner.cluster.get() {
                c.watch_room(self, room, channel).await;
            }
        }
        Ok(self.presence_join(&slot, room, &change).await)
    }

    /// Removes a connection from `room`; a leave is announced when it was
    /// the user's last connection there (on every instance).
    pub async fn leave(&self, id: ConnId, room: &str) -> Result<(), HubError> {
        let slot = self
            .conns()
            .get(&id)
            .cloned()
            .ok_or(HubError::UnknownConnection(id))?;
        let change = {
            // The slot's room list stays locked until the room has let go
            // of it too (the order `enter` takes them in): a join racing
            // this leave comes wholly before or wholly after it.
            let mut rooms_of = slot.rooms();
            let Some(i) = rooms_of.iter().position(|r| &**r == room) else {
                return Err(HubError::NotInRoom);
            };
            rooms_of.remove(i);
            self.leave_room(&slot, room)
        };
        self.presence_leave(&slot, room, change).await;
        Ok(())
    }

    async fn leave_slot(&self, slot: &Slot, room: &str) {
        let change = self.leave_room(slot, room);
        self.presence_leave(slot, room, change).await;
    }

    /// Takes `slot` out of `room` (`None`: it was not there).
    fn leave_room(&self, slot: &Slot, room: &str) -> Option<Change> {
        let mut rooms = self.rooms_mut();
        let r = rooms.get_mut(room)?;
        r.members.remove(&slot.id);
        if let Some(j) = r.joining.remove(&slot.id) {
            j.ticket.store(false, Ordering::Release);
            if let Some(f) = &r.feed {
                f.forget(slot.id);
            }
        }
        let mut user_edge = false;
        if let Some(p) = r.users.get_mut(&slot.user) {
            p.conns = p.conns.saturating_sub(1);
            if p.conns == 0 {
                r.users.remove(&slot.user);
                user_edge = true;
            }
        }
        let room_edge = r.len() == 0;
        if room_edge {
            if let Some(r) = rooms.remove(room) {
                if let Some(p) = r.pump {
                    p.abort();
                }
                if let Some(f) = r.feed {
                    f.stop();
                }
            }
        }
        Some(Change {
            user_edge,
            room_edge,
            conns: 0,
            joined_at_ms: 0,
            ticket: None,
        })
    }

    /// The presence half of a leave: announced when it was the user's last
    /// connection there (on every instance).
    async fn presence_leave(&self, slot: &Slot, room: &str, change: Option<Change>) {
        let Some(change) = change else { return };
        if change.user_edge
            && self
                .backend()
                .leave(room, &slot.user, change.room_edge)
                .await
        {
            self.announce(PresenceKind::Leave, room, &slot.user, None)
                .await;
        }
    }

    /// Removes a connection from the hub: it leaves every room (leaves are
    /// announced) and its writer stops. Idempotent.
    pub async fn unregister(&self, id: ConnId) {
        let Some(slot) = self.conns_mut().remove(&id) else {
            return;
        };
        self.inner
            .counters
            .connections
            .fetch_sub(1, Ordering::Relaxed);
        slot.finish();
        let rooms = std::mem::take(&mut *slot.rooms());
        for room in rooms {
            self.leave_slot(&slot, &room).await;
        }
        self.inner.drained.notify_waiters();
    }

    /// Announces a presence change to `room` (on every instance), except
    /// to `except`, with the configured
    /// [`presence_format`](super::HubConfig::presence_format).
    pub(crate) async fn announce(
        &self,
        kind: PresenceKind,
        room: &str,
        user: &str,
        except: Option<ConnId>,
    ) {
        let c = &self.inner.counters;
        match kind {
            PresenceKind::Join => bump(&c.presence_joins, 1),
            PresenceKind::Leave => bump(&c.presence_leaves, 1),
        }
        let Some(format) = self.inner.config.presence_format.clone() else {
            return;
        };
        let ev = PresenceEvent {
            kind,
            room: room.to_owned(),
            user: user.to_owned(),
            at_ms: now_ms(),
        };
        if let Some(msg) = format(&ev) {
            let _ = self.broadcast_unstored(room, &msg, except).await;
        }
    }

    /// Who is online in `room`: one entry per user, on every instance
    /// (with shared presence), oldest presence first.
    pub async fn online(&self, room: &str) -> Vec<PresenceInfo> {
        let local: Vec<PresenceInfo> = {
            let rooms = self.rooms();
            match rooms.get(room) {
                None => Vec::new(),
                Some(r) => r
                    .users
                    .iter()
                    .map(|(user, p)| {
                        let last_seen_ms = r
                            .members
                            .values()
                            .chain(r.joining.values().map(|j| &j.slot))
                            .filter(|s| s.user == *user)
                            .map(|s| s.last_seen_ms.load(Ordering::Relaxed))
                            .max()
                            .unwrap_or(p.joined_at_ms);
                        PresenceInfo {
                            user: user.to_string(),
                            connections: p.conns,
                            joined_at_ms: p.joined_at_ms,
                            last_seen_ms,
                        }
                    })
                    .collect(),
            }
        };
        match self.backend().remote(room).await {
            None => merge(local),
            Some(remote) => merge(local.into_iter().chain(remote)),
        }
    }

    /// The rooms with local members.
    pub fn room_names(&self) -> Vec<String> {
        self.rooms().keys().map(|r| r.to_string()).collect()
    }

    /// How many local members `room` has (live, or catching up).
    pub fn room_size(&self, room: &str) -> usize {
        self.rooms().get(room).map_or(0, Room::len)
    }

    /// Records that every local member of `room` missed `n` frames.
    pub(crate) fn missed_room(&self, room: &str, n: u64) {
        if let Some(r) = self.rooms().get(room) {
            for s in r.members.values() {
                s.add_missed(n);
            }
        }
    }

    /// Stores the bus task of `room` (aborts it when the room is gone).
    pub(crate) fn set_pump(&self, room: &str, pump: AbortHandle) {
        match self.rooms_mut().get_mut(room) {
            Some(r) => {
                if let Some(old) = r.pump.replace(pump) {
                    old.abort();
                }
            }
            None => pump.abort(),
        }
    }
}
