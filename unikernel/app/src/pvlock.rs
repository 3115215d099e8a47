//! pv-ticketlock configuration from the command line, through the kernel's
//! `sys_pvlock_*` calls (pvbench's kernel patch).

use pvbench_wire::cmdline::{self, PVLOCK, PVLOCK_HW_KVM, PVLOCK_KICK, PVLOCK_SPIN};
use pvlock::DEFAULT_SPIN_THRESHOLD;
use pvlock::report::{Backend, Config, Report, VERSION};

unsafe extern "C" {
    fn sys_pvlock_configure(config: *const Config, report: *mut Report) -> i32;
    fn sys_pvlock_report(config: *const Config, report: *mut Report) -> i32;
}

/// Reads `pvlock=`, `pvlock.spin=`, `pvlock.kick=` and `pvlock.hwkvm=`.
pub fn parse(line: &str) -> Result<Config, String> {
    let enabled = match cmdline::find(line, PVLOCK).unwrap_or("on") {
        "on" => true,
        "off" => false,
        other => return Err(format!("{PVLOCK}={other}: expected on or off")),
    };
    let spin_threshold = match cmdline::find(line, PVLOCK_SPIN) {
        None => DEFAULT_SPIN_THRESHOLD,
        Some(n) => n.parse().map_err(|_| format!("{PVLOCK_SPIN}={n}: expected a number of spins"))?,
    };
    let backend = match cmdline::find(line, PVLOCK_KICK).unwrap_or("auto") {
        "auto" => Backend::Auto,
        "nmi" => Backend::Nmi,
        "hypercall" => Backend::Hypercall,
        other => return Err(format!("{PVLOCK_KICK}={other}: expected auto, nmi or hypercall")),
    };
    let host_is_hardware_kvm = match cmdline::find(line, PVLOCK_HW_KVM).unwrap_or("0") {
        "1" => true,
        "0" => false,
        other => return Err(format!("{PVLOCK_HW_KVM}={other}: expected 0 or 1")),
    };
    Ok(Config { version: VERSION, spin_threshold, enabled, backend, host_is_hardware_kvm })
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
