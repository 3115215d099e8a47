//! Reading physical memory without trusting the addresses read.
//!
//! The multiboot structure and the BIOS areas are webs of physical addresses. Every
//! read goes through a [`PhysMemory`], which refuses what lies outside the memory
//! it covers, so a corrupt address becomes an error instead of a wild read.

/// Physical memory the loader may read.
pub trait PhysMemory<'a> {
    /// The `len` bytes at physical address `addr`, or `None` if any of them is
    /// outside this view.
    fn read(&self, addr: u64, len: usize) -> Option<&'a [u8]>;
}

/// Physical memory backed by a byte slice: `bytes[0]` is at physical address `base`.
#[derive(Clone, Copy, Debug)]
pub struct SliceMemory<'a> {
    base: u64,
    bytes: &'a [u8],
}

impl<'a> SliceMemory<'a> {
    /// Views `bytes` as the physical memory from `base` on.
    pub fn new(base: u64, bytes: &'a [u8]) -> Self {
        Self { base, bytes }
    }
}

impl<'a> PhysMemory<'a> for SliceMemory<'a> {
    fn read(&self, addr: u64, len: usize) -> Option<&'a [u8]> {
        let offset = usize::try_from(addr.checked_sub(self.base)?).ok()?;
        self.bytes.get(offset..offset.checked_add(len)?)
    }
}

/// The little-endian `u16` at `offset` in `bytes` (the caller checked the length).
pub(crate) fn u16_at(bytes: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes([bytes[offset], bytes[offset + 1]])
}

/// The little-endian `u32` at `offset` in `bytes` (the caller checked the length).
pub(crate) fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut le = [0; 4];
    le.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(le)
}

/// The little-endian `u64` at `offset` in `bytes` (the caller checked the length).
pub(crate) fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut le = [0; 8];
    le.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(le)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_memory_refuses_what_it_does_not_hold() {
        let bytes = [1, 2, 3, 4];
        let mem = SliceMemory::new(0x1000, &bytes);
        assert_eq!(mem.read(0x1001, 2), Some(&bytes[1..3]));
        assert_eq!(mem.read(0x1000, 4), Some(&bytes[..]));
        assert_eq!(mem.read(0x1004, 0), Some(&[][..]));
        assert_eq!(mem.read(0x1003, 2), None);
        assert_eq!(mem.read(0xfff, 1), None);
        assert_eq!(mem.read(0x1001, usize::MAX), None);
    }
}
