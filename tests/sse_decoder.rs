//! The WHATWG event-stream parsing rules, one test per rule, plus the
//! web-platform-tests `eventsource/format-*` cases rebuilt from the standard.

use bytes::BytesMut;
use proptest::prelude::*;
use rtwire::sse::{DecodeError, Decoder, Limits, MessageEvent};

/// Decodes a whole stream (fed in one chunk), then ends it.
fn decode_all(input: &[u8]) -> (Vec<MessageEvent>, Decoder) {
    decode_chunks(&[input])
}

fn decode_chunks(chunks: &[&[u8]]) -> (Vec<MessageEvent>, Decoder) {
    let mut dec = Decoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        while let Some(ev) = dec.decode(&mut buf).unwrap() {
            out.push(ev);
        }
    }
    dec.reset_stream();
    (out, dec)
}

fn data(input: &[u8]) -> Vec<String> {
    decode_all(input)
        .0
        .into_iter()
        .map(MessageEvent::into_data)
        .collect()
}

#[test]
fn wpt_format_field_parsing_golden_vector() {
    let input = b"data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n";
    let (evs, _) = decode_all(input);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].data(), "\0\n 2\n1\n3\n\n4");
    assert_eq!(evs[0].event_type(), "message");
}

#[test]
fn golden_vector_byte_by_byte() {
    let input: &[u8] = b"data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n";
    let chunks: Vec<&[u8]> = input.chunks(1).collect();
    let (evs, _) = decode_chunks(&chunks);
    assert_eq!(evs[0].data(), "\0\n 2\n1\n3\n\n4");
}

#[test]
fn wpt_format_bom_one_bom_is_stripped() {
    assert_eq!(data(b"\xEF\xBB\xBFdata:1\n\ndata:2\n\ndata:3"), ["1", "2"]);
}

#[test]
fn wpt_format_bom_2_second_bom_is_part_of_the_field_name() {
    assert_eq!(
        data(b"\xEF\xBB\xBF\xEF\xBB\xBFdata:1\n\ndata:2\n\ndata:3\n\n"),
        ["2", "3"]
    );
}

#[test]
fn bom_only_at_stream_start() {
    assert_eq!(data(b"data:1\n\n\xEF\xBB\xBFdata:2\n\n"), ["1"]);
}

#[test]
fn wpt_format_comments() {
    let long = "x".repeat(2048);
    let input =
        format!("data:1\r:\0\n:\r\ndata:2\n:{long}\rdata:3\n:data:fail\r:{long}\ndata:4\n\n");
    assert_eq!(data(input.as_bytes()), ["1\n2\n3\n4"]);
}

#[test]
fn wpt_format_data_before_final_empty_line() {
    let (evs, dec) = decode_all(b"retry:1000\ndata:test1\n\nid:test\ndata:test2");
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].data(), "test1");
    assert_eq!(evs[0].last_event_id(), "");
    // The id line of the unterminated event was never dispatched.
    assert_eq!(dec.last_event_id(), "");
    assert_eq!(dec.retry(), Some(1000));
}

#[test]
fn wpt_format_field_data() {
    assert_eq!(
        data(b"data:\n\ndata\ndata\n\ndata:test\n\n"),
        ["", "\n", "test"]
    );
}

#[test]
fn wpt_format_field_event_empty() {
    let (evs, _) = decode_all(b"event: \ndata:data\n\n");
    assert_eq!(evs[0].event_type(), "message");
    assert_eq!(evs[0].data(), "data");
}

#[test]
fn wpt_format_field_event() {
    let (evs, _) = decode_all(b"event:test\ndata:x\n\ndata:x\n\n");
    assert_eq!(evs[0].event_type(), "test");
    assert_eq!(evs[1].event_type(), "message");
}

#[test]
fn wpt_format_field_id_persists_across_events() {
    let (evs, _) = decode_all(b"id: 1\ndata:a\n\ndata:b\n\nid\ndata:c\n\n");
    let ids: Vec<_> = evs.iter().map(|e| e.last_event_id()).collect();
    assert_eq!(ids, ["1", "1", ""]);
}

#[test]
fn wpt_format_field_id_null_is_ignored() {
    for v in ["\0\0", "x\0", "\0x", "x\0x", " \0"] {
        let input = format!("id: 1\ndata:hello\n\nid:{v}\ndata:hello\n\n");
        let (evs, dec) = decode_all(input.as_bytes());
        assert_eq!(evs.len(), 2, "{v:?}");
        assert_eq!(evs[1].last_event_id(), "1", "{v:?}");
        assert_eq!(dec.last_event_id(), "1");
    }
}

#[test]
fn wpt_format_field_id_non_ascii() {
    let (evs, _) = decode_all("id:…\ndata:hello\n\n".as_bytes());
    assert_eq!(evs[0].last_event_id(), "…");
}

#[test]
fn id_only_event_sets_last_event_id_without_dispatch() {
    let (evs, dec) = decode_all(b"id: 5\n\n");
    assert!(evs.is_empty());
    assert_eq!(dec.last_event_id(), "5");
}

#[test]
fn wpt_format_field_retry() {
    assert_eq!(decode_all(b"retry:03000\ndata:x\n\n").1.retry(), Some(3000));
    assert_eq!(decode_all(b"retry: 02000\n").1.retry(), Some(2000));
}

#[test]
fn wpt_format_field_retry_bogus_is_ignored() {
    let (evs, dec) = decode_all(b"retry:3000\nretry:1000x\ndata:x\n\n");
    assert_eq!(dec.retry(), Some(3000));
    assert_eq!(evs[0].data(), "x");
    for bogus in [
        &b"retry:+5\n"[..],
        b"retry:-5\n",
        b"retry:5.0\n",
        b"retry:  5\n",
        b"retry:\n",
        b"retry\n",
        b"retry:5 \n",
        b"retry:\xEF\xBC\x95\n", // a fullwidth digit is not an ASCII digit
    ] {
        assert_eq!(decode_all(bogus).1.retry(), None, "{bogus:?}");
    }
}

#[test]
fn retry_saturates_instead_of_overflowing() {
    let (_, dec) = decode_all(b"retry:99999999999999999999999999\n");
    assert_eq!(dec.retry(), Some(u64::MAX));
}

#[test]
fn wpt_format_field_retry_empty() {
    let (evs, dec) = decode_all(b"retry\ndata:test\n\n");
    assert_eq!(dec.retry(), None);
    assert_eq!(evs[0].data(), "test");
}

#[test]
fn wpt_format_field_unknown() {
    assert_eq!(
        data(
            b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n"
        ),
        ["test\n\ntest"]
    );
}

#[test]
fn wpt_format_leading_space_only_one_is_stripped() {
    assert_eq!(
        data(b"data:\ttest\rdata: \ndata:  test\n\n"),
        ["\ttest\n\n test"]
    );
}

#[test]
fn wpt_format_newlines() {
    assert_eq!(
        data(b"data:test\r\ndata\ndata:test\r\n\r"),
        ["test\n\ntest"]
    );
}

#[test]
fn wpt_format_null_character() {
    assert_eq!(data(b"data:\0\n\n"), ["\0"]);
}

#[test]
fn wpt_format_utf_8() {
    assert_eq!(data("data:ok…\n\n".as_bytes()), ["ok…"]);
}

#[test]
fn invalid_utf8_is_replaced() {
    assert_eq!(data(b"data:a\xFFb\xE2\x82\n\n"), ["a\u{FFFD}b\u{FFFD}"]);
}

#[test]
fn field_names_are_case_sensitive() {
    assert!(data(b"Data:x\n\nDATA:y\n\n").is_empty());
    let (evs, dec) = decode_all(b"ID:1\nEvent:e\nRetry:5\ndata:x\n\n");
    assert_eq!(evs[0].event_type(), "message");
    assert_eq!(evs[0].last_event_id(), "");
    assert_eq!(dec.retry(), None);
}

#[test]
fn line_without_colon_is_field_with_empty_value() {
    // "data" appends an empty line; "event" sets an empty type.
    let (evs, _) = decode_all(b"event:x\nevent\ndata\ndata\n\n");
    assert_eq!(evs[0].data(), "\n");
    assert_eq!(evs[0].event_type(), "message");
}

#[test]
fn cr_lf_and_crlf_line_ends() {
    assert_eq!(data(b"data:a\rdata:b\r\r"), ["a\nb"]);
    assert_eq!(data(b"data:a\ndata:b\n\n"), ["a\nb"]);
    assert_eq!(data(b"data:a\r\ndata:b\r\n\r\n"), ["a\nb"]);
    // LF CR is two line ends: an empty line dispatches.
    assert_eq!(data(b"data:a\n\rdata:b\n\n"), ["a", "b"]);
}

#[test]
fn crlf_split_across_chunks() {
    let (evs, _) = decode_chunks(&[b"data:a\r", b"\ndata:b\r", b"\n\r", b"\n"]);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].data(), "a\nb");
}

#[test]
fn cr_at_chunk_end_then_other_byte() {
    let (evs, _) = decode_chunks(&[b"data:a\r", b"\r"]);
    assert_eq!(evs[0].data(), "a");
}

#[test]
fn empty_data_buffer_is_not_dispatched_and_resets_type() {
    let (evs, _) = decode_all(b"event:x\n\ndata:y\n\n");
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].event_type(), "message");
}

#[test]
fn unterminated_final_event_is_discarded() {
    let mut dec = Decoder::new(Limits::default());
    let mut buf = BytesMut::from(&b"data:a\n\ndata:b\n"[..]);
    assert_eq!(dec.decode(&mut buf).unwrap().unwrap().data(), "a");
    assert!(dec.decode(&mut buf).unwrap().is_none());
    dec.reset_stream();
    buf.clear();
    // A new stream (reconnection): "b" never shows up.
    buf.extend_from_slice(b"\xEF\xBB\xBF\ndata:c\n\n");
    assert_eq!(dec.decode(&mut buf).unwrap().unwrap().data(), "c");
}

#[test]
fn reset_stream_keeps_the_dispatched_id_only() {
    let mut dec = Decoder::new(Limits::default());
    let mut buf = BytesMut::from(&b"id:1\ndata:a\n\nid:2\n"[..]);
    dec.decode(&mut buf).unwrap().unwrap();
    assert!(dec.decode(&mut buf).unwrap().is_none());
    dec.reset_stream();
    buf.clear();
    buf.extend_from_slice(b"data:b\n\n");
    assert_eq!(dec.decode(&mut buf).unwrap().unwrap().last_event_id(), "1");
}

#[test]
fn with_last_event_id_seeds_both_buffers() {
    let mut dec = Decoder::with_last_event_id(Limits::default(), "9");
    let mut buf = BytesMut::from(&b"data:x\n\n"[..]);
    assert_eq!(dec.decode(&mut buf).unwrap().unwrap().last_event_id(), "9");
}

#[test]
fn line_limit_bounds_an_endless_line() {
    let limits = Limits::new().max_line(16).max_event(1024);
    let mut dec = Decoder::new(limits);
    let mut buf = BytesMut::new();
    let mut err = None;
    for _ in 0..100 {
        buf.extend_from_slice(b"xxxx");
        match dec.decode(&mut buf) {
            Ok(_) => {}
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    assert_eq!(err, Some(DecodeError::LineTooLong { limit: 16 }));
    assert!(buf.len() <= 20);
}

#[test]
fn line_limit_applies_to_complete_lines() {
    let mut dec = Decoder::new(Limits::new().max_line(8).max_event(1024));
    let mut buf = BytesMut::from(&b"data:123456789\n\n"[..]);
    assert_eq!(
        dec.decode(&mut buf),
        Err(DecodeError::LineTooLong { limit: 8 })
    );
}

#[test]
fn event_limit_bounds_many_short_lines() {
    let mut dec = Decoder::new(Limits::new().max_line(64).max_event(100));
    let mut buf = BytesMut::new();
    let mut result = Ok(None);
    for _ in 0..100 {
        buf.extend_from_slice(b"data:0123456789\n");
        result = dec.decode(&mut buf);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(DecodeError::EventTooLarge { limit: 100 }));
}

proptest! {
    /// Any bytes, any chunking: no panic, and the same events as one chunk.
    #[test]
    fn chunking_never_changes_the_result(
        input in proptest::collection::vec(
            prop_oneof![
                Just(b'\r'), Just(b'\n'), Just(b':'), Just(b' '), Just(0u8), Just(0xEF),
                Just(0xBB), Just(0xBF), Just(b'd'), Just(b'a'), Just(b't'), Just(b'i'),
                any::<u8>()
            ],
            0..300,
        ),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let (whole, d1) = decode_all(&input);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for p in points {
            chunks.push(&input[prev..p]);
            prev = p;
        }
        chunks.push(&input[prev..]);
        let (split, d2) = decode_chunks(&chunks);
        prop_assert_eq!(whole, split);
        prop_assert_eq!(d1.last_event_id(), d2.last_event_id());
        prop_assert_eq!(d1.retry(), d2.retry());
    }
}
