//! The pure parts of pvbench's multiboot loader (`unikernel/loader`).
//!
//! Everything here works on values and slices, never on raw pointers: physical
//! memory is read through [`phys::PhysMemory`], which the loader implements over
//! identity-mapped RAM and the tests over a byte slice. The loader binary keeps
//! what cannot run on a host: the 32-bit entry, loading CR3, writing the
//! application into RAM and jumping to it.
//!
//! - [`multiboot`]: the multiboot (v1) information structure, parsed into data.
//! - [`memmap`]: the usable RAM, from the BIOS memory map.
//! - [`paging`]: the identity-mapping page tables the kernel inherits.
//! - [`devtree`]: the device tree the kernel reads RAM, bootargs and the ACPI
//!   RSDP from, and the search for the RSDP.
//! - [`place`]: where the application goes.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod devtree;
pub mod memmap;
pub mod multiboot;
pub mod paging;
pub mod phys;
pub mod place;

/// 2 MiB: a large page, and the granule of the loader's layout.
pub const MIB2: u64 = 2 << 20;

#[cfg(test)]
mod test_util;
