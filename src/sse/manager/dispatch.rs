//! One task per channel with local subscribers: takes the bus's deliveries
//! in order, encodes each publication once and queues the shared bytes to
//! every subscriber it routes to, without ever waiting on one of them.
//! Deliveries the bus lost (it lagged, or positions jump) are fetched from
//! the store; what the store cannot give becomes a `reset` event.

use std::sync::Arc;

use super::encode::{self, ManagedEvent, ResetReason};
use super::registry::{Registry, Room};
use super::stats::Counters;
use super::subscriber::{CloseReason, Pushed};
use crate::pubsub::{Delivery, Position, Publication, Since, Store, Subscription};

pub(crate) struct Dispatcher<St> {
    pub(crate) room: Arc<Room>,
    pub(crate) sub: Subscription,
    pub(crate) store: Arc<St>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) replay_limit: usize,
    /// The last position delivered (or the top when the subscription
    /// started): older or equal positions are duplicates.
    pub(crate) last: Option<Position>,
}

impl<St: Store> Dispatcher<St> {
    pub(crate) async fn run(mut self) {
        loop {
            if self.room.is_dead() {
                return;
            }
            let delivery = tokio::select! {
                biased;
                () = self.room.stop.notified() => continue,
                d = self.sub.recv() => d,
            };
            match delivery {
                Some(Delivery::Publication(p)) => self.on_publication(p).await,
                Some(Delivery::Lagged { .. }) => self.heal().await,
                Some(Delivery::Reset { reason }) => {
                    let top = self.top().await;
                    self.last = top;
                    self.reset_all(ResetReason::Gap(reason), top);
                }
                None => {
                    // The bus is closed: nothing more will come. No one
                    // may join this room again (it has no dispatcher).
                    self.registry.retire(&self.room);
                    for s in self.room.subscribers().values() {
                        s.close(CloseReason::Shutdown);
                    }
                    return;
                }
            }
        }
    }

    async fn on_publication(&mut self, p: Arc<Publication>) {
        if let Some(last) = self.last {
            if p.position.epoch != last.epoch {
                // A new history: everyone on the old one is told, then
                // the new one is delivered from its start.
                let start = Position::new(p.position.epoch, 0);
                self.reset_all(
                    ResetReason::Gap(crate::pubsub::GapReason::EpochChanged),
                    Some(start),
                );
                self.last = Some(start);
                self.heal().await;
                return;
            }
            {
                if p.position.offset <= last.offset {
                    return; // a duplicate (healed already, or redelivered)
                }
                if p.position.offset > last.offset + 1 {
                    // Positions jumped: fetch the hole first (it includes p).
                    self.heal().await;
                    return;
                }
            }
        }
        self.deliver(p);
    }

    fn deliver(&mut self, p: Arc<Publication>) {
        self.last = Some(p.position);
        let ev = Arc::new(encode::publication(p));
        self.fan_out(&ev);
    }

    fn fan_out(&self, ev: &Arc<ManagedEvent>) {
        let (mut queued, mut dropped, mut slow) = (0, 0, 0);
        for s in self.room.subscribers().values() {
            if !s.wants(ev) {
                continue;
            }
            match s.push(ev) {
                Pushed::Queued => queued += 1,
                Pushed::Skipped => {}
                Pushed::Dropped => dropped += 1,
                Pushed::Closed => slow += 1,
                Pushed::Gone => {}
            }
        }
        let c = &self.counters;
        Counters::add(&c.deliveries, queued);
        Counters::add(&c.drops, dropped);
        Counters::add(&c.slow_disconnects, slow);
    }

    /// Fetches from the store what came after `last` and delivers it; a
    /// reset to everyone when the store cannot.
    async fn heal(&mut self) {
        let channel = self.room.channel.clone();
        let Some(last) = self.last else {
            let top = self.top().await;
            self.last = top;
            self.reset_all(ResetReason::Lost, top);
            return;
        };
        match self
            .store
            .since(&channel, Some(last), self.replay_limit)
            .await
        {
            Ok(Since::Publications { publications, top }) => {
                Counters::add(&self.counters.healed, publications.len() as u64);
                for p in publications {
                    if p.position.epoch == last.epoch && p.position.offset > last.offset {
                        self.deliver(Arc::new(p));
                    }
                }
                if self.last.is_none_or(|l| l.offset < top.offset) {
                    self.last = Some(top);
                }
            }
            Ok(Since::CannotCatchUp { top, reason }) => {
                self.last = Some(top);
                let why = match reason {
                    crate::pubsub::GapReason::EpochChanged => ResetReason::Gap(reason),
                    _ => ResetReason::Lost,
                };
                self.reset_all(why, Some(top));
            }
            Err(_) => {
                self.last = None;
                self.reset_all(ResetReason::Lost, None);
            }
        }
    }

    async fn top(&self) -> Option<Position> {
        match self.store.since(&self.room.channel, None, 0).await {
            Ok(Since::Publications { top, .. }) | Ok(Since::CannotCatchUp { top, .. }) => Some(top),
            Err(_) => None,
        }
    }

    fn reset_all(&self, reason: ResetReason, top: Option<Position>) {
        let ev = Arc::new(encode::reset(reason, top));
        let n = self.room.subscribers().len() as u64;
        Counters::add(&self.counters.resets_live, n);
        self.fan_out(&ev);
    }
}
