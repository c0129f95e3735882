//! The masking kernel (RFC 6455 §5.3): XOR a payload with a 4-byte key.
//!
//! This is the one module where `unsafe` is permitted. It currently needs
//! none: the word-at-a-time loop below is written so that LLVM vectorises it
//! (16- or 32-byte lanes), which the `mask` bench measures against a plain
//! byte loop and `copy_from_slice`.
#![allow(unsafe_code)]

/// XORs `buf` with the masking `key`, where `buf[0]` is byte number
/// `offset` of the payload. Calling it on consecutive pieces of one payload
/// with their running offsets gives the same result as one call on the whole.
///
/// Applying the same key twice restores the original bytes.
///
/// ```
/// use rtwire::ws::apply_mask;
/// let key = [0x37, 0xfa, 0x21, 0x3d];
/// let mut data = *b"Hello";
/// apply_mask(&mut data, key, 0);
/// assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]); // RFC 6455 §5.7
/// // Resuming at an offset:
/// let mut a = *b"Hello";
/// apply_mask(&mut a[..2], key, 0);
/// apply_mask(&mut a[2..], key, 2);
/// assert_eq!(a, data);
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // Rotate the key so that key[0] applies to buf[0].
    let key = rotate(key, offset);
    if buf.len() < 32 {
        // Short payloads (most messages): four bytes at a time.
        let k32 = u32::from_ne_bytes(key);
        let mut words = buf.chunks_exact_mut(4);
        for word in &mut words {
            let w = u32::from_ne_bytes(word.try_into().unwrap_or([0; 4])) ^ k32;
            word.copy_from_slice(&w.to_ne_bytes());
        }
        // The rest starts at a multiple of 4: the key's phase is 0.
        return apply_mask_bytes(words.into_remainder(), key, 0);
    }
    let k64 = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    // Process 32-byte blocks as four u64 words: whole-block XOR with a
    // repeated key pattern. Block length is a multiple of 4, so the key
    // phase is the same at the start of every block.
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        for word in block.chunks_exact_mut(8) {
            let w = u64::from_ne_bytes(word.try_into().unwrap_or([0; 8])) ^ k64;
            word.copy_from_slice(&w.to_ne_bytes());
        }
    }
    apply_mask_bytes(blocks.into_remainder(), key, 0);
}

/// The plain byte-by-byte reference implementation of [`apply_mask`].
#[inline]
pub fn apply_mask_bytes(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // Rotate rather than index with `i + offset`: that sum overflows (a
    // panic in debug builds) for offsets near `usize::MAX`.
    let key = rotate(key, offset);
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

#[inline]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    let o = offset & 3;
    [key[o], key[(o + 1) & 3], key[(o + 2) & 3], key[(o + 3) & 3]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fast_equals_bytes(data in proptest::collection::vec(any::<u8>(), 0..300),
                             key in any::<[u8; 4]>(), offset in 0usize..16, start in 0usize..8) {
            let start = start.min(data.len());
            let mut a = data.clone();
            let mut b = data.clone();
            apply_mask(&mut a[start..], key, offset);
            apply_mask_bytes(&mut b[start..], key, offset);
            prop_assert_eq!(a, b);
        }

        #[test]
        fn split_resume_equals_whole(data in proptest::collection::vec(any::<u8>(), 0..200),
                                     key in any::<[u8; 4]>(), cut in 0usize..200) {
            let cut = cut.min(data.len());
            let mut whole = data.clone();
            apply_mask(&mut whole, key, 0);
            let mut parts = data.clone();
            let (x, y) = parts.split_at_mut(cut);
            apply_mask(x, key, 0);
            apply_mask(y, key, cut);
            prop_assert_eq!(whole, parts);
        }
    }

    #[test]
    fn large_buffers_all_alignments() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        for start in 0..9 {
            for offset in 0..4 {
                let mut a = data.clone();
                let mut b = data.clone();
                apply_mask(&mut a[start..], [1, 2, 3, 4], offset);
                apply_mask_bytes(&mut b[start..], [1, 2, 3, 4], offset);
                assert_eq!(a, b, "start {start} offset {offset}");
            }
        }
    }
}
