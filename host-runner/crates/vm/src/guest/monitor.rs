//! A guest's QMP monitor and what pvbench asks of it before killing a hung
//! guest. Every guest that does not migrate gets a [`Monitor`] socket here (a
//! migrating guest has one per QEMU already); the functions work on either.
//! Before a kill (its timeout, or the stall watch) pvbench asks where each
//! vCPU was, so that a failed cell says whether its vCPUs were idle, halted in
//! a lock wait (RIP in `pvbench_pvlock_window_*`, `RFL` without IF) or
//! spinning; a stalled guest may also have its memory dumped and is then
//! probed with an injected NMI (see `NmiProbe`).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::qmp::Qmp;

/// How long QEMU may take to answer before the guest is killed anyway.
const QMP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long QEMU may take to write a guest's memory.
const DUMP_TIMEOUT: Duration = Duration::from_secs(300);

/// A fresh directory for one guest's sockets: `pvbench-KIND-PID-N` in the
/// temporary directory, unique per process and guest, and short, since a
/// UNIX socket path is limited to 108 bytes.
pub(super) fn socket_dir(kind: &str) -> std::io::Result<PathBuf> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pvbench-{kind}-{}-{}",
        std::process::id(),
        // Relaxed: only uniqueness matters.
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The socket directory of one guest's QEMU; removed when dropped.
pub(super) struct Monitor {
    dir: PathBuf,
}

impl Monitor {
    pub(super) fn new() -> std::io::Result<Monitor> {
        Ok(Monitor {
            dir: socket_dir("mon")?,
        })
    }

    pub(super) fn socket(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }

    /// QEMU's `-qmp` argument.
    pub(super) fn qmp_arg(&self) -> String {
        format!("unix:{},server=on,wait=off", self.socket().display())
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Each vCPU's `CPU#n` and `RIP=...` lines from the QEMU listening on
/// `socket`, if it answers.
pub(super) fn vcpu_states(socket: &Path) -> Option<String> {
    let mut qmp = Qmp::connect(socket, QMP_TIMEOUT).ok()?;
    let out = qmp
        .execute(
            "human-monitor-command",
            Some(json!({ "command-line": "info registers -a" })),
        )
        .ok()?;
    let lines: Vec<&str> = out
        .as_str()?
        .lines()
        .filter(|l| l.starts_with("CPU#") || l.starts_with("RIP="))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// Presses the NMI button of the QEMU listening on `socket` (`inject-nmi`:
/// an NMI to every vCPU, through its LINT1). True if QEMU took the command.
pub(super) fn inject_nmi(socket: &Path) -> bool {
    Qmp::connect(socket, QMP_TIMEOUT).is_ok_and(|mut qmp| qmp.execute("inject-nmi", None).is_ok())
}

/// Writes the guest's memory to `path` as an ELF core (`dump-guest-memory`
/// with paging: segments at the guest's virtual addresses, as the first vCPU's
/// page tables map them, so gdb reads it with the kernel's symbols), waiting
/// for QEMU to finish.
pub(super) fn dump_memory(socket: &Path, path: &Path) -> Result<(), String> {
    // An absolute path: QEMU runs in our working directory, but may not stay there.
    let path = std::path::absolute(path).map_err(|e| e.to_string())?;
    // Writing a guest's memory takes a while: seconds per GiB.
    let mut qmp = Qmp::connect(socket, DUMP_TIMEOUT).map_err(|e| e.to_string())?;
    qmp.execute(
        "dump-guest-memory",
        Some(json!({ "paging": true, "protocol": format!("file:{}", path.display()) })),
    )
    .map_err(|e| e.to_string())?;
    canonicalise_core(&path).map_err(|e| format!("fixing its addresses: {e}"))
}

/// Gives every lower-half segment of a QEMU core its canonical address.
///
/// QEMU's x86-64 page-table walk for `dump-guest-memory` (7.2,
/// `walk_pml4e`) sets bits 48-63 of every virtual address it finds, so the
/// kernel's identity map at 0x400000 comes out at 0xffff000000400000 and gdb
/// finds neither code nor stacks. A canonical address repeats bit 47 in bits
/// 48-63: a segment whose bit 47 is clear gets them cleared.
fn canonicalise_core(path: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    const PT_LOAD: u32 = 1;
    const HIGH: u64 = 0xffff << 48;
    let bad = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a 64-bit little-endian ELF file",
        )
    };
    let mut file = fs::OpenOptions::new().read(true).write(true).open(path)?;
    let mut header = [0u8; 64];
    file.read_exact(&mut header)?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Err(bad());
    }
    let phoff = u64::from_le_bytes(header[32..40].try_into().expect("8 bytes"));
    let phentsize = u64::from(u16::from_le_bytes([header[54], header[55]]));
    let phnum = u64::from(u16::from_le_bytes([header[56], header[57]]));
    if phentsize < 56 {
        return Err(bad());
    }
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let mut phdr = [0u8; 24];
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(&mut phdr)?;
        let kind = u32::from_le_bytes(phdr[0..4].try_into().expect("4 bytes"));
        let vaddr = u64::from_le_bytes(phdr[16..24].try_into().expect("8 bytes"));
        if kind == PT_LOAD && vaddr & HIGH == HIGH && vaddr & (1 << 47) == 0 {
            file.seek(SeekFrom::Start(at + 16))?;
            file.write_all(&(vaddr & !HIGH).to_le_bytes())?;
        }
    }
    Ok(())
}

/// `vcpu_states` in one line for a failure reason: `cpu0 RIP=... RFL=...
/// HLT=1, cpu1 ...`.
pub fn compact_vcpu_states(states: &str) -> String {
    let mut cpus = Vec::new();
    let mut cpu = None;
    for line in states.lines() {
        if let Some(n) = line.strip_prefix("CPU#") {
            cpu = Some(n.trim().to_string());
        } else if line.starts_with("RIP=") {
            let fields: Vec<&str> = line
                .split_whitespace()
                .filter(|f| f.starts_with("RIP=") || f.starts_with("RFL=") || f.starts_with("HLT="))
                .collect();
            let name = cpu
                .take()
                .map_or_else(|| "cpu?".to_string(), |n| format!("cpu{n}"));
            cpus.push(format!("{name} {}", fields.join(" ")));
        }
    }
    cpus.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_qemu_register_dumps() {
        let dump = "CPU#0\nRIP=0000000000497669 RFL=00001046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1\n\
                    CPU#1\nRIP=000000000047493d RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1";
        assert_eq!(
            compact_vcpu_states(dump),
            "cpu0 RIP=0000000000497669 RFL=00001046 HLT=1, cpu1 RIP=000000000047493d RFL=00000246 HLT=1"
        );
    }

    #[test]
    fn core_segments_get_canonical_addresses() {
        // An ELF header and three PT_LOAD headers as QEMU 7.2 writes them.
        let mut elf = vec![0u8; 64 + 3 * 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[32..40].copy_from_slice(&64u64.to_le_bytes());
        elf[54..56].copy_from_slice(&56u16.to_le_bytes());
        elf[56..58].copy_from_slice(&3u16.to_le_bytes());
        let vaddrs = [
            0xffff_0000_0040_0000u64,
            0xffff_4000_0620_5000,
            0xffff_8000_0000_1000,
        ];
        for (i, vaddr) in vaddrs.iter().enumerate() {
            let at = 64 + i * 56;
            elf[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
            elf[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
        }
        let dir = socket_dir("coretest").expect("a temporary directory");
        let path = dir.join("core");
        fs::write(&path, &elf).unwrap();
        canonicalise_core(&path).unwrap();
        let fixed = fs::read(&path).unwrap();
        let vaddr =
            |i: usize| u64::from_le_bytes(fixed[64 + i * 56 + 16..64 + i * 56 + 24].try_into().unwrap());
        // Lower half: bits 48-63 cleared; upper half (bit 47 set): kept.
        assert_eq!(vaddr(0), 0x0040_0000);
        assert_eq!(vaddr(1), 0x4000_0620_5000);
        assert_eq!(vaddr(2), 0xffff_8000_0000_1000);
        fs::write(
            &path,
            b"not an ELF file at all, but long enough to hold a header......",
        )
        .unwrap();
        assert!(canonicalise_core(&path).is_err());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_socket_nobody_listens_on_gives_nothing() {
        let monitor = Monitor::new().expect("a temporary directory");
        assert_eq!(vcpu_states(&monitor.socket()), None);
        assert!(!inject_nmi(&monitor.socket()));
        let dir = monitor.dir.clone();
        drop(monitor);
        assert!(!dir.exists());
    }
}
