//! Words of the guest command line (QEMU `-append`).
//!
//! Hermit splits the line at `--`: words before it are the kernel's (`env=K=V`,
//! `-ip`, ...), words after it are the application's arguments. pvbench's own
//! words are `key=value` pairs after the `--`.

/// Separates kernel words from application arguments.
pub const APP_ARGS_SEPARATOR: &str = "--";

/// Loader word: run an accelerator probe loop of `2^N` iterations instead of
/// booting, then exit with [`crate::exit::PROBE_DONE`].
pub const PROBE: &str = "pvbench.probe";

/// Application word selecting what the guest does (`mode=hello|panic|hang|exit`).
pub const MODE: &str = "mode";

/// Application word: the status `mode=exit` ends with.
pub const STATUS: &str = "status";

/// Finds `key=value` among whitespace-separated words and returns `value`.
pub fn find<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_ascii_whitespace().find_map(|word| {
        let (k, v) = word.split_once('=')?;
        (k == key).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_matches_whole_keys_only() {
        let line = "env=A=B -- mode=exit status=7 xstatus=9";
        assert_eq!(find(line, STATUS), Some("7"));
        assert_eq!(find(line, MODE), Some("exit"));
        assert_eq!(find(line, "tatus"), None);
        assert_eq!(find(line, "env"), Some("A=B"));
    }
}
