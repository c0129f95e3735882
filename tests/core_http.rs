//! The incremental HTTP head parser: chunking, linear time, limits, errors,
//! leftover bytes.

use bytes::BytesMut;
use proptest::prelude::*;
use rtwire::http::{HeadError, HeadParser, Limits, RequestHead, ResponseHead};

const REQUEST: &[u8] = b"GET /chat?topics=a%2Cb&x=1 HTTP/1.1\r\nHost: server.example.com\r\n\
Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// A WebSocket frame pipelined right after the head.
const AFTER: &[u8] = b"\x81\x05Hello";

fn parse_request(bytes: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    HeadParser::new(Limits::default()).parse_request(&mut BytesMut::from(bytes))
}

/// Feeds `wire` cut at `cuts` (sorted offsets), calling the parser after
/// every piece. Returns the head, the call that completed it, and what was
/// left in the buffer at the end.
fn feed_request(
    parser: &mut HeadParser,
    wire: &[u8],
    cuts: &[usize],
) -> (Option<RequestHead>, BytesMut) {
    let mut buf = BytesMut::new();
    let mut head = None;
    let mut pos = 0;
    for &end in cuts.iter().chain(std::iter::once(&wire.len())) {
        let end = end.clamp(pos, wire.len());
        buf.extend_from_slice(&wire[pos..end]);
        pos = end;
        if head.is_none() {
            head = parser.parse_request(&mut buf).expect("valid head");
        }
    }
    (head, buf)
}

fn headers_of(h: &RequestHead) -> Vec<(String, Vec<u8>)> {
    h.headers()
        .map(|(n, v)| (n.to_owned(), v.to_vec()))
        .collect()
}

#[test]
fn request_head_fields_and_leftover() {
    let wire = [REQUEST, AFTER].concat();
    let mut buf = BytesMut::from(&wire[..]);
    let head = HeadParser::new(Limits::default())
        .parse_request(&mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(head.method(), "GET");
    assert_eq!(head.target(), "/chat?topics=a%2Cb&x=1");
    assert_eq!(head.path(), "/chat");
    assert_eq!(head.query(), Some("topics=a%2Cb&x=1"));
    assert_eq!(head.query_param("topics").as_deref(), Some("a,b"));
    assert_eq!(head.query_param("x").as_deref(), Some("1"));
    assert_eq!(head.query_param("missing"), None);
    assert_eq!(head.minor_version(), 1);
    assert_eq!(head.header("HOST"), Some(&b"server.example.com"[..]));
    assert_eq!(head.header_str("sec-websocket-version"), Some("13"));
    let protocols: Vec<&[u8]> = head.headers_named("sec-websocket-protocol").collect();
    assert_eq!(protocols, [&b"chat"[..], &b"superchat"[..]]);
    assert_eq!(head.headers().count(), 7);
    assert_eq!(&head.as_bytes()[..], REQUEST);
    // The frame after the head stays in the buffer, untouched.
    assert_eq!(&buf[..], AFTER);
}

#[test]
fn response_head_fields_and_leftover() {
    let wire = [RESPONSE, AFTER].concat();
    let mut buf = BytesMut::from(&wire[..]);
    let head = HeadParser::new(Limits::default())
        .parse_response(&mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(head.status(), 101);
    assert_eq!(head.reason(), "Switching Protocols");
    assert_eq!(
        head.header_str("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(&buf[..], AFTER);
}

#[test]
fn request_byte_by_byte_completes_on_the_last_byte() {
    let wire = [REQUEST, AFTER].concat();
    let mut parser = HeadParser::new(Limits::default());
    let mut buf = BytesMut::new();
    for (i, b) in wire.iter().enumerate() {
        buf.extend_from_slice(std::slice::from_ref(b));
        let got = parser.parse_request(&mut buf).unwrap();
        if i + 1 < REQUEST.len() {
            assert!(got.is_none(), "head complete early at byte {i}");
        } else {
            assert_eq!(&got.unwrap().as_bytes()[..], REQUEST);
            assert!(buf.is_empty());
            buf.extend_from_slice(&wire[i + 1..]);
            break;
        }
    }
    assert_eq!(&buf[..], AFTER);
}

#[test]
fn two_pipelined_heads_with_one_parser() {
    let wire = [REQUEST, REQUEST, AFTER].concat();
    let mut parser = HeadParser::new(Limits::default());
    let mut buf = BytesMut::from(&wire[..]);
    let a = parser.parse_request(&mut buf).unwrap().unwrap();
    let b = parser.parse_request(&mut buf).unwrap().unwrap();
    assert_eq!(a.as_bytes(), b.as_bytes());
    assert_eq!(&buf[..], AFTER);
}

#[test]
fn bare_lf_line_endings() {
    let wire = b"GET / HTTP/1.1\nHost: a\n\nrest";
    let mut buf = BytesMut::from(&wire[..]);
    let head = HeadParser::new(Limits::default())
        .parse_request(&mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(head.header("host"), Some(&b"a"[..]));
    assert_eq!(&buf[..], b"rest");
}

proptest! {
    #[test]
    fn request_in_arbitrary_chunks(mut cuts in proptest::collection::vec(0usize..400, 0..12)) {
        cuts.sort_unstable();
        let wire = [REQUEST, AFTER].concat();
        let (head, rest) = feed_request(&mut HeadParser::new(Limits::default()), &wire, &cuts);
        let whole = parse_request(&wire).unwrap().unwrap();
        let head = head.expect("complete");
        prop_assert_eq!(head.as_bytes(), whole.as_bytes());
        prop_assert_eq!(head.target(), whole.target());
        prop_assert_eq!(headers_of(&head), headers_of(&whole));
        prop_assert_eq!(&rest[..], AFTER);
    }

    #[test]
    fn response_in_arbitrary_chunks(mut cuts in proptest::collection::vec(0usize..200, 0..12)) {
        cuts.sort_unstable();
        let wire = [RESPONSE, AFTER].concat();
        let mut parser = HeadParser::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut head: Option<ResponseHead> = None;
        let mut pos = 0;
        for &end in cuts.iter().chain(std::iter::once(&wire.len())) {
            let end = end.clamp(pos, wire.len());
            buf.extend_from_slice(&wire[pos..end]);
            pos = end;
            if head.is_none() {
                head = parser.parse_response(&mut buf).unwrap();
                if head.is_none() {
                    // Not complete yet: nothing was consumed.
                    prop_assert_eq!(&buf[..], &wire[..end]);
                }
            }
        }
        let head = head.expect("complete");
        prop_assert_eq!(&head.as_bytes()[..], RESPONSE);
        prop_assert_eq!(head.status(), 101);
        prop_assert_eq!(&buf[..], AFTER);
    }

    /// Arbitrary bytes never panic the parser, and whole and chunked feeding
    /// agree.
    #[test]
    fn arbitrary_bytes_whole_equals_chunked(
        wire in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b':'), Just(b' '), any::<u8>()], 0..300),
        mut cuts in proptest::collection::vec(0usize..300, 0..8),
    ) {
        cuts.sort_unstable();
        let limits = Limits::default().max_head_size(200).max_headers(4);
        let whole = HeadParser::new(limits).parse_request(&mut BytesMut::from(&wire[..]));
        let mut parser = HeadParser::new(limits);
        let mut buf = BytesMut::new();
        let mut pos = 0;
        let mut chunked = Ok(None);
        for &end in cuts.iter().chain(std::iter::once(&wire.len())) {
            let end = end.clamp(pos, wire.len());
            buf.extend_from_slice(&wire[pos..end]);
            pos = end;
            chunked = parser.parse_request(&mut buf);
            if !matches!(chunked, Ok(None)) {
                break;
            }
        }
        match (whole, chunked) {
            (Ok(Some(a)), Ok(Some(b))) => prop_assert_eq!(a.as_bytes(), b.as_bytes()),
            (Ok(None), Ok(None)) => {}
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "whole {:?} vs chunked {:?}", a, b),
        }
    }
}

/// A request head of about `size` bytes made of `line`-sized header lines.
fn big_head(size: usize, line: usize) -> Vec<u8> {
    let mut head = b"GET /big HTTP/1.1\r\nHost: example.com\r\n".to_vec();
    let mut i = 0;
    while head.len() + line + 2 < size {
        let name = format!("X-Pad-{i}: ");
        head.extend_from_slice(name.as_bytes());
        head.resize(
            head.len() + line.saturating_sub(name.len() + 2).max(1),
            b'a',
        );
        head.extend_from_slice(b"\r\n");
        i += 1;
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// CVE-2023-43669 (tungstenite): rescanning the whole buffer on every read
/// made a head fed one byte at a time cost O(n²). Ours must stay O(n): a
/// 64 KiB head fed byte by byte scans about as many bytes as fed whole.
#[test]
fn linear_time_64k_head_byte_by_byte() {
    let limits = Limits::default()
        .max_head_size(128 * 1024)
        .max_headers(10_000);
    // Long lines and very short ones (the most line feeds per byte).
    for line in [100, 6] {
        let head = big_head(64 * 1024, line);
        assert!(head.len() >= 63 * 1024);
        let n = head.len() as u64;

        let mut whole = HeadParser::new(limits);
        let mut buf = BytesMut::from(&head[..]);
        let h = whole.parse_request(&mut buf).unwrap().unwrap();
        assert_eq!(h.header("host"), Some(&b"example.com"[..]));
        let whole_scanned = whole.bytes_scanned();
        assert!(
            whole_scanned >= n / 2 && whole_scanned <= n,
            "{whole_scanned}"
        );

        let mut bytewise = HeadParser::new(limits);
        let mut buf = BytesMut::with_capacity(head.len());
        let mut done = None;
        for b in &head {
            buf.extend_from_slice(std::slice::from_ref(b));
            if let Some(h) = bytewise.parse_request(&mut buf).unwrap() {
                done = Some(h);
            }
        }
        let h = done.expect("complete");
        assert_eq!(h.as_bytes().len(), head.len());
        let scanned = bytewise.bytes_scanned();
        // Quadratic rescanning would be about n²/2 = 2^31 bytes.
        assert!(
            scanned <= 2 * n + 64,
            "line {line}: scanned {scanned} of {n}"
        );
        assert!(
            scanned <= 2 * whole_scanned + 64,
            "line {line}: bytewise {scanned} vs whole {whole_scanned}"
        );
    }
}

/// A 16 KiB limit: a head of exactly 16384 bytes passes, one more byte is
/// 431, and a head that never ends is refused as soon as it passes the limit
/// (a slowloris cannot make the server buffer without bound).
#[test]
fn head_size_limit_is_431() {
    let limit = Limits::default().max_head_size;
    assert_eq!(limit, 16 * 1024);
    let mut exact = big_head(limit, 400);
    let pad = limit - exact.len();
    // Grow the Host value so the head is exactly `limit` bytes.
    let at = exact.windows(11).position(|w| w == b"example.com").unwrap();
    exact.splice(at..at, std::iter::repeat_n(b'h', pad));
    assert_eq!(exact.len(), limit);
    assert!(parse_request(&exact).unwrap().is_some());

    let mut over = exact.clone();
    over.insert(at, b'h');
    let err = parse_request(&over).unwrap_err();
    assert_eq!(err, HeadError::TooLarge { limit });
    assert_eq!(err.status(), 431);

    // Never-ending head, byte by byte: refused at byte limit + 1.
    let mut parser = HeadParser::new(Limits::default());
    let mut buf = BytesMut::new();
    let endless = over[..over.len() - 2]
        .iter()
        .chain(std::iter::repeat(&b'a'));
    for (i, b) in endless.enumerate() {
        buf.extend_from_slice(std::slice::from_ref(b));
        match parser.parse_request(&mut buf) {
            Ok(None) => assert!(i < limit, "still waiting after {i} bytes"),
            Err(e) => {
                assert_eq!(e, HeadError::TooLarge { limit });
                assert_eq!(i, limit);
                break;
            }
            Ok(Some(_)) => panic!("complete without a blank line"),
        }
    }
}

fn with_headers(n: usize) -> Vec<u8> {
    let mut head = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 1..n {
        head.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}

#[test]
fn header_count_limit_is_431() {
    assert_eq!(Limits::default().max_headers, 64);
    assert_eq!(
        parse_request(&with_headers(64))
            .unwrap()
            .unwrap()
            .headers()
            .count(),
        64
    );
    let err = parse_request(&with_headers(65)).unwrap_err();
    assert_eq!(err, HeadError::TooManyHeaders { limit: 64 });
    assert_eq!(err.status(), 431);

    let mut resp = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
    for i in 0..65 {
        resp.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    resp.extend_from_slice(b"\r\n");
    let err = HeadParser::new(Limits::default())
        .parse_response(&mut BytesMut::from(&resp[..]))
        .unwrap_err();
    assert_eq!(err, HeadError::TooManyHeaders { limit: 64 });
}

#[test]
fn malformed_heads_are_400() {
    let requests: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n",
        b"GET / HTTP/9.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
        b"GET\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
    ];
    for r in requests {
        let err = parse_request(r).expect_err(&String::from_utf8_lossy(r));
        assert!(matches!(err, HeadError::Malformed(_)), "{err:?}");
        assert_eq!(err.status(), 400);
    }
    let responses: &[&[u8]] = &[
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 1010 Too long\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
    ];
    for r in responses {
        let err = HeadParser::new(Limits::default())
            .parse_response(&mut BytesMut::from(&r[..]))
            .expect_err(&String::from_utf8_lossy(r));
        assert_eq!(err.status(), 400, "{err:?}");
    }
}

#[test]
fn has_token_and_trim() {
    use rtwire::http::{has_token, trim};
    assert!(has_token(b"keep-alive, Upgrade", "upgrade"));
    assert!(has_token(b"UPGRADE", "upgrade"));
    assert!(has_token(b" keep-alive ,\tupgrade\t", "upgrade"));
    assert!(!has_token(b"keep-alive", "upgrade"));
    assert!(!has_token(b"upgrades, xupgrade", "upgrade"));
    assert!(!has_token(b"", "upgrade"));
    assert_eq!(trim(b" \t x y \t"), b"x y");
    assert_eq!(trim(b"   "), b"");
}

/// RFC 9112 §2.2: empty lines before the request line are ignored, also
/// when they arrive one byte at a time (a lone CR waits for its LF).
#[test]
fn leading_empty_lines_before_the_request_line_are_ignored() {
    let wire = b"\r\n\r\n\nGET /x HTTP/1.1\r\nHost: a\r\n\r\nrest";
    for chunk in [1usize, 2, 3, wire.len()] {
        let mut parser = HeadParser::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut head = None;
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            if let Some(h) = parser.parse_request(&mut buf).unwrap() {
                head = Some(h);
                break;
            }
        }
        let head = head.expect("head parsed");
        assert_eq!(head.path(), "/x", "chunk {chunk}");
        assert_eq!(head.header("host"), Some(&b"a"[..]));
    }
}

/// Skipped empty lines count against the head-size limit: a peer that sends
/// nothing but CRLFs is refused with 431 instead of being read forever.
#[test]
fn endless_empty_lines_before_the_request_line_hit_the_head_limit() {
    let limits = Limits::default().max_head_size(64).max_headers(8);
    let mut parser = HeadParser::new(limits);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let err = loop {
        buf.extend_from_slice(b"\r\n");
        fed += 2;
        assert!(fed <= 200, "still reading empty lines after {fed} bytes");
        match parser.parse_request(&mut buf) {
            Ok(None) => {}
            Ok(Some(h)) => panic!("a head out of empty lines: {h:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(err, HeadError::TooLarge { limit: 64 });
    assert_eq!(err.status(), 431);

    // Fewer empty lines plus a head that fits in what is left still parse,
    // and the parser starts afresh for the next head.
    let mut parser = HeadParser::new(limits);
    let mut buf = BytesMut::from(&b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"[..]);
    assert!(parser.parse_request(&mut buf).unwrap().is_some());
    // Exactly at the limit passes; one more empty-line byte is refused.
    let head = b"GET /a-longer-path HTTP/1.1\r\nHost: a\r\n\r\n";
    for (pad, fits) in [(64 - head.len(), true), (64 - head.len() + 1, false)] {
        let mut parser = HeadParser::new(limits);
        let mut buf = BytesMut::from(&vec![b'\n'; pad][..]);
        buf.extend_from_slice(head);
        match parser.parse_request(&mut buf) {
            Ok(Some(h)) if fits => assert_eq!(h.path(), "/a-longer-path"),
            Err(HeadError::TooLarge { limit: 64 }) if !fits => {}
            other => panic!("pad {pad}: {other:?}"),
        }
    }
}
