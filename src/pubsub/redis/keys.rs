//! Redis key and channel names (see the table in the module docs).

use crate::pubsub::ChannelName;

/// The names of one channel's keys, all with the hash tag `{<channel>}`
/// so that they live in one cluster slot (the scripts touch them together).
pub(super) struct Keys {
    pub(super) meta: String,
    pub(super) stream: String,
    pub(super) pubsub: String,
}

impl Keys {
    pub(super) fn new(prefix: &str, channel: &ChannelName) -> Keys {
        let base = format!("{prefix}:{{{channel}}}");
        Keys {
            meta: format!("{base}:meta"),
            stream: format!("{base}:stream"),
            pubsub: base,
        }
    }

    /// The idempotency key for `key` on this channel.
    pub(super) fn idem(&self, key: &str) -> String {
        format!("{}:idem:{key}", self.pubsub)
    }
}

/// The pub/sub channel of `channel` (the same as [`Keys::pubsub`]).
pub(super) fn pubsub_channel(prefix: &str, channel: &ChannelName) -> String {
    format!("{prefix}:{{{channel}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let k = Keys::new("rtwire", &ChannelName::new("room:1").unwrap());
        assert_eq!(k.meta, "rtwire:{room:1}:meta");
        assert_eq!(k.stream, "rtwire:{room:1}:stream");
        assert_eq!(k.pubsub, "rtwire:{room:1}");
        assert_eq!(k.idem("k1"), "rtwire:{room:1}:idem:k1");
        assert_eq!(
            pubsub_channel("rtwire", &ChannelName::new("room:1").unwrap()),
            k.pubsub
        );
    }
}
