//! Two groups compared with a covariate (analysis of covariance with a common
//! slope): y = group mean + slope x (covariate - its mean) + noise. When the
//! covariate carries part of the noise (here: the host's speed, timed around
//! each run), removing it narrows the comparison without touching the
//! difference it estimates. The slope is fitted within the groups, so a
//! difference between the groups does not leak into it.

use crate::resolution::POWER;
use crate::student::{t_quantile, t_upper_tail};
use crate::Confidence;

/// The covariate-adjusted difference of two groups' means (`b` minus `a`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adjusted {
    /// The difference of the means at a common covariate value.
    pub diff: f64,
    /// Its standard error.
    pub se: f64,
    /// Residual degrees of freedom: n_a + n_b - 3.
    pub df: f64,
    /// The common slope of y on the covariate.
    pub slope: f64,
    /// Two-sided p value of "no difference".
    pub p: f64,
    /// Half-width of the confidence interval of `diff`.
    pub ci_half: f64,
    /// The smallest true difference proven with [`POWER`] at `confidence`.
    pub mde: f64,
}

/// Compares `(y, x)` pairs of group `a` with those of group `b`; `None` with
/// fewer than four runs in all, fewer than two a group, mismatched lengths,
/// or no spread in the covariate within the groups.
pub fn ancova(a: (&[f64], &[f64]), b: (&[f64], &[f64]), confidence: Confidence) -> Option<Adjusted> {
    let (na, nb) = (a.0.len(), b.0.len());
    if na < 2 || nb < 2 || a.1.len() != na || b.1.len() != nb || na + nb < 4 {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (ya, xa, yb, xb) = (mean(a.0), mean(a.1), mean(b.0), mean(b.1));
    // Within-group sums of squares and products.
    let sums = |(y, x): (&[f64], &[f64]), my: f64, mx: f64| {
        y.iter()
            .zip(x)
            .fold((0.0, 0.0, 0.0), |(sxx, sxy, syy), (yi, xi)| {
                let (dy, dx) = (yi - my, xi - mx);
                (sxx + dx * dx, sxy + dx * dy, syy + dy * dy)
            })
    };
    let (sxx_a, sxy_a, syy_a) = sums(a, ya, xa);
    let (sxx_b, sxy_b, syy_b) = sums(b, yb, xb);
    let (sxx, sxy, syy) = (sxx_a + sxx_b, sxy_a + sxy_b, syy_a + syy_b);
    if sxx.is_nan() || sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let df = (na + nb - 3) as f64;
    let s2 = (syy - slope * sxy).max(0.0) / df;
    let diff = (yb - ya) - slope * (xb - xa);
    let se = (s2 * (1.0 / na as f64 + 1.0 / nb as f64 + (xb - xa).powi(2) / sxx)).sqrt();
    let t_alpha = t_quantile(confidence.level(), df);
    let t_beta = t_quantile(2.0 * POWER - 1.0, df);
    let p = if se > 0.0 {
        (2.0 * t_upper_tail((diff / se).abs(), df)).min(1.0)
    } else if diff == 0.0 {
        1.0
    } else {
        0.0
    };
    Some(Adjusted {
        diff,
        se,
        df,
        slope,
        p,
        ci_half: t_alpha * se,
        mde: (t_alpha + t_beta) * se,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_covariate_that_carries_the_noise_is_removed() {
        // y = 10 + 2 x exactly in both groups, group b shifted by 1.
        let xa = [1.0, 2.0, 3.0, 4.0, 5.0];
        let xb = [1.5, 2.5, 3.5, 4.5, 5.5];
        let ya: Vec<f64> = xa.iter().map(|x| 10.0 + 2.0 * x).collect();
        let yb: Vec<f64> = xb.iter().map(|x| 11.0 + 2.0 * x).collect();
        let r = ancova((&ya, &xa), (&yb, &xb), Confidence::P95).unwrap();
        // The raw means differ by 2 (1 + 2 x 0.5): the adjustment finds the 1.
        assert!(
            (r.diff - 1.0).abs() < 1e-9 && (r.slope - 2.0).abs() < 1e-9,
            "{r:?}"
        );
        assert!(r.se < 1e-9 && r.p == 0.0, "{r:?}");
    }

    #[test]
    fn without_a_relation_it_is_a_t_test_with_one_degree_less() {
        // Covariate unrelated to y: the slope is ~0, the difference the raw one.
        let xa = [1.0, 2.0, 3.0, 4.0];
        let xb = [1.0, 2.0, 3.0, 4.0];
        let ya = [5.0, 6.0, 6.0, 5.0];
        let yb = [7.0, 8.0, 8.0, 7.0];
        let r = ancova((&ya, &xa), (&yb, &xb), Confidence::P95).unwrap();
        assert!(r.slope.abs() < 1e-9 && (r.diff - 2.0).abs() < 1e-9, "{r:?}");
        assert_eq!(r.df, 5.0);
        assert!(r.p < 0.05 && r.mde > r.ci_half, "{r:?}");
        // No spread in the covariate: nothing to fit.
        let flat = [3.0; 4];
        assert!(ancova((&ya, &flat), (&yb, &flat), Confidence::P95).is_none());
        assert!(ancova((&ya[..1], &xa[..1]), (&yb, &xb), Confidence::P95).is_none());
    }
}
