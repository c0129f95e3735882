//! The SSE `Decoder` on arbitrary bytes: fed whole and in chunks (the first
//! input byte picks the chunk size) it must give the same events, the same
//! last event id and retry; and it must agree with a deliberately simple
//! reference parser written here, line by line, from the WHATWG text
//! ("9.2.6 Interpreting an event stream"), which decodes the whole stream as
//! UTF-8 first (lossy, stripping one leading BOM) and then splits lines.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rtwire::sse::{Decoder, Limits};

#[derive(Debug, PartialEq)]
struct Ev {
    event_type: String,
    data: String,
    last_event_id: String,
}

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Ev>,
    last_event_id: String,
    retry: Option<u64>,
    error: bool,
}

fn run(input: &[u8], chunk: usize) -> Outcome {
    let mut dec = Decoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    let mut error = false;
    'feed: for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(ev)) => events.push(Ev {
                    event_type: ev.event_type().to_owned(),
                    data: ev.data().to_owned(),
                    last_event_id: ev.last_event_id().to_owned(),
                }),
                Ok(None) => break,
                Err(_) => {
                    error = true;
                    break 'feed;
                }
            }
        }
    }
    Outcome {
        events,
        last_event_id: dec.last_event_id().to_owned(),
        retry: dec.retry(),
        error,
    }
}

/// The spec, as plainly as possible.
fn reference(input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    // Lines: terminated by CRLF, LF or CR; an unterminated last line is
    // never processed (the stream ended mid-event).
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines.push(std::mem::take(&mut cur));
            }
            '\n' => lines.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    let (mut data, mut event_type, mut id_buf) = (String::new(), String::new(), String::new());
    let mut last_event_id = String::new();
    let mut retry = None;
    let mut events = Vec::new();
    for line in lines {
        if line.is_empty() {
            // Dispatch.
            last_event_id = id_buf.clone();
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            events.push(Ev {
                event_type: if event_type.is_empty() {
                    "message".to_owned()
                } else {
                    std::mem::take(&mut event_type)
                },
                data: std::mem::take(&mut data),
                last_event_id: last_event_id.clone(),
            });
            event_type.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&line[..], ""),
        };
        match field {
            "event" => event_type = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" => {
                if !value.contains('\0') {
                    id_buf = value.to_owned();
                }
            }
            "retry" => {
                if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
                    retry = Some(value.bytes().fold(0u64, |acc, b| {
                        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
                    }));
                }
            }
            _ => {}
        }
    }
    Outcome {
        events,
        last_event_id,
        retry,
        error: false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, input)) = data.split_first() else {
        return;
    };
    let whole = run(input, input.len());
    let chunked = run(input, usize::from(k % 17) + 1);
    assert_eq!(whole, chunked, "chunking changed the outcome");
    if !whole.error {
        let spec = reference(input);
        assert_eq!(
            whole.events, spec.events,
            "events differ from the reference"
        );
        assert_eq!(whole.retry, spec.retry, "retry differs from the reference");
    }
});
