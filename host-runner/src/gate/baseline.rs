//! The baseline file (`results/baseline.json`): per group, the metric's value
//! in every repetition of a recorded run, with that run's provenance and the
//! matrix hash and accelerator a new run must share to be compared with it.
//!
//! ```json
//! {
//!   "format": "pvbench-baseline",
//!   "version": 1,
//!   "compare_under": { "matrix_hash": "9f2c...", "accel": "tcg" },
//!   "saved_unix": 1764048000,
//!   "source": "results/runs/ci",
//!   "provenance": { "host_cpu": "...", "git_revision": "...", ... },
//!   "matrix": { "locks": ["base", "pv"], ... },
//!   "groups": [
//!     { "workload": "kernbench", "overcommit": "1x", "clients": null, "lock": "base",
//!       "metric": "elapsed_s",
//!       "values": [ { "rep": 1, "value": 4.02 }, { "rep": 2, "value": 15.0, "censored": true } ] }
//!   ]
//! }
//! ```
//!
//! `format` and `version` are read first, so a file from a later pvbench is
//! refused by name rather than misread. A version bump is due whenever a
//! field changes meaning; adding an optional field is not one.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{metric_name, GateError};
use crate::results::{
    self, ArmKey, CellStatus, GroupKey, LockMode, Metric, Overcommit, Provenance, Results, Workload,
};

pub const FORMAT: &str = "pvbench-baseline";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] when written by this pvbench.
    pub version: u32,
    /// What a new run must match to be compared with this baseline.
    pub compare_under: CompareUnder,
    /// When the baseline was saved (seconds since the Unix epoch).
    pub saved_unix: u64,
    /// The results directory it was saved from, as given.
    pub source: String,
    /// Where, on what and from what the recorded run was made.
    pub provenance: Provenance,
    /// The matrix as the recorded run planned it, for the record.
    pub matrix: serde_json::Value,
    pub groups: Vec<BaselineGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareUnder {
    /// `Provenance::matrix_hash`: same cells, caps, sizes and vCPUs.
    pub matrix_hash: String,
    /// `tcg` or `kvm`: their timings have nothing in common.
    pub accel: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineGroup {
    pub workload: Workload,
    pub overcommit: Overcommit,
    pub clients: Option<u32>,
    /// Migrated cells (the matrix's `[migration]`); absent when not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub migrated: bool,
    pub lock: LockMode,
    /// The workload's metric; stored so the file reads on its own.
    pub metric: Metric,
    pub values: Vec<RepValue>,
}

/// One repetition's value of the metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepValue {
    pub rep: u32,
    pub value: f64,
    /// The run reached its cap: `value` is a bound on the bad side.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub censored: bool,
}

impl BaselineGroup {
    pub fn arm(&self) -> ArmKey {
        ArmKey {
            group: GroupKey {
                workload: self.workload,
                overcommit: self.overcommit,
                clients: self.clients,
                migrated: self.migrated,
            },
            lock: self.lock,
        }
    }
}

impl Baseline {
    /// A baseline from a complete run: every planned cell present, none
    /// failed. `source` is how the directory is named in the file.
    pub fn from_results(results: &Results, source: &str) -> Result<Self, GateError> {
        let mut problems = Vec::new();
        let mut groups: BTreeMap<ArmKey, Vec<RepValue>> = BTreeMap::new();
        for key in &results.manifest.cells {
            let Some(cell) = results.cells.iter().find(|c| c.key == *key) else {
                problems.push(format!("{} did not run", key.id()));
                continue;
            };
            if let CellStatus::Failed { reason, .. } = &cell.status {
                problems.push(format!("{} failed ({reason})", key.id()));
                continue;
            }
            let Some((value, censored)) = cell.value() else {
                problems.push(format!(
                    "{} has no {}",
                    key.id(),
                    metric_name(key.workload.metric())
                ));
                continue;
            };
            groups.entry(key.arm()).or_default().push(RepValue {
                rep: key.rep,
                value,
                censored,
            });
        }
        if !problems.is_empty() {
            return Err(GateError::Incomplete {
                dir: results.dir.clone(),
                problems,
            });
        }
        let provenance = results.manifest.provenance.clone();
        let baseline = Self {
            format: FORMAT.to_string(),
            version: VERSION,
            compare_under: CompareUnder {
                matrix_hash: provenance.matrix_hash.clone(),
                accel: provenance.accel.clone(),
            },
            saved_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            source: source.to_string(),
            provenance,
            matrix: results.manifest.matrix.clone(),
            groups: groups
                .into_iter()
                .map(|(arm, mut values)| {
                    values.sort_by_key(|v| v.rep);
                    BaselineGroup {
                        workload: arm.group.workload,
                        overcommit: arm.group.overcommit,
                        clients: arm.group.clients,
                        migrated: arm.group.migrated,
                        lock: arm.lock,
                        metric: arm.metric(),
                        values,
                    }
                })
                .collect(),
        };
        baseline.validate().map_err(|reason| GateError::Incomplete {
            dir: results.dir.clone(),
            problems: vec![reason],
        })?;
        Ok(baseline)
    }

    pub fn load(path: &Path) -> Result<Self, GateError> {
        let bad = |reason: String| GateError::BadBaseline {
            path: path.to_path_buf(),
            reason,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(GateError::NoBaseline(path.to_path_buf()))
            }
            Err(source) => {
                return Err(GateError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        // Format and version first: a later format is refused by name.
        match value.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) => return Err(bad(format!("its format is {other:?}, not {FORMAT:?}"))),
            None => return Err(bad(format!("no \"format\": {FORMAT:?}"))),
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(VERSION) => {}
            Some(v) => {
                return Err(bad(format!(
                    "format version {v}; this pvbench reads version {VERSION}"
                )))
            }
            None => return Err(bad("no \"version\"".into())),
        }
        let baseline: Self = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        baseline.validate().map_err(bad)?;
        Ok(baseline)
    }

    pub fn save(&self, path: &Path) -> Result<(), GateError> {
        Ok(results::write_json_atomic(path, self)?)
    }

    /// How many repetitions are only bounds.
    pub fn censored_count(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|g| &g.values)
            .filter(|v| v.censored)
            .count()
    }

    pub fn group(&self, arm: &ArmKey) -> Option<&BaselineGroup> {
        self.groups.iter().find(|g| g.arm() == *arm)
    }

    fn validate(&self) -> Result<(), String> {
        if self.groups.is_empty() {
            return Err("it has no groups".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for g in &self.groups {
            let group = g.arm();
            if !seen.insert(group) {
                return Err(format!("group {group} appears twice"));
            }
            if g.metric != g.workload.metric() {
                return Err(format!(
                    "group {group} has metric {}, but {} is judged by {}",
                    metric_name(g.metric),
                    g.workload,
                    metric_name(g.workload.metric())
                ));
            }
            if g.values.is_empty() {
                return Err(format!("group {group} has no values"));
            }
            let mut reps = std::collections::BTreeSet::new();
            for v in &g.values {
                if !reps.insert(v.rep) {
                    return Err(format!("group {group} has repetition {} twice", v.rep));
                }
                if !v.value.is_finite() {
                    return Err(format!("group {group} repetition {} is {}", v.rep, v.value));
                }
            }
        }
        Ok(())
    }
}
