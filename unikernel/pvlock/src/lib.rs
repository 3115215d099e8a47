//! Paravirtual ticket spinlocks, after the KVM pv-ticketlock series that
//! landed in Linux 4.0 (`arch/x86/kernel/kvm.c`, `asm/spinlock.h`).
//!
//! A ticket lock is fair, which under vCPU overcommit turns into a convoy:
//! when the host preempts the holder or the next waiter, every waiter behind
//! it spins away its time slice. Here a waiter spins for a bounded number of
//! iterations ([`set_spin_threshold`]), then records which lock and ticket it
//! waits for and halts its (v)CPU; the unlocker kicks the CPU whose ticket is
//! next. The crate knows nothing about the kernel: the kernel registers a
//! [`PvOps`] table (CPU id, interrupt save/restore, halt, kick, cycle
//! counter). Without one, or with [`set_enabled`]`(false)`, every lock is a
//! plain ticket lock.
//!
//! # Lock word
//!
//! One `u32`: tail (next ticket) in bits 16..32, head (owner) in bits 0..16.
//! Tickets advance by 2; bit 0 of the head is the slow-path flag "a waiter
//! may be halted". `lock` adds 2 to the tail; `unlock` adds 2 to the head,
//! which keeps the flag, and returns the old word, whose flag tells whether
//! to kick. The owner that takes the lock with the flag set and no other
//! ticket out (tail == head + 2) clears the flag with a compare-exchange
//! that fails if a new ticket was taken meanwhile.
//!
//! # Handshake (waiter W with ticket t, unlocker U of ticket t - 2)
//!
//! 1. W, interrupts off: record\[cpu\].lock = none, .want = t, .lock = &L
//!    (Release); set its bit in the waiting set.
//! 2. W: `fetch_or(flag)` on the lock word, AcqRel. If the old head is t,
//!    the lock is W's (pickup); else W halts.
//! 3. U: `fetch_add(2)` on the head, Release. If the old word has the flag:
//!    Acquire fence, scan the waiting set for a record {&L, t}, kick it.
//! 4. Both RMWs hit the same word, so one precedes the other: if U's comes
//!    first, W's `fetch_or` sees head t and does not halt; if W's comes
//!    first, U sees the flag, and through the release sequence on the word
//!    U's fence makes W's record visible: U kicks W. No lost wakeup, and no
//!    store-then-load (Dekker) pattern, so no SeqCst fence.
//! 5. Kicks are sticky (see [`PvOps::halt`]), so a kick that lands before
//!    W's halt instruction is not lost. A wakeup is a hint: W clears its
//!    record, re-checks and goes round again.
//! 6. After its RMW, U touches only the old word and L's address (compared,
//!    never dereferenced): the lock may already be freed by its next owner.
//!
//! # Statistics
//!
//! [`stats::snapshot`] returns the seed's debugfs counters (`taken_slow`,
//! `taken_slow_pickup`, `released_slow`, `released_slow_kicked`, spurious
//! wakeups, time blocked and its log2 histogram); [`stats::reset`] zeroes
//! them. They are relaxed counters, touched only on slow paths.
//!
//! # The designs that came after, and one type for all
//!
//! Next to the ticket lock the crate has Linux's later designs, each `no_std`
//! and model-checked where it halts:
//!
//! - [`RawQSpinLock`] (`qspin`): the native queued spinlock of Linux 4.2+, a
//!   4-byte word with locked byte, pending bit and the tail of an MCS queue of
//!   per-CPU nodes (module `queued`).
//! - [`RawPvQSpinLock`] (`pvqspin`): its paravirtual flavour
//!   (`qspinlock_paravirt.h`): queued waiters halt after the spin threshold,
//!   the queue head hashes lock -> node and marks the lock slow, and the
//!   unlock of a slow lock unhashes and kicks. Statistics after Linux's lock
//!   events: [`stats::queued_snapshot`].
//! - [`RawTasLock`] (`tas`): the unfair test-and-set lock with bounded
//!   backoff that Linux falls back to in guests without pv (`virt_spin_lock`).
//! - [`RawModalLock`]: one `u32` and a `lock_api::RawMutex` that dispatches on
//!   a [`LockMode`] fixed at boot ([`set_mode`]): `base` (the ticket lock
//!   without its slow path), `pv`, `qspin`, `pvqspin`, `tas`.
//!
//! All of them use the same [`PvOps`]: the queued locks need its `cpu_id` to
//! pick a queue node (without a table their waiters spin on a trylock), and
//! `pvqspin` halts and kicks through it like the ticket lock.
//!
//! # Features and cfgs
//!
//! `std` adds [`host`], a backend that plays CPUs with threads (for host
//! tests and tools). `--cfg loom` swaps the protocol's atomics for loom's
//! (see `tests/loom.rs`); the `lock_api` impls are then left out because
//! loom's atomics cannot be built in a `const`.

#![no_std]
#![warn(missing_docs)]

#[cfg(any(test, feature = "std"))]
extern crate std;

/// `lock_api::RawMutex` (and `Default`) for a lock type whose inherent
/// `new`, `lock`, `try_lock`, `unlock` and `is_locked` already are a mutex;
/// `raw_mutex!(T, state)` also gives it a `Debug` showing `T::state()`. The
/// reason each type admits one holder at a time is stated at its invocation.
macro_rules! raw_mutex {
    ($lock:ty, state) => {
        raw_mutex!($lock);

        impl core::fmt::Debug for $lock {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_tuple(stringify!($lock))
                    .field(&self.state())
                    .finish()
            }
        }
    };
    ($lock:ty) => {
        #[cfg(not(loom))]
        // SAFETY: every method forwards to the type's inherent one, which
        // admits one holder at a time (argued where the macro is invoked).
        unsafe impl lock_api::RawMutex for $lock {
            #[allow(clippy::declare_interior_mutable_const)] // The point of INIT.
            const INIT: Self = Self::new();

            type GuardMarker = lock_api::GuardSend;

            #[inline]
            fn lock(&self) {
                <$lock>::lock(self);
            }

            #[inline]
            fn try_lock(&self) -> bool {
                <$lock>::try_lock(self)
            }

            #[inline]
            unsafe fn unlock(&self) {
                // SAFETY: lock_api's contract is ours: the caller holds the lock.
                unsafe { <$lock>::unlock(self) }
            }

            #[inline]
            fn is_locked(&self) -> bool {
                <$lock>::is_locked(self)
            }
        }

        impl Default for $lock {
            fn default() -> Self {
                Self::new()
            }
        }
    };
}

mod kickwake;
mod lock;
mod modal;
mod pv;
mod pvhash;
mod queued;
pub mod report;
pub mod stats;
mod sync;
mod tas;
mod waiters;
mod word;

#[cfg(feature = "std")]
pub mod host;

pub use kickwake::{
    kick_wake_bucket, kick_wake_bucket_floor, snapshot as kick_wake_snapshot, KICK_WAKE_BUCKETS,
};
pub use lock::{LockState, RawPvTicketLock};
pub use modal::{
    mode, mode_is_fixed, set_mode, LockMode, ModalLockState, ModeError, RawModalLock, UnknownMode,
};
pub use pv::{
    is_active, register_ops, set_enabled, set_spin_threshold, spin_threshold, PvOps, DEFAULT_SPIN_THRESHOLD,
};
pub use queued::{hashed_locks, queue_nodes_in_use, QueuedLockState, RawPvQSpinLock, RawQSpinLock};
pub use stats::PvLockStats;
pub use stats::{QueuedLockStats, TasLockStats};
pub use tas::{RawTasLock, TAS_MAX_BACKOFF};

/// CPUs that can halt in the slow path, and that have queue nodes: ids
/// `0..MAX_CPUS`. CPUs with larger ids spin. (4 under loom, to keep the model
/// small.)
#[cfg(not(loom))]
pub const MAX_CPUS: usize = 64;

/// CPUs that can halt in the slow path (reduced under loom).
#[cfg(loom)]
pub const MAX_CPUS: usize = 4;

/// A mutex protecting a `T` with a [`RawPvTicketLock`].
#[cfg(not(loom))]
pub type PvTicketMutex<T> = lock_api::Mutex<RawPvTicketLock, T>;

/// The guard of a [`PvTicketMutex`].
#[cfg(not(loom))]
pub type PvTicketMutexGuard<'a, T> = lock_api::MutexGuard<'a, RawPvTicketLock, T>;

/// A mutex protecting a `T` with a [`RawModalLock`] (the boot-selected mode).
#[cfg(not(loom))]
pub type ModalMutex<T> = lock_api::Mutex<RawModalLock, T>;

/// The guard of a [`ModalMutex`].
#[cfg(not(loom))]
pub type ModalMutexGuard<'a, T> = lock_api::MutexGuard<'a, RawModalLock, T>;

/// The CPUs currently in the waiting set, as a bitmask (racy; for tests and
/// diagnostics).
pub fn waiting_cpus() -> u64 {
    waiters::waiters().waiting_set()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::vec::Vec;

    // No PvOps are registered in this test binary: these exercise the plain
    // ticket-lock behaviour that every lock has before registration.

    #[test]
    fn lock_unlock_and_state() {
        let lock = RawPvTicketLock::new();
        assert!(!lock.is_locked());
        lock.lock();
        assert!(lock.is_locked());
        assert!(!lock.is_contended());
        assert_eq!(lock.state().tickets_out(), 1);
        // SAFETY: locked just above.
        unsafe { lock.unlock() };
        assert!(!lock.is_locked());
    }

    #[test]
    fn try_lock_fails_while_held() {
        let lock = RawPvTicketLock::new();
        assert!(lock.try_lock());
        assert!(!lock.try_lock());
        // SAFETY: taken by the successful try_lock.
        unsafe { lock.unlock() };
        assert!(lock.try_lock());
        // SAFETY: taken by the successful try_lock.
        unsafe { lock.unlock() };
    }

    #[test]
    fn tickets_wrap_around_cleanly() {
        let lock = RawPvTicketLock::new();
        // 2^15 tickets per lap: go round three times, alternating the paths.
        let laps = if cfg!(miri) { 1 } else { 3 };
        for i in 0..laps * (1 << 15) + 7 {
            if i % 2 == 0 {
                lock.lock();
            } else {
                assert!(lock.try_lock());
            }
            assert!(lock.is_locked());
            // SAFETY: locked just above.
            unsafe { lock.unlock() };
            let state = lock.state();
            assert!(!state.is_locked(), "{state:?} after {i}");
            assert!(!state.slowpath);
        }
    }

    #[test]
    fn mutex_excludes_without_pv_ops() {
        static COUNT: PvTicketMutex<u64> = PvTicketMutex::new(0);
        const THREADS: usize = 2;
        const ROUNDS: u64 = if cfg!(miri) { 100 } else { 10_000 };
        let started = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    started.fetch_add(1, Ordering::Relaxed);
                    for _ in 0..ROUNDS {
                        *COUNT.lock() += 1;
                    }
                });
            }
        });
        assert_eq!(started.load(Ordering::Relaxed), THREADS);
        assert_eq!(*COUNT.lock(), THREADS as u64 * ROUNDS);
    }

    #[test]
    fn bump_keeps_an_uncontended_lock() {
        let m = PvTicketMutex::new(Vec::<u8>::new());
        let mut guard = m.lock();
        guard.push(1);
        lock_api::MutexGuard::bump(&mut guard);
        guard.push(2);
        drop(guard);
        assert_eq!(*m.lock(), [1, 2]);
    }
}
