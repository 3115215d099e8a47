//! The Mann–Whitney U (Wilcoxon rank-sum) test: no normality assumption, so
//! an outlier repetition cannot move it much. Exact permutation p-values for
//! small samples (ties included, through midranks), the normal approximation
//! with tie and continuity corrections beyond.

use super::student::normal_upper_tail;

/// Up to this many values in all the p-value is exact: the permutation
/// distribution's table has at most 31 × 3601 entries there.
const EXACT_MAX_N: usize = 60;

/// The outcome of a rank-sum test of `a` against `b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankTest {
    /// U of `a`: how many (a, b) pairs have a > b, ties counting one half.
    pub u: f64,
    /// One-sided p-value for "a tends to be larger than b".
    pub p_greater: f64,
    /// One-sided p-value for "a tends to be smaller than b".
    pub p_less: f64,
    /// Whether the p-values are exact (else the normal approximation).
    pub exact: bool,
}

/// Mann–Whitney U of `a` against `b`; `None` if either is empty or holds a
/// non-finite value.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<RankTest> {
    if a.is_empty() || b.is_empty() || a.iter().chain(b).any(|v| !v.is_finite()) {
        return None;
    }
    let (ranks, tie_sizes) = doubled_midranks(a, b);
    let (n1, n) = (a.len(), ranks.len());
    // Doubled midranks are integers, so the permutation distribution of their
    // sum over `a` can be tabulated exactly.
    let observed: u64 = ranks[..n1].iter().sum();
    let u = observed as f64 / 2.0 - (n1 * (n1 + 1)) as f64 / 2.0;
    if n <= EXACT_MAX_N {
        let counts = subset_sum_counts(&ranks, n1);
        let total: f64 = counts.iter().sum();
        let at_least: f64 = counts[observed as usize..].iter().sum();
        let at_most: f64 = counts[..=observed as usize].iter().sum();
        return Some(RankTest {
            u,
            p_greater: (at_least / total).min(1.0),
            p_less: (at_most / total).min(1.0),
            exact: true,
        });
    }
    let (n1f, n2f, nf) = (n1 as f64, (n - n1) as f64, n as f64);
    let ties: f64 = tie_sizes.iter().map(|&t| (t * t * t - t) as f64).sum();
    let variance = n1f * n2f / 12.0 * ((nf + 1.0) - ties / (nf * (nf - 1.0)));
    let centred = observed as f64 / 2.0 - n1f * (nf + 1.0) / 2.0;
    let (p_greater, p_less) = if variance > 0.0 {
        let sd = variance.sqrt();
        (
            normal_upper_tail((centred - 0.5) / sd),
            normal_upper_tail((-centred - 0.5) / sd),
        )
    } else {
        // Every value tied: no evidence either way.
        (1.0, 1.0)
    };
    Some(RankTest {
        u,
        p_greater: p_greater.min(1.0),
        p_less: p_less.min(1.0),
        exact: false,
    })
}

/// The smallest one-sided p-value the test can reach with samples of `n1`
/// and `n2` values (all of one above all of the other, no ties):
/// 1 / C(n1 + n2, n1). At 3 against 3 that is 0.05, so the test cannot prove
/// anything at 5 % there.
pub fn mann_whitney_min_p(n1: usize, n2: usize) -> f64 {
    let (small, n) = (n1.min(n2), n1 + n2);
    // C(n, k) = Π (n - k + i) / i, in floating point (exact for small n).
    let combinations = (1..=small).fold(1.0, |acc, i| acc * (n - small + i) as f64 / i as f64);
    1.0 / combinations
}

/// Doubled midranks of `a` then `b` (in input order), and the sizes of the
/// tie groups.
fn doubled_midranks(a: &[f64], b: &[f64]) -> (Vec<u64>, Vec<u64>) {
    let values: Vec<f64> = a.iter().chain(b).copied().collect();
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0; values.len()];
    let mut tie_sizes = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        // == rather than total_cmp: 0.0 and -0.0 are the same measurement.
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1..=end; twice their mean.
        for &i in &order[start..end] {
            ranks[i] = (start + 1 + end) as u64;
        }
        tie_sizes.push((end - start) as u64);
        start = end;
    }
    (ranks, tie_sizes)
}

/// counts[s] = how many k-element subsets of `ranks` sum to s.
fn subset_sum_counts(ranks: &[u64], k: usize) -> Vec<f64> {
    let max_sum: u64 = ranks.iter().sum();
    // table[j][s]: j-element subsets of the ranks seen so far with sum s.
    let mut table = vec![vec![0.0_f64; max_sum as usize + 1]; k + 1];
    table[0][0] = 1.0;
    for &rank in ranks {
        let rank = rank as usize;
        // Downwards, so each rank joins a subset at most once.
        for j in (1..=k).rev() {
            let (below, above) = table.split_at_mut(j);
            let (from, to) = (&below[j - 1], &mut above[0]);
            for s in (rank..to.len()).rev() {
                to[s] += from[s - rank];
            }
        }
    }
    table.swap_remove(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_example() {
        // R's ?wilcox.test (Hollander & Wolfe 1973, p. 69): W = 35,
        // p = 0.1272 for "x greater".
        let x = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46];
        let y = [1.15, 0.88, 0.90, 0.74, 1.21];
        let r = mann_whitney(&x, &y).unwrap();
        assert_eq!(r.u, 35.0);
        assert!(r.exact);
        // Exact: 382 of the 3003 subsets reach W >= 35 (brute force).
        assert!((r.p_greater - 382.0 / 3003.0).abs() < 1e-15, "{}", r.p_greater);
        assert!((r.p_greater - 0.1272).abs() < 5e-5);
    }

    #[test]
    fn ties_match_brute_force() {
        // Brute force over all C(9, 4) = 126 splits of the doubled midranks,
        // in a separate Python script: 7 sums >= the observed one, 125 <=.
        let a = [3.0, 5.0, 5.0, 7.0];
        let b = [1.0, 3.0, 5.0, 2.0, 2.0];
        let r = mann_whitney(&a, &b).unwrap();
        assert!((r.p_greater - 7.0 / 126.0).abs() < 1e-15, "{}", r.p_greater);
        assert!((r.p_less - 125.0 / 126.0).abs() < 1e-15, "{}", r.p_less);
    }

    #[test]
    fn minimum_p_is_reached_by_complete_separation() {
        let r = mann_whitney(&[4.0, 5.0, 6.0], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(r.p_greater, 0.05);
        assert_eq!(r.p_greater, mann_whitney_min_p(3, 3));
        assert_eq!(r.p_less, 1.0);
        assert!((mann_whitney_min_p(5, 5) - 1.0 / 252.0).abs() < 1e-18);
    }

    #[test]
    fn normal_approximation_is_close_to_exact() {
        // 31 + 31 values: beyond the exact limit; 30 + 30: exact. Shifted
        // interleaved sequences give moderate p-values to compare.
        let make = |n: usize, shift: f64| -> Vec<f64> { (0..n).map(|i| i as f64 * 1.7 + shift).collect() };
        let exact = mann_whitney(&make(30, 4.0), &make(30, 0.0)).unwrap();
        let approx = mann_whitney(&make(31, 4.0), &make(31, 0.0)).unwrap();
        assert!(exact.exact && !approx.exact);
        assert!(
            (exact.p_greater - approx.p_greater).abs() < 0.03,
            "{exact:?} {approx:?}"
        );
    }

    #[test]
    fn all_tied_proves_nothing() {
        let r = mann_whitney(&[2.0; 40], &[2.0; 40]).unwrap();
        assert_eq!((r.p_greater, r.p_less), (1.0, 1.0));
        let r = mann_whitney(&[2.0; 3], &[2.0; 3]).unwrap();
        assert_eq!((r.p_greater, r.p_less), (1.0, 1.0));
    }
}
