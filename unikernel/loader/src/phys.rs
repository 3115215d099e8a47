//! The loader's one view of physical memory: how the multiboot information, the
//! BIOS areas and the application's ELF are read (all through
//! `pvbench_loader_core`, which bounds-checks every address it follows).

use core::slice;

use pvbench_loader_core::phys::PhysMemory;

/// The end of what the boot tables (`boot.rs`) identity-map: 4 GiB, where QEMU
/// puts every multiboot structure and module (their addresses are 32-bit).
const BOOT_MAPPED_END: u64 = 4 << 30;

/// Physical memory below 4 GiB, read in place through the boot tables.
pub struct BootMapped(());

impl BootMapped {
    /// # Safety
    /// Only while the boot tables are installed: reads must happen before
    /// `install_tables`. What is read must never be written while the loader or
    /// the kernel use it, and slices kept past `install_tables` must lie in RAM the
    /// final tables map: true of QEMU's multiboot data, the BIOS areas and the
    /// modules, which sit below the application, where neither the loader nor the
    /// kernel writes.
    pub unsafe fn new() -> Self {
        Self(())
    }
}

impl PhysMemory<'static> for BootMapped {
    fn read(&self, addr: u64, len: usize) -> Option<&'static [u8]> {
        let end = addr.checked_add(len as u64)?;
        if addr == 0 || end > BOOT_MAPPED_END {
            return None;
        }
        // SAFETY: `addr` is not null and `addr..end` is identity-mapped by the boot
        // tables (checked above); per `new`'s contract nothing writes it.
        Some(unsafe { slice::from_raw_parts(addr as usize as *const u8, len) })
    }
}
