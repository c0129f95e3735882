//! [`MemoryBus`]: fan-out to this process's subscribers.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::pubsub::bus::{Bus, Delivery, Fanout, Subscription};
use crate::pubsub::channel::ChannelName;
use crate::pubsub::error::PubSubError;
use crate::pubsub::publication::Publication;

/// The in-process [`Bus`]: a publication goes to this process's
/// subscribers of its channel, as one shared `Arc<Publication>` (nothing is
/// encoded or copied per subscriber).
///
/// Each subscriber has a buffer of [`capacity`](MemoryBus::with_capacity)
/// deliveries (default 1024); one that falls further behind loses the
/// oldest and is told how many with [`Delivery::Lagged`] (it stays
/// subscribed, and resumes from its last position with
/// [`Store::since`](crate::pubsub::Store::since)).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use rtwire::pubsub::{Bus, ChannelName, Delivery, MemoryBus, Position, PublishRequest};
/// let bus = MemoryBus::new();
/// let ch = ChannelName::new("news").unwrap();
/// let mut sub = bus.subscribe(&ch).await.unwrap();
/// let p = PublishRequest::new(ch, "hi").into_publication(Position::new(7, 1));
/// bus.publish(&p).await.unwrap();
/// match sub.recv().await {
///     Some(Delivery::Publication(got)) => assert_eq!(*got, p),
///     other => panic!("{other:?}"),
/// }
/// # });
/// ```
pub struct MemoryBus {
    fanout: Arc<Fanout>,
    closed: AtomicBool,
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBus")
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for MemoryBus {
    fn default() -> Self {
        MemoryBus::new()
    }
}

impl MemoryBus {
    /// The default buffer per subscriber, in deliveries.
    pub const DEFAULT_CAPACITY: usize = 1024;

    /// A bus with [`DEFAULT_CAPACITY`](MemoryBus::DEFAULT_CAPACITY).
    pub fn new() -> Self {
        MemoryBus::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// A bus with `capacity` deliveries of buffer per subscriber (rounded
    /// up to a power of two; at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryBus {
            fanout: Fanout::new(capacity, Arc::new(|_: &ChannelName| {})),
            closed: AtomicBool::new(false),
        }
    }

    /// How many channels have local subscribers now.
    pub fn channel_count(&self) -> usize {
        self.fanout.channels().len()
    }

    /// Whether `channel` has local subscribers now.
    pub fn has_subscribers(&self, channel: &ChannelName) -> bool {
        self.fanout.has(channel)
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn subscribe_sync(&self, channel: &ChannelName) -> Result<Subscription, PubSubError> {
        if self.is_closed() {
            return Err(PubSubError::Closed);
        }
        let (sub, _first) = self.fanout.subscribe(channel);
        // A close that raced with this subscribe may have missed it.
        if self.is_closed() {
            self.fanout.close();
            return Err(PubSubError::Closed);
        }
        Ok(sub)
    }
}

impl Bus for MemoryBus {
    fn publish(
        &self,
        publication: &Publication,
    ) -> impl Future<Output = Result<(), PubSubError>> + Send {
        let r = if self.is_closed() {
            Err(PubSubError::Closed)
        } else {
            let d = Delivery::Publication(Arc::new(publication.clone()));
            self.fanout.deliver(&publication.channel, d);
            Ok(())
        };
        std::future::ready(r)
    }

    fn subscribe(
        &self,
        channel: &ChannelName,
    ) -> impl Future<Output = Result<Subscription, PubSubError>> + Send {
        std::future::ready(self.subscribe_sync(channel))
    }

    fn close(&self) -> impl Future<Output = ()> + Send {
        self.closed.store(true, Ordering::Release);
        self.fanout.close();
        std::future::ready(())
    }
}
