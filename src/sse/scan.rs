//! Finding line breaks (and NULs) in field values: the encoder's inner loop.
//!
//! Most values an SSE server writes are short: ids, event types, JSON
//! objects and log lines of tens of bytes. For those, `memchr`'s dispatch
//! and set-up (about 35 of the 82 instructions it takes to find the break in
//! a 51-byte line, measured with callgrind) cost more than the search. So:
//!
//! - under one block (16 bytes), a byte loop;
//! - then the first `BLOCK_SCAN` bytes in 16-byte blocks (the last,
//!   partial one read as the block that ends there, overlapping bytes
//!   already found clean), each tested with an OR of byte compares that the
//!   compiler turns into vector compares and a mask test (no `unsafe`, no
//!   target-specific code), the break located in its block with a word
//!   trick;
//! - past that, `memchr`, the faster one on long values.
//!
//! Callgrind, per event of the `sse` bench's 5-line data (five 51-byte
//! lines): 1,171 -> 1,075 instructions; short JSON 537 -> 499.
//!
//! All three give the same answer: the property test below holds them to
//! `Iterator::position`.

/// How much of a longer value is scanned in blocks before `memchr` takes
/// over (it sets up once, then runs 32 bytes a step on AVX2).
const BLOCK_SCAN: usize = 128;

const BLOCK: usize = 16;

/// Position of the first CR or LF in `s`.
#[inline]
pub(crate) fn find_break(s: &[u8]) -> Option<usize> {
    find::<false>(s)
}

/// Position of the first CR, LF or NUL in `s`.
#[inline]
pub(crate) fn find_break_or_nul(s: &[u8]) -> Option<usize> {
    find::<true>(s)
}

/// Whether `b` is a hit. Written without short-circuits, so that the
/// block test below vectorises (with `||` it does not: 1,075 -> 1,098
/// instructions per 5-line event).
#[inline(always)]
fn hit<const NUL: bool>(b: u8) -> bool {
    (b == b'\r') | (b == b'\n') | (NUL & (b == 0))
}

#[inline]
fn find<const NUL: bool>(s: &[u8]) -> Option<usize> {
    if s.len() < BLOCK {
        return s.iter().position(|&b| hit::<NUL>(b));
    }
    let head = &s[..s.len().min(BLOCK_SCAN)];
    let mut at = 0;
    for block in head.chunks_exact(BLOCK) {
        let block: &[u8; BLOCK] = block.try_into().expect("chunks_exact");
        if any_hit::<NUL>(block) {
            return Some(at + locate::<NUL>(block));
        }
        at += BLOCK;
    }
    if at < head.len() {
        // The last few bytes: the block that ends with them, overlapping
        // bytes already found clean, so its first hit is the first.
        let last = head.len() - BLOCK;
        let block: &[u8; BLOCK] = head[last..].try_into().expect("one block");
        if any_hit::<NUL>(block) {
            return Some(last + locate::<NUL>(block));
        }
    }
    if s.len() == head.len() {
        return None;
    }
    let rest = &s[head.len()..];
    let found = if NUL {
        memchr::memchr3(b'\r', b'\n', 0, rest)
    } else {
        memchr::memchr2(b'\r', b'\n', rest)
    };
    found.map(|p| head.len() + p)
}

/// The first hit in a block known to hold one.
#[inline]
fn locate<const NUL: bool>(block: &[u8; BLOCK]) -> usize {
    let lo = u64::from_le_bytes(block[..8].try_into().expect("8 bytes"));
    match word_hits::<NUL>(lo) {
        0 => {
            let hi = u64::from_le_bytes(block[8..].try_into().expect("8 bytes"));
            8 + (word_hits::<NUL>(hi).trailing_zeros() / 8) as usize
        }
        m => (m.trailing_zeros() / 8) as usize,
    }
}

/// Whether `block` holds a hit: an OR of byte compares, which the
/// compiler turns into a vector compare per needle and a mask test, not
/// sixteen branches.
#[inline(always)]
fn any_hit<const NUL: bool>(block: &[u8; BLOCK]) -> bool {
    block.iter().fold(0u8, |any, &b| any | hit::<NUL>(b) as u8) != 0
}

/// A word with the high bit set in each byte of `w` that is a hit (and
/// possibly in bytes above a hit, through the borrow: only the lowest set
/// bit is exact, and only it is used).
#[inline(always)]
fn word_hits<const NUL: bool>(w: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(LO) & !x;
    let mut z = zero(w ^ (LO * u64::from(b'\n'))) | zero(w ^ (LO * u64::from(b'\r')));
    if NUL {
        z |= zero(w);
    }
    z & HI
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plain(s: &[u8], nul: bool) -> Option<usize> {
        s.iter()
            .position(|&b| b == b'\r' || b == b'\n' || (nul && b == 0))
    }

    #[test]
    fn every_position_and_length() {
        // Every length up to past the block scan, one hit at each position
        // (and none), for each kind of hit: the block edges, the word
        // halves and the hand-over to memchr are all crossed.
        for len in 0..BLOCK_SCAN + 40 {
            for hit_at in (0..len).map(Some).chain([None]) {
                for h in [b'\r', b'\n', 0u8] {
                    let mut s = vec![b'a'; len];
                    if let Some(i) = hit_at {
                        s[i] = h;
                    }
                    let expect_break = if h == 0 { None } else { hit_at };
                    assert_eq!(find_break(&s), expect_break, "len {len} at {hit_at:?} {h}");
                    assert_eq!(find_break_or_nul(&s), hit_at, "len {len} at {hit_at:?} {h}");
                }
            }
        }
    }

    #[test]
    fn bytes_next_to_the_needles_are_not_hits() {
        // The word trick's borrow marks bytes *above* a hit: a value of
        // 0x0b, 0x0c, 0x0e, 0x01 or 0x80|needle must never be one.
        for b in [0x01u8, 0x09, 0x0b, 0x0c, 0x0e, 0x8a, 0x8d, 0x80, 0xff] {
            let s = vec![b; 200];
            assert_eq!(find_break_or_nul(&s), None, "{b:#x}");
        }
    }

    proptest! {
        #[test]
        fn same_as_position(
            s in proptest::collection::vec(
                prop_oneof![8 => 0x20u8..0x7f, 1 => Just(b'\n'), 1 => Just(b'\r'),
                            1 => Just(0u8), 1 => any::<u8>()],
                0..400,
            ),
            skip in 0usize..20,
        ) {
            // Mostly printable, hits sparse enough to leave long clean runs.
            let s: Vec<u8> = s.iter().enumerate()
                .map(|(i, &b)| if i < skip && (b == b'\n' || b == b'\r' || b == 0) { b'x' } else { b })
                .collect();
            prop_assert_eq!(find_break(&s), plain(&s, false));
            prop_assert_eq!(find_break_or_nul(&s), plain(&s, true));
        }

        #[test]
        fn long_clean_runs(pre in 0usize..300, h in prop_oneof![Just(b'\n'), Just(b'\r'), Just(0u8)], post in 0usize..40) {
            let mut s = vec![b'y'; pre];
            s.push(h);
            s.extend(std::iter::repeat_n(b'z', post));
            prop_assert_eq!(find_break(&s), plain(&s, false));
            prop_assert_eq!(find_break_or_nul(&s), plain(&s, true));
        }
    }
}
