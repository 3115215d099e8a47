//! Latency histograms in frames: HdrHistogram's V2 serialization (uncompressed),
//! the format Java and Rust HdrHistogram share.
//!
//! Encoding uses the hdrhistogram crate. Decoding does not: its decoder allocates
//! whatever a header asks for and panics on some malformed counts (found by
//! fuzzing), and the host decodes what guests send. [`HistogramView`] checks a
//! histogram completely before anything is allocated or recorded, and can merge
//! its counts straight into another histogram.

use std::string::String;
use std::vec::Vec;

use hdrhistogram::serialization::{Serializer, V2Serializer};
use hdrhistogram::Histogram;

use super::{MAX_HISTOGRAM_COUNTS, MAX_HISTOGRAM_SAMPLES};

/// First word of an uncompressed V2 histogram (HdrHistogram's V2 encoding cookie
/// with its word-size bits).
pub const V2_COOKIE: u32 = 0x1c84_9313;

/// cookie, payload length, normalizing offset, significant digits (u32 each),
/// lowest, highest (u64 each), integer-to-double ratio (f64); big-endian.
const V2_HEADER_LEN: usize = 40;

/// Largest precision HdrHistogram supports.
const MAX_SIGFIG: u32 = 5;

/// Longest varint in V2 counts: 8 bytes of 7 bits, then one of 8.
const MAX_VARINT_LEN: usize = 9;

/// Why a histogram in a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistogramError {
    #[error("histogram of {len} bytes is shorter than the {V2_HEADER_LEN}-byte V2 header")]
    Short { len: usize },
    #[error("histogram cookie {found:#010x} is not the V2 cookie {V2_COOKIE:#010x}")]
    Cookie { found: u32 },
    #[error("histogram payload claims {claimed} bytes, frame holds {actual}")]
    PayloadLength { claimed: u64, actual: usize },
    #[error(
        "histogram bounds lowest={lowest} highest={highest} digits={digits} are not a valid HdrHistogram"
    )]
    Bounds { lowest: u64, highest: u64, digits: u32 },
    #[error("histogram would need {counts} counters, more than the {MAX_HISTOGRAM_COUNTS} allowed")]
    TooManyCounts { counts: u64 },
    #[error("unsupported histogram encoding: {0}")]
    Unsupported(&'static str),
    #[error("histogram counts: {0}")]
    Counts(&'static str),
    #[error("cannot serialize histogram: {0}")]
    Serialize(String),
    #[error("cannot record histogram counts: {0}")]
    Record(String),
}

/// Serializes histograms for frames; reuses its buffer across calls.
#[derive(Default)]
pub struct HistogramEncoder {
    serializer: V2Serializer,
}

impl core::fmt::Debug for HistogramEncoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HistogramEncoder")
    }
}

impl HistogramEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the V2 serialization of `h` to `out`; returns its length.
    pub fn encode(&mut self, h: &Histogram<u64>, out: &mut Vec<u8>) -> Result<usize, HistogramError> {
        self.serializer
            .serialize(h, out)
            .map_err(|e| HistogramError::Serialize(std::format!("{e:?}")))
    }
}

/// A V2 histogram that passed every check: its counts can be read without errors.
#[derive(Debug, Clone, Copy)]
pub struct HistogramView<'a> {
    lowest: u64,
    highest: u64,
    digits: u8,
    layout: Layout,
    counts: &'a [u8],
    total: u64,
}

impl<'a> HistogramView<'a> {
    /// Checks header and counts: cookie, payload length equal to the bytes
    /// given, bounds HdrHistogram accepts needing at most
    /// [`MAX_HISTOGRAM_COUNTS`] counters, and counts that stay inside them.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, HistogramError> {
        let Some((header, counts)) = bytes.split_first_chunk::<V2_HEADER_LEN>() else {
            return Err(HistogramError::Short { len: bytes.len() });
        };
        let u32_at =
            |at: usize| u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
        let u64_at = |at: usize| (u64::from(u32_at(at)) << 32) | u64::from(u32_at(at + 4));
        let cookie = u32_at(0);
        if cookie != V2_COOKIE {
            return Err(HistogramError::Cookie { found: cookie });
        }
        let claimed = u32_at(4);
        if claimed as usize != counts.len() {
            return Err(HistogramError::PayloadLength {
                claimed: claimed.into(),
                actual: counts.len(),
            });
        }
        if u32_at(8) != 0 {
            return Err(HistogramError::Unsupported("normalizing index offset"));
        }
        if f64::from_bits(u64_at(32)) != 1.0 {
            return Err(HistogramError::Unsupported("integer to double conversion ratio"));
        }
        let (digits, lowest, highest) = (u32_at(12), u64_at(16), u64_at(24));
        let layout = Layout::new(lowest, highest, digits).ok_or(HistogramError::Bounds {
            lowest,
            highest,
            digits,
        })?;
        if layout.counts_len > MAX_HISTOGRAM_COUNTS as u64 {
            return Err(HistogramError::TooManyCounts {
                counts: layout.counts_len,
            });
        }
        let mut view = HistogramView {
            lowest,
            highest,
            // At most MAX_SIGFIG, checked by Layout::new.
            digits: digits as u8,
            layout,
            counts,
            total: 0,
        };
        view.total = view.walk(|_, _| {})?;
        Ok(view)
    }

    /// Samples in the histogram (at most [`MAX_HISTOGRAM_SAMPLES`]).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Calls `f(value, count)` for every non-zero count, `value` being the lowest
    /// value of its bucket.
    pub fn for_each(&self, f: impl FnMut(u64, u64)) {
        // The counts were walked without error in `parse`.
        let _ = self.walk(f);
    }

    /// Adds the counts to `into` (which must be able to hold them: auto-resizing,
    /// or bounds at least as wide).
    pub fn add_to(&self, into: &mut Histogram<u64>) -> Result<(), HistogramError> {
        let mut failed = None;
        self.for_each(|value, count| {
            if failed.is_none() {
                failed = into.record_n(value, count).err();
            }
        });
        match failed {
            None => Ok(()),
            Some(e) => Err(HistogramError::Record(std::format!("{e:?}"))),
        }
    }

    /// The histogram, with the bounds and precision it was recorded with.
    pub fn to_histogram(&self) -> Result<Histogram<u64>, HistogramError> {
        let mut h = Histogram::new_with_bounds(self.lowest, self.highest, self.digits)
            .map_err(|e| HistogramError::Record(std::format!("{e:?}")))?;
        self.add_to(&mut h)?;
        Ok(h)
    }

    /// Decodes the counts: zig-zag varints, a negative one skipping that many
    /// zero counters. Returns the sum of the counts, which must stay within
    /// [`MAX_HISTOGRAM_SAMPLES`].
    fn walk(&self, mut f: impl FnMut(u64, u64)) -> Result<u64, HistogramError> {
        let mut rest = self.counts;
        let mut index = 0u64;
        let mut total = 0u64;
        while !rest.is_empty() {
            let (zz, used) = read_varint(rest).ok_or(HistogramError::Counts("varint cut short"))?;
            rest = &rest[used..];
            // Zig-zag: even values are non-negative, odd ones negative.
            if zz & 1 == 1 {
                let zeros = (zz >> 1) + 1;
                index = index
                    .checked_add(zeros)
                    .filter(|&i| i <= self.layout.counts_len)
                    .ok_or(HistogramError::Counts("zero run past the last counter"))?;
                continue;
            }
            let count = zz >> 1;
            if index >= self.layout.counts_len {
                return Err(HistogramError::Counts("count past the last counter"));
            }
            if count > 0 {
                total = total
                    .checked_add(count)
                    .filter(|&t| t <= MAX_HISTOGRAM_SAMPLES)
                    .ok_or(HistogramError::Counts("more samples than a frame may carry"))?;
                f(self.layout.value_at(index), count);
            }
            index += 1;
        }
        Ok(total)
    }
}

/// Checks and decodes a V2 histogram (see [`HistogramView::parse`]).
pub fn decode_histogram(bytes: &[u8]) -> Result<Histogram<u64>, HistogramError> {
    HistogramView::parse(bytes)?.to_histogram()
}

/// The number of counters an HdrHistogram with these bounds holds, or `None` if
/// HdrHistogram rejects the bounds.
pub fn counts_len(lowest: u64, highest: u64, digits: u32) -> Option<u64> {
    Layout::new(lowest, highest, digits).map(|l| l.counts_len)
}

/// HdrHistogram's counter layout: sub-buckets of `2^ceil(log2(2 * 10^digits))`
/// values, the first bucket at the unit magnitude of `lowest`, buckets doubling
/// until `highest` fits; each bucket after the first adds half a bucket of
/// counters (its lower half is covered by the previous one).
#[derive(Debug, Clone, Copy)]
struct Layout {
    unit_magnitude: u32,
    sub_bucket_half_count_magnitude: u32,
    counts_len: u64,
}

impl Layout {
    fn new(lowest: u64, highest: u64, digits: u32) -> Option<Layout> {
        if lowest == 0 || digits > MAX_SIGFIG || highest < lowest.checked_mul(2)? {
            return None;
        }
        let largest_single_unit = 2 * 10u64.pow(digits);
        let sub_bucket_count_magnitude = 64 - (largest_single_unit - 1).leading_zeros();
        let sub_bucket_half_count_magnitude = sub_bucket_count_magnitude.max(1) - 1;
        let sub_bucket_count = 1u64 << (sub_bucket_half_count_magnitude + 1);
        let unit_magnitude = 63 - lowest.leading_zeros();
        if unit_magnitude + sub_bucket_half_count_magnitude + 1 > 63 {
            return None;
        }
        let mut smallest_untrackable = sub_bucket_count << unit_magnitude;
        let mut buckets = 1u64;
        while smallest_untrackable <= highest {
            if smallest_untrackable > u64::MAX / 2 {
                buckets += 1;
                break;
            }
            smallest_untrackable <<= 1;
            buckets += 1;
        }
        Some(Layout {
            unit_magnitude,
            sub_bucket_half_count_magnitude,
            counts_len: (buckets + 1) * (sub_bucket_count / 2),
        })
    }

    /// The lowest value counted at `index` (< `counts_len`).
    fn value_at(&self, index: u64) -> u64 {
        let half_magnitude = self.sub_bucket_half_count_magnitude;
        let half = 1u64 << half_magnitude;
        let (bucket, sub_bucket) = match (index >> half_magnitude).checked_sub(1) {
            Some(bucket) => (bucket, (index & (half - 1)) + half),
            None => (0, index),
        };
        let shift = bucket + u64::from(self.unit_magnitude);
        // The top bucket of the widest layouts reaches past u64: saturate there
        // (recording it then fails cleanly instead of wrapping to a small value).
        if shift >= 64 || u64::from(sub_bucket.leading_zeros()) < shift {
            u64::MAX
        } else {
            sub_bucket << shift
        }
    }
}

/// One V2 varint: LEB128 with at most 9 bytes, the ninth carrying 8 bits.
fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().take(MAX_VARINT_LEN).enumerate() {
        if i == MAX_VARINT_LEN - 1 {
            return Some((value | (u64::from(b) << 56), MAX_VARINT_LEN));
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}
