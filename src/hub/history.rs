//! Room history: the settings ([`HistoryConfig`]), how a join asks for what
//! it missed ([`JoinFrom`]) and what it got ([`Resume`], [`Joined`]), the
//! notices a member is sent ([`RoomNotice`]), and the record a history
//! room's message is stored as.
//!
//! ## The record (a stored publication's data)
//!
//! `[2][instance length: u8][instance][except: u64 BE, 0 = none][opcode: u8][payload]`:
//! the message as the application gave it, before its position is known.
//! Every instance makes the frame from it once, with the position written
//! in by [`HubConfig::stamp`](super::HubConfig::stamp), for all its
//! members; a replay does the same per replayed message. `except` names a
//! connection of the sending instance, so it only matters there, and
//! never in a replay.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::pubsub::{Position, ResetReason};
use crate::ws::{Message, OpCode, Utf8Bytes};

use super::conn::ConnId;

/// Decides whether a room keeps history.
pub type RoomFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Writes a message's position into it (see
/// [`HubConfig::stamp`](super::HubConfig::stamp)).
pub type StampFormat = Arc<dyn Fn(Position, &Message) -> Message + Send + Sync>;

/// Builds the message a member is sent for a [`RoomNotice`] (`None`: not
/// sent).
pub type NoticeFormat = Arc<dyn Fn(&RoomNotice<'_>) -> Option<Message> + Send + Sync>;

/// Which rooms keep a history of their messages, and its bounds.
/// `HistoryConfig::default()`:
///
/// | setting | default |
/// |---|---|
/// | `size` | 1,000 messages per room |
/// | `max_bytes` | 1 MiB per room (in memory) |
/// | `ttl` | 1 hour after the room's last message |
/// | `max_join_history` | 50 |
/// | `replay_limit` | 10,000 |
/// | `replay_timeout` | 30 s |
/// | `rooms` | every room |
///
/// `size`, `max_bytes` and `ttl` are the store's bounds: the hub's own
/// in-memory store ([`Hub::new`](super::Hub::new)) is made with all three,
/// its Redis store ([`Hub::with_redis`](super::Hub::with_redis)) with
/// `size` and `ttl`; a store given to [`Hub::with_bus`](super::Hub::with_bus)
/// keeps its own. Whichever bound is reached first evicts the oldest
/// messages (a resume that needs one is told
/// [`GapReason::Evicted`](crate::pubsub::GapReason::Evicted)).
///
/// ```
/// use rtwire::hub::{HistoryConfig, HubConfig};
/// let h = HistoryConfig::default()
///     .size(500)
///     .max_join_history(20)
///     .rooms(|room| !room.starts_with("ephemeral-"));
/// let c = HubConfig::default().history(h);
/// assert_eq!(c.history.as_ref().map(|h| h.size), Some(500));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct HistoryConfig {
    /// Messages kept per room (at least 1).
    pub size: usize,
    /// Bytes kept per room, by the in-memory store (the payloads and
    /// their records; see [`MemoryConfig::max_bytes`](crate::pubsub::MemoryConfig::max_bytes)).
    pub max_bytes: usize,
    /// How long a room's history outlives its last message.
    pub ttl: Duration,
    /// The most messages a [`JoinFrom::History`] join is given.
    pub max_join_history: usize,
    /// The most messages one resume ([`JoinFrom::Since`]) replays; a
    /// member that missed more is told [`GapReason::OverLimit`](crate::pubsub::GapReason::OverLimit).
    pub replay_limit: usize,
    /// How long a join's replay may take (the member reads it at its own
    /// pace: a replay waits for room in its queue, and fills at most half
    /// of it); a member that has not caught up by then is closed with
    /// 1013, to resume later.
    pub replay_timeout: Duration,
    /// Which rooms keep history (`None`: all). A room without history
    /// costs what it did before history existed: its broadcasts are not
    /// stored and carry no position.
    pub rooms: Option<RoomFilter>,
}

impl fmt::Debug for HistoryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistoryConfig")
            .field("size", &self.size)
            .field("max_bytes", &self.max_bytes)
            .field("ttl", &self.ttl)
            .field("max_join_history", &self.max_join_history)
            .field("replay_limit", &self.replay_limit)
            .field("replay_timeout", &self.replay_timeout)
            .field("rooms", &self.rooms.as_ref().map(|_| "filter"))
            .finish()
    }
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            size: 1000,
            max_bytes: 1024 * 1024,
            ttl: Duration::from_secs(3600),
            max_join_history: 50,
            replay_limit: 10_000,
            replay_timeout: Duration::from_secs(30),
            rooms: None,
        }
    }
}

impl HistoryConfig {
    /// Sets [`size`](Self::size) (at least 1).
    pub fn size(mut self, n: usize) -> Self {
        self.size = n.max(1);
        self
    }
    /// Sets [`max_bytes`](Self::max_bytes).
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }
    /// Sets [`ttl`](Self::ttl) (at least 1 ms).
    pub fn ttl(mut self, t: Duration) -> Self {
        self.ttl = t.max(Duration::from_millis(1));
        self
    }
    /// Sets [`max_join_history`](Self::max_join_history).
    pub fn max_join_history(mut self, n: usize) -> Self {
        self.max_join_history = n;
        self
    }
    /// Sets [`replay_limit`](Self::replay_limit).
    pub fn replay_limit(mut self, n: usize) -> Self {
        self.replay_limit = n;
        self
    }
    /// Sets [`replay_timeout`](Self::replay_timeout).
    pub fn replay_timeout(mut self, t: Duration) -> Self {
        self.replay_timeout = t;
        self
    }
    /// Sets [`rooms`](Self::rooms).
    pub fn rooms<F>(mut self, f: F) -> Self
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
    {
        self.rooms = Some(Arc::new(f));
        self
    }

    /// Whether `room` keeps history under this config.
    pub fn covers(&self, room: &str) -> bool {
        self.rooms.as_ref().is_none_or(|f| f(room))
    }
}

/// What a member joining a room with history asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinFrom {
    /// Live messages only, from now.
    Live,
    /// Every message after this position (a reconnecting member's last
    /// one), then live: [`Resume::Recovered`], or [`Resume::Reset`] when
    /// the history cannot say.
    Since(Position),
    /// The last N messages (capped at
    /// [`max_join_history`](HistoryConfig::max_join_history)), then live.
    History(usize),
    /// A position the client sent that is not one (malformed): a reset
    /// ([`ResetReason::InvalidId`]), then live.
    Invalid,
}

/// How a join into a room with history began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resume {
    /// Live from `top`, nothing replayed ([`JoinFrom::Live`]).
    Live {
        /// The room's position when the member went live.
        top: Option<Position>,
    },
    /// Every message after the member's position was given, in order,
    /// once (`replayed` of them), then live from `top`.
    Recovered {
        /// How many were replayed.
        replayed: u64,
        /// Where live delivery took over.
        top: Position,
    },
    /// The last `replayed` messages were given, then live from `top`
    /// ([`JoinFrom::History`]).
    History {
        /// How many were given.
        replayed: u64,
        /// Where live delivery took over.
        top: Position,
    },
    /// What the member missed cannot be given (it was told with a
    /// [`RoomNotice::Reset`] first); live from `top`.
    Reset {
        /// Why.
        reason: ResetReason,
        /// How many messages it missed, when the history can say (same
        /// epoch).
        missed: Option<u64>,
        /// Where live delivery took over.
        top: Option<Position>,
    },
}

impl Resume {
    /// Whether everything the member asked for was given.
    pub fn recovered(&self) -> bool {
        !matches!(self, Resume::Reset { .. })
    }

    /// Where live delivery took over: the position a client keeps as its
    /// last, so that its next resume asks for everything after it.
    pub fn top(&self) -> Option<Position> {
        match *self {
            Resume::Live { top } | Resume::Reset { top, .. } => top,
            Resume::Recovered { top, .. } | Resume::History { top, .. } => Some(top),
        }
    }

    /// How many messages were replayed.
    pub fn replayed(&self) -> u64 {
        match *self {
            Resume::Recovered { replayed, .. } | Resume::History { replayed, .. } => replayed,
            _ => 0,
        }
    }
}

/// What [`Hub::join_with`](super::Hub::join_with) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Joined {
    /// Whether this was the user's presence join (its first connection
    /// there, on every instance).
    pub presence: bool,
    /// How it began; `None` for a room without history.
    pub resume: Option<Resume>,
}

/// A notice the hub queues for a member of a room with history, in order
/// with the room's messages. Formatted by
/// [`HubConfig::room_notice`](super::HubConfig::room_notice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomNotice<'a> {
    /// The member cannot be given what it missed (its resume, or the room's
    /// live delivery, hit a gap the history cannot fill): it starts over
    /// from `top`.
    Reset {
        /// The room.
        room: &'a str,
        /// Why.
        reason: ResetReason,
        /// How many messages it missed, when known.
        missed: Option<u64>,
        /// The room's position to start over from.
        top: Option<Position>,
    },
    /// The join is live: what came before it (replayed or not) is complete.
    /// Sent after the last replayed message and before the first live one.
    Joined {
        /// The room.
        room: &'a str,
        /// How it began.
        resume: &'a Resume,
    },
}

fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_pos(p: Option<Position>, out: &mut String) {
    match p {
        Some(p) => {
            out.push('"');
            out.push_str(&p.to_string());
            out.push('"');
        }
        None => out.push_str("null"),
    }
}

/// The default [`NoticeFormat`]: JSON envelopes, the shape of the hub's
/// envelope protocol.
///
/// - `{"type":"reset","room":R,"content":{"reason":"evicted","missed":N,"top":"<id>"}}`
///   (`missed` only when known);
/// - `{"type":"joined","room":R,"content":{"recovered":true,"replayed":N,"top":"<id>"}}`
///   (`"reason"` too after a reset).
///
/// ```
/// use rtwire::hub::{notice_message, Resume, RoomNotice};
/// use rtwire::pubsub::Position;
/// let r = Resume::Recovered { replayed: 3, top: Position::new(0xa, 7) };
/// let m = notice_message(&RoomNotice::Joined { room: "lobby", resume: &r }).unwrap();
/// assert_eq!(
///     m.as_text(),
///     Some(r#"{"type":"joined","room":"lobby","content":{"recovered":true,"replayed":3,"top":"a-7"}}"#)
/// );
/// ```
pub fn notice_message(n: &RoomNotice<'_>) -> Option<Message> {
    let mut s = String::with_capacity(128);
    match *n {
        RoomNotice::Reset {
            room,
            reason,
            missed,
            top,
        } => {
            s.push_str(r#"{"type":"reset","room":"#);
            json_str(room, &mut s);
            s.push_str(r#","content":{"reason":""#);
            s.push_str(reason.as_str());
            s.push('"');
            if let Some(m) = missed {
                s.push_str(&format!(r#","missed":{m}"#));
            }
            s.push_str(r#","top":"#);
            json_pos(top, &mut s);
            s.push_str("}}");
        }
        RoomNotice::Joined { room, resume } => {
            s.push_str(r#"{"type":"joined","room":"#);
            json_str(room, &mut s);
            s.push_str(&format!(
                r#","content":{{"recovered":{},"replayed":{}"#,
                resume.recovered(),
                resume.replayed()
            ));
            if let Resume::Reset { reason, .. } = resume {
                s.push_str(r#","reason":""#);
                s.push_str(reason.as_str());
                s.push('"');
            }
            s.push_str(r#","top":"#);
            json_pos(resume.top(), &mut s);
            s.push_str("}}");
        }
    }
    Some(Message::text(s))
}

/// A JSON-object text message with `"id":"<position>"` added as its last
/// field (the envelope protocol's [`StampFormat`]); anything else unchanged.
/// No parse: the field is spliced in before the closing brace.
///
/// ```
/// use rtwire::hub::stamp_json_id;
/// use rtwire::pubsub::Position;
/// use rtwire::ws::Message;
/// let m = stamp_json_id(Position::new(0x1f, 2), &Message::text(r#"{"type":"message"}"#));
/// assert_eq!(m.as_text(), Some(r#"{"type":"message","id":"1f-2"}"#));
/// let m = stamp_json_id(Position::new(1, 1), &Message::text("{ }"));
/// assert_eq!(m.as_text(), Some(r#"{ "id":"1-1"}"#));
/// let m = stamp_json_id(Position::new(1, 1), &Message::text("plain"));
/// assert_eq!(m.as_text(), Some("plain"));
/// ```
pub fn stamp_json_id(pos: Position, msg: &Message) -> Message {
    let Some(text) = msg.as_text() else {
        return msg.clone();
    };
    let body = text.trim_end();
    let Some(open) = body.strip_suffix('}') else {
        return msg.clone();
    };
    if !text.trim_start().starts_with('{') {
        return msg.clone();
    }
    let empty = open
        .trim_start()
        .strip_prefix('{')
        .is_some_and(|r| r.trim().is_empty());
    let mut out = String::with_capacity(text.len() + 32);
    out.push_str(open);
    if !empty {
        out.push(',');
    }
    out.push_str(r#""id":""#);
    out.push_str(&pos.to_string());
    out.push_str("\"}");
    Message::text(out)
}

/// Record version byte of a history room's message.
pub(crate) const RECORD_V2: u8 = 2;

/// The stored form of a history room's message (see the module docs).
pub(crate) fn encode_record(instance: &str, except: Option<ConnId>, msg: &Message) -> Bytes {
    let inst = &instance.as_bytes()[..instance.len().min(255)];
    let payload = msg.payload();
    let mut b = BytesMut::with_capacity(11 + inst.len() + payload.len());
    b.put_u8(RECORD_V2);
    b.put_u8(inst.len() as u8);
    b.put_slice(inst);
    b.put_u64(except.map_or(0, |c| c.0));
    b.put_u8(match msg.opcode() {
        OpCode::Text => 1,
        _ => 2,
    });
    b.put_slice(payload);
    b.freeze()
}

/// A decoded record: who sent it, whom it skips there, the message.
pub(crate) struct Record<'a> {
    pub(crate) instance: &'a [u8],
    pub(crate) except: Option<ConnId>,
    pub(crate) message: Message,
}

/// Parses a record; `None` when it is not one of ours (or its text is not
/// UTF-8).
pub(crate) fn decode_record(data: &Bytes) -> Option<Record<'_>> {
    let (&v, rest) = data.split_first()?;
    let (&n, rest) = rest.split_first()?;
    let n = n as usize;
    if v != RECORD_V2 || rest.len() < n + 9 {
        return None;
    }
    let instance = &rest[..n];
    let except = u64::from_be_bytes(rest[n..n + 8].try_into().ok()?);
    let op = rest[n + 8];
    let payload = data.slice(2 + n + 9..);
    let message = match op {
        1 => Message::Text(Utf8Bytes::try_from(payload).ok()?),
        2 => Message::Binary(payload),
        _ => return None,
    };
    Some(Record {
        instance,
        except: (except != 0).then_some(ConnId(except)),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_rejects_what_is_not_one() {
        let m = Message::text("héllo");
        let b = encode_record("node-a", Some(ConnId(7)), &m);
        let r = decode_record(&b).unwrap();
        assert_eq!(
            (r.instance, r.except, r.message),
            (&b"node-a"[..], Some(ConnId(7)), m)
        );
        let b = encode_record("x", None, &Message::binary(vec![0xff, 0]));
        let r = decode_record(&b).unwrap();
        assert_eq!(
            (r.except, r.message),
            (None, Message::binary(vec![0xff, 0]))
        );
        for bad in [
            &b""[..],
            &[2],
            &[2, 1, b'x'],
            &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        ] {
            assert!(decode_record(&Bytes::copy_from_slice(bad)).is_none());
        }
        // Invalid UTF-8 in a text record is not a message.
        let mut b = encode_record("x", None, &Message::text("ok")).to_vec();
        *b.last_mut().unwrap() = 0xff;
        assert!(decode_record(&Bytes::from(b)).is_none());
    }
}
