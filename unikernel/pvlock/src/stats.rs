//! Slow-path statistics, after the seed's debugfs counters.
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
    const fn new() -> Self {
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

    fn get(&self) -> u64 {
        // Relaxed: see `add`.
        self.0.load(Ordering::Relaxed)
    }

    fn reset(&self) {
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

/// Sets all counters to zero. Slow paths running meanwhile may leave a few
/// counts from before the reset.
pub fn reset() {
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
