//! One task per channel with local subscribers: takes the channel's
//! publications in order from a [`Follower`] (which heals what the bus
//! lost from the store, or says it cannot), encodes each once and queues
//! the shared bytes to every subscriber it routes to, without ever waiting
//! on one of them.

use std::sync::Arc;

use super::encode::{self, ManagedEvent, ResetReason};
use super::registry::{Registry, Room};
use super::stats::Counters;
use super::subscriber::{CloseReason, Pushed};
use crate::pubsub::{Followed, Follower, Position, Publication, Store};

pub(crate) struct Dispatcher<St> {
    pub(crate) room: Arc<Room>,
    pub(crate) follower: Follower<St>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) registry: Arc<Registry>,
}

impl<St: Store> Dispatcher<St> {
    pub(crate) async fn run(mut self) {
        let mut healed = 0;
        loop {
            if self.room.is_dead() {
                return;
            }
            // `Follower::next` is cancel-safe: a stop that turns out not to
            // be the end loses nothing.
            let followed = tokio::select! {
                biased;
                () = self.room.stop.notified() => continue,
                f = self.follower.next() => f,
            };
            let now = self.follower.healed();
            Counters::add(&self.counters.healed, now - healed);
            healed = now;
            match followed {
                Followed::Publication(p) => self.deliver(p),
                Followed::Reset { reason, top } => self.reset_all(reason, top),
                _ => {
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

    fn deliver(&mut self, p: Arc<Publication>) {
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

    fn reset_all(&self, reason: ResetReason, top: Option<Position>) {
        let ev = Arc::new(encode::reset(reason, top));
        let n = self.room.subscribers().len() as u64;
        Counters::add(&self.counters.resets_live, n);
        self.fan_out(&ev);
    }
}
