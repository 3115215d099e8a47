//! Number formats and a small table type shared by the text and Markdown
//! renderings, so both show the same figures.

use super::censored::{trivial_improvement, Bounded};
use crate::ministat::cfmt::g;
use crate::results::{GroupKey, Metric};

/// `%g` with 6 significant digits, as the seed's tables and ministat's
/// verdict lines print.
pub fn g6(x: f64) -> String {
    g(x, 6)
}

/// A statistic that may be a bound: `>= lo` for elapsed time, `<= hi` for
/// TPS, with `precision` significant digits.
pub fn bounded(b: Bounded, metric: Metric, precision: usize) -> String {
    if b.is_exact() {
        return g(b.lo, precision);
    }
    match metric {
        Metric::ElapsedS => format!(">= {}", g(b.lo, precision)),
        Metric::Tps => format!("<= {}", g(b.hi, precision)),
    }
}

/// An improvement range in percent, naming only the ends that say something.
pub fn improvement(b: Bounded, metric: Metric) -> String {
    if b.is_exact() {
        return g6(b.lo);
    }
    let trivial = trivial_improvement(metric);
    let lo = b.lo.is_finite() && b.lo > trivial.lo;
    let hi = b.hi.is_finite() && b.hi < trivial.hi;
    match (lo, hi) {
        (true, true) => format!("{} .. {}", g6(b.lo), g6(b.hi)),
        (true, false) => format!(">= {}", g6(b.lo)),
        (false, true) => format!("<= {}", g6(b.hi)),
        (false, false) => "unbounded".to_string(),
    }
}

/// `kernbench 2x`, `pgbench 1x c8`.
pub fn short_group(g: &GroupKey) -> String {
    let migrated = if g.migrated { " mig" } else { "" };
    match g.clients {
        Some(c) => format!("{} {} c{c}{migrated}", g.workload, g.overcommit),
        None => format!("{} {}{migrated}", g.workload, g.overcommit),
    }
}

/// Microseconds: whole ones as integers (medians of two runs may end in .5).
pub fn micros(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` for seconds since the Unix epoch.
pub fn utc(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (the
/// standard era-based conversion: 400-year eras of 146097 days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

impl Align {
    /// `left` left-aligned columns (labels) followed by `right` right-aligned
    /// ones (figures): the shape of every table here.
    pub fn columns(left: usize, right: usize) -> Vec<Align> {
        let mut columns = vec![Align::Left; left];
        columns.resize(left + right, Align::Right);
        columns
    }
}

/// Rows of cells under one or more header rows.
#[derive(Debug, Clone)]
pub struct Table {
    pub headers: Vec<Vec<String>>,
    pub align: Vec<Align>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: Vec<Vec<&str>>, align: Vec<Align>) -> Self {
        Self {
            headers: headers
                .into_iter()
                .map(|h| h.into_iter().map(String::from).collect())
                .collect(),
            align,
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Columns padded to their widest cell, two spaces apart, each line
    /// indented by `indent`.
    pub fn text(&self, indent: &str) -> String {
        let all = || self.headers.iter().chain(&self.rows);
        let columns = all().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                all()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        // A header row of empty cells exists for Markdown's sake only.
        for row in all().filter(|r| r.iter().any(|c| !c.is_empty())) {
            let mut line = String::from(indent);
            for (c, width) in widths.iter().enumerate() {
                let cell = row.get(c).map_or("", String::as_str);
                let pad = width - cell.chars().count();
                if c > 0 {
                    line.push_str("  ");
                }
                match self.align.get(c).copied().unwrap_or(Align::Left) {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&" ".repeat(pad));
                    }
                    Align::Right => {
                        line.push_str(&" ".repeat(pad));
                        line.push_str(cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// A GitHub-flavoured Markdown table; header rows are joined per column.
    pub fn markdown(&self) -> String {
        let columns = self.align.len();
        let header: Vec<String> = (0..columns)
            .map(|c| {
                self.headers
                    .iter()
                    .filter_map(|h| h.get(c))
                    .filter(|s| !s.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let line = |cells: &[String]| {
            let cells: Vec<String> = (0..columns)
                .map(|c| md_escape(cells.get(c).map_or("", String::as_str)))
                .collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let mut out = line(&header);
        let rule: Vec<&str> = self
            .align
            .iter()
            .map(|a| match a {
                Align::Left => ":--",
                Align::Right => "--:",
            })
            .collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// A table cell's text with Markdown's active characters escaped.
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '|' | '*' | '_' | '`' | '<' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Running text for Markdown: escaped like a cell, except inside `code`
/// spans, which are kept as code.
pub fn md_inline(s: &str) -> String {
    s.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                part.to_string()
            } else {
                md_escape(part)
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 is a leap day; 2026-11-25 10:00:00 checked with `date -u -d @1795600800`.
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_600_800), "2026-11-25 10:00:00 UTC");
    }

    #[test]
    fn bounds_read_as_bounds() {
        let capped = Bounded {
            lo: 15.02,
            hi: f64::INFINITY,
        };
        assert_eq!(bounded(capped, Metric::ElapsedS, 6), ">= 15.02");
        let stalled = Bounded { lo: 0.0, hi: 120.4 };
        assert_eq!(bounded(stalled, Metric::Tps, 6), "<= 120.4");
        assert_eq!(bounded(Bounded::exact(4.126667), Metric::Tps, 6), "4.12667");
        let imp = Bounded { lo: 45.9, hi: 100.0 };
        assert_eq!(improvement(imp, Metric::ElapsedS), ">= 45.9");
        let imp = Bounded {
            lo: f64::NEG_INFINITY,
            hi: -13.9,
        };
        assert_eq!(improvement(imp, Metric::ElapsedS), "<= -13.9");
        let imp = Bounded { lo: 79.7, hi: 111.0 };
        assert_eq!(improvement(imp, Metric::Tps), "79.7 .. 111");
        let imp = Bounded {
            lo: f64::NEG_INFINITY,
            hi: 100.0,
        };
        assert_eq!(improvement(imp, Metric::ElapsedS), "unbounded");
    }

    #[test]
    fn tables_align_and_escape() {
        let mut t = Table::new(vec![vec!["a", "value"]], vec![Align::Left, Align::Right]);
        t.push(vec!["long name".into(), "1".into()]);
        t.push(vec!["x|y".into(), ">= 15".into()]);
        assert_eq!(
            t.text(""),
            "a          value\nlong name      1\nx|y        >= 15\n"
        );
        assert_eq!(md_inline("a_b `x_y` c*"), "a\\_b `x_y` c\\*");
        assert_eq!(
            t.markdown(),
            "| a | value |\n| :-- | --: |\n| long name | 1 |\n| x\\|y | >= 15 |\n"
        );
    }
}
