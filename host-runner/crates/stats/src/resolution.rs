//! How large a difference a comparison could have seen: the minimum
//! detectable effect (MDE) of a two-sample Student's t test and the
//! half-width of its confidence interval. A verdict of "no difference proven"
//! says nothing without them: a difference below the MDE would most likely
//! have gone unseen.

use crate::student::t_quantile;
use crate::Confidence;

/// The power a minimum detectable effect is stated at (the usual 80 %).
pub const POWER: f64 = 0.8;

/// What a pooled two-sample t test of `n1` and `n2` runs with pooled standard
/// deviation `pooled_s` resolves, in the data's unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolution {
    /// Half-width of the confidence interval of the difference of the means.
    pub ci_half: f64,
    /// The smallest true difference the test proves with probability
    /// [`POWER`]: (t_{1-a/2} + t_{power}) s_p sqrt(1/n1 + 1/n2) on n1 + n2 - 2
    /// degrees of freedom (the usual central-t approximation).
    pub mde: f64,
}

/// The resolution of a pooled t test, `None` with fewer than two runs on a side
/// or a standard deviation that is not a finite number.
pub fn t_resolution(n1: usize, n2: usize, pooled_s: f64, confidence: Confidence) -> Option<Resolution> {
    if n1 < 2 || n2 < 2 || !pooled_s.is_finite() || pooled_s < 0.0 {
        return None;
    }
    let df = (n1 + n2 - 2) as f64;
    let se = pooled_s * (1.0 / n1 as f64 + 1.0 / n2 as f64).sqrt();
    let t_alpha = t_quantile(confidence.level(), df);
    // One-sided quantile at the power: P(|T| > t) = 2 (1 - power).
    let t_beta = t_quantile(2.0 * POWER - 1.0, df);
    Some(Resolution {
        ci_half: t_alpha * se,
        mde: (t_alpha + t_beta) * se,
    })
}

/// The resolution of a paired t test on `pairs` differences with standard
/// deviation `diff_s` (one sample of differences, `pairs - 1` degrees of
/// freedom); `None` with fewer than two pairs or a standard deviation that is
/// not a finite number. Pairing pays when the two runs of a pair share noise
/// (the host's drift): the differences then spread less than the runs.
pub fn paired_t_resolution(pairs: usize, diff_s: f64, confidence: Confidence) -> Option<Resolution> {
    if pairs < 2 || !diff_s.is_finite() || diff_s < 0.0 {
        return None;
    }
    let df = (pairs - 1) as f64;
    let se = diff_s / (pairs as f64).sqrt();
    let t_alpha = t_quantile(confidence.level(), df);
    let t_beta = t_quantile(2.0 * POWER - 1.0, df);
    Some(Resolution {
        ci_half: t_alpha * se,
        mde: (t_alpha + t_beta) * se,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_of_a_textbook_case() {
        // 10 vs 10 runs, s = 1: t(0.975, 18) = 2.101, t(0.8, 18) = 0.862,
        // se = sqrt(0.2) = 0.4472.
        let r = t_resolution(10, 10, 1.0, Confidence::P95).unwrap();
        assert!((r.ci_half - 2.101 * 0.4472).abs() < 1e-3, "{r:?}");
        assert!((r.mde - (2.101 + 0.862) * 0.4472).abs() < 2e-3, "{r:?}");
    }

    #[test]
    fn paired_resolution_of_a_textbook_case() {
        // 10 pairs, differences with s = 1: t(0.975, 9) = 2.262,
        // t(0.8, 9) = 0.883, se = 1 / sqrt(10) = 0.3162.
        let r = paired_t_resolution(10, 1.0, Confidence::P95).unwrap();
        assert!((r.ci_half - 2.262 * 0.3162).abs() < 2e-3, "{r:?}");
        assert!((r.mde - (2.262 + 0.883) * 0.3162).abs() < 3e-3, "{r:?}");
        assert_eq!(paired_t_resolution(1, 1.0, Confidence::P95), None);
    }

    #[test]
    fn more_runs_resolve_smaller_differences() {
        let few = t_resolution(3, 3, 1.0, Confidence::P95).unwrap();
        let many = t_resolution(30, 30, 1.0, Confidence::P95).unwrap();
        assert!(many.mde < few.mde / 3.0, "{few:?} {many:?}");
        assert_eq!(t_resolution(1, 5, 1.0, Confidence::P95), None);
        assert_eq!(t_resolution(5, 5, f64::NAN, Confidence::P95), None);
    }
}
