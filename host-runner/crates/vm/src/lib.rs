//! Running pvbench guests under QEMU: finding QEMU and the command line every
//! guest shares ([`qemu`]), choosing the accelerator ([`accel`]), the guest
//! process with its console, CPU sampling, timeout, stall watch and panic
//! reading ([`guest`]), migration (live or paused) to a fresh QEMU through QMP ([`qmp`],
//! `guest::migrate`), Ctrl-C ([`interrupt`]), and the host's TSC rate every
//! guest is told at boot ([`tsc`]).
//!
//! No QEMU outlives pvbench: a running guest kills its QEMU when dropped, and
//! every QEMU gets SIGKILL from the kernel if pvbench itself dies.

#![warn(missing_docs)]

pub mod accel;
pub mod guest;
pub mod interrupt;
pub mod qemu;
pub mod qmp;
pub mod tsc;

use std::path::PathBuf;

/// The two files a guest boots from: the multiboot loader and the
/// application (with the kernel linked in), which QEMU loads as its module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFiles {
    /// The multiboot loader, QEMU's `-kernel`.
    pub loader: PathBuf,
    /// The application ELF, QEMU's `-initrd`: the loader's module.
    pub app: PathBuf,
}
