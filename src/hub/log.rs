//! The hub's seam to the pub/sub layer: a [`Store`] + [`Bus`] pair behind
//! one object-safe trait, so that a [`Hub`](super::Hub) is not generic over
//! its backend. Used by the instance-to-instance traffic (`cluster.rs`)
//! and by the rooms with history (`feed.rs`, `resume.rs`).

use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use crate::pubsub::{
    Bus, ChannelName, Followed, Follower, Position, PubSubError, Publication, PublishRequest,
    Since, Store, Subscription,
};

pub(crate) type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A channel's ordered publications ([`Follower`]), object-safe.
pub(crate) trait Follow: Send {
    fn next(&mut self) -> BoxFut<'_, Followed>;
    fn try_next(&mut self) -> Option<Followed>;
    fn position(&self) -> Option<Position>;
}

impl<St: Store> Follow for Follower<St> {
    fn next(&mut self) -> BoxFut<'_, Followed> {
        Box::pin(Follower::next(self))
    }
    fn try_next(&mut self) -> Option<Followed> {
        Follower::try_next(self)
    }
    fn position(&self) -> Option<Position> {
        Follower::position(self)
    }
}

/// A Store + Bus pair, object-safe.
pub(crate) trait Log: Send + Sync {
    /// Stores `data` on `channel` and publishes it: the publication, with
    /// its position. Appends to one channel from this instance are
    /// serialized with their publish, so an in-process bus delivers them in
    /// position order.
    fn append(
        &self,
        channel: ChannelName,
        data: Bytes,
    ) -> BoxFut<'_, Result<Publication, PubSubError>>;
    fn since(
        &self,
        channel: ChannelName,
        after: Option<Position>,
        limit: usize,
    ) -> BoxFut<'_, Result<Since, PubSubError>>;
    fn subscribe(&self, channel: ChannelName) -> BoxFut<'_, Result<Subscription, PubSubError>>;
    fn follow(
        &self,
        channel: ChannelName,
        replay_limit: usize,
    ) -> BoxFut<'_, Result<Box<dyn Follow>, PubSubError>>;
}

/// Stripes of the per-channel append lock.
const STRIPES: usize = 64;

pub(crate) struct Pair<S, B> {
    store: Arc<S>,
    bus: Arc<B>,
    stripes: Vec<tokio::sync::Mutex<()>>,
    hasher: std::collections::hash_map::RandomState,
}

impl<S: Store, B: Bus> Pair<S, B> {
    pub(crate) fn new(store: Arc<S>, bus: Arc<B>) -> Self {
        Pair {
            store,
            bus,
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            hasher: Default::default(),
        }
    }
}

impl<S: Store, B: Bus> Log for Pair<S, B> {
    fn append(
        &self,
        channel: ChannelName,
        data: Bytes,
    ) -> BoxFut<'_, Result<Publication, PubSubError>> {
        Box::pin(async move {
            let stripe = self.hasher.hash_one(&channel) as usize % STRIPES;
            let _turn = self.stripes[stripe].lock().await;
            let p = self
                .store
                .append(PublishRequest::new(channel, data))
                .await?;
            self.bus.publish(&p).await?;
            Ok(p)
        })
    }
    fn since(
        &self,
        channel: ChannelName,
        after: Option<Position>,
        limit: usize,
    ) -> BoxFut<'_, Result<Since, PubSubError>> {
        Box::pin(async move { self.store.since(&channel, after, limit).await })
    }
    fn subscribe(&self, channel: ChannelName) -> BoxFut<'_, Result<Subscription, PubSubError>> {
        Box::pin(async move { self.bus.subscribe(&channel).await })
    }
    fn follow(
        &self,
        channel: ChannelName,
        replay_limit: usize,
    ) -> BoxFut<'_, Result<Box<dyn Follow>, PubSubError>> {
        Box::pin(async move {
            let f = Follower::start(self.store.clone(), &*self.bus, channel, replay_limit).await?;
            Ok(Box::new(f) as Box<dyn Follow>)
        })
    }
}
