//! Sending: to one connection (`send`, `send_encoded`, `close`), to a
//! room or to all (`broadcast`, `broadcast_all`), inline or through the
//! batched queue, and the per-member push they share.

use bytes::Bytes;

#[cfg(feature = "deflate")]
use super::outgoing::MemberDeflate;
use super::outgoing::{Outgoing, Piece};
use super::stats::bump;
use super::{batch, cluster, rooms, ConnId, Hub, HubError, SendOutcome, Slot};
use crate::ws::{CloseCode, Message};

impl Hub {
    /// Closes a connection with `code` after what is already queued for it
    /// (bounded by the connection's write timeout); nothing more is
    /// queued for it meanwhile. (Batched, what was queued for it before
    /// the close, in the hub's queue too, goes first.)
    pub fn close(&self, id: ConnId, code: CloseCode, reason: &'static str) -> Result<(), HubError> {
        let slot = self.slot(id)?;
        match &self.inner.batch {
            None => slot.request_close(code, reason),
            Some(b) => {
                let target = batch::Target::Close(id, code, reason);
                let empty = Outgoing::from_encoded(Bytes::new());
                b.now_or_queue(self, empty, target, |_| {
                    slot.request_close(code, reason);
                    SendOutcome::Queued
                });
            }
        }
        Ok(())
    }

    /// Queues `msg` for one connection. Never waits. (With
    /// [`batch_broadcasts`](super::HubConfig::batch_broadcasts), a send made while
    /// broadcasts are queued goes behind them and returns
    /// [`SendOutcome::Queued`], or [`SendOutcome::Dropped`] if the hub's
    /// queue is over [`BATCH_MAX_PENDING`](super::BATCH_MAX_PENDING).)
    pub fn send(&self, id: ConnId, msg: &Message) -> Result<SendOutcome, HubError> {
        let slot = self.slot(id)?;
        bump(&self.inner.counters.messages_out, 1);
        let mut out = Outgoing::new(msg);
        Ok(match &self.inner.batch {
            None => self.send_now(&slot, &mut out),
            Some(b) => {
                let target = batch::Target::Conn(id);
                b.now_or_queue(self, out, target, |out| self.send_now(&slot, out))
                    .unwrap_or_else(|| self.dropped(&slot))
            }
        })
    }

    /// Counts a message `slot` did not get (the hub's queue was full).
    fn dropped(&self, slot: &Slot) -> SendOutcome {
        bump(&self.inner.counters.drops, 1);
        slot.add_missed(1);
        SendOutcome::Dropped
    }

    /// Queues `out` for one connection now.
    pub(crate) fn send_now(&self, slot: &Slot, out: &mut Outgoing) -> SendOutcome {
        // One recipient: its own compressor does what a shared encoding
        // would (and keeps its context, if it has one).
        #[cfg(feature = "deflate")]
        let deflate = slot.deflate.map(|d| MemberDeflate { shared: None, ..d });
        #[cfg(not(feature = "deflate"))]
        let deflate = slot.deflate;
        let piece = out.piece(deflate, &self.inner.counters);
        let r = self.push(slot, piece);
        if r == SendOutcome::Queued {
            bump(&self.inner.counters.deliveries, 1);
        }
        r
    }

    /// Queues already-encoded server frames (see [`encode`](super::encode)) for one
    /// connection. They are checked here: no reserved bit but RSV1 on a
    /// data frame, and that only for a connection that takes shared
    /// compressed frames ([`HubError::InvalidFrames`] otherwise).
    pub fn send_encoded(&self, id: ConnId, frame: &Bytes) -> Result<SendOutcome, HubError> {
        let slot = self.slot(id)?;
        #[cfg(feature = "deflate")]
        let fits = slot.deflate.is_some_and(|d| d.shared.is_some());
        #[cfg(not(feature = "deflate"))]
        let fits = false;
        crate::ws::check_encoded_frames(frame, fits)
            .map_err(|e| HubError::InvalidFrames(e.to_string()))?;
        bump(&self.inner.counters.messages_out, 1);
        Ok(match &self.inner.batch {
            None => self.send_encoded_now(&slot, frame),
            Some(b) => {
                let out = Outgoing::from_encoded(frame.clone());
                let target = batch::Target::ConnEncoded(id);
                b.now_or_queue(self, out, target, |out| {
                    self.send_encoded_now(&slot, &out.frame)
                })
                .unwrap_or_else(|| self.dropped(&slot))
            }
        })
    }

    /// Queues checked frames for one connection now.
    pub(crate) fn send_encoded_now(&self, slot: &Slot, frame: &Bytes) -> SendOutcome {
        let r = self.push(slot, Piece::Encoded(frame));
        if r == SendOutcome::Queued {
            bump(&self.inner.counters.deliveries, 1);
        }
        r
    }

    fn push(&self, slot: &Slot, piece: Piece<'_>) -> SendOutcome {
        self.push_frames(slot, piece, 1)
    }

    /// Queues `piece`, which holds `frames` frames (dropped or queued
    /// together).
    pub(crate) fn push_frames(&self, slot: &Slot, piece: Piece<'_>, frames: u64) -> SendOutcome {
        let cfg = &self.inner.config;
        slot.push(
            piece,
            frames,
            cfg.max_queue_bytes,
            cfg.policy,
            &self.inner.counters,
        )
    }

    /// Queues `out` for `slot`; whether it was queued.
    pub(crate) fn offer(&self, slot: &Slot, out: &mut Outgoing) -> bool {
        let piece = out.piece(slot.deflate, &self.inner.counters);
        self.push(slot, piece) == SendOutcome::Queued
    }

    /// Sends `msg` to every member of `room` on every instance, except
    /// `except`; the frame is encoded once. Returns how many local members
    /// it was queued for (batched: how many the room had, less `except`,
    /// when it was called). Waits only when the bus publisher is full, or
    /// (batched) the hub's queue is over [`BATCH_MAX_PENDING`](super::BATCH_MAX_PENDING):
    /// backpressure on the sender, never on the recipients.
    ///
    /// In a room with history this is [`publish`](Self::publish) (stored
    /// first, then delivered by the room's feed), and returns the room's
    /// local size when the message was stored.
    pub async fn broadcast(
        &self,
        room: &str,
        msg: &Message,
        except: Option<ConnId>,
    ) -> Result<usize, HubError> {
        if self.has_history(room) {
            self.publish(room, msg, except).await?;
            let rooms = self.rooms();
            return Ok(rooms.get(room).map_or(0, |r| {
                let me = except.is_some_and(|e| r.has(e));
                r.len() - usize::from(me)
            }));
        }
        self.broadcast_unstored(room, msg, except).await
    }

    /// [`broadcast`](Self::broadcast) without the history: delivered now
    /// to the live members, and to the other instances (presence
    /// announcements in rooms with history go this way: they are not
    /// stored).
    pub(crate) async fn broadcast_unstored(
        &self,
        room: &str,
        msg: &Message,
        except: Option<ConnId>,
    ) -> Result<usize, HubError> {
        let channel = rooms::room_channel(room)?;
        let mut out = Outgoing::new(msg);
        bump(&self.inner.counters.messages_out, 1);
        let frame = out.frame.clone();
        let n = match &self.inner.batch {
            None => self.deliver_room(room, &mut out, except),
            Some(b) => {
                let n = self.rooms().get(room).map_or(0, |r| {
                    let me = except.is_some_and(|e| r.members.contains_key(&e));
                    r.members.len() - usize::from(me)
                });
                let target = batch::Target::Room(room.into());
                b.enqueue(self, batch::Job::new(target, except, out)).await;
                n
            }
        };
        if let Some(c) = self.inner.cluster.get() {
            c.publish(channel, &self.inner.instance, except, frame)
                .await;
        }
        Ok(n)
    }

    /// Sends `msg` to every connection on every instance, except `except`.
    pub async fn broadcast_all(&self, msg: &Message, except: Option<ConnId>) -> usize {
        let mut out = Outgoing::new(msg);
        bump(&self.inner.counters.messages_out, 1);
        let frame = out.frame.clone();
        let n = match &self.inner.batch {
            None => self.deliver_all(&mut out, except),
            Some(b) => {
                let n = {
                    let conns = self.conns();
                    let me = except.is_some_and(|e| conns.contains_key(&e));
                    conns.len() - usize::from(me)
                };
                let target = batch::Target::All;
                b.enqueue(self, batch::Job::new(target, except, out)).await;
                n
            }
        };
        if let Some(c) = self.inner.cluster.get() {
            let ch = cluster::all_channel();
            c.publish(ch, &self.inner.instance, except, frame).await;
        }
        n
    }

    /// Queues `out` for the local members of `room`.
    pub(crate) fn deliver_room(
        &self,
        room: &str,
        out: &mut Outgoing,
        except: Option<ConnId>,
    ) -> usize {
        let rooms = self.rooms();
        let Some(r) = rooms.get(room) else {
            return 0;
        };
        let mut n = 0;
        for (id, slot) in &r.members {
            if Some(*id) != except && self.offer(slot, out) {
                n += 1;
            }
        }
        drop(rooms);
        // Once per broadcast, not once per member: shared counters are
        // contended.
        bump(&self.inner.counters.deliveries, n as u64);
        n
    }

    /// Queues `out` for every local connection.
    pub(crate) fn deliver_all(&self, out: &mut Outgoing, except: Option<ConnId>) -> usize {
        let conns = self.conns();
        let mut n = 0;
        for (id, slot) in conns.iter() {
            if Some(*id) != except && self.offer(slot, out) {
                n += 1;
            }
        }
        drop(conns);
        // Once per broadcast, not once per member: shared counters are
        // contended.
        bump(&self.inner.counters.deliveries, n as u64);
        n
    }
}
