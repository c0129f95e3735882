//! Arbitrary response heads, fed in chunks the input chooses, through the
//! head parser and the client-side `ClientHandshake::validate`.
//!
//! Input layout: byte 0 % 16 is the number of chunk sizes that follow, then
//! the sizes, then the response bytes. Every `{ACCEPT}` in the response is
//! replaced by the accept key for this run's random client key, so the
//! fuzzer can reach the checks after the accept key.
//!
//! Checks: whole and chunked parsing agree; bytes after the head (the
//! server's first frames) stay in the buffer; a validated response is a 101
//! with the right accept key and at most one offered subprotocol.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rtwire::http::{has_token, trim, HeadParser, Limits};
use rtwire::ws::handshake::{accept_key, ClientHandshake};
use rtwire_fuzz::{check_head_position, parse_head_chunked};

const OFFERED: [&str; 2] = ["chat", "superchat"];
const PLACEHOLDER: &[u8] = b"{ACCEPT}";

fn limits() -> Limits {
    Limits::default().max_head_size(2048).max_headers(24)
}

fn substitute(wire: &[u8], accept: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(wire.len() + 32);
    let mut rest = wire;
    while let Some(i) = rest
        .windows(PLACEHOLDER.len())
        .position(|w| w == PLACEHOLDER)
    {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(accept);
        rest = &rest[i + PLACEHOLDER.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let [n, rest @ ..] = data else {
        return;
    };
    let n = usize::from(n % 16).min(rest.len());
    let (sizes, wire) = rest.split_at(n);
    let mut request = BytesMut::new();
    let hs = ClientHandshake::new("example.com", "/chat", &OFFERED, &[], &mut request)
        .expect("valid request");
    let accept = accept_key(hs.key().as_bytes());
    let wire = substitute(wire, &accept);

    let parse = |p: &mut HeadParser, b: &mut BytesMut| p.parse_response(b);
    let whole = parse_head_chunked(limits(), &wire, &[], parse);
    let chunked = parse_head_chunked(limits(), &wire, sizes, parse);
    let resp = match (&whole.result, &chunked.result) {
        (Ok(Some(a)), Ok(Some(b))) => {
            assert_eq!(a.as_bytes(), b.as_bytes());
            check_head_position(limits(), &wire, a.as_bytes(), &whole, &chunked);
            a
        }
        (Err(a), Err(b)) => return assert_eq!(a, b),
        (Ok(None), Ok(None)) => return,
        (a, b) => panic!("whole {a:?} vs chunked {b:?}"),
    };
    match hs.validate(resp) {
        Ok(protocol) => {
            assert_eq!(resp.status(), 101);
            assert!(resp
                .headers_named("upgrade")
                .any(|v| has_token(v, "websocket")));
            assert!(resp
                .headers_named("connection")
                .any(|v| has_token(v, "upgrade")));
            assert_eq!(
                resp.header("sec-websocket-accept").map(trim),
                Some(&accept[..])
            );
            assert!(resp
                .headers_named("sec-websocket-extensions")
                .all(|v| trim(v).is_empty()));
            match protocol {
                Some(p) => assert!(OFFERED.contains(&p.as_str())),
                None => assert!(resp.header("sec-websocket-protocol").is_none()),
            }
        }
        Err(e) => {
            if resp.status() != 101 {
                assert_eq!(e, rtwire::HandshakeError::UnexpectedStatus(resp.status()));
            }
        }
    }
});
