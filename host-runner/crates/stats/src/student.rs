//! Student's t quantiles: exact ones, and the table ministat prints with.

use super::special::{inc_beta, inc_gamma_upper, invert_decreasing};

/// The confidence levels ministat offers (`-c`); 95 % by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Confidence {
    /// 80 %.
    P80,
    /// 90 %.
    P90,
    /// 95 %.
    #[default]
    P95,
    /// 98 %.
    P98,
    /// 99 %.
    P99,
    /// 99.5 % as asked; ministat's table column is 99.8 % (see [`ministat_t`]).
    P99_5,
}

impl Confidence {
    /// Every level, ascending.
    pub const ALL: [Confidence; 6] = [
        Confidence::P80,
        Confidence::P90,
        Confidence::P95,
        Confidence::P98,
        Confidence::P99,
        Confidence::P99_5,
    ];

    /// The level in percent, as the user writes it.
    pub fn percent(self) -> f64 {
        match self {
            Confidence::P80 => 80.0,
            Confidence::P90 => 90.0,
            Confidence::P95 => 95.0,
            Confidence::P98 => 98.0,
            Confidence::P99 => 99.0,
            Confidence::P99_5 => 99.5,
        }
    }

    /// Exact match only, like ministat: 95 and 95.0 are fine, 96 is not.
    pub fn from_percent(percent: f64) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.percent() == percent)
    }

    /// Two-sided coverage as a probability (0.95 for 95 %).
    pub fn level(self) -> f64 {
        self.percent() / 100.0
    }
}

/// The t with P(|T| > t) = 1 - `level` for Student's t with `df` degrees of
/// freedom (df may be fractional, as Welch's is; infinite gives the normal).
/// NaN when df is not positive.
pub fn t_quantile(level: f64, df: f64) -> f64 {
    if df.is_nan() || df <= 0.0 || !(0.0..1.0).contains(&level) {
        return f64::NAN;
    }
    if df.is_infinite() {
        return normal_quantile(level);
    }
    // P(|T| > t) = I_{df/(df+t²)}(df/2, 1/2).
    let two_sided_tail = |t: f64| {
        let t2 = t * t;
        inc_beta(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2))
    };
    invert_decreasing(two_sided_tail, 1.0 - level)
}

/// Above this df the normal tail is used: it differs from Student's by less
/// than 1e-7, and the continued fraction would need ever more terms.
const NORMAL_DF: f64 = 1e7;

/// P(T > t) for Student's t with `df` degrees of freedom (fractional df as
/// Welch's; infinite gives the normal): the one-sided p-value of a t
/// statistic. NaN when t is NaN or df is not positive.
pub fn t_upper_tail(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return if t > 0.0 { 0.0 } else { 1.0 };
    }
    if df > NORMAL_DF {
        return normal_upper_tail(t);
    }
    // P(|T| > |t|) = I_{df/(df+t²)}(df/2, 1/2), as in `t_quantile`.
    let t2 = t * t;
    let two_sided = inc_beta(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2));
    if t >= 0.0 {
        two_sided / 2.0
    } else {
        1.0 - two_sided / 2.0
    }
}

/// P(Z > z) for the standard normal.
pub fn normal_upper_tail(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    // P(|Z| > |z|) = erfc(|z|/√2) = Q(1/2, z²/2).
    let two_sided = inc_gamma_upper(0.5, z * z / 2.0);
    if z >= 0.0 {
        two_sided / 2.0
    } else {
        1.0 - two_sided / 2.0
    }
}

/// The z with P(|Z| > z) = 1 - `level` for the standard normal.
pub fn normal_quantile(level: f64) -> f64 {
    // P(|Z| > z) = erfc(z/√2) = Q(1/2, z²/2).
    invert_decreasing(|z| inc_gamma_upper(0.5, z * z / 2.0), 1.0 - level)
}

/// Cells where the table in ministat 20150715 (Debian's package) differs from
/// the correctly rounded quantile it is meant to hold: all in the 99.5 %
/// column, the old published values. df 1 cannot occur in ministat (every
/// set has n >= 3, so df >= 4); the others were checked against the binary.
const MINISTAT_ERRATA: &[(u64, f64)] = &[
    (1, 318.313),
    (7, 4.782),
    (8, 4.499),
    (9, 4.296),
    (10, 4.143),
    (11, 4.024),
    (12, 3.929),
];

/// The t that Debian's ministat uses at `df` degrees of freedom.
///
/// ministat reads a 3-decimal table with rows for df 1..=100 and one "infinity"
/// row (normal quantiles) for everything above 100. Its column labelled
/// 99.5 % actually holds the 99.8 % two-sided quantiles (P(T > t) = 0.001), in
/// the finite rows and the infinity row alike (z = 3.090), so `-c 99.5` is
/// stricter than it says. This reproduces the table by rounding exact
/// quantiles, except in the 99.5 % cells where ministat kept older published
/// values (`MINISTAT_ERRATA`); [`t_quantile`] gives the true values.
pub fn ministat_t(confidence: Confidence, df: u64) -> f64 {
    let tabulated = match confidence {
        Confidence::P99_5 => 0.998,
        other => other.level(),
    };
    if confidence == Confidence::P99_5 {
        if let Some(&(_, t)) = MINISTAT_ERRATA.iter().find(|(row, _)| *row == df) {
            return t;
        }
    }
    // ministat indexes its table by df, and row 0 is the infinity row.
    let exact = if df == 0 || df > 100 {
        normal_quantile(tabulated)
    } else {
        t_quantile(tabulated, df as f64)
    };
    // Integer over integer is correctly rounded, so this is the same double
    // as the decimal literal in ministat's source.
    (exact * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two-sided critical values from standard printed t tables (e.g. NIST/
    /// SEMATECH e-Handbook 1.3.6.7.2, Fisher & Yates), one row per df, in
    /// the order 80, 90, 95, 98, 99, 99.5 %.
    const PUBLISHED: [(f64, [f64; 6]); 7] = [
        (1.0, [3.078, 6.314, 12.706, 31.821, 63.657, 127.321]),
        (2.0, [1.886, 2.920, 4.303, 6.965, 9.925, 14.089]),
        (5.0, [1.476, 2.015, 2.571, 3.365, 4.032, 4.773]),
        (10.0, [1.372, 1.812, 2.228, 2.764, 3.169, 3.581]),
        (18.0, [1.330, 1.734, 2.101, 2.552, 2.878, 3.197]),
        (30.0, [1.310, 1.697, 2.042, 2.457, 2.750, 3.030]),
        (f64::INFINITY, [1.282, 1.645, 1.960, 2.326, 2.576, 2.807]),
    ];

    #[test]
    fn exact_quantiles_match_published_tables_at_every_level() {
        for (df, row) in PUBLISHED {
            for (confidence, want) in Confidence::ALL.into_iter().zip(row) {
                let got = t_quantile(confidence.level(), df);
                assert!(
                    (got - want).abs() <= 0.0005 + 1e-12,
                    "df {df} at {}%: got {got}, table {want}",
                    confidence.percent()
                );
            }
        }
    }

    #[test]
    fn exact_quantiles_to_full_precision() {
        // Reference values from mpmath 1.3 at 30 digits (bisection on its
        // betainc and erfinv): t(0.975, 10), t(0.995, 4), z(0.975).
        assert!((t_quantile(0.95, 10.0) - 2.228_138_851_986_274).abs() < 1e-10);
        assert!((t_quantile(0.99, 4.0) - 4.604_094_871_349_992).abs() < 1e-10);
        assert!((normal_quantile(0.95) - 1.959_963_984_540_054).abs() < 1e-12);
        // df = 1 is the Cauchy distribution: t = tan(π level / 2).
        let cauchy = (std::f64::consts::PI * 0.9 / 2.0).tan();
        assert!((t_quantile(0.9, 1.0) - cauchy).abs() < 1e-10);
        // Fractional df sits between its neighbours.
        let t = t_quantile(0.95, 17.5);
        assert!(t < t_quantile(0.95, 17.0) && t > t_quantile(0.95, 18.0));
    }

    #[test]
    fn upper_tail_closed_forms() {
        // df 1 (Cauchy): 1/2 - atan(t)/π; df 2: (1 - t/√(t² + 2)) / 2.
        for t in [-3.5, -0.4, 0.0, 0.7, 2.0, 12.0, 300.0] {
            let cauchy = 0.5 - f64::atan(t) / std::f64::consts::PI;
            assert!((t_upper_tail(t, 1.0) - cauchy).abs() < 1e-14, "df 1, t {t}");
            let two = (1.0 - t / (t * t + 2.0).sqrt()) / 2.0;
            assert!((t_upper_tail(t, 2.0) - two).abs() < 1e-14, "df 2, t {t}");
        }
        assert_eq!(t_upper_tail(f64::INFINITY, 3.0), 0.0);
        assert_eq!(t_upper_tail(f64::NEG_INFINITY, 3.0), 1.0);
        assert!(t_upper_tail(1.0, 0.0).is_nan());
        assert!(t_upper_tail(f64::NAN, 3.0).is_nan());
    }

    #[test]
    fn upper_tail_to_full_precision() {
        // mpmath 1.3 at 30 digits: betainc(df/2, 1/2, 0, df/(df+t²),
        // regularized=True) / 2, and ncdf for the normal.
        assert!((t_upper_tail(2.5, 4.0) - 0.033_383_272_405_994_07).abs() < 1e-15);
        assert!((t_upper_tail(6.1, 3.853_483_039_455_997) - 0.002_061_190_399_585_95).abs() < 1e-15);
        assert!((t_upper_tail(-1.3, 17.5) - 0.894_768_115_511_487).abs() < 1e-14);
        assert!((normal_upper_tail(1.959_963_984_540_054) - 0.025).abs() < 1e-15);
        assert!((normal_upper_tail(-1.0) - 0.841_344_746_068_542_9).abs() < 1e-15);
        assert_eq!(t_upper_tail(1.5, 1e9), normal_upper_tail(1.5));
    }

    #[test]
    fn upper_tail_inverts_the_quantile() {
        for df in [1.0, 2.5, 4.0, 9.0, 30.0, 250.0] {
            for level in [0.8, 0.95, 0.99] {
                let t = t_quantile(level, df);
                let p = t_upper_tail(t, df);
                assert!(
                    (p - (1.0 - level) / 2.0).abs() < 1e-12,
                    "df {df}, level {level}: {p}"
                );
            }
        }
    }

    #[test]
    fn degenerate_df_is_nan() {
        assert!(t_quantile(0.95, 0.0).is_nan());
        assert!(t_quantile(0.95, f64::NAN).is_nan());
    }

    #[test]
    fn ministat_table_quirks() {
        // Rows above 100 use the normal quantile, even at df 101.
        assert_eq!(ministat_t(Confidence::P95, 101), 1.960);
        assert_eq!(ministat_t(Confidence::P95, 100), 1.984);
        // The 99.5 % column is really 99.8 %: 3.090 in the infinity row,
        // where a true 99.5 % would be 2.807.
        assert_eq!(ministat_t(Confidence::P99_5, 1000), 3.090);
        assert_eq!(ministat_t(Confidence::P99_5, 4), 7.173);
        assert_eq!(ministat_t(Confidence::P99_5, 10), 4.143);
        assert_eq!(ministat_t(Confidence::P80, 78), 1.292);
    }

    #[test]
    fn confidence_parsing_is_exact() {
        assert_eq!(Confidence::from_percent(95.0), Some(Confidence::P95));
        assert_eq!(Confidence::from_percent(99.5), Some(Confidence::P99_5));
        assert_eq!(Confidence::from_percent(96.0), None);
        assert_eq!(Confidence::from_percent(0.95), None);
    }
}
