//! The RAM the kernel may use, from the BIOS memory map.

use alloc::vec::Vec;

/// The memory-map type of usable RAM (multiboot's and E820's `1`).
pub const AVAILABLE: u32 = 1;

/// One entry of the BIOS memory map, as the firmware reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapEntry {
    /// Physical start address.
    pub base: u64,
    /// Length in bytes.
    pub length: u64,
    /// [`AVAILABLE`] for RAM; anything else is reserved.
    pub kind: u32,
}

/// A range of physical memory, `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Region {
    fn of(entry: &MapEntry) -> Self {
        Self {
            start: entry.base,
            end: entry.base.saturating_add(entry.length),
        }
    }
}

/// Usable RAM: the available entries, sorted, with overlapping or touching ones
/// merged and every other entry cut out of them.
///
/// The kernel puts each region it is given on its free list, so an overlap would
/// hand the same frames out twice; where RAM and a reserved entry overlap the
/// reserved one wins, as in Linux's E820 sanitizing. QEMU's maps are already
/// sorted and disjoint, and come out unchanged.
pub fn usable_ram(entries: &[MapEntry]) -> Vec<Region> {
    let mut available: Vec<Region> = entries
        .iter()
        .filter(|e| e.kind == AVAILABLE && e.length > 0)
        .map(Region::of)
        .collect();
    available.sort_unstable_by_key(|r| r.start);

    let mut ram: Vec<Region> = Vec::with_capacity(available.len());
    for region in available {
        match ram.last_mut() {
            Some(last) if region.start <= last.end => last.end = last.end.max(region.end),
            _ => ram.push(region),
        }
    }

    for hole in entries
        .iter()
        .filter(|e| e.kind != AVAILABLE && e.length > 0)
        .map(Region::of)
    {
        ram = ram
            .into_iter()
            .flat_map(|r| {
                let below = Region {
                    start: r.start,
                    end: r.end.min(hole.start),
                };
                let above = Region {
                    start: r.start.max(hole.end),
                    end: r.end,
                };
                [below, above]
            })
            .filter(|r| r.start < r.end)
            .collect();
    }
    ram
}

/// `ram` cut off at `limit`: what the loader's page tables can map.
pub fn clip(ram: &[Region], limit: u64) -> Vec<Region> {
    ram.iter()
        .filter(|r| r.start < limit)
        .map(|r| Region {
            start: r.start,
            end: r.end.min(limit),
        })
        .collect()
}

/// The end of the highest region of `ram`, 0 if there is none.
pub fn end(ram: &[Region]) -> u64 {
    ram.iter().map(|r| r.end).max().unwrap_or(0)
}

/// Whether `start..end` (not empty) lies inside one region of `ram`.
pub fn covers(ram: &[Region], start: u64, end: u64) -> bool {
    start < end && ram.iter().any(|r| r.start <= start && end <= r.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ram(start: u64, end: u64) -> MapEntry {
        MapEntry {
            base: start,
            length: end - start,
            kind: AVAILABLE,
        }
    }

    fn reserved(start: u64, end: u64, kind: u32) -> MapEntry {
        MapEntry {
            base: start,
            length: end - start,
            kind,
        }
    }

    fn region(start: u64, end: u64) -> Region {
        Region { start, end }
    }

    #[test]
    fn qemu_map_comes_out_unchanged() {
        // QEMU 7.2 with SeaBIOS, -m 512M (`pvbench boot`'s default), as the
        // loader read it.
        let entries = [
            ram(0, 0x9fc00),
            reserved(0x9fc00, 0xa0000, 2),
            reserved(0xf0000, 0x100000, 2),
            ram(0x100000, 0x1ffe0000),
            reserved(0x1ffe0000, 0x20000000, 2),
            reserved(0xfffc0000, 0x1_0000_0000, 2),
            reserved(0xfd_0000_0000, 0x100_0000_0000, 2),
        ];
        assert_eq!(
            usable_ram(&entries),
            [region(0, 0x9fc00), region(0x100000, 0x1ffe0000)]
        );
    }

    #[test]
    fn unsorted_overlapping_and_reserved_entries_are_sanitized() {
        let entries = [
            ram(0x4000_0000, 0x6000_0000),
            ram(0x100000, 0x800_0000),
            // Overlaps the one above and extends it.
            ram(0x400_0000, 0xc00_0000),
            // Touches the merged region: one region, not two.
            ram(0xc00_0000, 0x1000_0000),
            // Inside RAM: cut out (ACPI reclaimable counts as reserved too).
            reserved(0x700_0000, 0x710_0000, 3),
            // Straddles the end of a region.
            reserved(0x5f00_0000, 0x6100_0000, 2),
            // Covers a region whole.
            ram(0x7000_0000, 0x7100_0000),
            reserved(0x6f00_0000, 0x7200_0000, 4),
            // Empty entries mean nothing, either kind.
            ram(0x8000_0000, 0x8000_0000),
            reserved(0x200000, 0x200000, 2),
        ];
        assert_eq!(
            usable_ram(&entries),
            [
                region(0x100000, 0x700_0000),
                region(0x710_0000, 0x1000_0000),
                region(0x4000_0000, 0x5f00_0000),
            ]
        );
    }

    #[test]
    fn an_entry_reaching_past_the_address_space_ends_at_its_top() {
        let entries = [MapEntry {
            base: 0x1_0000_0000,
            length: u64::MAX,
            kind: AVAILABLE,
        }];
        assert_eq!(usable_ram(&entries), [region(0x1_0000_0000, u64::MAX)]);
    }

    #[test]
    fn clip_end_and_covers() {
        let map = [
            region(0, 0x9fc00),
            region(0x100000, 0xc000_0000),
            region(0x1_0000_0000, 0x5_0000_0000),
            region(0x6_0000_0000, 0x7_0000_0000),
        ];
        let limit = 0x4_0000_0000;
        let clipped = clip(&map, limit);
        assert_eq!(
            clipped,
            [
                region(0, 0x9fc00),
                region(0x100000, 0xc000_0000),
                region(0x1_0000_0000, limit),
            ]
        );
        assert_eq!(end(&clipped), limit);
        assert_eq!(end(&[]), 0);

        assert!(covers(&map, 0x100000, 0xc000_0000));
        assert!(covers(&map, 0x200000, 0x400000));
        // Across the PCI hole, below the first byte, past the last, empty.
        assert!(!covers(&map, 0xbff0_0000, 0x1_0010_0000));
        assert!(!covers(&map, 0xff000, 0x200000));
        assert!(!covers(&map, 0x6_ffff_f000, 0x7_0000_1000));
        assert!(!covers(&map, 0x200000, 0x200000));
    }
}
