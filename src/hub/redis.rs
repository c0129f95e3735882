//! Presence shared by many instances through Redis, under leases (feature
//! `redis`).
//!
//! ## Keys (prefix `P` = `<RedisConfig::prefix>:hub`)
//!
//! | key | type | what |
//! |---|---|---|
//! | `P:lease:<instance>` | string | the instance is alive; `PX` [`PresenceLease::ttl`], refreshed every [`PresenceLease::heartbeat`] |
//! | `P:inst` | set | instances that have presence entries |
//! | `P:rooms:<instance>` | set | rooms the instance has entries in |
//! | `P:pres:<room>` | hash | user → JSON `{instance: [connections, joined_at_ms, last_seen_ms]}` |
//!
//! Each script below runs atomically, so two instances never both
//! announce one join or one leave.
//!
//! - **join**: adds the instance's entry; the user is new to the room when
//!   it had no entry on any instance.
//! - **leave**: removes it; the user is gone when no entry is left.
//! - **reap** (run by every survivor's heartbeat for each instance in
//!   `P:inst` whose lease is gone; only the first finds anything): removes
//!   the dead instance's entries and returns the users left with none, for
//!   whom the survivor announces the leave to the room on every instance.
//! - **query**: the room's entries of *other* live instances (an entry of
//!   an instance whose lease expired is never listed, even before it is
//!   reaped).
//!
//! **Bound:** an instance that dies (kill -9) is reaped at most
//! `ttl + heartbeat` after its last refresh (plus one Redis round trip and
//! the bus delivery). An instance that was merely stalled past its lease
//! finds its lease gone at its next heartbeat and joins its users again
//! (announcing the joins), so a reap is never permanent for a live one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;

use super::presence::{PresenceInfo, PresenceKind};
use super::stats::bump;
use super::time::now_ms;
use super::{Hub, Inner};
use crate::pubsub::redis::RedisConfig;
use crate::pubsub::PubSubError;

/// The lease of an instance's presence. Default: `ttl` 3 s, `heartbeat`
/// 1 s, so a dead instance's users leave within 4 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PresenceLease {
    /// How long the instance's presence outlives its last heartbeat.
    pub ttl: Duration,
    /// How often the lease is refreshed and dead instances are looked for.
    pub heartbeat: Duration,
}

impl Default for PresenceLease {
    fn default() -> Self {
        PresenceLease {
            ttl: Duration::from_secs(3),
            heartbeat: Duration::from_secs(1),
        }
    }
}

impl PresenceLease {
    /// A lease of `ttl`, refreshed every `heartbeat` (kept under `ttl`).
    pub fn new(ttl: Duration, heartbeat: Duration) -> Self {
        let ttl = ttl.max(Duration::from_millis(10));
        PresenceLease {
            ttl,
            heartbeat: heartbeat.min(ttl / 2).max(Duration::from_millis(1)),
        }
    }

    /// The longest a dead instance's users stay present: `ttl + heartbeat`.
    pub fn bound(&self) -> Duration {
        self.ttl + self.heartbeat
    }
}

const JOIN: &str = r#"
local p, inst, room, user = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local h = p .. ':pres:' .. room
local v = redis.call('HGET', h, user)
local t = {}
if v then t = cjson.decode(v) end
local new = next(t) == nil
t[inst] = {tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])}
redis.call('HSET', h, user, cjson.encode(t))
redis.call('SADD', p .. ':rooms:' .. inst, room)
redis.call('SADD', p .. ':inst', inst)
if new then return 1 else return 0 end
"#;

const LEAVE: &str = r#"
local p, inst, room, user = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local h = p .. ':pres:' .. room
local gone = 0
local v = redis.call('HGET', h, user)
if v then
  local t = cjson.decode(v)
  t[inst] = nil
  if next(t) == nil then
    redis.call('HDEL', h, user)
    gone = 1
  else
    redis.call('HSET', h, user, cjson.encode(t))
  end
end
if ARGV[5] == '1' then redis.call('SREM', p .. ':rooms:' .. inst, room) end
return gone
"#;

const REAP: &str = r#"
local p, dead = ARGV[1], ARGV[2]
if redis.call('EXISTS', p .. ':lease:' .. dead) == 1 then return {} end
local out = {}
for _, room in ipairs(redis.call('SMEMBERS', p .. ':rooms:' .. dead)) do
  local h = p .. ':pres:' .. room
  local all = redis.call('HGETALL', h)
  for i = 1, #all, 2 do
    local user, t = all[i], cjson.decode(all[i + 1])
    if t[dead] ~= nil then
      t[dead] = nil
      if next(t) == nil then
        redis.call('HDEL', h, user)
        table.insert(out, room)
        table.insert(out, user)
      else
        redis.call('HSET', h, user, cjson.encode(t))
      end
    end
  end
end
redis.call('DEL', p .. ':rooms:' .. dead)
redis.call('SREM', p .. ':inst', dead)
return out
"#;

const QUERY: &str = r#"
local p, me, room = ARGV[1], ARGV[2], ARGV[3]
local all = redis.call('HGETALL', p .. ':pres:' .. room)
local alive = {}
local out = {}
for i = 1, #all, 2 do
  local user, t = all[i], cjson.decode(all[i + 1])
  for inst, e in pairs(t) do
    if inst ~= me then
      if alive[inst] == nil then
        alive[inst] = redis.call('EXISTS', p .. ':lease:' .. inst) == 1
      end
      if alive[inst] then
        table.insert(out, user)
        table.insert(out, string.format('%.0f', e[1]))
        table.insert(out, string.format('%.0f', e[2]))
        table.insert(out, string.format('%.0f', e[3]))
      end
    end
  end
end
return out
"#;

/// One instance's share of presence in Redis, and its lease. Made by
/// [`Hub::with_redis`](super::Hub::with_redis).
pub struct RedisPresence {
    conn: ConnectionManager,
    prefix: String,
    instance: Arc<str>,
    lease: PresenceLease,
    op_timeout: Duration,
    hub: Weak<Inner>,
    scripts: [Script; 4],
    released: AtomicBool,
}

impl std::fmt::Debug for RedisPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPresence")
            .field("instance", &self.instance)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

fn backend(e: impl std::fmt::Display) -> PubSubError {
    PubSubError::Backend(e.to_string())
}

impl RedisPresence {
    pub(crate) async fn start(
        hub: &Hub,
        redis: &RedisConfig,
        lease: PresenceLease,
    ) -> Result<Arc<RedisPresence>, PubSubError> {
        let client = redis::Client::open(redis.url.as_str()).map_err(backend)?;
        let conn = tokio::time::timeout(redis.op_timeout, ConnectionManager::new(client))
            .await
            .map_err(|_| backend("connect: no answer from Redis"))?
            .map_err(backend)?;
        let p = Arc::new(RedisPresence {
            conn,
            prefix: format!("{}:hub", redis.prefix),
            instance: hub.inner.instance.clone(),
            lease,
            op_timeout: redis.op_timeout,
            hub: Arc::downgrade(&hub.inner),
            scripts: [JOIN, LEAVE, REAP, QUERY].map(Script::new),
            released: AtomicBool::new(false),
        });
        p.refresh().await?;
        let weak = Arc::downgrade(&p);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(lease.heartbeat);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(p) = weak.upgrade() else { return };
                if p.hub.upgrade().is_none() || p.released.load(Ordering::Acquire) {
                    return;
                }
                p.heartbeat().await;
            }
        });
        Ok(p)
    }

    fn lease_key(&self, inst: &str) -> String {
        format!("{}:lease:{inst}", self.prefix)
    }

    fn error(&self) {
        if let Some(h) = self.hub.upgrade() {
            bump(&h.counters.bus_errors, 1);
        }
    }

    async fn run<T: redis::FromRedisValue>(&self, i: usize, args: &[&str]) -> Option<T> {
        let mut inv = self.scripts[i].prepare_invoke();
        inv.arg(&self.prefix);
        for a in args {
            inv.arg(*a);
        }
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.op_timeout, inv.invoke_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Some(v),
            _ => {
                self.error();
                None
            }
        }
    }

    /// Sets the lease; whether it was still there.
    async fn refresh(&self) -> Result<bool, PubSubError> {
        let mut conn = self.conn.clone();
        let ms = self.lease.ttl.as_millis() as u64;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.lease_key(&self.instance))
            .arg("1")
            .arg("PX")
            .arg(ms)
            .arg("GET");
        let fut = cmd.query_async::<Option<String>>(&mut conn);
        match tokio::time::timeout(self.op_timeout, fut).await {
            Ok(Ok(old)) => Ok(old.is_some()),
            Ok(Err(e)) => Err(backend(e)),
            Err(_) => Err(backend("lease: no answer from Redis")),
        }
    }

    async fn heartbeat(&self) {
        match self.refresh().await {
            Ok(true) => {}
            Ok(false) => self.reassert().await,
            Err(_) => self.error(),
        }
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(format!("{}:inst", self.prefix));
        let fut = cmd.query_async::<Vec<String>>(&mut conn);
        let Ok(Ok(instances)) = tokio::time::timeout(self.op_timeout, fut).await else {
            self.error();
            return;
        };
        for inst in instances.iter().filter(|i| **i != *self.instance) {
            let mut conn = self.conn.clone();
            let mut cmd = redis::cmd("EXISTS");
            cmd.arg(self.lease_key(inst));
            let fut = cmd.query_async::<bool>(&mut conn);
            if let Ok(Ok(false)) = tokio::time::timeout(self.op_timeout, fut).await {
                self.reap(inst).await;
            }
        }
    }

    /// Reaps a dead instance; announces the leaves it leaves behind.
    async fn reap(&self, inst: &str) {
        let Some(pairs) = self.run::<Vec<String>>(2, &[inst]).await else {
            return;
        };
        let Some(inner) = self.hub.upgrade() else {
            return;
        };
        let hub = Hub { inner };
        for pair in pairs.chunks_exact(2) {
            hub.announce(PresenceKind::Leave, &pair[0], &pair[1], None)
                .await;
        }
    }

    /// The lease had expired (this instance stalled): join every local
    /// presence again.
    async fn reassert(&self) {
        let Some(inner) = self.hub.upgrade() else {
            return;
        };
        let hub = Hub { inner };
        let local: Vec<(String, String, u32, u64)> = hub
            .rooms()
            .iter()
            .flat_map(|(room, r)| {
                r.users
                    .iter()
                    .map(|(u, p)| (room.to_string(), u.to_string(), p.conns, p.joined_at_ms))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (room, user, conns, joined) in local {
            if self.join(&room, &user, conns, joined).await {
                hub.announce(PresenceKind::Join, &room, &user, None).await;
            }
        }
    }

    pub(crate) async fn join(&self, room: &str, user: &str, conns: u32, joined_at_ms: u64) -> bool {
        let (c, j, n) = (
            conns.to_string(),
            joined_at_ms.to_string(),
            now_ms().to_string(),
        );
        let args = [&*self.instance, room, user, &c, &j, &n];
        // When Redis cannot be reached, announce: a missed join is worse
        // than a repeated one.
        self.run::<i64>(0, &args).await.is_none_or(|v| v == 1)
    }

    pub(crate) async fn leave(&self, room: &str, user: &str, room_empty: bool) -> bool {
        let flag = if room_empty { "1" } else { "0" };
        let args = [&*self.instance, room, user, flag];
        self.run::<i64>(1, &args).await.is_none_or(|v| v == 1)
    }

    pub(crate) async fn remote(&self, room: &str) -> Vec<PresenceInfo> {
        let Some(flat) = self.run::<Vec<String>>(3, &[&*self.instance, room]).await else {
            return Vec::new();
        };
        flat.chunks_exact(4)
            .map(|e| PresenceInfo {
                user: e[0].clone(),
                connections: e[1].parse().unwrap_or(0),
                joined_at_ms: e[2].parse().unwrap_or(0),
                last_seen_ms: e[3].parse().unwrap_or(0),
            })
            .collect()
    }

    /// Gives up the lease now and reaps this instance, announcing its
    /// users' leaves.
    pub(crate) async fn release(&self) {
        self.released.store(true, Ordering::Release);
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.lease_key(&self.instance));
        let fut = cmd.query_async::<i64>(&mut conn);
        let _ = tokio::time::timeout(self.op_timeout, fut).await;
        self.reap(&self.instance.clone()).await;
    }
}
