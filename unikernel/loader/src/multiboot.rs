//! Reading the multiboot (v1) information QEMU hands over.

use core::{ptr, slice, str};

pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;

const FLAG_CMDLINE: u32 = 1 << 2;
const FLAG_MODS: u32 = 1 << 3;
const FLAG_MMAP: u32 = 1 << 6;
const MMAP_AVAILABLE: u32 = 1;

#[repr(C)]
struct RawInfo {
    flags: u32,
    mem_lower: u32,
    mem_upper: u32,
    boot_device: u32,
    cmdline: u32,
    mods_count: u32,
    mods_addr: u32,
    syms: [u32; 4],
    mmap_length: u32,
    mmap_addr: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Module {
    pub start: u32,
    pub end: u32,
    string: u32,
    reserved: u32,
}

/// A range of usable RAM, `start..end`.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    pub start: u64,
    pub end: u64,
}

pub struct Info {
    raw: &'static RawInfo,
    addr: u64,
}

impl Info {
    /// # Safety
    /// `addr` must be the multiboot information address QEMU passed in EBX, and the
    /// memory it describes must be identity-mapped.
    pub unsafe fn new(addr: u32) -> Self {
        // SAFETY: per the caller's promise, a valid, identity-mapped structure.
        let raw = unsafe { &*(addr as usize as *const RawInfo) };
        Self {
            raw,
            addr: u64::from(addr),
        }
    }

    pub fn addr(&self) -> u64 {
        self.addr
    }

    pub fn command_line(&self) -> Option<&'static str> {
        if self.raw.flags & FLAG_CMDLINE == 0 || self.raw.cmdline == 0 {
            return None;
        }
        // SAFETY: multiboot promises a NUL-terminated string at `cmdline`.
        let bytes = unsafe { c_str(self.raw.cmdline) };
        str::from_utf8(bytes).ok()
    }

    pub fn modules(&self) -> &'static [Module] {
        if self.raw.flags & FLAG_MODS == 0 || self.raw.mods_count == 0 {
            return &[];
        }
        // SAFETY: multiboot promises `mods_count` module entries at `mods_addr`.
        unsafe {
            slice::from_raw_parts(
                self.raw.mods_addr as usize as *const Module,
                self.raw.mods_count as usize,
            )
        }
    }

    /// Usable RAM from the BIOS memory map.
    pub fn available_memory(&self) -> impl Iterator<Item = Region> + '_ {
        let (mut at, end) = if self.raw.flags & FLAG_MMAP != 0 {
            let start = self.raw.mmap_addr as usize;
            (start, start + self.raw.mmap_length as usize)
        } else {
            (0, 0)
        };
        core::iter::from_fn(move || {
            while at < end {
                // Entries are {size: u32, base: u64, length: u64, type: u32}, packed,
                // where `size` does not count itself.
                // SAFETY: inside the memory map multiboot described; unaligned by design.
                let (size, base, length, kind) = unsafe {
                    (
                        ptr::read_unaligned(at as *const u32),
                        ptr::read_unaligned((at + 4) as *const u64),
                        ptr::read_unaligned((at + 12) as *const u64),
                        ptr::read_unaligned((at + 20) as *const u32),
                    )
                };
                at += size as usize + 4;
                if kind == MMAP_AVAILABLE && length > 0 {
                    return Some(Region {
                        start: base,
                        end: base + length,
                    });
                }
            }
            None
        })
    }

    /// The end of everything QEMU placed for us: the structure itself, the command
    /// line, the module list, the modules and their names, the memory map. Memory
    /// above it (and above the loader) is free.
    pub fn end_of_boot_data(&self) -> u64 {
        let mut end = self.addr + size_of::<RawInfo>() as u64;
        if self.raw.flags & FLAG_CMDLINE != 0 && self.raw.cmdline != 0 {
            // SAFETY: as in `command_line`.
            let len = unsafe { c_str(self.raw.cmdline) }.len();
            end = end.max(u64::from(self.raw.cmdline) + len as u64 + 1);
        }
        if self.raw.flags & FLAG_MMAP != 0 {
            end = end.max(u64::from(self.raw.mmap_addr) + u64::from(self.raw.mmap_length));
        }
        let modules = self.modules();
        if !modules.is_empty() {
            end = end.max(u64::from(self.raw.mods_addr) + size_of_val(modules) as u64);
        }
        for module in modules {
            end = end.max(u64::from(module.end));
            if module.string != 0 {
                // SAFETY: module names are NUL-terminated strings.
                let len = unsafe { c_str(module.string) }.len();
                end = end.max(u64::from(module.string) + len as u64 + 1);
            }
        }
        end
    }
}

/// # Safety
/// `addr` must point to a NUL-terminated string in identity-mapped memory.
unsafe fn c_str(addr: u32) -> &'static [u8] {
    let start = addr as usize as *const u8;
    let mut len = 0;
    // SAFETY: we stop at the terminating NUL the caller promises.
    while unsafe { *start.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` bytes before the NUL are part of the string.
    unsafe { slice::from_raw_parts(start, len) }
}
