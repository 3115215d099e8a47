//! Kick-to-wake latency, for every lock whose waiters halt (`pv`, `pvqspin`):
//! the unlocker stamps the time it kicks a CPU, and that CPU's halt, when it
//! returns, records how long after the stamp it resumed. Under overcommit this
//! is mostly the host's scheduling delay of the kicked vCPU thread, the cost
//! the halt trades for the spinning it saves.
//!
//! The latencies go to a log-linear histogram ([`KICK_WAKE_BUCKETS`] buckets,
//! 16 per power of two, so any value is within 1/16 of its bucket's lower
//! bound), fine enough for a host to turn into an HDR histogram.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::pv::PvOps;
use crate::stats::Counter;
use crate::MAX_CPUS;

/// Sub-buckets per power of two (a power of two itself).
const SUB_BUCKETS: u64 = 16;
const SUB_BITS: u32 = SUB_BUCKETS.trailing_zeros();

/// Buckets of the kick-to-wake histogram: values below 16 have one bucket
/// each; from 16 on, every power of two has 16. The last bucket also holds
/// everything beyond 2^48 cycles (a day at 3 GHz).
pub const KICK_WAKE_BUCKETS: usize = ((48 - SUB_BITS as usize) + 1) * SUB_BUCKETS as usize;

/// The bucket of a latency of `cycles`.
pub fn kick_wake_bucket(cycles: u64) -> usize {
    if cycles < SUB_BUCKETS {
        return cycles as usize;
    }
    let log2 = cycles.ilog2();
    let sub = (cycles >> (log2 - SUB_BITS)) & (SUB_BUCKETS - 1);
    let index = ((log2 - SUB_BITS + 1) as u64 * SUB_BUCKETS + sub) as usize;
    index.min(KICK_WAKE_BUCKETS - 1)
}

/// The smallest latency, in cycles, that falls in bucket `index`.
pub fn kick_wake_bucket_floor(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB_BUCKETS {
        return index;
    }
    let log2 = index / SUB_BUCKETS - 1 + u64::from(SUB_BITS);
    let sub = index % SUB_BUCKETS;
    (1 << log2) | (sub << (log2 - u64::from(SUB_BITS)))
}

/// When each CPU was last kicked (`PvOps::now`, at least 1), 0 once its halt
/// has accounted for it. Statistics only: `core` atomics outside any loom model.
static KICKED_AT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

static HISTOGRAM: [Counter; KICK_WAKE_BUCKETS] = [const { Counter::new() }; KICK_WAKE_BUCKETS];

/// Kicks `cpu` and stamps the kick.
pub(crate) fn kick(ops: &PvOps, cpu: u32) {
    if let Some(kicked_at) = KICKED_AT.get(cpu as usize) {
        // Relaxed: a statistic; the kick itself is ordered by the lock protocol.
        kicked_at.store((ops.now)().max(1), Ordering::Relaxed);
    }
    (ops.kick)(cpu);
}

/// Forgets any stamp of `cpu` (< MAX_CPUS): called by a waiter before it
/// makes itself kickable (publishes its wait), so that a stamp left by a kick
/// for an earlier wait that ended without a halt (a pickup) is not charged to
/// the next one, while a kick that lands between this and the halt (and makes
/// the halt return at once) still counts.
pub(crate) fn arm(cpu: u32) {
    // Relaxed: statistics only.
    KICKED_AT[cpu as usize].store(0, Ordering::Relaxed);
}

/// One halt of this CPU (`cpu` < MAX_CPUS, [`arm`]ed), interrupts disabled as
/// `PvOps::halt` wants. Returns the cycles it lasted and the kick-to-wake
/// latency if a kick ended it.
pub(crate) fn halt(ops: &PvOps, cpu: u32, irqs_were_enabled: bool) -> (u64, Option<u64>) {
    let kicked_at = &KICKED_AT[cpu as usize];
    let start = (ops.now)();
    (ops.halt)(irqs_were_enabled);
    let end = (ops.now)();
    // Relaxed: statistics only.
    let stamp = kicked_at.swap(0, Ordering::Relaxed);
    let latency = (stamp != 0).then(|| end.saturating_sub(stamp));
    if let Some(cycles) = latency {
        HISTOGRAM[kick_wake_bucket(cycles)].inc();
    }
    (end.saturating_sub(start), latency)
}

/// The kick-to-wake latencies so far, in cycles, by bucket
/// ([`kick_wake_bucket_floor`] gives each bucket's range).
pub fn snapshot() -> [u64; KICK_WAKE_BUCKETS] {
    core::array::from_fn(|i| HISTOGRAM[i].get())
}

/// Forgets the latencies so far.
pub(crate) fn reset() {
    for counter in &HISTOGRAM {
        counter.reset();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log_linear_and_their_floors_invert_them() {
        for v in 0..16 {
            assert_eq!(kick_wake_bucket(v), v as usize);
        }
        assert_eq!(kick_wake_bucket(16), 16);
        assert_eq!(kick_wake_bucket(17), 17);
        assert_eq!(kick_wake_bucket(32), 32);
        assert_eq!(kick_wake_bucket(33), 32);
        assert_eq!(kick_wake_bucket(34), 33);
        assert_eq!(kick_wake_bucket(u64::MAX), KICK_WAKE_BUCKETS - 1);
        for index in 0..KICK_WAKE_BUCKETS {
            let floor = kick_wake_bucket_floor(index);
            assert_eq!(kick_wake_bucket(floor), index, "floor of {index} = {floor}");
            if index > 0 {
                assert_eq!(kick_wake_bucket(floor - 1), index - 1, "below {index}");
            }
        }
        // 1/16 resolution: every value is within 1/16 of its bucket's floor.
        for v in [100u64, 1_000, 12_345, 1 << 30, (1 << 40) + 12_345] {
            let floor = kick_wake_bucket_floor(kick_wake_bucket(v));
            assert!(floor <= v && v - floor <= floor / 16, "{v} -> {floor}");
        }
    }
}
