//! Publish/subscribe with ordered positions and replay: the core under the
//! SSE manager and the WebSocket hub, on one node (in memory, the default)
//! or many (Redis, feature `redis`).
//!
//! ## The contract
//!
//! - Every [`Publication`] on a channel gets a [`Position`]: an `offset`
//!   that grows by exactly one per publication, and an `epoch` that changes
//!   whenever the history behind the offsets is lost (the store flushed or
//!   restarted, the stream deleted). Its wire form (an SSE `id:`, a field
//!   of a WebSocket envelope) is `"{epoch:x}-{offset}"` and parses back
//!   exactly ([`Position::parse`]).
//! - A [`Store`] keeps a bounded history per channel. [`Store::since`]
//!   returns **every** publication after a position, in order, or says
//!   plainly that it cannot ([`Since::CannotCatchUp`] with a
//!   [`GapReason`]). It never returns a partial replay.
//! - A [`Bus`] carries publications to every instance that has local
//!   subscribers for the channel. A [`Subscription`] yields
//!   [`Delivery`]s in position order: a publication, or a notice that the
//!   subscriber missed some ([`Delivery::Lagged`], it fell behind locally;
//!   [`Delivery::Reset`], the history it would need is gone). A subscriber
//!   that sees a notice resumes from its last position with
//!   [`Store::since`].
//! - Channel names are validated ([`ChannelName`]).
//!
//! ## The replay/live hand-off
//!
//! Written once, used by the SSE manager and the hub: a [`Follower`]
//! turns one channel's bus subscription into its publications in order,
//! each once, healing what the bus lost from the store (or saying
//! [`Followed::Reset`] with a [`ResetReason`]); a [`Cursor`] per
//! subscriber drops the live publications its replay already held.

mod bus;
mod channel;
mod cursor;
mod error;
mod follow;
mod memory;
mod position;
mod publication;
#[cfg(feature = "redis")]
pub mod redis;
mod reset;
mod store;

pub use bus::{Bus, Delivery, Subscription};
pub use channel::{ChannelName, MAX_CHANNEL_LEN};
pub use cursor::Cursor;
pub use error::{PositionError, PubSubError};
pub use follow::{Followed, Follower};
pub use memory::{MemoryBus, MemoryConfig, MemoryStore};
pub use position::Position;
pub use publication::{Publication, PublishRequest, MAX_FIELD_LEN};
pub use reset::ResetReason;
pub use store::{GapReason, Since, Store};
