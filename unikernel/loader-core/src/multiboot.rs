//! The multiboot (v1) information QEMU hands over, parsed into plain data.
//!
//! QEMU passes the structure's physical address in EBX. Everything it points to
//! (command line, module list, module names, memory map) is read through a
//! [`PhysMemory`] and checked, so bad input is an [`Error`], never a panic.

use alloc::vec::Vec;
use core::fmt;
use core::num::NonZeroU64;

use crate::memmap::{self, MapEntry, Region};
use crate::phys::{PhysMemory, u32_at, u64_at};

/// What a multiboot loader leaves in EAX.
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;

/// `flags` bits for the fields the loader reads.
const FLAG_CMDLINE: u32 = 1 << 2;
const FLAG_MODS: u32 = 1 << 3;
const FLAG_MMAP: u32 = 1 << 6;

/// Offsets of the fields the loader reads; they end with `mmap_addr`.
const CMDLINE: usize = 16;
const MODS_COUNT: usize = 20;
const MODS_ADDR: usize = 24;
const MMAP_LENGTH: usize = 44;
const MMAP_ADDR: usize = 48;
/// The part of the structure the loader reads.
pub const INFO_LEN: usize = 52;

/// A module entry: start, end, string, reserved (all `u32`).
const MODULE_LEN: usize = 16;
/// A memory-map entry after its `size` field: base (`u64`), length (`u64`), type (`u32`).
const MMAP_ENTRY_MIN: usize = 20;

/// Longest string accepted: a missing NUL stops here, not at the end of memory.
pub const MAX_STRING: usize = 64 * 1024;

/// A module QEMU loaded (`-initrd`), `start..end` in physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Module {
    /// The module's contents.
    pub fn bytes<'a>(&self, mem: &impl PhysMemory<'a>) -> Result<&'a [u8], Error> {
        let truncated = Error::Truncated {
            what: "module",
            addr: self.start,
        };
        let len = self.end.checked_sub(self.start).ok_or(truncated)?;
        read(
            mem,
            "module",
            self.start,
            usize::try_from(len).map_err(|_| truncated)?,
        )
    }
}

/// What the loader needs from the multiboot information.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info<'a> {
    /// Where the structure is; the kernel is given it too.
    pub addr: NonZeroU64,
    /// The command line (`-append`), if there is one and it is UTF-8.
    pub command_line: Option<&'a str>,
    /// The modules, in QEMU's order: the first is the application.
    pub modules: Vec<Module>,
    /// Usable RAM, sorted and disjoint (see [`memmap::usable_ram`]); never empty.
    pub ram: Vec<Region>,
    /// The end of everything QEMU placed for the loader: the structure, the
    /// command line, the module list, the modules and their names, the memory map.
    /// Memory above it (and above the loader) is free.
    pub end_of_boot_data: u64,
}

/// Why the multiboot information is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The structure's address is 0.
    NoInfo,
    /// Something the structure points to is outside readable memory.
    Truncated {
        /// Which part.
        what: &'static str,
        /// Its address.
        addr: u64,
    },
    /// A string has no NUL within [`MAX_STRING`] bytes.
    Unterminated {
        /// Which string.
        what: &'static str,
        /// Its address.
        addr: u64,
    },
    /// `flags` says there is no memory map.
    NoMemoryMap,
    /// A memory-map entry is shorter than an entry or runs past the map's end.
    BadMemoryMap {
        /// The entry's offset in the map.
        offset: usize,
    },
    /// A module ends before it starts.
    BadModule {
        /// The module's index.
        index: usize,
    },
    /// The memory map holds no usable RAM.
    NoRam,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoInfo => write!(f, "no multiboot information (EBX = 0)"),
            Self::Truncated { what, addr } => {
                write!(f, "multiboot {what} at {addr:#x} is outside readable memory")
            }
            Self::Unterminated { what, addr } => write!(
                f,
                "multiboot {what} at {addr:#x} has no NUL within {MAX_STRING} bytes"
            ),
            Self::NoMemoryMap => write!(f, "the multiboot information has no memory map"),
            Self::BadMemoryMap { offset } => {
                write!(f, "malformed multiboot memory-map entry at offset {offset}")
            }
            Self::BadModule { index } => write!(f, "multiboot module {index} ends before it starts"),
            Self::NoRam => write!(f, "the memory map holds no usable RAM"),
        }
    }
}

/// Parses the multiboot information at physical address `addr`.
pub fn parse<'a>(addr: u64, mem: &impl PhysMemory<'a>) -> Result<Info<'a>, Error> {
    let addr = NonZeroU64::new(addr).ok_or(Error::NoInfo)?;
    let raw = read(mem, "information", addr.get(), INFO_LEN)?;
    let field = |offset| u32_at(raw, offset);
    let flags = field(0);
    let mut end = addr.get().saturating_add(INFO_LEN as u64);

    let mut command_line = None;
    let cmdline = u64::from(field(CMDLINE));
    if flags & FLAG_CMDLINE != 0 && cmdline != 0 {
        let bytes = c_str(mem, "command line", cmdline)?;
        end = end.max(cmdline + bytes.len() as u64 + 1);
        command_line = core::str::from_utf8(bytes).ok();
    }

    let mut modules = Vec::new();
    let mods_count = field(MODS_COUNT) as usize;
    if flags & FLAG_MODS != 0 && mods_count != 0 {
        let mods_addr = u64::from(field(MODS_ADDR));
        let truncated = Error::Truncated {
            what: "module list",
            addr: mods_addr,
        };
        let len = mods_count.checked_mul(MODULE_LEN).ok_or(truncated)?;
        let list = mem.read(mods_addr, len).ok_or(truncated)?;
        end = end.max(mods_addr + len as u64);
        for (index, entry) in list.chunks_exact(MODULE_LEN).enumerate() {
            let module = Module {
                start: u64::from(u32_at(entry, 0)),
                end: u64::from(u32_at(entry, 4)),
            };
            if module.end < module.start {
                return Err(Error::BadModule { index });
            }
            end = end.max(module.end);
            let name = u64::from(u32_at(entry, 8));
            if name != 0 {
                let len = c_str(mem, "module name", name)?.len();
                end = end.max(name + len as u64 + 1);
            }
            modules.push(module);
        }
    }

    if flags & FLAG_MMAP == 0 {
        return Err(Error::NoMemoryMap);
    }
    let mmap_addr = u64::from(field(MMAP_ADDR));
    let mmap_length = field(MMAP_LENGTH);
    let map = read(mem, "memory map", mmap_addr, mmap_length as usize)?;
    end = end.max(mmap_addr + u64::from(mmap_length));
    let ram = memmap::usable_ram(&map_entries(map)?);
    if ram.is_empty() {
        return Err(Error::NoRam);
    }

    Ok(Info {
        addr,
        command_line,
        modules,
        ram,
        end_of_boot_data: end,
    })
}

/// The entries of a multiboot memory map: `{size: u32, base: u64, length: u64,
/// type: u32}`, packed, where `size` does not count itself and may exceed 20.
fn map_entries(map: &[u8]) -> Result<Vec<MapEntry>, Error> {
    let mut entries = Vec::new();
    let mut offset = 0;
    while offset < map.len() {
        let bad = Error::BadMemoryMap { offset };
        let size = map.get(offset..offset + 4).ok_or(bad)?;
        let size = u32_at(size, 0) as usize;
        if size < MMAP_ENTRY_MIN {
            return Err(bad);
        }
        let next = (offset + 4).checked_add(size).ok_or(bad)?;
        let entry = map.get(offset + 4..next).ok_or(bad)?;
        entries.push(MapEntry {
            base: u64_at(entry, 0),
            length: u64_at(entry, 8),
            kind: u32_at(entry, 16),
        });
        offset = next;
    }
    Ok(entries)
}

fn read<'a>(mem: &impl PhysMemory<'a>, what: &'static str, addr: u64, len: usize) -> Result<&'a [u8], Error> {
    mem.read(addr, len).ok_or(Error::Truncated { what, addr })
}

/// The NUL-terminated string at `addr`, without its NUL.
fn c_str<'a>(mem: &impl PhysMemory<'a>, what: &'static str, addr: u64) -> Result<&'a [u8], Error> {
    for len in 0..MAX_STRING {
        // Byte by byte: the string may end just before unreadable memory.
        let byte = addr
            .checked_add(len as u64)
            .and_then(|at| mem.read(at, 1))
            .ok_or(Error::Truncated { what, addr })?;
        if byte[0] == 0 {
            return read(mem, what, addr, len);
        }
    }
    Err(Error::Unterminated { what, addr })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phys::SliceMemory;
    use crate::test_util::{MemoryImage, MultibootBuilder, entry};

    // Where QEMU 7.2 puts them for pvbench's loader.
    const INFO: u64 = 0x9500;
    const MODULE: Module = Module {
        start: 0x18_d000,
        end: 0x38_3c48,
    };

    fn region(start: u64, end: u64) -> Region {
        Region { start, end }
    }

    /// A multiboot structure laid out as QEMU does: info, command line, module
    /// list and name, memory map, in low memory; the module right above the
    /// loader. The memory map is unsorted, with overlapping and reserved entries.
    fn qemu_like() -> MultibootBuilder {
        MultibootBuilder::new(INFO)
            .command_line("loader.elf32 -- mode=hello")
            .module(MODULE.start, MODULE.end, Some("app.elf"))
            .modules()
            .memory_map(&[
                entry(0x100000, 0x7f00000, 1),
                entry(0xfffc0000, 0x40000, 2),
                entry(0, 0x9fc00, 1),
                entry(0x9fc00, 0x400, 2),
                // Overlaps the RAM at 1 MiB and extends it.
                entry(0x4000000, 0x8000000, 1),
                // Reserved inside RAM.
                entry(0x7000000, 0x100000, 2),
                entry(0x1_0000_0000, 0x4000_0000, 1),
                entry(0x2_0000_0000, 0, 1),
            ])
    }

    #[test]
    fn parses_command_line_module_and_ram() {
        let image = qemu_like().build();
        let info = parse(INFO, &image.memory()).unwrap();
        assert_eq!(info.addr.get(), INFO);
        assert_eq!(info.command_line, Some("loader.elf32 -- mode=hello"));
        assert_eq!(info.modules, [MODULE]);
        assert_eq!(
            info.ram,
            [
                region(0, 0x9fc00),
                region(0x100000, 0x7000000),
                region(0x7100000, 0xc000000),
                region(0x1_0000_0000, 0x1_4000_0000),
            ]
        );
        // The module is the highest thing QEMU placed.
        assert_eq!(info.end_of_boot_data, MODULE.end);
    }

    #[test]
    fn end_of_boot_data_covers_every_structure() {
        let map = [entry(0, 0x9fc00, 1)];
        // The module (below the structure here) does not decide, whatever is
        // laid out last does, through its last byte (a string's NUL included).
        let low_module = |b: MultibootBuilder| b.module(0x1000, 0x2000, Some("name"));
        let layouts = [
            // Memory map last.
            low_module(MultibootBuilder::new(INFO).command_line("x"))
                .modules()
                .memory_map(&map),
            // Command line last.
            low_module(MultibootBuilder::new(INFO))
                .modules()
                .memory_map(&map)
                .command_line("a longer command line"),
            // Module name last.
            low_module(MultibootBuilder::new(INFO))
                .memory_map(&map)
                .command_line("x")
                .modules(),
            // Module list last (a module without a name).
            MultibootBuilder::new(INFO)
                .memory_map(&map)
                .module(0x1000, 0x2000, None)
                .modules(),
        ];
        for builder in layouts {
            let image = builder.build();
            let info = parse(INFO, &image.memory()).unwrap();
            assert_eq!(info.end_of_boot_data, image.end());
        }
    }

    #[test]
    fn entry_size_field_sets_the_stride() {
        // Entries may be longer than 20 bytes: `size` says how long.
        let image = MultibootBuilder::new(INFO)
            .memory_map_padded(&[entry(0x100000, 0x100000, 1), entry(0x300000, 0x100000, 1)], 8)
            .build();
        let info = parse(INFO, &image.memory()).unwrap();
        assert_eq!(info.ram, [region(0x100000, 0x200000), region(0x300000, 0x400000)]);
    }

    #[test]
    fn absent_fields_are_absent() {
        let image = qemu_like().clear_flags(FLAG_CMDLINE | FLAG_MODS).build();
        let info = parse(INFO, &image.memory()).unwrap();
        assert_eq!(info.command_line, None);
        assert_eq!(info.modules, []);
        // A command line that is not UTF-8 is no command line either.
        let image = MultibootBuilder::new(INFO)
            .command_line_bytes(b"\xff\xfe")
            .memory_map(&[entry(0, 0x9fc00, 1)])
            .build();
        assert_eq!(parse(INFO, &image.memory()).unwrap().command_line, None);
    }

    #[test]
    fn module_bytes_are_its_range() {
        let mut bytes = vec![0u8; 0x100];
        bytes[0x10..0x20].copy_from_slice(&[7; 0x10]);
        let mem = SliceMemory::new(0x5000, &bytes);
        let module = Module {
            start: 0x5010,
            end: 0x5020,
        };
        assert_eq!(module.bytes(&mem), Ok(&[7u8; 0x10][..]));
        let outside = Module {
            start: 0x5010,
            end: 0x5200,
        };
        assert_eq!(
            outside.bytes(&mem),
            Err(Error::Truncated {
                what: "module",
                addr: 0x5010
            })
        );
    }

    #[test]
    fn missing_memory_map_is_an_error() {
        let image = qemu_like().clear_flags(FLAG_MMAP).build();
        assert_eq!(parse(INFO, &image.memory()), Err(Error::NoMemoryMap));
    }

    #[test]
    fn zero_memory_is_an_error() {
        let maps: [&[_]; 3] = [
            // Only an empty RAM entry.
            &[entry(0, 0, 1), entry(0x100000, 0x100000, 2)],
            // RAM that is all reserved.
            &[entry(0x100000, 0x100000, 1), entry(0, 0x400000, 2)],
            // No entries.
            &[],
        ];
        for map in maps {
            let image = MultibootBuilder::new(INFO).memory_map(map).build();
            assert_eq!(parse(INFO, &image.memory()), Err(Error::NoRam), "{map:x?}");
        }
    }

    #[test]
    fn truncated_input_is_an_error() {
        let image = qemu_like().build();
        let bytes = image.bytes();
        let cut = |len: usize| SliceMemory::new(INFO, &bytes[..len]);
        let truncated = |what| move |result: Result<Info<'_>, Error>| matches!(result, Err(Error::Truncated { what: w, .. }) if w == what);
        assert_eq!(
            parse(INFO, &cut(INFO_LEN - 1)),
            Err(Error::Truncated {
                what: "information",
                addr: INFO
            })
        );
        // Inside the command line (right after the structure).
        assert!(truncated("command line")(parse(INFO, &cut(INFO_LEN + 3))));
        // All but the memory map's last byte.
        assert!(truncated("memory map")(parse(INFO, &cut(bytes.len() - 1))));
        assert_eq!(parse(0, &image.memory()), Err(Error::NoInfo));
    }

    #[test]
    fn bad_pointers_and_lengths_are_errors() {
        let far = 0xdead_0000;
        let image = qemu_like().build().with_field(CMDLINE, far);
        assert_eq!(
            parse(INFO, &image.memory()),
            Err(Error::Truncated {
                what: "command line",
                addr: far.into()
            })
        );
        // A count whose list would not even fit the address space.
        let image = qemu_like().build().with_field(MODS_COUNT, u32::MAX);
        assert!(matches!(
            parse(INFO, &image.memory()),
            Err(Error::Truncated {
                what: "module list",
                ..
            })
        ));
        let image = qemu_like().build().with_field(MMAP_LENGTH, u32::MAX);
        assert!(matches!(
            parse(INFO, &image.memory()),
            Err(Error::Truncated {
                what: "memory map",
                ..
            })
        ));
        let image = MultibootBuilder::new(INFO)
            .module(0x20_0000, 0x21_0000, None)
            .module(0x30_0000, 0x2f_0000, None)
            .modules()
            .memory_map(&[entry(0, 0x9fc00, 1)])
            .build();
        assert_eq!(parse(INFO, &image.memory()), Err(Error::BadModule { index: 1 }));
    }

    #[test]
    fn malformed_memory_map_entries_are_errors() {
        // An entry whose `size` is too small to hold an entry.
        let mut map = Vec::new();
        map.extend_from_slice(&12u32.to_le_bytes());
        map.extend_from_slice(&[0; 20]);
        let image = MultibootBuilder::new(INFO).memory_map_raw(&map).build();
        assert_eq!(
            parse(INFO, &image.memory()),
            Err(Error::BadMemoryMap { offset: 0 })
        );
        // A map whose length ends inside its second entry.
        let image = MultibootBuilder::new(INFO)
            .memory_map(&[entry(0, 0x9fc00, 1), entry(0x100000, 0x100000, 1)])
            .build()
            .with_field(MMAP_LENGTH, 24 + 10);
        assert_eq!(
            parse(INFO, &image.memory()),
            Err(Error::BadMemoryMap { offset: 24 })
        );
    }

    #[test]
    fn unterminated_string_is_an_error() {
        let cmdline = INFO + INFO_LEN as u64;
        let mut bytes = vec![b'x'; INFO_LEN + MAX_STRING + 16];
        bytes[..INFO_LEN].fill(0);
        let image = MemoryImage::new(INFO, bytes)
            .with_field(0, FLAG_CMDLINE | FLAG_MMAP)
            .with_field(CMDLINE, cmdline as u32);
        assert_eq!(
            parse(INFO, &image.memory()),
            Err(Error::Unterminated {
                what: "command line",
                addr: cmdline
            })
        );
    }

    /// Every prefix and every single-byte corruption of a valid structure parses
    /// or fails, without panicking.
    #[test]
    fn no_input_panics() {
        let image = qemu_like().build();
        let bytes = image.bytes();
        for len in 0..bytes.len() {
            let _ = parse(INFO, &SliceMemory::new(INFO, &bytes[..len]));
        }
        let mut corrupt = bytes.to_vec();
        for at in 0..bytes.len() {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                corrupt[at] = value;
                let _ = parse(INFO, &SliceMemory::new(INFO, &corrupt));
            }
            corrupt[at] = bytes[at];
        }
    }
}
