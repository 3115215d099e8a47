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

/// The host as the guest sees it on QEMU's user-mode network; QEMU maps
/// connections to it onto the host's loopback.
pub const HOST_ALIAS: &str = "10.0.2.2";

/// Application word: where the guest streams its metrics frames
/// (`metrics=10.0.2.2:PORT`; module `frames`, feature `std`). Without it nothing
/// is streamed.
pub const METRICS: &str = "metrics";

/// Application word: the per-run token (32 hex digits) the host accepts a
/// metrics connection with.
pub const TOKEN: &str = "token";

/// Application word: the run id the host knows the guest by (a file-name-safe word).
pub const RUN: &str = "run";

/// Application word: how many intervals the guest may hold for sending before it
/// drops (and counts) new ones; the workload never waits for the network.
pub const METRICS_QUEUE: &str = "metrics_queue";

/// The words that configure streaming; a workload's own parser must skip them.
pub const METRICS_KEYS: &[&str] = &[METRICS, TOKEN, RUN, METRICS_QUEUE];

/// `mode=selftest` word: synthetic intervals to produce.
pub const SELFTEST_INTERVALS: &str = "selftest_intervals";

/// `mode=selftest` word: synthetic latency samples recorded per interval.
pub const SELFTEST_SAMPLES: &str = "selftest_samples";

/// `mode=selftest` word: milliseconds per synthetic interval (0: as fast as possible).
pub const SELFTEST_MS: &str = "selftest_ms";

/// `mode=selftest` word: run the workload this many times without streaming and
/// as often with it, alternating, and print both timings.
pub const COMPARE: &str = "compare";

/// Application word: pv-ticketlocks `on` (the default, as in Linux) or `off`
/// (plain ticket locks, like Linux's `nopvspin`).
pub const PVLOCK: &str = "pvlock";

/// Application word: spin iterations before a waiter halts.
pub const PVLOCK_SPIN: &str = "pvlock.spin";

/// Application word: kick backend, `auto`, `nmi` or `hypercall`.
pub const PVLOCK_KICK: &str = "pvlock.kick";

/// Application word the host adds when it knows it is hardware KVM (`1`): only
/// then may the kernel use the KVM_HC_KICK_CPU hypercall.
pub const PVLOCK_HW_KVM: &str = "pvlock.hwkvm";

/// Application word of a workload run: `inject=stall` makes the guest announce
/// its workload and then never progress (a failure injection for the host's
/// stall watch).
pub const INJECT: &str = "inject";

/// Application word of `mode=timedpoll`: the poll timeout in milliseconds.
pub const TIMEOUT_MS: &str = "timeout_ms";

/// Application words of `mode=lockstress` (and the race modes): threads and
/// rounds per thread.
pub const THREADS: &str = "threads";
pub const ROUNDS: &str = "rounds";

#[cfg(feature = "std")]
pub use builder::{Cmdline, CmdlineError};

/// Finds `key=value` among whitespace-separated words and returns `value`.
pub fn find<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_ascii_whitespace().find_map(|word| {
        let (k, v) = word.split_once('=')?;
        (k == key).then_some(v)
    })
}

#[cfg(feature = "std")]
mod builder {
    use std::collections::BTreeSet;
    use std::fmt::Display;
    use std::string::{String, ToString};
    use std::vec::Vec;

    use super::APP_ARGS_SEPARATOR;

    /// A word the command line cannot carry.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum CmdlineError {
        #[error("guest word {0:?} is empty or contains white space, quotes or NUL, which the kernel command line cannot carry")]
        Unquotable(String),
        #[error(
            "guest word {0:?} is not key=value (with a key of letters, digits, `.`, `_` or `-`, and a value)"
        )]
        NotKeyValue(String),
        #[error("guest word {0:?} gives `{1}` a second time")]
        Duplicate(String, String),
        #[error("guest word {0:?} is the kernel/application separator")]
        Separator(String),
    }

    /// A guest command line (QEMU's `-append`): kernel words, `--`, then the
    /// application's `key=value` words. Every word is checked when it is added,
    /// as linux-loader's `Cmdline` does, so a bad word fails where it is made,
    /// not inside the guest.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Cmdline {
        kernel: Vec<String>,
        app: Vec<String>,
        keys: BTreeSet<String>,
    }

    impl Cmdline {
        /// An empty command line.
        pub fn new() -> Self {
            Self::default()
        }

        /// Adds a kernel word (before `--`), e.g. `env=RUST_LOG=info`.
        pub fn kernel_word(&mut self, word: &str) -> Result<&mut Self, CmdlineError> {
            check_quotable(word)?;
            self.kernel.push(word.to_string());
            Ok(self)
        }

        /// Tells the kernel its TSC rate in MHz (Hermit's `-freq`) instead of
        /// letting it measure one.
        pub fn tsc_mhz(&mut self, mhz: u16) -> &mut Self {
            // Both words are plain ASCII: nothing to check.
            self.kernel.push("-freq".into());
            self.kernel.push(mhz.to_string());
            self
        }

        /// Adds the application word `key=value`.
        pub fn push(&mut self, key: &str, value: impl Display) -> Result<&mut Self, CmdlineError> {
            self.push_word(&std::format!("{key}={value}"))
        }

        /// Adds an application word given whole (`key=value`), e.g. one a user typed.
        pub fn push_word(&mut self, word: &str) -> Result<&mut Self, CmdlineError> {
            check_quotable(word)?;
            let Some((key, value)) = word.split_once('=') else {
                return Err(CmdlineError::NotKeyValue(word.into()));
            };
            let key_ok = !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !key_ok || value.is_empty() {
                return Err(CmdlineError::NotKeyValue(word.into()));
            }
            if !self.keys.insert(key.to_string()) {
                return Err(CmdlineError::Duplicate(word.into(), key.into()));
            }
            self.app.push(word.to_string());
            Ok(self)
        }

        /// The application's words, in order.
        pub fn app_words(&self) -> &[String] {
            &self.app
        }

        /// The kernel's words, in order.
        pub fn kernel_words(&self) -> &[String] {
            &self.kernel
        }

        /// The whole line for QEMU's `-append`.
        pub fn to_append(&self) -> String {
            let mut words: Vec<&str> = self.kernel.iter().map(String::as_str).collect();
            words.push(APP_ARGS_SEPARATOR);
            words.extend(self.app.iter().map(String::as_str));
            words.join(" ")
        }
    }

    fn check_quotable(word: &str) -> Result<(), CmdlineError> {
        if word == APP_ARGS_SEPARATOR {
            return Err(CmdlineError::Separator(word.into()));
        }
        let bad = word.is_empty()
            || word
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\0'));
        if bad {
            return Err(CmdlineError::Unquotable(word.into()));
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn words_are_checked_where_they_are_added() {
            let mut line = Cmdline::new();
            line.kernel_word("env=A=B").unwrap();
            line.push("mode", "exit").unwrap().push("status", 7).unwrap();
            assert_eq!(line.to_append(), "env=A=B -- mode=exit status=7");
            for bad in [
                "a b", "quote\"d", "", "novalue=", "=value", "nokey", "k!y=v", "--",
            ] {
                assert!(line.clone().push_word(bad).is_err(), "{bad:?} was taken");
            }
            assert_eq!(
                line.push("mode", "hello").unwrap_err(),
                CmdlineError::Duplicate("mode=hello".into(), "mode".into())
            );
            assert!(Cmdline::new().kernel_word("two words").is_err());
        }

        #[test]
        fn what_is_built_is_what_find_reads() {
            let mut line = Cmdline::new();
            line.push("pvlock.spin", 256)
                .unwrap()
                .push("run", "kernbench-2x-pv-r1")
                .unwrap();
            let text = line.to_append();
            assert_eq!(super::super::find(&text, "pvlock.spin"), Some("256"));
            assert_eq!(super::super::find(&text, "run"), Some("kernbench-2x-pv-r1"));
        }
    }
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
