//! `--json`: the same numbers as the text, for scripts. Non-finite numbers
//! (an undefined stddev, a percent of a zero mean) are null.

use serde::Serialize;

use super::plot::SYMBOLS;
use super::{Analysis, MinistatError};
use crate::stats::{Comparison, MedianRule, PercentInterval, PercentMethod, TMethod, TSource};

#[derive(Serialize)]
struct Report {
    /// Percent.
    confidence: f64,
    median_rule: MedianRule,
    t_method: TMethod,
    t_source: TSource,
    percent_method: PercentMethod,
    sets: Vec<Set>,
    comparisons: Vec<Compared>,
}

#[derive(Serialize)]
struct Set {
    name: String,
    symbol: char,
    n: usize,
    min: f64,
    max: f64,
    median: f64,
    mean: f64,
    stddev: f64,
}

#[derive(Serialize)]
struct Compared {
    set: String,
    reference: String,
    difference: f64,
    /// ministat's "+/-".
    half_width: f64,
    interval: [f64; 2],
    percent: f64,
    /// ministat's percent "+/-" (only with its method).
    percent_half_width: Option<f64>,
    /// None when Fieller's set is unbounded.
    percent_interval: Option<[f64; 2]>,
    t_method: TMethod,
    t: f64,
    df: f64,
    pooled_s: Option<f64>,
    proven: bool,
}

pub fn render(analysis: &Analysis) -> Result<Vec<u8>, MinistatError> {
    let sets = analysis
        .sets
        .iter()
        .enumerate()
        .map(|(index, set)| {
            let s = set.sample.summary(analysis.median_rule);
            Set {
                name: set.name.to_string_lossy().into_owned(),
                symbol: SYMBOLS[index + 1] as char,
                n: s.n,
                min: s.min,
                max: s.max,
                median: s.median,
                mean: s.mean,
                stddev: s.stddev,
            }
        })
        .collect::<Vec<_>>();
    let comparisons = analysis
        .comparisons
        .iter()
        .enumerate()
        .map(|(i, c)| compared(c, &sets[i + 1].name, &sets[0].name, analysis.options.t_method))
        .collect();
    let options = &analysis.options;
    let report = Report {
        confidence: options.confidence.percent(),
        median_rule: analysis.median_rule,
        t_method: options.t_method,
        // Welch's fractional df has no table row.
        t_source: match options.t_method {
            TMethod::Welch => TSource::Exact,
            TMethod::Student => options.t_source,
        },
        percent_method: options.percent,
        sets,
        comparisons,
    };
    let mut out = serde_json::to_vec_pretty(&report)?;
    out.push(b'\n');
    Ok(out)
}

fn compared(c: &Comparison, set: &str, reference: &str, t_method: TMethod) -> Compared {
    let (percent_half_width, percent_interval) = match c.percent_interval {
        PercentInterval::HalfWidth(h) => (Some(h), Some([c.percent - h.abs(), c.percent + h.abs()])),
        PercentInterval::Bounds { low, high } => (None, Some([low, high])),
        PercentInterval::Unbounded => (None, None),
    };
    Compared {
        set: set.to_string(),
        reference: reference.to_string(),
        difference: c.difference,
        half_width: c.half_width,
        interval: [c.difference - c.half_width, c.difference + c.half_width],
        percent: c.percent,
        percent_half_width,
        percent_interval,
        t_method,
        t: c.t,
        df: c.df,
        pooled_s: c.pooled_s,
        proven: c.proven,
    }
}
