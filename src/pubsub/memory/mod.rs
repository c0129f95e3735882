//! The embedded backends: [`MemoryStore`] (a bounded history per channel,
//! in this process) and [`MemoryBus`] (fan-out to this process's
//! subscribers). The defaults when no other backend is configured.

mod bus;
mod store;

pub use bus::MemoryBus;
pub use store::{MemoryConfig, MemoryStore};
