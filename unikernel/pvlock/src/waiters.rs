//! Who is halted on which lock: a wait record per CPU plus a bitmask of the
//! CPUs that may be halted, which is all an unlocker looks at to find the CPU
//! to kick.
//!
//! A record names a lock by its address only. The address is compared, never
//! dereferenced: an unlocker may scan the records after the lock it released
//! has been freed.

use crate::sync::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use crate::word::Ticket;
use crate::MAX_CPUS;

const _: () = assert!(MAX_CPUS <= u64::BITS as usize, "the waiting set is one u64");

/// "No lock": the address stored in an idle record.
const NO_LOCK: usize = 0;

/// What one CPU waits for. Written only by its CPU, read by unlockers.
#[repr(align(64))] // One cache line per CPU: records are written on every halt.
pub(crate) struct WaitRecord {
    /// Address of the lock the CPU waits for, or [`NO_LOCK`].
    lock: AtomicUsize,
    /// The ticket it waits for; meaningful only while `lock` names a lock.
    want: AtomicU16,
}

/// The per-CPU records and the set of CPUs that may be halted.
pub(crate) struct Waiters {
    /// Bit `cpu` set: `records[cpu]` may name a lock.
    waiting: AtomicU64,
    records: [WaitRecord; MAX_CPUS],
}

impl WaitRecord {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Self {
            lock: AtomicUsize::new(NO_LOCK),
            want: AtomicU16::new(0),
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        Self {
            lock: AtomicUsize::new(NO_LOCK),
            want: AtomicU16::new(0),
        }
    }
}

impl Waiters {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Self {
            waiting: AtomicU64::new(0),
            records: [const { WaitRecord::new() }; MAX_CPUS],
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        Self {
            waiting: AtomicU64::new(0),
            records: core::array::from_fn(|_| WaitRecord::new()),
        }
    }

    /// Records that `cpu` waits for ticket `want` of the lock at `lock` and
    /// adds it to the waiting set. Made visible to the unlocker by the
    /// waiter's Release RMW on the lock word that follows.
    pub(crate) fn publish(&self, cpu: u32, lock: usize, want: Ticket) {
        let rec = &self.records[cpu as usize];
        // Relaxed: retracts the old name first, so that the record never names
        // a lock next to a ticket that is being replaced; the Release store
        // below keeps this and `want` ahead of the new name.
        rec.lock.store(NO_LOCK, Ordering::Relaxed);
        // Relaxed: ordered before the new name by the Release store below.
        rec.want.store(want, Ordering::Relaxed);
        // Release: pairs with the Acquire load of `lock` in `find`: whoever
        // reads this name reads this `want`.
        rec.lock.store(lock, Ordering::Release);
        // Relaxed: ordered before the waiter's Release RMW on the lock word,
        // which the unlocker acquires before it reads the set.
        self.waiting.fetch_or(1u64 << cpu, Ordering::Relaxed);
    }

    /// Takes `cpu` out of the waiting set and clears its record.
    pub(crate) fn retract(&self, cpu: u32) {
        // Relaxed: an unlocker that still sees the bit or the name only sends
        // an unneeded kick, which the waiter takes as a spurious wakeup.
        self.waiting.fetch_and(!(1u64 << cpu), Ordering::Relaxed);
        // Relaxed: as above.
        self.records[cpu as usize].lock.store(NO_LOCK, Ordering::Relaxed);
    }

    /// The CPU waiting for ticket `want` of the lock at `lock`, if any.
    ///
    /// The caller must have acquired the lock-word RMW that published the
    /// waiter (an Acquire fence after its own RMW saw the slow-path flag).
    pub(crate) fn find(&self, lock: usize, want: Ticket) -> Option<u32> {
        // Relaxed: the caller's Acquire fence already ordered this load after
        // the waiter's publication.
        let mut set = self.waiting.load(Ordering::Relaxed);
        while set != 0 {
            let cpu = set.trailing_zeros();
            set &= set - 1;
            let rec = &self.records[cpu as usize];
            // Acquire: pairs with the Release store of `lock` in `publish`,
            // so `want` below belongs to this name.
            if rec.lock.load(Ordering::Acquire) == lock
                // Relaxed: ordered by the Acquire load just above.
                && rec.want.load(Ordering::Relaxed) == want
            {
                return Some(cpu);
            }
        }
        None
    }

    /// The waiting set (for tests and diagnostics).
    pub(crate) fn waiting_set(&self) -> u64 {
        // Relaxed: a diagnostic snapshot.
        self.waiting.load(Ordering::Relaxed)
    }
}

#[cfg(not(loom))]
static WAITERS: Waiters = Waiters::new();

#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn waiters() -> &'static Waiters {
    &WAITERS
}

// Loom atomics must be created inside each model execution.
#[cfg(loom)]
loom::lazy_static! {
    static ref WAITERS: Waiters = Waiters::new();
}

#[cfg(loom)]
pub(crate) fn waiters() -> &'static Waiters {
    &WAITERS
}
