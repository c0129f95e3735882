//! Helpers shared by the fuzz targets.

use bytes::BytesMut;
use rtwire::http::{HeadError, HeadParser, Limits};

/// Splits `wire` into consecutive chunks whose sizes cycle through `sizes`.
/// A size of 0 yields an empty chunk; when every size is 0 (or there are
/// none) the whole input is one chunk.
pub fn chunks<'a>(wire: &'a [u8], sizes: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let whole = sizes.iter().all(|&s| s == 0);
    let mut pos = 0;
    let mut step = 0;
    std::iter::from_fn(move || {
        if pos == wire.len() && (step > 0 || !wire.is_empty()) {
            return None;
        }
        let size = if whole {
            wire.len()
        } else {
            usize::from(sizes[step % sizes.len()])
        };
        step += 1;
        let end = (pos + size).min(wire.len());
        let chunk = &wire[pos..end];
        pos = end;
        Some(chunk)
    })
}

/// What feeding a head in chunks produced.
#[derive(Debug)]
pub struct HeadRun<T> {
    /// The parse result: a head, an error, or `None` if the input ended
    /// before the head did.
    pub result: Result<Option<T>, HeadError>,
    /// Bytes of the input that followed the head and were already fed.
    pub leftover: BytesMut,
    /// Bytes of the input fed when the parser answered.
    pub fed: usize,
}

/// Feeds `wire` to `parse` chunk by chunk, calling it after every chunk as
/// a connection would, and checks that the end-of-head scan stayed linear.
pub fn parse_head_chunked<T>(
    limits: Limits,
    wire: &[u8],
    sizes: &[u8],
    mut parse: impl FnMut(&mut HeadParser, &mut BytesMut) -> Result<Option<T>, HeadError>,
) -> HeadRun<T> {
    let mut parser = HeadParser::new(limits);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut calls = 0u64;
    for chunk in chunks(wire, sizes) {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        calls += 1;
        let result = parse(&mut parser, &mut buf);
        // Linear time: each byte is scanned once, plus at most one byte
        // (a line feed at the end of the buffer) rescanned per call.
        assert!(
            parser.bytes_scanned() <= fed as u64 + calls,
            "scanned {} bytes of {fed} in {calls} calls",
            parser.bytes_scanned()
        );
        match result {
            Ok(None) => {}
            done => {
                return HeadRun {
                    result: done,
                    leftover: buf,
                    fed,
                }
            }
        }
    }
    HeadRun {
        result: Ok(None),
        leftover: buf,
        fed,
    }
}

/// Checks where a head parsed from `wire`, both whole and chunked, sits in
/// it: after nothing but skipped empty lines (RFC 9112 §2.2), within the
/// head-size limit together with them, and with the bytes that followed it
/// left in each buffer.
pub fn check_head_position<T>(
    limits: Limits,
    wire: &[u8],
    head: &[u8],
    whole: &HeadRun<T>,
    chunked: &HeadRun<T>,
) {
    let start = wire.len() - whole.leftover.len() - head.len();
    let end = start + head.len();
    assert!(wire[..start].iter().all(|&b| b == b'\r' || b == b'\n'));
    assert!(end <= limits.max_head_size);
    assert_eq!(&wire[start..end], head);
    assert_eq!(&chunked.leftover[..], &wire[end..chunked.fed]);
}

/// The chaotic test stream of the `conn_*` integration tests (the same
/// file, so the fuzz target and the property test drive one model).
#[path = "../../tests/conn_support/chaos_io.rs"]
pub mod chaos_io;

/// Frame scripts written through `Conn` / `WriteHalf` and the exact-output
/// check (the same file as `tests/conn_support/write_script.rs`).
#[path = "../../tests/conn_support/write_script.rs"]
pub mod write_script;
