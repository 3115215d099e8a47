//! What the kernel's pv-lock glue and the application exchange.
//!
//! The kernel and the application are compiled separately and meet only through
//! `sys_pvlock_configure` / `sys_pvlock_report`, so these types have C layout
//! and a version number.

use crate::kickwake::KICK_WAKE_BUCKETS;
use crate::modal::LockMode;
use crate::stats::{PvLockStats, QueuedLockStats, TasLockStats};

/// Bumped whenever a type below changes layout.
/// 3: the lock mode instead of on/off; queued, test-and-set and kick-to-wake
/// statistics; the TSC frequency.
pub const VERSION: u32 = 3;

/// How an unlocker wakes a halted waiter.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// No slow path (pv-locks off, or not configured yet).
    None = 0,
    /// Let the kernel choose: the hypercall where it is known to work, else NMIs.
    Auto = 1,
    /// An NMI IPI to the waiter's APIC ID (works under TCG and KVM).
    Nmi = 2,
    /// KVM_HC_KICK_CPU with the waiter's APIC ID (hardware KVM only).
    Hypercall = 3,
}

impl Backend {
    /// Decodes a stored discriminant; unknown values read as `None`.
    pub const fn from_u8(value: u8) -> Self {
        match value {
            1 => Backend::Auto,
            2 => Backend::Nmi,
            3 => Backend::Hypercall,
            _ => Backend::None,
        }
    }

    /// Lower-case name, as on the command line and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::None => "none",
            Backend::Auto => "auto",
            Backend::Nmi => "nmi",
            Backend::Hypercall => "hypercall",
        }
    }
}

/// What the application asks for.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// [`VERSION`] of the caller.
    pub version: u32,
    /// Spin iterations before a waiter halts.
    pub spin_threshold: u32,
    /// The lock mode (`LockMode as u8`). The kernel fixes its mode at boot
    /// from `pvlock=` on its command line; a configuration can only confirm
    /// it, or switch between `base` and `pv` (see [`crate::set_mode`]).
    pub mode: u8,
    /// Requested kick backend.
    pub backend: Backend,
    /// The host runner vouches that this is hardware KVM, where the hypercall
    /// works (CPUID alone is not trusted: some nested KVMs advertise PV_UNHALT
    /// and hang on the hypercall).
    pub host_is_hardware_kvm: bool,
}

/// What is in force, and the statistics since the last configuration.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Report {
    /// [`VERSION`] of the kernel.
    pub version: u32,
    /// CPUs the kernel knows the APIC ID of.
    pub cpus: u32,
    /// Spin threshold in force.
    pub spin_threshold: u32,
    /// The configuration asked for.
    pub requested: Config,
    /// The lock mode in force (`LockMode as u8`).
    pub mode: u8,
    /// Whether waiters may halt now.
    pub active: bool,
    /// Kick backend in force.
    pub backend: Backend,
    /// Whether CPUID shows KVM with PV_UNHALT (informational).
    pub kvm_pv_unhalt_cpuid: bool,
    /// CPUs in the waiting set when the report was taken (a bitmask).
    pub waiting_cpus: u64,
    /// TSC ticks per microsecond (the cycles of the statistics), 0 if unknown.
    pub tsc_mhz: u32,
    /// Slow-path statistics of the ticket lock (`pv`).
    pub stats: PvLockStats,
    /// The queued locks' events (`qspin`, `pvqspin`).
    pub queued: QueuedLockStats,
    /// The test-and-set lock's counters (`tas`).
    pub tas: TasLockStats,
    /// Kick-to-wake latency in cycles, by bucket (see [`crate::kick_wake_bucket_floor`]).
    pub kick_wake: [u64; KICK_WAKE_BUCKETS],
    /// Kernel events around the locks, counted since boot.
    pub kernel: KernelEvents,
}

/// Kernel events the kick path and the scheduler count, since boot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelEvents {
    /// NMIs that were not pv-lock kicks (a hardware error, a watchdog, a
    /// debugger's NMI); the kick handler swallows every NMI.
    pub stray_nmis: u64,
    /// Where the last of them interrupted (RIP), 0 if none.
    pub last_stray_nmi_rip: u64,
    /// Wakeups dropped because the wait they were for had already ended (its
    /// timeout won the race with the waker).
    pub stale_wakeups: u64,
}

impl Config {
    /// The mode asked for, if `mode` names one.
    pub fn lock_mode(&self) -> Option<LockMode> {
        LockMode::from_u8(self.mode)
    }
}

impl Report {
    /// Assembles a report of the crate's state now (the kernel side): the mode,
    /// the switches and every statistic.
    pub fn new(
        requested: Config,
        backend: Backend,
        cpus: u32,
        kvm_pv_unhalt_cpuid: bool,
        tsc_mhz: u32,
    ) -> Self {
        let active = crate::is_active();
        Self {
            version: VERSION,
            cpus,
            spin_threshold: crate::spin_threshold(),
            requested,
            mode: crate::mode() as u8,
            active,
            backend: if active { backend } else { Backend::None },
            kvm_pv_unhalt_cpuid,
            waiting_cpus: crate::waiting_cpus(),
            tsc_mhz,
            stats: crate::stats::snapshot(),
            queued: crate::stats::queued_snapshot(),
            tas: crate::stats::tas_snapshot(),
            kick_wake: crate::kick_wake_snapshot(),
            kernel: KernelEvents::default(),
        }
    }

    /// The mode in force.
    pub fn lock_mode(&self) -> LockMode {
        LockMode::from_u8(self.mode).unwrap_or(LockMode::Base)
    }

    /// The same report with the kernel's event counters.
    pub fn with_kernel_events(self, kernel: KernelEvents) -> Self {
        Self { kernel, ..self }
    }
}
