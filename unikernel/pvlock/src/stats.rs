//! Slow-path statistics, after the seed's debugfs counters ([`snapshot`], the
//! ticket lock), Linux's lock events ([`queued_snapshot`], `qspin` and
//! `pvqspin`) and a few for `tas` ([`tas_snapshot`]).
//!
//! Every counter is a relaxed atomic touched only on slow paths (never by an
//! uncontended lock or unlock), so they stay compiled in. A [`snapshot`] is
//! a set of independent relaxed reads, not an atomic cut: counters updated
//! while it runs may be off by the operations in flight.

use core::sync::atomic::{AtomicU64, Ordering};

/// Buckets of the time-blocked histogram. Bucket 0 counts halts of 0 or 1
/// cycles, bucket `i` those of `2^i ..= 2^(i+1) - 1` cycles, and the last
/// bucket everything from `2^(BLOCKED_BUCKETS - 1)` cycles on.
pub const BLOCKED_BUCKETS: usize = 40;

/// A copy of the counters; see [`snapshot`]. C layout: it crosses from the
/// kernel to the application in [`crate::report::Report`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PvLockStats {
    /// Waiters that entered the slow path (published a wait record). One
    /// `lock` call may count several times if it wakes spuriously.
    pub taken_slow: u64,
    /// Slow-path entries that found the lock theirs before halting.
    pub taken_slow_pickup: u64,
    /// Halts (slow-path entries that did not pick the lock up).
    pub halted: u64,
    /// Of `halted`, those with interrupts disabled (woken only by a kick).
    pub halted_irqs_disabled: u64,
    /// Halts that returned while the lock was not yet the waiter's.
    pub spurious_wakeups: u64,
    /// Unlocks that saw the slow-path flag.
    pub released_slow: u64,
    /// Of `released_slow`, those that found the next waiter and kicked it.
    pub released_slow_kicked: u64,
    /// Total cycles (`PvOps::now`) spent halted.
    pub time_blocked: u64,
    /// Log2 histogram of cycles per halt; see [`BLOCKED_BUCKETS`].
    pub time_blocked_histogram: [u64; BLOCKED_BUCKETS],
}

impl PvLockStats {
    /// Unlocks that saw the flag but found no halted waiter to kick.
    pub fn released_slow_unkicked(&self) -> u64 {
        self.released_slow.saturating_sub(self.released_slow_kicked)
    }
}

impl Default for PvLockStats {
    fn default() -> Self {
        Self {
            taken_slow: 0,
            taken_slow_pickup: 0,
            halted: 0,
            halted_irqs_disabled: 0,
            spurious_wakeups: 0,
            released_slow: 0,
            released_slow_kicked: 0,
            time_blocked: 0,
            time_blocked_histogram: [0; BLOCKED_BUCKETS],
        }
    }
}

/// A relaxed event counter.
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    #[inline]
    pub(crate) fn add(&self, n: u64) {
        // Relaxed: a statistic; nothing is ordered by it.
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn inc(&self) {
        self.add(1);
    }

    pub(crate) fn get(&self) -> u64 {
        // Relaxed: see `add`.
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn reset(&self) {
        // Relaxed: see `add`.
        self.0.store(0, Ordering::Relaxed);
    }
}

pub(crate) static TAKEN_SLOW: Counter = Counter::new();
pub(crate) static TAKEN_SLOW_PICKUP: Counter = Counter::new();
pub(crate) static HALTED: Counter = Counter::new();
pub(crate) static HALTED_IRQS_DISABLED: Counter = Counter::new();
pub(crate) static SPURIOUS_WAKEUPS: Counter = Counter::new();
pub(crate) static RELEASED_SLOW: Counter = Counter::new();
pub(crate) static RELEASED_SLOW_KICKED: Counter = Counter::new();
static TIME_BLOCKED: Counter = Counter::new();
static TIME_BLOCKED_HISTOGRAM: [Counter; BLOCKED_BUCKETS] = [const { Counter::new() }; BLOCKED_BUCKETS];

/// The histogram bucket of a halt that lasted `cycles`.
pub(crate) fn bucket(cycles: u64) -> usize {
    let log2 = cycles.checked_ilog2().unwrap_or(0) as usize;
    log2.min(BLOCKED_BUCKETS - 1)
}

/// Accounts one halt of `cycles`.
pub(crate) fn record_blocked(cycles: u64) {
    TIME_BLOCKED.add(cycles);
    TIME_BLOCKED_HISTOGRAM[bucket(cycles)].inc();
}

/// Reads all counters.
pub fn snapshot() -> PvLockStats {
    let mut histogram = [0; BLOCKED_BUCKETS];
    for (out, counter) in histogram.iter_mut().zip(&TIME_BLOCKED_HISTOGRAM) {
        *out = counter.get();
    }
    // Effects before causes: a slow path counts taken_slow, then halted, then
    // spurious; an unlocker released_slow, then kicked. Read the other way
    // round, a snapshot taken while locks are busy keeps spurious <= halted <=
    // taken_slow and kicked <= released_slow.
    let spurious_wakeups = SPURIOUS_WAKEUPS.get();
    let halted_irqs_disabled = HALTED_IRQS_DISABLED.get();
    let halted = HALTED.get();
    let taken_slow_pickup = TAKEN_SLOW_PICKUP.get();
    let taken_slow = TAKEN_SLOW.get();
    let released_slow_kicked = RELEASED_SLOW_KICKED.get();
    let released_slow = RELEASED_SLOW.get();
    PvLockStats {
        taken_slow,
        taken_slow_pickup,
        halted,
        halted_irqs_disabled,
        spurious_wakeups,
        released_slow,
        released_slow_kicked,
        time_blocked: TIME_BLOCKED.get(),
        time_blocked_histogram: histogram,
    }
}

/// Sets all counters to zero, the queued and test-and-set locks' included.
/// Slow paths running meanwhile may leave a few counts from before the reset.
pub fn reset() {
    reset_queued();
    reset_tas();
    crate::kickwake::reset();
    for counter in [
        &TAKEN_SLOW,
        &TAKEN_SLOW_PICKUP,
        &HALTED,
        &HALTED_IRQS_DISABLED,
        &SPURIOUS_WAKEUPS,
        &RELEASED_SLOW,
        &RELEASED_SLOW_KICKED,
        &TIME_BLOCKED,
    ]
    .into_iter()
    .chain(&TIME_BLOCKED_HISTOGRAM)
    {
        counter.reset();
    }
}

/// The queued locks' counters (`qspin` and `pvqspin`), after Linux's lock
/// events (`kernel/locking/lock_events_list.h`); see [`queued_snapshot`].
/// C layout, like [`PvLockStats`].
///
/// Unlike Linux, `wait_node` and `wait_head` count halts that happened, not
/// calls of `pv_wait` (which may return at once), so that
/// `halted == wait_node + wait_head` holds exactly.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuedLockStats {
    /// Acquisitions through the pending bit (`qspin` only; Linux's
    /// `lock_pending`).
    pub pending: u64,
    /// Waiters that went to the MCS queue (Linux's `lock_slowpath`).
    pub queued: u64,
    /// Of `queued`, those that used a node other than their CPU's first: a
    /// nested context (an interrupt handler, or on Hermit another task that
    /// preempted a waiter) was already waiting on this CPU.
    pub nested: u64,
    /// Of `queued`, those that found no free node (more than 4 waiters on one
    /// CPU, or no CPU id) and spun on a trylock instead (Linux's
    /// `lock_no_node`).
    pub no_node: u64,
    /// `pvqspin`: waiters that stole the lock on entering the slow path, before
    /// queueing (Linux's `pv_lock_stealing`).
    pub steals: u64,
    /// `pvqspin`: halts of a queued waiter not yet at the head
    /// (`pv_wait_node`).
    pub wait_node: u64,
    /// `pvqspin`: halts of the queue head (`pv_wait_head_or_lock`).
    pub wait_head: u64,
    /// Of the halts, those that were not a waiter's first (`pv_wait_again`).
    pub wait_again: u64,
    /// Of `wait_node`, those that stopped spinning early because the previous
    /// node's CPU was not running (`pv_wait_early`).
    pub wait_early: u64,
    /// All halts: `wait_node + wait_head`.
    pub halted: u64,
    /// Of `halted`, those with interrupts disabled (woken only by a kick).
    pub halted_irqs_disabled: u64,
    /// Halts that returned while the waiter's condition still did not hold
    /// (`pv_spurious_wakeup`; for the head also a lock stolen meanwhile).
    pub spurious_wakeups: u64,
    /// Queued waiters that were about to halt and found the queue head theirs
    /// instead (the handover raced with their halt).
    pub pickups_node: u64,
    /// Queue heads that hashed themselves to halt and found the lock free in
    /// the same step (Linux's `xchg(&l->locked, _Q_SLOW_VAL) == 0`): they take
    /// it and unhash without halting.
    pub pickups_head: u64,
    /// Lock -> node entries put in the hash table, by a head itself or by the
    /// owner for a halted next node (`pv_kick_node`). Each is removed by an
    /// unlock that kicks (`kick_unlock`) or by a head's pickup, so
    /// `hashed == kick_unlock + pickups_head` when all is quiet.
    pub hashed: u64,
    /// Entries probed to insert them (`pv_hash_hops`; `hash_hops / hashed` is
    /// the mean probe length).
    pub hash_hops: u64,
    /// Unlocks that found the lock slow (`_Q_SLOW_VAL`), unhashed the head
    /// and kicked its CPU (`pv_kick_unlock`).
    pub kick_unlock: u64,
    /// Halts that returned after a kick had been sent to their CPU
    /// (`pv_kick_wake`).
    pub kick_wake: u64,
    /// Total cycles (`PvOps::now`) spent halted.
    pub time_blocked: u64,
    /// Log2 histogram of cycles per halt; see [`BLOCKED_BUCKETS`].
    pub time_blocked_histogram: [u64; BLOCKED_BUCKETS],
    /// Total cycles from a kick's send to the kicked halt's return, over the
    /// `kick_wake` halts (Linux's `pv_latency_wake`; their distribution, shared
    /// with the ticket lock, is [`crate::kick_wake_snapshot`]).
    pub kick_latency: u64,
}

impl QueuedLockStats {
    /// Halts avoided at the last moment: `pickups_node + pickups_head`.
    pub fn pickups(&self) -> u64 {
        self.pickups_node + self.pickups_head
    }
}

impl Default for QueuedLockStats {
    fn default() -> Self {
        Self {
            pending: 0,
            queued: 0,
            nested: 0,
            no_node: 0,
            steals: 0,
            wait_node: 0,
            wait_head: 0,
            wait_again: 0,
            wait_early: 0,
            halted: 0,
            halted_irqs_disabled: 0,
            spurious_wakeups: 0,
            pickups_node: 0,
            pickups_head: 0,
            hashed: 0,
            hash_hops: 0,
            kick_unlock: 0,
            kick_wake: 0,
            time_blocked: 0,
            time_blocked_histogram: [0; BLOCKED_BUCKETS],
            kick_latency: 0,
        }
    }
}

/// The test-and-set lock's counters; see [`tas_snapshot`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TasLockStats {
    /// Acquisitions that did not succeed at the first compare-exchange.
    pub contended: u64,
    /// Test-and-set attempts (after the word looked free) that lost the race.
    pub failed_cas: u64,
    /// `pause` iterations spent backing off after those failures.
    pub backoff_spins: u64,
}

pub(crate) mod queued {
    //! The counters behind [`super::QueuedLockStats`].
    use super::{Counter, BLOCKED_BUCKETS};

    pub(crate) static PENDING: Counter = Counter::new();
    pub(crate) static QUEUED: Counter = Counter::new();
    pub(crate) static NESTED: Counter = Counter::new();
    pub(crate) static NO_NODE: Counter = Counter::new();
    pub(crate) static STEALS: Counter = Counter::new();
    pub(crate) static WAIT_NODE: Counter = Counter::new();
    pub(crate) static WAIT_HEAD: Counter = Counter::new();
    pub(crate) static WAIT_AGAIN: Counter = Counter::new();
    pub(crate) static WAIT_EARLY: Counter = Counter::new();
    pub(crate) static HALTED: Counter = Counter::new();
    pub(crate) static HALTED_IRQS_DISABLED: Counter = Counter::new();
    pub(crate) static SPURIOUS_WAKEUPS: Counter = Counter::new();
    pub(crate) static PICKUPS_NODE: Counter = Counter::new();
    pub(crate) static PICKUPS_HEAD: Counter = Counter::new();
    pub(crate) static HASHED: Counter = Counter::new();
    pub(crate) static HASH_HOPS: Counter = Counter::new();
    pub(crate) static KICK_UNLOCK: Counter = Counter::new();
    pub(crate) static KICK_WAKE: Counter = Counter::new();
    pub(crate) static TIME_BLOCKED: Counter = Counter::new();
    pub(crate) static TIME_BLOCKED_HISTOGRAM: [Counter; BLOCKED_BUCKETS] =
        [const { Counter::new() }; BLOCKED_BUCKETS];
    pub(crate) static KICK_LATENCY: Counter = Counter::new();
}

pub(crate) mod tas {
    //! The counters behind [`super::TasLockStats`].
    use super::Counter;

    pub(crate) static CONTENDED: Counter = Counter::new();
    pub(crate) static FAILED_CAS: Counter = Counter::new();
    pub(crate) static BACKOFF_SPINS: Counter = Counter::new();
}

/// Accounts one queued-lock halt of `cycles`.
pub(crate) fn record_queued_blocked(cycles: u64) {
    queued::TIME_BLOCKED.add(cycles);
    queued::TIME_BLOCKED_HISTOGRAM[bucket(cycles)].inc();
}

/// Accounts one kicked wakeup, `cycles` after its kick was sent.
pub(crate) fn record_kick_latency(cycles: u64) {
    queued::KICK_WAKE.inc();
    queued::KICK_LATENCY.add(cycles);
}

fn read_histogram(counters: &[Counter; BLOCKED_BUCKETS]) -> [u64; BLOCKED_BUCKETS] {
    let mut histogram = [0; BLOCKED_BUCKETS];
    for (out, counter) in histogram.iter_mut().zip(counters) {
        *out = counter.get();
    }
    histogram
}

/// Reads the queued locks' counters. As in [`snapshot`], effects are read
/// before causes, so that a snapshot taken while locks are busy keeps
/// `kick_wake <= halted`, `spurious_wakeups <= halted` and
/// `kick_unlock <= hashed`.
pub fn queued_snapshot() -> QueuedLockStats {
    use queued::*;
    let kick_latency = KICK_LATENCY.get();
    let kick_wake = KICK_WAKE.get();
    let time_blocked_histogram = read_histogram(&TIME_BLOCKED_HISTOGRAM);
    let time_blocked = TIME_BLOCKED.get();
    let spurious_wakeups = SPURIOUS_WAKEUPS.get();
    let halted_irqs_disabled = HALTED_IRQS_DISABLED.get();
    let wait_again = WAIT_AGAIN.get();
    let wait_early = WAIT_EARLY.get();
    let wait_node = WAIT_NODE.get();
    let wait_head = WAIT_HEAD.get();
    let halted = HALTED.get();
    let kick_unlock = KICK_UNLOCK.get();
    let pickups_head = PICKUPS_HEAD.get();
    let pickups_node = PICKUPS_NODE.get();
    let hash_hops = HASH_HOPS.get();
    let hashed = HASHED.get();
    QueuedLockStats {
        pending: PENDING.get(),
        queued: QUEUED.get(),
        nested: NESTED.get(),
        no_node: NO_NODE.get(),
        steals: STEALS.get(),
        wait_node,
        wait_head,
        wait_again,
        wait_early,
        halted,
        halted_irqs_disabled,
        spurious_wakeups,
        pickups_node,
        pickups_head,
        hashed,
        hash_hops,
        kick_unlock,
        kick_wake,
        time_blocked,
        time_blocked_histogram,
        kick_latency,
    }
}

/// Reads the test-and-set lock's counters.
pub fn tas_snapshot() -> TasLockStats {
    TasLockStats {
        contended: tas::CONTENDED.get(),
        failed_cas: tas::FAILED_CAS.get(),
        backoff_spins: tas::BACKOFF_SPINS.get(),
    }
}

fn reset_queued() {
    use queued::*;
    for counter in [
        &PENDING,
        &QUEUED,
        &NESTED,
        &NO_NODE,
        &STEALS,
        &WAIT_NODE,
        &WAIT_HEAD,
        &WAIT_AGAIN,
        &WAIT_EARLY,
        &HALTED,
        &HALTED_IRQS_DISABLED,
        &SPURIOUS_WAKEUPS,
        &PICKUPS_NODE,
        &PICKUPS_HEAD,
        &HASHED,
        &HASH_HOPS,
        &KICK_UNLOCK,
        &KICK_WAKE,
        &TIME_BLOCKED,
        &KICK_LATENCY,
    ]
    .into_iter()
    .chain(&TIME_BLOCKED_HISTOGRAM)
    {
        counter.reset();
    }
}

fn reset_tas() {
    for counter in [&tas::CONTENDED, &tas::FAILED_CAS, &tas::BACKOFF_SPINS] {
        counter.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log2_and_clamped() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 0);
        assert_eq!(bucket(2), 1);
        assert_eq!(bucket(3), 1);
        assert_eq!(bucket(4), 2);
        assert_eq!(bucket(1 << 20), 20);
        assert_eq!(bucket((1 << 21) - 1), 20);
        assert_eq!(bucket(u64::MAX), BLOCKED_BUCKETS - 1);
    }
}
