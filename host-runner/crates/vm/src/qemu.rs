//! Finding QEMU and the parts of its command line every guest shares.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The QEMU looked for on `PATH`: the guests are x86-64.
pub const QEMU_BINARY: &str = "qemu-system-x86_64";

/// Why no QEMU was found.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// `PVBENCH_QEMU` is unset and no directory on `PATH` holds [`QEMU_BINARY`].
    #[error("{QEMU_BINARY} not found: install it with `apt-get install qemu-system-x86` (as root), or set PVBENCH_QEMU")]
    NotFound,
    /// `PVBENCH_QEMU` is set but does not name a file.
    #[error("PVBENCH_QEMU={0} is not an executable file")]
    BadOverride(PathBuf),
}

/// `PVBENCH_QEMU`, else `qemu-system-x86_64` on PATH.
pub fn find() -> Result<PathBuf, QemuError> {
    if let Some(path) = std::env::var_os("PVBENCH_QEMU") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(QemuError::BadOverride(path))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(QEMU_BINARY))
        .find(|candidate| candidate.is_file())
        .ok_or(QemuError::NotFound)
}

/// QEMU's version line, for provenance.
pub fn version(qemu: &Path) -> String {
    Command::new(qemu)
        .arg("-version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// Arguments shared by every pvbench guest: no display or default devices, serial
/// on stdio, `isa-debug-exit` for the exit status, no reboot on triple fault.
pub fn common_args(vcpus: u32, memory_mib: u32, loader: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        "stdio",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
        // Names each vCPU thread `CPU N/TCG` (or `/KVM`), so the host can
        // read every vCPU's run delay from its schedstat (guest::vcpu).
        "-name",
        "pvbench,debug-threads=on",
    ]
    .map(String::from)
    .to_vec();
    args.extend([
        "-smp".into(),
        vcpus.to_string(),
        "-m".into(),
        format!("{memory_mib}M"),
    ]);
    args.extend(["-kernel".into(), loader.display().to_string()]);
    args
}

/// A virtio-net-pci NIC on QEMU's user-mode network. Modern-only
/// (`disable-legacy=on`): Hermit 0.11 skips transitional virtio devices.
pub fn network_args() -> [&'static str; 4] {
    [
        "-netdev",
        "user,id=net0",
        "-device",
        "virtio-net-pci,netdev=net0,disable-legacy=on",
    ]
}
