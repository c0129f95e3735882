//! [`HubError`]: why a hub call failed.

use std::fmt;

use super::conn::ConnId;

/// Why a hub call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubError {
    /// No connection with this id (never registered, or gone).
    UnknownConnection(ConnId),
    /// The room name is empty, longer than [`MAX_ROOM_LEN`](super::MAX_ROOM_LEN) or has a byte
    /// outside ASCII letters, digits and `- _ . : @ /`.
    InvalidRoom(String),
    /// The connection is in [`max_rooms_per_conn`](super::HubConfig::max_rooms_per_conn)
    /// rooms already.
    TooManyRooms {
        /// The limit.
        limit: usize,
    },
    /// The connection is not in that room.
    NotInRoom,
    /// [`Hub::send_encoded`](super::Hub::send_encoded) was given frames the connection cannot take
    /// (a reserved bit set, or a compressed frame it cannot share).
    InvalidFrames(String),
    /// The store or bus failed (a room with history stores every message
    /// before it is delivered: this one was not delivered).
    Backend(String),
    /// [`Hub::publish`](super::Hub::publish) or [`Hub::history`](super::Hub::history) on a room without history.
    NoHistory,
    /// A join could not catch up with its room (the connection reads
    /// slower than the room is written): it was closed with 1013, to
    /// resume later.
    CannotCatchUp,
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HubError::UnknownConnection(id) => write!(f, "unknown connection {id}"),
            HubError::InvalidRoom(why) => write!(f, "invalid room: {why}"),
            HubError::TooManyRooms { limit } => write!(f, "already in {limit} rooms"),
            HubError::NotInRoom => f.write_str("not in that room"),
            HubError::InvalidFrames(why) => write!(f, "invalid frames: {why}"),
            HubError::Backend(why) => write!(f, "backend error: {why}"),
            HubError::NoHistory => f.write_str("the room keeps no history"),
            HubError::CannotCatchUp => f.write_str("could not catch up with the room"),
        }
    }
}

impl std::error::Error for HubError {}
