//! What the host was doing around a cell: the steal time the host kernel
//! reports and a host-speed index, a short native reference workload timed
//! just before and just after the cell. On a shared cloud host the speed
//! wanders in bursts that steal time does not show (measured here: a native
//! pgbench-like 1-client run between 358k and 585k tps over 6 runs, steal ~0),
//! so the reference is what tells a disturbed cell.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::results::HostNoise;

/// Iterations of the reference loop: ~10 ms on the project's hosts.
const REFERENCE_ITERATIONS: u64 = 4_000_000;

/// Times the native reference workload once: a dependent chain of multiplies
/// and xorshifts over a small table, so neither the compiler nor the CPU can
/// skip or overlap it much.
pub fn reference() -> Duration {
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
    started.elapsed()
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
}

/// Reads the host before a cell.
pub fn before() -> Before {
    Before {
        steal: steal(),
        reference: reference(),
    }
}

impl Before {
    /// The cell's host noise, read again after it.
    pub fn after(self) -> HostNoise {
        let reference_after = reference();
        let steal_s = match (self.steal, steal()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
            _ => None,
        };
        HostNoise {
            steal_s,
            reference_before_ms: self.reference.as_secs_f64() * 1e3,
            reference_after_ms: reference_after.as_secs_f64() * 1e3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_takes_time_and_steal_reads() {
        assert!(reference() > Duration::ZERO);
        // Linux reports steal; it only grows.
        let (a, b) = (steal().unwrap(), steal().unwrap());
        assert!(b >= a);
    }
}
