//! Many instances: broadcasts go out on the pub/sub bus and come in from
//! it, one channel per room (`hub.room.<room>`) plus `hub.all`.
//!
//! ## Wire format (the publication's data)
//!
//! `[1][instance length: u8][instance][except: u64 BE, 0 = none][frame]`,
//! where `frame` is the server frame exactly as the sending instance
//! encoded it, so a receiving instance queues a slice of it for its
//! members without encoding again. An instance skips its own messages
//! (it delivered them locally already), so nothing is delivered twice;
//! `except` names a connection of the sending instance, so it only ever
//! matters there.
//!
//! One publisher task per hub appends in the order broadcasts were made,
//! so the messages of one sender keep their order on every instance.

use std::sync::{Arc, Weak};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::mpsc;

use super::conn::ConnId;
use super::log::Log;
use super::outgoing::Outgoing;
use super::stats::bump;
use super::{Hub, Inner};
use crate::pubsub::{ChannelName, Delivery, PubSubError, Subscription};
use crate::ws::{FrameHeader, OpCode};

/// Publications waiting for the publisher task.
const PUBLISH_QUEUE: usize = 4096;

pub(crate) struct Cluster {
    backend: Arc<dyn Log>,
    tx: mpsc::Sender<(ChannelName, Bytes)>,
}

pub(crate) fn all_channel() -> ChannelName {
    ChannelName::new("hub.all").expect("a valid channel name")
}

impl Cluster {
    pub(crate) async fn start(hub: &Hub, backend: Arc<dyn Log>) -> Result<Cluster, PubSubError> {
        let (tx, mut rx) = mpsc::channel::<(ChannelName, Bytes)>(PUBLISH_QUEUE);
        let b = backend.clone();
        let weak = Arc::downgrade(&hub.inner);
        tokio::spawn(async move {
            while let Some((ch, data)) = rx.recv().await {
                let r = b.append(ch, data).await;
                let Some(inner) = weak.upgrade() else { break };
                match r {
                    Ok(_) => bump(&inner.counters.bus_published, 1),
                    Err(_) => bump(&inner.counters.bus_errors, 1),
                }
            }
        });
        let sub = backend.subscribe(all_channel()).await?;
        tokio::spawn(pump(Arc::downgrade(&hub.inner), None, sub));
        Ok(Cluster { backend, tx })
    }

    /// Queues `frame` for the other instances (waits while the publisher
    /// is full).
    pub(crate) async fn publish(
        &self,
        channel: ChannelName,
        instance: &str,
        except: Option<ConnId>,
        frame: Bytes,
    ) {
        let inst = &instance.as_bytes()[..instance.len().min(255)];
        let mut data = BytesMut::with_capacity(10 + inst.len() + frame.len());
        data.put_u8(1);
        data.put_u8(inst.len() as u8);
        data.put_slice(inst);
        data.put_u64(except.map_or(0, |c| c.0));
        data.put_slice(&frame);
        let _ = self.tx.send((channel, data.freeze())).await;
    }

    /// Subscribes this instance to `room`'s channel (its first local
    /// member joined).
    pub(crate) async fn watch_room(&self, hub: &Hub, room: &str, channel: ChannelName) {
        match self.backend.subscribe(channel).await {
            Ok(sub) => {
                let task = tokio::spawn(pump(Arc::downgrade(&hub.inner), Some(room.into()), sub));
                hub.set_pump(room, task.abort_handle());
            }
            Err(_) => bump(&hub.inner.counters.bus_errors, 1),
        }
    }
}

/// Splits a bus message into the sending instance and the frame; `None`
/// when it is not a complete single data frame in our format.
fn decode(data: &Bytes) -> Option<(&[u8], Outgoing)> {
    let (&v, rest) = data.split_first()?;
    let (&n, rest) = rest.split_first()?;
    if v != 1 || rest.len() < n as usize + 8 {
        return None;
    }
    let inst = &rest[..n as usize];
    let start = 2 + n as usize + 8;
    let frame = data.slice(start..);
    let (h, hl) = FrameHeader::parse(&frame).ok()??;
    let ok = h.fin
        && h.mask.is_none()
        && h.rsv == 0
        && matches!(h.opcode, OpCode::Text | OpCode::Binary)
        && (hl as u64).checked_add(h.payload_len) == Some(frame.len() as u64);
    ok.then(|| (inst, Outgoing::from_frame(frame, &h, hl)))
}

/// Delivers what comes in on one subscription to the local members of
/// `room` (`None`: every connection) until the room or the hub is gone.
async fn pump(hub: Weak<Inner>, room: Option<Arc<str>>, mut sub: Subscription) {
    while let Some(d) = sub.recv().await {
        let Some(inner) = hub.upgrade() else { return };
        let hub = Hub { inner };
        match d {
            Delivery::Publication(p) => {
                let Some((inst, mut out)) = decode(&p.data) else {
                    bump(&hub.inner.counters.bus_errors, 1);
                    continue;
                };
                if inst == hub.inner.instance.as_bytes() {
                    continue;
                }
                let c = &hub.inner.counters;
                bump(&c.bus_received, 1);
                bump(&c.messages_out, 1);
                match &room {
                    Some(r) => hub.deliver_room(r, &mut out, None),
                    None => hub.deliver_all(&mut out, None),
                };
            }
            Delivery::Lagged { missed } => {
                if let Some(r) = &room {
                    hub.missed_room(r, missed);
                }
            }
            _ => {}
        }
    }
}
