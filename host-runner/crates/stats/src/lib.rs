//! Statistics core: summary statistics, Student's t quantiles and the
//! two-sample comparisons behind `pvbench ministat`; t-tests and the
//! Mann–Whitney U test with p-values behind `pvbench gate`.
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
//! The ministat side always uses ministat's one-pass variance (see
//! [`Sample::variance`]); the gate's tests ([`ttest`]) use a two-pass one.

#![warn(missing_docs)]

pub mod ancova;
pub mod compare;
pub mod rank;
pub mod resolution;
mod special;
pub mod student;
pub mod summary;
pub mod ttest;

pub use ancova::{ancova, Adjusted};
pub use compare::{compare, CompareOptions, Comparison, PercentInterval, PercentMethod, TMethod, TSource};
pub use rank::{mann_whitney, mann_whitney_min_p, RankTest};
pub use resolution::{paired_t_resolution, t_resolution, Resolution, POWER};
pub use student::{normal_upper_tail, t_upper_tail, Confidence};
pub use summary::{median, MedianRule, Sample, Summary};
pub use ttest::{mean_variance, t_test, TTest};

/// Why a sample cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// The data set has no values.
    #[error("a data set needs at least one value")]
    Empty,
    /// A value is NaN or infinite: it has no place in ministat's sums.
    #[error("value #{index} is {value}, not a finite number")]
    NonFinite {
        /// Its position in the input, from 0.
        index: usize,
        /// The value.
        value: f64,
    },
}
