//! ministat's text layout: legend, plot, table, verdicts.

use std::ffi::OsStr;

use super::cfmt::{g, g_width};
use super::plot::{self, PlotSet, SYMBOLS};
use super::{Analysis, TextOptions};
use crate::stats::{Comparison, PercentInterval, Summary, TMethod};

pub(crate) const TABLE_HEADER: &str =
    "    N           Min           Max        Median           Avg        Stddev\n";

/// Bytes, not a String: file names need not be UTF-8 and are echoed as is.
pub fn render(analysis: &Analysis, options: &TextOptions, width: usize) -> Vec<u8> {
    let mut out = Vec::new();
    if options.legend {
        for (index, set) in analysis.sets.iter().enumerate() {
            out.push(SYMBOLS[index + 1]);
            out.push(b' ');
            out.extend_from_slice(os_bytes(&set.name));
            out.push(b'\n');
        }
    }
    let summaries: Vec<Summary> = analysis
        .sets
        .iter()
        .map(|set| set.sample.summary(analysis.median_rule))
        .collect();
    if options.plot {
        let plot_sets: Vec<PlotSet<'_>> = analysis
            .sets
            .iter()
            .zip(&summaries)
            .map(|(set, summary)| PlotSet {
                values: set.sample.values(),
                mean: summary.mean,
                median: summary.median,
                stddev: summary.stddev,
            })
            .collect();
        out.extend_from_slice(plot::render(&plot_sets, width, options.separate_bars).as_bytes());
    }
    if options.legend {
        out.extend_from_slice(TABLE_HEADER.as_bytes());
    }
    for (index, summary) in summaries.iter().enumerate() {
        out.extend_from_slice(table_row(index, summary).as_bytes());
        if let Some(comparison) = index.checked_sub(1).and_then(|i| analysis.comparisons.get(i)) {
            let percent = analysis.options.confidence.percent();
            out.extend_from_slice(verdict(comparison, percent, analysis.options.t_method).as_bytes());
        }
    }
    out
}

fn table_row(index: usize, s: &Summary) -> String {
    format!(
        "{} {:>3} {} {} {} {} {}\n",
        SYMBOLS[index + 1] as char,
        s.n,
        g_width(s.min, 13, 8),
        g_width(s.max, 13, 8),
        g_width(s.median, 13, 8),
        g_width(s.mean, 13, 8),
        g_width(s.stddev, 13, 8),
    )
}

fn verdict(c: &Comparison, confidence: f64, method: TMethod) -> String {
    if !c.proven {
        return format!("No difference proven at {confidence:.1}% confidence\n");
    }
    let percent = match c.percent_interval {
        PercentInterval::HalfWidth(h) => format!("{}% +/- {}%", g(c.percent, 6), g(h, 6)),
        PercentInterval::Bounds { low, high } => {
            format!("{}% [{}%, {}%] (Fieller)", g(c.percent, 6), g(low, 6), g(high, 6))
        }
        PercentInterval::Unbounded => format!("{}% [unbounded] (Fieller)", g(c.percent, 6)),
    };
    let how = match (method, c.pooled_s) {
        (TMethod::Student, Some(pooled)) => format!("Student's t, pooled s = {}", g(pooled, 6)),
        _ => format!("Welch's t, df = {}", g(c.df, 6)),
    };
    format!(
        "Difference at {confidence:.1}% confidence\n\t{} +/- {}\n\t{percent}\n\t({how})\n",
        g(c.difference, 6),
        g(c.half_width, 6),
    )
}

#[cfg(unix)]
fn os_bytes(s: &OsStr) -> &[u8] {
    use std::os::unix::ffi::OsStrExt;
    s.as_bytes()
}

#[cfg(not(unix))]
fn os_bytes(s: &OsStr) -> &[u8] {
    s.as_encoded_bytes()
}
