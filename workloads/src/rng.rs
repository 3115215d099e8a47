//! A tiny deterministic PRNG.
//!
//! SplitMix64 instead of a `rand` crate: the kernbench tree must be bit-identical on the host and in
//! the guest, across toolchains and crate versions (a `rand` upgrade may change its streams), and the
//! crate must build for x86_64-unknown-hermit without `getrandom`. Statistical quality of SplitMix64
//! is ample for picking rows and shaping source files.

/// SplitMix64 (Steele, Lea, Flood 2014): a 64-bit counter run through a mixing function.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for the `stream`-th independent use of `seed` (a file, a client), so each
    /// stream's values do not depend on the order in which streams are used.
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        let mut g = Self::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        g.next_u64();
        g
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// Uniform in `0..n` (`n > 0`) by multiply-high; the bias (< n / 2^64) is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`, inclusive like pgbench's `random(lo, hi)`.
    pub fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        let span = hi.abs_diff(lo) + 1;
        lo.wrapping_add(self.below(span) as i64)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The SplitMix64 finaliser, also used to derive per-item seeds.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_first_value() {
        // Reference value of SplitMix64 seeded with 0 (from the algorithm's published outputs).
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn ranges_stay_inside() {
        let mut g = SplitMix64::new(7);
        for _ in 0..10_000 {
            let v = g.range_i64(-5000, 5000);
            assert!((-5000..=5000).contains(&v));
            assert!(g.below(3) < 3);
        }
        assert_eq!(SplitMix64::new(1).range_i64(4, 4), 4);
    }
}
