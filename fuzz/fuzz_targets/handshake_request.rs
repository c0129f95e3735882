//! Arbitrary request heads, fed in chunks the input chooses, through the
//! head parser and the server-side `accept`, under one of several policies.
//!
//! Input layout: byte 0 picks the policy (bits 0-1: origin allow-all /
//! allow-list / custom predicate; bit 2: an auth hook demanding
//! `?token=s3cret`; bit 3: topics from `?topics=`), byte 1 % 16 is the number
//! of chunk sizes that follow, then the sizes, then the request bytes.
//!
//! Checks: whole and chunked parsing agree; bytes after the head stay in the
//! buffer; an accepted request yields a 101 that parses back with the right
//! accept key and a subprotocol both offered and supported (the server's
//! first choice); a rejection is a complete response whose status is the
//! error's and whose `Content-Length` is its body's length.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rtwire::http::{has_token, trim, HeadParser, Limits, RequestHead};
use rtwire::upgrade::{OriginPolicy, Rejection};
use rtwire::ws::handshake::{accept, accept_key, ServerConfig};
use rtwire::HandshakeError;
use rtwire_fuzz::{check_head_position, parse_head_chunked};

const PROTOCOLS: [&str; 3] = ["v2.chat", "chat", "superchat"];

fn config(flags: u8) -> ServerConfig {
    let origin = match flags & 3 {
        1 => OriginPolicy::AllowList(vec![
            "https://example.com".into(),
            "http://localhost:8080".into(),
        ]),
        2 => OriginPolicy::Custom(std::sync::Arc::new(|o: Option<&str>| {
            o.is_some_and(|o| o.ends_with(".example.com"))
        })),
        _ => OriginPolicy::AllowAll,
    };
    let mut c = ServerConfig::new().subprotocols(PROTOCOLS).origin(origin);
    if flags & 4 != 0 {
        c = c.auth(|head: &RequestHead| match head.query_param("token") {
            Some(t) if t == "s3cret" => Ok(()),
            _ => Err(Rejection::unauthorized("bad token")),
        });
    }
    if flags & 8 != 0 {
        c = c.topics_param("topics", 4, 16);
    }
    c
}

fn limits() -> Limits {
    Limits::default().max_head_size(2048).max_headers(24)
}

/// Parses `out` back as a response and returns it with its body.
fn parse_back(out: &[u8]) -> (rtwire::http::ResponseHead, BytesMut) {
    let mut buf = BytesMut::from(out);
    let head = HeadParser::new(Limits::default())
        .parse_response(&mut buf)
        .expect("our response parses")
        .expect("our response is complete");
    (head, buf)
}

fn check_accepted(req: &RequestHead, config: &ServerConfig) {
    let acc = match accept(req.clone(), config) {
        Ok(acc) => acc,
        Err(e) => return check_rejected(&e),
    };
    assert_eq!(req.method(), "GET");
    assert_eq!(req.header_str("sec-websocket-version"), Some("13"));
    let key = trim(
        req.header("sec-websocket-key")
            .expect("accepted with a key"),
    );
    assert_eq!(key.len(), 24);
    let mut out = BytesMut::new();
    acc.write_response(&mut out);
    let (resp, body) = parse_back(&out);
    assert!(body.is_empty());
    assert_eq!(resp.status(), 101);
    assert!(has_token(resp.header("upgrade").unwrap(), "websocket"));
    assert!(has_token(resp.header("connection").unwrap(), "upgrade"));
    assert_eq!(
        resp.header("sec-websocket-accept"),
        Some(&accept_key(key)[..])
    );
    let offered: Vec<&[u8]> = req
        .headers_named("sec-websocket-protocol")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(trim)
        .collect();
    let expected = PROTOCOLS.iter().find(|p| offered.contains(&p.as_bytes()));
    assert_eq!(acc.subprotocol.as_deref(), expected.copied());
    assert_eq!(
        resp.header_str("sec-websocket-protocol"),
        acc.subprotocol.as_deref()
    );
    if let Some(tc) = config.topics() {
        assert!(acc.topics.len() <= tc.max_count);
        assert!(acc
            .topics
            .iter()
            .all(|t| !t.is_empty() && t.len() <= tc.max_len));
    } else {
        assert!(acc.topics.is_empty());
    }
}

fn check_rejected(e: &HandshakeError) {
    let mut out = BytesMut::new();
    e.write_response(&mut out);
    let (resp, body) = parse_back(&out);
    assert_eq!(resp.status(), e.status());
    assert!(
        (400..600).contains(&resp.status()),
        "status {}",
        resp.status()
    );
    let len: usize = resp
        .header_str("content-length")
        .and_then(|v| v.parse().ok())
        .expect("Content-Length");
    assert_eq!(len, body.len());
    assert!(has_token(resp.header("connection").unwrap(), "close"));
    if *e == HandshakeError::UnsupportedVersion {
        assert_eq!(resp.header_str("sec-websocket-version"), Some("13"));
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, n, rest @ ..] = data else {
        return;
    };
    let n = usize::from(n % 16).min(rest.len());
    let (sizes, wire) = rest.split_at(n);
    let parse = |p: &mut HeadParser, b: &mut BytesMut| p.parse_request(b);
    let whole = parse_head_chunked(limits(), wire, &[], parse);
    let chunked = parse_head_chunked(limits(), wire, sizes, parse);
    match (&whole.result, &chunked.result) {
        (Ok(Some(a)), Ok(Some(b))) => {
            assert_eq!(a.as_bytes(), b.as_bytes());
            check_head_position(limits(), &wire, a.as_bytes(), &whole, &chunked);
            check_accepted(a, &config(*flags));
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b);
            check_rejected(&HandshakeError::Head(a.clone()));
        }
        (Ok(None), Ok(None)) => {}
        (a, b) => panic!("whole {a:?} vs chunked {b:?}"),
    }
});
