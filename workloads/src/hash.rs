//! A fixed 64-bit hash for checksums.
//!
//! `std`'s `DefaultHasher` is explicitly unstable across Rust releases, and the guest (nightly) and
//! host (stable) must agree on kernbench's checksum, so we use FNV-1a, whose output is fixed.

const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01B3;

/// FNV-1a over bytes, fed incrementally.
#[derive(Debug, Clone)]
pub struct Fnv64(u64);

impl Fnv64 {
    pub fn new() -> Self {
        Self(FNV_OFFSET)
    }

    pub fn bytes(&mut self, data: &[u8]) -> &mut Self {
        for &b in data {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Self::new()
    }
}

/// FNV-1a of a byte slice.
pub fn fnv64(data: &[u8]) -> u64 {
    Fnv64::new().bytes(data).finish()
}

#[cfg(test)]
mod tests {
    #[test]
    fn fnv_reference_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(super::fnv64(b""), 0xCBF2_9CE4_8422_2325);
        assert_eq!(super::fnv64(b"a"), 0xAF63_DC4C_8601_EC8C);
    }
}
