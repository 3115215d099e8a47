//! ministat's default plot width: 74, or the terminal's when stdout is one.

use std::io::IsTerminal;

const NOT_A_TERMINAL: usize = 74;

/// ministat's rule: on a terminal, $COLUMNS if set (used as is), else the
/// window width minus 2; otherwise 74.
pub fn default_width() -> usize {
    if !std::io::stdout().is_terminal() {
        return NOT_A_TERMINAL;
    }
    if let Some(columns) = std::env::var_os("COLUMNS").filter(|c| !c.is_empty()) {
        return c_atoi(&columns.to_string_lossy()).max(0) as usize;
    }
    match window_columns() {
        Some(columns) if columns > 0 => usize::from(columns).saturating_sub(2),
        _ => NOT_A_TERMINAL,
    }
}

/// C `atoi`: leading white space, sign, digits; 0 if none.
fn c_atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let (sign, digits) = match t.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    sign * digits[..end].parse::<i64>().unwrap_or(0)
}

#[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64")))]
fn window_columns() -> Option<u16> {
    use std::ffi::{c_int, c_ulong};

    #[repr(C)]
    struct Winsize {
        rows: u16,
        columns: u16,
        x_pixels: u16,
        y_pixels: u16,
    }
    extern "C" {
        fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
    }
    // asm-generic value, shared by x86_64 and aarch64.
    const TIOCGWINSZ: c_ulong = 0x5413;
    let mut size = Winsize {
        rows: 0,
        columns: 0,
        x_pixels: 0,
        y_pixels: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize (four u16, the layout of
    // Winsize) through the pointer, which is valid for writes for the whole
    // call; fd 1 is only queried, not changed.
    let rc = unsafe { ioctl(1, TIOCGWINSZ, &mut size as *mut Winsize) };
    (rc == 0).then_some(size.columns)
}

#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
fn window_columns() -> Option<u16> {
    None
}

#[cfg(test)]
mod tests {
    use super::c_atoi;

    #[test]
    fn atoi_like_c() {
        assert_eq!(c_atoi("80"), 80);
        assert_eq!(c_atoi(" 100x"), 100);
        assert_eq!(c_atoi("-5"), -5);
        assert_eq!(c_atoi("abc"), 0);
    }
}
