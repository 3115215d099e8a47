//! What the host was doing around a cell: the steal time the host kernel
//! reports and a host-speed index, a short native reference workload timed
//! just before and just after the cell. On a shared cloud host the speed
//! wanders in bursts that steal time does not show (measured here: a native
//! pgbench-like 1-client run between 358k and 585k tps over 6 runs, steal ~0),
//! so the reference is what tells a disturbed cell.
//!
//! The reference runs on one core and does not see the slow epochs measured in
//! `results/noise/slow-epochs` (work keeping both vCPUs busy 1.7x slower for
//! minutes, one-vCPU work unchanged), so each cell also records how long one
//! cache line takes to go between two host CPUs and back: if the host moves
//! this VM's CPUs apart (another core complex, the other SMT thread of a busy
//! core), every TCG vCPU thread sharing guest memory and QEMU's locks pays it.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::results::{HostNoise, CPUS_APART_RATIO};
use crate::vm::interrupt::interrupted;

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

/// Round trips per batch of the core-to-core probe: ~0.2 ms at 40 ns.
const CORE_TO_CORE_ROUNDS: u64 = 5_000;
/// Batches; the fastest one is the reading (a batch that lost its CPU to
/// another thread measures the scheduler, not the caches).
const CORE_TO_CORE_BATCHES: u64 = 3;
/// How long one round trip may take before the probe gives up.
const CORE_TO_CORE_PATIENCE: Duration = Duration::from_millis(200);

/// The round-trip time of one cache line between the first two CPUs this
/// process may run on, in ns: two threads, each pinned to one of them, pass a
/// counter back and forth. `None` with fewer than two CPUs, where pinning is
/// refused, or if a thread did not answer within [`CORE_TO_CORE_PATIENCE`].
pub fn core_to_core_ns() -> Option<f64> {
    let cpus = allowed_cpus()?;
    let (a, b) = (*cpus.first()?, *cpus.get(1)?);
    let line = AtomicU64::new(0);
    let gave_up = AtomicBool::new(false);
    let total = CORE_TO_CORE_ROUNDS * CORE_TO_CORE_BATCHES;
    // Waits until the line holds `value`; false if the other side gave up or
    // this one ran out of patience (then it tells the other side).
    let wait_for = |value: u64| {
        let since = Instant::now();
        let mut spins = 0u32;
        // Acquire: pairs with the other thread's Release store; the value is
        // the whole message, so this only keeps the handoff honest.
        while line.load(Ordering::Acquire) != value {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            // Relaxed (both): a flag polled in a loop; it publishes nothing.
            if spins.is_multiple_of(1024)
                && (gave_up.load(Ordering::Relaxed) || since.elapsed() > CORE_TO_CORE_PATIENCE)
            {
                gave_up.store(true, Ordering::Relaxed);
                return false;
            }
        }
        true
    };
    std::thread::scope(|s| {
        let responder = s.spawn(|| {
            if !pin_to(b) {
                // Relaxed: see wait_for.
                gave_up.store(true, Ordering::Relaxed);
                return;
            }
            for n in 0..total {
                if !wait_for(2 * n + 1) {
                    return;
                }
                // Release: pairs with the Acquire in the initiator's wait_for.
                line.store(2 * n + 2, Ordering::Release);
            }
        });
        let initiator = s.spawn(|| {
            if !pin_to(a) {
                // Relaxed: see wait_for.
                gave_up.store(true, Ordering::Relaxed);
                return None;
            }
            let mut best = f64::INFINITY;
            for batch in 0..CORE_TO_CORE_BATCHES {
                let started = Instant::now();
                for n in batch * CORE_TO_CORE_ROUNDS..(batch + 1) * CORE_TO_CORE_ROUNDS {
                    // Release: pairs with the Acquire in the responder's wait_for.
                    line.store(2 * n + 1, Ordering::Release);
                    if !wait_for(2 * n + 2) {
                        return None;
                    }
                }
                best = best.min(started.elapsed().as_secs_f64() * 1e9 / CORE_TO_CORE_ROUNDS as f64);
            }
            Some(best)
        });
        let reading = initiator.join().ok().flatten();
        let _ = responder.join();
        reading
    })
}

/// How often [`await_near`] reads the round trip while it waits.
const NEAR_POLL: Duration = Duration::from_millis(500);

/// What waiting for the host's CPUs to come near gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NearWait {
    pub waited: Duration,
    /// The last reading was near (or none could be taken: nothing to wait for).
    pub near: bool,
}

/// Waits until a core-to-core round trip is within
/// [`CPUS_APART_RATIO`] times `floor_ns`, at most `patience`, or until
/// pvbench is interrupted. Apart epochs measured on the project's AMD host
/// lasted 1-70 s between near ones of 12-260 s (`results/noise/slow-epochs`),
/// so a cell started after the wait is rarely measured apart.
pub fn await_near(floor_ns: f64, patience: Duration) -> NearWait {
    let started = Instant::now();
    loop {
        let near = core_to_core_ns().is_none_or(|ns| ns <= CPUS_APART_RATIO * floor_ns);
        if near || started.elapsed() >= patience || interrupted() {
            return NearWait {
                waited: started.elapsed(),
                near,
            };
        }
        std::thread::sleep(NEAR_POLL);
    }
}

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> Option<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity fills at
    // most size_of::<cpu_set_t>() bytes of it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        Some(
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
                .collect(),
        )
    }
}

/// Pins the calling thread to `cpu`; false if the kernel refused.
fn pin_to(cpu: usize) -> bool {
    // SAFETY: as in allowed_cpus; pid 0 is the calling thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
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
    core_to_core_ns: Option<f64>,
}

/// Reads the host before a cell.
pub fn before() -> Before {
    Before {
        steal: steal(),
        reference: reference(),
        core_to_core_ns: core_to_core_ns(),
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
            core_to_core_before_ns: self.core_to_core_ns,
            core_to_core_after_ns: core_to_core_ns(),
            waited_near_s: None,
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

    #[test]
    fn near_cpus_are_not_waited_for() {
        // Any reading is within 3x of a floor of a whole second.
        let wait = await_near(1e9, Duration::from_secs(60));
        assert!(wait.near && wait.waited < Duration::from_secs(60), "{wait:?}");
        // Nothing is near 3x a floor of 0 ns: the wait ends at its patience.
        if allowed_cpus().is_some_and(|c| c.len() >= 2) {
            let wait = await_near(0.0, Duration::ZERO);
            assert!(!wait.near, "{wait:?}");
        }
    }

    #[test]
    fn a_cache_line_goes_between_two_cpus_and_back() {
        let cpus = allowed_cpus().expect("sched_getaffinity");
        assert!(!cpus.is_empty());
        let ns = core_to_core_ns();
        if cpus.len() < 2 {
            assert_eq!(ns, None);
            return;
        }
        // A round trip crosses two caches: longer than nothing, and far
        // shorter than the patience (which would have given None).
        let ns = ns.expect("two CPUs answer");
        assert!(ns > 0.0 && ns < CORE_TO_CORE_PATIENCE.as_secs_f64() * 1e9, "{ns}");
    }
}
