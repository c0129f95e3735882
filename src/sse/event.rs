//! The [`Event`] a server sends, and the [`MessageEvent`] a client receives.

use std::borrow::Cow;
use std::fmt;

use smallvec::SmallVec;

use super::error::EventError;
use super::scan::{find_break, find_break_or_nul};

/// One event to send: optional `id`, `event` (type), `data`, `retry` and
/// comments.
///
/// Fields borrow or own their text (`Cow<'a, str>`), so an event built from
/// borrowed strings allocates nothing. The setters that take an `id` or an
/// event type check them, so every `Event` can be encoded: the encoder itself
/// cannot fail.
///
/// `data` may hold any text: each line break (CR, LF or CRLF) becomes a new
/// `data:` line on the wire, so a browser's `MessageEvent.data` is the text
/// with its line breaks normalized to LF.
///
/// ```
/// use rtwire::sse::Event;
///
/// let ev = Event::new("hello\nworld")
///     .with_id("42")?
///     .with_event("greeting")?
///     .with_retry(1500);
/// assert_eq!(ev.id(), Some("42"));
/// assert_eq!(ev.event(), Some("greeting"));
/// assert_eq!(ev.data(), Some("hello\nworld"));
/// assert_eq!(ev.retry(), Some(1500));
///
/// // An id containing a line break would split the stream: refused.
/// assert!(Event::new("x").with_id("1\n2").is_err());
/// # Ok::<(), rtwire::sse::EventError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Event<'a> {
    pub(crate) id: Option<Cow<'a, str>>,
    pub(crate) event: Option<Cow<'a, str>>,
    pub(crate) data: Option<Cow<'a, str>>,
    pub(crate) retry: Option<u64>,
    pub(crate) comments: SmallVec<[Cow<'a, str>; 1]>,
}

impl<'a> Event<'a> {
    /// An event carrying `data` (which may be empty: `data: ` on the wire is
    /// still dispatched by a browser, with empty data).
    #[inline]
    pub fn new(data: impl Into<Cow<'a, str>>) -> Self {
        Event {
            data: Some(data.into()),
            ..Event::default()
        }
    }

    /// An event without data: only fields such as `id` or `retry`, which a
    /// client applies without dispatching anything.
    ///
    /// ```
    /// use rtwire::sse::Event;
    /// let ev = Event::empty().with_retry(500);
    /// assert_eq!(ev.data(), None);
    /// assert_eq!(ev.to_encoded().as_bytes().as_ref(), b"retry: 500\n\n");
    /// ```
    pub fn empty() -> Self {
        Event::default()
    }

    /// Sets the data.
    #[inline]
    pub fn with_data(mut self, data: impl Into<Cow<'a, str>>) -> Self {
        self.data = Some(data.into());
        self
    }

    /// Sets the `id`. An id containing CR, LF or NUL is refused: a browser
    /// ignores an id with NUL, and a line break would end the field early.
    #[inline]
    pub fn with_id(mut self, id: impl Into<Cow<'a, str>>) -> Result<Self, EventError> {
        let id = id.into();
        if let Some(pos) = find_break_or_nul(id.as_bytes()) {
            return Err(EventError::InvalidId {
                byte: id.as_bytes()[pos],
            });
        }
        self.id = Some(id);
        Ok(self)
    }

    /// Sets the event type (`event:` field). A type containing CR or LF is
    /// refused.
    #[inline]
    pub fn with_event(mut self, event: impl Into<Cow<'a, str>>) -> Result<Self, EventError> {
        let event = event.into();
        if let Some(pos) = find_break(event.as_bytes()) {
            return Err(EventError::InvalidEventType {
                byte: event.as_bytes()[pos],
            });
        }
        self.event = Some(event);
        Ok(self)
    }

    /// Sets the reconnection time, in milliseconds (`retry:` field).
    pub fn with_retry(mut self, millis: u64) -> Self {
        self.retry = Some(millis);
        self
    }

    /// Adds a comment line (`: text`). Clients ignore comments. A comment
    /// with line breaks is written as several comment lines.
    pub fn with_comment(mut self, comment: impl Into<Cow<'a, str>>) -> Self {
        self.comments.push(comment.into());
        self
    }

    /// The `id`, if set.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The event type, if set.
    pub fn event(&self) -> Option<&str> {
        self.event.as_deref()
    }

    /// The data, if set.
    pub fn data(&self) -> Option<&str> {
        self.data.as_deref()
    }

    /// The reconnection time in milliseconds, if set.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// The comments, in order.
    pub fn comments(&self) -> impl Iterator<Item = &str> {
        self.comments.iter().map(|c| c.as_ref())
    }

    /// An owned copy that borrows nothing (e.g. to keep it in a store).
    pub fn into_owned(self) -> Event<'static> {
        fn own(c: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(c.into_owned())
        }
        Event {
            id: self.id.map(own),
            event: self.event.map(own),
            data: self.data.map(own),
            retry: self.retry,
            comments: self.comments.into_iter().map(own).collect(),
        }
    }
}

impl fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Event");
        if let Some(id) = &self.id {
            d.field("id", id);
        }
        if let Some(ev) = &self.event {
            d.field("event", ev);
        }
        if let Some(data) = &self.data {
            d.field("data", data);
        }
        if let Some(r) = self.retry {
            d.field("retry", &r);
        }
        if !self.comments.is_empty() {
            d.field("comments", &self.comments);
        }
        d.finish()
    }
}

/// An event as a browser dispatches it: what the [`Decoder`](super::Decoder)
/// and the [`SseClient`](super::SseClient) yield.
///
/// ```
/// use bytes::BytesMut;
/// use rtwire::sse::{Decoder, Limits};
///
/// let mut dec = Decoder::new(Limits::default());
/// let mut buf = BytesMut::from(&b"id: 7\ndata: hi\n\n"[..]);
/// let ev = dec.decode(&mut buf)?.unwrap();
/// assert_eq!(ev.event_type(), "message");
/// assert_eq!(ev.data(), "hi");
/// assert_eq!(ev.last_event_id(), "7");
/// # Ok::<(), rtwire::sse::DecodeError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageEvent {
    pub(crate) event: Option<String>,
    pub(crate) data: String,
    pub(crate) last_event_id: String,
}

impl MessageEvent {
    /// The event type: the last `event:` field of the event, or `"message"`
    /// when there was none or it was empty.
    pub fn event_type(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }

    /// The data: every `data:` line of the event joined with LF.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The data, by value.
    pub fn into_data(self) -> String {
        self.data
    }

    /// The last event id of the stream when this event was dispatched (the
    /// `id` of this event or of an earlier one; `""` when none was ever set,
    /// or an empty `id` reset it).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }
}
