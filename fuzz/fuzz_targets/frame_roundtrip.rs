//! Arbitrary frame sequences, normalised into a valid conversation,
//! encoded in either role and decoded back by the other role, fed in chunks
//! the input chooses: the decoded frames equal the encoded ones.
#![no_main]

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use rtwire::ws::{CloseCode, Decoder, Encoder, Frame, FrameHeader, Limits, OpCode, Role};

#[derive(Arbitrary, Debug)]
enum Kind {
    Text(String),
    Binary(Vec<u8>),
    /// Continues the message in progress (or starts a binary one).
    Continuation(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
    /// A close frame with no payload.
    CloseEmpty,
}

#[derive(Arbitrary, Debug)]
struct FrameDesc {
    kind: Kind,
    fin: bool,
    rsv: u8,
    /// Splits a data payload into two frames at this byte (text may be cut
    /// inside a code point: validity is per message).
    split: Option<u16>,
    /// Pads a binary payload to this length, to reach the 16- and 64-bit
    /// length forms.
    pad: Option<u32>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    client_encodes: bool,
    vectored: bool,
    chunks: Vec<u16>,
    frames: Vec<FrameDesc>,
}

/// Appends a data frame of a message of kind `kind` (text or binary).
fn push_data(
    out: &mut Vec<Frame>,
    message: &mut Option<OpCode>,
    kind: OpCode,
    payload: Bytes,
    fin: bool,
    rsv: u8,
) {
    let opcode = if message.is_some() {
        OpCode::Continuation
    } else {
        kind
    };
    *message = if fin { None } else { Some(kind) };
    out.push(Frame {
        fin,
        rsv,
        opcode,
        payload,
    });
}

/// Turns descriptions into frames a decoder must accept: control frames are
/// final and short, continuations only inside a message, data frames only
/// outside one, text messages UTF-8 as a whole (a frame may end inside a
/// code point), and a message in progress is ended.
fn normalise(descs: &[FrameDesc]) -> Vec<Frame> {
    let mut out: Vec<Frame> = Vec::new();
    // The kind (text or binary) of the message in progress.
    let mut message: Option<OpCode> = None;
    for d in descs {
        let rsv = d.rsv & 0x7;
        let (kind, payload) = match &d.kind {
            Kind::Text(s) => (
                message.unwrap_or(OpCode::Text),
                Bytes::from(s.clone().into_bytes()),
            ),
            Kind::Binary(b) | Kind::Continuation(b) => {
                // A continuation with no message in progress starts a
                // binary one.
                let kind = message.unwrap_or(OpCode::Binary);
                let mut b = b.clone();
                if let Some(pad) = d.pad {
                    // Up to just over 64 KiB: 0-125, 126-65535 and 65536+.
                    b.resize((pad % 66_000) as usize, b'a');
                }
                let payload = if kind == OpCode::Text {
                    // Bytes continuing a text message must keep it UTF-8.
                    String::from_utf8_lossy(&b).into_owned().into_bytes()
                } else {
                    b
                };
                (kind, Bytes::from(payload))
            }
            Kind::Ping(p) | Kind::Pong(p) => {
                let opcode = if matches!(d.kind, Kind::Ping(_)) {
                    OpCode::Ping
                } else {
                    OpCode::Pong
                };
                let mut p = p.clone();
                p.truncate(125);
                out.push(Frame {
                    fin: true,
                    rsv,
                    opcode,
                    payload: Bytes::from(p),
                });
                continue;
            }
            Kind::Close(code, reason) => {
                let mut f = if CloseCode(*code).is_sendable() {
                    Frame::close(CloseCode(*code), reason)
                } else {
                    Frame::close_empty()
                };
                f.rsv = rsv;
                out.push(f);
                continue;
            }
            Kind::CloseEmpty => {
                out.push(Frame::close_empty());
                continue;
            }
        };
        match d.split.map(usize::from) {
            Some(at) if at < payload.len() => {
                push_data(
                    &mut out,
                    &mut message,
                    kind,
                    payload.slice(..at),
                    false,
                    rsv,
                );
                push_data(
                    &mut out,
                    &mut message,
                    kind,
                    payload.slice(at..),
                    d.fin,
                    rsv,
                );
            }
            _ => push_data(&mut out, &mut message, kind, payload, d.fin, rsv),
        }
    }
    if let Some(kind) = message {
        push_data(&mut out, &mut message, kind, Bytes::new(), true, 0);
    }
    out
}

fuzz_target!(|input: Input| {
    let frames = normalise(&input.frames);
    let (tx, rx) = if input.client_encodes {
        (Role::Client, Role::Server)
    } else {
        (Role::Server, Role::Client)
    };
    let mut enc = Encoder::new(tx);
    let mut wire = BytesMut::new();
    for f in &frames {
        let start = wire.len();
        if input.vectored && enc.encode_header_for_vectored(f, &mut wire) {
            wire.extend_from_slice(&f.payload);
        } else {
            enc.encode(f, &mut wire);
        }
        // The header is minimal, masked exactly in the client role.
        let (h, hlen) = FrameHeader::parse(&wire[start..])
            .expect("own header is valid")
            .expect("own header is complete");
        assert_eq!(h.mask.is_some(), tx == Role::Client);
        assert_eq!(hlen, h.encoded_len());
        assert_eq!(h.payload_len, f.payload.len() as u64);
        assert_eq!(wire.len() - start, hlen + f.payload.len());
    }
    let mut dec = Decoder::new(rx, Limits::unlimited());
    dec.set_allowed_rsv(0x7);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut pos = 0;
    let mut step = 0;
    let nonzero = input.chunks.iter().any(|&c| c != 0);
    while pos < wire.len() || step == 0 {
        let size = if nonzero {
            usize::from(input.chunks[step % input.chunks.len()])
        } else {
            wire.len()
        };
        step += 1;
        let end = (pos + size).min(wire.len());
        buf.extend_from_slice(&wire[pos..end]);
        pos = end;
        while let Some(f) = dec.decode(&mut buf).expect("own frames decode") {
            got.push(f);
        }
    }
    assert!(buf.is_empty());
    assert!(!dec.in_message());
    assert_eq!(got, frames);
});
