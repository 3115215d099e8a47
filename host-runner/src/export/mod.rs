//! `pvbench report DIR --export FORMAT=PATH`: a results directory's arms in
//! the formats benchmark dashboards read, one file per format
//! ([`github`]: github-action-benchmark's custom JSON; [`bmf`]: Bencher
//! Metric Format).
//!
//! Computed from the cells themselves ([`summarize`]), not from the report's
//! figures, so an exporter depends on the results' model only. One entry per
//! arm (comparison group x lock mode):
//! - failed cells are left out (they have no value: as in the report);
//! - a censored cell counts at its bound (kernbench: the cap, a lower bound
//!   of its time; pgbench: the throughput by the cap, an upper bound), so an
//!   arm with one is itself a bound, and the entry says so (its unbounded
//!   side has no range);
//! - an arm with no cell left has no entry.

mod bmf;
mod github;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::results::{self, ArmKey, CellStatus, Metric, Results, ResultsError};

/// A dashboard format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// github-action-benchmark's `customSmallerIsBetter`: the arms judged by
    /// a lower-is-better metric (kernbench-like seconds).
    SmallerIsBetter,
    /// github-action-benchmark's `customBiggerIsBetter`: the arms judged by a
    /// higher-is-better metric (pgbench-like transactions per second).
    BiggerIsBetter,
    /// Bencher Metric Format: every arm, each under its own measure.
    Bmf,
}

impl Format {
    /// Every format, by its name on the command line (github-action-benchmark's
    /// own `tool` names, so the file and the action's input match).
    pub const NAMES: [&'static str; 3] = ["customSmallerIsBetter", "customBiggerIsBetter", "bmf"];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::SmallerIsBetter => Self::NAMES[0],
            Format::BiggerIsBetter => Self::NAMES[1],
            Format::Bmf => Self::NAMES[2],
        }
    }

    /// The file's text for `arms`.
    pub fn render(self, arms: &[ArmSummary]) -> String {
        match self {
            Format::SmallerIsBetter => github::render(arms, true),
            Format::BiggerIsBetter => github::render(arms, false),
            Format::Bmf => bmf::render(arms),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--export FORMAT=PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub format: Format,
    pub path: PathBuf,
}

impl FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let names = Format::NAMES.join(", ");
        let Some((name, path)) = text.split_once('=') else {
            return Err(format!("{text:?}: expected FORMAT=PATH, FORMAT one of {names}"));
        };
        let format = match Format::NAMES.iter().position(|n| *n == name) {
            Some(0) => Format::SmallerIsBetter,
            Some(1) => Format::BiggerIsBetter,
            Some(_) => Format::Bmf,
            None => return Err(format!("{name:?} is not one of {names}")),
        };
        if path.is_empty() {
            return Err(format!("{text:?}: no PATH after {name}="));
        }
        Ok(Target {
            format,
            path: PathBuf::from(path),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error("cannot write the {format} export {path}: {source}")]
    Write {
        format: Format,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One arm's figures, from its cells.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmSummary {
    pub arm: ArmKey,
    pub metric: Metric,
    /// The values it is summarized from: completed cells' values, censored
    /// cells' bounds.
    pub values: Vec<f64>,
    /// How many of them are censored bounds.
    pub censored: usize,
    /// Cells left out as failed.
    pub failed: usize,
}

impl ArmSummary {
    /// Mean of [`Self::values`].
    pub fn mean(&self) -> f64 {
        self.values.iter().sum::<f64>() / self.values.len() as f64
    }

    /// Sample standard deviation (`None` for fewer than 2 values).
    pub fn sd(&self) -> Option<f64> {
        let n = self.values.len();
        (n >= 2).then(|| {
            let mean = self.mean();
            (self.values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        })
    }

    pub fn min(&self) -> f64 {
        self.values.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// The metric's unit.
    pub fn unit(&self) -> &'static str {
        match self.metric {
            Metric::ElapsedS => "s",
            Metric::Tps => "tps",
        }
    }

    /// For people: how many runs, how many censored (and what that makes the
    /// value), how many failed.
    pub fn note(&self) -> String {
        let mut note = format!("{} runs", self.values.len());
        if self.censored > 0 {
            let bound = if self.metric.lower_is_better() {
                "lower"
            } else {
                "upper"
            };
            note.push_str(&format!(
                ", {} censored at the cap (counted at their bound: the value is a {bound} bound)",
                self.censored
            ));
        }
        if self.failed > 0 {
            note.push_str(&format!(", {} failed (left out)", self.failed));
        }
        note
    }
}

/// Every arm with at least one value, in plan order.
pub fn summarize(results: &Results) -> Vec<ArmSummary> {
    let mut arms: Vec<ArmSummary> = Vec::new();
    for key in &results.manifest.cells {
        let arm = key.arm();
        if !arms.iter().any(|a| a.arm == arm) {
            arms.push(ArmSummary {
                arm,
                metric: key.workload.metric(),
                values: Vec::new(),
                censored: 0,
                failed: 0,
            });
        }
    }
    for cell in &results.cells {
        let Some(summary) = arms.iter_mut().find(|a| a.arm == cell.key.arm()) else {
            continue;
        };
        match (cell.value(), &cell.status) {
            (_, CellStatus::Failed { .. }) | (None, _) => summary.failed += 1,
            (Some((value, bound)), _) => {
                summary.values.push(value);
                summary.censored += usize::from(bound);
            }
        }
    }
    arms.retain(|a| !a.values.is_empty());
    arms
}

/// Writes every export of `targets` for the results in `dir`.
pub fn write_all(dir: &Path, targets: &[Target]) -> Result<(), ExportError> {
    if targets.is_empty() {
        return Ok(());
    }
    let arms = summarize(&Results::load(dir)?);
    for target in targets {
        let text = target.format.render(&arms);
        results::write_atomic(&target.path, text.as_bytes()).map_err(|e| match e {
            ResultsError::Io { path, source } => ExportError::Write {
                format: target.format,
                path,
                source,
            },
            other => ExportError::Results(other),
        })?;
        eprintln!("pvbench: {} export in {}", target.format, target.path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
