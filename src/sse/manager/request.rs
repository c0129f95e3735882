//! [`SubscribeRequest`]: what a client subscribes to.

#[allow(unused_imports)] // rustdoc links
use super::{Handler, Manager, ManagerError};

/// What a client subscribes to.
///
/// ```
/// use rtwire::sse::SubscribeRequest;
/// let req = SubscribeRequest::new("news").tenant("acme").last_event_id("1-41");
/// assert_eq!(req.channel, "news");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeRequest {
    /// The client's id (`None`: generated). A second subscriber with the
    /// same id replaces the first, which is disconnected (a browser that
    /// reconnects before the server noticed it left).
    pub client_id: Option<String>,
    /// The channel name (see [`ChannelName`](crate::pubsub::ChannelName)).
    pub channel: String,
    /// Routing key: also receive events for this tenant.
    pub tenant: Option<String>,
    /// Routing key: also receive events for this subject.
    pub subject: Option<String>,
    /// Resume after this id.
    pub last_event_id: Option<String>,
}

impl SubscribeRequest {
    /// A request for `channel`.
    pub fn new(channel: impl Into<String>) -> Self {
        SubscribeRequest {
            channel: channel.into(),
            ..Self::default()
        }
    }

    /// Sets the client id.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
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

    /// Sets the last event id.
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = Some(id.into());
        self
    }
}
