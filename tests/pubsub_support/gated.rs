//! A [`Store`] for tests that decide what happens while someone waits for
//! the store: it can hold the answer of its next read at a gate, fail its
//! reads, and be flushed (every history lost: the next append starts a
//! new epoch, as Redis after FLUSHALL).
#![allow(dead_code)] // each test uses a part

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rtwire::pubsub::{
    ChannelName, MemoryStore, Position, PubSubError, Publication, PublishRequest, Since, Store,
};
use tokio::sync::oneshot;

/// A store that can be flushed, and can hold the answer of its next read.
#[derive(Default)]
pub struct Gated {
    inner: Mutex<Arc<MemoryStore>>,
    /// Reads fail while set.
    pub fail: AtomicBool,
    /// Armed: the next `since` is read, reported on the first sender, and
    /// held until the second fires.
    gate: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

impl Gated {
    pub fn store(&self) -> Arc<MemoryStore> {
        self.inner.lock().unwrap().clone()
    }
    /// Loses every history (the next append starts a new epoch).
    pub fn flush(&self) {
        *self.inner.lock().unwrap() = Arc::new(MemoryStore::default());
    }
    /// Holds the next read: returns (it arrived, release it).
    pub fn arm(&self) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (arrived_tx, arrived) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        *self.gate.lock().unwrap() = Some((arrived_tx, release_rx));
        (arrived, release)
    }
}

impl Store for Gated {
    fn append(
        &self,
        req: PublishRequest,
    ) -> impl Future<Output = Result<Publication, PubSubError>> + Send {
        let s = self.store();
        async move { s.append(req).await }
    }
    fn since(
        &self,
        channel: &ChannelName,
        after: Option<Position>,
        limit: usize,
    ) -> impl Future<Output = Result<Since, PubSubError>> + Send {
        let s = self.store();
        let gate = self.gate.lock().unwrap().take();
        let channel = channel.clone();
        let fail = self.fail.load(Ordering::SeqCst);
        async move {
            let r = if fail {
                Err(PubSubError::Backend("failing on purpose".into()))
            } else {
                s.since(&channel, after, limit).await
            };
            if let Some((arrived, release)) = gate {
                let _ = arrived.send(());
                let _ = release.await;
            }
            r
        }
    }
    fn close(&self) -> impl Future<Output = ()> + Send {
        let s = self.store();
        async move { s.close().await }
    }
}

/// Lets the test share the store with the hub.
pub struct Shared(pub Arc<Gated>);

impl Store for Shared {
    fn append(
        &self,
        req: PublishRequest,
    ) -> impl Future<Output = Result<Publication, PubSubError>> + Send {
        self.0.append(req)
    }
    fn since(
        &self,
        channel: &ChannelName,
        after: Option<Position>,
        limit: usize,
    ) -> impl Future<Output = Result<Since, PubSubError>> + Send {
        self.0.since(channel, after, limit)
    }
    fn close(&self) -> impl Future<Output = ()> + Send {
        self.0.close()
    }
}
