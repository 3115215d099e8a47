//! Guest exit status through QEMU's `isa-debug-exit` device.
//!
//! QEMU exits with `(value << 1) | 1` when the guest writes `value` to the device.
//! Hermit's own shutdown writes 0 (failure: panic, abort, nonzero exit) or 1
//! (success), i.e. QEMU status 1 or 3, which loses the exact code. pvbench guests
//! write `STATUS_BASE + status` themselves, so their statuses map to odd QEMU
//! codes from 5 upwards and never collide with the kernel's own two.

/// I/O port of the `isa-debug-exit` device (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Offset added to a guest status so that it cannot be mistaken for the kernel's 0 or 1.
pub const STATUS_BASE: u32 = 2;

/// The largest status a guest can report: QEMU's exit code must fit in 0..=255.
pub const MAX_STATUS: u8 = 125;

/// Why a guest application ended, as the status it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// Finished, its checks passed.
    Success = 0,
    /// A word on its command line was unknown or malformed, or its
    /// configuration was refused (e.g. the hypercall kick without hardware KVM).
    Usage = 2,
    /// The workload or a check failed (data damaged, counters inconsistent).
    Failed = 3,
    /// The workload finished but its metrics stream did not.
    MetricsIncomplete = 4,
}

impl Status {
    /// The status byte the guest reports.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The meaning of a status byte, if it is one of these.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Status::Success),
            2 => Some(Status::Usage),
            3 => Some(Status::Failed),
            4 => Some(Status::MetricsIncomplete),
            _ => None,
        }
    }

    /// What it means, for people.
    pub const fn meaning(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Usage => "bad command-line words or configuration",
            Status::Failed => "the workload or a check failed",
            Status::MetricsIncomplete => "the metrics stream did not complete",
        }
    }
}

/// Status the loader reports when its accelerator probe loop finished.
pub const PROBE_DONE: u8 = 100;

/// Status the loader reports when it cannot start the application.
pub const LOADER_FAILED: u8 = 101;

/// The value a guest writes to [`DEBUG_EXIT_PORT`] to make QEMU exit with `status`.
pub const fn port_value(status: u8) -> u32 {
    let status = if status > MAX_STATUS { MAX_STATUS } else { status };
    STATUS_BASE + status as u32
}

/// What a QEMU exit code says about how the guest ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestExit {
    /// The guest reported this status through pvbench's exit path.
    Status(u8),
    /// Hermit shut down cleanly without going through pvbench's exit path.
    KernelSuccess,
    /// Hermit shut down after a panic, an abort or a failing exit.
    KernelFailure,
    /// QEMU ended without the device being written (power-off, triple fault with
    /// `-no-reboot`, or QEMU itself failed before the guest ran).
    NoReport(i32),
}

impl GuestExit {
    /// Decodes QEMU's exit code.
    pub const fn from_qemu_code(code: i32) -> Self {
        match code {
            1 => GuestExit::KernelFailure,
            3 => GuestExit::KernelSuccess,
            c if c >= 5 && c <= 255 && c % 2 == 1 => {
                GuestExit::Status(((c as u32 - 1) / 2 - STATUS_BASE) as u8)
            }
            c => GuestExit::NoReport(c),
        }
    }

    /// Whether the guest ended as a successful run.
    pub const fn is_success(self) -> bool {
        matches!(self, GuestExit::Status(0) | GuestExit::KernelSuccess)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_qemu_code() {
        for status in 0..=MAX_STATUS {
            let qemu_code = ((port_value(status) << 1) | 1) as i32;
            assert!(qemu_code <= 255, "status {status} overflows QEMU's exit code");
            assert_eq!(GuestExit::from_qemu_code(qemu_code), GuestExit::Status(status));
        }
    }

    #[test]
    fn kernel_codes_stay_distinct() {
        assert_eq!(GuestExit::from_qemu_code(1), GuestExit::KernelFailure);
        assert_eq!(GuestExit::from_qemu_code(3), GuestExit::KernelSuccess);
        assert_eq!(GuestExit::from_qemu_code(0), GuestExit::NoReport(0));
        assert_eq!(GuestExit::from_qemu_code(4), GuestExit::NoReport(4));
        assert!(!GuestExit::from_qemu_code(7).is_success());
        assert!(GuestExit::from_qemu_code(5).is_success());
    }
}
