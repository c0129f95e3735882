//! Positions in a channel's history: `(epoch, offset)`.

use std::fmt;
use std::str::FromStr;

use super::error::PositionError;

/// Where a publication sits in its channel's history.
///
/// `offset` grows by exactly one per publication (the first is 1); `epoch`
/// identifies the history the offsets belong to and changes whenever that
/// history is lost, so a position from before the loss is recognised as
/// such instead of being mistaken for a position in the new history.
///
/// Wire form: `"{epoch:x}-{offset}"`, lowercase hex without leading zeros
/// and decimal without leading zeros; [`Position::parse`] accepts exactly
/// that form, so `parse(p.to_string()) == p` and every accepted string is
/// the canonical one.
///
/// ```
/// use rtwire::pubsub::Position;
/// let p = Position::new(0x1f3a, 42);
/// assert_eq!(p.to_string(), "1f3a-42");
/// assert_eq!(Position::parse("1f3a-42"), Ok(p));
/// assert!(Position::parse("1F3A-42").is_err());
/// assert!(Position::parse("1f3a-042").is_err());
/// assert!(Position::parse("42").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    /// The history this offset belongs to.
    pub epoch: u64,
    /// 1 for the first publication of the epoch, +1 for each next one; 0
    /// means "before the first".
    pub offset: u64,
}

impl Position {
    /// A position.
    pub const fn new(epoch: u64, offset: u64) -> Self {
        Position { epoch, offset }
    }

    /// The position right after this one (same epoch).
    pub const fn next(self) -> Self {
        Position {
            epoch: self.epoch,
            offset: self.offset + 1,
        }
    }

    /// Parses the wire form (see the type's docs).
    pub fn parse(s: &str) -> Result<Self, PositionError> {
        let (e, o) = s.split_once('-').ok_or(PositionError::Shape)?;
        let epoch_ok = !e.is_empty()
            && e.len() <= 16
            && e.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && (e == "0" || !e.starts_with('0'));
        if !epoch_ok {
            return Err(PositionError::Epoch);
        }
        let offset_ok = !o.is_empty()
            && o.len() <= 20
            && o.bytes().all(|b| b.is_ascii_digit())
            && (o == "0" || !o.starts_with('0'));
        if !offset_ok {
            return Err(PositionError::Offset);
        }
        let epoch = u64::from_str_radix(e, 16).map_err(|_| PositionError::Epoch)?;
        let offset = o.parse::<u64>().map_err(|_| PositionError::Offset)?;
        Ok(Position { epoch, offset })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{}", self.epoch, self.offset)
    }
}

impl FromStr for Position {
    type Err = PositionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Position::parse(s)
    }
}
