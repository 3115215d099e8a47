//! The host's TSC rate, which every guest is told at boot (Hermit's `-freq`).
//!
//! Left to itself, Hermit 0.11 counts TSC cycles over three ticks of a 100 Hz
//! PIT (`CpuFrequency::measure_frequency`). QEMU raises those ticks from its
//! own timer, so when its threads wait for a host CPU (an overcommitted host:
//! hog guests already running) a tick arrives late or two arrive back to back,
//! and the guest's clock is wrong for its whole life. Measured with two hog
//! guests (`results/locks/modes-3x-tcg`, git c6c4f856): guests calibrated
//! 2061-3112 MHz on a 2596 MHz host, so a build's own timing was off by up to
//! 21% against the host's clock, and one 2x build "completed" in 166.8 s under
//! a 150 s cap. The guest's TSC ticks at the host's rate under both
//! accelerators (TCG reads the host's TSC; KVM passes it through unless told
//! a frequency), so the host measures that rate once, on its own clock, and
//! every guest uses it.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Each round counts TSC cycles over this much of the host's monotonic clock.
const ROUND: Duration = Duration::from_millis(20);
const ROUNDS: usize = 5;
/// A TSC read and a clock read bracketed by two TSC reads further apart than
/// this were interrupted between them (~40 ns undisturbed): read again.
const BRACKET_CYCLES: u64 = 20_000;
/// Rounds must agree this closely, or the TSC is not a steady clock here.
const AGREEMENT: f64 = 1e-3;

/// The host's TSC rate in MHz, measured once per process; `None` off x86_64
/// or where the TSC does not tick steadily against the host's clock (the
/// guests then calibrate as before).
pub fn host_mhz() -> Option<u16> {
    static MHZ: OnceLock<Option<u16>> = OnceLock::new();
    *MHZ.get_or_init(|| {
        let mhz = measure_mhz()?;
        // Hermit takes whole MHz: 0.04% at 2.5 GHz, far below the error it replaces.
        (1.0..f64::from(u16::MAX))
            .contains(&mhz)
            .then(|| mhz.round() as u16)
    })
}

/// The median of [`ROUNDS`] rounds, if they agree within [`AGREEMENT`].
fn measure_mhz() -> Option<f64> {
    let mut rounds: Vec<f64> = (0..ROUNDS).map(|_| round_mhz()).collect::<Option<_>>()?;
    rounds.sort_by(f64::total_cmp);
    let median = rounds[ROUNDS / 2];
    let spread = (rounds[ROUNDS - 1] - rounds[0]) / median;
    (median > 0.0 && spread <= AGREEMENT).then_some(median)
}

fn round_mhz() -> Option<f64> {
    let (c0, t0) = paired_read()?;
    std::thread::sleep(ROUND);
    let (c1, t1) = paired_read()?;
    let ns = t1.duration_since(t0).as_nanos() as f64;
    (ns > 0.0).then(|| c1.wrapping_sub(c0) as f64 * 1e3 / ns)
}

/// The TSC and the monotonic clock read together: the clock read between two
/// TSC reads, and the TSC taken as their midpoint. Retried while something
/// (an interrupt, a preemption) came between them.
fn paired_read() -> Option<(u64, Instant)> {
    for _ in 0..100 {
        let before = rdtsc()?;
        let now = Instant::now();
        let after = rdtsc()?;
        if after >= before && after - before <= BRACKET_CYCLES {
            return Some((before + (after - before) / 2, now));
        }
    }
    None
}

#[cfg(target_arch = "x86_64")]
fn rdtsc() -> Option<u64> {
    // SAFETY: RDTSC reads a counter; it has no memory effects and exists on
    // every x86_64 CPU.
    Some(unsafe { core::arch::x86_64::_rdtsc() })
}

#[cfg(not(target_arch = "x86_64"))]
fn rdtsc() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_host_tsc_rate_is_measured() {
        let mhz = host_mhz().expect("x86_64 hosts with a steady TSC");
        // Every x86_64 CPU of the last two decades ticks between these.
        assert!((500..=6000).contains(&mhz), "{mhz} MHz");
    }
}
