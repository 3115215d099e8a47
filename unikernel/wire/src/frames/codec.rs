//! Framing: length prefix, version, postcard body.

use std::io::{self, Read};
use std::vec::Vec;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{LEN_PREFIX_BYTES, MAX_FRAME_LEN, VERSION, VERSION_BYTES};

/// Why a frame could not be encoded, read or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {len} exceeds the limit of {max} bytes")]
    TooLarge { len: u64, max: usize },
    #[error("stream ended inside a frame ({got} of {expected} bytes)")]
    Truncated { expected: usize, got: usize },
    #[error("frame of {len} bytes cannot hold the {VERSION_BYTES}-byte protocol version")]
    TooShort { len: usize },
    #[error("peer speaks protocol version {found}, this side version {expected}")]
    Version { found: u16, expected: u16 },
    #[error("malformed frame body: {0}")]
    Body(postcard::Error),
    #[error("{count} stray bytes after the frame body")]
    TrailingBytes { count: usize },
    #[error("cannot encode frame: {0}")]
    Encode(postcard::Error),
    #[error("reading a frame: {0}")]
    Io(#[source] io::Error),
}

/// Appends `msg` as one frame (length prefix included) to `out`.
pub fn encode_into<T: Serialize>(msg: &T, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; LEN_PREFIX_BYTES]);
    out.extend_from_slice(&VERSION.to_le_bytes());
    let body = postcard::to_extend(msg, Vec::new()).map_err(FrameError::Encode)?;
    let len = VERSION_BYTES + body.len();
    if len > MAX_FRAME_LEN {
        out.truncate(start);
        return Err(FrameError::TooLarge {
            len: len as u64,
            max: MAX_FRAME_LEN,
        });
    }
    out.extend_from_slice(&body);
    // `len` <= MAX_FRAME_LEN, which fits a u32.
    out[start..start + LEN_PREFIX_BYTES].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// `msg` as one frame, length prefix included.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    encode_into(msg, &mut out)?;
    Ok(out)
}

/// Decodes one payload (what follows the length prefix): version, then exactly
/// one postcard value.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    let Some((version, body)) = payload.split_first_chunk::<VERSION_BYTES>() else {
        return Err(FrameError::TooShort { len: payload.len() });
    };
    let found = u16::from_le_bytes(*version);
    if found != VERSION {
        return Err(FrameError::Version {
            found,
            expected: VERSION,
        });
    }
    let (value, rest) = postcard::take_from_bytes(body).map_err(FrameError::Body)?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes { count: rest.len() });
    }
    Ok(value)
}

/// Reads frames from a byte stream, refusing any longer than its limit before
/// buffering them.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    max_len: usize,
    bytes: u64,
}

impl<R: Read> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        Self::with_limit(inner, MAX_FRAME_LEN)
    }

    /// A reader that refuses payloads longer than `max_len` (at most [`MAX_FRAME_LEN`]).
    pub fn with_limit(inner: R, max_len: usize) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            max_len: max_len.min(MAX_FRAME_LEN),
            bytes: 0,
        }
    }

    /// Bytes consumed so far (prefixes included).
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The next payload, or `None` if the stream ended cleanly between frames.
    pub fn next_payload(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let mut prefix = [0u8; LEN_PREFIX_BYTES];
        let got = self.fill(&mut prefix)?;
        if got == 0 {
            return Ok(None);
        }
        if got < LEN_PREFIX_BYTES {
            return Err(FrameError::Truncated {
                expected: LEN_PREFIX_BYTES,
                got,
            });
        }
        let len = u32::from_le_bytes(prefix);
        if len as u64 > self.max_len as u64 {
            return Err(FrameError::TooLarge {
                len: len.into(),
                max: self.max_len,
            });
        }
        let len = len as usize;
        // Grow only to the declared length, which the limit above bounds.
        self.buf.resize(len, 0);
        let mut payload = std::mem::take(&mut self.buf);
        let got = self.fill(&mut payload);
        self.buf = payload;
        let got = got?;
        if got < len {
            return Err(FrameError::Truncated {
                expected: LEN_PREFIX_BYTES + len,
                got: LEN_PREFIX_BYTES + got,
            });
        }
        Ok(Some(&self.buf))
    }

    /// The next frame, decoded, or `None` at a clean end of stream.
    pub fn read<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        match self.next_payload()? {
            Some(payload) => decode(payload).map(Some),
            None => Ok(None),
        }
    }

    /// Reads until `buf` is full or the stream ends; returns the bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, FrameError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    self.bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(FrameError::Io(e)),
            }
        }
        Ok(got)
    }
}
