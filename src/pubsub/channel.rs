//! Channel names: validated once, then cheap to clone and compare.

use std::fmt;
use std::sync::Arc;

use super::error::PubSubError;

/// Longest channel name, in bytes.
pub const MAX_CHANNEL_LEN: usize = 200;

/// A valid channel name: 1 to [`MAX_CHANNEL_LEN`] bytes of ASCII letters,
/// digits and `- _ . : @ /` (what fits unescaped in a URL query, a Redis
/// key and a log line). Anything else is [`PubSubError::InvalidChannel`].
///
/// ```
/// use rtwire::pubsub::ChannelName;
/// assert_eq!(ChannelName::new("room:42/news").unwrap().as_str(), "room:42/news");
/// assert!(ChannelName::new("").is_err());
/// assert!(ChannelName::new("a b").is_err());
/// assert!(ChannelName::new("ünï").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(Arc<str>);

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@' | b'/')
}

impl ChannelName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, PubSubError> {
        if name.is_empty() {
            return Err(PubSubError::InvalidChannel("empty".into()));
        }
        if name.len() > MAX_CHANNEL_LEN {
            return Err(PubSubError::InvalidChannel(format!(
                "longer than {MAX_CHANNEL_LEN} bytes"
            )));
        }
        if let Some(b) = name.bytes().find(|&b| !allowed(b)) {
            return Err(PubSubError::InvalidChannel(format!(
                "byte {b:#04x} is not allowed"
            )));
        }
        Ok(ChannelName(name.into()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for ChannelName {
    type Error = PubSubError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        ChannelName::new(s)
    }
}

impl AsRef<str> for ChannelName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
