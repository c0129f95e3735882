//! Positions' wire form round-trips and is canonical; channel names are
//! validated.

use proptest::prelude::*;
use rtwire::pubsub::{ChannelName, Position, PositionError, PubSubError, MAX_CHANNEL_LEN};

proptest! {
    #[test]
    fn every_position_round_trips(epoch in any::<u64>(), offset in any::<u64>()) {
        let p = Position::new(epoch, offset);
        let s = p.to_string();
        prop_assert_eq!(Position::parse(&s), Ok(p));
        prop_assert_eq!(s.parse::<Position>(), Ok(p));
    }

    /// Strings close to the wire form (hex digits in both cases, signs,
    /// dashes, spaces, leading zeros): whatever `parse` accepts is the
    /// canonical form of what it returns.
    #[test]
    fn every_accepted_string_is_canonical_near_misses(s in "[0-9a-fA-F+ xX-]{0,24}") {
        if let Ok(p) = Position::parse(&s) {
            prop_assert_eq!(p.to_string(), s);
        }
    }

    #[test]
    fn every_accepted_string_is_canonical_any_text(s in any::<String>()) {
        if let Ok(p) = Position::parse(&s) {
            prop_assert_eq!(p.to_string(), s);
        }
    }

    /// Canonical-looking strings of any length: accepted exactly when they
    /// fit in `u64`.
    #[test]
    fn long_numbers_fit_or_are_refused(e in "[1-9a-f][0-9a-f]{0,17}", o in "[1-9][0-9]{0,21}") {
        let s = format!("{e}-{o}");
        let fits = u64::from_str_radix(&e, 16).is_ok() && o.parse::<u64>().is_ok();
        prop_assert_eq!(Position::parse(&s).is_ok(), fits);
    }
}

#[test]
fn accepted_examples() {
    let cases = [
        ("0-0", Position::new(0, 0)),
        ("1-1", Position::new(1, 1)),
        ("1f3a-42", Position::new(0x1f3a, 42)),
        (
            "ffffffffffffffff-18446744073709551615",
            Position::new(u64::MAX, u64::MAX),
        ),
    ];
    for (s, p) in cases {
        assert_eq!(Position::parse(s), Ok(p), "{s:?}");
        assert_eq!(p.to_string(), s);
    }
}

#[test]
fn rejected_examples() {
    use PositionError::*;
    let cases = [
        ("", Shape),
        ("42", Shape),
        ("1f3a", Shape),
        ("-", Epoch),
        ("-1", Epoch),
        ("1-", Offset),
        ("01-1", Epoch),
        ("00-1", Epoch),
        ("1F-1", Epoch),
        ("0x1-1", Epoch),
        ("+1-1", Epoch),
        (" 1-1", Epoch),
        ("g-1", Epoch),
        ("10000000000000000-1", Epoch), // 17 hex digits
        ("1-01", Offset),
        ("1-00", Offset),
        ("1-+1", Offset),
        ("1--1", Offset),
        ("1-1 ", Offset),
        ("1-1a", Offset),
        ("1-2-3", Offset),
        ("1-18446744073709551616", Offset), // u64::MAX + 1
        ("1-١", Offset),                    // a non-ASCII digit
    ];
    for (s, why) in cases {
        assert_eq!(Position::parse(s), Err(why), "{s:?}");
    }
}

#[test]
fn positions_order_by_epoch_then_offset_and_next_adds_one() {
    assert!(Position::new(1, 9) < Position::new(2, 0));
    assert!(Position::new(1, 1) < Position::new(1, 2));
    assert_eq!(Position::new(5, 7).next(), Position::new(5, 8));
}

#[test]
fn channel_names_accepted() {
    let longest = "a".repeat(MAX_CHANNEL_LEN);
    for name in [
        "a",
        "news",
        "room:42/news",
        "user@example.com",
        "A-Z_a-z.0-9:@/",
        longest.as_str(),
    ] {
        let c = ChannelName::new(name).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert_eq!(c.as_str(), name);
        assert_eq!(c.to_string(), name);
        assert_eq!(ChannelName::try_from(name).unwrap(), c);
    }
}

#[test]
fn channel_names_refused() {
    let too_long = "a".repeat(MAX_CHANNEL_LEN + 1);
    for name in [
        "",
        too_long.as_str(),
        "a b",
        "a\nb",
        "a\0b",
        "tab\t",
        "ünï",
        "a*",
        "a?b",
        "a#b",
        "a%20b",
        "a\"b",
        "a\\b",
        "a,b",
    ] {
        match ChannelName::new(name) {
            Err(PubSubError::InvalidChannel(_)) => {}
            other => panic!("{name:?}: {other:?}"),
        }
    }
}

proptest! {
    /// A name is accepted exactly when it is 1..=MAX_CHANNEL_LEN bytes of
    /// the documented set.
    #[test]
    fn channel_name_validation_matches_the_documented_set(s in "[a-zA-Z0-9_.:@/ #*é-]{0,210}") {
        let documented = !s.is_empty()
            && s.len() <= MAX_CHANNEL_LEN
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:@/".contains(&b));
        prop_assert_eq!(ChannelName::new(&s).is_ok(), documented);
    }
}
