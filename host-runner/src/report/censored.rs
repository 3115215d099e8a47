//! Statistics of data of which some values are only bounds (censored runs).
//!
//! # The rules
//!
//! A censored run was stopped at its time cap, so its metric is known from one
//! side only. Each run is therefore an interval holding its true value:
//!
//! * elapsed time (lower is better): a completed run is `[x, x]`; a censored
//!   one `[x, +inf)`, x being the time it ran (the cap, or a little past it);
//! * TPS (higher is better): a completed run is `[x, x]`; a censored one
//!   `[0, x]`, x being the work done by the cap over the time it ran.
//!
//! The minimum, median, maximum and mean only grow when any value grows, so
//! each lies in `[statistic of the low ends, statistic of the high ends]`.
//! That interval is all the report claims: exact when both ends agree, else
//! shown as `>= lo` (elapsed) or `<= hi` (TPS). A standard deviation has no
//! such bound and is not given, and no value is ever made up for a capped run.
//!
//! A comparison of pv against base involving censored runs reports:
//!
//! * the **improvement** in percent (positive = pv better; elapsed:
//!   (base - pv) / base, TPS: (pv - base) / base) as the range it takes over
//!   both means' intervals. All base runs censored at cap C against completed
//!   pv runs of mean m gives (C - m) / C at worst and 100 % at best, printed as
//!   `improvement >= (C - m) / C`: the conservative end, as C is a lower bound.
//! * a **per-run factor**: the worst run of one arm against the best run of
//!   the other, each taken at its unfavourable end. All base runs >= C and pv
//!   runs of at most M give "every pv run at least C / M x faster". Claimed
//!   only above 1.
//! * **significance** from Gehan's generalised Wilcoxon test instead of
//!   Student's t, which needs every value. A pair of runs scores +1 or -1 only
//!   when their order is certain (a censored time x is certainly longer than a
//!   completed time below x), else 0, and the p-value is exact over all
//!   reassignments of the runs to the two arms. Both arms share the cap, so
//!   under "no difference" the runs are exchangeable and the test is exact. A
//!   rank test cannot prove much from few runs: 3 against 3 gives at best
//!   p = 0.1, never a difference at 95 %.
//!
//! The improvement and factor describe the observed runs; only the rank test
//! decides whether a difference is proven.

use serde::Serialize;

use crate::results::{LockMode, Metric};
use crate::stats::MedianRule;

/// A value known to lie in `[lo, hi]`; exact when `lo == hi`. An unbounded
/// end is infinite (null in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bounded {
    pub lo: f64,
    pub hi: f64,
}

impl Bounded {
    pub fn exact(x: f64) -> Self {
        Self { lo: x, hi: x }
    }

    pub fn is_exact(&self) -> bool {
        self.lo == self.hi
    }
}

/// The interval a run's recorded value stands for.
pub fn run_interval(value: f64, censored: bool, metric: Metric) -> Bounded {
    match (censored, metric) {
        (false, _) => Bounded::exact(value),
        (true, Metric::ElapsedS) => Bounded {
            lo: value,
            hi: f64::INFINITY,
        },
        (true, Metric::Tps) => Bounded { lo: 0.0, hi: value },
    }
}

/// min, median, max and mean of some runs, each as an interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundedSummary {
    pub min: Bounded,
    pub median: Bounded,
    pub max: Bounded,
    pub mean: Bounded,
}

/// The interval of each statistic; None without runs. The median is
/// ministat's (the upper middle value for an even count), as in its tables.
pub fn summarize(runs: &[Bounded]) -> Option<BoundedSummary> {
    if runs.is_empty() {
        return None;
    }
    let sorted = |end: fn(&Bounded) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(end).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (lows, highs) = (sorted(|b| b.lo), sorted(|b| b.hi));
    let n = runs.len();
    let pick = |i: usize| Bounded {
        lo: lows[i],
        hi: highs[i],
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    Some(BoundedSummary {
        min: pick(0),
        median: Bounded {
            lo: MedianRule::UpperMiddle.of_sorted(&lows),
            hi: MedianRule::UpperMiddle.of_sorted(&highs),
        },
        max: pick(n - 1),
        mean: Bounded {
            lo: mean(&lows),
            hi: mean(&highs),
        },
    })
}

/// The improvement of pv over base in percent (positive = pv better) over
/// the intervals of the two means. See the module's rules.
pub fn improvement(base: Bounded, pv: Bounded, metric: Metric) -> Bounded {
    let ratio = |num: f64, den: f64| if den == 0.0 { f64::INFINITY } else { num / den };
    match metric {
        // 100 (1 - pv/base): lowest with the slowest pv and fastest base.
        Metric::ElapsedS => Bounded {
            lo: 100.0 * (1.0 - ratio(pv.hi, base.lo)),
            hi: 100.0 * (1.0 - ratio(pv.lo, base.hi)),
        },
        // 100 (pv/base - 1): lowest with the weakest pv and strongest base.
        Metric::Tps => Bounded {
            lo: 100.0 * (ratio(pv.lo, base.hi) - 1.0),
            hi: 100.0 * (ratio(pv.hi, base.lo) - 1.0),
        },
    }
}

/// The ends of an improvement range that carry no information: -inf..100 %
/// for elapsed time, -100 %..+inf for TPS.
pub fn trivial_improvement(metric: Metric) -> Bounded {
    match metric {
        Metric::ElapsedS => Bounded {
            lo: f64::NEG_INFINITY,
            hi: 100.0,
        },
        Metric::Tps => Bounded {
            lo: -100.0,
            hi: f64::INFINITY,
        },
    }
}

/// Every run of `better` beat every run of the other arm by at least
/// `factor` (speed for elapsed time, throughput for TPS).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Dominance {
    pub better: LockMode,
    pub factor: f64,
}

/// The per-run factor of the module's rules, if one arm beat the other in
/// every pair of runs for certain.
pub fn dominance(base: &[Bounded], pv: &[Bounded], metric: Metric) -> Option<Dominance> {
    if base.is_empty() || pv.is_empty() {
        return None;
    }
    let min_lo = |runs: &[Bounded]| runs.iter().map(|b| b.lo).fold(f64::INFINITY, f64::min);
    let max_hi = |runs: &[Bounded]| runs.iter().map(|b| b.hi).fold(f64::NEG_INFINITY, f64::max);
    // How many times worse the best-case worst arm is than the worst case of
    // the other: elapsed min(slow) / max(fast); TPS min(strong) / max(weak).
    let factor = |winner: &[Bounded], loser: &[Bounded]| match metric {
        Metric::ElapsedS => min_lo(loser) / max_hi(winner),
        Metric::Tps => min_lo(winner) / max_hi(loser),
    };
    [
        (LockMode::Pv, factor(pv, base)),
        (LockMode::Base, factor(base, pv)),
    ]
    .into_iter()
    .find(|(_, f)| f.is_finite() && *f > 1.0)
    .map(|(better, factor)| Dominance { better, factor })
}

/// Gehan's test of pv against base.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Gehan {
    /// Pairs where pv is certainly above base minus pairs where it is
    /// certainly below (a value, not yet "better").
    pub score: i64,
    /// Two-sided p-value, exact.
    pub p: f64,
    /// The smallest p-value these run counts can give (no ties at all).
    pub min_p: f64,
}

/// +1 when `a` is certainly above `b`, -1 when certainly below, else 0.
fn order(a: &Bounded, b: &Bounded) -> i64 {
    if a.lo > b.hi {
        1
    } else if a.hi < b.lo {
        -1
    } else {
        0
    }
}

/// Gehan's generalised Wilcoxon test; None if an arm has no runs.
///
/// Mantel's form: each run gets h = (runs it is certainly above) - (runs it
/// is certainly below) among all runs pooled, and the statistic is the sum
/// of h over pv's runs (pairs within pv cancel). Its permutation distribution
/// is that of a sum of `pv.len()` of the pooled h, counted exactly by dynamic
/// programming over (runs taken, sum).
pub fn gehan(base: &[Bounded], pv: &[Bounded]) -> Option<Gehan> {
    if base.is_empty() || pv.is_empty() {
        return None;
    }
    let pooled: Vec<&Bounded> = pv.iter().chain(base).collect();
    let h: Vec<i64> = pooled
        .iter()
        .map(|a| pooled.iter().map(|b| order(a, b)).sum())
        .collect();
    let (n, k) = (pooled.len(), pv.len());
    let score: i64 = h[..k].iter().sum();
    // |sum of k scores| <= k (n - 1); index = sum + offset.
    let offset = (k * (n - 1)) as i64;
    let width = (2 * offset + 1) as usize;
    // counts[j][s]: subsets of j runs (of those seen so far) summing to s - offset.
    let mut counts = vec![vec![0.0_f64; width]; k + 1];
    counts[0][offset as usize] = 1.0;
    for (seen, &hi) in h.iter().enumerate() {
        for j in (1..=k.min(seen + 1)).rev() {
            let (lower, upper) = counts.split_at_mut(j);
            let (from, to) = (&lower[j - 1], &mut upper[0]);
            for (s, &c) in from.iter().enumerate() {
                if c != 0.0 {
                    let t = s as i64 + hi;
                    if (0..width as i64).contains(&t) {
                        to[t as usize] += c;
                    }
                }
            }
        }
    }
    let total: f64 = counts[k].iter().sum();
    let extreme: f64 = counts[k]
        .iter()
        .enumerate()
        .filter(|(s, _)| (*s as i64 - offset).abs() >= score.abs())
        .map(|(_, c)| c)
        .sum();
    Some(Gehan {
        score,
        p: (extreme / total).min(1.0),
        min_p: (2.0 / binomial(n, k)).min(1.0),
    })
}

/// C(n, k) in floating point (exact for the sizes here).
fn binomial(n: usize, k: usize) -> f64 {
    let k = k.min(n - k);
    (1..=k).fold(1.0, |acc, i| acc * (n - k + i) as f64 / i as f64)
}

/// Which arm the test's score favours for `metric` (None for a zero score).
pub fn favoured(score: i64, metric: Metric) -> Option<LockMode> {
    let pv_higher = match score.signum() {
        1 => true,
        -1 => false,
        _ => return None,
    };
    Some(if pv_higher != metric.lower_is_better() {
        LockMode::Pv
    } else {
        LockMode::Base
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(values: &[f64]) -> Vec<Bounded> {
        values.iter().map(|&v| Bounded::exact(v)).collect()
    }

    fn capped(values: &[f64], metric: Metric) -> Vec<Bounded> {
        values.iter().map(|&v| run_interval(v, true, metric)).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn censored_runs_are_one_sided_intervals() {
        assert_eq!(run_interval(5.0, false, Metric::Tps), Bounded::exact(5.0));
        let t = run_interval(15.0, true, Metric::ElapsedS);
        assert_eq!((t.lo, t.hi), (15.0, f64::INFINITY));
        let tps = run_interval(120.0, true, Metric::Tps);
        assert_eq!((tps.lo, tps.hi), (0.0, 120.0));
    }

    #[test]
    fn summary_of_partly_censored_elapsed() {
        // 10, 12 completed, one run stopped at 15 s: mean >= 37/3, max >= 15,
        // median (upper middle) exactly 12, min exactly 10.
        let mut runs = done(&[12.0, 10.0]);
        runs.extend(capped(&[15.0], Metric::ElapsedS));
        let s = summarize(&runs).unwrap();
        assert_eq!(s.min, Bounded::exact(10.0));
        assert_eq!(s.median, Bounded::exact(12.0));
        assert_eq!((s.max.lo, s.max.hi), (15.0, f64::INFINITY));
        assert!(close(s.mean.lo, 37.0 / 3.0) && s.mean.hi.is_infinite());
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn summary_of_partly_censored_tps() {
        // 700, 690 completed, one stalled run that did at most 120 TPS: the
        // minimum is somewhere in [0, 120], the maximum exactly 700.
        let mut runs = done(&[700.0, 690.0]);
        runs.extend(capped(&[120.0], Metric::Tps));
        let s = summarize(&runs).unwrap();
        assert_eq!(s.min, Bounded { lo: 0.0, hi: 120.0 });
        assert_eq!(s.max, Bounded::exact(700.0));
        assert_eq!(s.median, Bounded::exact(690.0));
        assert!(close(s.mean.lo, 1390.0 / 3.0) && close(s.mean.hi, 1510.0 / 3.0));
    }

    #[test]
    fn all_base_capped_gives_the_briefs_bounds() {
        // Base: 3 runs at a 20 s cap. pv: 4, 5, 6 s. Improvement >= (20 - 5)/20
        // = 75 % (the upper end, 100 %, is trivial); every pv run is at least
        // 20 / 6 = 3.33x faster.
        let base = capped(&[20.0, 20.0, 20.0], Metric::ElapsedS);
        let pv = done(&[4.0, 5.0, 6.0]);
        let (b, p) = (summarize(&base).unwrap(), summarize(&pv).unwrap());
        let imp = improvement(b.mean, p.mean, Metric::ElapsedS);
        assert!(close(imp.lo, 75.0), "{imp:?}");
        assert_eq!(imp.hi, trivial_improvement(Metric::ElapsedS).hi);
        let d = dominance(&base, &pv, Metric::ElapsedS).unwrap();
        assert_eq!(d.better, LockMode::Pv);
        assert!(close(d.factor, 20.0 / 6.0));
    }

    #[test]
    fn censored_pv_bounds_the_improvement_from_above() {
        // pv stopped at 20 s once (>= 20), 10 and 11 otherwise; base 12, 12, 12.
        // pv mean >= 41/3, so improvement <= 1 - (41/3)/12 = -13.9 %.
        let base = done(&[12.0, 12.0, 12.0]);
        let mut pv = done(&[10.0, 11.0]);
        pv.extend(capped(&[20.0], Metric::ElapsedS));
        let (b, p) = (summarize(&base).unwrap(), summarize(&pv).unwrap());
        let imp = improvement(b.mean, p.mean, Metric::ElapsedS);
        assert!(imp.lo.is_infinite() && imp.lo < 0.0);
        assert!(close(imp.hi, 100.0 * (1.0 - 41.0 / 36.0)), "{imp:?}");
        // Neither arm wins every pair (10 < 12 < 20).
        assert_eq!(dominance(&base, &pv, Metric::ElapsedS), None);
    }

    #[test]
    fn tps_bounds_with_a_stalled_base_run() {
        // Base: 690.2 completed, one run <= 120.4; pv 731.5 and 725.
        // Base mean in [345.1, 405.3], pv mean 728.25: improvement in
        // [728.25/405.3 - 1, 728.25/345.1 - 1] = [79.68 %, 111.02 %].
        let mut base = done(&[690.2]);
        base.extend(capped(&[120.4], Metric::Tps));
        let pv = done(&[731.5, 725.0]);
        let (b, p) = (summarize(&base).unwrap(), summarize(&pv).unwrap());
        let imp = improvement(b.mean, p.mean, Metric::Tps);
        assert!(close(imp.lo, 100.0 * (728.25 / 405.3 - 1.0)), "{imp:?}");
        assert!(close(imp.hi, 100.0 * (728.25 / 345.1 - 1.0)), "{imp:?}");
        let d = dominance(&base, &pv, Metric::Tps).unwrap();
        assert_eq!(d.better, LockMode::Pv);
        assert!(close(d.factor, 725.0 / 690.2));
    }

    #[test]
    fn uncensored_data_give_exact_values() {
        let base = done(&[778.622]);
        let pv = done(&[129.342]);
        let imp = improvement(
            summarize(&base).unwrap().mean,
            summarize(&pv).unwrap().mean,
            Metric::ElapsedS,
        );
        // The seed's 2x kernbench row: 83.3883 %.
        assert!(imp.is_exact() && (imp.lo - 83.3883).abs() < 5e-5, "{imp:?}");
    }

    #[test]
    fn gehan_three_against_three_cannot_prove() {
        // Complete separation, 3 vs 3: 2 of C(6, 3) = 20 assignments are as
        // extreme, p = 0.1, which is also the best these counts can do.
        let base = capped(&[15.0, 15.0, 15.0], Metric::ElapsedS);
        let pv = done(&[7.9, 8.4, 8.1]);
        let g = gehan(&base, &pv).unwrap();
        assert_eq!(g.score, -9);
        assert!(close(g.p, 0.1) && close(g.min_p, 0.1), "{g:?}");
        assert_eq!(favoured(g.score, Metric::ElapsedS), Some(LockMode::Pv));
        assert_eq!(favoured(g.score, Metric::Tps), Some(LockMode::Base));
    }

    #[test]
    fn gehan_without_censoring_is_mann_whitney() {
        // 5 vs 5 separated completely: exact two-sided p = 2 / C(10, 5) = 2/252.
        let a = done(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let b = done(&[6.0, 7.0, 8.0, 9.0, 10.0]);
        let g = gehan(&a, &b).unwrap();
        assert_eq!(g.score, 25);
        assert!(close(g.p, 2.0 / 252.0), "{g:?}");
        // One swap (5 <-> 6): U one off the extreme; C(10,5) has 2 subsets at
        // each extreme and 2 one step in, so p = 4/252.
        let a = done(&[1.0, 2.0, 3.0, 4.0, 6.0]);
        let b = done(&[5.0, 7.0, 8.0, 9.0, 10.0]);
        let g = gehan(&a, &b).unwrap();
        assert_eq!(g.score, 23);
        assert!(close(g.p, 4.0 / 252.0), "{g:?}");
    }

    #[test]
    fn gehan_all_censored_proves_nothing() {
        let base = capped(&[15.0, 15.1, 15.0], Metric::ElapsedS);
        let pv = capped(&[15.2, 15.0, 15.0], Metric::ElapsedS);
        let g = gehan(&base, &pv).unwrap();
        assert_eq!((g.score, g.p), (0, 1.0));
        assert_eq!(favoured(g.score, Metric::ElapsedS), None);
        assert!(gehan(&[], &pv).is_none());
    }

    #[test]
    fn gehan_undetermined_pairs_score_zero() {
        // Censored at 10 (>= 10) against completed 12: order unknown, 0.
        // Against 8: certainly above. pv = {>=10}, base = {8, 12}.
        let base = done(&[8.0, 12.0]);
        let pv = capped(&[10.0], Metric::ElapsedS);
        let g = gehan(&base, &pv).unwrap();
        assert_eq!(g.score, 1);
        // h over pooled (pv, 8, 12): pv +1, 8: -2, 12: +1; one-run subsets:
        // |1|, |-2|, |1| all >= 1: p = 1.
        assert_eq!(g.p, 1.0);
    }
}
