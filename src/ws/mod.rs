//! WebSocket (RFC 6455).
//!
//! The sans-IO core, in the order bytes flow through it:
//! [`FrameHeader`] and [`Frame`] (`frame`), [`Decoder`] (`decoder`: role
//! checks, [`Limits`], [`apply_mask`], [`Utf8Validator`]), [`Encoder`]
//! (`encoder`), [`CloseCode`] (`close`), [`Message`] (`message`), and the
//! opening [`handshake`]. The async shell is [`Conn`] (`conn/`), configured
//! by [`Config`].

mod close;
mod config;
mod conn;
mod decoder;
#[cfg(feature = "deflate")]
pub mod deflate;
mod encoder;
mod frame;
pub mod handshake;
mod limits;
mod mask;
mod message;
mod role;
mod timer;
mod utf8;

pub use close::{close_payload, parse_close_payload, CloseCode, CloseFrame};
pub use config::{Config, ConfigBuilder, Keepalive};
pub(crate) use conn::check_encoded_frames;
pub use conn::{read_request_head, reject, Conn, HeadAndRest, ReadHalf, ReuniteError, WriteHalf};
pub use decoder::Decoder;
#[cfg(feature = "deflate")]
pub use deflate::{DeflateConfig, DeflateParams};
pub use encoder::Encoder;
pub use frame::{Frame, FrameHeader, OpCode, MAX_HEADER_LEN};
pub use limits::Limits;
pub use mask::{apply_mask, apply_mask_bytes};
pub use message::{Message, Utf8Bytes};
pub use role::Role;
pub use timer::Timer;
pub use utf8::{Utf8Error, Utf8Validator};
