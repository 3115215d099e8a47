//! Test helpers: a byte image of physical memory and a multiboot structure builder.

use alloc::vec::Vec;

use crate::memmap::MapEntry;
use crate::multiboot::INFO_LEN;
use crate::phys::SliceMemory;

/// A memory-map entry.
pub fn entry(base: u64, length: u64, kind: u32) -> MapEntry {
    MapEntry { base, length, kind }
}

/// Physical memory from `base` on, as bytes.
#[derive(Clone, Debug)]
pub struct MemoryImage {
    base: u64,
    bytes: Vec<u8>,
}

impl MemoryImage {
    pub fn new(base: u64, bytes: Vec<u8>) -> Self {
        Self { base, bytes }
    }

    pub fn memory(&self) -> SliceMemory<'_> {
        SliceMemory::new(self.base, &self.bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }

    pub fn put(&mut self, addr: u64, data: &[u8]) {
        let at = (addr - self.base) as usize;
        if self.bytes.len() < at + data.len() {
            self.bytes.resize(at + data.len(), 0);
        }
        self.bytes[at..at + data.len()].copy_from_slice(data);
    }

    pub fn put_u32(&mut self, addr: u64, value: u32) {
        self.put(addr, &value.to_le_bytes());
    }

    /// This image with the multiboot field at `offset` (from `base`) set to `value`.
    pub fn with_field(mut self, offset: usize, value: u32) -> Self {
        self.put_u32(self.base + offset as u64, value);
        self
    }
}

/// Builds a multiboot information structure at `info`, laying out what it points
/// to right after it, in the order of the calls (so a test chooses what ends up
/// highest).
pub struct MultibootBuilder {
    image: MemoryImage,
    flags: u32,
    modules: Vec<(u64, u64, Option<&'static str>)>,
}

impl MultibootBuilder {
    pub fn new(info: u64) -> Self {
        Self {
            image: MemoryImage::new(info, alloc::vec![0; INFO_LEN]),
            flags: 0,
            modules: Vec::new(),
        }
    }

    fn append(&mut self, data: &[u8]) -> u64 {
        let at = self.image.end();
        self.image.put(at, data);
        at
    }

    fn field(&mut self, offset: usize, value: u64) {
        let info = self.image.base;
        self.image.put_u32(info + offset as u64, value as u32);
    }

    pub fn command_line(self, line: &str) -> Self {
        self.command_line_bytes(line.as_bytes())
    }

    pub fn command_line_bytes(mut self, line: &[u8]) -> Self {
        let mut data = line.to_vec();
        data.push(0);
        let at = self.append(&data);
        self.field(16, at);
        self.flags |= 1 << 2;
        self
    }

    /// Adds a module to the list `modules` writes.
    pub fn module(mut self, start: u64, end: u64, name: Option<&'static str>) -> Self {
        self.modules.push((start, end, name));
        self
    }

    /// Appends the module list, then the module names.
    pub fn modules(mut self) -> Self {
        let modules = core::mem::take(&mut self.modules);
        let list = self.append(&alloc::vec![0; 16 * modules.len()]);
        for (i, (start, end, name)) in modules.iter().enumerate() {
            let entry = list + 16 * i as u64;
            self.image.put_u32(entry, *start as u32);
            self.image.put_u32(entry + 4, *end as u32);
            if let Some(name) = name {
                let mut data = name.as_bytes().to_vec();
                data.push(0);
                let at = self.append(&data);
                self.image.put_u32(entry + 8, at as u32);
            }
        }
        self.field(20, modules.len() as u64);
        self.field(24, list);
        self.flags |= 1 << 3;
        self
    }

    /// Appends a memory map of 20-byte entries.
    pub fn memory_map(self, entries: &[MapEntry]) -> Self {
        self.memory_map_padded(entries, 0)
    }

    /// Appends a memory map whose entries carry `pad` extra bytes each.
    pub fn memory_map_padded(self, entries: &[MapEntry], pad: usize) -> Self {
        let mut map = Vec::new();
        for e in entries {
            map.extend_from_slice(&(20 + pad as u32).to_le_bytes());
            map.extend_from_slice(&e.base.to_le_bytes());
            map.extend_from_slice(&e.length.to_le_bytes());
            map.extend_from_slice(&e.kind.to_le_bytes());
            map.extend(core::iter::repeat_n(0xa5, pad));
        }
        self.memory_map_raw(&map)
    }

    /// Appends `map` as the memory map, whatever it holds.
    pub fn memory_map_raw(mut self, map: &[u8]) -> Self {
        let at = self.append(map);
        self.field(44, map.len() as u64);
        self.field(48, at);
        self.flags |= 1 << 6;
        self
    }

    pub fn clear_flags(mut self, flags: u32) -> Self {
        self.flags &= !flags;
        self
    }

    pub fn build(mut self) -> MemoryImage {
        if !self.modules.is_empty() {
            self = self.modules();
        }
        let flags = self.flags;
        self.field(0, u64::from(flags));
        self.image
    }
}
