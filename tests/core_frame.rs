//! RFC 6455 §5.7 examples as exact byte vectors, through `FrameHeader`,
//! `Encoder` and `Decoder`.

use bytes::BytesMut;
use rtwire::ws::{
    apply_mask, Decoder, Encoder, Frame, FrameHeader, Limits, OpCode, Role, MAX_HEADER_LEN,
};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

// RFC 6455 §5.7, verbatim.
const HELLO_UNMASKED: &[u8] = &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
const HELLO_MASKED: &[u8] = &[
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
const HEL: &[u8] = &[0x01, 0x03, 0x48, 0x65, 0x6c];
const LO: &[u8] = &[0x80, 0x02, 0x6c, 0x6f];
const PING_UNMASKED: &[u8] = &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
const PONG_MASKED: &[u8] = &[
    0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
const BINARY_256_HEADER: &[u8] = &[0x82, 0x7E, 0x01, 0x00];
const BINARY_64K_HEADER: &[u8] = &[0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];

fn server_encode(frame: &Frame) -> Vec<u8> {
    let mut out = BytesMut::new();
    Encoder::new(Role::Server).encode(frame, &mut out);
    out.to_vec()
}

/// Encodes a masked frame with the given key, as a client would (the
/// `Encoder` picks its own keys, so build it from the header API).
fn masked(frame: &Frame, key: [u8; 4]) -> Vec<u8> {
    let h = FrameHeader {
        fin: frame.fin,
        rsv: frame.rsv,
        opcode: frame.opcode,
        mask: Some(key),
        payload_len: frame.payload.len() as u64,
    };
    let mut hdr = [0u8; MAX_HEADER_LEN];
    let n = h.encode(&mut hdr);
    let mut out = hdr[..n].to_vec();
    let start = out.len();
    out.extend_from_slice(&frame.payload);
    apply_mask(&mut out[start..], key, 0);
    out
}

fn decode_one(role: Role, wire: &[u8]) -> Frame {
    let mut buf = BytesMut::from(wire);
    let f = Decoder::new(role, Limits::default())
        .decode(&mut buf)
        .unwrap()
        .expect("complete frame");
    assert!(buf.is_empty());
    f
}

#[test]
fn rfc_single_frame_unmasked_text() {
    assert_eq!(server_encode(&Frame::text("Hello")), HELLO_UNMASKED);
    assert_eq!(
        decode_one(Role::Client, HELLO_UNMASKED),
        Frame::text("Hello")
    );
    let (h, n) = FrameHeader::parse(HELLO_UNMASKED).unwrap().unwrap();
    assert_eq!(
        (h.fin, h.rsv, h.opcode, h.mask, h.payload_len, n),
        (true, 0, OpCode::Text, None, 5, 2)
    );
}

#[test]
fn rfc_single_frame_masked_text() {
    assert_eq!(masked(&Frame::text("Hello"), KEY), HELLO_MASKED);
    assert_eq!(decode_one(Role::Server, HELLO_MASKED), Frame::text("Hello"));
    let (h, n) = FrameHeader::parse(HELLO_MASKED).unwrap().unwrap();
    assert_eq!((h.mask, h.payload_len, n), (Some(KEY), 5, 6));
}

#[test]
fn rfc_fragmented_unmasked_text() {
    let first = Frame::new(OpCode::Text, "Hel").with_fin(false);
    let last = Frame::new(OpCode::Continuation, "lo");
    assert_eq!(server_encode(&first), HEL);
    assert_eq!(server_encode(&last), LO);
    let mut dec = Decoder::new(Role::Client, Limits::default());
    let mut buf = BytesMut::from(&[HEL, LO].concat()[..]);
    assert_eq!(dec.decode(&mut buf).unwrap(), Some(first));
    assert!(dec.in_message());
    assert_eq!(dec.decode(&mut buf).unwrap(), Some(last));
    assert!(!dec.in_message());
    assert!(buf.is_empty());
}

#[test]
fn rfc_unmasked_ping_and_masked_pong() {
    assert_eq!(server_encode(&Frame::ping("Hello")), PING_UNMASKED);
    assert_eq!(
        decode_one(Role::Client, PING_UNMASKED),
        Frame::ping("Hello")
    );
    assert_eq!(masked(&Frame::pong("Hello"), KEY), PONG_MASKED);
    assert_eq!(decode_one(Role::Server, PONG_MASKED), Frame::pong("Hello"));
}

#[test]
fn rfc_256_byte_binary_header() {
    let payload: Vec<u8> = (0..=255u8).collect();
    let wire = server_encode(&Frame::binary(payload.clone()));
    assert_eq!(&wire[..4], BINARY_256_HEADER);
    assert_eq!(&wire[4..], &payload[..]);
    assert_eq!(decode_one(Role::Client, &wire).payload, payload);
}

#[test]
fn rfc_64k_binary_header() {
    let payload: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let wire = server_encode(&Frame::binary(payload.clone()));
    assert_eq!(&wire[..10], BINARY_64K_HEADER);
    assert_eq!(&wire[10..], &payload[..]);
    assert_eq!(decode_one(Role::Client, &wire).payload, payload);
    let (h, n) = FrameHeader::parse(BINARY_64K_HEADER).unwrap().unwrap();
    assert_eq!((h.payload_len, n, h.encoded_len()), (65536, 10, 10));
}

#[test]
fn header_parse_waits_for_every_header_byte() {
    let mut wire = masked(&Frame::binary(vec![7u8; 70_000]), KEY);
    wire.truncate(14);
    for end in 0..14 {
        assert_eq!(
            FrameHeader::parse(&wire[..end]).unwrap(),
            None,
            "{end} bytes"
        );
    }
    let (h, n) = FrameHeader::parse(&wire).unwrap().unwrap();
    assert_eq!((h.payload_len, h.mask, n), (70_000, Some(KEY), 14));
}

#[test]
fn header_encode_parse_round_trip_at_length_boundaries() {
    for len in [0u64, 1, 125, 126, 127, 65535, 65536, 1 << 32, (1 << 63) - 1] {
        for mask in [None, Some(KEY)] {
            let h = FrameHeader {
                fin: len % 2 == 0,
                rsv: (len % 8) as u8,
                opcode: OpCode::Binary,
                mask,
                payload_len: len,
            };
            let mut out = [0u8; MAX_HEADER_LEN];
            let n = h.encode(&mut out);
            assert_eq!(n, h.encoded_len());
            let expected = match len {
                0..=125 => 2,
                126..=65535 => 4,
                _ => 10,
            } + if mask.is_some() { 4 } else { 0 };
            assert_eq!(n, expected, "len {len}");
            assert_eq!(FrameHeader::parse(&out[..n]).unwrap(), Some((h, n)));
        }
    }
}

#[test]
fn server_encode_matches_the_header_api_for_every_short_frame() {
    // The encoder writes short server frames (payload under 126 bytes)
    // without `FrameHeader`; every bit combination must come out the same.
    let ops = [
        OpCode::Continuation,
        OpCode::Text,
        OpCode::Binary,
        OpCode::Close,
        OpCode::Ping,
        OpCode::Pong,
    ];
    for op in ops {
        for fin in [false, true] {
            for rsv in 0..8u8 {
                for len in [0usize, 1, 2, 15, 16, 100, 124, 125, 126, 127, 300] {
                    let mut f = Frame::new(op, bytes::Bytes::from(vec![0x5a; len])).with_fin(fin);
                    f.rsv = rsv;
                    let h = FrameHeader {
                        fin,
                        rsv,
                        opcode: op,
                        mask: None,
                        payload_len: len as u64,
                    };
                    let mut want = [0u8; MAX_HEADER_LEN];
                    let n = h.encode(&mut want);
                    let mut expected = want[..n].to_vec();
                    expected.extend_from_slice(&f.payload);
                    assert_eq!(
                        server_encode(&f),
                        expected,
                        "{op:?} fin={fin} rsv={rsv} len={len}"
                    );
                }
            }
        }
    }
}
