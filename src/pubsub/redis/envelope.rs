//! The wire form of a [`Publication`] in a Redis stream entry and on
//! pub/sub: compact, length-prefixed, binary, and sans-IO.
//!
//! ```text
//! u8      version (1)
//! u8      n: length of the position text (1..=37)
//! n       the position, "{epoch:x}-{offset}" (its canonical wire form)
//! --- the body (what the append script receives; it prepends the above) ---
//! u64 BE  timestamp_ms
//! u8      flags: 1 tenant, 2 subject, 4 event type, 8 retry_ms (others 0)
//! u16 BE + bytes  channel
//! u16 BE + bytes  tenant       (if flag 1)
//! u16 BE + bytes  subject      (if flag 2)
//! u16 BE + bytes  event type   (if flag 4)
//! u64 BE  retry_ms             (if flag 8)
//! u32 BE + bytes  data
//! ```
//!
//! The position is text so that the append script (Lua, whose numbers are
//! doubles) can write it without arithmetic on 64-bit integers: it
//! prepends `"\x01" .. string.char(#pos) .. pos` to the body it was given.
//! [`decode`] checks every length against the input and accepts nothing
//! after the data: garbage is an [`EnvelopeError`], never a panic.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::pubsub::{ChannelName, Position, Publication};

/// The format version this module writes and reads.
pub const VERSION: u8 = 1;

const F_TENANT: u8 = 1;
const F_SUBJECT: u8 = 2;
const F_EVENT: u8 = 4;
const F_RETRY: u8 = 8;

/// Why bytes are not an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Shorter than its lengths say.
    Truncated,
    /// A version this build does not read.
    Version(u8),
    /// The position is not in its wire form.
    Position,
    /// Unknown flag bits.
    Flags(u8),
    /// The channel name is not valid.
    Channel,
    /// A text field is not UTF-8.
    Utf8,
    /// Bytes after the data.
    Trailing,
    /// A field too long for its length prefix (encoding only).
    TooLong,
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvelopeError::Truncated => f.write_str("envelope truncated"),
            EnvelopeError::Version(v) => write!(f, "envelope version {v} not supported"),
            EnvelopeError::Position => f.write_str("envelope position invalid"),
            EnvelopeError::Flags(b) => write!(f, "envelope flags {b:#04x} unknown"),
            EnvelopeError::Channel => f.write_str("envelope channel invalid"),
            EnvelopeError::Utf8 => f.write_str("envelope text not UTF-8"),
            EnvelopeError::Trailing => f.write_str("bytes after the envelope"),
            EnvelopeError::TooLong => f.write_str("envelope field too long"),
        }
    }
}

impl std::error::Error for EnvelopeError {}

fn put_str(out: &mut BytesMut, s: &str) -> Result<(), EnvelopeError> {
    let n = u16::try_from(s.len()).map_err(|_| EnvelopeError::TooLong)?;
    out.put_u16(n);
    out.put_slice(s.as_bytes());
    Ok(())
}

/// The body: everything after the position (see the module docs).
/// Fails only on a field too long for its prefix, which a validated
/// request never has.
pub(crate) fn encode_body(p: &Publication) -> Result<BytesMut, EnvelopeError> {
    let mut out = BytesMut::with_capacity(
        8 + 1
            + 2
            + p.channel.as_str().len()
            + [&p.tenant, &p.subject, &p.event_type]
                .iter()
                .map(|s| s.as_ref().map_or(0, |s| 2 + s.len()))
                .sum::<usize>()
            + 8
            + 4
            + p.data.len(),
    );
    let mut flags = 0;
    for (v, f) in [
        (p.tenant.is_some(), F_TENANT),
        (p.subject.is_some(), F_SUBJECT),
        (p.event_type.is_some(), F_EVENT),
        (p.retry_ms.is_some(), F_RETRY),
    ] {
        if v {
            flags |= f;
        }
    }
    out.put_u64(p.timestamp_ms);
    out.put_u8(flags);
    put_str(&mut out, p.channel.as_str())?;
    for s in [&p.tenant, &p.subject, &p.event_type].into_iter().flatten() {
        put_str(&mut out, s)?;
    }
    if let Some(r) = p.retry_ms {
        out.put_u64(r);
    }
    let n = u32::try_from(p.data.len()).map_err(|_| EnvelopeError::TooLong)?;
    out.put_u32(n);
    out.put_slice(&p.data);
    Ok(out)
}

/// The envelope of `p`, position included.
///
/// A publication a store gave out always fits (its fields are validated);
/// one with a payload over 4 GiB or a field over 64 KiB cannot be
/// represented and is encoded as an empty envelope, which [`decode`]
/// rejects.
pub fn encode(p: &Publication) -> Bytes {
    let Ok(body) = encode_body(p) else {
        return Bytes::new();
    };
    let pos = p.position.to_string();
    let mut out = BytesMut::with_capacity(2 + pos.len() + body.len());
    out.put_u8(VERSION);
    out.put_u8(pos.len() as u8); // at most 16 + 1 + 20 bytes
    out.put_slice(pos.as_bytes());
    out.put_slice(&body);
    out.freeze()
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EnvelopeError> {
        if self.0.len() < n {
            return Err(EnvelopeError::Truncated);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, EnvelopeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, EnvelopeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, EnvelopeError> {
        let mut a = [0; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, EnvelopeError> {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn str(&mut self) -> Result<&'a str, EnvelopeError> {
        let n = self.u16()? as usize;
        std::str::from_utf8(self.take(n)?).map_err(|_| EnvelopeError::Utf8)
    }
}

/// Reads an envelope; any input that is not exactly one envelope is an
/// error (never a panic).
pub fn decode(buf: &[u8]) -> Result<Publication, EnvelopeError> {
    let mut r = Reader(buf);
    let v = r.u8()?;
    if v != VERSION {
        return Err(EnvelopeError::Version(v));
    }
    let n = r.u8()? as usize;
    let pos = std::str::from_utf8(r.take(n)?).map_err(|_| EnvelopeError::Position)?;
    let position = Position::parse(pos).map_err(|_| EnvelopeError::Position)?;
    let timestamp_ms = r.u64()?;
    let flags = r.u8()?;
    if flags & !(F_TENANT | F_SUBJECT | F_EVENT | F_RETRY) != 0 {
        return Err(EnvelopeError::Flags(flags));
    }
    let channel = ChannelName::new(r.str()?).map_err(|_| EnvelopeError::Channel)?;
    let mut opt = |f: u8| -> Result<Option<String>, EnvelopeError> {
        if flags & f != 0 {
            Ok(Some(r.str()?.to_owned()))
        } else {
            Ok(None)
        }
    };
    let tenant = opt(F_TENANT)?;
    let subject = opt(F_SUBJECT)?;
    let event_type = opt(F_EVENT)?;
    let retry_ms = if flags & F_RETRY != 0 {
        Some(r.u64()?)
    } else {
        None
    };
    let n = r.u32()? as usize;
    let data = Bytes::copy_from_slice(r.take(n)?);
    if !r.0.is_empty() {
        return Err(EnvelopeError::Trailing);
    }
    Ok(Publication {
        channel,
        tenant,
        subject,
        event_type,
        data,
        retry_ms,
        timestamp_ms,
        position,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub::PublishRequest;
    use proptest::prelude::*;

    fn field() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("[a-z0-9 ]{0,40}")
    }

    proptest! {
        #[test]
        fn round_trip(
            channel in "[a-z0-9:_./@-]{1,60}",
            tenant in field(),
            subject in field(),
            event in field(),
            retry in proptest::option::of(any::<u64>()),
            data in proptest::collection::vec(any::<u8>(), 0..300),
            ts in any::<u64>(),
            epoch in any::<u64>(),
            offset in any::<u64>(),
        ) {
            let mut req = PublishRequest::new(ChannelName::new(&channel).unwrap(), data);
            req.tenant = tenant;
            req.subject = subject;
            req.event_type = event;
            req.retry_ms = retry;
            let mut p = req.into_publication(Position::new(epoch, offset));
            p.timestamp_ms = ts;
            let bytes = encode(&p);
            prop_assert_eq!(decode(&bytes), Ok(p.clone()));
            // Every strict prefix is truncated (or otherwise invalid), never
            // a different publication.
            for cut in 0..bytes.len() {
                prop_assert!(decode(&bytes[..cut]).is_err());
            }
            let mut longer = bytes.to_vec();
            longer.push(0);
            prop_assert_eq!(decode(&longer), Err(EnvelopeError::Trailing));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn flipped_bytes_never_panic(idx in any::<prop::sample::Index>(), b in any::<u8>()) {
            let p = PublishRequest::new(ChannelName::new("c").unwrap(), "payload")
                .tenant("t")
                .retry_ms(5)
                .into_publication(Position::new(0xabc, 7));
            let mut bytes = encode(&p).to_vec();
            let i = idx.index(bytes.len());
            bytes[i] = b;
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn the_script_header_is_what_encode_writes() {
        // The append script builds "\x01" .. char(#pos) .. pos .. body.
        let p = PublishRequest::new(ChannelName::new("news").unwrap(), "x")
            .into_publication(Position::new(0x1f, 42));
        let mut lua_like = vec![1u8, 5];
        lua_like.extend_from_slice(b"1f-42");
        lua_like.extend_from_slice(&encode_body(&p).unwrap());
        assert_eq!(&encode(&p)[..], &lua_like[..]);
    }

    #[test]
    fn errors() {
        assert_eq!(decode(b""), Err(EnvelopeError::Truncated));
        assert_eq!(decode(b"\x02"), Err(EnvelopeError::Version(2)));
        assert_eq!(decode(b"\x01\x03x-1"), Err(EnvelopeError::Position));
        let mut b = b"\x01\x031-1".to_vec();
        b.extend_from_slice(&[0; 8]);
        b.push(0x10);
        assert_eq!(decode(&b), Err(EnvelopeError::Flags(0x10)));
    }
}
