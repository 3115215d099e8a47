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
