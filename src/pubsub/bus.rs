//! Fan-out: [`Bus`], [`Subscription`], [`Delivery`], and the local fan-out
//! both buses share.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use super::channel::ChannelName;
use super::error::PubSubError;
use super::publication::Publication;
use super::store::GapReason;

/// What a [`Subscription`] yields, in position order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// The next publication of the channel (shared by every local
    /// subscriber: nothing is copied per subscriber).
    Publication(Arc<Publication>),
    /// This subscriber fell behind its local buffer and missed `missed`
    /// publications; resume from its last position with
    /// [`Store::since`](super::Store::since).
    Lagged {
        /// How many it missed.
        missed: u64,
    },
    /// Publications were lost for every subscriber of this instance and
    /// cannot be recovered from the history (e.g. it was flushed): the
    /// subscriber must start over, and its application be told.
    Reset {
        /// Why.
        reason: GapReason,
    },
}

/// A local subscriber's stream of [`Delivery`]s. Dropping the last
/// subscription of a channel on an instance unsubscribes the instance.
pub struct Subscription {
    rx: broadcast::Receiver<Delivery>,
    _guard: Guard,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("channel", &self._guard.channel)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The next delivery; `None` once the bus is closed. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Delivery> {
        match self.rx.recv().await {
            Ok(d) => Some(d),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Delivery::Lagged { missed: n }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next delivery if one is ready.
    pub fn try_recv(&mut self) -> Option<Delivery> {
        match self.rx.try_recv() {
            Ok(d) => Some(d),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Delivery::Lagged { missed: n }),
            Err(_) => None,
        }
    }

    /// The channel.
    pub fn channel(&self) -> &ChannelName {
        &self._guard.channel
    }
}

/// Carries publications to the local subscribers of every instance.
///
/// Implementations: [`MemoryBus`](super::MemoryBus) (one process), and the
/// Redis bus (feature `redis`).
pub trait Bus: Send + Sync + 'static {
    /// Delivers `publication` to the subscribers of its channel on every
    /// instance. (The Redis store's append already published it in the same
    /// atomic step; the Redis bus then does nothing here.)
    ///
    /// Deliveries follow the order of `publish` calls. With an in-process
    /// store, two tasks publishing to one channel at once must serialize
    /// their `Store::append` + `Bus::publish` pairs per channel, or a later
    /// position can be delivered before an earlier one.
    fn publish(
        &self,
        publication: &Publication,
    ) -> impl Future<Output = Result<(), PubSubError>> + Send;

    /// A local subscription to `channel`. The first local subscriber of a
    /// channel subscribes this instance; the last one leaving unsubscribes
    /// it (an instance receives only channels it has subscribers for).
    fn subscribe(
        &self,
        channel: &ChannelName,
    ) -> impl Future<Output = Result<Subscription, PubSubError>> + Send;

    /// Ends every subscription (their `recv` returns `None`).
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// Called with a channel when its last local subscriber leaves.
pub(crate) type OnLast = Arc<dyn Fn(&ChannelName) + Send + Sync>;

struct Entry {
    tx: broadcast::Sender<Delivery>,
    subs: usize,
}

/// The local half of every bus: channel → the instance's subscribers,
/// counted, with a hook when the last one leaves.
pub(crate) struct Fanout {
    channels: Mutex<HashMap<ChannelName, Entry>>,
    /// Per-subscriber buffer, in deliveries.
    capacity: usize,
    on_last: OnLast,
}

struct Guard {
    fanout: Arc<Fanout>,
    channel: ChannelName,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let last = {
            let mut map = self.fanout.lock();
            match map.get_mut(&self.channel) {
                Some(e) if e.subs <= 1 => {
                    map.remove(&self.channel);
                    true
                }
                Some(e) => {
                    e.subs -= 1;
                    false
                }
                None => false,
            }
        };
        if last {
            (self.fanout.on_last)(&self.channel);
        }
    }
}

impl Fanout {
    /// A fan-out with `capacity` deliveries of buffer per subscriber.
    pub(crate) fn new(capacity: usize, on_last: OnLast) -> Arc<Self> {
        Arc::new(Fanout {
            channels: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            on_last,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ChannelName, Entry>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a local subscriber; `true` when it is the channel's first.
    pub(crate) fn subscribe(self: &Arc<Self>, channel: &ChannelName) -> (Subscription, bool) {
        let mut map = self.lock();
        let (rx, first) = match map.get_mut(channel) {
            Some(e) => {
                e.subs += 1;
                (e.tx.subscribe(), false)
            }
            None => {
                let (tx, rx) = broadcast::channel(self.capacity);
                map.insert(channel.clone(), Entry { tx, subs: 1 });
                (rx, true)
            }
        };
        drop(map);
        let sub = Subscription {
            rx,
            _guard: Guard {
                fanout: self.clone(),
                channel: channel.clone(),
            },
        };
        (sub, first)
    }

    /// Delivers to the channel's local subscribers; how many there were.
    pub(crate) fn deliver(&self, channel: &ChannelName, d: Delivery) -> usize {
        // Sent outside the map's lock: waking many receivers must not hold
        // up publishes and subscriptions on other channels.
        let tx = match self.lock().get(channel) {
            Some(e) => e.tx.clone(),
            None => return 0,
        };
        tx.send(d).unwrap_or(0)
    }

    /// The channels with local subscribers.
    pub(crate) fn channels(&self) -> Vec<ChannelName> {
        self.lock().keys().cloned().collect()
    }

    /// Whether `channel` has local subscribers.
    pub(crate) fn has(&self, channel: &ChannelName) -> bool {
        self.lock().contains_key(channel)
    }

    /// Ends every subscription.
    pub(crate) fn close(&self) {
        self.lock().clear();
    }
}
