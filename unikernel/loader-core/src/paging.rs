//! The identity-mapping page tables the kernel inherits.
//!
//! Hermit 0.11 walks its page tables through their physical addresses and
//! identity-maps RAM itself in 2 MiB frames, accepting frames that are already
//! mapped to themselves. So: RAM above 2 MiB is mapped with 2 MiB pages (the same
//! size, never 1 GiB pages: the kernel cannot split those), and the first 2 MiB
//! with 4 KiB pages, because the kernel maps single 4 KiB pages there (the SMP
//! trampoline at 0x8000). Page 0 stays unmapped to catch null pointers.
//!
//! [`Tables`] is plain data: filling it is safe, installing it (CR3) is the
//! loader's job.

use x86_64::PhysAddr;
use x86_64::structures::paging::{PageTable, PageTableFlags as Flags, PhysFrame};

use crate::MIB2;
use crate::memmap::Region;

/// RAM is identity-mapped up to this many GiB; the rest is not offered to the kernel.
pub const MAX_GIB: usize = 16;

const KIB4: u64 = 4096;
const GIB: u64 = 1 << 30;

/// Highest address the tables can map.
pub const LIMIT: u64 = MAX_GIB as u64 * GIB;

/// A PML4, one PDPT, one page directory per GiB below [`LIMIT`] and the page
/// table for the first 2 MiB.
///
/// The tables point to each other by their addresses, so they must be used
/// where they are filled, in identity-mapped memory.
#[repr(C, align(4096))]
pub struct Tables {
    pml4: PageTable,
    pdpt: PageTable,
    pt_low: PageTable,
    pd: [PageTable; MAX_GIB],
}

impl Default for Tables {
    fn default() -> Self {
        Self::new()
    }
}

impl Tables {
    /// Empty tables, for a `static`.
    pub const fn new() -> Self {
        Self {
            pml4: PageTable::new(),
            pdpt: PageTable::new(),
            pt_low: PageTable::new(),
            pd: [const { PageTable::new() }; MAX_GIB],
        }
    }

    /// Fills empty tables to identity-map the first 2 MiB (but page 0) with
    /// 4 KiB pages and every 2 MiB frame that touches `ram` below [`LIMIT`] with
    /// a 2 MiB page, and returns the frame to load into CR3.
    pub fn identity_map(&mut self, ram: &[Region]) -> PhysFrame {
        let rw = Flags::PRESENT | Flags::WRITABLE;

        for (i, entry) in self.pt_low.iter_mut().enumerate().skip(1) {
            entry.set_addr(PhysAddr::new(i as u64 * KIB4), rw);
        }
        self.pd[0][0].set_addr(table_addr(&self.pt_low), rw);

        for region in ram {
            // Whole 2 MiB frames that touch the region; the first 2 MiB are done above.
            let start = region.start.max(MIB2) / MIB2 * MIB2;
            let end = region.end.min(LIMIT);
            let mut frame = start;
            while frame < end {
                let gib = (frame / GIB) as usize;
                let index = ((frame % GIB) / MIB2) as usize;
                self.pd[gib][index].set_addr(PhysAddr::new(frame), rw | Flags::HUGE_PAGE);
                frame += MIB2;
            }
        }

        for gib in 0..MAX_GIB {
            let pd_addr = table_addr(&self.pd[gib]);
            self.pdpt[gib].set_addr(pd_addr, rw);
        }
        let pdpt_addr = table_addr(&self.pdpt);
        self.pml4[0].set_addr(pdpt_addr, rw);

        PhysFrame::containing_address(table_addr(&self.pml4))
    }
}

/// A table's physical address: its address, as the loader runs identity-mapped.
fn table_addr(table: &PageTable) -> PhysAddr {
    PhysAddr::new(table as *const PageTable as u64)
}

#[cfg(test)]
mod tests {
    use alloc::boxed::Box;
    use alloc::vec::Vec;

    use super::*;

    /// A 4 KiB, 2 MiB or 1 GiB page.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Size {
        K4,
        M2,
        G1,
    }

    /// What the MMU does: the physical address and page size `addr` maps to.
    /// The tables' "physical" addresses are their host addresses here.
    fn translate(tables: &Tables, addr: u64) -> Option<(u64, Size, Flags)> {
        let all = core::iter::once(&tables.pml4)
            .chain([&tables.pdpt, &tables.pt_low])
            .chain(&tables.pd);
        let table_at = |phys: PhysAddr| {
            all.clone()
                .find(|t| table_addr(t) == phys)
                .unwrap_or_else(|| panic!("an entry points to {phys:?}, not to a table"))
        };
        let index = |level: u32| ((addr >> (12 + 9 * level)) & 511) as usize;

        let e4 = &tables.pml4[index(3)];
        if !e4.flags().contains(Flags::PRESENT) {
            return None;
        }
        assert!(
            !e4.flags().contains(Flags::HUGE_PAGE),
            "PML4 entries cannot be pages"
        );
        let e3 = &table_at(e4.addr())[index(2)];
        if !e3.flags().contains(Flags::PRESENT) {
            return None;
        }
        if e3.flags().contains(Flags::HUGE_PAGE) {
            return Some((e3.addr().as_u64() + addr % GIB, Size::G1, e3.flags()));
        }
        let e2 = &table_at(e3.addr())[index(1)];
        if !e2.flags().contains(Flags::PRESENT) {
            return None;
        }
        if e2.flags().contains(Flags::HUGE_PAGE) {
            return Some((e2.addr().as_u64() + addr % MIB2, Size::M2, e2.flags()));
        }
        let e1 = &table_at(e2.addr())[index(0)];
        if !e1.flags().contains(Flags::PRESENT) {
            return None;
        }
        Some((e1.addr().as_u64() + addr % KIB4, Size::K4, e1.flags()))
    }

    fn region(start: u64, end: u64) -> Region {
        Region { start, end }
    }

    /// RAM as QEMU reports it for a big guest: low RAM, RAM up to the PCI hole,
    /// RAM above 4 GiB past the limit; and an unaligned region in a hole.
    fn big_guest() -> Vec<Region> {
        alloc::vec![
            region(0, 0x9fc00),
            region(0x100000, 0xc000_0000),
            region(0xe012_3000, 0xe050_0000),
            region(0x1_0000_0000, 0x4_4000_0000),
        ]
    }

    fn mapped(ram: &[Region]) -> Box<Tables> {
        let mut tables = Box::new(Tables::new());
        let root = tables.identity_map(ram);
        assert_eq!(root.start_address(), table_addr(&tables.pml4));
        tables
    }

    #[test]
    fn never_a_1gib_page() {
        // All RAM, in whole GiBs: where 1 GiB pages would be tempting.
        let tables = mapped(&[region(0, LIMIT)]);
        for entry in tables.pml4.iter().chain(tables.pdpt.iter()) {
            assert!(!entry.flags().contains(Flags::HUGE_PAGE), "{entry:?}");
        }
        for gib in 0..MAX_GIB as u64 {
            let addr = gib * GIB + 0x1234;
            let size = translate(&tables, addr).map(|(_, size, _)| size);
            assert_ne!(size, Some(Size::G1), "at {addr:#x}");
        }
    }

    #[test]
    fn first_2mib_in_4kib_pages_but_page_0() {
        for ram in [big_guest(), alloc::vec![region(0x100000, 0x800_0000)]] {
            let tables = mapped(&ram);
            assert_eq!(translate(&tables, 0), None);
            assert_eq!(translate(&tables, 0xfff), None);
            for page in 1..512 {
                let addr = page * KIB4 + 0x10;
                let (phys, size, flags) = translate(&tables, addr).expect("mapped");
                assert_eq!((phys, size), (addr, Size::K4), "at {addr:#x}");
                assert_eq!(flags, Flags::PRESENT | Flags::WRITABLE);
            }
        }
    }

    /// Every 2 MiB frame above the first is mapped, to itself, with a 2 MiB
    /// page, writable and executable, exactly when it touches RAM below the
    /// limit; nothing at or above the limit is mapped.
    #[test]
    fn maps_all_ram_and_nothing_else() {
        let ram = big_guest();
        let tables = mapped(&ram);
        for frame in (MIB2..LIMIT).step_by(MIB2 as usize) {
            let touches_ram = ram.iter().any(|r| r.start < frame + MIB2 && frame < r.end);
            for addr in [frame, frame + MIB2 - 1] {
                match translate(&tables, addr) {
                    Some((phys, size, flags)) => {
                        assert!(touches_ram, "{addr:#x} is mapped but is not RAM");
                        assert_eq!((phys, size), (addr, Size::M2), "at {addr:#x}");
                        assert_eq!(flags, Flags::PRESENT | Flags::WRITABLE | Flags::HUGE_PAGE);
                    }
                    None => assert!(!touches_ram, "RAM at {addr:#x} is not mapped"),
                }
            }
        }
        for addr in [LIMIT, LIMIT + MIB2, 0x4_3fff_ffff, 1 << 39, u64::MAX] {
            assert_eq!(translate(&tables, addr), None, "at {addr:#x}");
        }
    }

    #[test]
    fn small_guest_maps_only_its_ram() {
        // -m 64, the probe's guest: RAM ends at 64 MiB - 128 KiB.
        let ram = [region(0, 0x9fc00), region(0x100000, 0x3fe_0000)];
        let tables = mapped(&ram);
        assert!(translate(&tables, 0x3ff_ffff).is_some());
        assert_eq!(translate(&tables, 0x400_0000), None);
        assert_eq!(translate(&tables, GIB), None);
    }
}
