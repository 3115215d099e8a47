//! The data model: cell keys, statuses, results, provenance, and the
//! results directory's files.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const MANIFEST_FILE: &str = "run.json";
pub const CELLS_DIR: &str = "cells";

/// The pv-lock's counters as the guest reports them in its last frame.
pub use pvbench_wire::frames::LockStats;
/// Lock mode of the bench guest (`base`: the plain ticket lock, `pvlock=off`):
/// the wire's, the one definition guest and host share.
pub use pvbench_wire::LockMode;

/// vCPU overcommit: 1x = the bench guest alone, 2x = one hog guest beside it,
/// 3x = two hog guests (each with as many vCPUs as the bench guest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Overcommit {
    #[serde(rename = "1x")]
    X1,
    #[serde(rename = "2x")]
    X2,
    #[serde(rename = "3x")]
    X3,
}

impl Overcommit {
    pub fn hog_guests(self) -> usize {
        match self {
            Overcommit::X1 => 0,
            Overcommit::X2 => 1,
            Overcommit::X3 => 2,
        }
    }

    pub fn factor(self) -> u32 {
        self.hog_guests() as u32 + 1
    }

    /// A vCPU's fair share of a host core when every vCPU of every guest is
    /// runnable and `host_cores` are shared equally: min(1, C / (G x V)).
    pub fn fair_share_per_vcpu(self, host_cores: u32, vcpus: u32) -> f64 {
        fair_share_per_vcpu(host_cores, self.factor() as usize, vcpus)
    }
}

/// A vCPU's fair share of a host core with `guests` guests of `vcpus` vCPUs on
/// `host_cores` cores: min(1, C / (G x V)).
pub fn fair_share_per_vcpu(host_cores: u32, guests: usize, vcpus: u32) -> f64 {
    (f64::from(host_cores) / (guests.max(1) as f64 * f64::from(vcpus.max(1)))).min(1.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    Kernbench,
    Pgbench,
}

/// Which metric a workload is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Seconds (lower is better): kernbench's elapsed time.
    ElapsedS,
    /// Transactions per second (higher is better): pgbench's TPS.
    Tps,
}

impl Metric {
    pub fn lower_is_better(self) -> bool {
        matches!(self, Metric::ElapsedS)
    }
}

impl Workload {
    pub fn metric(self) -> Metric {
        match self {
            Workload::Kernbench => Metric::ElapsedS,
            Workload::Pgbench => Metric::Tps,
        }
    }
}

impl fmt::Display for Overcommit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x", self.factor())
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Workload::Kernbench => "kernbench",
            Workload::Pgbench => "pgbench",
        })
    }
}

/// One point of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CellKey {
    pub workload: Workload,
    pub overcommit: Overcommit,
    /// pgbench's client count; `None` for kernbench.
    pub clients: Option<u32>,
    pub lock: LockMode,
    /// Repetition, from 1.
    pub rep: u32,
}

impl CellKey {
    /// File-name-safe id, e.g. `kernbench-2x-pv-r1`, `pgbench-1x-c8-base-r3`.
    pub fn id(&self) -> String {
        let clients = self.clients.map(|c| format!("-c{c}")).unwrap_or_default();
        format!(
            "{}-{}{}-{}-r{}",
            self.workload, self.overcommit, clients, self.lock, self.rep
        )
    }

    /// The comparison group: the key without lock mode and repetition.
    pub fn group(&self) -> GroupKey {
        GroupKey {
            workload: self.workload,
            overcommit: self.overcommit,
            clients: self.clients,
        }
    }

    /// The arm: the key without its repetition.
    pub fn arm(&self) -> ArmKey {
        ArmKey {
            group: self.group(),
            lock: self.lock,
        }
    }
}

/// Cells compared with each other (base vs pv, across repetitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupKey {
    pub workload: Workload,
    pub overcommit: Overcommit,
    pub clients: Option<u32>,
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.clients {
            Some(c) => write!(f, "{} {} clients={c}", self.workload, self.overcommit),
            None => write!(f, "{} {}", self.workload, self.overcommit),
        }
    }
}

/// One lock mode's cells of a group, over its repetitions: a side of the
/// report's base-against-pv comparison, and what the gate compares with its
/// baseline. Serialized flat, as a cell key without `rep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ArmKey {
    #[serde(flatten)]
    pub group: GroupKey,
    pub lock: LockMode,
}

impl ArmKey {
    pub fn metric(&self) -> Metric {
        self.group.workload.metric()
    }

    /// The cell of repetition `rep`.
    pub fn cell(&self, rep: u32) -> CellKey {
        CellKey {
            workload: self.group.workload,
            overcommit: self.group.overcommit,
            clients: self.group.clients,
            lock: self.lock,
            rep,
        }
    }
}

impl fmt::Display for ArmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.group, self.lock)
    }
}

/// How a cell's run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum CellStatus {
    /// The workload finished; the metric is a value.
    Completed,
    /// Stopped at the time cap; the metric is a bound (see `CellResult::value`).
    Censored,
    /// The guest crashed, stalled, hung before reporting, or reported an error.
    Failed {
        reason: String,
        /// What kind of failure (absent in results written before it existed:
        /// then derived from `reason`, see [`FailureKind::of_reason`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<FailureKind>,
    },
}

impl CellStatus {
    /// A failure of the given kind.
    pub fn failed(kind: FailureKind, reason: impl Into<String>) -> Self {
        CellStatus::Failed {
            reason: reason.into(),
            kind: Some(kind),
        }
    }

    /// The failure's kind, if this is one.
    pub fn failure(&self) -> Option<FailureKind> {
        match self {
            CellStatus::Failed { reason, kind } => {
                Some(kind.unwrap_or_else(|| FailureKind::of_reason(reason)))
            }
            _ => None,
        }
    }
}

/// Why a cell failed, in the categories a soak counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The guest kernel panicked.
    KernelPanic,
    /// The guest application panicked.
    AppPanic,
    /// The guest stopped making progress with every vCPU idle (a lost wakeup).
    Stall,
    /// Anything else: a guest error status, a hog that never started, a guest
    /// that never started its workload, unreadable results.
    Other,
}

impl FailureKind {
    /// The kind of a failure recorded before kinds were: from its reason's words.
    pub fn of_reason(reason: &str) -> Self {
        if reason.contains("guest stalled") {
            FailureKind::Stall
        } else if reason.contains("guest kernel panic") {
            FailureKind::KernelPanic
        } else if reason.contains("guest application panic") {
            FailureKind::AppPanic
        } else {
            FailureKind::Other
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureKind::KernelPanic => "kernel panic",
            FailureKind::AppPanic => "application panic",
            FailureKind::Stall => "stall",
            FailureKind::Other => "other",
        })
    }
}

/// Latency percentiles in microseconds, from the merged HDR histogram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestRole {
    Bench,
    Hog,
}

/// Host CPU one guest's QEMU process got during the cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GuestCpu {
    pub role: GuestRole,
    pub vcpus: u32,
    /// User + system CPU seconds of the QEMU process.
    pub cpu_s: f64,
    pub wall_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    pub key: CellKey,
    #[serde(flatten)]
    pub status: CellStatus,
    /// Seconds the measured work took (kernbench: the build; pgbench: the timed
    /// run). For a censored cell: the cap, a lower bound.
    pub elapsed_s: f64,
    pub cap_s: f64,
    /// Jobs (kernbench) or transactions (pgbench) completed.
    pub ops: u64,
    /// pgbench only: transactions per second (for a censored cell, an upper bound
    /// computed from the work done by the cap).
    pub tps: Option<f64>,
    pub latency_us: Option<Percentiles>,
    pub pvlock: Option<LockStats>,
    pub guests: Vec<GuestCpu>,
}

impl CellResult {
    /// A result with no figures yet: the matrix fills them in as it learns
    /// them, and a failed cell keeps none.
    pub fn new(key: CellKey, status: CellStatus) -> Self {
        Self {
            key,
            status,
            elapsed_s: 0.0,
            cap_s: 0.0,
            ops: 0,
            tps: None,
            latency_us: None,
            pvlock: None,
            guests: Vec::new(),
        }
    }

    /// The workload's metric, and whether it is only a bound.
    pub fn value(&self) -> Option<(f64, bool)> {
        let censored = matches!(self.status, CellStatus::Censored);
        match self.status {
            CellStatus::Failed { .. } => None,
            _ => match self.key.workload.metric() {
                Metric::ElapsedS => Some((self.elapsed_s, censored)),
                Metric::Tps => self.tps.map(|t| (t, censored)),
            },
        }
    }
}

/// Where, on what and from what a run was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub host_cpu: String,
    pub host_cores: u32,
    pub host_kernel: String,
    pub qemu: String,
    pub accel: String,
    pub image_id: String,
    pub git_revision: String,
    pub matrix_hash: String,
    pub pvbench_version: String,
    pub started_unix: u64,
}

/// `run.json`: the matrix as planned and where it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    pub provenance: Provenance,
    /// The matrix specification as given (TOML or profile), for the record.
    pub matrix: serde_json::Value,
    /// Cells in the order they run (arms interleaved).
    pub cells: Vec<CellKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid results file: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{0} is not a results directory (no {MANIFEST_FILE})")]
    NotResults(PathBuf),
}

/// A results directory read back.
#[derive(Debug, Clone)]
pub struct Results {
    pub dir: PathBuf,
    pub manifest: RunManifest,
    /// Finished cells in planned order (cells not run yet are absent).
    pub cells: Vec<CellResult>,
}

impl Results {
    pub fn load(dir: &Path) -> Result<Self, ResultsError> {
        let manifest_path = dir.join(MANIFEST_FILE);
        if !manifest_path.is_file() {
            return Err(ResultsError::NotResults(dir.to_path_buf()));
        }
        let manifest: RunManifest = read_json(&manifest_path)?;
        let mut cells = Vec::new();
        for key in &manifest.cells {
            let path = cell_path(dir, key);
            if path.is_file() {
                cells.push(read_json(&path)?);
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            cells,
        })
    }
}

pub fn cell_path(dir: &Path, key: &CellKey) -> PathBuf {
    dir.join(CELLS_DIR).join(format!("{}.json", key.id()))
}

/// The directory for a cell's metrics files and logs.
pub fn cell_dir(dir: &Path, key: &CellKey) -> PathBuf {
    dir.join(CELLS_DIR).join(key.id())
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ResultsError> {
    let text = fs::read_to_string(path).map_err(|source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ResultsError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Writes `value` as JSON to `path` atomically (see [`write_atomic`]).
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), ResultsError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| ResultsError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` atomically ([`pvbench_collect::write_atomic`],
/// the one implementation: temporary in the same directory, synced, renamed,
/// directory synced). Readers see the old file or the whole new one, never a
/// part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ResultsError> {
    pvbench_collect::write_atomic(path, bytes).map_err(|source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(lock: LockMode) -> CellKey {
        CellKey {
            workload: Workload::Pgbench,
            overcommit: Overcommit::X2,
            clients: Some(8),
            lock,
            rep: 3,
        }
    }

    #[test]
    fn ids_are_distinct_and_readable() {
        assert_eq!(key(LockMode::Pv).id(), "pgbench-2x-c8-pv-r3");
        assert_ne!(key(LockMode::Pv).id(), key(LockMode::Base).id());
        assert_eq!(key(LockMode::Pv).group(), key(LockMode::Base).group());
        assert_ne!(key(LockMode::Pv).arm(), key(LockMode::Base).arm());
        assert_eq!(key(LockMode::Pv).arm().cell(3), key(LockMode::Pv));
        assert_eq!(key(LockMode::Pv).arm().to_string(), "pgbench 2x clients=8 pv");
        // Flat, in a cell key's order: the gate's report depends on it.
        assert_eq!(
            serde_json::to_string(&key(LockMode::Pv).arm()).unwrap(),
            r#"{"workload":"pgbench","overcommit":"2x","clients":8,"lock":"pv"}"#
        );
    }

    #[test]
    fn censored_values_are_bounds_and_failed_have_none() {
        let mut cell = CellResult {
            key: key(LockMode::Base),
            status: CellStatus::Censored,
            elapsed_s: 60.0,
            cap_s: 60.0,
            ops: 10,
            tps: Some(0.5),
            latency_us: None,
            pvlock: None,
            guests: vec![],
        };
        assert_eq!(cell.value(), Some((0.5, true)));
        cell.status = CellStatus::failed(FailureKind::KernelPanic, "crash");
        assert_eq!(cell.value(), None);
        let json = serde_json::to_string(&cell).unwrap();
        assert!(json.contains(r#""status":"failed""#), "{json}");
        assert!(json.contains(r#""kind":"kernel_panic""#), "{json}");
        let back: CellResult = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cell);
    }

    #[test]
    fn failures_written_before_kinds_existed_get_a_kind_from_their_reason() {
        let old = r#"{"status":"failed","reason":"guest stalled: its QEMU used 0.02 s of CPU in 10 s"}"#;
        let status: CellStatus = serde_json::from_str(old).unwrap();
        assert_eq!(status.failure(), Some(FailureKind::Stall));
        let old = r#"{"status":"failed","reason":"guest kernel reported a failure (panic or abort)"}"#;
        let status: CellStatus = serde_json::from_str(old).unwrap();
        assert_eq!(status.failure(), Some(FailureKind::Other));
        assert_eq!(CellStatus::Censored.failure(), None);
    }

    #[test]
    fn atomic_write_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("pvbench-results-{}", std::process::id()));
        let path = dir.join("cells").join("x.json");
        write_json_atomic(&path, &key(LockMode::Pv)).unwrap();
        let back: CellKey = read_json(&path).unwrap();
        assert_eq!(back, key(LockMode::Pv));
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(dir).unwrap();
    }
}
