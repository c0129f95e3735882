//! Server-Sent Events (the WHATWG `text/event-stream` format).
//!
//! - [`Event`] and [`Encoder`]: events into a caller's reusable `BytesMut`,
//!   or once into a shared [`EncodedEvent`] for many streams.
//! - [`Decoder`]: the WHATWG parser, sans-IO, bounded by [`Limits`].
//! - [`accept`], [`SseStream`]: serving a stream over any `AsyncWrite`, with
//!   heartbeats, a write timeout, `Last-Event-ID` and disconnect detection.
//! - [`SseClient`], [`EventSource`]: a client over any
//!   `AsyncRead + AsyncWrite`, reconnecting with `Last-Event-ID`.
//! - [`Manager`] and [`Handler`]: channels of events on the pub/sub
//!   layer, with replay on `Last-Event-ID`, connection limits, a
//!   slow-client policy and one handler per request, on one node or many.
//! - [`ReplayStore`]: per-channel rings of encoded events for resume, with
//!   explicit [`Gap`]s.
//!
//! ```
//! use bytes::BytesMut;
//! use rtwire::sse::{Decoder, Limits, Encoder, Event};
//!
//! let mut wire = BytesMut::new();
//! let ev = Event::new("a\r\nb").with_id("1")?;
//! Encoder::new().encode(&ev, &mut wire);
//!
//! let mut dec = Decoder::new(Limits::default());
//! let got = dec.decode(&mut wire).unwrap().unwrap();
//! assert_eq!(got.data(), "a\nb"); // CRLF is one line break
//! assert_eq!(got.last_event_id(), "1");
//! # Ok::<(), rtwire::sse::EventError>(())
//! ```

mod accept;
mod chunked;
mod client;
mod decoder;
mod encoder;
mod error;
mod event;
mod event_source;
mod manager;
mod scan;
mod store;
mod stream;

pub use accept::{accept, Config, SseRequest};
pub use client::{ClientConfig, SseClient};
pub use decoder::{Decoder, Limits};
pub use encoder::{EncodedEvent, Encoder, KEEPALIVE};
pub use error::{ClientError, DecodeError, EventError, StoreError};
pub use event::{Event, MessageEvent};
pub use event_source::EventSource;
pub use manager::{
    AuthorizeSubscribe, CloseReason, EventKind, Handler, HandlerConfig, ManagedEvent, Manager,
    ManagerConfig, ManagerError, ResetReason, Stats, SubscribeRequest, Subscriber, DROPPED_EVENT,
    RESET_EVENT,
};
pub use store::{Gap, Replay, ReplayStore, StoredEvent, DEFAULT_MAX_CHANNELS};
pub use stream::SseStream;
