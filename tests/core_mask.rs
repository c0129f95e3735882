//! Masking kernel edge cases found by fuzzing.

use rtwire::ws::{apply_mask, apply_mask_bytes};

/// Found by the `mask` fuzz target: the reference implementation indexed the
/// key with `i + offset`, which overflowed (a panic in debug builds) for a
/// running offset near `usize::MAX`. Offsets only matter modulo 4.
#[test]
fn apply_mask_bytes_offset_near_usize_max() {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let data = *b"Hello, masking kernel, over 32 bytes long!";
    for offset in [usize::MAX, usize::MAX - 1, usize::MAX - 2, usize::MAX - 3] {
        let mut slow = data;
        let mut fast = data;
        apply_mask_bytes(&mut slow, key, offset);
        apply_mask(&mut fast, key, offset);
        assert_eq!(slow, fast, "offset {offset}");
        // usize::MAX is 3 mod 4: same phase as offset 3.
        let mut same_phase = data;
        apply_mask_bytes(&mut same_phase, key, offset & 3);
        assert_eq!(slow, same_phase, "offset {offset}");
    }
}
