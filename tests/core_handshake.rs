//! The opening handshake: server `accept` and its responses, client request
//! and `validate`.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::BytesMut;
use proptest::prelude::*;
use rtwire::http::{HeadError, HeadParser, Limits, RequestHead, ResponseHead};
use rtwire::upgrade::{OriginPolicy, Rejection};
use rtwire::ws::handshake::{accept, accept_key, ClientHandshake, ServerConfig};
use rtwire::HandshakeError;

const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The RFC 6455 §1.3 request, with `replace` applied to each line (a `None`
/// drops the line) and `extra` lines appended.
fn request_with(
    target: &str,
    replace: &dyn Fn(&str) -> Option<String>,
    extra: &[&str],
) -> RequestHead {
    let lines = [
        format!("GET {target} HTTP/1.1"),
        "Host: server.example.com".into(),
        "Upgrade: websocket".into(),
        "Connection: Upgrade".into(),
        format!("Sec-WebSocket-Key: {RFC_KEY}"),
        "Sec-WebSocket-Version: 13".into(),
    ];
    let mut text = String::new();
    for l in lines.iter().filter_map(|l| replace(l)) {
        text.push_str(&l);
        text.push_str("\r\n");
    }
    for l in extra {
        text.push_str(l);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    HeadParser::new(Limits::default())
        .parse_request(&mut BytesMut::from(text.as_bytes()))
        .expect("test request parses")
        .expect("test request is complete")
}

fn request(extra: &[&str]) -> RequestHead {
    request_with("/chat", &|l| Some(l.to_owned()), extra)
}

/// The request with the header line starting with `name` replaced by `line`
/// (or dropped when `line` is empty).
fn request_replacing(name: &str, line: &str) -> RequestHead {
    let name = name.to_owned();
    let line = line.to_owned();
    request_with(
        "/chat",
        &move |l| {
            if l.starts_with(&name) {
                (!line.is_empty()).then(|| line.clone())
            } else {
                Some(l.to_owned())
            }
        },
        &[],
    )
}

fn parse_response(bytes: &[u8]) -> (ResponseHead, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    let head = HeadParser::new(Limits::default())
        .parse_response(&mut buf)
        .expect("response parses")
        .expect("response is complete");
    (head, buf)
}

/// Writes the rejection response for `err`, parses it back and checks it is
/// a complete HTTP response: status line, `Content-Length` equal to the body
/// length, `Connection: close`. Returns the head and body.
fn rejection(err: &HandshakeError) -> (ResponseHead, String) {
    let mut out = BytesMut::new();
    err.write_response(&mut out);
    let (head, body) = parse_response(&out);
    assert_eq!(head.status(), err.status(), "{err:?}");
    assert_eq!(head.minor_version(), 1);
    assert!(!head.reason().is_empty());
    let len: usize = head
        .header_str("content-length")
        .expect("Content-Length")
        .parse()
        .unwrap();
    assert_eq!(len, body.len(), "{err:?}");
    assert_eq!(head.header_str("connection"), Some("close"));
    (head, String::from_utf8(body.to_vec()).unwrap())
}

fn expect_reject(head: RequestHead, config: &ServerConfig, status: u16) -> HandshakeError {
    let err = accept(head, config).expect_err("must be refused");
    assert_eq!(err.status(), status, "{err:?}");
    rejection(&err);
    err
}

#[test]
fn rfc_1_3_accept_key_vector() {
    assert_eq!(
        &accept_key(RFC_KEY.as_bytes()),
        b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn accepts_rfc_request_with_a_well_formed_101() {
    let acc = accept(request(&[]), &ServerConfig::new()).unwrap();
    assert_eq!(acc.accept_key(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(acc.subprotocol, None);
    assert!(acc.topics.is_empty());
    let mut out = BytesMut::new();
    acc.write_response(&mut out);
    let (resp, rest) = parse_response(&out);
    assert!(rest.is_empty());
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.reason(), "Switching Protocols");
    assert_eq!(resp.header_str("upgrade"), Some("websocket"));
    assert_eq!(resp.header_str("connection"), Some("Upgrade"));
    assert_eq!(
        resp.header_str("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(resp.header("sec-websocket-protocol"), None);
}

#[test]
fn headers_are_case_insensitive_token_lists() {
    let config = ServerConfig::new();
    let cases: &[(&str, &str)] = &[
        ("Connection", "Connection: keep-alive, Upgrade"),
        ("Connection", "connection: upgrade"),
        ("Connection", "CONNECTION: UPGRADE"),
        ("Connection", "Connection:\tkeep-alive ,  Upgrade\t"),
        ("Upgrade", "upgrade: WebSocket"),
        ("Upgrade", "UPGRADE: WEBSOCKET"),
        ("Upgrade", "Upgrade: h2c, websocket"),
        ("Host", "host: example.com"),
        ("Sec-WebSocket-Version", "sec-websocket-version:  13 "),
        (
            "Sec-WebSocket-Key",
            "SEC-WEBSOCKET-KEY: dGhlIHNhbXBsZSBub25jZQ==",
        ),
    ];
    for (name, line) in cases {
        let acc = accept(request_replacing(name, line), &config)
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(acc.accept_key(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }
    // The token may also be in a second Connection header.
    let head = request_with(
        "/chat",
        &|l| {
            Some(if l.starts_with("Connection") {
                "Connection: keep-alive".into()
            } else {
                l.to_owned()
            })
        },
        &["Connection: Upgrade"],
    );
    assert!(accept(head, &config).is_ok());
}

#[test]
fn protocol_rejections_have_the_right_status() {
    let config = ServerConfig::new();
    let method = request_with("/chat", &|l| Some(l.replace("GET ", "POST ")), &[]);
    let err = expect_reject(method, &config, 405);
    assert_eq!(err, HandshakeError::Method);
    let (head, _) = rejection(&err);
    assert_eq!(head.header_str("allow"), Some("GET"));

    let http10 = request_with("/chat", &|l| Some(l.replace("HTTP/1.1", "HTTP/1.0")), &[]);
    assert_eq!(
        expect_reject(http10, &config, 505),
        HandshakeError::HttpVersion
    );

    assert_eq!(
        expect_reject(request_replacing("Host", ""), &config, 400),
        HandshakeError::MissingHost
    );
    for line in [
        "",
        "Upgrade: h2c",
        "Upgrade: websockets",
        "Upgrade: web socket",
    ] {
        let err = expect_reject(request_replacing("Upgrade", line), &config, 426);
        assert_eq!(err, HandshakeError::NotWebSocket);
        let (head, _) = rejection(&err);
        assert_eq!(head.header_str("upgrade"), Some("websocket"));
    }
    for line in [
        "",
        "Connection: keep-alive",
        "Connection: upgrades",
        "Connection: close",
    ] {
        assert_eq!(
            expect_reject(request_replacing("Connection", line), &config, 400),
            HandshakeError::MissingConnectionUpgrade
        );
    }
}

#[test]
fn version_other_than_13_is_426_with_version_header() {
    for line in [
        "Sec-WebSocket-Version: 8",
        "Sec-WebSocket-Version: 12",
        "Sec-WebSocket-Version: 14",
        "Sec-WebSocket-Version: 13, 8",
        "Sec-WebSocket-Version: ",
        "",
    ] {
        let err = expect_reject(
            request_replacing("Sec-WebSocket-Version", line),
            &ServerConfig::new(),
            426,
        );
        assert_eq!(err, HandshakeError::UnsupportedVersion, "{line}");
        let (head, body) = rejection(&err);
        assert_eq!(head.reason(), "Upgrade Required");
        assert_eq!(head.header_str("sec-websocket-version"), Some("13"));
        assert!(!body.is_empty());
    }
}

#[test]
fn key_must_be_base64_of_exactly_16_bytes() {
    let b64 = |n: usize| STANDARD.encode(vec![0x5a; n]);
    let bad = [
        b64(15),                              // 20 chars
        b64(17),                              // 24 chars, one '='
        b64(18),                              // 24 chars, no padding
        b64(16).trim_end_matches('=').into(), // unpadded
        "!!!!!!!!!!!!!!!!!!!!!A==".into(),    // bad characters
        "dGhlIHNhbXBsZSBub25jZQ=!".into(),    // bad padding
        "dGhlIHNhbXBsZSBub25jZR==".into(),    // non-canonical trailing bits
        String::new(),                        // empty
    ];
    for key in &bad {
        let line = format!("Sec-WebSocket-Key: {key}");
        let err = expect_reject(
            request_replacing("Sec-WebSocket-Key", &line),
            &ServerConfig::new(),
            400,
        );
        assert_eq!(err, HandshakeError::InvalidKey, "{key:?}");
    }
    let missing = expect_reject(
        request_replacing("Sec-WebSocket-Key", ""),
        &ServerConfig::new(),
        400,
    );
    assert_eq!(missing, HandshakeError::InvalidKey);
    // Any 16 bytes are fine.
    let key = b64(16);
    let acc = accept(
        request_replacing("Sec-WebSocket-Key", &format!("Sec-WebSocket-Key: {key}")),
        &ServerConfig::new(),
    )
    .unwrap();
    assert_eq!(acc.accept_key().as_bytes(), accept_key(key.as_bytes()));
}

#[test]
fn subprotocol_is_the_servers_first_choice_among_offered() {
    let config = ServerConfig::new().subprotocols(["chat", "superchat"]);
    let pick = |offers: &[&str]| {
        let acc = accept(request(offers), &config).unwrap();
        let mut out = BytesMut::new();
        acc.write_response(&mut out);
        let (resp, _) = parse_response(&out);
        assert_eq!(
            resp.header_str("sec-websocket-protocol"),
            acc.subprotocol.as_deref()
        );
        acc.subprotocol
    };
    assert_eq!(
        pick(&["Sec-WebSocket-Protocol: superchat, chat"]).as_deref(),
        Some("chat")
    );
    assert_eq!(
        pick(&["Sec-WebSocket-Protocol: superchat"]).as_deref(),
        Some("superchat")
    );
    assert_eq!(
        pick(&[
            "Sec-WebSocket-Protocol: v1",
            "Sec-WebSocket-Protocol: superchat"
        ])
        .as_deref(),
        Some("superchat")
    );
    // Never one that was not offered; names are case-sensitive tokens.
    assert_eq!(pick(&["Sec-WebSocket-Protocol: CHAT, v2"]), None);
    assert_eq!(pick(&["Sec-WebSocket-Protocol: chatty, superchatty"]), None);
    assert_eq!(pick(&[]), None);
    // A server without subprotocols selects none, whatever is offered.
    let acc = accept(
        request(&["Sec-WebSocket-Protocol: chat"]),
        &ServerConfig::new(),
    )
    .unwrap();
    assert_eq!(acc.subprotocol, None);
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("chat".to_owned()),
        Just("superchat".to_owned()),
        Just("v1.json".to_owned()),
        Just("v2.json".to_owned()),
        Just("mqtt".to_owned()),
        "[a-z0-9.]{1,6}",
    ]
}

proptest! {
    #[test]
    fn subprotocol_selection_property(
        offered in proptest::collection::vec(token(), 0..5),
        server in proptest::collection::vec(token(), 0..5),
        split in any::<bool>(),
    ) {
        let lines: Vec<String> = if offered.is_empty() {
            Vec::new()
        } else if split {
            offered.iter().map(|p| format!("Sec-WebSocket-Protocol: {p}")).collect()
        } else {
            vec![format!("Sec-WebSocket-Protocol: {}", offered.join(" ,"))]
        };
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let config = ServerConfig::new().subprotocols(server.clone());
        let acc = accept(request(&lines), &config).unwrap();
        let expected = server.iter().find(|s| offered.contains(s));
        prop_assert_eq!(acc.subprotocol.as_ref(), expected);
        if let Some(p) = &acc.subprotocol {
            prop_assert!(offered.contains(p) && server.contains(p));
        }
    }
}

#[test]
fn origin_policies() {
    let with_origin = |o: &str| request(&[&format!("Origin: {o}")]);

    let all = ServerConfig::new();
    assert!(accept(with_origin("https://evil.example"), &all).is_ok());
    assert!(accept(request(&[]), &all).is_ok());

    let list = ServerConfig::new().origin(OriginPolicy::AllowList(vec![
        "https://example.com".into(),
        "http://localhost:8080".into(),
    ]));
    assert!(accept(with_origin("https://example.com"), &list).is_ok());
    assert!(accept(with_origin("HTTPS://EXAMPLE.COM"), &list).is_ok());
    assert!(accept(with_origin("http://localhost:8080"), &list).is_ok());
    // Non-browser clients send no Origin: allowed by an allow list.
    assert!(accept(request(&[]), &list).is_ok());
    for o in [
        "https://example.com.evil.org",
        "http://example.com",
        "null",
        "",
    ] {
        let err = expect_reject(with_origin(o), &list, 403);
        assert_eq!(err, HandshakeError::OriginRefused, "{o}");
    }
    // A non-UTF-8 origin is refused.
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: https://\xff\r\n\r\n"
        .to_vec();
    let head = HeadParser::new(Limits::default())
        .parse_request(&mut BytesMut::from(&raw[..]))
        .unwrap()
        .unwrap();
    raw.clear();
    expect_reject(head, &list, 403);

    let custom = ServerConfig::new().origin(OriginPolicy::Custom(Arc::new(|o| {
        o.is_some_and(|o| o.ends_with(".example.com"))
    })));
    assert!(accept(with_origin("https://app.example.com"), &custom).is_ok());
    expect_reject(with_origin("https://example.org"), &custom, 403);
    // A custom predicate can refuse requests without Origin.
    expect_reject(request(&[]), &custom, 403);
}

/// An app that demands `?token=` and checks it, as a real one would.
fn demanding_app() -> ServerConfig {
    ServerConfig::new()
        .origin(OriginPolicy::AllowList(vec!["https://example.com".into()]))
        .auth(
            |head: &RequestHead| match head.query_param("token").as_deref() {
                Some("s3cret value") => Ok(()),
                Some("slow-down") => Err(Rejection::with_status(429, "rate limited")),
                Some(_) => Err(Rejection::unauthorized("bad token")),
                None => Err(Rejection::unauthorized("missing token")),
            },
        )
}

#[test]
fn auth_hook_sees_the_query_and_refuses_with_401() {
    let config = demanding_app();
    let at = |target: &str| request_with(target, &|l| Some(l.to_owned()), &[]);
    let acc = accept(at("/chat?token=s3cret%20value"), &config).unwrap();
    assert_eq!(acc.head.path(), "/chat");

    for (target, reason) in [
        ("/chat", "missing token"),
        ("/chat?token=guess", "bad token"),
    ] {
        let err = expect_reject(at(target), &config, 401);
        assert_eq!(
            err,
            HandshakeError::Unauthorized {
                status: 401,
                reason: reason.into()
            }
        );
        let (head, body) = rejection(&err);
        assert_eq!(head.reason(), "Unauthorized");
        assert!(body.contains(reason), "{body}");
    }
    let err = expect_reject(at("/chat?token=slow-down"), &config, 429);
    assert_eq!(rejection(&err).0.reason(), "Too Many Requests");

    // Origin is checked before the hook.
    let evil = request_with(
        "/chat?token=s3cret%20value",
        &|l| Some(l.to_owned()),
        &["Origin: https://evil.example"],
    );
    assert_eq!(
        expect_reject(evil, &config, 403),
        HandshakeError::OriginRefused
    );
}

#[test]
fn topics_from_the_query_with_limits() {
    let config = ServerConfig::new().topics_param("topics", 3, 8);
    let at = |target: &str| request_with(target, &|l| Some(l.to_owned()), &[]);
    let topics = |target: &str| accept(at(target), &config).map(|a| a.topics);

    assert_eq!(
        topics("/feed?topics=news,sport").unwrap(),
        ["news", "sport"]
    );
    assert_eq!(topics("/feed?x=1&topics=a%2Cb,a").unwrap(), ["a", "b"]);
    assert_eq!(topics("/feed?topics=a,b,c").unwrap(), ["a", "b", "c"]);
    assert_eq!(topics("/feed?topics=12345678").unwrap(), ["12345678"]);
    assert!(topics("/feed").unwrap().is_empty());
    assert!(topics("/feed?other=1").unwrap().is_empty());

    for target in [
        "/feed?topics=a,b,c,d",   // too many
        "/feed?topics=123456789", // too long
        "/feed?topics=a,,b",      // empty item
        "/feed?topics=a%20b",     // space inside a topic
        "/feed?topics=%FF",       // not UTF-8
    ] {
        let err = expect_reject(at(target), &config, 400);
        assert!(
            matches!(err, HandshakeError::InvalidTopics(_)),
            "{target}: {err:?}"
        );
    }
}

#[test]
fn head_errors_become_431_and_400_responses() {
    for (err, status) in [
        (HeadError::TooLarge { limit: 16384 }, 431),
        (HeadError::TooManyHeaders { limit: 64 }, 431),
        (HeadError::Malformed("invalid token"), 400),
    ] {
        let err = HandshakeError::Head(err);
        assert_eq!(err.status(), status);
        let (head, _) = rejection(&err);
        assert_eq!(head.status(), status);
    }
}

#[test]
fn client_request_has_a_fresh_random_16_byte_key() {
    let mut a = BytesMut::new();
    let mut b = BytesMut::new();
    let ha = ClientHandshake::new(
        "example.com:8080",
        "/chat?x=1",
        &["chat", "superchat"],
        &[("Origin", "https://example.com")],
        &mut a,
    )
    .unwrap();
    let hb = ClientHandshake::new(
        "example.com:8080",
        "/chat?x=1",
        &["chat", "superchat"],
        &[("Origin", "https://example.com")],
        &mut b,
    )
    .unwrap();
    assert_ne!(ha.key(), hb.key());
    assert_ne!(a, b);
    for (hs, wire) in [(&ha, &a), (&hb, &b)] {
        assert_eq!(STANDARD.decode(hs.key()).unwrap().len(), 16);
        let req = HeadParser::new(Limits::default())
            .parse_request(&mut wire.clone())
            .unwrap()
            .unwrap();
        assert_eq!(req.method(), "GET");
        assert_eq!(req.target(), "/chat?x=1");
        assert_eq!(req.minor_version(), 1);
        assert_eq!(req.header_str("host"), Some("example.com:8080"));
        assert_eq!(req.header_str("sec-websocket-key"), Some(hs.key()));
        assert_eq!(req.header_str("sec-websocket-version"), Some("13"));
        assert_eq!(
            req.header_str("sec-websocket-protocol"),
            Some("chat, superchat")
        );
        assert_eq!(req.header_str("origin"), Some("https://example.com"));
    }
    // Many keys, all different.
    let keys: std::collections::HashSet<String> = (0..64)
        .map(|_| {
            ClientHandshake::new("a", "/", &[], &[], &mut BytesMut::new())
                .unwrap()
                .key()
                .to_owned()
        })
        .collect();
    assert_eq!(keys.len(), 64);
}

#[test]
fn client_refuses_header_injection() {
    let mut out = BytesMut::new();
    assert!(ClientHandshake::new("a\r\nX: y", "/", &[], &[], &mut out).is_err());
    assert!(ClientHandshake::new("a", "/ HTTP/1.0\r\n", &[], &[], &mut out).is_err());
    assert!(ClientHandshake::new("a", "/", &["chat\r\nX: y"], &[], &mut out).is_err());
    assert!(ClientHandshake::new("a", "/", &[], &[("X", "v\n")], &mut out).is_err());
    assert!(ClientHandshake::new("a", "/", &[], &[("X: y", "v")], &mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn client_and_server_agree() {
    let mut wire = BytesMut::new();
    let hs = ClientHandshake::new("example.com", "/chat", &["v2", "chat"], &[], &mut wire).unwrap();
    let req = HeadParser::new(Limits::default())
        .parse_request(&mut wire)
        .unwrap()
        .unwrap();
    let acc = accept(req, &ServerConfig::new().subprotocols(["chat", "v2"])).unwrap();
    let mut out = BytesMut::new();
    acc.write_response(&mut out);
    let (resp, _) = parse_response(&out);
    assert_eq!(hs.validate(&resp).unwrap().as_deref(), Some("chat"));
}

/// A 101 for `hs`, with `edit` applied to each header line (`None` drops it)
/// and `extra` lines appended.
fn response_for(
    hs: &ClientHandshake,
    status_line: &str,
    edit: &dyn Fn(&str) -> Option<String>,
    extra: &[&str],
) -> ResponseHead {
    let accept = String::from_utf8(accept_key(hs.key().as_bytes()).to_vec()).unwrap();
    let mut text = format!("{status_line}\r\n");
    for l in [
        "Upgrade: websocket",
        "Connection: Upgrade",
        &format!("Sec-WebSocket-Accept: {accept}"),
    ] {
        if let Some(l) = edit(l) {
            text.push_str(&l);
            text.push_str("\r\n");
        }
    }
    for l in extra {
        text.push_str(l);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    parse_response(text.as_bytes()).0
}

#[test]
fn client_validate_checks_every_field() {
    let hs =
        ClientHandshake::new("a", "/", &["chat", "superchat"], &[], &mut BytesMut::new()).unwrap();
    let keep = |l: &str| Some(l.to_owned());
    let ok = "HTTP/1.1 101 Switching Protocols";
    let v = |status: &str, edit: &dyn Fn(&str) -> Option<String>, extra: &[&str]| {
        hs.validate(&response_for(&hs, status, edit, extra))
    };

    assert_eq!(v(ok, &keep, &[]), Ok(None));
    assert_eq!(
        v(ok, &keep, &["Sec-WebSocket-Protocol: superchat"]),
        Ok(Some("superchat".into()))
    );
    assert_eq!(
        v(
            ok,
            &|l| Some(
                l.replace("Connection: Upgrade", "connection: keep-alive, UPGRADE")
                    .replace("websocket", "WebSocket")
            ),
            &[]
        ),
        Ok(None)
    );

    assert_eq!(
        v("HTTP/1.1 200 OK", &keep, &[]),
        Err(HandshakeError::UnexpectedStatus(200))
    );
    assert_eq!(
        v("HTTP/1.1 403 Forbidden", &keep, &[]),
        Err(HandshakeError::UnexpectedStatus(403))
    );
    let drop_line =
        |name: &'static str| move |l: &str| (!l.starts_with(name)).then(|| l.to_owned());
    assert_eq!(
        v(ok, &drop_line("Upgrade"), &[]),
        Err(HandshakeError::NotWebSocket)
    );
    assert_eq!(
        v(ok, &drop_line("Connection"), &[]),
        Err(HandshakeError::MissingConnectionUpgrade)
    );
    assert_eq!(
        v(ok, &drop_line("Sec-WebSocket-Accept"), &[]),
        Err(HandshakeError::AcceptMismatch)
    );
    // The RFC's accept value belongs to another key.
    assert_eq!(
        v(
            ok,
            &|l| Some(if l.starts_with("Sec-WebSocket-Accept") {
                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()
            } else {
                l.to_owned()
            }),
            &[]
        ),
        Err(HandshakeError::AcceptMismatch)
    );
    assert_eq!(
        v(ok, &keep, &["Sec-WebSocket-Protocol: mqtt"]),
        Err(HandshakeError::ProtocolNotOffered("mqtt".into()))
    );
    // A list is not a selection.
    assert!(matches!(
        v(ok, &keep, &["Sec-WebSocket-Protocol: chat, superchat"]),
        Err(HandshakeError::ProtocolNotOffered(_))
    ));
    assert!(matches!(
        v(
            ok,
            &keep,
            &[
                "Sec-WebSocket-Protocol: chat",
                "Sec-WebSocket-Protocol: chat"
            ]
        ),
        Err(HandshakeError::ProtocolNotOffered(_))
    ));
    assert_eq!(
        v(ok, &keep, &["Sec-WebSocket-Extensions: permessage-deflate"]),
        Err(HandshakeError::ExtensionNotOffered(
            "permessage-deflate".into()
        ))
    );
    // No subprotocol offered: any selection is refused.
    let bare = ClientHandshake::new("a", "/", &[], &[], &mut BytesMut::new()).unwrap();
    let resp = response_for(&bare, ok, &keep, &["Sec-WebSocket-Protocol: chat"]);
    assert!(matches!(
        bare.validate(&resp),
        Err(HandshakeError::ProtocolNotOffered(_))
    ));
}
/// `validate` looked only at the first `Sec-WebSocket-Extensions` header:
/// an empty one followed by `permessage-deflate` passed, and the client
/// would then fail on the first compressed (RSV1) frame.
#[test]
fn client_refuses_extension_in_a_second_extensions_header() {
    let hs = ClientHandshake::new("a", "/", &[], &[], &mut BytesMut::new()).unwrap();
    let resp = response_for(
        &hs,
        "HTTP/1.1 101 Switching Protocols",
        &|l| Some(l.to_owned()),
        &[
            "Sec-WebSocket-Extensions: ",
            "Sec-WebSocket-Extensions: permessage-deflate",
        ],
    );
    assert_eq!(
        hs.validate(&resp),
        Err(HandshakeError::ExtensionNotOffered(
            "permessage-deflate".into()
        ))
    );
}

/// An auth hook could refuse with any `u16`: 99 or 1000 gave an
/// unparseable status line, 200 or 101 a "refusal" that reads as success.
/// A refusal is always answered with an error status (500 when the hook's
/// is not 4xx/5xx), in a complete response.
#[test]
fn auth_rejection_with_a_non_error_status_is_still_an_error_response() {
    for (hook_status, answered) in [
        (0, 500),
        (99, 500),
        (101, 500),
        (200, 500),
        (302, 500),
        (1000, 500),
        (65535, 500),
        (400, 400),
        (403, 403),
        (599, 599),
    ] {
        let config = ServerConfig::new()
            .auth(move |_: &RequestHead| Err(Rejection::with_status(hook_status, "no")));
        let err = expect_reject(request(&[]), &config, answered);
        assert_eq!(
            rejection(&err).0.status(),
            answered,
            "hook status {hook_status}"
        );
    }
}

/// A 101 must be HTTP/1.1 and carry exactly one matching accept key.
#[test]
fn client_refuses_http10_and_duplicate_accept_headers() {
    use rtwire::ws::handshake::accept_key;
    let mut out = BytesMut::new();
    let hs = ClientHandshake::new("a", "/", &[], &[], &mut out).unwrap();
    let key = std::str::from_utf8(&accept_key(hs.key().as_bytes()))
        .unwrap()
        .to_owned();
    let parse = |text: String| {
        HeadParser::new(Limits::default())
            .parse_response(&mut BytesMut::from(text.as_bytes()))
            .unwrap()
            .unwrap()
    };
    let ok = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {key}\r\n\r\n");
    assert!(hs.validate(&parse(ok.clone())).is_ok());
    let http10 = ok.replace("HTTP/1.1", "HTTP/1.0");
    assert_eq!(
        hs.validate(&parse(http10)),
        Err(HandshakeError::HttpVersion)
    );
    let dup = ok.replace(
        "\r\n\r\n",
        &format!("\r\nSec-WebSocket-Accept: {key}\r\n\r\n"),
    );
    assert_eq!(
        hs.validate(&parse(dup)),
        Err(HandshakeError::AcceptMismatch)
    );
}
