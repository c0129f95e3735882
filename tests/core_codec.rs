//! The sans-IO frame codec: round trips in every chunking, protocol rules
//! with their close codes, limits, no allocation on declared lengths,
//! fail-fast UTF-8, and the encoder.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use rtwire::ws::{
    apply_mask_bytes, CloseCode, Decoder, Encoder, Frame, FrameHeader, Limits, OpCode, Role,
};
use rtwire::ProtocolError;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const LENGTHS: [usize; 7] = [0, 1, 125, 126, 127, 65535, 65536];

/// Builds a frame by hand (independently of the encoder): first byte `b0`
/// (FIN, RSV, opcode), minimal length encoding, optional mask.
fn wire(b0: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![b0];
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=65535 => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let start = out.len();
    if let Some(k) = mask {
        out.extend_from_slice(&k);
    }
    let start = start + mask.map_or(0, |_| 4);
    out.extend_from_slice(payload);
    if let Some(k) = mask {
        apply_mask_bytes(&mut out[start..], k, 0);
    }
    out
}

/// A frame as a client sends it (masked): what a server decoder accepts.
fn client(b0: u8, payload: &[u8]) -> Vec<u8> {
    wire(b0, payload, Some(KEY))
}

/// Decodes `bytes` whole until an error or until more bytes are needed.
fn decode_all(dec: &mut Decoder, bytes: &[u8]) -> (Vec<Frame>, Option<ProtocolError>) {
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e)),
        }
    }
}

fn server() -> Decoder {
    Decoder::new(Role::Server, Limits::default())
}

/// Asserts that `bytes` fail a fresh server decoder with `err` and `code`,
/// and that the decoder stays failed.
#[track_caller]
fn rejects(mut dec: Decoder, bytes: &[u8], err: ProtocolError, code: u16) {
    let (_, got) = decode_all(&mut dec, bytes);
    assert_eq!(got.as_ref(), Some(&err), "wire {bytes:02x?}");
    assert_eq!(err.close_code(), CloseCode(code), "{err:?}");
    assert_eq!(
        dec.decode(&mut BytesMut::from(&b"\x81\x80\0\0\0\0"[..])),
        Err(err)
    );
}

fn text_payload(n: usize) -> Bytes {
    // Multi-byte characters where the length allows, ASCII to fill.
    let mut s = String::with_capacity(n);
    let chars = ['é', '€', '𝄞', 'a'];
    let mut i = 0;
    while s.len() < n {
        let c = chars[i % chars.len()];
        if s.len() + c.len_utf8() <= n {
            s.push(c);
        } else {
            s.push('z');
        }
        i += 1;
    }
    Bytes::from(s)
}

fn binary_payload(n: usize) -> Bytes {
    (0..n)
        .map(|i| (i * 31 + 7) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Every frame shape, each as a short valid conversation: single text and
/// binary frames, fragmented messages whose continuation has each length,
/// control frames (also between fragments), with and without RSV bits.
fn conversations() -> Vec<Vec<Frame>> {
    let mut all = Vec::new();
    for &n in &LENGTHS {
        for rsv in [0, 0b101] {
            let mut text = Frame::new(OpCode::Text, text_payload(n));
            text.rsv = rsv;
            let mut bin = Frame::new(OpCode::Binary, binary_payload(n));
            bin.rsv = rsv;
            all.push(vec![text]);
            all.push(vec![bin]);
        }
        all.push(vec![
            Frame::new(OpCode::Binary, binary_payload(3)).with_fin(false),
            Frame::new(OpCode::Continuation, binary_payload(n)).with_fin(false),
            Frame::ping(binary_payload(n.min(125))),
            Frame::new(OpCode::Continuation, binary_payload(n)),
        ]);
        all.push(vec![
            Frame::new(OpCode::Text, text_payload(n)).with_fin(false),
            Frame::pong(binary_payload(n.min(125))),
            Frame::new(OpCode::Continuation, text_payload(n)),
        ]);
    }
    for n in [0, 1, 125] {
        all.push(vec![Frame::ping(binary_payload(n))]);
        all.push(vec![Frame::pong(binary_payload(n))]);
    }
    all.push(vec![Frame::close_empty()]);
    all.push(vec![Frame::close(CloseCode::NORMAL, "")]);
    all.push(vec![Frame::close(CloseCode(4999), &"é".repeat(61))]); // 2 + 122 bytes
    all.push(vec![Frame::close(CloseCode::GOING_AWAY, &"x".repeat(123))]); // 125 bytes
    all
}

/// Encodes `frames` in role `tx` and decodes them in the other role, the
/// wire cut at `cuts` (sorted offsets; empty feeds it whole).
fn round_trip(tx: Role, frames: &[Frame], cuts: impl IntoIterator<Item = usize>) -> Vec<Frame> {
    let mut enc = Encoder::new(tx);
    let mut bytes = BytesMut::new();
    for f in frames {
        enc.encode(f, &mut bytes);
    }
    let rx = match tx {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let mut dec = Decoder::new(rx, Limits::default());
    dec.set_allowed_rsv(0b111);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut pos = 0;
    for end in cuts.into_iter().chain(std::iter::once(bytes.len())) {
        let end = end.clamp(pos, bytes.len());
        buf.extend_from_slice(&bytes[pos..end]);
        pos = end;
        while let Some(f) = dec.decode(&mut buf).expect("valid frames") {
            got.push(f);
        }
    }
    assert!(buf.is_empty());
    assert_eq!(dec.remaining(), 0);
    assert!(!dec.in_message());
    got
}

fn encoded_len(tx: Role, frames: &[Frame]) -> usize {
    let mut out = BytesMut::new();
    let mut enc = Encoder::new(tx);
    frames.iter().for_each(|f| enc.encode(f, &mut out));
    out.len()
}

#[test]
fn round_trip_every_shape_whole() {
    for frames in conversations() {
        for tx in [Role::Client, Role::Server] {
            assert_eq!(round_trip(tx, &frames, []), frames, "{tx:?}");
        }
    }
}

#[test]
fn round_trip_every_shape_one_byte_at_a_time() {
    for frames in conversations() {
        for tx in [Role::Client, Role::Server] {
            let len = encoded_len(tx, &frames);
            assert_eq!(round_trip(tx, &frames, 1..len), frames, "{tx:?}");
        }
    }
}

#[test]
fn round_trip_small_frames_every_two_piece_split() {
    for frames in conversations() {
        for tx in [Role::Client, Role::Server] {
            let len = encoded_len(tx, &frames);
            if len > 600 {
                continue;
            }
            for cut in 0..=len {
                assert_eq!(round_trip(tx, &frames, [cut]), frames, "{tx:?} cut {cut}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn round_trip_random_splits(
        which in any::<prop::sample::Index>(),
        client_tx in any::<bool>(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let all = conversations();
        let frames = &all[which.index(all.len())];
        let tx = if client_tx { Role::Client } else { Role::Server };
        let len = encoded_len(tx, frames);
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(len + 1)).collect();
        cuts.sort_unstable();
        prop_assert_eq!(&round_trip(tx, frames, cuts), frames);
    }

    /// Arbitrary bytes never panic the decoder, in either role, with small
    /// limits, however they are chunked; an error is sticky.
    #[test]
    fn decoder_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        client_role in any::<bool>(),
        rsv in 0u8..8,
        frame in 0usize..300,
        message in 0usize..600,
        fragments in 0usize..8,
        mut cuts in proptest::collection::vec(0usize..600, 0..10),
    ) {
        let role = if client_role { Role::Client } else { Role::Server };
        let limits = Limits::default().max_frame_size(frame).max_message_size(message).max_fragments(fragments);
        let mut dec = Decoder::new(role, limits);
        dec.set_allowed_rsv(rsv);
        cuts.sort_unstable();
        let mut buf = BytesMut::new();
        let mut pos = 0;
        'feed: for end in cuts.into_iter().chain(std::iter::once(bytes.len())) {
            let end = end.clamp(pos, bytes.len());
            buf.extend_from_slice(&bytes[pos..end]);
            pos = end;
            loop {
                match dec.decode(&mut buf) {
                    Ok(Some(f)) => {
                        prop_assert!(f.payload.len() <= frame);
                        prop_assert!(!f.opcode.is_control() || f.payload.len() <= 125);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        prop_assert_eq!(dec.decode(&mut buf), Err(e));
                        break 'feed;
                    }
                }
            }
        }
    }
}

#[test]
fn mask_bit_must_match_the_role() {
    rejects(
        server(),
        &wire(0x81, b"Hello", None),
        ProtocolError::UnmaskedFrame,
        1002,
    );
    let client_dec = Decoder::new(Role::Client, Limits::default());
    rejects(
        client_dec,
        &client(0x81, b"Hello"),
        ProtocolError::MaskedFrame,
        1002,
    );
}

#[test]
fn rsv_bits_need_an_extension() {
    for rsv in 1..8u8 {
        rejects(
            server(),
            &client(0x82 | rsv << 4, b"x"),
            ProtocolError::ReservedBits(rsv),
            1002,
        );
    }
    // Allowed once an extension negotiated them (RSV1 = 0b100), and only those.
    let mut dec = server();
    dec.set_allowed_rsv(0b100);
    let (frames, err) = decode_all(&mut dec, &client(0xC2, b"x"));
    assert_eq!((frames[0].rsv, err), (0b100, None));
    let mut dec = server();
    dec.set_allowed_rsv(0b100);
    rejects(
        dec,
        &client(0xE2, b"x"),
        ProtocolError::ReservedBits(0b110),
        1002,
    );
}

#[test]
fn reserved_opcodes() {
    for op in (3..=7).chain(0xB..=0xF) {
        rejects(
            server(),
            &client(0x80 | op, b""),
            ProtocolError::ReservedOpcode(op),
            1002,
        );
        // Already on the first two bytes.
        assert_eq!(
            FrameHeader::parse(&[0x80 | op, 0x80]),
            Err(ProtocolError::ReservedOpcode(op))
        );
    }
}

#[test]
fn control_frames_must_be_final_and_short() {
    for op in [0x8, 0x9, 0xA] {
        rejects(
            server(),
            &client(op, b""),
            ProtocolError::FragmentedControl,
            1002,
        );
        let long = vec![0u8; 126];
        let (_, err) = decode_all(&mut server(), &client(0x80 | op, &long));
        let err = err.expect("control frame over 125 bytes");
        assert!(matches!(err, ProtocolError::ControlTooLong(_)), "{err:?}");
        assert_eq!(err.close_code(), CloseCode::PROTOCOL_ERROR);
        // 125 is fine (a ping; a close needs a valid code).
        if op != 0x8 {
            let (frames, err) = decode_all(&mut server(), &client(0x80 | op, &[0u8; 125]));
            assert_eq!((frames.len(), err), (1, None));
        }
    }
}

#[test]
fn lengths_must_be_minimal_and_63_bit() {
    // 5 in the 16-bit form, 125 in the 16-bit form, 65535 and 0 in the 64-bit form.
    let cases: [&[u8]; 4] = [
        &[0x82, 0xFE, 0x00, 0x05],
        &[0x82, 0xFE, 0x00, 0x7D],
        &[0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF],
        &[0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0],
    ];
    for c in cases {
        let mut bytes = c.to_vec();
        bytes.extend_from_slice(&KEY);
        rejects(server(), &bytes, ProtocolError::NonMinimalLength, 1002);
    }
    let mut top = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
    top.extend_from_slice(&KEY);
    rejects(server(), &top, ProtocolError::LengthOverflow, 1002);
    let mut all = vec![0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    all.extend_from_slice(&KEY);
    rejects(server(), &all, ProtocolError::LengthOverflow, 1002);
    // The smallest of each form is accepted.
    for n in [126usize, 65536] {
        let (frames, err) = decode_all(&mut server(), &client(0x82, &vec![1u8; n]));
        assert_eq!((frames[0].payload.len(), err), (n, None));
    }
}

#[test]
fn close_payload_rules() {
    rejects(
        server(),
        &client(0x88, &[0x03]),
        ProtocolError::InvalidClosePayload,
        1002,
    );
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let payload = code.to_be_bytes();
        rejects(
            server(),
            &client(0x88, &payload),
            ProtocolError::InvalidCloseCode(code),
            1002,
        );
    }
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ] {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice("bye ✓".as_bytes());
        let (frames, err) = decode_all(&mut server(), &client(0x88, &payload));
        assert_eq!(err, None, "code {code}");
        let cf = rtwire::ws::parse_close_payload(&frames[0].payload)
            .unwrap()
            .unwrap();
        assert_eq!((cf.code, cf.reason_str()), (CloseCode(code), "bye ✓"));
    }
    // Empty close: no status.
    let (frames, err) = decode_all(&mut server(), &client(0x88, b""));
    assert_eq!((frames.len(), err), (1, None));
    rejects(
        server(),
        &client(0x88, b"\x03\xe8bad \xff"),
        ProtocolError::InvalidUtf8,
        1007,
    );
    rejects(
        server(),
        &client(0x88, b"\x03\xe8cut \xe2\x82"),
        ProtocolError::InvalidUtf8,
        1007,
    );
}

#[test]
fn fragmentation_rules() {
    rejects(
        server(),
        &client(0x80, b"lo"),
        ProtocolError::UnexpectedContinuation,
        1002,
    );
    rejects(
        server(),
        &client(0x00, b"lo"),
        ProtocolError::UnexpectedContinuation,
        1002,
    );
    for op in [0x81, 0x82, 0x01, 0x02] {
        let bytes = [client(0x01, b"Hel"), client(op, b"lo")].concat();
        rejects(server(), &bytes, ProtocolError::ExpectedContinuation, 1002);
    }
    // A continuation after a finished message is unexpected again.
    let bytes = [
        client(0x01, b"Hel"),
        client(0x80, b"lo"),
        client(0x80, b"!"),
    ]
    .concat();
    rejects(
        server(),
        &bytes,
        ProtocolError::UnexpectedContinuation,
        1002,
    );
}

#[test]
fn control_frames_between_fragments_are_fine() {
    let bytes = [
        client(0x01, "h\u{e9}".as_bytes()),
        client(0x89, b"ping"),
        client(0x00, b"l"),
        client(0x8A, b"pong"),
        client(0x88, b"\x03\xe8"),
        client(0x80, b"lo"),
    ]
    .concat();
    let (frames, err) = decode_all(&mut server(), &bytes);
    assert_eq!(err, None);
    let ops: Vec<OpCode> = frames.iter().map(|f| f.opcode).collect();
    use OpCode::*;
    assert_eq!(ops, [Text, Ping, Continuation, Pong, Close, Continuation]);
    let text: Vec<u8> = frames
        .iter()
        .filter(|f| !f.opcode.is_control())
        .flat_map(|f| f.payload.to_vec())
        .collect();
    assert_eq!(text, "héllo".as_bytes());
}

fn limited(frame: usize, message: usize, fragments: usize) -> Decoder {
    Decoder::new(
        Role::Server,
        Limits::default()
            .max_frame_size(frame)
            .max_message_size(message)
            .max_fragments(fragments),
    )
}

#[test]
fn frame_size_limit_is_1009_on_the_header_alone() {
    let (frames, err) = decode_all(&mut limited(10, 100, 10), &client(0x82, &[0; 10]));
    assert_eq!((frames.len(), err), (1, None));
    let header_only = &client(0x82, &[0; 11])[..6];
    rejects(
        limited(10, 100, 10),
        header_only,
        ProtocolError::FrameTooLarge { size: 11, max: 10 },
        1009,
    );
    // The same for control frames.
    rejects(
        limited(10, 100, 10),
        &client(0x89, &[0; 11])[..6],
        ProtocolError::FrameTooLarge { size: 11, max: 10 },
        1009,
    );
}

#[test]
fn message_size_limit_is_1009() {
    let ok = [client(0x01, b"123456"), client(0x80, b"7890")].concat();
    let (frames, err) = decode_all(&mut limited(10, 10, 10), &ok);
    assert_eq!((frames.len(), err), (2, None));
    let over = [
        client(0x01, b"123456"),
        client(0x00, b"7890"),
        client(0x80, b"1"),
    ]
    .concat();
    rejects(
        limited(10, 10, 10),
        &over,
        ProtocolError::MessageTooLarge { max: 10 },
        1009,
    );
    // A single frame over the message limit, within the frame limit.
    rejects(
        limited(100, 10, 10),
        &client(0x82, &[0; 11])[..6],
        ProtocolError::MessageTooLarge { max: 10 },
        1009,
    );
}

#[test]
fn fragment_count_limit_is_1009() {
    let three = [client(0x02, b"a"), client(0x00, b""), client(0x80, b"c")].concat();
    let (frames, err) = decode_all(&mut limited(10, 10, 3), &three);
    assert_eq!((frames.len(), err), (3, None));
    // A flood of empty continuations ends with 1009.
    let mut flood = client(0x02, b"a");
    for _ in 0..3 {
        flood.extend_from_slice(&client(0x00, b""));
    }
    rejects(
        limited(10, 10, 3),
        &flood,
        ProtocolError::TooManyFragments { max: 3 },
        1009,
    );
}

/// A header declaring 2^62 bytes, with no limits, must not make the decoder
/// reserve memory: it waits for bytes as they arrive.
#[test]
fn never_allocates_on_a_declared_length() {
    let declared: u64 = 1 << 62;
    for role in [Role::Server, Role::Client] {
        let mut bytes = vec![0x82, 0x7F];
        bytes.extend_from_slice(&declared.to_be_bytes());
        if role == Role::Server {
            bytes[1] |= 0x80;
            bytes.extend_from_slice(&KEY);
        }
        bytes.extend_from_slice(b"abc");
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(&bytes);
        let cap = buf.capacity();
        let mut dec = Decoder::new(role, Limits::unlimited());
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert!(
            buf.capacity() <= cap,
            "{role:?}: capacity grew to {}",
            buf.capacity()
        );
        assert_eq!(buf.len(), 3, "{role:?}: header consumed, payload kept");
        assert_eq!(dec.remaining() as u64, declared - 3);
        // More bytes: still nothing reserved beyond what arrived.
        buf.extend_from_slice(&[0u8; 100]);
        let cap = buf.capacity();
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert!(buf.capacity() <= cap);
        assert_eq!(dec.remaining() as u64, declared - 103);
    }
}

/// Feeds `bytes` to a server decoder one byte at a time and returns the index
/// of the byte whose call failed, with the error.
fn first_failing_byte(bytes: &[u8]) -> Option<(usize, ProtocolError)> {
    let mut dec = server();
    let mut buf = BytesMut::new();
    for (i, b) in bytes.iter().enumerate() {
        buf.extend_from_slice(std::slice::from_ref(b));
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) => return Some((i, e)),
            }
        }
    }
    None
}

#[test]
fn utf8_fails_on_the_first_bad_byte_mid_frame() {
    // "héllo" then 0xFF then 20 more bytes: the frame is far from complete.
    let mut text = "héllo".as_bytes().to_vec();
    let bad_at = text.len();
    text.push(0xFF);
    text.extend_from_slice(&[b'a'; 20]);
    let bytes = client(0x81, &text);
    let header = 6;
    assert_eq!(
        first_failing_byte(&bytes),
        Some((header + bad_at, ProtocolError::InvalidUtf8))
    );
    assert_eq!(
        ProtocolError::InvalidUtf8.close_code(),
        CloseCode::INVALID_PAYLOAD
    );

    // A code point cut short by a non-continuation byte fails on that byte.
    let bytes = client(0x81, b"ab\xe2\x82Xcdef");
    assert_eq!(
        first_failing_byte(&bytes),
        Some((6 + 4, ProtocolError::InvalidUtf8))
    );
    // Impossible second byte (> U+10FFFF).
    let bytes = client(0x81, b"ok\xf4\x90\x80\x80 and more");
    assert_eq!(
        first_failing_byte(&bytes),
        Some((6 + 3, ProtocolError::InvalidUtf8))
    );
    // Binary frames are not checked.
    assert_eq!(first_failing_byte(&client(0x82, b"\xff\xfe")), None);
}

#[test]
fn utf8_fails_on_the_first_bad_byte_in_a_later_fragment() {
    let first = client(0x01, "abc€".as_bytes());
    let ping = client(0x89, b"\xff not text");
    let second = client(0x00, b"ok\xc0\xafrest");
    let bytes = [first.clone(), ping.clone(), second, client(0x80, b"!")].concat();
    let at = first.len() + ping.len() + 6 + 2;
    assert_eq!(
        first_failing_byte(&bytes),
        Some((at, ProtocolError::InvalidUtf8))
    );
}

#[test]
fn utf8_code_point_split_across_fragments_is_fine() {
    let clef = "𝄞".as_bytes(); // 4 bytes
    let bytes = [
        client(0x01, &[b'h', clef[0]]),
        client(0x00, &clef[1..2]),
        client(0x89, b"ping"),
        client(0x00, &clef[2..3]),
        client(0x80, &[clef[3], b'!']),
    ]
    .concat();
    let (frames, err) = decode_all(&mut server(), &bytes);
    assert_eq!(err, None);
    assert_eq!(first_failing_byte(&bytes), None);
    let text: Vec<u8> = frames
        .iter()
        .filter(|f| !f.opcode.is_control())
        .flat_map(|f| f.payload.to_vec())
        .collect();
    assert_eq!(text, "h𝄞!".as_bytes());
}

#[test]
fn utf8_incomplete_code_point_at_end_of_message_is_1007() {
    // Single final frame.
    rejects(
        server(),
        &client(0x81, b"ab\xe2\x82"),
        ProtocolError::InvalidUtf8,
        1007,
    );
    // Final fragment of a fragmented message.
    let bytes = [client(0x01, b"ab"), client(0x80, b"c\xf0\x9f\x98")].concat();
    rejects(server(), &bytes, ProtocolError::InvalidUtf8, 1007);
    // Fails when the final frame completes, not before.
    let frame = client(0x81, b"ab\xe2\x82");
    assert_eq!(
        first_failing_byte(&frame),
        Some((frame.len() - 1, ProtocolError::InvalidUtf8))
    );
}

#[test]
fn client_encoder_masks_with_a_fresh_key_per_frame() {
    let mut enc = Encoder::new(Role::Client);
    let frame = Frame::binary(vec![0u8; 8]);
    let mut keys = std::collections::HashSet::new();
    for _ in 0..32 {
        let mut out = BytesMut::new();
        enc.encode(&frame, &mut out);
        let (h, n) = FrameHeader::parse(&out).unwrap().unwrap();
        let key = h.mask.expect("client frames are masked");
        // A zero payload masked is the key repeated.
        assert_eq!(&out[n..], [key, key].concat());
        keys.insert(key);
    }
    assert_eq!(keys.len(), 32, "masking keys repeat");
    // Two encoders do not share a key sequence.
    let mut a = BytesMut::new();
    let mut b = BytesMut::new();
    Encoder::new(Role::Client).encode(&frame, &mut a);
    Encoder::new(Role::Client).encode(&frame, &mut b);
    assert_ne!(a, b);
}

#[test]
fn server_encoder_does_not_mask() {
    let mut enc = Encoder::new(Role::Server);
    for n in LENGTHS {
        let frame = Frame::binary(binary_payload(n));
        let mut out = BytesMut::new();
        enc.encode(&frame, &mut out);
        let (h, hlen) = FrameHeader::parse(&out).unwrap().unwrap();
        assert_eq!(h.mask, None);
        assert_eq!(&out[hlen..], &frame.payload[..]);
    }
}

#[test]
fn vectored_header_plus_payload_equals_encode() {
    let mut frames = vec![Frame::close(CloseCode::NORMAL, "bye"), Frame::ping("p")];
    for n in LENGTHS {
        frames.push(Frame::new(OpCode::Text, text_payload(n)).with_fin(n % 2 == 0));
        let mut f = Frame::binary(binary_payload(n));
        f.rsv = 0b100;
        frames.push(f);
    }
    let mut enc = Encoder::new(Role::Server);
    for f in &frames {
        let mut whole = BytesMut::new();
        enc.encode(f, &mut whole);
        let mut vectored = BytesMut::new();
        assert!(enc.encode_header_for_vectored(f, &mut vectored));
        assert!(vectored.len() <= rtwire::ws::MAX_HEADER_LEN);
        vectored.extend_from_slice(&f.payload);
        assert_eq!(vectored, whole);
    }
    // The client must mask: nothing is written.
    let mut out = BytesMut::new();
    assert!(!Encoder::new(Role::Client).encode_header_for_vectored(&frames[0], &mut out));
    assert!(out.is_empty());
}
