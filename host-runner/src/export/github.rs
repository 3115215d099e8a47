//! github-action-benchmark's custom JSON (`tool: customSmallerIsBetter` or
//! `customBiggerIsBetter`): an array of `{name, unit, value, range?, extra?}`.
//!
//! The action reads one direction per file (its `tool` input), so each
//! direction is its own format and file: kernbench-like seconds in the
//! smaller-is-better one, pgbench-like transactions per second in the
//! bigger-is-better one. `range` is `± sd` (a string, as the action shows it);
//! an arm with a censored run has none (its spread is unbounded on one side)
//! and says why in `extra`.

use serde::Serialize;

use super::ArmSummary;

#[derive(Serialize)]
struct Entry {
    name: String,
    unit: &'static str,
    value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    range: Option<String>,
    extra: String,
}

/// The file for the arms whose metric is lower-is-better (`smaller`) or not.
pub fn render(arms: &[ArmSummary], smaller: bool) -> String {
    let entries: Vec<Entry> = arms
        .iter()
        .filter(|a| a.metric.lower_is_better() == smaller)
        .map(|a| Entry {
            name: a.arm.to_string(),
            unit: a.unit(),
            value: a.mean(),
            range: a.sd().filter(|_| a.censored == 0).map(|sd| format!("± {sd:.4}")),
            extra: a.note(),
        })
        .collect();
    serde_json::to_string_pretty(&entries).expect("entries serialize") + "\n"
}
