//! What the host was doing around a cell: the steal time the host kernel
//! reports and a host-speed index, a short native reference workload timed
//! just before and just after the cell. On a shared cloud host the speed
//! wanders in bursts that steal time does not show (measured here: a native
//! pgbench-like 1-client run between 358k and 585k tps over 6 runs, steal ~0),
//! so the reference is what tells a disturbed cell.
//!
//! The reference also runs on every host core at once ([`reference_parallel`]):
//! these hosts have epochs in which a 2-vCPU guest's work takes ~1.7x as long
//! while the one-thread reference and a 1-client pgbench-like do not move
//! (results/noise, the fifth calibration), as if two busy threads got less
//! than two cores' throughput; neither steal time nor one thread shows that.

use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use crate::results::HostNoise;

/// Iterations of the reference loop: ~10 ms on the project's hosts.
const REFERENCE_ITERATIONS: u64 = 4_000_000;

/// Times the native reference workload once: a dependent chain of multiplies
/// and xorshifts over a small table, so neither the compiler nor the CPU can
/// skip or overlap it much.
pub fn reference() -> Duration {
    let (started, ended) = reference_span();
    ended - started
}

/// Runs the reference loop; returns when it started and ended.
fn reference_span() -> (Instant, Instant) {
    let mut table = [0u64; 256];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let started = Instant::now();
    for i in 0..REFERENCE_ITERATIONS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let slot = (x as usize) & 255;
        table[slot] = table[slot]
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(x ^ i);
    }
    black_box(&table);
    (started, Instant::now())
}

/// Times the reference on `threads` threads released together: from the
/// first one's start to the last one's end. Close to [`reference`] alone when
/// the host runs them side by side at full speed; up to `threads` times it
/// when they share a core. Each thread reads the clock itself: a timer thread
/// of its own would be one thread more than the cores and time its own
/// scheduling.
pub fn reference_parallel(threads: usize) -> Duration {
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = thread::scope(|s| {
        let running: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    reference_span()
                })
            })
            .collect();
        // A reference thread cannot panic; a failed join only loses a reading.
        running.into_iter().filter_map(|r| r.join().ok()).collect()
    });
    let first = spans.iter().map(|s| s.0).min();
    let last = spans.iter().map(|s| s.1).max();
    first.zip(last).map_or(Duration::ZERO, |(a, b)| b - a)
}

/// One thread per host core.
fn host_threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// Steal time since boot summed over the host's CPUs, from /proc/stat
/// (`None` where it is not reported).
pub fn steal() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: u64 = cpu.split_whitespace().nth(7)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| Duration::from_secs_f64(ticks as f64 / hz as f64))
}

/// Readings taken before a cell.
pub struct Before {
    steal: Option<Duration>,
    reference: Duration,
    parallel: Duration,
}

/// Reads the host before a cell.
pub fn before() -> Before {
    Before {
        steal: steal(),
        reference: reference(),
        parallel: reference_parallel(host_threads()),
    }
}

impl Before {
    /// The cell's host noise, read again after it.
    pub fn after(self) -> HostNoise {
        let reference_after = reference();
        let parallel_after = reference_parallel(host_threads());
        let steal_s = match (self.steal, steal()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
            _ => None,
        };
        HostNoise {
            steal_s,
            reference_before_ms: self.reference.as_secs_f64() * 1e3,
            reference_after_ms: reference_after.as_secs_f64() * 1e3,
            parallel_before_ms: Some(self.parallel.as_secs_f64() * 1e3),
            parallel_after_ms: Some(parallel_after.as_secs_f64() * 1e3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_takes_time_and_steal_reads() {
        assert!(reference() > Duration::ZERO);
        // Every thread runs the whole loop: never shorter than the fastest
        // one alone could be (half of one reading leaves room for its noise).
        let one = reference();
        assert!(reference_parallel(2) > one / 2, "{one:?}");
        // Two threads forced onto one core would take twice as long: the
        // span covers every thread, not only one.
        assert!(reference_parallel(8) > one, "{one:?}");
        // Linux reports steal; it only grows.
        let (a, b) = (steal().unwrap(), steal().unwrap());
        assert!(b >= a);
    }
}
