//! Two-sample t-tests with p-values, for the CI gate (ministat itself only
//! needs intervals, see `compare`).
//!
//! Means and variances here are two-pass: unlike ministat's output, nothing
//! downstream depends on its one-pass formula's digits, and the two-pass
//! variance does not cancel when the spread is small next to the mean.

use super::compare::TMethod;
use super::student::t_upper_tail;

/// Mean and sample variance (n - 1) by two passes; the variance is NaN for
/// fewer than two values, both are NaN for none.
pub fn mean_variance(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    (mean, ss / (n - 1.0))
}

/// The outcome of a t-test of `a` against `b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTest {
    /// mean(a) - mean(b).
    pub difference: f64,
    /// Standard error of the difference.
    pub std_error: f64,
    /// difference / std_error: ±infinity when the difference is certain (no
    /// spread at all), NaN when there is neither spread nor difference.
    pub t: f64,
    /// Degrees of freedom (fractional for Welch; NaN when Welch has no
    /// spread to work with).
    pub df: f64,
}

impl TTest {
    /// One-sided p-value for "mean(a) > mean(b)".
    pub fn p_greater(&self) -> f64 {
        tail(self.t, self.df)
    }

    /// One-sided p-value for "mean(a) < mean(b)".
    pub fn p_less(&self) -> f64 {
        tail(-self.t, self.df)
    }

    /// Two-sided p-value for "the means differ".
    pub fn p_two_sided(&self) -> f64 {
        (2.0 * self.p_greater().min(self.p_less())).min(1.0)
    }
}

/// P(T > t), also where a test without spread has no df: a certain
/// difference (t = ±infinity) decides alone, no difference at all proves
/// nothing (1).
fn tail(t: f64, df: f64) -> f64 {
    if t.is_nan() {
        1.0
    } else if t.is_infinite() {
        if t > 0.0 {
            0.0
        } else {
            1.0
        }
    } else {
        t_upper_tail(t, df)
    }
}

/// Student's (pooled variance) or Welch's t-test of `a` against `b`; `None`
/// unless both have at least two values, all finite.
pub fn t_test(a: &[f64], b: &[f64], method: TMethod) -> Option<TTest> {
    if a.len() < 2 || b.len() < 2 || a.iter().chain(b).any(|v| !v.is_finite()) {
        return None;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mean_a, var_a) = mean_variance(a);
    let (mean_b, var_b) = mean_variance(b);
    let difference = mean_a - mean_b;
    let (std_error, df) = match method {
        TMethod::Student => {
            let df = na + nb - 2.0;
            let pooled = ((na - 1.0) * var_a + (nb - 1.0) * var_b) / df;
            ((pooled * (1.0 / na + 1.0 / nb)).sqrt(), df)
        }
        TMethod::Welch => {
            let (va, vb) = (var_a / na, var_b / nb);
            let se2 = va + vb;
            // Welch–Satterthwaite; 0/0 (no spread) gives NaN, handled by `t`.
            let df = se2 * se2 / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
            (se2.sqrt(), df)
        }
    };
    let t = if std_error > 0.0 {
        difference / std_error
    } else if difference == 0.0 {
        f64::NAN
    } else {
        f64::INFINITY.copysign(difference)
    };
    Some(TTest {
        difference,
        std_error,
        t,
        df,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values from mpmath 1.3 at 30 digits, computed from the
    // textbook formulas (not this code).
    const T_WELCH: f64 = 3.900_067_475_799_55;
    const P_WELCH: f64 = 0.009_413_547_765_912_041;
    const T_STUDENT: f64 = 4.533_333_333_333_333;
    const P_STUDENT: f64 = 0.000_957_968_777_041_694_2;

    #[test]
    fn welch_matches_independent_computation() {
        let a = [10.0, 12.0, 13.0, 15.0, 11.0, 14.0];
        let b = [1.0, 2.0, 3.0, 10.0];
        let w = t_test(&a, &b, TMethod::Welch).unwrap();
        assert_eq!(w.difference, 8.5);
        assert!((w.df - 3.853_483_039_455_997).abs() < 1e-12, "{}", w.df);
        assert!((w.t - T_WELCH).abs() < 1e-12, "{}", w.t);
        assert!((w.p_greater() - P_WELCH).abs() < 1e-15, "{}", w.p_greater());
        assert!((w.p_less() - (1.0 - P_WELCH)).abs() < 1e-14);
        assert!((w.p_two_sided() - 2.0 * P_WELCH).abs() < 1e-15);
    }

    #[test]
    fn student_matches_independent_computation() {
        let a = [10.0, 12.0, 13.0, 15.0, 11.0, 14.0];
        let b = [1.0, 2.0, 3.0, 10.0];
        let s = t_test(&a, &b, TMethod::Student).unwrap();
        assert_eq!(s.df, 8.0);
        assert!((s.t - T_STUDENT).abs() < 1e-12, "{}", s.t);
        assert!((s.p_greater() - P_STUDENT).abs() < 1e-15, "{}", s.p_greater());
        // Swapping the sets mirrors the statistic.
        let r = t_test(&b, &a, TMethod::Student).unwrap();
        assert_eq!(r.t, -s.t);
        assert_eq!(r.p_less(), s.p_greater());
    }

    #[test]
    fn two_pass_variance_survives_a_large_mean() {
        // ministat's one-pass formula loses every digit here.
        let (mean, var) = mean_variance(&[1e9 + 0.1, 1e9 + 0.2, 1e9 + 0.3]);
        assert!((mean - (1e9 + 0.2)).abs() < 1e-6);
        assert!((var - 0.01).abs() < 1e-8, "{var}");
    }

    #[test]
    fn no_spread() {
        let five = [5.0, 5.0, 5.0];
        let six = [6.0, 6.0, 6.0];
        for method in [TMethod::Student, TMethod::Welch] {
            let same = t_test(&five, &five, method).unwrap();
            assert_eq!((same.p_greater(), same.p_less()), (1.0, 1.0));
            let up = t_test(&six, &five, method).unwrap();
            assert_eq!((up.p_greater(), up.p_less()), (0.0, 1.0));
        }
        // One side without spread: Welch's df is the other side's n - 1.
        let w = t_test(&[1.0, 2.0, 3.0], &five, TMethod::Welch).unwrap();
        assert_eq!(w.df, 2.0);
    }

    #[test]
    fn too_small_or_non_finite_is_refused() {
        assert!(t_test(&[1.0], &[1.0, 2.0], TMethod::Welch).is_none());
        assert!(t_test(&[1.0, f64::NAN], &[1.0, 2.0], TMethod::Welch).is_none());
    }
}
