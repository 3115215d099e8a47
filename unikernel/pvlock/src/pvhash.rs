//! The lock -> queue-head table of `pvqspin` (Linux's `pv_lock_hash`).
//!
//! A queue head that halts leaves its lock's address and its node's tail code
//! here, so that the unlocker, which knows only the lock, finds the CPU to
//! kick. Open addressing with linear probing from the hashed address's cache
//! line. An entry names a lock by address only: the address is compared, never
//! dereferenced.
//!
//! Sizing (Linux's argument): an entry exists only while its lock is slow
//! (`_Q_SLOW_VAL`), a lock has at most one (the owner unhashes before it
//! releases, and only the one queue head, or the owner on its behalf, hashes),
//! and a queue head holds one of the `4 * MAX_CPUS` queue nodes. So at most
//! `4 * MAX_CPUS` entries are ever in use, and the table has at least that many
//! (rounded up to a power of two): an insertion always finds a free entry.

use crate::queued::NODES_PER_CPU;
use crate::stats::queued as ev;
use crate::sync::{AtomicU32, AtomicUsize, Ordering};
use crate::MAX_CPUS;

/// log2 of the number of entries.
const HASH_BITS: u32 = (NODES_PER_CPU * MAX_CPUS).next_power_of_two().trailing_zeros();

/// Entries in the table: at least one per queue node.
pub(crate) const HASH_ENTRIES: usize = 1 << HASH_BITS;

const _: () = assert!(HASH_ENTRIES >= NODES_PER_CPU * MAX_CPUS);

/// Entries per 64-byte cache line; probing starts at a line boundary.
const PER_LINE: usize = 4;

/// The lock address of a free entry.
const EMPTY: usize = 0;

#[repr(align(16))] // Four to a cache line.
struct Entry {
    /// The lock's address, or [`EMPTY`].
    lock: AtomicUsize,
    /// The tail code of the halted queue head's node; meaningful while `lock`
    /// is set.
    node: AtomicU32,
}

pub(crate) struct Table {
    entries: [Entry; HASH_ENTRIES],
}

impl Entry {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Self {
            lock: AtomicUsize::new(EMPTY),
            node: AtomicU32::new(0),
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        Self {
            lock: AtomicUsize::new(EMPTY),
            node: AtomicU32::new(0),
        }
    }
}

impl Table {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Self {
            entries: [const { Entry::new() }; HASH_ENTRIES],
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        Self {
            entries: core::array::from_fn(|_| Entry::new()),
        }
    }

    /// Where probing for `lock` starts: a multiplicative hash of the address
    /// (Linux's `hash_ptr`), rounded down to its cache line.
    fn start(lock: usize) -> usize {
        let hash = (lock as u64).wrapping_mul(0x61c8_8646_80b5_83eb) >> (u64::BITS - HASH_BITS);
        hash as usize & !(PER_LINE - 1)
    }

    /// The probe sequence for `lock`: every entry once.
    fn probe(&self, lock: usize) -> impl Iterator<Item = (usize, &Entry)> {
        let start = Self::start(lock);
        (0..HASH_ENTRIES).map(move |hop| {
            let index = (start + hop) % HASH_ENTRIES;
            (index, &self.entries[index])
        })
    }

    /// Records that the queue head with tail code `node` halts on `lock`;
    /// returns the entry's index (for [`Table::remove`]).
    ///
    /// The entry is published by the caller's next Release RMW on the lock
    /// word (the one that sets `_Q_SLOW_VAL`, or for `pv_kick_node` the
    /// owner's own later unlock).
    pub(crate) fn insert(&self, lock: usize, node: u32) -> usize {
        for (hops, (index, entry)) in (1..).zip(self.probe(lock)) {
            // Relaxed: a guess, checked by the compare-exchange.
            if entry.lock.load(Ordering::Relaxed) != EMPTY {
                continue;
            }
            // Acquire: pairs with the Release store in `take`/`remove`: the
            // entry's previous user has read its `node` before we overwrite it.
            if entry
                .lock
                .compare_exchange(EMPTY, lock, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                // Relaxed: published with the entry by the caller's Release RMW
                // on the lock word (see above).
                entry.node.store(node, Ordering::Relaxed);
                ev::HASHED.inc();
                ev::HASH_HOPS.add(hops);
                return index;
            }
        }
        // Unreachable by the sizing argument in the module documentation.
        panic!("pvqspin: lock hash table full");
    }

    /// Removes `lock`'s entry and returns the tail code it held.
    ///
    /// Called by the lock's owner after it saw `_Q_SLOW_VAL` and issued an
    /// Acquire fence, so the entry is visible; nobody else inserts an entry for
    /// this lock until the owner releases it.
    pub(crate) fn take(&self, lock: usize) -> u32 {
        for (_, entry) in self.probe(lock) {
            // Relaxed: the caller's Acquire fence ordered this after the entry's
            // insertion; other locks' entries only fail the comparison.
            if entry.lock.load(Ordering::Relaxed) == lock {
                // Relaxed: as above.
                let node = entry.node.load(Ordering::Relaxed);
                // Release: pairs with the Acquire in `insert`; our read of
                // `node` is over before the entry is reused.
                entry.lock.store(EMPTY, Ordering::Release);
                return node;
            }
        }
        // A slow lock always has its entry (Linux BUG()s here too).
        panic!("pvqspin: no hash entry for a slow lock at {lock:#x}");
    }

    /// Frees entry `index`, which the caller inserted (a queue head that found
    /// the lock free when it marked it slow).
    pub(crate) fn remove(&self, index: usize) {
        // Release: see `take`.
        self.entries[index].lock.store(EMPTY, Ordering::Release);
    }

    /// Entries in use (racy; for tests and diagnostics).
    pub(crate) fn in_use(&self) -> usize {
        self.entries
            .iter()
            // Relaxed: a diagnostic snapshot.
            .filter(|entry| entry.lock.load(Ordering::Relaxed) != EMPTY)
            .count()
    }
}

#[cfg(not(loom))]
static TABLE: Table = Table::new();

#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn table() -> &'static Table {
    &TABLE
}

// Loom atomics must be created inside each model execution.
#[cfg(loom)]
loom::lazy_static! {
    static ref TABLE: Table = Table::new();
}

#[cfg(loom)]
pub(crate) fn table() -> &'static Table {
    &TABLE
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn probing_starts_on_a_line_and_covers_the_table() {
        for lock in [8usize, 0x1000, 0xdead_beef, usize::MAX - 7] {
            let start = Table::start(lock);
            assert_eq!(start % PER_LINE, 0);
            assert!(start < HASH_ENTRIES);
        }
    }

    #[test]
    fn insert_take_and_remove() {
        // A private table: the global one belongs to the lock tests.
        let table = Table::new();
        let a = table.insert(0x1000, 7);
        let b = table.insert(0x2000, 9);
        assert_ne!(a, b);
        assert_eq!(table.in_use(), 2);
        assert_eq!(table.take(0x2000), 9);
        table.remove(a);
        assert_eq!(table.in_use(), 0);
    }

    #[test]
    fn a_full_table_still_finds_every_lock() {
        let table = Table::new();
        // Every entry used, all colliding or not: each is found again.
        let locks: std::vec::Vec<usize> = (1..=HASH_ENTRIES).map(|i| i * 64).collect();
        for (i, &lock) in locks.iter().enumerate() {
            table.insert(lock, i as u32);
        }
        assert_eq!(table.in_use(), HASH_ENTRIES);
        for (i, &lock) in locks.iter().enumerate().rev() {
            assert_eq!(table.take(lock), i as u32);
        }
        assert_eq!(table.in_use(), 0);
    }
}
