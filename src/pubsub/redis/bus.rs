//! [`RedisBus`]: local subscribers fed from one pub/sub connection per
//! instance, with gaps healed from the stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};

use super::envelope;
use super::keys::pubsub_channel;
use super::store::{bounded, Core};
use crate::pubsub::bus::Fanout;
use crate::pubsub::{
    Bus, ChannelName, Delivery, GapReason, Position, PubSubError, Publication, Since, Subscription,
};

/// Counters of a [`RedisBus`], since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisBusStats {
    /// Pub/sub connections re-established after a loss.
    pub reconnects: u64,
    /// Publications delivered from the stream (`since`) rather than from
    /// pub/sub: the ones a gap, a reconnection or the periodic sync found
    /// missing.
    pub healed: u64,
    /// [`Delivery::Reset`]s sent (one per channel per lost history).
    pub resets: u64,
    /// Publications delivered in all (live and healed).
    pub delivered: u64,
    /// Pub/sub messages dropped because their position was already
    /// delivered.
    pub duplicates: u64,
}

#[derive(Default)]
struct Stats {
    reconnects: AtomicU64,
    healed: AtomicU64,
    resets: AtomicU64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

enum Cmd {
    /// A local subscriber wants the channel: subscribe the instance if it
    /// is not yet, then answer.
    Ensure(ChannelName, oneshot::Sender<Result<(), PubSubError>>),
    /// The last local subscriber of the channel left.
    Release(ChannelName),
    Close,
}

struct Inner {
    fanout: Arc<Fanout>,
    cmds: mpsc::UnboundedSender<Cmd>,
    stats: Arc<Stats>,
    closed: AtomicBool,
    op_timeout: Duration,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.cmds.send(Cmd::Close);
    }
}

/// The fan-out of one instance: its local subscribers, fed from one
/// dedicated pub/sub connection.
///
/// - The first local subscriber of a channel makes the instance
///   `SUBSCRIBE` (and read the channel's top position, where its
///   deliveries start); the last one leaving makes it `UNSUBSCRIBE`.
/// - Per channel the listener keeps the last position it delivered. A
///   message with the next offset of the same epoch is delivered; an
///   older one is a duplicate and dropped; anything else (a gap, another
///   epoch) is healed: the missing publications are read with
///   [`Store::since`](crate::pubsub::Store::since) and delivered in order.
///   When they cannot be (the history was lost, trimmed, or too far
///   behind), every local subscriber gets [`Delivery::Reset`] and
///   deliveries continue from the channel's new position (after a lost
///   history: from the first publication of the new epoch).
/// - When the pub/sub connection drops it reconnects with backoff
///   (`reconnect_min` doubling to `reconnect_max`), subscribes every
///   channel again and heals each from its last position.
/// - Every `sync_interval` it pings the connection (a dead one is
///   replaced) and heals every channel whose top is past the last
///   delivered position.
///
/// **Bound:** a publication stored while its message was lost (connection
/// dropped, noticed or not) is delivered at most about `sync_interval` +
/// `op_timeout` after it was stored, as long as Redis answers and the
/// channel's history still holds it (`history_size`, `history_ttl`);
/// otherwise the subscribers get [`Delivery::Reset`]. Nothing is
/// delivered twice or out of order.
///
/// Cheap to clone; dropping the last clone closes it, like
/// [`Bus::close`].
#[derive(Clone)]
pub struct RedisBus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl RedisBus {
    /// Opens the pub/sub connection and spawns the listener.
    pub(super) async fn start(client: redis::Client, core: Arc<Core>) -> Result<Self, PubSubError> {
        let op_timeout = core.config.op_timeout;
        let (sink, stream) = bounded(op_timeout, "connect", client.get_async_pubsub())
            .await?
            .split();
        let (tx, rx) = mpsc::unbounded_channel();
        let on_last_tx = tx.clone();
        let fanout = Fanout::new(
            core.config.subscriber_buffer,
            Arc::new(move |ch: &ChannelName| {
                let _ = on_last_tx.send(Cmd::Release(ch.clone()));
            }),
        );
        let stats = Arc::new(Stats::default());
        let listener = Listener {
            backoff: core.config.reconnect_min,
            client,
            core,
            fanout: fanout.clone(),
            stats: stats.clone(),
            chans: HashMap::new(),
            conn: Some((sink, stream)),
            next_attempt: Instant::now(),
        };
        tokio::spawn(listener.run(rx));
        Ok(RedisBus {
            inner: Arc::new(Inner {
                fanout,
                cmds: tx,
                stats,
                closed: AtomicBool::new(false),
                op_timeout,
            }),
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> RedisBusStats {
        let s = &self.inner.stats;
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RedisBusStats {
            reconnects: g(&s.reconnects),
            healed: g(&s.healed),
            resets: g(&s.resets),
            delivered: g(&s.delivered),
            duplicates: g(&s.duplicates),
        }
    }
}

impl Bus for RedisBus {
    /// Does nothing (but fail once closed): the store's append script has
    /// already published the publication, in the same atomic step that
    /// stored it.
    async fn publish(&self, _publication: &Publication) -> Result<(), PubSubError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(PubSubError::Closed);
        }
        Ok(())
    }

    /// Returns once the instance is subscribed to the channel: the
    /// subscription receives every publication after the channel's top
    /// position at that moment. Fails with [`PubSubError::Backend`] when
    /// the pub/sub connection is down or Redis does not answer within
    /// `op_timeout` (twice: the `SUBSCRIBE`, then the top).
    async fn subscribe(&self, channel: &ChannelName) -> Result<Subscription, PubSubError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(PubSubError::Closed);
        }
        let (sub, _first) = self.inner.fanout.subscribe(channel);
        let (tx, rx) = oneshot::channel();
        self.inner
            .cmds
            .send(Cmd::Ensure(channel.clone(), tx))
            .map_err(|_| PubSubError::Closed)?;
        // The listener bounds each of its steps by op_timeout; this only
        // guards against it being busy healing for long.
        match tokio::time::timeout(self.inner.op_timeout * 4, rx).await {
            Ok(Ok(Ok(()))) => Ok(sub),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(PubSubError::Closed),
            Err(_) => Err(PubSubError::Backend("subscribe: listener busy".into())),
        }
    }

    /// Stops the listener and ends every subscription.
    async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let _ = self.inner.cmds.send(Cmd::Close);
    }
}

struct Listener {
    client: redis::Client,
    core: Arc<Core>,
    fanout: Arc<Fanout>,
    stats: Arc<Stats>,
    /// Subscribed channels → the last position delivered.
    chans: HashMap<ChannelName, Position>,
    conn: Option<(PubSubSink, PubSubStream)>,
    /// The delay before the next reconnection attempt.
    backoff: Duration,
    next_attempt: Instant,
}

enum Event {
    Cmd(Option<Cmd>),
    Msg(Option<redis::Msg>),
    Reconnect,
    Sync,
}

impl Listener {
    fn op(&self) -> Duration {
        self.core.config.op_timeout
    }

    fn name(&self, ch: &ChannelName) -> String {
        pubsub_channel(&self.core.config.prefix, ch)
    }

    async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<Cmd>) {
        let mut sync = tokio::time::interval(self.core.config.sync_interval);
        sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        sync.tick().await; // the first tick is immediate
        loop {
            let ev = match self.conn.as_mut() {
                Some((_, stream)) => tokio::select! {
                    c = cmds.recv() => Event::Cmd(c),
                    m = stream.next() => Event::Msg(m),
                    _ = sync.tick() => Event::Sync,
                },
                None => tokio::select! {
                    c = cmds.recv() => Event::Cmd(c),
                    _ = sleep_until(self.next_attempt) => Event::Reconnect,
                    _ = sync.tick() => Event::Sync,
                },
            };
            match ev {
                Event::Cmd(None) | Event::Cmd(Some(Cmd::Close)) => break,
                Event::Cmd(Some(Cmd::Ensure(ch, reply))) => {
                    let r = self.ensure(ch).await;
                    let _ = reply.send(r);
                }
                Event::Cmd(Some(Cmd::Release(ch))) => self.release(ch).await,
                Event::Msg(Some(m)) => self.on_message(m.get_payload_bytes()).await,
                Event::Msg(None) => self.lost(),
                Event::Reconnect => self.reconnect().await,
                Event::Sync => self.sync().await,
            }
        }
        self.fanout.close();
    }

    /// The connection is gone: schedule a reconnection.
    fn lost(&mut self) {
        self.conn = None;
        self.next_attempt = Instant::now() + self.backoff;
    }

    async fn ensure(&mut self, ch: ChannelName) -> Result<(), PubSubError> {
        if self.chans.contains_key(&ch) {
            return Ok(());
        }
        let name = self.name(&ch);
        let op = self.op();
        let Some((sink, _)) = self.conn.as_mut() else {
            return Err(PubSubError::Backend(
                "subscribe: the pub/sub connection is down".into(),
            ));
        };
        if let Err(e) = bounded(op, "subscribe", sink.subscribe(&name)).await {
            self.lost();
            return Err(e);
        }
        // After SUBSCRIBE: whatever is published from here on arrives on
        // the connection, so starting at the top misses nothing.
        match self.core.since(&ch, None, 0).await {
            Ok(Since::Publications { top, .. }) | Ok(Since::CannotCatchUp { top, .. }) => {
                self.chans.insert(ch, top);
                Ok(())
            }
            Err(e) => {
                if let Some((sink, _)) = self.conn.as_mut() {
                    let _ = bounded(op, "unsubscribe", sink.unsubscribe(&name)).await;
                }
                Err(e)
            }
        }
    }

    async fn release(&mut self, ch: ChannelName) {
        // A new subscriber may have come between the last one leaving and
        // this command: then the channel stays.
        if self.fanout.has(&ch) || self.chans.remove(&ch).is_none() {
            return;
        }
        let name = self.name(&ch);
        let op = self.op();
        if let Some((sink, _)) = self.conn.as_mut() {
            if bounded(op, "unsubscribe", sink.unsubscribe(&name))
                .await
                .is_err()
            {
                self.lost();
            }
        }
    }

    fn deliver(&self, p: Publication) {
        let ch = p.channel.clone();
        self.fanout.deliver(&ch, Delivery::Publication(Arc::new(p)));
        bump(&self.stats.delivered, 1);
    }

    fn reset(&mut self, ch: &ChannelName, reason: GapReason) {
        self.fanout.deliver(ch, Delivery::Reset { reason });
        bump(&self.stats.resets, 1);
    }

    async fn on_message(&mut self, payload: &[u8]) {
        let Ok(p) = envelope::decode(payload) else {
            return; // not ours; the sync heals whatever it should have been
        };
        let Some(last) = self.chans.get(&p.channel).copied() else {
            return; // unsubscribed meanwhile
        };
        if p.position.epoch == last.epoch {
            if p.position.offset == last.offset.wrapping_add(1) {
                self.chans.insert(p.channel.clone(), p.position);
                self.deliver(p);
                return;
            }
            if p.position.offset <= last.offset {
                bump(&self.stats.duplicates, 1);
                return;
            }
        }
        // A gap, or another epoch (a new history, or a stale message from
        // the old one): the stream says which.
        self.heal(&p.channel).await;
    }

    /// Delivers what the channel's history has after its last position,
    /// or resets its subscribers when the history cannot say; `false`
    /// when Redis did not answer.
    async fn heal(&mut self, ch: &ChannelName) -> bool {
        // At most twice: a lost history resets, then heals the new one.
        for _ in 0..2 {
            let Some(last) = self.chans.get(ch).copied() else {
                return true;
            };
            let limit = self.core.config.history_size.max(1);
            match self.core.since(ch, Some(last), limit).await {
                Ok(Since::Publications { publications, .. }) => {
                    if let Some(p) = publications.last() {
                        self.chans.insert(ch.clone(), p.position);
                    }
                    bump(&self.stats.healed, publications.len() as u64);
                    for p in publications {
                        self.deliver(p);
                    }
                    return true;
                }
                Ok(Since::CannotCatchUp {
                    reason: GapReason::EpochChanged,
                    top,
                }) => {
                    self.reset(ch, GapReason::EpochChanged);
                    // Everything of the new history is new to them.
                    self.chans.insert(ch.clone(), Position::new(top.epoch, 0));
                }
                Ok(Since::CannotCatchUp { reason, top }) => {
                    self.reset(ch, reason);
                    self.chans.insert(ch.clone(), top);
                    return true;
                }
                // Redis unreachable: the next message or sync tries again.
                Err(_) => return false,
            }
        }
        true
    }

    /// Heals every channel; stops at the first that Redis does not answer
    /// for (the next sync tries them all again), so an unreachable Redis
    /// costs one `op_timeout` per sync, not one per channel.
    async fn heal_all(&mut self) {
        let chans: Vec<ChannelName> = self.chans.keys().cloned().collect();
        for ch in chans {
            if !self.heal(&ch).await {
                return;
            }
        }
    }

    async fn reconnect(&mut self) {
        let op = self.op();
        let names: Vec<String> = self.chans.keys().map(|c| self.name(c)).collect();
        let attempt = async {
            let (mut sink, stream) = bounded(op, "connect", self.client.get_async_pubsub())
                .await?
                .split();
            if !names.is_empty() {
                bounded(op, "subscribe", sink.subscribe(&names)).await?;
            }
            Ok::<_, PubSubError>((sink, stream))
        };
        match attempt.await {
            Ok(conn) => {
                self.conn = Some(conn);
                self.backoff = self.core.config.reconnect_min;
                bump(&self.stats.reconnects, 1);
                // What was published while the connection was down.
                self.heal_all().await;
            }
            Err(_) => {
                self.backoff = (self.backoff * 2).min(self.core.config.reconnect_max);
                self.next_attempt = Instant::now() + self.backoff;
            }
        }
    }

    async fn sync(&mut self) {
        let op = self.op();
        if let Some((sink, _)) = self.conn.as_mut() {
            let ping = bounded(op, "ping", sink.ping::<redis::Value>()).await;
            if ping.is_err() {
                self.lost();
            }
        }
        // Also while disconnected: the stream still has every publication.
        self.heal_all().await;
    }
}
