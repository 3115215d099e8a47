//! One group's test: the new run's values against the baseline's, oriented
//! by the metric's direction so "worse" means slower or fewer transactions.

use serde::Serialize;

use super::config::TestKind;
use crate::stats::{mann_whitney, mann_whitney_min_p, mean_variance, median, t_test, MedianRule, TMethod};

/// What a test says about one group (before the family's correction).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TestResult {
    /// t, or U of the new run.
    pub statistic: f64,
    /// Degrees of freedom of a t-test.
    pub df: Option<f64>,
    /// One-sided p-value for "the new run is worse".
    pub p_worse: f64,
    /// One-sided p-value for "the new run is better".
    pub p_better: f64,
    /// The smallest p-value this test can give at these sample sizes.
    pub min_p: f64,
    /// Relative change of the centre, new / baseline - 1 (signed as measured).
    pub change: f64,
}

impl TestResult {
    /// The change in the bad direction: > 0 is worse.
    pub fn worse_by(&self, lower_is_better: bool) -> f64 {
        if lower_is_better {
            self.change
        } else {
            -self.change
        }
    }
}

/// Runs `kind` on the new values against the baseline's. `None` when a side
/// has fewer than two values or a non-finite one.
pub fn run(kind: TestKind, new: &[f64], baseline: &[f64], lower_is_better: bool) -> Option<TestResult> {
    // The p-values come out for "new > baseline" and "new < baseline";
    // which of them is "worse" depends on the metric.
    let orient = |greater: f64, less: f64| {
        if lower_is_better {
            (greater, less)
        } else {
            (less, greater)
        }
    };
    let result = match kind {
        TestKind::Welch | TestKind::Student => {
            let method = if kind == TestKind::Welch {
                TMethod::Welch
            } else {
                TMethod::Student
            };
            let t = t_test(new, baseline, method)?;
            let (p_worse, p_better) = orient(t.p_greater(), t.p_less());
            TestResult {
                statistic: t.t,
                df: Some(t.df).filter(|df| df.is_finite()),
                p_worse,
                p_better,
                min_p: 0.0,
                change: mean_variance(new).0 / mean_variance(baseline).0 - 1.0,
            }
        }
        TestKind::MannWhitney => {
            if new.len() < 2 || baseline.len() < 2 {
                return None;
            }
            let r = mann_whitney(new, baseline)?;
            let (p_worse, p_better) = orient(r.p_greater, r.p_less);
            TestResult {
                statistic: r.u,
                df: None,
                p_worse,
                p_better,
                min_p: mann_whitney_min_p(new.len(), baseline.len()),
                // A rank test's centre is the median: an outlier moves
                // neither the p-value nor the effect.
                change: median(new, MEDIAN_RULE)? / median(baseline, MEDIAN_RULE)? - 1.0,
            }
        }
    };
    Some(result)
}

/// The gate's median (of a rank test's centre, and in its reports): the
/// textbook one, not ministat's upper middle value.
pub const MEDIAN_RULE: MedianRule = MedianRule::MeanOfMiddle;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_follows_the_metric() {
        let base = [10.0, 10.2, 9.9, 10.1];
        let slower = [12.0, 12.3, 11.8, 12.1];
        for kind in [TestKind::Welch, TestKind::Student, TestKind::MannWhitney] {
            // Elapsed time: larger is worse.
            let r = run(kind, &slower, &base, true).unwrap();
            assert!(r.p_worse < 0.05 && r.p_better > 0.9, "{kind:?} {r:?}");
            assert!(r.worse_by(true) > 0.15);
            // Throughput: larger is better.
            let r = run(kind, &slower, &base, false).unwrap();
            assert!(r.p_better < 0.05 && r.p_worse > 0.9, "{kind:?} {r:?}");
            assert!(r.worse_by(false) < -0.15);
        }
    }

    #[test]
    fn rank_test_knows_its_floor() {
        let r = run(TestKind::MannWhitney, &[4.0, 5.0, 6.0], &[1.0, 2.0, 3.0], true).unwrap();
        assert_eq!(r.min_p, 0.05);
        assert_eq!(r.p_worse, 0.05);
        // Medians 5 and 2.
        assert_eq!(r.change, 1.5);
    }

    #[test]
    fn medians_average_the_middle_pair() {
        assert_eq!(median(&[3.0, 1.0, 2.0], MEDIAN_RULE), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0], MEDIAN_RULE), Some(2.5));
    }
}
