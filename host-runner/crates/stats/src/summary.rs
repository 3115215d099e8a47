//! One data set and its summary statistics, computed the way ministat does.

use std::cmp::Ordering;

use serde::Serialize;

use super::StatsError;

/// Which value counts as the median of an even number of points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MedianRule {
    /// ministat's (Debian 20150715 and FreeBSD before 2019): the upper of the
    /// two middle values, `sorted[n / 2]`.
    #[default]
    UpperMiddle,
    /// The textbook median (and current FreeBSD's): the mean of the two
    /// middle values.
    MeanOfMiddle,
}

impl MedianRule {
    /// The median of `sorted` (ascending) by this rule: the one place that
    /// knows both rules. Panics on an empty slice.
    pub fn of_sorted(self, sorted: &[f64]) -> f64 {
        let n = sorted.len();
        let upper = sorted[n / 2];
        match self {
            MedianRule::UpperMiddle => upper,
            MedianRule::MeanOfMiddle => {
                // The same index for odd n; skipping the sum then also
                // avoids overflow near f64::MAX.
                let lower = sorted[(n - 1) / 2];
                if lower == upper {
                    upper
                } else {
                    (lower + upper) / 2.0
                }
            }
        }
    }
}

/// The median of `values` in any order by `rule`; None if there are none.
/// Sorted by `f64::total_cmp` (a [`Sample`] sorts as ministat does instead;
/// the two differ only in where -0 and NaN go).
pub fn median(values: &[f64], rule: MedianRule) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(rule.of_sorted(&sorted))
}

/// A data set: its points sorted, plus the running sums ministat keeps.
#[derive(Debug, Clone)]
pub struct Sample {
    sorted: Vec<f64>,
    sum: f64,
    sum_sq: f64,
}

impl Sample {
    /// `values` in input order. ministat sums them in that order, and
    /// floating-point addition is not associative, so the order shows in
    /// the last printed digits.
    pub fn new(values: Vec<f64>) -> Result<Self, StatsError> {
        if values.is_empty() {
            return Err(StatsError::Empty);
        }
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(StatsError::NonFinite {
                index,
                value: values[index],
            });
        }
        let sum = values.iter().sum();
        let sum_sq = values.iter().map(|v| v * v).sum();
        let mut sorted = values;
        // Stable and with 0 == -0 like C's `<`, so equal values keep input
        // order as in glibc's merge-sort qsort. Finite values always compare.
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
        Ok(Self { sorted, sum, sum_sq })
    }

    /// Number of values.
    pub fn n(&self) -> usize {
        self.sorted.len()
    }

    /// Smallest value.
    pub fn min(&self) -> f64 {
        self.sorted[0]
    }

    /// Largest value.
    pub fn max(&self) -> f64 {
        self.sorted[self.sorted.len() - 1]
    }

    /// The values, ascending in ministat's order (see [`Sample::new`]).
    pub fn values(&self) -> &[f64] {
        &self.sorted
    }

    /// Arithmetic mean, from the sum in input order.
    pub fn mean(&self) -> f64 {
        self.sum / self.n() as f64
    }

    /// The median by `rule`.
    pub fn median(&self, rule: MedianRule) -> f64 {
        rule.of_sorted(&self.sorted)
    }

    /// Sample variance by ministat's one-pass formula (Σx² - (Σx)²/n)/(n-1),
    /// kept for byte-identical output. It cancels badly when the spread is
    /// tiny next to the mean and can even come out slightly negative.
    pub fn variance(&self) -> f64 {
        let n = self.n() as f64;
        (self.sum_sq - self.sum * self.sum / n) / (n - 1.0)
    }

    /// √variance. A negative variance (rounding, see [`Self::variance`]) has
    /// no root: return the negative NaN, which is what ministat gets from
    /// x86's sqrtsd and prints as "-nan", whatever this host's FPU does.
    pub fn stddev(&self) -> f64 {
        let var = self.variance();
        if var < 0.0 {
            -f64::NAN
        } else {
            var.sqrt()
        }
    }

    /// ministat's table row for this set, the median by `rule`.
    pub fn summary(&self, rule: MedianRule) -> Summary {
        Summary {
            n: self.n(),
            min: self.min(),
            max: self.max(),
            median: self.median(rule),
            mean: self.mean(),
            stddev: self.stddev(),
        }
    }
}

/// ministat's table row: N Min Max Median Avg Stddev.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// The median, by the rule asked for.
    pub median: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation, ministat's way (see [`Sample::stddev`]).
    pub stddev: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(values: &[f64]) -> Sample {
        Sample::new(values.to_vec()).expect("valid sample")
    }

    #[test]
    fn basic_statistics() {
        let s = sample(&[3.0, 1.0, 2.0, 10.0]);
        assert_eq!((s.n(), s.min(), s.max()), (4, 1.0, 10.0));
        assert_eq!(s.mean(), 4.0);
        // Deviations -3 -2 -1 6: 50 / 3.
        assert!((s.variance() - 50.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn median_rules_differ_only_for_even_counts() {
        let even = sample(&[1.0, 2.0, 3.0, 10.0]);
        assert_eq!(even.median(MedianRule::UpperMiddle), 3.0);
        assert_eq!(even.median(MedianRule::MeanOfMiddle), 2.5);
        let odd = sample(&[5.0, 1.0, 3.0]);
        assert_eq!(odd.median(MedianRule::UpperMiddle), 3.0);
        assert_eq!(odd.median(MedianRule::MeanOfMiddle), 3.0);
    }

    #[test]
    fn median_of_unsorted_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0], MedianRule::MeanOfMiddle), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0], MedianRule::MeanOfMiddle), Some(2.5));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0], MedianRule::UpperMiddle), Some(3.0));
        assert_eq!(median(&[], MedianRule::UpperMiddle), None);
        // Equal middle values are not summed: no overflow.
        assert_eq!(
            median(&[f64::MAX, f64::MAX], MedianRule::MeanOfMiddle),
            Some(f64::MAX)
        );
    }

    #[test]
    fn zero_variance_can_round_negative() {
        // 3 × 0.1: Σx² - (Σx)²/n comes out just below zero.
        let s = sample(&[0.1, 0.1, 0.1]);
        assert!(s.variance() < 0.0);
        assert!(s.stddev().is_nan() && s.stddev().is_sign_negative());
        let exact = sample(&[5.0, 5.0, 5.0]);
        assert_eq!(exact.stddev(), 0.0);
    }

    #[test]
    fn rejects_empty_and_non_finite() {
        assert_eq!(Sample::new(vec![]).unwrap_err(), StatsError::Empty);
        assert!(matches!(
            Sample::new(vec![1.0, f64::INFINITY]),
            Err(StatsError::NonFinite { index: 1, .. })
        ));
    }
}
