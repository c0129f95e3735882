//! [`Follower`]: one channel's live publications in position order, each
//! once, with what the bus lost fetched from the store: the channel half of
//! the replay/live hand-off that the SSE manager and the hub share (the
//! subscriber half is [`Cursor`](super::Cursor)).

use std::collections::VecDeque;
use std::sync::Arc;

use super::bus::{Bus, Delivery, Subscription};
use super::channel::ChannelName;
use super::error::PubSubError;
use super::position::Position;
use super::publication::Publication;
use super::reset::ResetReason;
use super::store::{GapReason, Since, Store};

/// What [`Follower::next`] yields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Followed {
    /// The next publication: its offset is one past the previous one's, in
    /// the same epoch.
    Publication(Arc<Publication>),
    /// The publications after the last one yielded cannot be delivered:
    /// every subscriber starts over from `top` (`None` when the store could
    /// not be read), and the next publication follows `top`.
    Reset {
        /// Why.
        reason: ResetReason,
        /// The channel's position to start over from.
        top: Option<Position>,
    },
    /// The bus is closed: nothing more will come.
    Closed,
}

/// One channel's publications in order, each exactly once, from a bus
/// subscription and the store behind it.
///
/// [`start`](Self::start) reads the store's top, subscribes, and reads the
/// top again: what was published between the first read and the
/// subscription is fetched from the store right away, so it is neither
/// lost nor held back until the next publication. From there on:
///
/// - a publication with the next offset is yielded;
/// - an older one is a duplicate (redelivered, or already fetched) and is
///   dropped;
/// - a jump in offsets, or [`Delivery::Lagged`], is healed: the missing
///   publications are read with [`Store::since`] and yielded in order;
/// - a publication of another epoch, [`Delivery::Reset`], or a hole the
///   store cannot fill yields [`Followed::Reset`] with the position to
///   start over from: the start of the new history after an epoch change
///   (whose publications then all follow), else the store's top.
///
/// [`next`](Self::next) is cancel-safe: a heal interrupted by a drop
/// (inside `tokio::select!`) is taken up again by the next call, so
/// nothing received is lost.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use rtwire::pubsub::{Bus, ChannelName, Followed, Follower, MemoryBus, MemoryStore, PublishRequest, Store};
/// let (store, bus) = (Arc::new(MemoryStore::default()), Arc::new(MemoryBus::new()));
/// let ch = ChannelName::new("news").unwrap();
/// let mut f = Follower::start(store.clone(), &*bus, ch.clone(), 100).await.unwrap();
/// let p = store.append(PublishRequest::new(ch, "hi")).await.unwrap();
/// bus.publish(&p).await.unwrap();
/// bus.publish(&p).await.unwrap(); // a duplicate: dropped
/// match f.next().await {
///     Followed::Publication(got) => assert_eq!(got.position, p.position),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(f.position(), Some(p.position));
/// # });
/// ```
pub struct Follower<St> {
    sub: Subscription,
    store: Arc<St>,
    channel: ChannelName,
    replay_limit: usize,
    /// The last position yielded (or the top at the start): older or equal
    /// positions are duplicates. `None`: unknown (the store failed).
    last: Option<Position>,
    /// Healed publications not yet yielded, in order.
    ready: VecDeque<Followed>,
    /// A heal is owed (set before it awaits the store, so a cancelled heal
    /// is resumed by the next call).
    owe_heal: bool,
    /// Publications fetched from the store so far.
    healed: u64,
    /// A reset taken off the bus whose top is not read yet (kept across a
    /// cancelled `next`).
    pending_reset: Option<GapReason>,
}

impl<St> std::fmt::Debug for Follower<St> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("channel", &self.channel)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl<St: Store> Follower<St> {
    /// Follows `channel`: the first publication yielded is the one after
    /// the store's top when this is called (see the type's docs).
    /// `replay_limit` bounds one heal (a hole larger than that is a reset,
    /// `OverLimit`).
    pub async fn start<B: Bus>(
        store: Arc<St>,
        bus: &B,
        channel: ChannelName,
        replay_limit: usize,
    ) -> Result<Self, PubSubError> {
        let before = store.since(&channel, None, 0).await?.top();
        let sub = bus.subscribe(&channel).await?;
        let after = store.since(&channel, None, 0).await?.top();
        let mut f = Follower {
            sub,
            store,
            channel,
            replay_limit,
            last: Some(before),
            ready: VecDeque::new(),
            owe_heal: false,
            healed: 0,
            pending_reset: None,
        };
        if after != before {
            // Published (or a new history begun) while subscribing.
            f.owe();
        }
        Ok(f)
    }

    /// The channel.
    pub fn channel(&self) -> &ChannelName {
        &self.channel
    }

    /// The last position yielded (the top at the start, or the `top` of
    /// the last reset); `None` after a reset the store could not place.
    pub fn position(&self) -> Option<Position> {
        self.last
    }

    /// How many publications were fetched from the store (rather than
    /// taken from the bus) so far.
    pub fn healed(&self) -> u64 {
        self.healed
    }

    /// The next publication or reset, waiting for one. Cancel-safe.
    pub async fn next(&mut self) -> Followed {
        loop {
            if let Some(f) = self.ready.pop_front() {
                return f;
            }
            if let Some(reason) = self.pending_reset {
                let top = self.top().await;
                self.pending_reset = None;
                // After a lost history the bus goes on with the new one
                // from its start (the Redis bus does), and so does the
                // follower: what the bus delivered of it before the top
                // was read is fetched, nothing of it is skipped.
                let start = match (reason, top) {
                    (GapReason::EpochChanged, Some(t))
                        if self.last.is_some_and(|l| l.epoch == t.epoch) =>
                    {
                        // Already on the new history (a heal got there
                        // first, and said so): nothing more to tell.
                        continue;
                    }
                    (GapReason::EpochChanged, Some(t)) => {
                        self.owe();
                        Some(Position::new(t.epoch, 0))
                    }
                    _ => top,
                };
                self.last = start;
                return Followed::Reset {
                    reason: ResetReason::Gap(reason),
                    top: start,
                };
            }
            if self.owe_heal {
                self.heal().await;
                continue;
            }
            let Some(d) = self.sub.recv().await else {
                return Followed::Closed;
            };
            match d {
                Delivery::Publication(p) => {
                    if let Some(f) = self.on_publication(p) {
                        return f;
                    }
                }
                Delivery::Lagged { .. } => self.owe(),
                Delivery::Reset { reason } => self.pending_reset = Some(reason),
            }
        }
    }

    /// The next publication or reset if one is ready now, without waiting
    /// (`None`: nothing ready, or what comes next needs the store, which
    /// [`next`](Self::next) reads). For a consumer that takes everything
    /// ready in one pass.
    pub fn try_next(&mut self) -> Option<Followed> {
        loop {
            if let Some(f) = self.ready.pop_front() {
                return Some(f);
            }
            if self.owe_heal || self.pending_reset.is_some() {
                return None;
            }
            match self.sub.try_recv()? {
                Delivery::Publication(p) => {
                    if let Some(f) = self.on_publication(p) {
                        return Some(f);
                    }
                }
                Delivery::Lagged { .. } => self.owe(),
                Delivery::Reset { reason } => self.pending_reset = Some(reason),
            }
        }
    }

    fn owe(&mut self) {
        self.owe_heal = true;
    }

    fn on_publication(&mut self, p: Arc<Publication>) -> Option<Followed> {
        let Some(last) = self.last else {
            // No position since the store failed (everyone was told, with
            // a reset): start over from this one.
            self.last = Some(p.position);
            return Some(Followed::Publication(p));
        };
        if p.position.epoch != last.epoch {
            // A new history: everyone on the old one is told, then the new
            // one is delivered from its start.
            let start = Position::new(p.position.epoch, 0);
            self.last = Some(start);
            self.owe();
            return Some(Followed::Reset {
                reason: ResetReason::Gap(GapReason::EpochChanged),
                top: Some(start),
            });
        }
        if p.position.offset <= last.offset {
            return None; // a duplicate (healed already, or redelivered)
        }
        if p.position.offset > last.offset + 1 {
            // Positions jumped: fetch the hole (it includes p).
            self.owe();
            return None;
        }
        self.last = Some(p.position);
        Some(Followed::Publication(p))
    }

    /// Fetches what came after `last` into `ready`; a reset when the store
    /// cannot give it.
    async fn heal(&mut self) {
        let Some(last) = self.last else {
            let top = self.top().await;
            self.owe_heal = false;
            self.last = top;
            self.ready.push_back(Followed::Reset {
                reason: ResetReason::Lost,
                top,
            });
            return;
        };
        let r = self
            .store
            .since(&self.channel, Some(last), self.replay_limit)
            .await;
        self.owe_heal = false;
        match r {
            Ok(Since::Publications { publications, top }) => {
                self.healed += publications.len() as u64;
                for p in publications {
                    if p.position.epoch == last.epoch && p.position.offset > last.offset {
                        self.last = Some(p.position);
                        self.ready.push_back(Followed::Publication(Arc::new(p)));
                    }
                }
                if self
                    .last
                    .is_none_or(|l| l.epoch == top.epoch && l.offset < top.offset)
                {
                    self.last = Some(top);
                }
            }
            Ok(Since::CannotCatchUp {
                top,
                reason: GapReason::EpochChanged,
            }) => {
                // A new history: from its start, as after a publication or
                // a bus reset of another epoch (one start point for all
                // three).
                let start = Position::new(top.epoch, 0);
                self.last = Some(start);
                self.ready.push_back(Followed::Reset {
                    reason: ResetReason::Gap(GapReason::EpochChanged),
                    top: Some(start),
                });
                if top.offset > 0 {
                    self.owe();
                }
            }
            Ok(Since::CannotCatchUp { top, .. }) => {
                self.last = Some(top);
                self.ready.push_back(Followed::Reset {
                    reason: ResetReason::Lost,
                    top: Some(top),
                });
            }
            Err(_) => {
                self.last = None;
                self.ready.push_back(Followed::Reset {
                    reason: ResetReason::Lost,
                    top: None,
                });
            }
        }
    }

    async fn top(&self) -> Option<Position> {
        self.store
            .since(&self.channel, None, 0)
            .await
            .ok()
            .map(|s| s.top())
    }
}
