//! Arbitrary bytes into the frame `Decoder`, in both roles, with small
//! limits, fed once whole and once in chunks whose sizes the input chooses.
//!
//! Input layout (so seeds can be written by hand):
//!
//! | byte | meaning                                                       |
//! |------|---------------------------------------------------------------|
//! | 0    | bit 0: client role; bits 1-3: allowed RSV bits                |
//! | 1    | `max_frame_size` = byte * 2                                   |
//! | 2    | `max_message_size` = byte * 4                                 |
//! | 3    | `max_fragments` = byte % 32                                   |
//! | 4    | n = byte % 16: number of chunk sizes that follow              |
//! | 5..  | n chunk sizes (cycled; 0 feeds an empty chunk), then the wire |
//!
//! Invariants besides "no panic": payloads within the limits, control
//! payloads within 125 bytes, bytes consumed never exceed bytes given, the
//! decoder never grows the buffer (no allocation on a declared length), and
//! whole and chunked feeding give the same frames and the same error.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rtwire::ws::{Decoder, Frame, Limits, OpCode, Role};
use rtwire::ProtocolError;

struct Setup {
    role: Role,
    rsv: u8,
    limits: Limits,
}

#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<Frame>,
    error: Option<ProtocolError>,
}

/// Feeds `wire` in chunks of the given sizes (cycled; none = one chunk),
/// draining the decoder after each chunk, and checks the invariants.
fn run(setup: &Setup, wire: &[u8], sizes: &[u8]) -> Outcome {
    let mut dec = Decoder::new(setup.role, setup.limits);
    dec.set_allowed_rsv(setup.rsv);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut arrived = 0usize;
    let mut next = 0usize;
    let mut message_len = 0usize;
    let mut fragments = 0usize;
    let mut step = 0usize;
    let mut payloads = 0usize;
    loop {
        let size = if sizes.is_empty() {
            wire.len()
        } else {
            usize::from(sizes[step % sizes.len()])
        };
        step += 1;
        let end = (next + size).min(wire.len());
        buf.extend_from_slice(&wire[next..end]);
        arrived += end - next;
        next = end;
        loop {
            let cap_before = buf.capacity();
            let res = dec.decode(&mut buf);
            // The decoder only ever splits bytes off the front: it never
            // reserves, whatever length a header declares.
            assert!(buf.capacity() <= cap_before, "decoder grew the buffer");
            assert!(
                buf.capacity() <= 2 * arrived + 64,
                "capacity {} after {arrived} bytes",
                buf.capacity()
            );
            assert!(buf.len() <= arrived);
            match res {
                Ok(Some(f)) => {
                    let limits = &setup.limits;
                    assert!(f.payload.len() <= limits.max_frame_size);
                    if f.opcode.is_control() {
                        assert!(f.fin && f.payload.len() <= 125);
                    } else {
                        if f.opcode != OpCode::Continuation {
                            message_len = 0;
                            fragments = 0;
                        }
                        message_len += f.payload.len();
                        fragments += 1;
                        assert!(message_len <= limits.max_message_size);
                        assert!(fragments == 1 || fragments <= limits.max_fragments);
                    }
                    assert_eq!(f.rsv & !setup.rsv, 0);
                    // Each frame costs at least a 2-byte header.
                    let consumed = arrived - buf.len();
                    payloads += f.payload.len();
                    frames.push(f);
                    assert!(payloads + 2 * frames.len() <= consumed);
                }
                Ok(None) => break,
                Err(e) => {
                    // Failed for good: the same error again.
                    assert_eq!(dec.decode(&mut buf), Err(e.clone()));
                    return Outcome {
                        frames,
                        error: Some(e),
                    };
                }
            }
        }
        if next == wire.len() {
            return Outcome {
                frames,
                error: None,
            };
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, frame, message, fragments, n, rest @ ..] = data else {
        return;
    };
    let n = usize::from(n % 16).min(rest.len());
    let (sizes, wire) = rest.split_at(n);
    // Only empty chunks would never deliver anything: feed it whole.
    let sizes = if sizes.iter().all(|&s| s == 0) {
        &[][..]
    } else {
        sizes
    };
    let setup = Setup {
        role: if flags & 1 == 0 {
            Role::Server
        } else {
            Role::Client
        },
        rsv: (flags >> 1) & 0x7,
        limits: Limits::default()
            .max_frame_size(usize::from(*frame) * 2)
            .max_message_size(usize::from(*message) * 4)
            .max_fragments(usize::from(fragments % 32)),
    };
    let whole = run(&setup, wire, &[]);
    let chunked = run(&setup, wire, sizes);
    assert_eq!(whole, chunked, "whole vs chunked feeding differ");
});
