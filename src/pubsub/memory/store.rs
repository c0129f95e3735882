//! [`MemoryStore`]: a bounded history per channel, in this process.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use rand::Rng as _;

use crate::pubsub::channel::ChannelName;
use crate::pubsub::error::PubSubError;
use crate::pubsub::position::Position;
use crate::pubsub::publication::{Publication, PublishRequest};
use crate::pubsub::store::{missing_after, GapReason, Since, Store};

/// The bounds of a [`MemoryStore`].
///
/// ```
/// use rtwire::pubsub::MemoryConfig;
/// let cfg = MemoryConfig::default()
///     .max_publications(100)
///     .max_bytes(64 * 1024)
///     .max_channels(1_000);
/// assert_eq!(cfg.max_publications, 100);
/// assert_eq!(cfg.max_total_bytes, 256 * 1024 * 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// Publications kept per channel. Default 1000. At least 1 is kept
    /// whatever is set (0 counts as 1).
    pub max_publications: usize,
    /// Bytes kept per channel: the payload plus the tenant, subject, event
    /// type and idempotency key of each kept publication (the fixed
    /// overhead per publication, about 200 bytes, is bounded by
    /// `max_publications`). Default 1 MiB. A publication bigger than this
    /// gets its position and is delivered, but is not kept: a `since` that
    /// needs it answers [`GapReason::Evicted`].
    pub max_bytes: usize,
    /// Channels with a history. Default 10,000. A new channel beyond it
    /// drops the least recently used one.
    pub max_channels: usize,
    /// Bytes kept over all channels (same measure as `max_bytes`). Default
    /// 256 MiB. Beyond it, least recently used channels other than the one
    /// being appended to are dropped. Without it the worst case would be
    /// `max_channels × max_bytes` (10 GiB with the defaults).
    pub max_total_bytes: usize,
    /// How long a channel's history outlives its last use (append or
    /// `since`), as the Redis store's `history_ttl`. Default `None`
    /// (kept until evicted by the bounds above). An expired channel is
    /// dropped when it is next used, and starts a new epoch.
    pub ttl: Option<std::time::Duration>,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_publications: 1000,
            max_bytes: 1024 * 1024,
            max_channels: 10_000,
            max_total_bytes: 256 * 1024 * 1024,
            ttl: None,
        }
    }
}

impl MemoryConfig {
    /// Sets [`max_publications`](MemoryConfig::max_publications).
    pub fn max_publications(mut self, n: usize) -> Self {
        self.max_publications = n;
        self
    }

    /// Sets [`max_bytes`](MemoryConfig::max_bytes).
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }

    /// Sets [`max_channels`](MemoryConfig::max_channels).
    pub fn max_channels(mut self, n: usize) -> Self {
        self.max_channels = n;
        self
    }

    /// Sets [`max_total_bytes`](MemoryConfig::max_total_bytes).
    pub fn max_total_bytes(mut self, n: usize) -> Self {
        self.max_total_bytes = n;
        self
    }

    /// Sets [`ttl`](MemoryConfig::ttl).
    pub fn ttl(mut self, t: std::time::Duration) -> Self {
        self.ttl = Some(t);
        self
    }
}

/// The bytes a kept publication counts for (see
/// [`MemoryConfig::max_bytes`]).
fn cost(p: &Publication, key: Option<&str>) -> usize {
    let len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    p.data.len() + len(&p.tenant) + len(&p.subject) + len(&p.event_type) + key.map_or(0, str::len)
}

struct Kept {
    publication: Publication,
    key: Option<String>,
    cost: usize,
}

/// One channel's history.
struct History {
    epoch: u64,
    /// The newest offset given out (0: none yet).
    top: u64,
    /// Oldest first; the last one, if any, is at `top`.
    ring: VecDeque<Kept>,
    bytes: usize,
    /// Idempotency key → offset, for the publications in `ring`.
    keys: HashMap<String, u64>,
    /// The LRU tick of the last use.
    used: u64,
    /// When it was last used (for the TTL).
    used_at: tokio::time::Instant,
}

impl History {
    fn new(epoch: u64, used: u64) -> Self {
        History {
            epoch,
            top: 0,
            ring: VecDeque::new(),
            bytes: 0,
            keys: HashMap::new(),
            used,
            used_at: tokio::time::Instant::now(),
        }
    }

    fn top(&self) -> Position {
        Position::new(self.epoch, self.top)
    }

    /// The offset of the oldest kept publication (`top + 1` when none).
    fn first_kept(&self) -> u64 {
        self.top + 1 - self.ring.len() as u64
    }

    fn get(&self, offset: u64) -> Option<&Publication> {
        let i = offset.checked_sub(self.first_kept())?;
        self.ring
            .get(usize::try_from(i).ok()?)
            .map(|k| &k.publication)
    }

    fn pop_oldest(&mut self) -> usize {
        let Some(k) = self.ring.pop_front() else {
            return 0;
        };
        if let Some(key) = k.key {
            if self.keys.get(&key) == Some(&k.publication.position.offset) {
                self.keys.remove(&key);
            }
        }
        self.bytes -= k.cost;
        k.cost
    }
}

struct Inner {
    channels: HashMap<ChannelName, History>,
    /// LRU order: tick of last use → channel.
    lru: BTreeMap<u64, ChannelName>,
    tick: u64,
    /// Bytes kept over all channels.
    bytes: usize,
    /// Histories created so far (feeds the epoch mix).
    created: u64,
    closed: bool,
}

/// The embedded [`Store`]: a bounded ring of publications per channel,
/// in this process.
///
/// # Bounds
///
/// Everything the store holds is bounded ([`MemoryConfig`]):
///
/// - per channel, by count ([`MemoryConfig::max_publications`]) and by
///   bytes ([`MemoryConfig::max_bytes`]): the oldest publications go first;
///   a [`Store::since`] that needs one of them answers
///   [`GapReason::Evicted`];
/// - in channels ([`MemoryConfig::max_channels`]) and in bytes over all
///   channels ([`MemoryConfig::max_total_bytes`]): the least recently used
///   channel (by last `append` or `since`) is dropped whole. When it is used
///   again it starts a **new epoch**, so positions from its old history are
///   answered [`GapReason::EpochChanged`], never matched against new
///   offsets.
///
/// # Epochs
///
/// Each store draws a random secret when it is created (from the OS-seeded
/// CSPRNG); every channel history it creates gets the next value of a
/// bijective mix of that secret and a counter. Two histories created by the
/// same store therefore never share an epoch, and a restarted process (a
/// new store) starts every channel in an epoch unrelated to the old ones.
/// Epochs are never 0.
///
/// # Unknown channels
///
/// A channel this store does not know (never used, or dropped as least
/// recently used) is created empty, in a new epoch, by `append` **and** by
/// `since`, so the `top` that `since` answers is one later publications
/// follow. `since(Some(p))` on such a channel answers
/// [`GapReason::EpochChanged`]: whatever history `p` was from is gone.
/// Reading a channel counts as using it. The channel is dropped (with
/// its history) whatever its subscribers: a subscriber resuming from a
/// position of the dropped history is told [`GapReason::EpochChanged`],
/// never given wrong publications.
///
/// # Expiry
///
/// With [`MemoryConfig::ttl`], a channel unused (no `append`, no `since`)
/// for longer than the TTL is dropped when it is next used, and starts a
/// new epoch, as a Redis history that expired.
///
/// # Idempotency
///
/// An idempotency key is remembered as long as its publication is kept:
/// a retry while it is kept returns it; a retry after it was evicted (or of
/// a publication too big to keep) is stored as a new publication.
///
/// # Locking
///
/// One lock guards all channels; it is never held across an `.await` (no
/// method awaits anything).
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use rtwire::pubsub::{ChannelName, MemoryStore, PublishRequest, Since, Store};
/// let store = MemoryStore::default();
/// let ch = ChannelName::new("news").unwrap();
/// let first = store.append(PublishRequest::new(ch.clone(), "a")).await.unwrap();
/// let second = store.append(PublishRequest::new(ch.clone(), "b")).await.unwrap();
/// assert_eq!((first.position.offset, second.position.offset), (1, 2));
/// match store.since(&ch, Some(first.position), 100).await.unwrap() {
///     Since::Publications { publications, top } => {
///         assert_eq!(publications, [second.clone()]);
///         assert_eq!(top, second.position);
///     }
///     other => panic!("{other:?}"),
/// }
/// # });
/// ```
pub struct MemoryStore {
    config: MemoryConfig,
    secret: u64,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(MemoryConfig::default())
    }
}

/// A bijection on `u64` that scatters its input (the splitmix64
/// finaliser).
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl MemoryStore {
    /// A store with these bounds and a fresh random secret for its epochs.
    pub fn new(config: MemoryConfig) -> Self {
        MemoryStore {
            config,
            secret: rand::rng().next_u64(),
            inner: Mutex::new(Inner {
                channels: HashMap::new(),
                lru: BTreeMap::new(),
                tick: 0,
                bytes: 0,
                created: 0,
                closed: false,
            }),
        }
    }

    /// The bounds in force.
    pub fn config(&self) -> &MemoryConfig {
        &self.config
    }

    /// How many channels have a history now.
    pub fn channel_count(&self) -> usize {
        self.lock().channels.len()
    }

    /// Bytes kept over all channels (see [`MemoryConfig::max_bytes`] for
    /// what counts).
    pub fn total_bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_epoch(&self, inner: &mut Inner) -> u64 {
        loop {
            inner.created = inner.created.wrapping_add(1);
            let e = mix(self.secret.wrapping_add(inner.created));
            if e != 0 {
                return e;
            }
        }
    }

    /// Marks `channel` used now, creating its history if needed (dropping
    /// the least recently used channel when over `max_channels`).
    fn touch<'a>(&self, inner: &'a mut Inner, channel: &ChannelName) -> &'a mut History {
        inner.tick += 1;
        let tick = inner.tick;
        let now = tokio::time::Instant::now();
        if let (Some(ttl), Some(h)) = (self.config.ttl, inner.channels.get(channel)) {
            if now.saturating_duration_since(h.used_at) > ttl {
                let (used, bytes) = (h.used, h.bytes);
                inner.lru.remove(&used);
                inner.channels.remove(channel);
                inner.bytes -= bytes;
            }
        }
        if let Some(h) = inner.channels.get_mut(channel) {
            inner.lru.remove(&h.used);
            h.used = tick;
            h.used_at = now;
        } else {
            while inner.channels.len() >= self.config.max_channels.max(1) {
                if !evict_lru(inner, None) {
                    break;
                }
            }
            let epoch = self.next_epoch(inner);
            inner
                .channels
                .insert(channel.clone(), History::new(epoch, tick));
        }
        inner.lru.insert(tick, channel.clone());
        inner.channels.get_mut(channel).expect("just inserted")
    }

    fn append_sync(&self, req: PublishRequest) -> Result<Publication, PubSubError> {
        req.validate()?;
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.closed {
            return Err(PubSubError::Closed);
        }
        let channel = req.channel.clone();
        let max_pubs = self.config.max_publications.max(1);
        let max_bytes = self.config.max_bytes;
        let h = self.touch(inner, &channel);
        if let Some(key) = &req.idempotency_key {
            if let Some(p) = h.keys.get(key).and_then(|&offset| h.get(offset)) {
                return Ok(p.clone());
            }
        }
        h.top += 1;
        let key = req.idempotency_key.clone();
        let publication = req.into_publication(h.top());
        let c = cost(&publication, key.as_deref());
        let mut freed = 0;
        let mut added = 0;
        if c > max_bytes {
            // Not kept: the history now starts after it.
            while !h.ring.is_empty() {
                freed += h.pop_oldest();
            }
        } else {
            while h.ring.len() >= max_pubs || h.bytes + c > max_bytes {
                freed += h.pop_oldest();
            }
            if let Some(k) = &key {
                h.keys.insert(k.clone(), publication.position.offset);
            }
            h.ring.push_back(Kept {
                publication: publication.clone(),
                key,
                cost: c,
            });
            h.bytes += c;
            added = c;
        }
        inner.bytes = inner.bytes + added - freed;
        while inner.bytes > self.config.max_total_bytes {
            if !evict_lru(inner, Some(&channel)) {
                break;
            }
        }
        Ok(publication)
    }

    fn since_sync(
        &self,
        channel: &ChannelName,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Since, PubSubError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.closed {
            return Err(PubSubError::Closed);
        }
        let h = self.touch(inner, channel);
        let top = h.top();
        let cannot = |reason| Ok(Since::CannotCatchUp { reason, top });
        let Some(after) = after else {
            return Ok(Since::Publications {
                publications: Vec::new(),
                top,
            });
        };
        if let Err(reason) = missing_after(after, top, limit) {
            return cannot(reason);
        }
        if h.first_kept() > after.offset + 1 {
            return cannot(GapReason::Evicted);
        }
        let skip = (after.offset + 1 - h.first_kept()) as usize;
        let publications = h
            .ring
            .iter()
            .skip(skip)
            .map(|k| k.publication.clone())
            .collect();
        Ok(Since::Publications { publications, top })
    }
}

/// Drops the least recently used channel other than `keep`; `false` when
/// there is none.
fn evict_lru(inner: &mut Inner, keep: Option<&ChannelName>) -> bool {
    let victim = inner
        .lru
        .iter()
        .find(|(_, ch)| Some(*ch) != keep)
        .map(|(&t, ch)| (t, ch.clone()));
    let Some((tick, ch)) = victim else {
        return false;
    };
    inner.lru.remove(&tick);
    if let Some(h) = inner.channels.remove(&ch) {
        inner.bytes -= h.bytes;
    }
    true
}

impl Store for MemoryStore {
    fn append(
        &self,
        req: PublishRequest,
    ) -> impl Future<Output = Result<Publication, PubSubError>> + Send {
        std::future::ready(self.append_sync(req))
    }

    fn since(
        &self,
        channel: &ChannelName,
        after: Option<Position>,
        limit: usize,
    ) -> impl Future<Output = Result<Since, PubSubError>> + Send {
        std::future::ready(self.since_sync(channel, after, limit))
    }

    fn close(&self) -> impl Future<Output = ()> + Send {
        let mut inner = self.lock();
        inner.closed = true;
        inner.channels.clear();
        inner.lru.clear();
        inner.bytes = 0;
        std::future::ready(())
    }
}
