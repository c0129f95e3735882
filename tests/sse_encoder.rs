//! The encoder: wire format, typed errors, the broadcast case, and the
//! encode → decode round trip as a property under every chunking.

use bytes::BytesMut;
use proptest::prelude::*;
use rtwire::sse::{Decoder, Encoder, Event, EventError, Limits, MessageEvent};

fn decode(wire: &[u8], chunks: &[usize]) -> (Vec<MessageEvent>, Decoder) {
    let mut dec = Decoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = wire;
    let mut sizes = chunks.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(ev) = dec.decode(&mut buf).unwrap() {
            out.push(ev);
        }
    }
    (out, dec)
}

/// axum's encoder (0.7) splits `data` on CR and on LF separately, so
/// `"a\r\nb"` goes out as three data lines and a browser reads `"a\n\nb"`.
/// Here a CRLF is one line break.
#[test]
fn regression_axum_crlf_in_data_is_one_break() {
    let mut wire = BytesMut::new();
    Encoder::new().encode(&Event::new("a\r\nb"), &mut wire);
    assert_eq!(&wire[..], b"data: a\ndata: b\n\n");
    let (evs, _) = decode(&wire, &[]);
    assert_eq!(evs[0].data(), "a\nb");
}

#[test]
fn invalid_id_and_event_are_typed_errors() {
    assert_eq!(
        Event::new("x").with_id("1\n2").unwrap_err(),
        EventError::InvalidId { byte: b'\n' }
    );
    assert_eq!(
        Event::new("x").with_id("1\r").unwrap_err(),
        EventError::InvalidId { byte: b'\r' }
    );
    assert_eq!(
        Event::new("x").with_id("a\0b").unwrap_err(),
        EventError::InvalidId { byte: 0 }
    );
    assert_eq!(
        Event::new("x").with_event("a\nb").unwrap_err(),
        EventError::InvalidEventType { byte: b'\n' }
    );
    assert_eq!(
        Event::new("x").with_event("\r").unwrap_err(),
        EventError::InvalidEventType { byte: b'\r' }
    );
    // Long values (scanned with memchr rather than a byte loop) alike.
    let long = "x".repeat(40);
    for at in [0, 31, 32, 39, 40] {
        let bad = format!("{}\n{}", &long[..at], &long[at..]);
        assert_eq!(
            Event::new("x").with_id(bad.as_str()).unwrap_err(),
            EventError::InvalidId { byte: b'\n' }
        );
        let bad = format!("{}\r{}", &long[..at], &long[at..]);
        assert_eq!(
            Event::new("x").with_event(bad.as_str()).unwrap_err(),
            EventError::InvalidEventType { byte: b'\r' }
        );
        let bad = format!("{}\0{}", &long[..at], &long[at..]);
        assert!(Event::new("x").with_id(bad.as_str()).is_err());
    }
    assert!(Event::new("x").with_id(long.as_str()).is_ok());
    // NUL is fine in an event type and in data.
    assert!(Event::new("\0").with_event("a\0").is_ok());
}

#[test]
fn leading_space_in_values_survives() {
    let ev = Event::new("  two")
        .with_id(" 1")
        .unwrap()
        .with_event(" e")
        .unwrap();
    let (evs, _) = decode(&ev.to_encoded().as_bytes()[..], &[]);
    assert_eq!(evs[0].data(), "  two");
    assert_eq!(evs[0].last_event_id(), " 1");
    assert_eq!(evs[0].event_type(), " e");
}

#[test]
fn encoded_once_written_to_many() {
    let shared = Encoder::new().encode_to_bytes(&Event::new("tick").with_id("7").unwrap());
    let ptr = shared.as_bytes().as_ptr();
    let copies: Vec<_> = (0..4).map(|_| shared.clone()).collect();
    for c in &copies {
        // Same allocation, not a copy.
        assert_eq!(c.as_bytes().as_ptr(), ptr);
        let (evs, _) = decode(c.as_bytes(), &[]);
        assert_eq!((evs[0].data(), evs[0].last_event_id()), ("tick", "7"));
    }
}

#[test]
fn keepalive_and_comment_dispatch_nothing() {
    let enc = Encoder::new();
    let mut wire = BytesMut::new();
    enc.keepalive(&mut wire);
    enc.comment("hello\nworld", &mut wire);
    enc.retry(250, &mut wire);
    enc.encode(&Event::new("x"), &mut wire);
    let (evs, dec) = decode(&wire, &[]);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].data(), "x");
    assert_eq!(dec.retry(), Some(250));
}

/// What a browser decodes from `data`: CR, LF and CRLF each become one LF.
fn normalize(data: &str) -> String {
    data.replace("\r\n", "\n").replace('\r', "\n")
}

fn any_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('\r'),
            Just('\n'),
            Just(' '),
            Just(':'),
            Just('\0'),
            Just('\u{FEFF}'),
            Just('é'),
            any::<char>()
        ],
        // Past 32 bytes the line-break scan switches from a byte loop to
        // memchr: both paths are exercised.
        0..80,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn field_text(forbidden: &'static [char]) -> impl Strategy<Value = String> {
    any_text().prop_map(move |s| s.chars().filter(|c| !forbidden.contains(c)).collect())
}

fn any_event() -> impl Strategy<Value = Event<'static>> {
    (
        proptest::option::of(any_text()),
        proptest::option::of(field_text(&['\r', '\n', '\0'])),
        proptest::option::of(field_text(&['\r', '\n'])),
        proptest::option::of(any::<u64>()),
        proptest::collection::vec(any_text(), 0..3),
    )
        .prop_map(|(data, id, event, retry, comments)| {
            let mut ev = Event::empty();
            if let Some(d) = data {
                ev = ev.with_data(d);
            }
            if let Some(id) = id {
                ev = ev.with_id(id).unwrap();
            }
            if let Some(t) = event {
                ev = ev.with_event(t).unwrap();
            }
            if let Some(r) = retry {
                ev = ev.with_retry(r);
            }
            for c in comments {
                ev = ev.with_comment(c);
            }
            ev
        })
}

proptest! {
    /// decode(encode(e)) == e: one event per event with data, with the data
    /// (line breaks normalized), the type (`message` when unset or empty),
    /// the last event id (carried over from earlier events when unset) and
    /// the retry, under any chunking.
    #[test]
    fn round_trip_under_every_chunking(
        events in proptest::collection::vec(any_event(), 1..6),
        chunks in proptest::collection::vec(1usize..40, 0..8),
    ) {
        let enc = Encoder::new();
        let mut wire = BytesMut::new();
        for e in &events {
            enc.encode(e, &mut wire);
        }
        let (got, dec) = decode(&wire, &chunks);
        let mut expected = Vec::new();
        let mut last_id = String::new();
        let mut retry = None;
        for e in &events {
            if let Some(id) = e.id() {
                last_id = id.to_owned();
            }
            retry = e.retry().or(retry);
            if let Some(d) = e.data() {
                let ty = e.event().filter(|t| !t.is_empty()).unwrap_or("message");
                expected.push((ty.to_owned(), normalize(d), last_id.clone()));
            }
        }
        let got: Vec<_> = got
            .iter()
            .map(|m| (m.event_type().to_owned(), m.data().to_owned(), m.last_event_id().to_owned()))
            .collect();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(dec.last_event_id(), last_id.as_str());
        prop_assert_eq!(dec.retry(), retry);
    }
}
