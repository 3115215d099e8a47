//! Bencher Metric Format: `{benchmark: {measure: {value, lower_value?,
//! upper_value?}}}`.
//!
//! One benchmark per arm, named as the report names it (`kernbench 2x pv`).
//! Measures: pgbench-like throughput under Bencher's built-in `throughput`
//! (operations per second: a transaction is the operation); kernbench-like
//! seconds under `elapsed-seconds`, a measure of its own (Bencher's built-in
//! `latency` is in nanoseconds, and a build's time is no latency). Lower and
//! upper values are the smallest and largest run; an arm with a censored run
//! has no value on its unbounded side (no upper time, no lower throughput).

use std::collections::BTreeMap;

use serde::Serialize;

use super::ArmSummary;
use crate::results::Metric;

/// Measure slug of kernbench-like elapsed seconds.
pub const ELAPSED_MEASURE: &str = "elapsed-seconds";
/// Bencher's built-in throughput measure (operations per second).
pub const THROUGHPUT_MEASURE: &str = "throughput";

#[derive(Serialize)]
struct MetricValue {
    value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lower_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upper_value: Option<f64>,
}

pub fn render(arms: &[ArmSummary]) -> String {
    let mut doc: BTreeMap<String, BTreeMap<&'static str, MetricValue>> = BTreeMap::new();
    for a in arms {
        let measure = match a.metric {
            Metric::ElapsedS => ELAPSED_MEASURE,
            Metric::Tps => THROUGHPUT_MEASURE,
        };
        // A censored time is a lower bound (its upper side is open), a
        // censored throughput an upper bound (its lower side is).
        let (lower_known, upper_known) = match (a.censored > 0, a.metric.lower_is_better()) {
            (false, _) => (true, true),
            (true, true) => (true, false),
            (true, false) => (false, true),
        };
        let metric = MetricValue {
            value: a.mean(),
            lower_value: lower_known.then(|| a.min()),
            upper_value: upper_known.then(|| a.max()),
        };
        doc.entry(a.arm.to_string()).or_default().insert(measure, metric);
    }
    serde_json::to_string_pretty(&doc).expect("metrics serialize") + "\n"
}
