//! Lock configuration from the command line, through the kernel's
//! `sys_pvlock_*` calls (pvbench's kernel patch), and the kernel's lock
//! statistics in the wire's shape.

use hdrhistogram::Histogram;
use pvbench_wire::frames::{HistogramEncoder, KernelEvents, LockStats, QueuedStats, TasStats};
use pvbench_wire::lock::{Kick, LockMode, PvlockArgs};
use pvlock::report::{Backend, Config, Report, VERSION};
use pvlock::{DEFAULT_SPIN_THRESHOLD, KICK_WAKE_BUCKETS, kick_wake_bucket_floor};

unsafe extern "C" {
    fn sys_pvlock_configure(config: *const Config, report: *mut Report) -> i32;
    fn sys_pvlock_report(config: *const Config, report: *mut Report) -> i32;
    fn sys_pvlock_halt_unkicked() -> usize;
}

/// Halts this vCPU as a pv-lock waiter whose kick was lost (interrupts off,
/// in the kernel's halt window) until an NMI that is not a kick arrives;
/// returns the stray NMIs the kernel has seen.
pub fn halt_unkicked() -> usize {
    // SAFETY: no arguments; the kernel halts and returns.
    unsafe { sys_pvlock_halt_unkicked() }
}

/// Reads `pvlock=`, `pvlock.spin=`, `pvlock.kick=` and `pvlock.hwkvm=` (the
/// wire's words, which the host builds) into the kernel's configuration. The
/// kernel read `pvlock=` itself at boot and runs its locks in that mode; this
/// configuration confirms it and sets the rest.
pub fn parse(line: &str) -> Result<Config, String> {
    let args = PvlockArgs::parse(line).map_err(|e| e.to_string())?;
    let mode = pvlock::LockMode::from_name(args.lock.name())
        .ok_or_else(|| format!("lock mode {} unknown to the kernel", args.lock))?;
    Ok(Config {
        version: VERSION,
        spin_threshold: args.spin.unwrap_or(DEFAULT_SPIN_THRESHOLD),
        mode: mode as u8,
        backend: match args.kick {
            Kick::Auto => Backend::Auto,
            Kick::Nmi => Backend::Nmi,
            Kick::Hypercall => Backend::Hypercall,
        },
        host_is_hardware_kvm: args.hardware_kvm,
    })
}

/// The wire's name for a kernel lock mode.
fn wire_mode(mode: pvlock::LockMode) -> LockMode {
    LockMode::from_word(mode.name()).expect("the wire knows every kernel lock mode (a host test checks)")
}

/// The lock mode a configuration asks for.
pub fn requested(config: &Config) -> LockMode {
    config.lock_mode().map_or(LockMode::Base, wire_mode)
}

/// The lock mode a report says is in force.
pub fn effective(report: &Report) -> LockMode {
    wire_mode(report.lock_mode())
}

/// Every lock counter of a report, cumulative, in the wire's shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub lock: LockStats,
    pub queued: QueuedStats,
    pub tas: TasStats,
}

impl Counters {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            lock: self.lock.since(&earlier.lock),
            queued: self.queued.since(&earlier.queued),
            tas: self.tas.since(&earlier.tas),
        }
    }
}

/// The report's counters in the wire's shape, the one the host reads.
pub fn counters(report: &Report) -> Counters {
    let s = &report.stats;
    let q = &report.queued;
    Counters {
        lock: LockStats {
            taken_slow: s.taken_slow,
            taken_slow_pickup: s.taken_slow_pickup,
            halted: s.halted,
            halted_irqs_disabled: s.halted_irqs_disabled,
            spurious_wakeups: s.spurious_wakeups,
            released_slow: s.released_slow,
            released_slow_kicked: s.released_slow_kicked,
            time_blocked_cycles: s.time_blocked,
        },
        queued: QueuedStats {
            pending: q.pending,
            queued: q.queued,
            nested: q.nested,
            no_node: q.no_node,
            steals: q.steals,
            wait_node: q.wait_node,
            wait_head: q.wait_head,
            wait_again: q.wait_again,
            wait_early: q.wait_early,
            halted: q.halted,
            halted_irqs_disabled: q.halted_irqs_disabled,
            spurious_wakeups: q.spurious_wakeups,
            pickups_node: q.pickups_node,
            pickups_head: q.pickups_head,
            hashed: q.hashed,
            hash_hops: q.hash_hops,
            kick_unlock: q.kick_unlock,
            kick_wake: q.kick_wake,
            time_blocked_cycles: q.time_blocked,
            kick_latency_cycles: q.kick_latency,
        },
        tas: TasStats {
            contended: report.tas.contended,
            failed_cas: report.tas.failed_cas,
            backoff_spins: report.tas.backoff_spins,
        },
    }
}

/// The kick-to-wake latencies of a report as an HDR histogram in nanoseconds,
/// serialized for the wire; empty if none was recorded or the TSC frequency is
/// unknown. Each bucket of the kernel's log-linear histogram (1/16 of a power
/// of two wide) is recorded at its midpoint, so values are within 1/32 of the
/// truth, next to HDR's own 2 significant digits.
pub fn kick_wake_ns(report: &Report) -> Result<Vec<u8>, String> {
    let mhz = u64::from(report.tsc_mhz);
    if mhz == 0 || report.kick_wake.iter().all(|&n| n == 0) {
        return Ok(Vec::new());
    }
    let mut histogram = Histogram::<u64>::new(2).map_err(|e| e.to_string())?;
    for (index, &count) in report.kick_wake.iter().enumerate().filter(|(_, n)| **n > 0) {
        let floor = kick_wake_bucket_floor(index);
        let next = if index + 1 < KICK_WAKE_BUCKETS { kick_wake_bucket_floor(index + 1) } else { floor + 1 };
        let cycles = floor + (next - floor) / 2;
        let ns = (cycles.saturating_mul(1000) / mhz).max(1);
        histogram.record_n(ns, count).map_err(|e| e.to_string())?;
    }
    let mut bytes = Vec::new();
    HistogramEncoder::new().encode(&histogram, &mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// The kernel's event counters in the wire's shape.
pub fn kernel_events(report: &Report) -> KernelEvents {
    KernelEvents { stray_nmis: report.kernel.stray_nmis, stale_wakeups: report.kernel.stale_wakeups }
}

/// Applies `config`; the error is the report of what is in force instead.
pub fn configure(config: &Config) -> Result<Report, Report> {
    let mut report = std::mem::MaybeUninit::<Report>::uninit();
    // SAFETY: both pointers are valid; the kernel writes a whole Report.
    let rc = unsafe { sys_pvlock_configure(config, report.as_mut_ptr()) };
    // SAFETY: the kernel wrote the report (it does on both outcomes).
    let report = unsafe { report.assume_init() };
    if rc == 0 { Ok(report) } else { Err(report) }
}

/// The configuration in force and the statistics so far.
pub fn report(config: &Config) -> Report {
    let mut report = std::mem::MaybeUninit::<Report>::uninit();
    // SAFETY: as in `configure`.
    unsafe {
        sys_pvlock_report(config, report.as_mut_ptr());
        report.assume_init()
    }
}

/// `pvlock requested=pvqspin effective=pvqspin halting=on kick=nmi spin=256 cpus=2 ...`
pub fn describe(report: &Report) -> String {
    format!(
        "pvlock requested={} effective={} halting={} kick={} spin={} cpus={} tsc_mhz={} kvm_pv_unhalt_cpuid={}",
        requested(&report.requested),
        effective(report),
        if report.active { "on" } else { "off" },
        report.backend.name(),
        report.spin_threshold,
        report.cpus,
        report.tsc_mhz,
        report.kvm_pv_unhalt_cpuid as u8,
    )
}

/// Every counter of the mode in force on one line (the seed's debugfs
/// counters for the ticket locks, the lock events for the queued ones).
pub fn stats_line(report: &Report) -> String {
    let c = counters(report);
    let mode = effective(report);
    let fields: Vec<(&str, u64)> = match mode {
        LockMode::Base | LockMode::Pv => c.lock.fields().to_vec(),
        LockMode::Qspin | LockMode::Pvqspin => c.queued.fields().to_vec(),
        LockMode::Tas => c.tas.fields().to_vec(),
    };
    let mut line = format!("pvlock stats mode={mode}");
    for (name, value) in fields {
        line.push_str(&format!(" {name}={value}"));
    }
    let kick_wakes: u64 = report.kick_wake.iter().sum();
    line.push_str(&format!(
        " kick_wakes={kick_wakes} waiting_cpus={:#x} stray_nmis={} last_stray_nmi_rip={:#x} stale_wakeups={}",
        report.waiting_cpus, report.kernel.stray_nmis, report.kernel.last_stray_nmi_rip, report.kernel.stale_wakeups,
    ));
    line
}
