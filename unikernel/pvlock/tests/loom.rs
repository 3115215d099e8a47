//! Model checking of the waiter/unlocker handshake with loom:
//! `RUSTFLAGS="--cfg loom" cargo test -p pvlock --release --test loom`.
//!
//! Each spawned model thread is a CPU that takes the lock and increments a
//! plain counter under it; the main thread only joins. The spin threshold is
//! 0, so every contended acquisition takes the slow path. Loom explores the
//! interleavings and the weak-memory outcomes the orderings allow, and fails
//! on
//! - two holders at once (loom's `UnsafeCell` sees concurrent accesses, or
//!   the final count is wrong), and
//! - a lost wakeup: a waiter halted with nobody left to kick it (a deadlock
//!   or a branch-limit overrun, depending on how halting is modelled).
//!
//! Halting is modelled in two ways, both sticky as `PvOps::halt` requires:
//! - [`Halt::Spin`]: `kick` sets a per-CPU flag (Relaxed) and `halt` spins on
//!   it. Nothing but the lock's own atomics orders the waiter after the
//!   kicker, as with a real IPI. Two spinning waiters make loom explore
//!   endless back-and-forth schedules, so this model runs with 2 CPUs.
//! - [`Halt::Park`]: loom's `park`/`unpark`, which block properly and scale
//!   to 3 CPUs, but whose `unpark` also gives the woken thread the kicker's
//!   view of memory; the 2-CPU spin model covers the orderings that hides.
#![cfg(loom)]

use std::cell::Cell;
use std::sync::atomic::AtomicU64;

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread::{self, Thread};
use pvlock::{PvOps, RawPvTicketLock, MAX_CPUS};

loom::thread_local! {
    static CPU: Cell<u32> = Cell::new(u32::MAX);
}

loom::lazy_static! {
    /// A pending kick per CPU.
    static ref KICKED: Vec<AtomicBool> = (0..MAX_CPUS).map(|_| AtomicBool::new(false)).collect();
    /// The model thread playing each CPU, for `unpark`.
    static ref THREADS: std::sync::Mutex<Vec<Option<Thread>>> =
        std::sync::Mutex::new(vec![None; MAX_CPUS]);
}

/// Executions explored and halts seen across them (std atomics: not part of
/// the model), to show that the slow path really is explored.
static EXECUTIONS: AtomicU64 = AtomicU64::new(0);
static HALTS: AtomicU64 = AtomicU64::new(0);

fn cpu_id() -> u32 {
    CPU.with(Cell::get)
}

fn irq_save() -> bool {
    true
}

fn irq_restore(_irqs_were_enabled: bool) {}

fn now() -> u64 {
    0
}

fn halt_spin(_irqs_were_enabled: bool) {
    HALTS.fetch_add(1, Ordering::Relaxed);
    let kicked = &KICKED[cpu_id() as usize];
    // Relaxed: a kick carries no data; the lock re-reads its word with
    // Acquire after waking.
    while !kicked.swap(false, Ordering::Relaxed) {
        thread::yield_now();
    }
}

fn kick_spin(cpu: u32) {
    // Relaxed: see `halt_spin`. An RMW, not a store: loom orders a plain
    // store only partially against the waiter's swaps and could let the
    // waiter read its own older `false` for ever.
    KICKED[cpu as usize].swap(true, Ordering::Relaxed);
}

fn halt_park(_irqs_were_enabled: bool) {
    HALTS.fetch_add(1, Ordering::Relaxed);
    let kicked = &KICKED[cpu_id() as usize];
    // Relaxed: see `halt_spin`.
    while !kicked.swap(false, Ordering::Relaxed) {
        thread::park();
    }
}

fn kick_park(cpu: u32) {
    // Relaxed: see `halt_spin`.
    KICKED[cpu as usize].swap(true, Ordering::Relaxed);
    THREADS.lock().unwrap()[cpu as usize]
        .as_ref()
        .expect("kicked a CPU that never waited")
        .unpark();
}

static SPIN_OPS: PvOps = PvOps {
    cpu_id,
    irq_save,
    irq_restore,
    halt: halt_spin,
    kick: kick_spin,
    now,
};

static PARK_OPS: PvOps = PvOps {
    cpu_id,
    irq_save,
    irq_restore,
    halt: halt_park,
    kick: kick_park,
    now,
};

#[derive(Clone, Copy, Debug)]
enum Halt {
    Spin,
    Park,
}

/// The registered `PvOps` are process-wide: one model at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `cpus` CPUs each take the lock `rounds` times.
fn check(halt: Halt, cpus: u32, rounds: u32, preemption_bound: Option<usize>) {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = preemption_bound;
    let (executions, halts) = (EXECUTIONS.load(Ordering::Relaxed), HALTS.load(Ordering::Relaxed));
    builder.check(move || {
        EXECUTIONS.fetch_add(1, Ordering::Relaxed);
        pvlock::register_ops(match halt {
            Halt::Spin => &SPIN_OPS,
            Halt::Park => &PARK_OPS,
        });
        pvlock::set_spin_threshold(0);
        let lock = Arc::new(RawPvTicketLock::new());
        let count = Arc::new(UnsafeCell::new(0u32));
        let threads: Vec<_> = (0..cpus)
            .map(|cpu| {
                let (lock, count) = (Arc::clone(&lock), Arc::clone(&count));
                thread::spawn(move || {
                    CPU.with(|c| c.set(cpu));
                    THREADS.lock().unwrap()[cpu as usize] = Some(thread::current());
                    for _ in 0..rounds {
                        lock.lock();
                        // SAFETY: under the lock (loom checks that it is).
                        count.with_mut(|c| unsafe { *c += 1 });
                        // SAFETY: locked just above.
                        unsafe { lock.unlock() };
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // SAFETY: every other thread has been joined.
        assert_eq!(count.with(|c| unsafe { *c }), cpus * rounds);
        let state = lock.state();
        assert!(!state.is_locked(), "{state:?}");
        assert!(!state.slowpath, "stale slow-path flag: {state:?}");
        assert_eq!(pvlock::waiting_cpus(), 0);
    });
    let executions = EXECUTIONS.load(Ordering::Relaxed) - executions;
    let halts = HALTS.load(Ordering::Relaxed) - halts;
    eprintln!(
        "{halt:?}, {cpus} cpus x {rounds} rounds, preemption bound {preemption_bound:?}: \
         {executions} executions, {halts} halts"
    );
    assert!(halts > 0, "the slow path was never explored");
}

#[test]
fn spin_two_cpus_one_round_each() {
    check(Halt::Spin, 2, 1, None);
}

#[test]
fn spin_two_cpus_two_rounds_each() {
    // Re-publication, stale kicks and spurious wakeups.
    check(Halt::Spin, 2, 2, Some(4));
}

#[test]
fn park_two_cpus_two_rounds_each() {
    check(Halt::Park, 2, 2, Some(4));
}

#[test]
fn park_three_cpus_one_round_each() {
    // A waiter behind a waiter: the kick must go to the next ticket only,
    // and the flag must survive the middle owner.
    check(Halt::Park, 3, 1, Some(3));
}

#[test]
fn park_three_cpus_two_rounds_each() {
    check(Halt::Park, 3, 2, Some(2));
}

/// For sizing runs: `PVLOCK_LOOM=spin|park,cpus,rounds[,bound]` with
/// `-- --exact sized`.
#[test]
fn sized() {
    let Ok(spec) = std::env::var("PVLOCK_LOOM") else {
        return;
    };
    let mut fields = spec.split(',');
    let halt = match fields.next() {
        Some("spin") => Halt::Spin,
        Some("park") => Halt::Park,
        other => panic!("PVLOCK_LOOM: bad halt model {other:?}"),
    };
    let mut number = || fields.next().map(|f| f.parse::<u32>().expect("a number"));
    let cpus = number().expect("cpus");
    let rounds = number().expect("rounds");
    let bound = number().map(|b| b as usize);
    check(halt, cpus, rounds, bound);
}
