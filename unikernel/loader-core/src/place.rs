//! Where the application goes.

use core::fmt;

use crate::MIB2;
use crate::memmap::{self, Region};

/// The application does not fit where it must go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoRoom {
    /// Where it would start.
    pub start: u64,
    /// Its size in memory.
    pub size: u64,
    /// The end of RAM.
    pub ram_end: u64,
}

impl fmt::Display for NoRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { start, size, ram_end } = self;
        write!(
            f,
            "the application needs {size:#x} bytes of free RAM at {start:#x}, but RAM ends at {ram_end:#x} or has a hole there: give the guest more memory (-m)"
        )
    }
}

/// Chooses where to load an application of `size` bytes: at `fixed` if its ELF
/// asks for that address, else at the first 2 MiB boundary above `occupied_end`
/// (the end of the loader and of everything QEMU placed). Either way it must lie
/// above that boundary, inside one region of `ram`.
///
/// Hermit takes its image as whole 2 MiB frames (it aligns its start down and
/// its end up), and hands out the memory above them: nothing the loader placed
/// may share a 2 MiB frame with the application.
pub fn application_start(
    ram: &[Region],
    occupied_end: u64,
    fixed: Option<u64>,
    size: u64,
) -> Result<u64, NoRoom> {
    let free = occupied_end.checked_next_multiple_of(MIB2);
    let start = fixed.or(free).unwrap_or(u64::MAX);
    let no_room = NoRoom {
        start,
        size,
        ram_end: memmap::end(ram),
    };
    let free = free.ok_or(no_room)?;
    let end = start.checked_add(size).ok_or(no_room)?;
    if start < free || !memmap::covers(ram, start, end) {
        return Err(no_room);
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: [Region; 3] = [
        Region {
            start: 0,
            end: 0x9fc00,
        },
        Region {
            start: 0x100000,
            end: 0x800_0000,
        },
        Region {
            start: 0x1000_0000,
            end: 0x2000_0000,
        },
    ];

    #[test]
    fn relocatable_goes_to_the_next_2mib_boundary() {
        assert_eq!(application_start(&RAM, 0x11_2345, None, 0x10_0000), Ok(0x20_0000));
        // Already on a boundary: right there.
        assert_eq!(application_start(&RAM, 0x40_0000, None, 0x10_0000), Ok(0x40_0000));
    }

    #[test]
    fn fixed_address_is_honoured_when_free() {
        assert_eq!(
            application_start(&RAM, 0x11_2345, Some(0x60_0000), 0x1000),
            Ok(0x60_0000)
        );
        assert_eq!(
            application_start(&RAM, 0x11_2345, Some(0x1000_0000), 0x1000_0000),
            Ok(0x1000_0000)
        );
    }

    #[test]
    fn no_room_is_an_error() {
        let err = |start, size| {
            Err(NoRoom {
                start,
                size,
                ram_end: 0x2000_0000,
            })
        };
        // Fixed below the boundary, though above the boot data.
        assert_eq!(
            application_start(&RAM, 0x11_2345, Some(0x18_0000), 0x1000),
            err(0x18_0000, 0x1000)
        );
        // Past the end of RAM.
        assert_eq!(
            application_start(&RAM, 0x11_2345, Some(0x1ff0_0000), 0x20_0000),
            err(0x1ff0_0000, 0x20_0000)
        );
        // Across the hole between two regions.
        assert_eq!(
            application_start(&RAM, 0x11_2345, None, 0x800_0000),
            err(0x20_0000, 0x800_0000)
        );
        // Wrapping around the address space.
        assert_eq!(
            application_start(&RAM, 0x11_2345, Some(0x20_0000), u64::MAX),
            err(0x20_0000, u64::MAX)
        );
        assert!(application_start(&RAM, u64::MAX - 5, None, 1).is_err());
        // No RAM at all.
        assert!(application_start(&[], 0, None, 1).is_err());
    }
}
