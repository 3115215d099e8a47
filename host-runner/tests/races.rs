//! Regression tests for the Hermit 0.11 races pvbench's kernel patch fixes
//! (`unikernel/kernel/patches/`): each boots a real guest whose mode provokes
//! one race (see `unikernel/app/src/races.rs`), next to cpuhog guests so its
//! vCPUs are overcommitted and preempted at random, as in the matrix. With the
//! race unfixed the guest stalls (caught by `--stall-after`, exit 124) or its
//! kernel panics (exit 1); fixed, it finishes with its data checked (exit 0).

mod common;

use std::process::{Child, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};

use common::text;

/// Hog guests (one cpuhog thread per vCPU) that live as long as this value.
struct Hogs(Vec<Child>);

impl Hogs {
    fn start(guests: usize, vcpus: u32) -> Hogs {
        Hogs(
            (0..guests)
                .map(|_| {
                    common::hog_command(vcpus, 900)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("start a hog guest")
                })
                .collect(),
        )
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: pvbench kills its QEMU and removes the
        // guest's socket directory (a SIGKILLed pvbench left one in /tmp per
        // hog). Wait for all of them once every one has been told.
        for hog in &self.0 {
            // SAFETY: kill(2) on our own child, which has not been waited for.
            unsafe { libc::kill(hog.id() as i32, libc::SIGTERM) };
        }
        for hog in &mut self.0 {
            let _ = hog.wait();
        }
    }
}

/// One scenario at a time: 3x means the bench guest and two hog guests, not
/// those of other tests too.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Boots `args` on a `vcpus`-vCPU guest at 3x overcommit (two hog guests),
/// killing it as stalled after 10 s of idling; returns its console.
fn at_3x(vcpus: u32, args: &[&str]) -> String {
    let _serial = serial();
    let _hogs = Hogs::start(2, vcpus);
    let out = common::boot_with(&["--stall-after", "10"], vcpus, 600, args);
    let console = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?} on {vcpus} vCPUs at 3x:\n{console}"
    );
    console
}

#[test]
fn descriptors_churn_beside_io_without_a_lost_wakeup() {
    // Object-map lock futures dropped after each poll lost the wakeup of a
    // contended reader or writer: the guest stalled with the lock free.
    for pv in ["pvlock=off", "pvlock=on"] {
        let console = at_3x(2, &[pv, "mode=fdstress", "threads=8", "rounds=300"]);
        assert!(
            console.contains("fdstress threads=8 rounds=300 operations="),
            "{console}"
        );
    }
}

#[test]
fn timed_futex_waits_race_wakeups_without_a_kernel_panic() {
    // A wait that timed out just as a notifier popped it got a stale wakeup:
    // `unreachable!()` in BlockedTaskQueue::custom_wakeup.
    for pv in ["pvlock=off", "pvlock=on"] {
        // At 3x about 4% of the timed waits race a notifier (measured: the
        // guest's stale_wakeups counter read ~1850 after 3000 rounds x 4 pairs,
        // 43,600 waits), so 500 rounds give the race ~300 chances.
        let console = at_3x(2, &[pv, "mode=futexrace", "threads=4", "rounds=500"]);
        assert!(
            console.contains("futexrace threads=4 rounds=500 operations="),
            "{console}"
        );
    }
}

#[test]
fn a_timed_poll_returns_at_its_timeout() {
    // block_on passed an absolute time to a relative futex wait: a poll with a
    // timeout on an idle socket slept for decades (the guest then idles and is
    // killed as stalled).
    let _serial = serial();
    let out = common::boot_with(
        &["--network", "--stall-after", "10"],
        2,
        120,
        &["mode=timedpoll", "timeout_ms=300", "rounds=3"],
    );
    let console = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{console}");
    assert!(
        console.contains("timedpoll timeout_ms=300 rounds=3 operations=3"),
        "{console}"
    );
}

#[test]
fn a_short_sleep_ends_before_a_long_one_queued_after_it() {
    // The one-shot timer was armed for the newest sleeper: on one core, a
    // 100 ms sleep followed by another thread's 5 s sleep lasted 5 s.
    let out = common::boot_with(&["--quiet"], 1, 120, &["mode=sleeporder", "timeout_ms=100"]);
    let console = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{console}");
}

#[test]
fn small_allocations_keep_their_own_alignment() {
    // Hermit 0.11 aligned every allocation to 128 bytes, and talc then walked
    // every misaligned free gap on each malloc (81% of a kernbench-like build):
    // 4,096 live 8-byte boxes all sat at multiples of 128.
    let out = common::boot_with(&[], 1, 120, &["mode=allocalign", "rounds=4096"]);
    let console = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{console}");
    let aligned: usize = console
        .split_whitespace()
        .find_map(|w| w.strip_prefix("aligned_128=")?.parse().ok())
        .unwrap_or_else(|| panic!("no aligned_128= in:\n{console}"));
    assert!(
        aligned < 4096 / 2,
        "{aligned} of 4096 boxes at multiples of 128:\n{console}"
    );
}

#[test]
fn spawning_threads_next_to_cross_core_wakeups_does_not_deadlock() {
    // Hermit 0.11's spawn took the scheduler-input table's plain spin lock with
    // interrupts on; a timer interrupt preempted the holder, and a same-core
    // task waking a thread on the other core spun on it with interrupts off for
    // good (both vCPUs at 100%: no stall watch sees it, the timeout does). 7 of
    // 8 such boots deadlocked before the fix.
    let _serial = serial();
    let out = common::boot_with(&[], 2, 120, &["mode=spawnwake", "threads=4", "rounds=3000"]);
    let console = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{console}");
    assert!(
        console.contains("spawnwake threads=4 rounds=3000 operations=12000"),
        "{console}"
    );
}
