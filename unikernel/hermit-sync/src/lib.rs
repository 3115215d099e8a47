//! hermit-sync's public API for Hermit 0.11, with pv-ticketlocks.
//!
//! Everything is what crates.io's hermit-sync 0.1 offers, assembled from the
//! same building blocks (spinning_top, interrupt-mutex, one-shot-mutex,
//! exclusive_cell, generic_once_cell), except [`RawTicketMutex`]: it is
//! [`pvlock::RawModalLock`], whose algorithm the kernel fixes at boot from
//! `pvlock=<mode>` (`base`: Hermit's ticket lock; `pv`: the pv-ticketlock, which
//! halts its vCPU after a bounded spin once the kernel has registered its
//! [`pvlock::PvOps`]; `qspin`, `pvqspin`: queued spinlocks; `tas`: the unfair
//! test-and-set lock). `InterruptTicketMutex` is that lock inside
//! `RawInterruptMutex`, so its waiters spin and halt with interrupts off.
#![no_std]

pub use pvlock;

pub use exclusive_cell::{CallOnce, CallOnceError, ExclusiveCell};
pub use interrupt_mutex::{InterruptMutex, InterruptMutexGuard, RawInterruptMutex};
pub use interrupts::without as without_interrupts;
pub use one_shot_mutex::{
    OneShotMutex, OneShotMutexGuard, OneShotRwLock, OneShotRwLockReadGuard,
    OneShotRwLockUpgradableReadGuard, OneShotRwLockWriteGuard, RawOneShotMutex, RawOneShotRwLock,
};

use one_shot_mutex::RawOneShotMutex as OneShot;

/// A test-and-set spinlock with exponential backoff (unchanged).
pub type RawSpinMutex = spinning_top::RawSpinlock<spinning_top::relax::Backoff>;
pub type SpinMutex<T> = lock_api::Mutex<RawSpinMutex, T>;
pub type SpinMutexGuard<'a, T> = lock_api::MutexGuard<'a, RawSpinMutex, T>;

/// The kernel's spinlock, its algorithm chosen at boot (the name is Hermit's:
/// every kernel lock that was a ticket lock is this one).
pub type RawTicketMutex = pvlock::RawModalLock;
pub type TicketMutex<T> = lock_api::Mutex<RawTicketMutex, T>;
pub type TicketMutexGuard<'a, T> = lock_api::MutexGuard<'a, RawTicketMutex, T>;

pub type RawInterruptSpinMutex = RawInterruptMutex<RawSpinMutex>;
pub type InterruptSpinMutex<T> = lock_api::Mutex<RawInterruptSpinMutex, T>;
pub type InterruptSpinMutexGuard<'a, T> = lock_api::MutexGuard<'a, RawInterruptSpinMutex, T>;

pub type RawInterruptTicketMutex = RawInterruptMutex<RawTicketMutex>;
pub type InterruptTicketMutex<T> = lock_api::Mutex<RawInterruptTicketMutex, T>;
pub type InterruptTicketMutexGuard<'a, T> = lock_api::MutexGuard<'a, RawInterruptTicketMutex, T>;

pub type RawInterruptOneShotMutex = RawInterruptMutex<OneShot>;
pub type InterruptOneShotMutex<T> = lock_api::Mutex<RawInterruptOneShotMutex, T>;
pub type InterruptOneShotMutexGuard<'a, T> = lock_api::MutexGuard<'a, RawInterruptOneShotMutex, T>;

/// A read-preferring readers-writer spinlock with exponential backoff (unchanged).
pub type RawRwSpinLock = spinning_top::RawRwSpinlock<spinning_top::relax::Backoff>;
pub type RwSpinLock<T> = lock_api::RwLock<RawRwSpinLock, T>;
pub type RwSpinLockReadGuard<'a, T> = lock_api::RwLockReadGuard<'a, RawRwSpinLock, T>;
pub type RwSpinLockUpgradableReadGuard<'a, T> =
    lock_api::RwLockUpgradableReadGuard<'a, RawRwSpinLock, T>;
pub type RwSpinLockWriteGuard<'a, T> = lock_api::RwLockWriteGuard<'a, RawRwSpinLock, T>;

pub type OnceCell<T> = generic_once_cell::OnceCell<RawSpinMutex, T>;
pub type Lazy<T, F = fn() -> T> = generic_once_cell::Lazy<RawSpinMutex, T, F>;
pub type InterruptOnceCell<T> = generic_once_cell::OnceCell<RawInterruptSpinMutex, T>;
pub type InterruptLazy<T, F = fn() -> T> = generic_once_cell::Lazy<RawInterruptSpinMutex, T, F>;
