//! Reading data sets the way ministat 20150715 does: one line at a time,
//! trailing white space dropped, fields split `strtok`-style on any of the
//! delimiter bytes (runs count as one), a field starting with `#` ends the
//! line, lines without the wanted column are skipped, and the field must be
//! a whole C `strtod` number (decimal or hex float).

use std::ffi::{OsStr, OsString};
use std::io::BufRead;

use super::MinistatError;

/// How to pick the number out of a line (`-C`, `-d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// 1-based, like ministat's `-C`.
    pub column: usize,
    /// Any of these bytes separates fields.
    pub delimiters: Vec<u8>,
}

impl Default for Columns {
    fn default() -> Self {
        Self {
            column: 1,
            delimiters: b" \t".to_vec(),
        }
    }
}

/// ministat needs three points per set; fewer is an error.
pub const MIN_POINTS: usize = 3;

/// Reads one set's values, in input order. `name` is only for messages.
pub fn read_values(
    mut reader: impl BufRead,
    name: &OsStr,
    columns: &Columns,
) -> Result<Vec<f64>, MinistatError> {
    let mut values = Vec::new();
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| MinistatError::Read {
                name: name.to_owned(),
                source,
            })?;
        if read == 0 {
            break;
        }
        number += 1;
        let Some(field) = pick_field(&line, columns) else {
            continue;
        };
        let invalid = || MinistatError::InvalidData {
            line: number,
            name: name.to_owned(),
        };
        let value = std::str::from_utf8(field)
            .ok()
            .and_then(parse_c_double)
            .ok_or_else(invalid)?;
        if !value.is_finite() {
            // ministat accepts inf and nan, then crashes drawing them.
            return Err(MinistatError::NonFinite {
                line: number,
                name: name.to_owned(),
            });
        }
        values.push(value);
    }
    if values.len() < MIN_POINTS {
        return Err(MinistatError::TooFewPoints {
            name: name.to_owned(),
        });
    }
    Ok(values)
}

/// C's `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The wanted field of one line, or None if the line has none (blank,
/// comment, or too few fields).
fn pick_field<'a>(line: &'a [u8], columns: &Columns) -> Option<&'a [u8]> {
    // C strings end at NUL; fgets' line does too.
    let line = line.split(|&b| b == 0).next().unwrap_or_default();
    let end = line.iter().rposition(|&b| !is_c_space(b)).map_or(0, |i| i + 1);
    let mut fields = line[..end]
        .split(|b| columns.delimiters.contains(b))
        .filter(|f| !f.is_empty());
    for _ in 1..columns.column {
        if fields.next()?.starts_with(b"#") {
            return None;
        }
    }
    fields.next().filter(|f| !f.starts_with(b"#"))
}

/// The value of `s` if all of it is one number as C's `strtod` reads it
/// (leading white space, sign, decimal or hex digits, exponent, inf, nan).
pub fn parse_c_double(s: &str) -> Option<f64> {
    let s = s.trim_start_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = if let Some(hex) = body
        .strip_prefix("0x")
        .or_else(|| body.strip_prefix("0X"))
        .filter(|h| h.starts_with(|c: char| c.is_ascii_hexdigit() || c == '.'))
    {
        parse_hex(hex)?
    } else if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        f64::INFINITY
    } else if is_c_nan(body) {
        f64::NAN
    } else if is_decimal(body) {
        // Same syntax checked; Rust's parser rounds correctly like glibc's.
        body.parse().ok()?
    } else {
        return None;
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// "nan" or "nan(chars)" with alphanumerics and `_` inside, any case.
fn is_c_nan(s: &str) -> bool {
    let Some(prefix) = s.get(..3) else {
        return false;
    };
    if !prefix.eq_ignore_ascii_case("nan") {
        return false;
    }
    let rest = &s[3..];
    rest.is_empty()
        || rest
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .is_some_and(|inner| inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// digits [. digits] [e [sign] digits], with at least one mantissa digit.
fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut mantissa = digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        mantissa += digits(&mut i);
    }
    if mantissa == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Hex float after "0x": hexdigits [. hexdigits] [p [sign] decimal digits].
fn parse_hex(s: &str) -> Option<f64> {
    let (mantissa, exponent) = match s.find(['p', 'P']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.len() + frac_part.len() == 0 {
        return None;
    }
    let mut bits: u64 = 0;
    let mut scale: i64 = 0;
    let mut sticky = false;
    for (i, c) in int_part.chars().chain(frac_part.chars()).enumerate() {
        let digit = c.to_digit(16)? as u64;
        if i >= int_part.len() {
            scale -= 4;
        }
        if bits >> 56 == 0 {
            bits = bits << 4 | digit;
        } else {
            // Out of room: the digit only shifts the point; a lost non-zero
            // digit still breaks rounding ties the right way.
            sticky |= digit != 0;
            scale += 4;
        }
    }
    if sticky {
        bits |= 1;
    }
    if let Some(exp) = exponent {
        let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value: i64 = exp.parse().unwrap_or(if exp.starts_with('-') {
            i64::MIN / 2
        } else {
            i64::MAX / 2
        });
        scale = scale.saturating_add(value);
    }
    // bits has at most 60 significant bits: one rounding to 53 here, then an
    // exact power-of-two scaling (bar overflow and subnormals).
    let scale = scale.clamp(-2200, 2200) as i32;
    let half = scale / 2;
    Some(bits as f64 * 2f64.powi(half) * 2f64.powi(scale - half))
}

/// A set's display name: the path as given, or `<stdin>` for `-`.
pub fn display_name(path: Option<&OsStr>) -> OsString {
    match path {
        Some(p) if p != "-" => p.to_owned(),
        _ => OsString::from("<stdin>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_syntax() {
        let ok: &[(&str, f64)] = &[
            ("1", 1.0),
            ("-2.5", -2.5),
            ("+3", 3.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e2", 100.0),
            ("1E-2", 0.01),
            (" \x0b7", 7.0),
            ("0x10", 16.0),
            ("-0x1p1", -2.0),
            ("0x1.8P1", 3.0),
            ("0x.8", 0.5),
        ];
        for &(s, want) in ok {
            assert_eq!(parse_c_double(s), Some(want), "{s:?}");
        }
        for bad in [
            "", "-", ".", "e5", "1e", "1e+", "abc", "5 ", "5#", "1,5", "0x", "0xg", "1_0",
        ] {
            assert_eq!(parse_c_double(bad), None, "{bad:?}");
        }
        assert!(parse_c_double("INFINITY").unwrap().is_infinite());
        assert!(parse_c_double("nan(123)").unwrap().is_nan());
        assert!(parse_c_double("1e999").unwrap().is_infinite());
    }

    #[test]
    fn field_selection() {
        let cols = |column, delimiters: &[u8]| Columns {
            column,
            delimiters: delimiters.to_vec(),
        };
        let pick = |line: &str, c: &Columns| pick_field(line.as_bytes(), c).map(|f| f.to_vec());
        let default = Columns::default();
        assert_eq!(pick("  5 6\n", &default), Some(b"5".to_vec()));
        assert_eq!(pick("5\r\n", &default), Some(b"5".to_vec()));
        assert_eq!(pick("# x\n", &default), None);
        assert_eq!(pick("   \n", &default), None);
        assert_eq!(pick("\t7 8 # x\n", &cols(2, b" \t")), Some(b"8".to_vec()));
        assert_eq!(pick("7 # 8\n", &cols(2, b" \t")), None);
        assert_eq!(pick("9\n", &cols(2, b" \t")), None);
        assert_eq!(pick("1,,2\n", &cols(2, b",")), Some(b"2".to_vec()));
        assert_eq!(pick("1, 2 ,3\n", &cols(2, b",")), Some(b" 2 ".to_vec()));
        assert_eq!(pick("4\0junk\n", &default), Some(b"4".to_vec()));
    }
}
