//! [`RedisStore`]: the history in Redis, appended by one Lua script.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;

use super::envelope;
use super::keys::Keys;
use super::RedisConfig;
use crate::pubsub::store::missing_after;
use crate::pubsub::{
    ChannelName, GapReason, Position, PubSubError, Publication, PublishRequest, Since, Store,
};

/// What the store and the bus's listener share: the command connection,
/// the scripts and the settings.
pub(super) struct Core {
    pub(super) conn: ConnectionManager,
    pub(super) config: RedisConfig,
    append: Script,
    since: Script,
}

pub(super) fn backend(e: impl std::fmt::Display) -> PubSubError {
    PubSubError::Backend(e.to_string())
}

/// Runs `fut` for at most `limit`.
pub(super) async fn bounded<T, E: std::fmt::Display>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, PubSubError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(backend),
        Err(_) => Err(PubSubError::Backend(format!(
            "{what}: no answer from Redis within {limit:?}"
        ))),
    }
}

/// A fresh epoch for a history that is created now: random, non-zero.
fn new_epoch() -> String {
    let e: u64 = rand::random();
    format!("{:x}", e.max(1))
}

fn ms(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

impl Core {
    pub(super) fn new(conn: ConnectionManager, config: RedisConfig) -> Core {
        Core {
            conn,
            config,
            append: Script::new(include_str!("scripts/append.lua")),
            since: Script::new(include_str!("scripts/since.lua")),
        }
    }

    pub(super) async fn append(&self, req: PublishRequest) -> Result<Publication, PubSubError> {
        req.validate()?;
        let keys = Keys::new(&self.config.prefix, &req.channel);
        let idem = req.idempotency_key.clone();
        // Stamped now; the script fills in the position.
        let draft = req.into_publication(Position::new(0, 0));
        let body = envelope::encode_body(&draft).map_err(backend)?;
        let c = &self.config;
        let mut inv = self.append.prepare_invoke();
        inv.key(&keys.meta)
            .key(&keys.stream)
            .key(keys.idem(idem.as_deref().unwrap_or("")))
            .arg(new_epoch())
            .arg(&body[..])
            .arg(c.history_size.max(1))
            .arg(ms(c.history_ttl))
            .arg(ms(c.idempotency_ttl))
            .arg(&keys.pubsub)
            .arg(if idem.is_some() { "1" } else { "0" });
        let mut conn = self.conn.clone();
        let (kind, value): (String, Vec<u8>) =
            bounded(c.op_timeout, "publish", inv.invoke_async(&mut conn)).await?;
        match kind.as_str() {
            "dup" => envelope::decode(&value).map_err(backend),
            "new" => {
                let pos = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|s| Position::parse(s).ok())
                    .ok_or_else(|| backend("append script returned a bad position"))?;
                let mut p = draft;
                p.position = pos;
                Ok(p)
            }
            other => Err(backend(format!("append script returned {other:?}"))),
        }
    }

    pub(super) async fn since(
        &self,
        channel: &ChannelName,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Since, PubSubError> {
        let keys = Keys::new(&self.config.prefix, channel);
        let (epoch_arg, offset) = match after {
            Some(a) => (format!("{:x}", a.epoch), a.offset),
            None => (String::new(), 0),
        };
        let mut inv = self.since.prepare_invoke();
        inv.key(&keys.meta)
            .key(&keys.stream)
            .arg(new_epoch())
            .arg(ms(self.config.history_ttl))
            .arg(epoch_arg)
            .arg(offset)
            .arg(limit)
            .arg(format!("0-{}", offset.saturating_add(1)));
        // A read: safe to repeat once when the connection turns out to
        // have dropped (the manager has reconnected by then), still
        // within one op_timeout.
        let run = async {
            let mut conn = self.conn.clone();
            match inv.invoke_async(&mut conn).await {
                Err(e) if e.is_connection_dropped() || e.is_io_error() => {
                    let mut conn = self.conn.clone();
                    inv.invoke_async(&mut conn).await
                }
                r => r,
            }
        };
        let reply: Vec<Vec<u8>> = bounded(self.config.op_timeout, "history", run).await?;
        let bad = || backend("history script returned a bad answer");
        let text = |i: usize| reply.get(i).and_then(|b| std::str::from_utf8(b).ok());
        let epoch = text(0)
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or_else(bad)?;
        let top_offset = text(1)
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(bad)?;
        let top = Position::new(epoch, top_offset);
        let Some(after) = after else {
            return Ok(Since::Publications {
                publications: Vec::new(),
                top,
            });
        };
        let gap = |reason| Ok(Since::CannotCatchUp { reason, top });
        let missing = match missing_after(after, top, limit) {
            Ok(m) => m,
            Err(reason) => return gap(reason),
        };
        let entries = &reply[2..];
        if entries.len() as u64 != missing {
            return gap(GapReason::Evicted);
        }
        let mut publications = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            // An entry this version cannot read (another version's
            // envelope, corruption) is a hole in the history: say so,
            // instead of failing this channel's replay forever.
            let Ok(p) = envelope::decode(e) else {
                return gap(GapReason::Evicted);
            };
            if p.position != Position::new(epoch, after.offset + 1 + i as u64) {
                return gap(GapReason::Evicted);
            }
            publications.push(p);
        }
        Ok(Since::Publications { publications, top })
    }
}

/// The history of every channel in Redis: a capped stream per channel and
/// a meta hash with its epoch and last offset, appended by one atomic Lua
/// script that also publishes (see the [module docs](super)).
///
/// Cheap to clone; the clones share one connection. Made by
/// [`connect`](super::connect) together with its [`RedisBus`](super::RedisBus).
#[derive(Clone)]
pub struct RedisStore {
    pub(super) core: Arc<Core>,
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.core.config.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    pub(super) fn new(core: Arc<Core>) -> RedisStore {
        RedisStore {
            core,
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    fn check(&self) -> Result<(), PubSubError> {
        if self.closed.load(Ordering::Acquire) {
            Err(PubSubError::Closed)
        } else {
            Ok(())
        }
    }
}

impl Store for RedisStore {
    /// Runs the append script (idempotency check, epoch, offset, stream,
    /// PUBLISH, TTLs) within `op_timeout`. An error is
    /// [`PubSubError::Backend`]: the publication may or may not have been
    /// stored (a timeout can hide a success), so a caller that retries
    /// should set an idempotency key; it is never acknowledged unstored.
    async fn append(&self, req: PublishRequest) -> Result<Publication, PubSubError> {
        self.check()?;
        self.core.append(req).await
    }

    /// Runs the history script within `op_timeout` (once more when the
    /// connection had dropped: it only reads, and creates a missing
    /// epoch), then applies the
    /// all-or-nothing rules of [`Store::since`]. A channel with no meta
    /// (never published, flushed, expired) gets a new epoch here, so a
    /// position from before is [`GapReason::EpochChanged`].
    async fn since(
        &self,
        channel: &ChannelName,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Since, PubSubError> {
        self.check()?;
        self.core.since(channel, after, limit).await
    }

    /// Later calls on this store (and its clones) return
    /// [`PubSubError::Closed`]; the bus keeps working.
    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}
