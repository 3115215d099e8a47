//! Comparing a data set with the reference: the difference of the means, its
//! confidence interval, and the same relative to the reference mean.

use serde::Serialize;

use super::student::{ministat_t, t_quantile, Confidence};
use super::summary::Sample;

/// How the interval for the difference of means is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TMethod {
    /// Student's t with the pooled standard deviation (ministat's): assumes
    /// both sets have the same variance.
    #[default]
    Student,
    /// Welch's t with the Welch–Satterthwaite df: no equal-variance
    /// assumption. Always uses exact quantiles, as its df is fractional.
    Welch,
}

/// Where Student's t comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TSource {
    /// ministat's 3-decimal table, quirks included ([`ministat_t`]).
    #[default]
    MinistatTable,
    /// The exact quantile at the stated level and df.
    Exact,
}

/// How the interval for the relative (percent) difference is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PercentMethod {
    /// ministat's (Debian 20150715): the difference's half-width divided by
    /// the reference mean. It ignores the reference mean's own uncertainty,
    /// so it is too narrow, and it flips sign when that mean is negative.
    #[default]
    Ministat,
    /// Fieller's interval for the ratio of the means, minus 1: exact under
    /// the same normal model, asymmetric, and unbounded when the reference
    /// mean is not itself distinguishable from zero.
    Fieller,
}

/// How [`compare`] builds its intervals; the defaults are ministat's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompareOptions {
    /// Two-sided level of both intervals.
    pub confidence: Confidence,
    /// Student (pooled) or Welch.
    pub t_method: TMethod,
    /// Where Student's t comes from.
    pub t_source: TSource,
    /// How the percent interval is built.
    pub percent: PercentMethod,
}

/// The interval around the percent difference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PercentInterval {
    /// percent ± half-width (ministat's; the half-width can be negative).
    HalfWidth(f64),
    /// Explicit bounds, in percent.
    Bounds {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// The confidence set is not an interval: the reference mean is too close
    /// to zero for its uncertainty.
    Unbounded,
}

/// One data set against the reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Mean of the set minus mean of the reference.
    pub difference: f64,
    /// Half-width of the interval around `difference`.
    pub half_width: f64,
    /// The t the interval was built with.
    pub t: f64,
    /// Degrees of freedom (fractional for Welch; NaN when Welch has no
    /// variance at all to work with).
    pub df: f64,
    /// Pooled standard deviation (Student only).
    pub pooled_s: Option<f64>,
    /// |difference| > half-width: the interval excludes zero.
    pub proven: bool,
    /// The difference in percent of the reference mean.
    pub percent: f64,
    /// The interval around `percent`.
    pub percent_interval: PercentInterval,
}

/// Compares `sample` with `reference`. Both need n >= 2.
pub fn compare(sample: &Sample, reference: &Sample, options: &CompareOptions) -> Comparison {
    let (n1, n0) = (sample.n(), reference.n());
    let (mean1, mean0) = (sample.mean(), reference.mean());
    let difference = mean1 - mean0;
    // Each branch also yields the variances of the two means for Fieller.
    let (t, df, pooled_s, half_width, var_mean1, var_mean0) = match options.t_method {
        TMethod::Student => {
            let df = (n1 + n0 - 2) as u64;
            let t = match options.t_source {
                TSource::MinistatTable => ministat_t(options.confidence, df),
                TSource::Exact => t_quantile(options.confidence.level(), df as f64),
            };
            // Same operations in the same order as ministat, for the same bits.
            let pooled = (((n1 - 1) as f64 * sample.variance() + (n0 - 1) as f64 * reference.variance())
                / df as f64)
                .sqrt();
            let s = pooled * (1.0 / n1 as f64 + 1.0 / n0 as f64).sqrt();
            let var = pooled * pooled;
            (
                t,
                df as f64,
                Some(pooled),
                t * s,
                var / n1 as f64,
                var / n0 as f64,
            )
        }
        TMethod::Welch => {
            // The one-pass variance can round below zero; it means zero here.
            let v1 = sample.variance().max(0.0) / n1 as f64;
            let v0 = reference.variance().max(0.0) / n0 as f64;
            let se2 = v1 + v0;
            let df = se2 * se2 / (v1 * v1 / (n1 - 1) as f64 + v0 * v0 / (n0 - 1) as f64);
            if se2 == 0.0 {
                // No spread at all: any difference is certain, and df is 0/0.
                (f64::NAN, f64::NAN, None, 0.0, 0.0, 0.0)
            } else {
                let t = t_quantile(options.confidence.level(), df);
                (t, df, None, t * se2.sqrt(), v1, v0)
            }
        }
    };
    let percent = difference * 100.0 / mean0;
    let percent_interval = match options.percent {
        PercentMethod::Ministat => PercentInterval::HalfWidth(half_width * 100.0 / mean0),
        PercentMethod::Fieller => fieller(mean1, mean0, var_mean1, var_mean0, t),
    };
    Comparison {
        difference,
        half_width,
        t,
        df,
        pooled_s,
        proven: difference.abs() > half_width,
        percent,
        percent_interval,
    }
}

/// Fieller's interval for mean1/mean0 (independent means with the given
/// variances), as percent change: the ρ with (m1 - ρ m0)² <= t² (v1 + ρ² v0).
fn fieller(mean1: f64, mean0: f64, var1: f64, var0: f64, t: f64) -> PercentInterval {
    let t = if t.is_nan() { 0.0 } else { t };
    let g = t * t * var0 / (mean0 * mean0);
    if g.is_nan() || g >= 1.0 {
        return PercentInterval::Unbounded;
    }
    let ratio = mean1 / mean0;
    let spread = (t / mean0.abs()) * ((1.0 - g) * var1 + ratio * ratio * var0).sqrt();
    let low = (ratio - spread) / (1.0 - g);
    let high = (ratio + spread) / (1.0 - g);
    PercentInterval::Bounds {
        low: (low - 1.0) * 100.0,
        high: (high - 1.0) * 100.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(values: &[f64]) -> Sample {
        Sample::new(values.to_vec()).expect("valid sample")
    }

    // Expected values below come from a separate mpmath 1.3 script that
    // implements the textbook formulas (not this code), 30 digits.

    #[test]
    fn student_pooled_interval() {
        let a = sample(&[1.0, 2.0, 3.0, 10.0]);
        let b = sample(&[10.0, 12.0, 13.0, 15.0]);
        let c = compare(&b, &a, &CompareOptions::default());
        assert_eq!(c.df, 6.0);
        assert_eq!(c.t, 2.447);
        assert_eq!(c.difference, 8.5);
        // ministat prints: 8.5 +/- 5.60678, 212.5% +/- 140.17%, pooled s = 3.24037.
        assert!((c.half_width - 5.606_78).abs() < 5e-6);
        assert!((c.pooled_s.unwrap() - 3.240_37).abs() < 5e-6);
        assert_eq!(c.percent, 212.5);
        assert!(c.proven);
        match c.percent_interval {
            PercentInterval::HalfWidth(h) => assert!((h - 140.17).abs() < 5e-4),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn welch_matches_independent_computation() {
        let a = sample(&[1.0, 2.0, 3.0, 10.0]);
        let b = sample(&[10.0, 12.0, 13.0, 15.0, 11.0, 14.0]);
        let opts = CompareOptions {
            t_method: TMethod::Welch,
            ..CompareOptions::default()
        };
        let c = compare(&b, &a, &opts);
        // mpmath: df = 3.85348303945599746..., t = 2.81857786846187258...,
        // half-width = 6.14294804656278998...
        assert!((c.df - 3.853_483_039_455_997).abs() < 1e-12);
        assert!((c.t - 2.818_577_868_461_873).abs() < 1e-9);
        assert!((c.half_width - 6.142_948_046_562_79).abs() < 1e-9);
        assert_eq!(c.pooled_s, None);
        assert!(c.proven);
    }

    #[test]
    fn fieller_matches_independent_computation() {
        let a = sample(&[100.0, 104.0, 98.0, 102.0, 101.0]);
        let b = sample(&[110.0, 108.0, 113.0, 109.0, 112.0]);
        let opts = CompareOptions {
            percent: PercentMethod::Fieller,
            t_source: TSource::Exact,
            ..CompareOptions::default()
        };
        let c = compare(&b, &a, &opts);
        // mpmath, roots of the quadratic: 6.09677335066989... % and
        // 12.6231228926324... %.
        match c.percent_interval {
            PercentInterval::Bounds { low, high } => {
                assert!((low - 6.096_773_350_669_897).abs() < 1e-9, "{low}");
                assert!((high - 12.623_122_892_632_47).abs() < 1e-9, "{high}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn fieller_unbounded_near_zero_reference() {
        let a = sample(&[-1.0, 0.5, 1.0]);
        let b = sample(&[10.0, 11.0, 12.0]);
        let opts = CompareOptions {
            percent: PercentMethod::Fieller,
            ..CompareOptions::default()
        };
        let c = compare(&b, &a, &opts);
        assert_eq!(c.percent_interval, PercentInterval::Unbounded);
    }

    #[test]
    fn identical_sets_prove_nothing() {
        let a = sample(&[7594.0, 7468.0, 7774.0]);
        for t_method in [TMethod::Student, TMethod::Welch] {
            let opts = CompareOptions {
                t_method,
                ..CompareOptions::default()
            };
            let c = compare(&a, &a, &opts);
            assert_eq!(c.difference, 0.0);
            assert!(!c.proven);
        }
    }

    #[test]
    fn zero_variance_sets() {
        let a = sample(&[5.0, 5.0, 5.0]);
        let b = sample(&[6.0, 6.0, 6.0]);
        for t_method in [TMethod::Student, TMethod::Welch] {
            let opts = CompareOptions {
                t_method,
                ..CompareOptions::default()
            };
            let same = compare(&a, &a, &opts);
            assert!(!same.proven && same.half_width == 0.0);
            let differ = compare(&b, &a, &opts);
            assert!(differ.proven && differ.half_width == 0.0);
        }
    }
}
