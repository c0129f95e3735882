//! The seeds' JSON message protocol over a [`Hub`] (feature `serde`).
//!
//! Every message is an envelope `{"type","room","from","content","timestamp"}`
//! (absent fields omitted; `timestamp` is RFC 3339, set by the server).
//!
//! | client sends | the server does |
//! |---|---|
//! | `{"type":"join","room":R}` | joins R; answers `{"type":"presence","room":R,"content":[online list]}`; the room gets `{"type":"join","room":R,"from":USER}` if USER is new there |
//! | `{"type":"join","room":R,"since":ID}` | (a room with history) joins R with every message after `ID` first, then `{"type":"joined",...}`, then live; see below |
//! | `{"type":"join","room":R,"history":N}` | (a room with history) joins R with its last N messages first (N capped by [`HistoryConfig::max_join_history`](super::HistoryConfig::max_join_history)) |
//! | `{"type":"leave","room":R}` | leaves R; the room gets `{"type":"leave",...}` when USER's last connection left |
//! | `{"type":"message","room":R,"content":C}` | sends `{"type":"message","room":R,"from":USER,"content":C}` to every member of R, the sender included |
//! | `{"type":"broadcast","content":C}` | sends `{"type":"broadcast","from":USER,"content":C}` to every connection |
//! | `{"type":"ping"}` | answers `{"type":"pong"}` |
//!
//! ## Rooms with history ([`HubConfig::history`](super::HubConfig::history))
//!
//! Every `message` in such a room is stored before it is delivered and
//! carries its position: `"id":"<epoch hex>-<offset>"` (the same form as
//! the SSE manager's ids). A join into it, with or without `since` /
//! `history`, is answered, after what it replays and before any live
//! message, with
//! `{"type":"joined","room":R,"content":{"recovered":true,"replayed":N,"top":ID}}`:
//! the client keeps `top` (then each message's `id`) as its last
//! position, and after a reconnect joins with `"since"` set to it. When
//! the history cannot give what was missed (it was evicted or expired,
//! the epoch changed after a flush, more was missed than the replay
//! limit, the id is from another room or ahead of the room, or it is not
//! an id at all) the client gets, before anything else of that room,
//! `{"type":"reset","room":R,"content":{"reason":"evicted","missed":N,"top":ID}}`
//! (`reason`: `epoch-changed`, `evicted`, `over-limit`, `ahead`,
//! `invalid-id`, `lost`; `missed` when known) and `recovered` is `false`:
//! never a partial replay passed off as complete. A reset can also come
//! while live, when the room's history was lost under it.
//!
//! `from` is always the connection's user, never what the client claims.
//! Bad JSON, an unknown type, a missing room, or a rate-limited message is
//! answered with `{"type":"error","content":REASON}` and the connection is
//! kept; a message over the connection's size limit
//! (`ws::Config::max_message_size`) is closed with 1009 by the connection
//! itself; a rate that stays over the limit is closed with 1008.

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Hub, HubConfig, Inbound, JoinFrom, Meta, PresenceEvent, PresenceInfo, PresenceKind};
use crate::ws::{Conn, Message};
use crate::Error;

/// One envelope of the protocol.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Envelope {
    /// `join`, `leave`, `message`, `broadcast`, `ping`, `pong`,
    /// `presence`, `error`, `missed`.
    pub kind: String,
    /// The room, for room messages.
    pub room: Option<String>,
    /// The sender's user id (set by the server).
    pub from: Option<String>,
    /// The payload: any JSON (a string for chat; the online list for
    /// `presence`; a reason for `error`).
    pub content: Option<Value>,
    /// RFC 3339, set by the server.
    pub timestamp: Option<String>,
    /// A join's resume position: every message after it (a room with
    /// history).
    pub since: Option<String>,
    /// A join's request for the last N messages (a room with history).
    pub history: Option<u64>,
}

impl Envelope {
    /// An envelope of `kind`, stamped now.
    pub fn new(kind: &str) -> Self {
        Envelope {
            kind: kind.to_owned(),
            timestamp: Some(super::rfc3339(super::time::now_ms())),
            ..Envelope::default()
        }
    }

    /// `{"type":"error","content":reason}`.
    pub fn error(reason: impl Into<String>) -> Self {
        Envelope {
            content: Some(Value::String(reason.into())),
            ..Envelope::new("error")
        }
    }

    /// As JSON, absent fields omitted.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("type".into(), Value::String(self.kind.clone()));
        let mut opt = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        };
        opt("room", self.room.clone().map(Value::String));
        opt("from", self.from.clone().map(Value::String));
        opt("content", self.content.clone());
        opt("timestamp", self.timestamp.clone().map(Value::String));
        opt("since", self.since.clone().map(Value::String));
        opt("history", self.history.map(Value::from));
        Value::Object(m)
    }

    /// Parses one envelope: a JSON object with a string `type`; `room`,
    /// `from`, `timestamp` and `since`, when present, strings; `history`,
    /// when present, a non-negative integer. The error is a reason for the
    /// client.
    pub fn parse(json: &[u8]) -> Result<Envelope, String> {
        let v: Value = serde_json::from_slice(json).map_err(|e| format!("invalid JSON: {e}"))?;
        let Value::Object(mut m) = v else {
            return Err("an envelope must be a JSON object".into());
        };
        let mut string = |k: &str| -> Result<Option<String>, String> {
            match m.remove(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(format!("\"{k}\" must be a string")),
            }
        };
        let kind = string("type")?.ok_or("missing \"type\"")?;
        let room = string("room")?;
        let from = string("from")?;
        let timestamp = string("timestamp")?;
        let since = string("since")?;
        let history = match m.remove("history") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or("\"history\" must be a non-negative integer")?,
            ),
        };
        Ok(Envelope {
            kind,
            room,
            from,
            timestamp,
            since,
            history,
            content: m.remove("content"),
        })
    }

    /// As a text message.
    pub fn to_message(&self) -> Message {
        Message::text(self.to_json().to_string())
    }
}

fn info_json(p: &PresenceInfo) -> Value {
    serde_json::json!({
        "user": p.user,
        "connections": p.connections,
        "joined_at": super::rfc3339(p.joined_at_ms),
        "last_seen": super::rfc3339(p.last_seen_ms),
    })
}

/// The presence announcement of the protocol:
/// `{"type":"join"|"leave","room","from":USER,"timestamp"}`.
pub fn presence_message(ev: &PresenceEvent) -> Option<Message> {
    let kind = match ev.kind {
        PresenceKind::Join => "join",
        PresenceKind::Leave => "leave",
    };
    let e = Envelope {
        kind: kind.into(),
        room: Some(ev.room.clone()),
        from: Some(ev.user.clone()),
        timestamp: Some(super::rfc3339(ev.at_ms)),
        ..Envelope::default()
    };
    Some(e.to_message())
}

/// `config` with the protocol's presence announcements, missed-message
/// notices (`{"type":"missed","content":N}`) and, for rooms with history,
/// each message's `"id"` ([`stamp_json_id`](super::stamp_json_id)) and
/// the `reset` / `joined` notices ([`notice_message`](super::notice_message)).
pub fn configure(config: HubConfig) -> HubConfig {
    config
        .presence_format(presence_message)
        .stamp(super::stamp_json_id)
        .room_notice(super::notice_message)
        .missed_message(|n| {
            Envelope {
                content: Some(Value::from(n)),
                ..Envelope::new("missed")
            }
            .to_message()
        })
}

/// Runs the protocol on an accepted connection for `user` until it ends
/// (the peer closed or went away, or the hub closed it). The hub should
/// be configured with [`configure`].
pub async fn serve<S>(hub: &Hub, conn: Conn<S>, user: &str, meta: Meta) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut read, write) = conn.split();
    let mut reg = hub.register(write, user, meta);
    let id = reg.id();
    let result = loop {
        let msg = tokio::select! {
            m = read.read_message() => m,
            _ = reg.closed() => break Ok(()),
        };
        let msg = match msg {
            Ok(Some(m)) => m,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        match hub.inbound(id, msg.payload().len()) {
            Inbound::Accept => {}
            Inbound::Reject => {
                let _ = hub.send(id, &Envelope::error("rate limit exceeded").to_message());
                continue;
            }
            // The hub is closing it with 1008; wait for that to finish.
            Inbound::Close => continue,
        }
        if let Some(reply) = handle(hub, id, user, &msg).await {
            let _ = hub.send(id, &reply.to_message());
        }
    };
    reg.unregister().await;
    result
}

/// Handles one client message; the reply to the sender, if any.
async fn handle(hub: &Hub, id: super::ConnId, user: &str, msg: &Message) -> Option<Envelope> {
    let env = match Envelope::parse(msg.payload()) {
        Ok(e) => e,
        Err(e) => return Some(Envelope::error(e)),
    };
    let room = env.room.clone();
    let need_room = || room.clone().ok_or("missing room");
    match env.kind.as_str() {
        "ping" => Some(Envelope::new("pong")),
        "join" => {
            let room = match need_room() {
                Ok(r) => r,
                Err(e) => return Some(Envelope::error(e)),
            };
            let from = match (env.since.as_deref(), env.history) {
                (Some(s), _) => match crate::pubsub::Position::parse(s) {
                    Ok(p) => JoinFrom::Since(p),
                    Err(_) => JoinFrom::Invalid,
                },
                (None, Some(n)) => JoinFrom::History(usize::try_from(n).unwrap_or(usize::MAX)),
                (None, None) => JoinFrom::Live,
            };
            if let Err(e) = hub.join_with(id, &room, from).await {
                return Some(Envelope::error(e.to_string()));
            }
            let online = hub.online(&room).await;
            Some(Envelope {
                room: Some(room),
                content: Some(Value::Array(online.iter().map(info_json).collect())),
                ..Envelope::new("presence")
            })
        }
        "leave" => {
            let room = match need_room() {
                Ok(r) => r,
                Err(e) => return Some(Envelope::error(e)),
            };
            hub.leave(id, &room)
                .await
                .err()
                .map(|e| Envelope::error(e.to_string()))
        }
        "message" => {
            let room = match need_room() {
                Ok(r) => r,
                Err(e) => return Some(Envelope::error(e)),
            };
            if !hub.rooms_of(id).contains(&room) {
                return Some(Envelope::error(format!("not in room {room}")));
            }
            let out = Envelope {
                room: Some(room.clone()),
                from: Some(user.to_owned()),
                content: env.content,
                ..Envelope::new("message")
            };
            hub.broadcast(&room, &out.to_message(), None)
                .await
                .err()
                .map(|e| Envelope::error(e.to_string()))
        }
        "broadcast" => {
            let out = Envelope {
                from: Some(user.to_owned()),
                content: env.content,
                ..Envelope::new("broadcast")
            };
            hub.broadcast_all(&out.to_message(), None).await;
            None
        }
        other => Some(Envelope::error(format!("unknown type: {other}"))),
    }
}
