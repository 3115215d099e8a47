//! The per-run token: 16 bytes the host makes up for each run and gives the
//! guest on its command line (`token=<32 hex digits>`). A connection that does
//! not present it is refused, so a stray guest from another run (or another
//! program on the port) cannot feed a run's results.

use core::fmt;
use std::string::String;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A run token. Compares in constant time (it is a shared secret, if a weak one).
#[derive(Clone, Copy, Eq)]
pub struct Token([u8; Token::LEN]);

/// Why a token word was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token has {len} characters, expected {} hex digits", Token::LEN * 2)]
    Length { len: usize },
    #[error("token character {0:?} is not a hex digit")]
    NotHex(char),
}

impl Token {
    /// Bytes in a token.
    pub const LEN: usize = 16;

    pub const fn from_bytes(bytes: [u8; Token::LEN]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; Token::LEN] {
        &self.0
    }

    /// Parses the command-line form (32 hex digits, either case).
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        if text.len() != Self::LEN * 2 {
            return Err(TokenError::Length {
                len: text.chars().count(),
            });
        }
        let digit = |c: u8| -> Result<u8, TokenError> {
            char::from(c)
                .to_digit(16)
                .map(|d| d as u8)
                .ok_or(TokenError::NotHex(char::from(c)))
        };
        let mut bytes = [0u8; Self::LEN];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            *byte = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Ok(Self(bytes))
    }

    /// The command-line form: 32 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(Self::LEN * 2);
        for b in self.0 {
            s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        s
    }
}

impl PartialEq for Token {
    fn eq(&self, other: &Self) -> bool {
        // No early exit: how long a comparison takes says nothing about the token.
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({})", self.to_hex())
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Raw bytes in binary formats (postcard), hex text in human-readable ones (JSON).
impl Serialize for Token {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            struct HexVisitor;
            impl Visitor<'_> for HexVisitor {
                type Value = Token;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("32 hex digits")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Token, E> {
                    Token::parse(v).map_err(E::custom)
                }
            }
            deserializer.deserialize_str(HexVisitor)
        } else {
            <[u8; Token::LEN]>::deserialize(deserializer).map(Token)
        }
    }
}
