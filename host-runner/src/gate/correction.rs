//! Multiple-comparison control: a matrix of 20 groups tested at 5 % each
//! would raise a false alarm in 64 % of unchanged runs. Adjusted p-values
//! are compared with alpha directly.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Correction {
    /// Holm's step-down: family-wise error rate <= alpha under any
    /// dependence, and never less powerful than Bonferroni.
    Holm,
    /// Benjamini–Hochberg step-up: false discovery rate <= alpha (for
    /// independent or positively dependent tests). With no real change
    /// anywhere that is the family-wise rate too; with real changes it lets
    /// more of them through than Holm, at the price of some false ones.
    #[serde(alias = "benjamini-hochberg")]
    #[value(alias = "benjamini-hochberg")]
    Bh,
    /// Bonferroni: p × m. Holm is uniformly better; here for comparison.
    Bonferroni,
    /// No correction: each test at alpha (false alarms grow with the matrix).
    None,
}

impl Correction {
    pub fn describe(self) -> &'static str {
        match self {
            Correction::Holm => "Holm",
            Correction::Bh => "Benjamini–Hochberg",
            Correction::Bonferroni => "Bonferroni",
            Correction::None => "no correction",
        }
    }

    /// The largest raw p-value that can still be significant in a family of
    /// `m`, in the most favourable case: Holm and Bonferroni test their
    /// smallest p against alpha/m; BH can reject every p <= alpha when all
    /// are that small.
    pub fn best_case_threshold(self, alpha: f64, m: usize) -> f64 {
        match self {
            Correction::Holm | Correction::Bonferroni => alpha / m.max(1) as f64,
            Correction::Bh | Correction::None => alpha,
        }
    }
}

/// Adjusted p-values, in the order of `p`. Reject where adjusted <= alpha.
pub fn adjust(p: &[f64], method: Correction) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; m];
    match method {
        Correction::None => adjusted.copy_from_slice(p),
        Correction::Bonferroni => {
            for (a, &raw) in adjusted.iter_mut().zip(p) {
                *a = (raw * m as f64).min(1.0);
            }
        }
        Correction::Holm => {
            // (m - i) p_(i) for the i-th smallest (from 0), made monotone upwards.
            let mut running: f64 = 0.0;
            for (i, &index) in order.iter().enumerate() {
                running = running.max(((m - i) as f64 * p[index]).min(1.0));
                adjusted[index] = running;
            }
        }
        Correction::Bh => {
            // m / (i + 1) p_(i), made monotone downwards from the largest.
            let mut running: f64 = 1.0;
            for (i, &index) in order.iter().enumerate().rev() {
                running = running.min(m as f64 / (i + 1) as f64 * p[index]);
                adjusted[index] = running.min(1.0);
            }
        }
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?} != {want:?}");
        }
    }

    // Expected values worked by hand from the definitions (they agree with
    // R's p.adjust).

    #[test]
    fn holm() {
        close(
            &adjust(&[0.01, 0.04, 0.03, 0.02, 0.05], Correction::Holm),
            &[0.05, 0.09, 0.09, 0.08, 0.09],
        );
        // Monotonicity carries a large early value forward.
        close(
            &adjust(&[0.04, 0.001, 0.03], Correction::Holm),
            &[0.06, 0.003, 0.06],
        );
    }

    #[test]
    fn benjamini_hochberg() {
        close(
            &adjust(&[0.01, 0.04, 0.03, 0.02, 0.05], Correction::Bh),
            &[0.05, 0.05, 0.05, 0.05, 0.05],
        );
        close(
            &adjust(
                &[0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205],
                Correction::Bh,
            ),
            &[
                0.008,
                0.032,
                0.0672,
                0.0672,
                0.0672,
                0.08,
                0.084_571_428_571_428_57,
                0.205,
            ],
        );
    }

    #[test]
    fn bonferroni_and_none() {
        close(&adjust(&[0.01, 0.3], Correction::Bonferroni), &[0.02, 0.6]);
        close(&adjust(&[0.01, 0.6], Correction::Bonferroni), &[0.02, 1.0]);
        close(&adjust(&[0.01, 0.3], Correction::None), &[0.01, 0.3]);
    }

    #[test]
    fn ones_and_empty_families() {
        close(&adjust(&[1.0, 1.0, 0.002], Correction::Holm), &[1.0, 1.0, 0.006]);
        assert!(adjust(&[], Correction::Holm).is_empty());
        assert!(adjust(&[], Correction::Bh).is_empty());
    }
}
