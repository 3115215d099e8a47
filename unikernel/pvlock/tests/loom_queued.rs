//! Model checking of the queued locks with loom:
//! `RUSTFLAGS="--cfg loom" cargo test -p pvlock --release --test loom_queued`.
//!
//! As in `tests/loom.rs`: each spawned model thread is a CPU that takes the
//! lock and increments a plain counter under it; the spin threshold is 0, so
//! every `pvqspin` waiter that does not get the lock at once goes to halt, as
//! queued node or as queue head. Loom explores the interleavings and the
//! weak-memory outcomes the orderings allow and fails on
//! - two holders at once (loom's `UnsafeCell` sees concurrent accesses, or
//!   the final count is wrong),
//! - a lost wakeup (a waiter halted with nobody left to kick it: a deadlock,
//!   or a branch-limit overrun with the spinning halt model), and
//! - anything left behind: a lock word that is not idle, a claimed queue node
//!   or a hash entry after every thread has finished.
//!
//! `pvqspin` is checked with both halt models of `tests/loom.rs` (sticky
//! flag polled with yields; park/unpark). With 2 CPUs and 2 rounds the second
//! round queues behind the other CPU's queue head, so the models reach the
//! node handshake (`pv_wait_node` against the handover, `pv_kick_node`'s
//! hashing) as well as the head's (hash, `_Q_SLOW_VAL`, unhash and kick).
//!
//! That the models can fail for the right reason was checked by breaking the
//! code: a handover that does not hash a halted successor (deadlock: lost
//! wakeup), `_Q_SLOW_VAL` set before the hash entry and an unlock without its
//! Acquire fence ("no hash entry for a slow lock"), a `qspin` head waiting
//! with a Relaxed load (loom: concurrent access to the counter).
#![cfg(loom)]

use std::cell::Cell;
use std::sync::atomic::AtomicU64;

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread::{self, Thread};
use pvlock::{stats, PvOps, RawPvQSpinLock, RawQSpinLock, MAX_CPUS};

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
    // Relaxed: a kick carries no data; the lock re-reads its words after
    // waking with the orderings it needs.
    while !kicked.swap(false, Ordering::Relaxed) {
        thread::yield_now();
    }
}

fn kick_spin(cpu: u32) {
    // Relaxed: see `halt_spin`. An RMW, so that the waiter's swaps cannot
    // keep reading an older `false` (see tests/loom.rs).
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

#[derive(Clone, Copy, Debug)]
enum Lock {
    Qspin,
    PvQspin,
}

/// The registered `PvOps` are process-wide: one model at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

trait ModelLock: Send + Sync + 'static {
    fn new() -> Self;
    fn lock(&self);
    /// # Safety
    /// Held by the caller.
    unsafe fn unlock(&self);
    fn is_idle(&self) -> bool;
}

impl ModelLock for RawQSpinLock {
    fn new() -> Self {
        RawQSpinLock::new()
    }
    fn lock(&self) {
        RawQSpinLock::lock(self);
    }
    unsafe fn unlock(&self) {
        // SAFETY: the caller's contract.
        unsafe { RawQSpinLock::unlock(self) }
    }
    fn is_idle(&self) -> bool {
        self.state().is_idle()
    }
}

impl ModelLock for RawPvQSpinLock {
    fn new() -> Self {
        RawPvQSpinLock::new()
    }
    fn lock(&self) {
        RawPvQSpinLock::lock(self);
    }
    unsafe fn unlock(&self) {
        // SAFETY: the caller's contract.
        unsafe { RawPvQSpinLock::unlock(self) }
    }
    fn is_idle(&self) -> bool {
        self.state().is_idle()
    }
}

/// `cpus` CPUs each take the lock `rounds` times.
fn check(lock: Lock, halt: Halt, cpus: u32, rounds: u32, preemption_bound: Option<usize>) {
    match lock {
        Lock::Qspin => check_with::<RawQSpinLock>(lock, halt, cpus, rounds, preemption_bound),
        Lock::PvQspin => check_with::<RawPvQSpinLock>(lock, halt, cpus, rounds, preemption_bound),
    }
}

fn check_with<L: ModelLock>(lock: Lock, halt: Halt, cpus: u32, rounds: u32, preemption_bound: Option<usize>) {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = preemption_bound;
    let (executions, halts) = (EXECUTIONS.load(Ordering::Relaxed), HALTS.load(Ordering::Relaxed));
    stats::reset();
    builder.check(move || {
        EXECUTIONS.fetch_add(1, Ordering::Relaxed);
        pvlock::register_ops(match halt {
            Halt::Spin => &SPIN_OPS,
            Halt::Park => &PARK_OPS,
        });
        pvlock::set_enabled(true);
        pvlock::set_spin_threshold(0);
        let the_lock = Arc::new(L::new());
        let count = Arc::new(UnsafeCell::new(0u32));
        let threads: Vec<_> = (0..cpus)
            .map(|cpu| {
                let (the_lock, count) = (Arc::clone(&the_lock), Arc::clone(&count));
                thread::spawn(move || {
                    CPU.with(|c| c.set(cpu));
                    THREADS.lock().unwrap()[cpu as usize] = Some(thread::current());
                    for _ in 0..rounds {
                        the_lock.lock();
                        // SAFETY: under the lock (loom checks that it is).
                        count.with_mut(|c| unsafe { *c += 1 });
                        // SAFETY: locked just above.
                        unsafe { the_lock.unlock() };
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // SAFETY: every other thread has been joined.
        assert_eq!(count.with(|c| unsafe { *c }), cpus * rounds);
        assert!(the_lock.is_idle(), "lock word not idle");
        assert_eq!(pvlock::queue_nodes_in_use(), 0, "a queue node left claimed");
        assert_eq!(pvlock::hashed_locks(), 0, "a hash entry left behind");
    });
    let executions = EXECUTIONS.load(Ordering::Relaxed) - executions;
    let halts = HALTS.load(Ordering::Relaxed) - halts;
    let q = stats::queued_snapshot();
    eprintln!(
        "{lock:?} {halt:?}, {cpus} cpus x {rounds} rounds, preemption bound {preemption_bound:?}: \
         {executions} executions, {halts} halts (wait_node {}, wait_head {}, hashed {}, kick_unlock {}, \
         pickups {}, pending {}, queued {})",
        q.wait_node,
        q.wait_head,
        q.hashed,
        q.kick_unlock,
        q.pickups(),
        q.pending,
        q.queued
    );
    match lock {
        Lock::PvQspin => {
            assert!(halts > 0, "the slow path was never explored");
            if rounds > 1 {
                assert!(
                    q.wait_node > 0 && q.wait_head > 0,
                    "a handshake was never explored: {q:?}"
                );
            }
        }
        Lock::Qspin => assert!(
            q.queued > 0 && q.pending > 0,
            "the queue was never explored: {q:?}"
        ),
    }
}

#[test]
fn pvqspin_spin_two_cpus_one_round_each() {
    // The head's handshake: hash, _Q_SLOW_VAL, unhash and kick.
    check(Lock::PvQspin, Halt::Spin, 2, 1, None);
}

#[test]
fn pvqspin_spin_two_cpus_two_rounds_each() {
    // Plus the node's: the second round queues behind the other CPU's head.
    check(Lock::PvQspin, Halt::Spin, 2, 2, Some(5));
}

#[test]
fn pvqspin_park_two_cpus_three_rounds_each() {
    // Nodes and hash entries reused, stale kicks, once-only hashing.
    check(Lock::PvQspin, Halt::Park, 2, 3, Some(3));
}

#[test]
fn pvqspin_park_three_cpus_one_round_each() {
    // Owner, head and a queued node at once: pv_kick_node's hashing for a
    // halted successor while a third CPU holds the lock.
    check(Lock::PvQspin, Halt::Park, 3, 1, Some(3));
}

#[test]
fn pvqspin_park_three_cpus_two_rounds_each() {
    check(Lock::PvQspin, Halt::Park, 3, 2, Some(2));
}

// qspin never halts, so its models have at most one waiter spinning: two
// spinning waiters (three CPUs) make loom explore their endless back-and-forth
// while the owner is preempted (see tests/loom.rs). Two CPUs still reach the
// pending path, the pending -> locked handover seen as `0,1,0`, the queue head
// and the MCS handover to the other CPU's next round.

#[test]
fn qspin_two_cpus_two_rounds_each() {
    check(Lock::Qspin, Halt::Park, 2, 2, Some(4));
}

#[test]
fn qspin_two_cpus_three_rounds_each() {
    check(Lock::Qspin, Halt::Park, 2, 3, Some(5));
}

/// For sizing runs: `PVLOCK_LOOM=qspin|pvqspin,spin|park,cpus,rounds[,bound]`
/// with `-- --exact sized`.
#[test]
fn sized() {
    let Ok(spec) = std::env::var("PVLOCK_LOOM") else {
        return;
    };
    let mut fields = spec.split(',');
    let lock = match fields.next() {
        Some("qspin") => Lock::Qspin,
        Some("pvqspin") => Lock::PvQspin,
        other => panic!("PVLOCK_LOOM: bad lock {other:?}"),
    };
    let halt = match fields.next() {
        Some("spin") => Halt::Spin,
        Some("park") => Halt::Park,
        other => panic!("PVLOCK_LOOM: bad halt model {other:?}"),
    };
    let mut number = || fields.next().map(|f| f.parse::<u32>().expect("a number"));
    let cpus = number().expect("cpus");
    let rounds = number().expect("rounds");
    let bound = number().map(|b| b as usize);
    check(lock, halt, cpus, rounds, bound);
}
