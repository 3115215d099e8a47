//! An unfair test-and-set lock with bounded exponential backoff (`tas`), as
//! Linux's `virt_spin_lock`: what Linux falls back to in a guest without a
//! paravirtual interface, where a fair lock's waiters would queue behind a
//! preempted vCPU. Whoever finds the lock free when it is released takes it;
//! nobody halts.
//!
//! The word is the queued locks' (`LOCKED_VAL` in the locked byte, nothing
//! else is ever set), so that [`crate::RawModalLock`] shares their fast path.

use crate::queued::{fast_lock, trylock, LOCKED_VAL};
use crate::stats::tas as ev;
use crate::sync::{spin_loop, AtomicU32, Ordering};

/// The longest backoff after a lost test-and-set, in `pause`s (2^6, as
/// `crossbeam`'s and `spinning_top`'s `Backoff`).
pub const TAS_MAX_BACKOFF: u32 = 1 << 6;

/// An unfair test-and-set spinlock: test, then test-and-set, backing off
/// exponentially (up to [`TAS_MAX_BACKOFF`]) after each lost race.
#[repr(transparent)] // `RawModalLock` views its word as this lock.
pub struct RawTasLock {
    word: AtomicU32,
}

impl RawTasLock {
    /// An unlocked lock.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            word: AtomicU32::new(0),
        }
    }

    /// An unlocked lock (loom's atomics cannot be built in a const fn).
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            word: AtomicU32::new(0),
        }
    }

    /// Acquires the lock, spinning while others hold it.
    #[inline]
    pub fn lock(&self) {
        if fast_lock(&self.word).is_err() {
            lock_slow(&self.word);
        }
    }

    /// Acquires the lock if it is free; never waits.
    #[inline]
    pub fn try_lock(&self) -> bool {
        // The same word and test as the queued locks' trylock.
        trylock(&self.word)
    }

    /// Releases the lock.
    ///
    /// # Safety
    ///
    /// The calling context must hold the lock.
    #[inline]
    pub unsafe fn unlock(&self) {
        unlock(&self.word);
    }

    /// Whether some context holds the lock (racy).
    #[inline]
    pub fn is_locked(&self) -> bool {
        // Relaxed: a snapshot for diagnostics.
        self.word.load(Ordering::Relaxed) != 0
    }
}

/// The release: a plain store, since nothing but the locked byte is ever set.
#[inline(always)]
pub(crate) fn unlock(word: &AtomicU32) {
    // Release: pairs with the Acquire compare-exchange of the next owner;
    // publishes our critical section.
    word.store(0, Ordering::Release);
}

/// Test, then test-and-set; back off after a lost race.
#[cold]
#[inline(never)]
pub(crate) fn lock_slow(word: &AtomicU32) {
    ev::CONTENDED.inc();
    let mut backoff = 1;
    loop {
        // Test: wait, reading only, until the lock looks free. Relaxed: a
        // guess; the compare-exchange below acquires.
        while word.load(Ordering::Relaxed) != 0 {
            spin_loop();
        }
        if fast_lock(word).is_ok() {
            return;
        }
        ev::FAILED_CAS.inc();
        ev::BACKOFF_SPINS.add(u64::from(backoff));
        for _ in 0..backoff {
            spin_loop();
        }
        backoff = (backoff * 2).min(TAS_MAX_BACKOFF);
    }
}

const _: () = assert!(LOCKED_VAL != 0);

// Mutual exclusion: `lock` returns only after this context's compare-exchange
// moved the word from 0 to LOCKED_VAL, `unlock` stores 0: at most one holder.
raw_mutex!(RawTasLock);

impl core::fmt::Debug for RawTasLock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawTasLock")
            .field("locked", &self.is_locked())
            .finish()
    }
}
