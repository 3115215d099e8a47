//! Statistics core: summary statistics, Student's t quantiles and the
//! two-sample comparisons behind `pvbench ministat`.
//!
//! By default everything reproduces ministat 20150715 (Debian's package) bit
//! for bit, quirks included; each quirk has a corrected variant:
//!
//! | ministat                                   | corrected                         |
//! |--------------------------------------------|-----------------------------------|
//! | median of even n = upper middle value      | [`MedianRule::MeanOfMiddle`]      |
//! | t from a 3-decimal table, normal above df 100, "99.5 %" column is 99.8 % | [`TSource::Exact`] |
//! | percent interval = half-width / reference mean | [`PercentMethod::Fieller`]    |
//! | pooled variance (Student)                  | [`TMethod::Welch`]                |
//!
//! The variance is always ministat's one-pass formula; see
//! [`Sample::variance`].

pub mod compare;
mod special;
pub mod student;
pub mod summary;

pub use compare::{compare, CompareOptions, Comparison, PercentInterval, PercentMethod, TMethod, TSource};
pub use student::Confidence;
pub use summary::{MedianRule, Sample, Summary};

/// Why a sample cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("a data set needs at least one value")]
    Empty,
    #[error("value #{index} is {value}, not a finite number")]
    NonFinite { index: usize, value: f64 },
}
