//! The device tree Hermit 0.11 reads its memory map (and the ACPI RSDP) from,
//! and the search for the RSDP.

use alloc::format;
use alloc::vec::Vec;
use core::ops::Range;

pub use vm_fdt::Error;
use vm_fdt::FdtWriter;

use crate::memmap::Region;
use crate::phys::{PhysMemory, u16_at};

/// The length of an ACPI 1.0 RSDP, which its checksum covers.
const RSDP_V1_LEN: usize = 20;
/// The length the kernel is told: the ACPI 2.0 RSDP's.
const RSDP_V2_LEN: u64 = 36;
/// The BIOS data area word holding the EBDA's segment.
const EBDA_SEGMENT_PTR: u64 = 0x40e;

/// Builds the FDT. One `/memory@…` node per RAM region, because the kernel reads
/// only the first `reg` entry of each.
pub fn build(ram: &[Region], rsdp: Option<u64>, bootargs: Option<&str>) -> Result<Vec<u8>, Error> {
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", "pvbench,multiboot")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;

    for region in ram {
        let node = fdt.begin_node(&format!("memory@{:x}", region.start))?;
        fdt.property_string("device_type", "memory")?;
        fdt.property_array_u64("reg", &[region.start, region.end - region.start])?;
        fdt.end_node(node)?;
    }

    let chosen = fdt.begin_node("chosen")?;
    if let Some(bootargs) = bootargs {
        fdt.property_string("bootargs", bootargs)?;
    }
    fdt.end_node(chosen)?;

    // Given the RSDP, the kernel does not scan the BIOS area for it, a scan that
    // would identity-map single 4 KiB pages over ours.
    if let Some(rsdp) = rsdp {
        let node = fdt.begin_node(&format!("hermit,rsdp@{rsdp:x}"))?;
        fdt.property_array_u64("reg", &[rsdp, RSDP_V2_LEN])?;
        fdt.end_node(node)?;
    }

    fdt.end_node(root)?;
    fdt.finish()
}

/// Finds the ACPI RSDP where the BIOS puts it: the first KiB of the EBDA, or
/// 0xE0000..0x100000, on 16-byte boundaries, with a valid checksum.
pub fn find_rsdp<'a>(mem: &impl PhysMemory<'a>) -> Option<u64> {
    let ebda = mem
        .read(EBDA_SEGMENT_PTR, 2)
        .map_or(0, |word| u64::from(u16_at(word, 0)) << 4);
    let ebda_window = (ebda > 0x400).then_some(ebda..ebda + 1024);
    ebda_window
        .into_iter()
        .chain(core::iter::once(0xE0000..0x100000))
        .find_map(|range: Range<u64>| {
            range
                .step_by(16)
                .find(|&addr| mem.read(addr, RSDP_V1_LEN).is_some_and(is_rsdp))
        })
}

/// Whether `bytes` (an ACPI 1.0 RSDP's 20) start with the RSDP signature and
/// sum to 0.
fn is_rsdp(bytes: &[u8]) -> bool {
    &bytes[..8] == b"RSD PTR " && bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)) == 0
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use fdt::Fdt;

    use super::*;
    use crate::phys::SliceMemory;

    const RAM: [Region; 3] = [
        Region {
            start: 0,
            end: 0x9fc00,
        },
        Region {
            start: 0x100000,
            end: 0x1ffe_0000,
        },
        Region {
            start: 0x1_0000_0000,
            end: 0x1_4000_0000,
        },
    ];
    const RSDP: u64 = 0xf5a40;

    /// What Hermit 0.11 reads, read the way it reads it (`fdt` 0.1.5;
    /// `arch/x86_64/mm/physicalmem.rs` and `env.rs`): the first `reg` entry of
    /// each `/memory` node, `/chosen`'s bootargs, `/hermit,rsdp`'s address, and
    /// whether the root is `hermit,uefi`.
    struct KernelView {
        memory: Vec<(u64, u64)>,
        bootargs: Option<String>,
        rsdp: Option<u64>,
        uefi: bool,
    }

    fn kernel_view(blob: &[u8]) -> KernelView {
        let fdt = Fdt::new(blob).expect("a valid FDT");
        let memory = fdt
            .find_all_nodes("/memory")
            .map(|m| {
                let reg = m.reg().unwrap().next().unwrap();
                (reg.starting_address as u64, reg.size.unwrap() as u64)
            })
            .collect();
        // `chosen()` panics without /chosen: the kernel calls it unconditionally.
        let bootargs = fdt.chosen().bootargs().map(String::from);
        let rsdp = fdt
            .find_node("/hermit,rsdp")
            .and_then(|n| n.reg()?.next())
            .map(|r| r.starting_address as u64);
        let uefi = fdt.root().compatible().first() == "hermit,uefi";
        KernelView {
            memory,
            bootargs,
            rsdp,
            uefi,
        }
    }

    #[test]
    fn kernel_reads_memory_bootargs_and_rsdp() {
        let blob = build(&RAM, Some(RSDP), Some("-- mode=hello workload=kernbench")).unwrap();
        let view = kernel_view(&blob);
        assert_eq!(
            view.memory,
            [
                (0, 0x9fc00),
                (0x100000, 0x1fee_0000),
                (0x1_0000_0000, 0x4000_0000)
            ]
        );
        assert_eq!(view.bootargs.as_deref(), Some("-- mode=hello workload=kernbench"));
        assert_eq!(view.rsdp, Some(RSDP));
        assert!(!view.uefi);

        let fdt = Fdt::new(&blob).unwrap();
        let rsdp = fdt.find_node("/hermit,rsdp").unwrap();
        assert_eq!(rsdp.reg().unwrap().next().unwrap().size, Some(36));
        for node in fdt.find_all_nodes("/memory") {
            assert_eq!(node.property("device_type").unwrap().as_str(), Some("memory"));
        }
    }

    #[test]
    fn without_rsdp_or_bootargs_the_nodes_are_absent_but_chosen_exists() {
        let blob = build(&RAM[1..2], None, None).unwrap();
        let view = kernel_view(&blob);
        assert_eq!(view.memory, [(0x100000, 0x1fee_0000)]);
        assert_eq!(view.bootargs, None);
        assert_eq!(view.rsdp, None);
        let fdt = Fdt::new(&blob).unwrap();
        assert!(fdt.find_node("/chosen").is_some());
    }

    /// The tree for a 512 MiB guest, byte for byte as the loader built it before
    /// it was split into this crate.
    #[test]
    fn bytes_are_unchanged() {
        let blob = build(&RAM[..2], Some(RSDP), Some("-- mode=hello")).unwrap();
        assert_eq!(blob, include_bytes!("../tests/golden/devtree-512m.dtb"));
    }

    /// An RSDP with a valid checksum at `addr` in a zeroed image of the first MiB.
    fn bios_with_rsdp(ebda_segment: u16, addr: Option<usize>) -> Vec<u8> {
        let mut low = vec![0u8; 0x100000];
        low[EBDA_SEGMENT_PTR as usize..][..2].copy_from_slice(&ebda_segment.to_le_bytes());
        if let Some(addr) = addr {
            let rsdp = &mut low[addr..addr + RSDP_V1_LEN];
            rsdp[..8].copy_from_slice(b"RSD PTR ");
            rsdp[9..15].copy_from_slice(b"BOCHS ");
            let sum = rsdp.iter().fold(0u8, |s, b| s.wrapping_add(*b));
            rsdp[8] = 0u8.wrapping_sub(sum);
        }
        low
    }

    #[test]
    fn finds_rsdp_in_bios_area_and_ebda() {
        // The BIOS area, as under QEMU/SeaBIOS. The memory view starts at 1:
        // the loader's cannot read address 0.
        let low = bios_with_rsdp(0x9fc0, Some(0xf5a40));
        assert_eq!(find_rsdp(&SliceMemory::new(1, &low[1..])), Some(0xf5a40));
        // The EBDA's first KiB is searched first.
        let mut low = bios_with_rsdp(0x9fc0, Some(0x9fc10));
        low.copy_within(0x9fc10..0x9fc10 + RSDP_V1_LEN, 0xf5a40);
        assert_eq!(find_rsdp(&SliceMemory::new(1, &low[1..])), Some(0x9fc10));
    }

    #[test]
    fn rejects_bad_checksum_misalignment_and_absence() {
        let mut low = bios_with_rsdp(0, Some(0xf5a40));
        low[0xf5a40 + 8] ^= 1;
        assert_eq!(find_rsdp(&SliceMemory::new(1, &low[1..])), None);
        // Off a 16-byte boundary.
        let low = bios_with_rsdp(0, Some(0xf5a48));
        assert_eq!(find_rsdp(&SliceMemory::new(1, &low[1..])), None);
        // Past the EBDA's first KiB.
        let low = bios_with_rsdp(0x9fc0, Some(0x9fc00 + 1024));
        assert_eq!(find_rsdp(&SliceMemory::new(1, &low[1..])), None);
        // Nothing readable at all.
        assert_eq!(find_rsdp(&SliceMemory::new(0x20_0000, &[0; 64])), None);
    }
}
