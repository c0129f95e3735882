//! WebSocket (RFC 6455).
//!
//! The sans-IO core: [`FrameHeader`], [`Decoder`], [`Encoder`],
//! [`apply_mask`], [`Utf8Validator`], [`CloseCode`] and the
//! [`handshake`]. The async shell is [`Conn`].

mod close;
pub(crate) mod codec;
mod config;
mod conn;
mod core;
mod frame;
pub mod handshake;
mod io;
mod mask;
mod message;
mod split;
mod utf8;

pub use close::{close_payload, parse_close_payload, CloseCode, CloseFrame};
pub use codec::{Decoder, Encoder, Limits, Role};
pub use config::{Config, ConfigBuilder, Keepalive};
pub use conn::{read_request_head, reject, Conn, HeadAndRest};
pub use frame::{Frame, FrameHeader, OpCode, MAX_HEADER_LEN};
pub use mask::{apply_mask, apply_mask_bytes};
pub use message::{Message, Utf8Bytes};
pub use split::{ReadHalf, WriteHalf};
pub use utf8::{Utf8Error, Utf8Validator};
