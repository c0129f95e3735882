//! Chunked transfer coding (RFC 9112 §7.1), decoded incrementally and with
//! bounded lines, for the SSE client.

use bytes::{Buf, BytesMut};

use super::error::ClientError;

/// Where the chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

/// Longest chunk-size or trailer line accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// Takes one line (without CRLF or LF) off `input`, or `None` when it has
/// no LF yet.
fn take_line(input: &mut BytesMut) -> Result<Option<BytesMut>, ClientError> {
    match memchr::memchr(b'\n', input) {
        Some(lf) => {
            let mut line = input.split_to(lf + 1);
            line.truncate(lf);
            if line.last() == Some(&b'\r') {
                line.truncate(lf - 1);
            }
            Ok(Some(line))
        }
        None if input.len() > MAX_CHUNK_LINE => Err(ClientError::Chunked("line too long")),
        None => Ok(None),
    }
}

/// Decodes chunked transfer coding (RFC 9112 §7.1) from `input` into `out`.
pub(crate) fn dechunk(
    state: &mut Chunk,
    input: &mut BytesMut,
    out: &mut BytesMut,
) -> Result<(), ClientError> {
    loop {
        match *state {
            Chunk::Size => {
                let Some(line) = take_line(input)? else {
                    return Ok(());
                };
                // chunk-size [ chunk-ext ]: hex digits, then `;` or whitespace.
                let digits = line
                    .iter()
                    .position(|b| !b.is_ascii_hexdigit())
                    .unwrap_or(line.len());
                let rest = &line[digits..];
                if digits == 0
                    || digits > 16
                    || !matches!(rest.first(), None | Some(b';' | b' ' | b'\t'))
                {
                    return Err(ClientError::Chunked("invalid chunk size"));
                }
                let size = line[..digits].iter().fold(0u64, |acc, &b| {
                    let d = (b as char).to_digit(16).unwrap_or(0);
                    (acc << 4) | u64::from(d)
                });
                *state = if size == 0 {
                    Chunk::Trailer
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(left) => {
                if input.is_empty() {
                    return Ok(());
                }
                let take = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                out.extend_from_slice(&input[..take]);
                input.advance(take);
                *state = match left - take as u64 {
                    0 => Chunk::DataEnd,
                    n => Chunk::Data(n),
                };
            }
            Chunk::DataEnd => match &input[..] {
                [b'\r', b'\n', ..] => {
                    input.advance(2);
                    *state = Chunk::Size;
                }
                [b'\n', ..] => {
                    input.advance(1);
                    *state = Chunk::Size;
                }
                [] | [b'\r'] => return Ok(()),
                _ => return Err(ClientError::Chunked("missing CRLF after chunk data")),
            },
            Chunk::Trailer => {
                let Some(line) = take_line(input)? else {
                    return Ok(());
                };
                if line.is_empty() {
                    *state = Chunk::Done;
                }
            }
            Chunk::Done => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> Result<(Vec<u8>, Chunk), ClientError> {
        let mut state = Chunk::Size;
        let mut input = BytesMut::new();
        let mut out = BytesMut::new();
        for c in chunks {
            input.extend_from_slice(c);
            dechunk(&mut state, &mut input, &mut out)?;
        }
        Ok((out.to_vec(), state))
    }

    #[test]
    fn dechunk_byte_by_byte() {
        let wire = b"3;ext=1\r\nabc\r\n0000000A\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
        let chunks: Vec<&[u8]> = wire.chunks(1).collect();
        let (out, state) = run(&chunks).unwrap();
        assert_eq!(out, b"abc0123456789");
        assert_eq!(state, Chunk::Done);
    }

    #[test]
    fn dechunk_rejects_garbage() {
        assert!(run(&[b"zz\r\n"]).is_err());
        assert!(run(&[b"\r\n"]).is_err());
        assert!(run(&[b"1\r\nab"]).is_err());
        assert!(run(&[b"11111111111111111\r\n"]).is_err());
        assert!(run(&[&[b'1'; 5000]]).is_err());
    }
}
