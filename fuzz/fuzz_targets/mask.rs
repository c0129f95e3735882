//! The fast masking kernel against the byte-by-byte reference, for
//! arbitrary data, key, running offset and buffer alignment; and masking in
//! two pieces with running offsets equals masking the whole.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rtwire::ws::{apply_mask, apply_mask_bytes};

#[derive(Arbitrary, Debug)]
struct Input {
    key: [u8; 4],
    offset: usize,
    /// Where the masked slice starts in the buffer (alignment).
    start: u8,
    /// Where to cut the slice for the resumed masking.
    cut: u16,
    data: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let start = usize::from(input.start % 16).min(input.data.len());
    let mut fast = input.data.clone();
    let mut slow = input.data.clone();
    apply_mask(&mut fast[start..], input.key, input.offset);
    apply_mask_bytes(&mut slow[start..], input.key, input.offset);
    assert_eq!(fast, slow);

    let cut = usize::from(input.cut).min(slow.len() - start);
    let mut parts = input.data.clone();
    let (a, b) = parts[start..].split_at_mut(cut);
    apply_mask(a, input.key, input.offset);
    apply_mask(b, input.key, input.offset.wrapping_add(cut));
    assert_eq!(parts, slow);

    // Masking twice restores the data.
    apply_mask(&mut fast[start..], input.key, input.offset);
    assert_eq!(fast, input.data);
});
