//! C `printf` conversions that ministat's output is made of (`%g`, `%13.8g`),
//! reproduced for glibc: same digits, same exponent form, same `inf`/`nan`.

/// `%.{precision}g`.
pub fn g(x: f64, precision: usize) -> String {
    if x.is_nan() {
        // glibc shows the NaN's sign bit.
        return if x.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    let p = precision.max(1);
    // The exponent %e would print decides between %e and %f style; it must
    // be taken after rounding to p digits (9.9999995 -> 1.0000000e+01).
    // Rust's float formatting rounds exactly, ties to even, as glibc does.
    let sci = format!("{:.*e}", p - 1, x);
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!(
            "{}e{sign}{:02}",
            strip_fraction_zeros(mantissa),
            exp.unsigned_abs()
        )
    } else {
        let decimals = (p as i32 - 1 - exp) as usize;
        strip_fraction_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

/// `%{width}.{precision}g`: right-aligned in `width` columns.
pub fn g_width(x: f64, width: usize, precision: usize) -> String {
    format!("{:>width$}", g(x, precision))
}

/// %g drops trailing zeros of the fraction, and the point if nothing is left.
fn strip_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected strings from Python's `'%.6g' % x` / `'%.8g' % x`, which
    /// implements C's %g independently of this code.
    #[test]
    fn matches_c_g_conversion() {
        let cases: &[(f64, usize, &str)] = &[
            (0.0, 6, "0"),
            (-0.0, 6, "-0"),
            (1.0, 6, "1"),
            (100000.0, 6, "100000"),
            (1000000.0, 6, "1e+06"),
            (0.0001, 6, "0.0001"),
            (0.00001, 6, "1e-05"),
            (123456789.0, 8, "1.2345679e+08"),
            (7594.9696, 8, "7594.9696"),
            (-160.035, 6, "-160.035"),
            (2.10712345, 6, "2.10712"),
            (9.9999995, 8, "9.9999995"),
            (9.99999995, 8, "9.9999999"),
            (9.99999996, 8, "10"),
            (0.000099999996, 6, "0.0001"),
            (999999.6, 6, "1e+06"),
            (99999999.5, 8, "1e+08"),
            (0.00054772256, 8, "0.00054772256"),
            (1.5e-300, 6, "1.5e-300"),
            (2.5, 1, "2"),
            (1e100, 6, "1e+100"),
            (-2.5e-5, 8, "-2.5e-05"),
            (1234.5, 0, "1e+03"),
        ];
        for &(x, p, want) in cases {
            assert_eq!(g(x, p), want, "%.{p}g of {x:e}");
        }
    }

    #[test]
    fn special_values_like_glibc() {
        assert_eq!(g(f64::INFINITY, 6), "inf");
        assert_eq!(g(f64::NEG_INFINITY, 6), "-inf");
        assert_eq!(g(f64::NAN, 6), "nan");
        assert_eq!(g(-f64::NAN, 6), "-nan");
        assert_eq!(g_width(-f64::NAN, 13, 8), "         -nan");
        assert_eq!(g_width(31.165686, 13, 8), "    31.165686");
    }
}
