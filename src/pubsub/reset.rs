//! [`ResetReason`]: why a subscriber must start over, the one vocabulary
//! of the SSE `reset` event and the hub's `reset` envelope.

use std::fmt;

use super::store::GapReason;

/// Why a subscriber could not be caught up: the `reason` of an SSE
/// `reset` event and of the hub's `reset` notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResetReason {
    /// The store could not serve what the client missed
    /// ([`GapReason`]: the history was reset, evicted, is longer than the
    /// replay limit, or the id is ahead of it).
    Gap(GapReason),
    /// The position the client gave (an SSE `Last-Event-ID`, a hub `since`)
    /// is not one of ours: malformed.
    InvalidId,
    /// The bus lost deliveries and the store could not fill them in.
    Lost,
}

impl ResetReason {
    /// The wire name: `epoch-changed`, `evicted`, `over-limit`, `ahead`,
    /// `invalid-id`, `lost`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResetReason::Gap(GapReason::EpochChanged) => "epoch-changed",
            ResetReason::Gap(GapReason::Evicted) => "evicted",
            ResetReason::Gap(GapReason::OverLimit) => "over-limit",
            ResetReason::Gap(GapReason::Ahead) => "ahead",
            ResetReason::InvalidId => "invalid-id",
            ResetReason::Lost => "lost",
        }
    }
}

impl fmt::Display for ResetReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
