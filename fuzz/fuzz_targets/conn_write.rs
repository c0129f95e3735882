//! Frame scripts written through a server-role `Conn` or its split
//! `WriteHalf` into `ChaosIo` (random partial, one-byte and stalled writes;
//! vectored or first-slice-only), under a fuzzed vectored threshold and
//! write high-water mark. The captured bytes must decode (client role, no
//! limits) to exactly the frames written, in order, with nothing after
//! them; any write error, difference or leftover panics. The stream, the
//! script and the check are `tests/conn_support/{chaos_io,write_script}.rs`,
//! shared with `tests/conn_write_prop.rs`.
//!
//! Byte layout (little-endian; a truncated op at the end is dropped):
//!
//! | bytes | meaning |
//! |---|---|
//! | 0 | flags: bit 0 split (`WriteHalf`), bit 1 vectored stream, bit 2 adds 1 to the threshold |
//! | 1-2 | `vectored_threshold` (0..=65535, +1 with flag bit 2) |
//! | 3-4 | `write_buffer_high_water` = 1024 + 256 * v |
//! | 5, 6, 7 | chances out of 256: `Pending` (byte / 2), a one-byte write, a full write |
//! | 8-9, 10 | `max_chunk` = (v + 1) << (byte 10 % 16) |
//! | 11-14 | stream seed |
//! | 15.. | ops, each an op byte `b` (`b & 7`, modulo 6, picks it) then its arguments |
//!
//! A length `L` is 3 bytes: u16 `v` and a shift `s`, `v << (s % 4)`
//! (payloads are capped at 200 KiB, control payloads at 125, and the whole
//! script at 1 MiB of payload, 256 KiB when `max_chunk` < 64).
//!
//! | `b & 7` | op | bits of `b` | arguments |
//! |---|---|---|---|
//! | 0 | one frame | 3-4 kind (text, binary, ping, pong), 5 `write_frame` | `L` |
//! | 1 | message | 3 text, 4-5 how (feed, `send_message`, `send_text`/`send_binary`) | `L` |
//! | 2 | fragmented | 3 text, 4 `send_fragmented`, 5 `write_frame` each, 6 interleaved ping | `L`, u16 fragment size, [ping position byte] |
//! | 3 | `feed_encoded` | 3-5 frame count - 1 | per frame: kind byte (% 4), `L` |
//! | 4 | ping | | length byte |
//! | 5 | flush | | |
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtwire_fuzz::chaos_io::ChaosConfig;
use rtwire_fuzz::write_script::{build, run_case, Case, Kind, MsgHow, OpSpec, Target};

/// Payload bytes per script; a quarter of it when writes are small, so
/// one-byte streams stay fast (and far from the 30 s write timeout).
const BUDGET: usize = 1 << 20;
const SMALL_WRITES_BUDGET: usize = 256 << 10;
const HEADER: usize = 15;

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }
    fn len(&mut self) -> Option<usize> {
        let v = usize::from(self.u16()?);
        Some(v << (self.u8()? % 4))
    }
}

fn kind(k: u8) -> Kind {
    match k % 4 {
        0 => Kind::Text,
        1 => Kind::Binary,
        2 => Kind::Ping,
        _ => Kind::Pong,
    }
}

fn op(r: &mut Reader<'_>) -> Option<OpSpec> {
    let b = r.u8()?;
    let bit = |n: u8| b & (1 << n) != 0;
    Some(match (b & 7) % 6 {
        0 => OpSpec::Frame {
            kind: kind(b >> 3),
            write: bit(5),
            len: r.len()?,
        },
        1 => OpSpec::Message {
            text: bit(3),
            how: match (b >> 4) & 3 {
                0 => MsgHow::Feed,
                1 => MsgHow::SendMessage,
                2 => MsgHow::SendTyped,
                _ => MsgHow::Copied,
            },
            len: r.len()?,
        },
        2 => OpSpec::Fragmented {
            text: bit(3),
            send_fragmented: bit(4),
            write: bit(5),
            len: r.len()?,
            frame_size: usize::from(r.u16()?),
            ping_after: if bit(6) {
                Some(usize::from(r.u8()?))
            } else {
                None
            },
        },
        3 => {
            let n = usize::from((b >> 3) & 7) + 1;
            let mut frames = Vec::with_capacity(n);
            for _ in 0..n {
                let k = kind(r.u8()?);
                frames.push((k, r.len()?));
            }
            OpSpec::Encoded { frames }
        }
        4 => OpSpec::Ping {
            len: usize::from(r.u8()?),
        },
        _ => OpSpec::Flush,
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER {
        return;
    }
    let (h, rest) = data.split_at(HEADER);
    let le16 = |i: usize| usize::from(u16::from_le_bytes([h[i], h[i + 1]]));
    let chaos = ChaosConfig {
        seed: u64::from(u32::from_le_bytes([h[11], h[12], h[13], h[14]])),
        vectored: h[0] & 2 != 0,
        // At most one call in two stalls: a stream stalling on nearly
        // every call turns a large script into a false write timeout.
        pending_per_256: h[5] / 2,
        one_byte_per_256: h[6],
        full_per_256: h[7],
        max_chunk: (le16(8) + 1) << (h[10] % 16),
    };
    let mut r = Reader(rest);
    let mut specs = Vec::new();
    while let Some(s) = op(&mut r) {
        specs.push(s);
    }
    let budget = if chaos.max_chunk < 64 {
        SMALL_WRITES_BUDGET
    } else {
        BUDGET
    };
    let case = Case {
        ops: build(&specs, budget),
        vectored_threshold: le16(1) + usize::from(h[0] & 4 != 0),
        high_water: 1024 + 256 * le16(3),
        chaos,
        target: if h[0] & 1 != 0 {
            Target::Split
        } else {
            Target::Conn
        },
    };
    if let Err(e) = run_case(&case) {
        panic!(
            "{e}\nthreshold {} high water {} target {:?} {:?}\nops: {specs:?}",
            case.vectored_threshold, case.high_water, case.target, case.chaos
        );
    }
});
