//! Every lock mode in the real kernel under TCG: a stress program hammers
//! kernel locks (allocator, futex-based std Mutex, spawn/join) in each of
//! `base`, `pv`, `qspin`, `pvqspin` and `tas`, on 2 and 4 vCPUs. The guest itself checks that the protected data is intact and
//! that the counters add up (exit status 3 otherwise); these tests check the exit
//! status and what the guest reports.

mod common;

use common::{boot, text};

/// `key=value` from the guest's `pvlock stats` line.
fn stat(stdout: &str, key: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.contains("pvlock stats"))
        .unwrap_or_else(|| panic!("no pvlock stats line in:\n{stdout}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => v.parse().ok(),
        })
        .unwrap_or_else(|| panic!("no {key} in: {line}"))
}

/// Boots a lock stress run in `mode` with the console streamed to stdout,
/// where the guest's report lines are; the guest must exit 0 (its own checks:
/// data intact, the mode in force is the one asked for, its counters add up,
/// the other modes' counters untouched, no CPU left waiting).
fn stress(vcpus: u32, mode: &str) -> String {
    // A low spin threshold makes waiters halt often, so the slow paths and
    // the NMI kicks are exercised on every run.
    let word = format!("pvlock={mode}");
    let args = [
        word.as_str(),
        "pvlock.spin=16",
        "mode=lockstress",
        "threads=8",
        "rounds=100",
    ];
    let out = common::boot_with(&[], vcpus, 300, &args);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{mode} on {vcpus} vCPUs:\n{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("counter=800"), "{stdout}");
    assert_eq!(stat(&stdout, "waiting_cpus"), 0, "{stdout}");
    stdout
}

/// The guest's `pvlock requested=.. effective=.. halting=.. kick=..` line.
fn config_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|l| l.contains("pvlock requested="))
        .unwrap_or_else(|| panic!("no pvlock configuration line in:\n{stdout}"))
}

#[test]
fn pv_halts_and_kicks_without_losing_a_waiter() {
    for vcpus in [2, 4] {
        let stdout = stress(vcpus, "pv");
        assert!(
            config_line(&stdout).contains("requested=pv effective=pv halting=on kick=nmi spin=16"),
            "{stdout}"
        );
        let halted = stat(&stdout, "halted");
        let kicked = stat(&stdout, "released_slow_kicked");
        assert!(
            stat(&stdout, "taken_slow") > 0,
            "no slow path taken on {vcpus} vCPUs:\n{stdout}"
        );
        // The test makes contention: waiters must really have halted and been
        // kicked (taken_slow alone also counts spin-phase pickups).
        assert!(halted > 0, "no waiter halted on {vcpus} vCPUs:\n{stdout}");
        assert!(
            kicked > 0,
            "no halted waiter was kicked on {vcpus} vCPUs:\n{stdout}"
        );
        // Every halt ended: either a kick woke it or it was spurious.
        assert!(kicked + stat(&stdout, "spurious_wakeups") >= halted, "{stdout}");
        // Kick-to-wake latencies were measured, at most one per halt.
        let wakes = stat(&stdout, "kick_wakes");
        assert!(wakes > 0 && wakes <= halted, "{stdout}");
    }
}

#[test]
fn pvqspin_hashes_halts_and_kicks_the_queue() {
    for vcpus in [2, 4] {
        let stdout = stress(vcpus, "pvqspin");
        assert!(
            config_line(&stdout).contains("requested=pvqspin effective=pvqspin halting=on kick=nmi"),
            "{stdout}"
        );
        let halted = stat(&stdout, "halted");
        assert!(
            stat(&stdout, "queued") > 0,
            "nobody queued on {vcpus} vCPUs:\n{stdout}"
        );
        assert!(halted > 0, "no queued waiter halted on {vcpus} vCPUs:\n{stdout}");
        assert_eq!(
            halted,
            stat(&stdout, "wait_node") + stat(&stdout, "wait_head"),
            "{stdout}"
        );
        let kick_unlock = stat(&stdout, "kick_unlock");
        assert!(
            kick_unlock > 0 && kick_unlock <= stat(&stdout, "hashed"),
            "{stdout}"
        );
        let wakes = stat(&stdout, "kick_wake");
        assert!(wakes > 0 && wakes <= halted, "{stdout}");
        // The same kicks, in the histogram shared with the ticket lock.
        assert_eq!(stat(&stdout, "kick_wakes"), wakes, "{stdout}");
        assert_eq!(
            stat(&stdout, "pending"),
            0,
            "pvqspin has no pending path:\n{stdout}"
        );
    }
}

#[test]
fn qspin_queues_and_never_halts() {
    for vcpus in [2, 4] {
        let stdout = stress(vcpus, "qspin");
        assert!(
            config_line(&stdout).contains("requested=qspin effective=qspin halting=off kick=none"),
            "{stdout}"
        );
        assert!(
            stat(&stdout, "pending") + stat(&stdout, "queued") > 0,
            "no contention seen:\n{stdout}"
        );
        for counter in ["halted", "hashed", "kick_unlock", "kick_wakes"] {
            assert_eq!(
                stat(&stdout, counter),
                0,
                "{counter} in the native queued lock:\n{stdout}"
            );
        }
    }
}

#[test]
fn tas_spins_unfairly_and_never_halts() {
    for vcpus in [2, 4] {
        let stdout = stress(vcpus, "tas");
        assert!(
            config_line(&stdout).contains("requested=tas effective=tas halting=off kick=none"),
            "{stdout}"
        );
        assert!(stat(&stdout, "contended") > 0, "no contention seen:\n{stdout}");
        assert_eq!(stat(&stdout, "kick_wakes"), 0, "{stdout}");
    }
}

#[test]
fn base_is_the_plain_ticket_lock() {
    for vcpus in [2, 4] {
        let stdout = stress(vcpus, "base");
        assert!(
            config_line(&stdout).contains("requested=base effective=base halting=off kick=none"),
            "{stdout}"
        );
        for counter in [
            "taken_slow",
            "halted",
            "released_slow",
            "released_slow_kicked",
            "kick_wakes",
        ] {
            assert_eq!(stat(&stdout, counter), 0, "{counter} with pv off:\n{stdout}");
        }
    }
}

#[test]
fn the_first_editions_words_still_select_pv_and_base() {
    for (word, mode) in [("on", "pv"), ("off", "base")] {
        let stdout = streamed(2, &[&format!("pvlock={word}"), "mode=hello"]);
        assert!(
            config_line(&stdout).contains(&format!("requested={mode} effective={mode}")),
            "{stdout}"
        );
    }
}

/// Boots with the console streamed to stdout, where the guest's report lines are.
fn streamed(vcpus: u32, args: &[&str]) -> String {
    let out = common::boot_with(&[], vcpus, 300, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn hypercall_kick_is_refused_without_hardware_kvm() {
    // TCG shows no KVM CPUID leaves and the host does not vouch for hardware KVM.
    for mode in ["pv", "pvqspin"] {
        let word = format!("pvlock={mode}");
        let out = boot(2, 60, &[&word, "pvlock.kick=hypercall", "mode=hello"]);
        assert_eq!(out.status.code(), Some(2), "{mode}: {}", text(&out.stderr));
    }
}

#[test]
fn bad_pvlock_words_are_refused() {
    for bad in [
        "pvlock=maybe",
        "pvlock.spin=lots",
        "pvlock.kick=carrier-pigeon",
        "pvlock.hwkvm=yes",
    ] {
        let out = boot(1, 60, &[bad, "mode=hello"]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out.stderr));
    }
}
