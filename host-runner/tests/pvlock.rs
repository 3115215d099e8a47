//! pv-ticketlocks in the real kernel under TCG: a stress program hammers kernel
//! locks (allocator, futex-based std Mutex, spawn/join) with pv on and off, on
//! 2 and 4 vCPUs. The guest itself checks that the protected data is intact and
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

fn stress(vcpus: u32, pv: &str) {
    // A low spin threshold makes waiters halt often, so the slow path and the
    // NMI kicks are exercised on every run.
    // Console streamed: a failure shows which check the guest failed.
    let out = common::boot_with(
        &[],
        vcpus,
        300,
        &[pv, "pvlock.spin=16", "mode=lockstress", "threads=8", "rounds=100"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{pv} on {vcpus} vCPUs:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
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
fn pv_on_halts_and_kicks_without_losing_a_waiter() {
    for vcpus in [2, 4] {
        stress(vcpus, "pvlock=on");
        let stdout = streamed(
            vcpus,
            &[
                "pvlock=on",
                "pvlock.spin=16",
                "mode=lockstress",
                "threads=8",
                "rounds=100",
            ],
        );
        assert!(
            stdout.contains("pvlock requested=on effective=on kick=nmi spin=16"),
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
        assert_eq!(stat(&stdout, "waiting_cpus"), 0, "{stdout}");
        assert!(stdout.contains("counter=800"), "{stdout}");
    }
}

#[test]
fn pv_off_is_the_plain_ticket_lock() {
    for vcpus in [2, 4] {
        let stdout = streamed(
            vcpus,
            &[
                "pvlock=off",
                "pvlock.spin=16",
                "mode=lockstress",
                "threads=8",
                "rounds=100",
            ],
        );
        assert!(
            stdout.contains("pvlock requested=off effective=off kick=none"),
            "{stdout}"
        );
        for counter in ["taken_slow", "halted", "released_slow", "released_slow_kicked"] {
            assert_eq!(stat(&stdout, counter), 0, "{counter} with pv off:\n{stdout}");
        }
        assert!(stdout.contains("counter=800"), "{stdout}");
    }
}

#[test]
fn hypercall_kick_is_refused_without_hardware_kvm() {
    // TCG shows no KVM CPUID leaves and the host does not vouch for hardware KVM.
    let out = boot(2, 60, &["pvlock=on", "pvlock.kick=hypercall", "mode=hello"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
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
