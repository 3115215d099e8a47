//! Every lock mode through `RawModalLock` on the host: threads play CPUs
//! (`pvlock::host`), more threads than cores, holders preempted on purpose,
//! a plain counter that only mutual exclusion keeps intact, and each mode's
//! counters checked against each other and against what the backend saw.
//!
//! The mode is process-wide and fixed once, so each test runs its scenario in
//! a child process (this binary, filtered to that test), where the mode is
//! still unset. Sleeps appear only as deliberate preemption of a holder;
//! where a test needs a state, it waits for it under a watchdog.

// Real atomics and the lock_api impls: not under `--cfg loom`.
#![cfg(not(loom))]

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use lock_api::RawMutex;
use pvlock::{host, stats, LockMode, ModalLockState, ModeError, RawModalLock};

/// Fails a scenario that has not finished after this long: a lost wakeup
/// shows up as a thread halted forever.
const WATCHDOG: Duration = Duration::from_secs(120);

/// Set in the child process that runs a scenario.
const CHILD: &str = "PVLOCK_TEST_MODES_CHILD";

/// Runs `scenario` in a child process: this binary, filtered to `test`.
fn in_child(test: &str, scenario: impl FnOnce()) {
    if std::env::var_os(CHILD).is_some() {
        scenario();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().expect("own executable"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("cannot run the test binary as a child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child {test} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // A filter that matched nothing would pass vacuously.
    assert!(
        stdout.contains("1 passed"),
        "the child did not run {test}:\n{stdout}"
    );
    // Show the child's statistics line in this test's output.
    eprint!("{stderr}");
}

/// A lock and the plain data it protects.
struct Protected<L> {
    lock: L,
    /// Set while some thread is inside the critical section.
    inside: AtomicBool,
    /// Incremented non-atomically under the lock.
    counter: UnsafeCell<u64>,
}

// SAFETY: `counter` is only accessed with `lock` held.
unsafe impl<L: Sync> Sync for Protected<L> {}

impl<L: RawMutex> Protected<L> {
    fn new() -> Self {
        Self {
            lock: L::INIT,
            inside: AtomicBool::new(false),
            counter: UnsafeCell::new(0),
        }
    }

    /// The critical section: a read-modify-write of `counter` with a window
    /// in which another holder would be noticed.
    fn critical(&self, preempt: Option<Duration>) {
        assert!(!self.inside.swap(true, Ordering::Relaxed), "two holders at once");
        // SAFETY: the caller holds `lock`.
        let before = unsafe { *self.counter.get() };
        match preempt {
            Some(d) if d.is_zero() => thread::yield_now(),
            Some(d) => thread::sleep(d),
            None => {}
        }
        // SAFETY: the caller holds `lock`.
        unsafe { *self.counter.get() = before + 1 };
        self.inside.store(false, Ordering::Relaxed);
    }
}

/// Threads playing CPUs, joined under the watchdog.
struct Workers {
    handles: Vec<JoinHandle<()>>,
    ended_tx: Sender<()>,
    ended_rx: Receiver<()>,
}

/// Reports a worker's end when dropped, which a panic does too.
struct EndGuard(Sender<()>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

impl Workers {
    fn new() -> Self {
        let (ended_tx, ended_rx) = mpsc::channel();
        Self {
            handles: Vec::new(),
            ended_tx,
            ended_rx,
        }
    }

    fn spawn(&mut self, f: impl FnOnce() + Send + 'static) {
        let end = EndGuard(self.ended_tx.clone());
        self.handles.push(thread::spawn(move || {
            let _end = end;
            f()
        }));
    }

    fn join(self, diagnose: impl Fn() -> String) {
        let deadline = Instant::now() + WATCHDOG;
        for _ in 0..self.handles.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.ended_rx.recv_timeout(left).is_err() {
                panic!("threads stuck after {WATCHDOG:?}: {}", diagnose());
            }
        }
        for handle in self.handles {
            handle.join().expect("worker panicked");
        }
    }
}

fn diagnose(lock: &RawModalLock) -> String {
    format!(
        "mode {}, lock {:?}, nodes in use {}, hashed {}, waiting set {:#x}, halted {:#x}, {:?}, ticket {:?}, queued {:?}, tas {:?}",
        pvlock::mode(),
        lock.state(),
        pvlock::queue_nodes_in_use(),
        pvlock::hashed_locks(),
        pvlock::waiting_cpus(),
        host::halted_cpus(),
        host::counters(),
        stats::snapshot(),
        stats::queued_snapshot(),
        stats::tas_snapshot(),
    )
}

/// More threads than this machine's 2 cores, holders preempted now and then,
/// half of the CPUs waiting with interrupts disabled, one of them using
/// try_lock.
fn stress(threads: u32, rounds: u32, spin_threshold: u32) -> Arc<Protected<RawModalLock>> {
    host::install();
    pvlock::set_enabled(true);
    pvlock::set_spin_threshold(spin_threshold);
    host::clear_tokens();
    host::reset_counters();
    stats::reset();
    let shared = Arc::new(Protected::<RawModalLock>::new());
    let mut workers = Workers::new();
    for cpu in 0..threads {
        let shared = Arc::clone(&shared);
        workers.spawn(move || {
            host::bind_cpu(cpu);
            host::set_irqs_enabled(cpu % 2 == 0);
            for round in 0..rounds {
                if cpu == threads - 1 && round % 3 == 0 {
                    while !shared.lock.try_lock() {
                        thread::yield_now();
                    }
                } else {
                    shared.lock.lock();
                }
                // A yield now and then; a sleep long enough for every waiter
                // to give up spinning.
                let preempt = match (round + cpu * 7) % 97 {
                    0 => Some(Duration::from_micros(300)),
                    1..=4 => Some(Duration::ZERO),
                    _ => None,
                };
                shared.critical(preempt);
                // SAFETY: locked above.
                unsafe { shared.lock.unlock() };
            }
            host::unbind_cpu();
        });
    }
    workers.join(|| diagnose(&shared.lock));
    // SAFETY: all threads joined.
    let counter = unsafe { *shared.counter.get() };
    assert_eq!(counter, u64::from(threads * rounds), "{}", diagnose(&shared.lock));
    // Nobody left halted, queued, hashed or waiting, in any mode.
    let detail = diagnose(&shared.lock);
    assert_eq!(host::halted_cpus(), 0, "{detail}");
    assert_eq!(pvlock::waiting_cpus(), 0, "{detail}");
    assert_eq!(pvlock::queue_nodes_in_use(), 0, "{detail}");
    assert_eq!(pvlock::hashed_locks(), 0, "{detail}");
    assert!(!shared.lock.is_locked(), "{detail}");
    shared
}

/// The backend's own bookkeeping: every halt returned by consuming a kick,
/// and no kick token came from nowhere.
fn check_host_tokens(detail: &str) -> host::HostCounters {
    let h = host::counters();
    assert_eq!(h.tokens_consumed, h.halts, "{detail}");
    assert!(h.tokens_consumed + host::pending_tokens() <= h.kicks, "{detail}");
    h
}

fn check_nobody_halted(detail: &str) {
    let h = check_host_tokens(detail);
    assert_eq!(
        (h.halts, h.kicks),
        (0, 0),
        "a spinning mode halted or kicked: {detail}"
    );
    assert_eq!(stats::snapshot(), stats::PvLockStats::default(), "{detail}");
    let q = stats::queued_snapshot();
    assert_eq!(
        (q.halted, q.hashed, q.kick_unlock, q.steals),
        (0, 0, 0, 0),
        "{detail}"
    );
}

fn stress_mode(mode: LockMode) {
    pvlock::set_mode(mode).expect("fresh process: the mode is unset");
    assert_eq!(pvlock::mode(), mode);
    // The fair spinning locks (base, qspin) hand over only to a waiter that is
    // running: with many more threads than cores every handover waits for the
    // host scheduler (the convoy pv locks exist for), so they get one thread
    // more than the cores, the others four times as many.
    let (threads, rounds) = match std::env::var("PVLOCK_STRESS") {
        Ok(spec) => {
            let (t, r) = spec.split_once(',').expect("PVLOCK_STRESS=threads,rounds");
            (t.parse().expect("threads"), r.parse().expect("rounds"))
        }
        Err(_) if matches!(mode, LockMode::Base | LockMode::Qspin) => (3, 2000),
        Err(_) => (8, 3000),
    };
    for spin_threshold in [100, 5000] {
        let shared = stress(threads, rounds, spin_threshold);
        let detail = diagnose(&shared.lock);
        let (ticket, queued, tas) = (stats::snapshot(), stats::queued_snapshot(), stats::tas_snapshot());
        match mode {
            LockMode::Base => {
                check_nobody_halted(&detail);
                assert_eq!(queued, stats::QueuedLockStats::default(), "{detail}");
                assert!(matches!(shared.lock.state(), ModalLockState::Ticket(s) if !s.slowpath));
            }
            LockMode::Pv => {
                let h = check_host_tokens(&detail);
                assert_eq!(
                    ticket.taken_slow,
                    ticket.taken_slow_pickup + ticket.halted,
                    "{detail}"
                );
                assert_eq!(ticket.halted, h.halts, "{detail}");
                assert_eq!(ticket.halted_irqs_disabled, h.halts_irqs_disabled, "{detail}");
                assert!(ticket.spurious_wakeups <= ticket.halted, "{detail}");
                assert_eq!(ticket.released_slow_kicked, h.kicks, "{detail}");
                assert_eq!(
                    ticket.time_blocked_histogram.iter().sum::<u64>(),
                    ticket.halted,
                    "{detail}"
                );
                assert!(ticket.halted > 0 && ticket.released_slow_kicked > 0, "{detail}");
                // Kick-to-wake latencies: one per halt a kick ended, at most.
                let woken: u64 = pvlock::kick_wake_snapshot().iter().sum();
                assert!(
                    woken > 0 && woken <= ticket.halted,
                    "{woken} kicked wakes: {detail}"
                );
                assert!(matches!(shared.lock.state(), ModalLockState::Ticket(s) if !s.slowpath));
                assert_eq!(queued, stats::QueuedLockStats::default(), "{detail}");
            }
            LockMode::Qspin => {
                check_nobody_halted(&detail);
                assert!(queued.pending > 0 && queued.queued > 0, "{detail}");
                assert!(queued.nested + queued.no_node <= queued.queued, "{detail}");
                assert!(matches!(shared.lock.state(), ModalLockState::Queued(s) if s.is_idle()));
            }
            LockMode::PvQspin => {
                let h = check_host_tokens(&detail);
                let q = queued;
                assert_eq!(q.halted, q.wait_node + q.wait_head, "{detail}");
                assert_eq!(q.halted, h.halts, "{detail}");
                assert_eq!(q.halted_irqs_disabled, h.halts_irqs_disabled, "{detail}");
                // Every kick came from a slow unlock, and every hash entry was
                // removed by one, or by its head's pickup.
                assert_eq!(q.kick_unlock, h.kicks, "{detail}");
                assert_eq!(q.hashed, q.kick_unlock + q.pickups_head, "{detail}");
                assert!(q.hash_hops >= q.hashed, "{detail}");
                assert!(q.spurious_wakeups <= q.halted, "{detail}");
                assert!(q.kick_wake <= q.halted, "{detail}");
                assert!(
                    q.wait_again <= q.halted && q.wait_early <= q.wait_node,
                    "{detail}"
                );
                assert_eq!(q.time_blocked_histogram.iter().sum::<u64>(), q.halted, "{detail}");
                assert_eq!(
                    pvlock::kick_wake_snapshot().iter().sum::<u64>(),
                    q.kick_wake,
                    "{detail}"
                );
                assert_eq!(q.pending, 0, "pvqspin has no pending path: {detail}");
                assert!(q.halted > 0 && q.kick_unlock > 0 && q.kick_wake > 0, "{detail}");
                assert_eq!(ticket, stats::PvLockStats::default(), "{detail}");
                assert!(matches!(shared.lock.state(), ModalLockState::Queued(s) if s.is_idle()));
            }
            LockMode::Tas => {
                check_nobody_halted(&detail);
                assert_eq!(queued, stats::QueuedLockStats::default(), "{detail}");
                assert!(tas.contended > 0, "{detail}");
                assert!(tas.backoff_spins >= tas.failed_cas, "{detail}");
                assert!(matches!(shared.lock.state(), ModalLockState::Queued(s) if s.is_idle()));
            }
        }
        eprintln!(
            "{mode}, {threads} threads x {rounds} rounds (spin threshold {spin_threshold}): host {:?}\n  ticket {ticket:?}\n  queued {queued:?}\n  tas {tas:?}",
            host::counters()
        );
    }
}

#[test]
fn stress_base() {
    in_child("stress_base", || stress_mode(LockMode::Base));
}

#[test]
fn stress_pv() {
    in_child("stress_pv", || stress_mode(LockMode::Pv));
}

#[test]
fn stress_qspin() {
    in_child("stress_qspin", || stress_mode(LockMode::Qspin));
}

#[test]
fn stress_pvqspin() {
    in_child("stress_pvqspin", || stress_mode(LockMode::PvQspin));
}

#[test]
fn stress_tas() {
    in_child("stress_tas", || stress_mode(LockMode::Tas));
}

#[test]
fn set_mode_before_any_lock_fixes_it() {
    in_child("set_mode_before_any_lock_fixes_it", || {
        assert!(!pvlock::mode_is_fixed());
        assert_eq!(pvlock::mode(), LockMode::Base);
        pvlock::set_mode(LockMode::Qspin).unwrap();
        assert!(pvlock::mode_is_fixed());
        // The same mode again is fine; anything else is refused.
        pvlock::set_mode(LockMode::Qspin).unwrap();
        for other in [LockMode::Base, LockMode::Pv, LockMode::PvQspin, LockMode::Tas] {
            assert_eq!(
                pvlock::set_mode(other),
                Err(ModeError {
                    requested: other,
                    current: LockMode::Qspin
                })
            );
        }
        assert_eq!(pvlock::mode(), LockMode::Qspin);
        let lock = RawModalLock::new();
        lock.lock();
        assert!(matches!(lock.state(), ModalLockState::Queued(s) if s.locked == 1));
        assert!(!lock.try_lock());
        // SAFETY: locked above.
        unsafe { lock.unlock() };
        assert!(matches!(lock.state(), ModalLockState::Queued(s) if s.is_idle()));
    });
}

#[test]
fn the_first_lock_fixes_base_and_only_pv_may_follow() {
    in_child("the_first_lock_fixes_base_and_only_pv_may_follow", || {
        assert!(!pvlock::mode_is_fixed());
        let lock = RawModalLock::new();
        lock.lock();
        assert!(pvlock::mode_is_fixed());
        assert_eq!(pvlock::mode(), LockMode::Base);
        // SAFETY: locked above.
        unsafe { lock.unlock() };
        // The word now reads as a ticket lock at rest with head == tail != 0:
        // a queued mode would take it for held.
        assert!(matches!(lock.state(), ModalLockState::Ticket(s) if s.owner == 2 && !s.is_locked()));
        for queued in [LockMode::Qspin, LockMode::PvQspin, LockMode::Tas] {
            let err = pvlock::set_mode(queued).unwrap_err();
            assert_eq!(err.current, LockMode::Base);
            assert!(err.to_string().contains("fixed by the first lock"), "{err}");
        }
        // base <-> pv share the word: allowed at any time.
        pvlock::set_mode(LockMode::Pv).unwrap();
        assert_eq!(pvlock::mode(), LockMode::Pv);
        assert!(lock.try_lock());
        // SAFETY: locked above.
        unsafe { lock.unlock() };
        pvlock::set_mode(LockMode::Base).unwrap();
        assert_eq!(
            pvlock::set_mode(LockMode::Tas).unwrap_err().current,
            LockMode::Base
        );
        assert!(lock.try_lock());
        // SAFETY: locked above.
        unsafe { lock.unlock() };
    });
}

/// `set_mode` racing the first lock operations of other threads: either it
/// wins and every lock is queued, or a lock wins and it is refused; either
/// way every lock keeps working and the counter stays intact.
#[test]
fn set_mode_racing_the_first_lock() {
    in_child("set_mode_racing_the_first_lock", || {
        // The race is decided by the first operations; the rounds after it
        // only check that every lock keeps working. If base wins, these are
        // spinning fair ticket waiters, one more than this host's 2 cores:
        // every handover to a preempted waiter waits for the host scheduler
        // (the convoy pv locks exist for), so the rounds are as few as the
        // stress test's for base. 20,000 took 43 s alone when base won and
        // ran past the 120 s watchdog under CI's parallel tests.
        const THREADS: u64 = 3;
        const ROUNDS: u64 = 2_000;
        let shared = Arc::new(Protected::<RawModalLock>::new());
        let go = Arc::new(AtomicBool::new(false));
        let mut workers = Workers::new();
        for _ in 0..THREADS {
            let (shared, go) = (Arc::clone(&shared), Arc::clone(&go));
            workers.spawn(move || {
                while !go.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
                for _ in 0..ROUNDS {
                    shared.lock.lock();
                    shared.critical(None);
                    // SAFETY: locked above.
                    unsafe { shared.lock.unlock() };
                }
            });
        }
        go.store(true, Ordering::Release);
        let result = pvlock::set_mode(LockMode::Tas);
        workers.join(|| diagnose(&shared.lock));
        // SAFETY: all threads joined.
        assert_eq!(unsafe { *shared.counter.get() }, THREADS * ROUNDS);
        match result {
            Ok(()) => assert_eq!(pvlock::mode(), LockMode::Tas),
            Err(err) => {
                assert_eq!(err.current, LockMode::Base);
                assert_eq!(pvlock::mode(), LockMode::Base);
            }
        }
        eprintln!("set_mode(tas) racing the first locks: {result:?}");
    });
}
