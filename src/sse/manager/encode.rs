//! The manager's events on the wire: a publication, the `reset` notice and
//! the `dropped` notice, each encoded once into shared bytes.

use std::borrow::Cow;
use std::sync::Arc;

use super::super::encoder::{EncodedEvent, Encoder};
use super::super::event::Event;
use super::super::scan::find_break;
pub use crate::pubsub::ResetReason;
use crate::pubsub::{Position, Publication};

/// The in-band event type a client receives when the store cannot catch it
/// up (see [`ResetReason`]).
pub const RESET_EVENT: &str = "reset";
/// The in-band event type a `drop_on_backpressure` client receives after
/// events were dropped for it.
pub const DROPPED_EVENT: &str = "dropped";

/// What a [`ManagedEvent`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A publication: `id:` is its position.
    Publication(Arc<Publication>),
    /// `event: reset`: the client missed events the store cannot give it.
    /// Its `id:` is the channel's current top (when known), so the
    /// browser's next reconnect resumes from there.
    Reset {
        /// Why.
        reason: ResetReason,
        /// The channel's top when the reset was decided.
        top: Option<Position>,
    },
    /// `event: dropped`: this many events were dropped for this client
    /// (`drop_on_backpressure`). No `id:`, so a reconnect with the last
    /// id the client saw gets them from the store.
    Dropped {
        /// How many.
        missed: u64,
    },
}

/// One event as the manager hands it out: what it is, and its encoding,
/// made once and shared by every subscriber it goes to.
#[derive(Clone, Debug)]
pub struct ManagedEvent {
    kind: EventKind,
    encoded: EncodedEvent,
}

impl ManagedEvent {
    /// What the event is.
    pub fn kind(&self) -> &EventKind {
        &self.kind
    }

    /// The `text/event-stream` bytes (shared, not copied per client).
    pub fn encoded(&self) -> &EncodedEvent {
        &self.encoded
    }

    /// The publication, for a publication event.
    pub fn publication(&self) -> Option<&Arc<Publication>> {
        match &self.kind {
            EventKind::Publication(p) => Some(p),
            _ => None,
        }
    }

    /// The event's position, for a publication event.
    pub fn position(&self) -> Option<Position> {
        self.publication().map(|p| p.position)
    }
}

/// A publication as an SSE event: `id: <position>`, `event:` its type,
/// `data:` its payload (UTF-8; bytes that are not are replaced, though
/// [`Manager::publish`](super::Manager::publish) refuses them), `retry:`.
pub fn publication(p: Arc<Publication>) -> ManagedEvent {
    let encoded = encode_publication(&p);
    ManagedEvent {
        kind: EventKind::Publication(p),
        encoded,
    }
}

fn encode_publication(p: &Publication) -> EncodedEvent {
    let id = p.position.to_string();
    let data = String::from_utf8_lossy(&p.data);
    let mut ev = Event::new(data);
    // A position has no CR, LF or NUL (hex, digits and one `-`).
    ev.id = Some(Cow::Owned(id));
    if let Some(t) = &p.event_type {
        // A type with a line break cannot be stored (pubsub validates);
        // one from a foreign writer on the bus is left out, not sent.
        if find_break(t.as_bytes()).is_none() {
            ev.event = Some(Cow::Borrowed(t.as_str()));
        }
    }
    ev.retry = p.retry_ms;
    Encoder::new().encode_to_bytes(&ev)
}

/// The `reset` notice:
/// `event: reset`, `id: <top>` (when known),
/// `data: {"reason":"<reason>","top":"<top>"}` (`top` is `null` when
/// unknown).
pub fn reset(reason: ResetReason, top: Option<Position>) -> ManagedEvent {
    let top_json = match top {
        Some(t) => format!("\"{t}\""),
        None => "null".to_owned(),
    };
    let data = format!("{{\"reason\":\"{}\",\"top\":{top_json}}}", reason.as_str());
    let mut ev = Event::new(data);
    ev.event = Some(Cow::Borrowed(RESET_EVENT));
    ev.id = top.map(|t| Cow::Owned(t.to_string()));
    ManagedEvent {
        kind: EventKind::Reset { reason, top },
        encoded: Encoder::new().encode_to_bytes(&ev),
    }
}

/// The `dropped` notice: `event: dropped`, `data: {"missed":N}`, no id.
pub fn dropped(missed: u64) -> ManagedEvent {
    let mut ev = Event::new(format!("{{\"missed\":{missed}}}"));
    ev.event = Some(Cow::Borrowed(DROPPED_EVENT));
    ManagedEvent {
        kind: EventKind::Dropped { missed },
        encoded: Encoder::new().encode_to_bytes(&ev),
    }
}
