//! permessage-deflate (RFC 7692): what to offer or accept
//! ([`DeflateConfig`]), what was agreed ([`DeflateParams`]), and the codec
//! the connection runs with it.
//!
//! Turn it on with [`ConfigBuilder::deflate`](crate::ws::ConfigBuilder::deflate):
//! a server then accepts the first acceptable offer of a client, a client
//! offers it and checks the server's answer. Compression is per message
//! and automatic: data messages of at least [`DeflateConfig::threshold`]
//! bytes (and every fragmented message) are sent compressed, smaller ones
//! as they are; received compressed messages are inflated as their frames
//! arrive, with `max_message_size` applied to the **inflated** size as it
//! grows and UTF-8 checked on the inflated text.
//!
//! ## Memory
//!
//! A compressor (flate2 on zlib-rs, memLevel 8) allocates about 240 KiB
//! whatever the window: a 64 Ki-entry hash table, a 64 KiB pending buffer
//! and a 48 KiB symbol buffer, plus `4 * 2^w` bytes of window and chain at
//! window bits `w`; an inflater its `2^w`-byte window plus a few KiB of
//! state. Measured RSS per connection after one message each way
//! (BENCHMARKS.md): 357 KiB at 15 bits, 252 KiB at 12, 238 KiB at 9 with
//! context takeover; 3.8 KiB without (2.2 KiB with deflate off); 1.7 KiB
//! idle in every case. What a connection keeps depends on context takeover:
//!
//! - **no context takeover** (the default in both directions): nothing is
//!   kept between messages. A compressor or inflater is taken from a small
//!   per-thread pool for one message and returned after it, so an idle
//!   connection holds no codec state at all.
//! - **context takeover**: the connection keeps its compressor (our side)
//!   or inflater (the peer's side) for its lifetime, created on the first
//!   message that needs it (smaller windows save little with zlib-rs: the
//!   hash table and buffers dominate).
//!
//! Without context takeover on the server side every message is compressed
//! on its own, so one encoding serves every connection with the same
//! window: see [`encode_compressed`], which the hub uses to compress a
//! broadcast once.
//!
//! ```
//! use rtwire::ws::{Config, DeflateConfig};
//! // Defaults: no context takeover either way, window bits 15, level 6,
//! // messages under 256 bytes sent uncompressed.
//! let config = Config::builder().deflate(DeflateConfig::default()).build();
//! assert!(config.deflate.is_some());
//! // Context takeover with a 4 KiB window on both sides.
//! let tight = DeflateConfig::context_takeover(12);
//! assert_eq!(tight.server_max_window_bits, Some(12));
//! ```

mod codec;
mod negotiate;

pub use codec::encode_compressed;
pub(crate) use codec::{Deflater, Inflater};
pub use negotiate::{client_offer, parse_extensions, server_negotiate, validate_response};
pub use negotiate::{ExtensionElement, ExtensionParam};

/// What to offer (client) or accept (server) of permessage-deflate.
///
/// | field | default |
/// |---|---|
/// | `server_no_context_takeover` | true |
/// | `client_no_context_takeover` | true |
/// | `server_max_window_bits` | `None` (15) |
/// | `client_max_window_bits` | `None` (15) |
/// | `level` | 6 |
/// | `threshold` | 256 bytes |
///
/// The same struct serves both roles; each field says what this endpoint
/// wants. A server includes `*_no_context_takeover` in its answer when the
/// field is set (RFC 7692 lets it do so unasked) and limits each window to
/// the smaller of the offer and the field. A client puts every field in its
/// offer. Window bits are 9 to 15: zlib cannot compress with an 8-bit raw
/// window, so a server declines an offer that asks it for 8, and a client
/// told to use 8 sends stored (uncompressed deflate) blocks, which have no
/// back-references. A peer that compresses with 8 is read with 9.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// The server compresses each message on its own.
    pub server_no_context_takeover: bool,
    /// The client compresses each message on its own.
    pub client_no_context_takeover: bool,
    /// Largest LZ77 window of the server's compressor (bits, 9 to 15).
    pub server_max_window_bits: Option<u8>,
    /// Largest LZ77 window of the client's compressor (bits, 9 to 15).
    pub client_max_window_bits: Option<u8>,
    /// zlib compression level, 0 (store) to 9.
    pub level: u32,
    /// Data messages smaller than this many bytes are sent uncompressed.
    pub threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: None,
            client_max_window_bits: None,
            level: 6,
            threshold: 256,
        }
    }
}

impl DeflateConfig {
    /// Context takeover in both directions with both windows at
    /// `window_bits` (clamped to 9..=15): better ratios for streams of
    /// similar messages, at the memory cost in the module docs.
    pub fn context_takeover(window_bits: u8) -> Self {
        let w = window_bits.clamp(9, 15);
        DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: Some(w),
            client_max_window_bits: Some(w),
            ..DeflateConfig::default()
        }
    }

    /// Sets the compression level (clamped to 0..=9).
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Sets the size under which messages are sent uncompressed.
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// The window bits actually used for a field (9..=15, 15 when unset).
    pub(crate) fn bits(v: Option<u8>) -> u8 {
        v.unwrap_or(15).clamp(9, 15)
    }
}

/// What both ends agreed on for one connection.
///
/// `*_max_window_bits` are the effective values (15 where the answer set
/// none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateParams {
    /// The server compresses each message on its own.
    pub server_no_context_takeover: bool,
    /// The client compresses each message on its own.
    pub client_no_context_takeover: bool,
    /// The server's compression window, in bits (8 to 15).
    pub server_max_window_bits: u8,
    /// The client's compression window, in bits (8 to 15).
    pub client_max_window_bits: u8,
    /// Compression level of this endpoint.
    pub level: u32,
    /// Messages under this size are sent uncompressed by this endpoint.
    pub threshold: usize,
    /// Whether the server's answer carried `server_max_window_bits`.
    server_bits_in_answer: bool,
    /// Whether the server's answer carried `client_max_window_bits`.
    client_bits_in_answer: bool,
}

impl DeflateParams {
    /// The `Sec-WebSocket-Extensions` value a server answers with.
    ///
    /// ```
    /// use rtwire::ws::deflate::{parse_extensions, server_negotiate};
    /// use rtwire::ws::DeflateConfig;
    /// let offers = parse_extensions(b"permessage-deflate; client_max_window_bits").unwrap();
    /// let p = server_negotiate(&offers, &DeflateConfig::default()).unwrap();
    /// assert_eq!(
    ///     p.response_header(),
    ///     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    /// );
    /// ```
    pub fn response_header(&self) -> String {
        let mut s = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if self.server_bits_in_answer {
            s.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        if self.client_bits_in_answer {
            s.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_max_window_bits
            ));
        }
        s
    }

    /// For `role`: (our side compresses without context, our window bits).
    pub(crate) fn ours(&self, role: crate::ws::Role) -> (bool, u8) {
        match role {
            crate::ws::Role::Server => {
                (self.server_no_context_takeover, self.server_max_window_bits)
            }
            crate::ws::Role::Client => {
                (self.client_no_context_takeover, self.client_max_window_bits)
            }
        }
    }

    /// For `role`: (the peer compresses without context, its window bits).
    pub(crate) fn theirs(&self, role: crate::ws::Role) -> (bool, u8) {
        match role {
            crate::ws::Role::Server => {
                (self.client_no_context_takeover, self.client_max_window_bits)
            }
            crate::ws::Role::Client => {
                (self.server_no_context_takeover, self.server_max_window_bits)
            }
        }
    }
}
