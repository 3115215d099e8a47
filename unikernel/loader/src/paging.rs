//! The identity-mapped page tables the kernel inherits.
//!
//! Hermit 0.11 walks its page tables through their physical addresses and
//! identity-maps RAM itself in 2 MiB frames, accepting frames that are already
//! mapped to themselves. So: RAM above 2 MiB is mapped with 2 MiB pages (the same
//! size, never 1 GiB pages: the kernel cannot split those), and the first 2 MiB
//! with 4 KiB pages, because the kernel maps single 4 KiB pages there (the SMP
//! trampoline at 0x8000). Page 0 stays unmapped to catch null pointers.

use x86_64::PhysAddr;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::{PageTable, PageTableFlags as Flags, PhysFrame};

use crate::multiboot::Region;

/// RAM is identity-mapped up to this many GiB; the rest is not offered to the kernel.
pub const MAX_GIB: usize = 16;

const KIB4: u64 = 4096;
const MIB2: u64 = 2 << 20;
const GIB: u64 = 1 << 30;

#[repr(C, align(4096))]
struct Tables {
    pml4: PageTable,
    pdpt: PageTable,
    pt_low: PageTable,
    pd: [PageTable; MAX_GIB],
}

static mut TABLES: Tables = Tables {
    pml4: PageTable::new(),
    pdpt: PageTable::new(),
    pt_low: PageTable::new(),
    pd: [const { PageTable::new() }; MAX_GIB],
};

/// Highest address the tables can map.
pub const LIMIT: u64 = MAX_GIB as u64 * GIB;

/// Builds the final tables for `ram` and switches to them.
///
/// # Safety
/// Must run once, on the boot CPU, while the boot tables map the loader; `ram` must
/// include every byte the loader still uses above 2 MiB.
pub unsafe fn install(ram: impl Iterator<Item = Region>) {
    // SAFETY: single-threaded early boot; nothing else references TABLES.
    let tables = unsafe { &mut *(&raw mut TABLES) };
    let table_addr = |table: &PageTable| PhysAddr::new(table as *const PageTable as u64);
    let rw = Flags::PRESENT | Flags::WRITABLE;

    for (i, entry) in tables.pt_low.iter_mut().enumerate().skip(1) {
        entry.set_addr(PhysAddr::new(i as u64 * KIB4), rw);
    }
    tables.pd[0][0].set_addr(table_addr(&tables.pt_low), rw);

    for region in ram {
        // Whole 2 MiB frames that touch the region; the first 2 MiB are done above.
        let start = region.start.max(MIB2) / MIB2 * MIB2;
        let end = region.end.min(LIMIT);
        let mut frame = start;
        while frame < end {
            let gib = (frame / GIB) as usize;
            let index = ((frame % GIB) / MIB2) as usize;
            tables.pd[gib][index].set_addr(PhysAddr::new(frame), rw | Flags::HUGE_PAGE);
            frame += MIB2;
        }
    }

    for gib in 0..MAX_GIB {
        let pd_addr = table_addr(&tables.pd[gib]);
        tables.pdpt[gib].set_addr(pd_addr, rw);
    }
    let pdpt_addr = table_addr(&tables.pdpt);
    tables.pml4[0].set_addr(pdpt_addr, rw);

    let pml4 = PhysFrame::containing_address(table_addr(&tables.pml4));
    // SAFETY: the new tables map the loader (first 2 MiB) and all RAM it uses.
    unsafe { Cr3::write(pml4, Cr3Flags::empty()) };
}
