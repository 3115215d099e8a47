//! The device tree Hermit 0.11 reads its memory map (and the ACPI RSDP) from.

use alloc::format;
use alloc::vec::Vec;

use vm_fdt::FdtWriter;

use crate::multiboot::Region;

/// Builds the FDT. One `/memory@…` node per RAM region, because the kernel reads
/// only the first `reg` entry of each.
pub fn build(
    ram: impl Iterator<Item = Region>,
    rsdp: Option<u64>,
    bootargs: Option<&str>,
) -> Result<Vec<u8>, vm_fdt::Error> {
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
        fdt.property_array_u64("reg", &[rsdp, 36])?;
        fdt.end_node(node)?;
    }

    fdt.end_node(root)?;
    fdt.finish()
}

/// Finds the ACPI RSDP where the BIOS puts it: the first KiB of the EBDA, or
/// 0xE0000..0x100000, on 16-byte boundaries, with a valid checksum.
pub fn find_rsdp() -> Option<u64> {
    // SAFETY: the BIOS data area word at 0x40E holds the EBDA segment. Called
    // before `paging::install`, while the boot tables still map page 0.
    let ebda = u64::from(unsafe { core::ptr::read_volatile(0x40e as *const u16) }) << 4;
    let ebda_window = (ebda > 0x400).then_some(ebda..ebda + 1024);
    ebda_window
        .into_iter()
        .chain(core::iter::once(0xE0000..0x100000))
        .find_map(|range| {
            range.step_by(16).find(|&addr| {
                // SAFETY: BIOS areas below 1 MiB, identity-mapped while we search.
                let bytes = unsafe { core::slice::from_raw_parts(addr as *const u8, 20) };
                &bytes[..8] == b"RSD PTR " && bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)) == 0
            })
        })
}
