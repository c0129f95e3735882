//! What is published: a request, and the stored publication with its
//! position.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::channel::ChannelName;
use super::error::PubSubError;
use super::position::Position;

/// Longest tenant, subject or event type, in bytes.
pub const MAX_FIELD_LEN: usize = 256;

fn check_field(v: &Option<String>, which: &'static str) -> Result<(), PubSubError> {
    match v {
        Some(s) if s.len() > MAX_FIELD_LEN || s.bytes().any(|b| b.is_ascii_control()) => {
            Err(PubSubError::InvalidField(which))
        }
        _ => Ok(()),
    }
}

/// A publication to be stored and delivered; the store assigns its
/// position and timestamp.
///
/// ```
/// use rtwire::pubsub::{ChannelName, PublishRequest};
/// let req = PublishRequest::new(ChannelName::new("news").unwrap(), "hello")
///     .event_type("headline")
///     .tenant("acme");
/// assert_eq!(&req.data[..], b"hello");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishRequest {
    /// The channel.
    pub channel: ChannelName,
    /// Routing key: only subscribers of this tenant receive it (`None`:
    /// everyone on the channel).
    pub tenant: Option<String>,
    /// Routing key: only subscribers of this subject receive it.
    pub subject: Option<String>,
    /// The event type (SSE `event:`), if any.
    pub event_type: Option<String>,
    /// The payload.
    pub data: Bytes,
    /// A reconnection delay for SSE clients (`retry:`), in milliseconds.
    pub retry_ms: Option<u64>,
    /// A key that makes a retried publish idempotent: a second publish with
    /// the same key on the same channel (within the store's idempotency
    /// window) returns the first one's publication instead of storing
    /// another.
    pub idempotency_key: Option<String>,
}

impl PublishRequest {
    /// A request with `data` on `channel` and nothing else.
    pub fn new(channel: ChannelName, data: impl Into<Bytes>) -> Self {
        PublishRequest {
            channel,
            tenant: None,
            subject: None,
            event_type: None,
            data: data.into(),
            retry_ms: None,
            idempotency_key: None,
        }
    }

    /// Sets the tenant.
    pub fn tenant(mut self, t: impl Into<String>) -> Self {
        self.tenant = Some(t.into());
        self
    }

    /// Sets the subject.
    pub fn subject(mut self, s: impl Into<String>) -> Self {
        self.subject = Some(s.into());
        self
    }

    /// Sets the event type.
    pub fn event_type(mut self, t: impl Into<String>) -> Self {
        self.event_type = Some(t.into());
        self
    }

    /// Sets the SSE `retry`.
    pub fn retry_ms(mut self, ms: u64) -> Self {
        self.retry_ms = Some(ms);
        self
    }

    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, k: impl Into<String>) -> Self {
        self.idempotency_key = Some(k.into());
        self
    }

    /// Checks the routing fields and the event type (at most
    /// [`MAX_FIELD_LEN`] bytes, no control characters).
    pub fn validate(&self) -> Result<(), PubSubError> {
        check_field(&self.tenant, "tenant")?;
        check_field(&self.subject, "subject")?;
        check_field(&self.event_type, "event type")?;
        check_field(&self.idempotency_key, "idempotency key")
    }

    /// The publication this request becomes at `position`, stamped now.
    pub fn into_publication(self, position: Position) -> Publication {
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Publication {
            channel: self.channel,
            tenant: self.tenant,
            subject: self.subject,
            event_type: self.event_type,
            data: self.data,
            retry_ms: self.retry_ms,
            timestamp_ms,
            position,
        }
    }
}

/// A stored publication: what a subscriber receives.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Publication {
    /// The channel.
    pub channel: ChannelName,
    /// Routing key (see [`PublishRequest::tenant`]).
    pub tenant: Option<String>,
    /// Routing key (see [`PublishRequest::subject`]).
    pub subject: Option<String>,
    /// The event type, if any.
    pub event_type: Option<String>,
    /// The payload.
    pub data: Bytes,
    /// SSE `retry`, in milliseconds.
    pub retry_ms: Option<u64>,
    /// When the store accepted it, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Its position in the channel's history.
    pub position: Position,
}

impl Publication {
    /// Whether a subscriber with these routing keys receives it: a
    /// publication with a tenant (subject) reaches only subscribers of
    /// that tenant (subject); one without reaches everyone.
    ///
    /// ```
    /// use rtwire::pubsub::{ChannelName, Position, PublishRequest};
    /// let p = PublishRequest::new(ChannelName::new("c").unwrap(), "x")
    ///     .tenant("acme")
    ///     .into_publication(Position::new(1, 1));
    /// assert!(p.routes_to(Some("acme"), None));
    /// assert!(!p.routes_to(Some("other"), None));
    /// assert!(!p.routes_to(None, None));
    /// ```
    pub fn routes_to(&self, tenant: Option<&str>, subject: Option<&str>) -> bool {
        let ok = |want: &Option<String>, have: Option<&str>| match want {
            None => true,
            Some(w) => have == Some(w.as_str()),
        };
        ok(&self.tenant, tenant) && ok(&self.subject, subject)
    }
}
