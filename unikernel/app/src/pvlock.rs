//! pv-ticketlock configuration from the command line, through the kernel's
//! `sys_pvlock_*` calls (pvbench's kernel patch).

use pvbench_wire::frames::{KernelEvents, LockStats};
use pvbench_wire::lock::{Kick, LockMode, PvlockArgs};
use pvlock::DEFAULT_SPIN_THRESHOLD;
use pvlock::report::{Backend, Config, Report, VERSION};

unsafe extern "C" {
    fn sys_pvlock_configure(config: *const Config, report: *mut Report) -> i32;
    fn sys_pvlock_report(config: *const Config, report: *mut Report) -> i32;
}

/// Reads `pvlock=`, `pvlock.spin=`, `pvlock.kick=` and `pvlock.hwkvm=` (the
/// wire's words, which the host builds) into the kernel's configuration.
pub fn parse(line: &str) -> Result<Config, String> {
    let args = PvlockArgs::parse(line).map_err(|e| e.to_string())?;
    Ok(Config {
        version: VERSION,
        spin_threshold: args.spin.unwrap_or(DEFAULT_SPIN_THRESHOLD),
        enabled: args.lock == LockMode::Pv,
        backend: match args.kick {
            Kick::Auto => Backend::Auto,
            Kick::Nmi => Backend::Nmi,
            Kick::Hypercall => Backend::Hypercall,
        },
        host_is_hardware_kvm: args.hardware_kvm,
    })
}

/// The lock mode a configuration asks for or a report says is in force.
pub fn mode(pv: bool) -> LockMode {
    if pv { LockMode::Pv } else { LockMode::Base }
}

/// The report's counters in the wire's shape, the one the host reads.
pub fn lock_stats(report: &Report) -> LockStats {
    let s = &report.stats;
    LockStats {
        taken_slow: s.taken_slow,
        taken_slow_pickup: s.taken_slow_pickup,
        halted: s.halted,
        halted_irqs_disabled: s.halted_irqs_disabled,
        spurious_wakeups: s.spurious_wakeups,
        released_slow: s.released_slow,
        released_slow_kicked: s.released_slow_kicked,
        time_blocked_cycles: s.time_blocked,
    }
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

/// `pvlock requested=on effective=on kick=nmi spin=32768 cpus=2`
pub fn describe(report: &Report) -> String {
    let on_off = |on: bool| if on { "on" } else { "off" };
    format!(
        "pvlock requested={} effective={} kick={} spin={} cpus={} kvm_pv_unhalt_cpuid={}",
        on_off(report.requested.enabled),
        on_off(report.active),
        report.backend.name(),
        report.spin_threshold,
        report.cpus,
        report.kvm_pv_unhalt_cpuid as u8,
    )
}

/// The seed's debugfs counters on one line.
pub fn stats_line(report: &Report) -> String {
    let s = &report.stats;
    format!(
        "pvlock stats taken_slow={} taken_slow_pickup={} halted={} halted_irqs_disabled={} \
         spurious_wakeups={} released_slow={} released_slow_kicked={} time_blocked_cycles={} waiting_cpus={:#x} \
         stray_nmis={} last_stray_nmi_rip={:#x} stale_wakeups={}",
        s.taken_slow,
        s.taken_slow_pickup,
        s.halted,
        s.halted_irqs_disabled,
        s.spurious_wakeups,
        s.released_slow,
        s.released_slow_kicked,
        s.time_blocked,
        report.waiting_cpus,
        report.kernel.stray_nmis,
        report.kernel.last_stray_nmi_rip,
        report.kernel.stale_wakeups,
    )
}
