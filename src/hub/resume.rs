//! Rooms with history: publishing a message (stored first, delivered by
//! the room's feed), joining with a replay, and reading the history.
//!
//! ## A join's replay and hand-off
//!
//! The member is recorded in the room as *joining*: the feed does not
//! deliver to it. It reads what it asked for from the store, up to the
//! store's top `T`, into its connection's queue (waiting for room, so a
//! replay of thousands is never dropped), its [`Cursor`] then at `T`.
//! Then, with the rooms lock held for writing (the feed delivers nothing
//! meanwhile), it compares with the feed's last delivered position `D`:
//!
//! - `D == T`: it becomes a live member now;
//! - `D < T` (the feed has not caught up with the store yet): it waits in
//!   the feed, which drops for it every delivery its replay held and makes
//!   it live on reaching `T`;
//! - `D > T` (the feed delivered something after the read): it reads the
//!   store again from `T`.
//!
//! Either way the [`RoomNotice::Joined`] notice goes into its queue before
//! the first live message. When the store cannot give what was missed the
//! member is sent [`RoomNotice::Reset`] and continues from the store's
//! top. A member that cannot catch up after [`MAX_ROUNDS`] reads, or
//! within [`HistoryConfig::replay_timeout`](super::HistoryConfig::replay_timeout)
//! (it reads slower than the room is written, or not at all), is closed
//! with 1013, to resume later.
//!
//! Each join holds a ticket (`rooms.rs`): a leave invalidates it, and a
//! join acts on the room (hand-off, undo after an error) only while its
//! ticket is the member's current one.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::conn::{ConnId, SendOutcome, Slot};
use super::feed::{Feed, HandOff};
use super::history::{decode_record, encode_record, JoinFrom, Joined, Resume, RoomNotice};
use super::log::Log;
use super::outgoing::Outgoing;
use super::rooms::{log_channel, Ticket};
use super::stats::bump;
use super::{Hub, HubError};
use crate::pubsub::{ChannelName, Cursor, GapReason, Position, Publication, ResetReason, Since};
use crate::ws::{CloseCode, Message};

/// Store reads a join may take to catch up with its room before it is
/// closed with 1013.
pub(crate) const MAX_ROUNDS: usize = 64;

fn backend(e: impl std::fmt::Display) -> HubError {
    HubError::Backend(e.to_string())
}

impl Hub {
    /// Whether `room` keeps history ([`HubConfig::history`](super::HubConfig::history)).
    pub fn has_history(&self, room: &str) -> bool {
        self.inner
            .config
            .history
            .as_ref()
            .is_some_and(|h| h.covers(room))
    }

    pub(crate) fn log(&self) -> Result<&Arc<dyn Log>, HubError> {
        self.inner
            .log
            .get()
            .ok_or_else(|| backend("the hub has no store"))
    }

    /// `msg` with its position written in ([`HubConfig::stamp`](super::HubConfig::stamp)).
    pub(crate) fn stamp(&self, pos: Position, msg: &Message) -> Message {
        match &self.inner.config.stamp {
            Some(f) => f(pos, msg),
            None => msg.clone(),
        }
    }

    /// A notice's frame ([`HubConfig::room_notice`](super::HubConfig::room_notice)).
    pub(crate) fn notice(&self, n: &RoomNotice<'_>) -> Option<Bytes> {
        let f = self.inner.config.room_notice.as_ref()?;
        f(n).map(|m| super::encode(&m))
    }

    /// Stores `msg` in `room`'s history and sends it to every member on
    /// every instance (except `except`), in position order: the room's feed
    /// delivers it (to this instance's members too), with the position
    /// written in by [`HubConfig::stamp`](super::HubConfig::stamp). Returns
    /// its position. Nothing is delivered that was not stored: when the
    /// store fails the error says so ([`HubError::Backend`]). As with
    /// [`Store::append`](crate::pubsub::Store::append), an error can hide a
    /// success (a timeout after Redis stored it; an in-process bus that
    /// failed after the store): the message may then still be delivered,
    /// so a caller that retries may repeat it. [`HubError::NoHistory`] for
    /// a room without history.
    pub async fn publish(
        &self,
        room: &str,
        msg: &Message,
        except: Option<ConnId>,
    ) -> Result<Position, HubError> {
        if !self.has_history(room) {
            return Err(HubError::NoHistory);
        }
        let channel = log_channel(room)?;
        let record = encode_record(&self.inner.instance, except, msg);
        match self.log()?.append(channel, record).await {
            Ok(p) => {
                bump(&self.inner.counters.messages_out, 1);
                bump(&self.inner.counters.history_appends, 1);
                Ok(p.position)
            }
            Err(e) => {
                bump(&self.inner.counters.bus_errors, 1);
                Err(backend(e))
            }
        }
    }

    /// The last `n` messages of `room` (at most
    /// [`replay_limit`](super::HistoryConfig::replay_limit); fewer when
    /// fewer are kept), oldest first, each with its position (and stamped
    /// with it, as members get them). [`HubError::NoHistory`] for a room
    /// without history.
    pub async fn history(
        &self,
        room: &str,
        n: usize,
    ) -> Result<Vec<(Position, Message)>, HubError> {
        if !self.has_history(room) {
            return Err(HubError::NoHistory);
        }
        let channel = log_channel(room)?;
        let limit = self.history_config().replay_limit;
        let n = n.min(limit);
        let (pubs, _) = self.recent(&channel, n).await?;
        // What was published between the two reads came along: the last n.
        let skip = pubs.len().saturating_sub(n);
        Ok(pubs[skip..]
            .iter()
            .filter_map(|p| {
                let r = decode_record(&p.data)?;
                Some((p.position, self.stamp(p.position, &r.message)))
            })
            .collect())
    }

    fn history_config(&self) -> &super::HistoryConfig {
        static NONE: std::sync::OnceLock<super::HistoryConfig> = std::sync::OnceLock::new();
        self.inner
            .config
            .history
            .as_ref()
            .unwrap_or_else(|| NONE.get_or_init(Default::default))
    }

    /// The last `n` publications of `channel` that are still kept, and
    /// the top: as many as the store holds when it holds fewer.
    async fn recent(
        &self,
        channel: &ChannelName,
        n: usize,
    ) -> Result<(Vec<Publication>, Position), HubError> {
        let log = self.log()?;
        let top = log
            .since(channel.clone(), None, 0)
            .await
            .map_err(backend)?
            .top();
        let mut want = n.min(top.offset as usize);
        loop {
            let after = Position::new(top.epoch, top.offset - want as u64);
            // Room for what is published meanwhile: they come along.
            match log
                .since(channel.clone(), Some(after), want + 1024)
                .await
                .map_err(backend)?
            {
                Since::Publications { publications, top } => return Ok((publications, top)),
                Since::CannotCatchUp {
                    reason: GapReason::Evicted | GapReason::OverLimit,
                    ..
                } if want > 0 => want /= 2,
                other => return Ok((Vec::new(), other.top())),
            }
        }
    }

    /// Queues `msg` (a replayed message) for `slot`, waiting for room. A
    /// replay fills at most half the connection's queue, so the member's
    /// live traffic in its other rooms keeps the other half.
    async fn replay_one(
        &self,
        slot: &Slot,
        msg: &Message,
        ticket: &Ticket,
    ) -> Result<(), HubError> {
        if !ticket.load(Ordering::Acquire) {
            return Err(HubError::NotInRoom);
        }
        let mut out = Outgoing::new(msg);
        let piece = out.piece(slot.deflate, &self.inner.counters);
        let max = self.inner.config.max_queue_bytes;
        match slot.push_wait(piece, (max / 2).max(1), max).await {
            SendOutcome::Queued => {
                bump(&self.inner.counters.deliveries, 1);
                Ok(())
            }
            _ => Err(HubError::UnknownConnection(slot.id)),
        }
    }

    pub(crate) async fn join_history(
        &self,
        id: ConnId,
        room: &str,
        from: JoinFrom,
    ) -> Result<Joined, HubError> {
        let channel = log_channel(room)?;
        let slot = self.slot(id)?;
        let make = || Arc::new(Feed::new(channel.clone()));
        let Some(change) = self.enter(&slot, room, Some(&make))? else {
            return Ok(Joined {
                presence: false,
                resume: None,
            });
        };
        let feed = self.rooms().get(room).and_then(|r| r.feed.clone());
        let Some(feed) = feed else {
            return Err(HubError::NotInRoom);
        };
        // The first joiner starts the feed; the others wait for it.
        let started = feed
            .started
            .get_or_try_init(|| async {
                let limit = self.history_config().replay_limit;
                let follow = self
                    .log()?
                    .follow(channel.clone(), limit)
                    .await
                    .map_err(backend)?;
                feed.run(self, room, follow);
                Ok::<(), HubError>(())
            })
            .await;
        if let Err(e) = started {
            bump(&self.inner.counters.bus_errors, 1);
            let ours = change
                .ticket
                .as_ref()
                .is_some_and(|t| self.rooms().get(room).is_some_and(|r| r.holds(id, t)));
            if ours {
                let _ = self.leave(id, room).await;
            }
            return Err(e);
        }
        if change.room_edge {
            // Presence announcements are not stored: they go the way of a
            // room without history.
            if let (Some(c), Ok(ch)) = (self.inner.cluster.get(), super::rooms::room_channel(room))
            {
                c.watch_room(self, room, ch).await;
            }
        }
        let ticket = change
            .ticket
            .clone()
            .expect("a join into a room with history has a ticket");
        // A member that left meanwhile is not announced.
        let presence = if ticket.load(Ordering::Acquire) {
            self.presence_join(&slot, room, &change).await
        } else {
            false
        };
        let timeout = self.history_config().replay_timeout;
        let r =
            tokio::time::timeout(timeout, self.catch_up(&slot, room, &feed, from, &ticket)).await;
        let r = r.unwrap_or_else(|_| {
            slot.request_close(CloseCode::TRY_AGAIN_LATER, "cannot catch up with the room");
            Err(HubError::CannotCatchUp)
        });
        match r {
            Ok(resume) => Ok(Joined {
                presence,
                resume: Some(resume),
            }),
            Err(e) => {
                // Undone only while it is still this join's: a later join
                // (after a leave) is not this one's to undo.
                let ours = self.rooms().get(room).is_some_and(|r| r.holds(id, &ticket));
                if ours {
                    let _ = self.leave(id, room).await;
                }
                Err(e)
            }
        }
    }

    /// The replay and hand-off of one join (see the module docs).
    async fn catch_up(
        &self,
        slot: &Arc<Slot>,
        room: &str,
        feed: &Arc<Feed>,
        from: JoinFrom,
        ticket: &Ticket,
    ) -> Result<Resume, HubError> {
        let h = self.history_config();
        let log = self.log()?.clone();
        let channel = feed.channel.clone();
        let mut replayed = 0u64;
        let mut reset: Option<(ResetReason, Option<u64>)> = None;
        let mut cursor = match from {
            JoinFrom::Live => Cursor::new(),
            JoinFrom::Since(p) => Cursor::at(p),
            JoinFrom::History(n) => {
                let (pubs, top) = self.recent(&channel, n.min(h.max_join_history)).await?;
                let mut c = Cursor::at(top);
                if let Some(first) = pubs.first() {
                    c = Cursor::at(Position::new(
                        first.position.epoch,
                        first.position.offset - 1,
                    ));
                }
                c
            }
            JoinFrom::Invalid => {
                let top = log
                    .since(channel.clone(), None, 0)
                    .await
                    .map_err(backend)?
                    .top();
                self.tell_reset(slot, room, ResetReason::InvalidId, None, Some(top));
                reset = Some((ResetReason::InvalidId, None));
                Cursor::at(top)
            }
        };
        let mut generation = feed.generation();
        for _ in 0..MAX_ROUNDS {
            if !ticket.load(Ordering::Acquire) {
                return Err(HubError::NotInRoom);
            }
            if let Some(after) = cursor.through() {
                generation = feed.generation();
                match log
                    .since(channel.clone(), Some(after), h.replay_limit)
                    .await
                    .map_err(backend)?
                {
                    Since::Publications { publications, .. } => {
                        for p in publications {
                            if cursor.is_stale(p.position) {
                                continue;
                            }
                            if let Some(rec) = decode_record(&p.data) {
                                let msg = self.stamp(p.position, &rec.message);
                                self.replay_one(slot, &msg, ticket).await?;
                                replayed += 1;
                            }
                            cursor.caught_up(p.position);
                        }
                    }
                    Since::CannotCatchUp { reason, top } => {
                        let missed = (after.epoch == top.epoch && top.offset > after.offset)
                            .then(|| top.offset - after.offset);
                        let reason = ResetReason::Gap(reason);
                        self.tell_reset(slot, room, reason, missed, Some(top));
                        reset = Some((reason, missed));
                        cursor = Cursor::at(top);
                    }
                }
            }
            let resume = |top: Option<Position>| match (reset, from) {
                (Some((reason, missed)), _) => Resume::Reset {
                    reason,
                    missed,
                    top,
                },
                (None, JoinFrom::Live) => Resume::Live { top },
                (None, JoinFrom::History(_)) => Resume::History {
                    replayed,
                    top: top.unwrap_or(Position::new(0, 0)),
                },
                (None, _) => Resume::Recovered {
                    replayed,
                    top: top.unwrap_or(Position::new(0, 0)),
                },
            };
            let mut rooms = self.rooms_mut();
            let Some(r) = rooms.get_mut(room) else {
                return Err(HubError::NotInRoom);
            };
            if !r.holds(slot.id, ticket) || !r.has_feed(feed) {
                return Err(HubError::NotInRoom);
            }
            let mut outcome = None;
            let step = feed.hand_off(
                slot.id,
                slot,
                ticket,
                cursor,
                generation,
                |top| {
                    let res = resume(top);
                    if let Some(n) = self.notice(&RoomNotice::Joined { room, resume: &res }) {
                        slot.push_notice(&n);
                    }
                    outcome = Some(res);
                },
                || {
                    if let Some(j) = r.joining.remove(&slot.id) {
                        r.members.insert(slot.id, j.slot);
                    }
                },
            );
            match step {
                HandOff::Done => {
                    return Ok(outcome.expect("hand_off notifies when done"));
                }
                HandOff::Behind => {}
            }
        }
        slot.request_close(CloseCode::TRY_AGAIN_LATER, "cannot catch up with the room");
        Err(HubError::CannotCatchUp)
    }

    fn tell_reset(
        &self,
        slot: &Slot,
        room: &str,
        reason: ResetReason,
        missed: Option<u64>,
        top: Option<Position>,
    ) {
        bump(&self.inner.counters.resume_resets, 1);
        let n = RoomNotice::Reset {
            room,
            reason,
            missed,
            top,
        };
        if let Some(f) = self.notice(&n) {
            slot.push_notice(&f);
        }
    }
}
