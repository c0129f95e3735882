//! The incremental UTF-8 validator against `std::str::from_utf8`, for
//! arbitrary bytes split at arbitrary points: the same verdict, and the
//! failing `feed` is exactly the one that delivers the first bad byte.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rtwire::ws::Utf8Validator;

#[derive(Arbitrary, Debug)]
struct Input {
    cuts: Vec<u16>,
    data: Vec<u8>,
}

/// The index of the first byte after which `data` is no longer a prefix of
/// any valid UTF-8, if there is one.
fn first_bad_byte(data: &[u8]) -> Option<usize> {
    let e = std::str::from_utf8(data).err()?;
    e.error_len()?;
    // The bad byte is within a maximal sequence (at most 4 bytes) of the
    // first invalid position.
    (e.valid_up_to()..data.len())
        .find(|&i| matches!(std::str::from_utf8(&data[..=i]), Err(e) if e.error_len().is_some()))
}

fuzz_target!(|input: Input| {
    let data = &input.data;
    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|&c| usize::from(c).min(data.len()))
        .collect();
    cuts.sort_unstable();
    cuts.push(data.len());

    let bad = first_bad_byte(data);
    let mut v = Utf8Validator::new();
    let mut pos = 0;
    let mut failed_chunk = None;
    for &c in &cuts {
        if v.feed(&data[pos..c]).is_err() {
            failed_chunk = Some((pos, c));
            break;
        }
        pos = c;
    }
    match (bad, failed_chunk) {
        (Some(b), Some((from, to))) => {
            assert!(
                from <= b && b < to,
                "bad byte {b} reported in chunk {from}..{to}"
            )
        }
        (None, None) => {
            let valid = std::str::from_utf8(data).is_ok();
            assert_eq!(v.is_incomplete(), !valid);
            assert_eq!(v.finish().is_ok(), valid);
            // finish() resets: the validator is ready for the next text.
            assert!(v.feed("é".as_bytes()).is_ok() && v.finish().is_ok());
        }
        (b, f) => panic!("first bad byte {b:?}, failing chunk {f:?}"),
    }
});
