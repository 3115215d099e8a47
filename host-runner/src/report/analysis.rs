//! From a results directory to the figures of the report: per cell group the
//! base arm and every other lock mode's arm, each compared with base;
//! latency, every lock design's counters, kick-to-wake latency, CPU and run
//! delay against the fair share, and what is missing, failed or too noisy.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;

use serde::Serialize;

use super::censored::{self, Bounded, Dominance};
use crate::ministat::{self, AnalysisOptions, DataSet, TextOptions};
use crate::results::{
    ArmKey, CellKey, CellResult, CellStatus, CellTimes, FailureKind, GroupKey, GuestRole, HostNoise,
    LockMode, LockStats, Metric, Overcommit, Provenance, Results, Workload,
};
use crate::stats::{
    ancova, compare, median, CompareOptions, Confidence, MedianRule, PercentInterval, Sample,
};

/// What the report needs besides the results.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderOptions {
    /// Confidence of the verdicts (Student's t as ministat; Gehan's test).
    pub confidence: Confidence,
    /// An arm whose coefficient of variation is above this (percent) is
    /// flagged as too noisy to conclude.
    pub max_cv_percent: f64,
    /// An arm with fewer runs than this is flagged as too few to conclude.
    pub min_runs: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            confidence: Confidence::P95,
            max_cv_percent: 10.0,
            min_runs: 3,
        }
    }
}

/// The report's figures; rendered as text, Markdown, JSON or plots.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub dir: PathBuf,
    pub provenance: Provenance,
    pub confidence_percent: f64,
    pub max_cv_percent: f64,
    pub min_runs: usize,
    pub cells: CellCounts,
    /// The run's lock modes in report order, base first: every group has an
    /// arm of each (see [`run_modes`]).
    pub locks: Vec<LockMode>,
    /// One per overcommit level, in order.
    pub kernbench: Vec<LockComparison>,
    /// One per (overcommit, clients), in order.
    pub pgbench: Vec<LockComparison>,
    pub latency: Vec<LatencyRow>,
    /// pv-ticketlock counters (arms of `pv`, and any arm that counted some).
    pub pvlock: Vec<LockRow>,
    /// Queued-lock events (arms of `qspin` and `pvqspin`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queued: Vec<CounterRow>,
    /// Test-and-set counters (arms of `tas`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tas: Vec<CounterRow>,
    /// Kick-to-wake latency (arms of `pv` and `pvqspin` that measured kicks).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kick_wake: Vec<KickWakeRow>,
    /// Each mode's cost of a migration (matrices with `[migration]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub migration: Vec<super::migration::MigrationRow>,
    pub cpu: Vec<CpuRow>,
    pub warnings: Vec<Warning>,
    pub failed: Vec<FailedCell>,
    /// Failures counted per group and lock mode.
    pub failures: Vec<FailureRow>,
    /// Ids of planned cells without a result.
    pub missing: Vec<String>,
    /// Which rows reached the minimum detectable effect the run added
    /// repetitions for (`pvbench run --target-mde`), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetRows>,
    /// How much of the cells' wall time was measured work (absent for results
    /// written before cell wall times were recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeSpent>,
    #[serde(skip)]
    pub(crate) confidence: Confidence,
}

/// The rows that reached a target MDE, and those that did not.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRows {
    pub mde_pct: f64,
    /// Group names.
    pub reached: Vec<String>,
    /// Group names with their MDE (`None`: their test gives none) and runs a side.
    pub missed: Vec<(String, Option<f64>, usize)>,
}

/// Which rows reached `target` percent.
fn target_rows(target: f64, rows: &[&LockComparison]) -> TargetRows {
    let mut out = TargetRows {
        mde_pct: target,
        reached: Vec::new(),
        missed: Vec::new(),
    };
    for row in rows {
        for m in &row.modes {
            // One mode: the group's name, as before modes were many.
            let name = match row.modes.len() {
                1 => row.group.to_string(),
                _ => format!("{} {}", row.group, m.arm.lock),
            };
            match m.resolution.mde_pct {
                Some(mde) if mde <= target => out.reached.push(name),
                mde => out.missed.push((name, mde, row.base.n().min(m.arm.n()))),
            }
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CellCounts {
    pub planned: usize,
    pub completed: usize,
    pub censored: usize,
    pub failed: usize,
    pub missing: usize,
}

/// One cell group: its base arm and every other lock mode's arm, each
/// compared with base, in this run. (The gate compares each arm with a
/// baseline instead: [`crate::gate::BaselineComparison`].)
#[derive(Debug, Clone, Serialize)]
pub struct LockComparison {
    pub group: GroupKey,
    pub metric: Metric,
    /// The group's time cap, if any of its cells ran.
    pub cap_s: Option<f64>,
    pub base: Arm,
    /// The run's other modes (see [`Report::locks`]), in report order.
    pub modes: Vec<ModeComparison>,
}

/// One lock mode's arm of a group against the group's base arm.
#[derive(Debug, Clone, Serialize)]
pub struct ModeComparison {
    pub arm: Arm,
    pub verdict: LockVerdict,
    /// How large a difference the verdict could have seen.
    #[serde(flatten)]
    pub resolution: RowResolution,
    /// The same comparison with the host's speed as a covariate, where every
    /// run of both arms completed and recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_adjusted: Option<HostAdjusted>,
}

/// A mode against base with the host-speed index (the native reference timed
/// around each cell) as a covariate: analysis of covariance with one slope
/// fitted within both arms alike. In percent of base's mean; a positive
/// difference is a larger value for the mode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HostAdjusted {
    pub diff_pct: f64,
    pub ci_half_pct: f64,
    pub mde_pct: f64,
    pub p: f64,
}

/// The host-adjusted comparison of a group's `mode` cells with its base
/// cells, if every cell of both arms completed with a host reading (a
/// censored value is a bound, not a point).
fn host_adjusted(cells: &[&CellResult], mode: LockMode, confidence: Confidence) -> Option<HostAdjusted> {
    let arm = |lock: LockMode| -> Option<(Vec<f64>, Vec<f64>)> {
        let mut y = Vec::new();
        let mut x = Vec::new();
        for c in cells.iter().filter(|c| c.key.lock == lock) {
            match c.status {
                CellStatus::Failed { .. } => continue,
                CellStatus::Censored => return None,
                CellStatus::Completed => {}
            }
            let host = c.host?;
            y.push(c.value()?.0);
            x.push(host.speed_index_ms());
        }
        Some((y, x))
    };
    let (base, other) = (arm(LockMode::Base)?, arm(mode)?);
    let r = ancova((&base.0, &base.1), (&other.0, &other.1), confidence)?;
    let mean = base.0.iter().sum::<f64>() / base.0.len() as f64;
    let pct = |v: f64| v / mean.abs() * 100.0;
    Some(HostAdjusted {
        diff_pct: pct(r.diff),
        ci_half_pct: pct(r.ci_half),
        mde_pct: pct(r.mde),
        p: r.p,
    })
}

/// What a comparison row resolves, in percent of the base arm's mean.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowResolution {
    /// The minimum detectable effect: the smallest difference the row's test
    /// proves with 80 % power at the report's confidence. `None` where the
    /// test has no such figure (see `note`).
    pub mde_pct: Option<f64>,
    /// Half-width of the confidence interval of the difference (ministat's).
    pub ci_half_pct: Option<f64>,
    /// Why the figures are missing, where they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution_note: Option<String>,
}

/// The resolution of a verdict on `base` and another mode's arm `pv`.
fn resolution(base: &Arm, pv: &Arm, verdict: &LockVerdict, confidence: Confidence) -> RowResolution {
    let missing = |note: String| RowResolution {
        mde_pct: None,
        ci_half_pct: None,
        resolution_note: Some(note),
    };
    match verdict {
        LockVerdict::TooFew { .. } => missing("too few runs to compare".into()),
        LockVerdict::Censored { min_p, .. } if *min_p >= 1.0 - confidence.level() => missing(format!(
            "with {} vs {} runs the rank test cannot reach p < {}: no difference could have been proven",
            base.n(),
            pv.n(),
            super::format::g6(1.0 - confidence.level())
        )),
        LockVerdict::Censored { .. } => missing(
            "censored runs: a rank test, whose resolution is no percentage; the bounds show what was seen"
                .into(),
        ),
        LockVerdict::Student {
            pooled_s,
            improvement_half_width_percent,
            ..
        } => {
            let base_mean = base.sample().map_or(f64::NAN, |s| s.mean()).abs();
            let mde = pvbench_stats::t_resolution(base.n(), pv.n(), *pooled_s, confidence)
                .map(|r| r.mde / base_mean * 100.0)
                .filter(|m| m.is_finite());
            RowResolution {
                mde_pct: mde,
                ci_half_pct: improvement_half_width_percent
                    .is_finite()
                    .then_some(*improvement_half_width_percent),
                resolution_note: None,
            }
        }
    }
}

impl LockComparison {
    /// The arm of `lock`, if the run has that mode.
    pub fn arm(&self, lock: LockMode) -> Option<&Arm> {
        match lock {
            LockMode::Base => Some(&self.base),
            _ => self.mode(lock).map(|m| &m.arm),
        }
    }

    /// The comparison of `lock` with base, if the run has that mode.
    pub fn mode(&self, lock: LockMode) -> Option<&ModeComparison> {
        self.modes.iter().find(|m| m.arm.lock == lock)
    }

    /// Every arm, base first.
    pub fn arms(&self) -> impl Iterator<Item = &Arm> {
        std::iter::once(&self.base).chain(self.modes.iter().map(|m| &m.arm))
    }

    /// Whether any arm has a censored run.
    pub fn censored(&self) -> bool {
        self.arms().any(|a| a.censored() > 0)
    }
}

/// The runs of one lock mode in a group.
#[derive(Debug, Clone, Serialize)]
pub struct Arm {
    pub lock: LockMode,
    /// Runs with a value (completed or censored), by repetition.
    pub runs: Vec<RunValue>,
    pub failed: usize,
    pub missing: usize,
    /// None without runs.
    pub stats: Option<ArmStats>,
}

impl Arm {
    pub fn n(&self) -> usize {
        self.runs.len()
    }

    pub fn censored(&self) -> usize {
        self.runs.iter().filter(|r| r.censored).count()
    }

    pub fn values(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.value).collect()
    }

    pub fn intervals(&self, metric: Metric) -> Vec<Bounded> {
        self.runs
            .iter()
            .map(|r| censored::run_interval(r.value, r.censored, metric))
            .collect()
    }

    /// The data as ministat takes it; None with censored runs or no runs.
    pub fn sample(&self) -> Option<Sample> {
        if self.censored() > 0 {
            return None;
        }
        Sample::new(self.values()).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RunValue {
    pub rep: u32,
    /// The metric; for a censored run the bound it recorded.
    pub value: f64,
    pub censored: bool,
}

/// Summary of an arm. With censored runs every figure is an interval (see
/// `censored`) and there is no standard deviation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ArmStats {
    pub n: usize,
    pub censored: usize,
    pub min: Bounded,
    pub max: Bounded,
    /// ministat's median (upper middle value for an even count).
    pub median: Bounded,
    pub mean: Bounded,
    /// ministat's standard deviation; None with censored runs or one run.
    pub stddev: Option<f64>,
    /// stddev / mean, in percent.
    pub cv_percent: Option<f64>,
}

/// Which lock mode is better in a group, and how sure (the gate's answer,
/// pass or regression against a baseline, is [`crate::gate::GateVerdict`]).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LockVerdict {
    /// An arm has fewer than two runs (one with censored runs): nothing to
    /// compare. `other`: the compared mode's runs.
    TooFew { base: usize, other: usize },
    /// Every run completed: Student's t with ministat's table and pooled
    /// standard deviation, exactly as `pvbench ministat`.
    Student {
        /// mean(mode) - mean(base), as ministat's "Difference".
        difference: f64,
        half_width: f64,
        pooled_s: f64,
        /// Positive = the mode better: elapsed (base - mode) / base, TPS
        /// (mode - base) / base.
        improvement_percent: f64,
        /// ministat's percent half-width (half-width / mean(base)).
        improvement_half_width_percent: f64,
        proven: bool,
        /// The better arm when proven.
        better: Option<LockMode>,
    },
    /// Some runs censored: bounds and Gehan's rank test (see `censored`).
    Censored {
        improvement_percent: Bounded,
        dominance: Option<Dominance>,
        gehan_p: f64,
        /// The smallest p-value these run counts can reach.
        min_p: f64,
        proven: bool,
        better: Option<LockMode>,
    },
}

impl LockVerdict {
    pub fn proven(&self) -> bool {
        match self {
            LockVerdict::TooFew { .. } => false,
            LockVerdict::Student { proven, .. } | LockVerdict::Censored { proven, .. } => *proven,
        }
    }
}

/// Latency of one group and lock mode over its runs. The percentiles are the
/// median over runs of each run's percentile (a run's histogram is not in
/// the cell result, so runs cannot be pooled); max is the largest of all.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyRow {
    pub group: GroupKey,
    pub lock: LockMode,
    pub runs: usize,
    /// Runs that were censored: their slowest operations never finished, so
    /// their tails read low.
    pub censored: usize,
    pub samples: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub p9999: f64,
    pub max: u64,
}

/// The guest's pv-lock counters, mean per run.
#[derive(Debug, Clone, Serialize)]
pub struct LockRow {
    pub group: GroupKey,
    pub lock: LockMode,
    pub runs: usize,
    pub taken_slow: f64,
    pub taken_slow_pickup: f64,
    pub halted: f64,
    pub spurious_wakeups: f64,
    pub released_slow: f64,
    pub released_slow_kicked: f64,
    pub time_blocked_cycles: f64,
}

/// Counters of one lock design (queued locks, test-and-set), mean per run,
/// by name in the wire's order.
#[derive(Debug, Clone, Serialize)]
pub struct CounterRow {
    pub group: GroupKey,
    pub lock: LockMode,
    pub runs: usize,
    pub counters: Vec<(&'static str, f64)>,
}

impl CounterRow {
    /// The mean of the counter `name` (0 if there is no such counter).
    pub fn get(&self, name: &str) -> f64 {
        self.counters
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0.0, |(_, v)| *v)
    }
}

/// Kick-to-wake latency of one group and lock mode (nanoseconds): like
/// [`LatencyRow`], each percentile the median over runs, max the largest.
#[derive(Debug, Clone, Serialize)]
pub struct KickWakeRow {
    pub group: GroupKey,
    pub lock: LockMode,
    pub runs: usize,
    /// Kicks measured, all runs.
    pub kicks: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: u64,
}

/// The host CPU the guests got against their fair share.
///
/// With G guests of V vCPUs each on C host cores, a vCPU's fair share of a
/// core is min(1, C / (G V)): what it gets if the host divides its cores
/// evenly among all vCPUs (and never more than one core). A guest's share
/// per vCPU is its QEMU process's CPU seconds / wall seconds / V, so 1.0
/// means each vCPU had a core to itself. (Under TCG, QEMU's own threads
/// count too.) A pv guest halts waiting vCPUs instead of spinning, so it
/// may use less than its share and leave the rest to the hogs.
#[derive(Debug, Clone, Serialize)]
pub struct CpuRow {
    pub group: GroupKey,
    pub lock: LockMode,
    pub runs: usize,
    pub host_cores: u32,
    pub guests: usize,
    pub vcpus: u32,
    pub fair_share: f64,
    /// Mean over runs of the bench guest's cpu_s / wall_s / V.
    pub bench_share: f64,
    /// bench_share / fair_share.
    pub bench_vs_fair: f64,
    /// The same for the hog guests (all hogs of all runs), if any.
    pub hog_share: Option<f64>,
    /// Mean over runs of the bench guest's run delay per vCPU, as a share of
    /// the wall time (the time a vCPU waited for a host CPU: the host's view
    /// of steal time); `None` where no run recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bench_run_delay: Option<f64>,
    /// The same for the hog guests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hog_run_delay: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// Coefficient of variation above the threshold.
    Noisy,
    /// Fewer runs than the minimum.
    TooFewRuns,
    Failed,
    Missing,
    /// Cells measured while the host was slower than usual or stole time.
    DisturbedHost,
    /// Cells measured while the host had this VM's CPUs apart.
    CpusApart,
    /// Cells measured again because an earlier attempt ran with the CPUs apart.
    RerunApart,
    /// Overcommitted cells whose guests calibrated their own clocks.
    GuestClock,
}

#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    pub kind: WarningKind,
    pub message: String,
}

/// A failed cell of the run, by id.
#[derive(Debug, Clone, Serialize)]
pub struct FailedCell {
    pub id: String,
    pub kind: FailureKind,
    pub reason: String,
}

/// Failed cells of one group and lock mode, by kind (only rows with failures).
#[derive(Debug, Clone, Serialize)]
pub struct FailureRow {
    pub group: GroupKey,
    pub lock: LockMode,
    /// Cells of this row with a result (any status).
    pub cells: usize,
    pub kernel_panic: usize,
    pub app_panic: usize,
    pub stall: usize,
    pub other: usize,
}

impl FailureRow {
    pub fn failed(&self) -> usize {
        self.kernel_panic + self.app_panic + self.stall + self.other
    }
}

/// Builds the report's figures. Pure: reads nothing but `results`.
pub fn build(results: &Results, options: &RenderOptions) -> Report {
    let planned = &results.manifest.cells;
    let by_key = |key: &CellKey| results.cells.iter().find(|c| c.key == *key);
    let missing: Vec<CellKey> = planned.iter().filter(|k| by_key(k).is_none()).copied().collect();
    let failed = failed_cells(results);
    let count = |f: fn(&CellStatus) -> bool| results.cells.iter().filter(|c| f(&c.status)).count();
    let cells = CellCounts {
        planned: planned.len(),
        completed: count(|s| matches!(s, CellStatus::Completed)),
        censored: count(|s| matches!(s, CellStatus::Censored)),
        failed: failed.len(),
        missing: missing.len(),
    };

    // Groups in order, from the plan (so a group with no result still shows)
    // and from the cells (in case a cell is not in the plan).
    let groups: BTreeSet<GroupKey> = planned
        .iter()
        .chain(results.cells.iter().map(|c| &c.key))
        .map(CellKey::group)
        .collect();
    let locks = run_modes(results);
    let group_reports: Vec<LockComparison> = groups
        .iter()
        .map(|g| group_report(*g, &locks, results, &missing, options))
        .collect();
    let warnings = warnings(&group_reports, &cells, results, options);
    let (kernbench, pgbench): (Vec<_>, Vec<_>) = group_reports
        .into_iter()
        .partition(|g| g.group.workload == Workload::Kernbench);

    // Per-arm figures from the cells that did not fail.
    let arms = arm_cells(&groups, &locks, results);
    let host_cores = results.manifest.provenance.host_cores;
    let (mut latency, mut pvlock, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    let (mut queued, mut tas, mut kick_wake) = (Vec::new(), Vec::new(), Vec::new());
    for (arm, cells) in &arms {
        let ran: Vec<&CellResult> = cells
            .iter()
            .filter(|c| !matches!(c.status, CellStatus::Failed { .. }))
            .copied()
            .collect();
        latency.extend(latency_row(*arm, &ran));
        pvlock.extend(lock_row(*arm, &ran));
        if arm.lock.is_queued() {
            queued.extend(counter_row(*arm, &ran, |c| c.queued.map(|q| q.fields().to_vec())));
        }
        if arm.lock == LockMode::Tas {
            tas.extend(counter_row(*arm, &ran, |c| c.tas.map(|t| t.fields().to_vec())));
        }
        if arm.lock.is_paravirt() {
            kick_wake.extend(kick_wake_row(*arm, &ran));
        }
        cpu.extend(cpu_row(*arm, &ran, host_cores));
    }
    let migration = super::migration::rows(results, &locks, options.confidence);
    let target = results
        .manifest
        .target_mde_pct
        .map(|t| target_rows(t, &kernbench.iter().chain(&pgbench).collect::<Vec<_>>()));
    Report {
        dir: results.dir.clone(),
        provenance: results.manifest.provenance.clone(),
        confidence_percent: options.confidence.percent(),
        max_cv_percent: options.max_cv_percent,
        min_runs: options.min_runs,
        cells,
        locks,
        kernbench,
        pgbench,
        latency,
        pvlock,
        queued,
        tas,
        kick_wake,
        migration,
        cpu,
        warnings,
        failed,
        failures: failure_rows(&arms),
        missing: missing.iter().map(CellKey::id).collect(),
        target,
        time: TimeSpent::of(results),
        confidence: options.confidence,
    }
}

/// Where the cells' wall time went.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TimeSpent {
    /// Cells with a recorded wall time.
    pub cells: usize,
    /// Their wall time, cell start to last guest gone.
    pub cell_wall_s: f64,
    /// Of it, the measured repetitions themselves (for censored cells, their
    /// share of the work up to the cap).
    pub measured_s: f64,
    /// Host readings and hog guests booted to hogging.
    pub hogs_s: f64,
    /// The bench guest's boot to its workload's start line.
    pub boot_s: f64,
    /// The rest of the bench guest's work: writing its data, warm-up
    /// repetitions, cleaning up.
    pub unmeasured_work_s: f64,
    /// Stopping the guests and collecting the results.
    pub teardown_s: f64,
}

impl TimeSpent {
    fn of(results: &Results) -> Option<Self> {
        let mut t = Self {
            cells: 0,
            cell_wall_s: 0.0,
            measured_s: 0.0,
            hogs_s: 0.0,
            boot_s: 0.0,
            unmeasured_work_s: 0.0,
            teardown_s: 0.0,
        };
        for c in &results.cells {
            let (Some(wall), Some(times)) = (c.cell_wall_s, c.times) else {
                continue;
            };
            let measured = measured_s(c, &times).min(times.work_s);
            t.cells += 1;
            t.cell_wall_s += wall;
            t.measured_s += measured;
            t.hogs_s += times.hogs_s;
            t.boot_s += times.boot_s + times.setup_s;
            t.unmeasured_work_s += times.work_s - measured;
            t.teardown_s += times.teardown_s(wall);
        }
        (t.cells > 0).then_some(t)
    }

    /// Measured work over wall time, percent.
    pub fn measured_percent(&self) -> f64 {
        self.measured_s / self.cell_wall_s.max(f64::MIN_POSITIVE) * 100.0
    }
}

/// Seconds of a cell's measured repetitions: kernbench's are their build
/// times; pgbench's timed runs share its elapsed time; a censored cell's
/// work up to the cap is shared likewise.
fn measured_s(c: &CellResult, times: &CellTimes) -> f64 {
    let share = c
        .runs
        .as_ref()
        .map_or(1.0, |r| r.measured().len() as f64 / r.values.len().max(1) as f64);
    match (&c.status, &c.runs, c.key.workload) {
        (CellStatus::Completed, Some(r), Workload::Kernbench) => r.measured().iter().sum(),
        (CellStatus::Completed, _, _) => c.elapsed_s * share,
        _ => times.work_s * share,
    }
}

/// The run's failed cells, in the order of the results.
fn failed_cells(results: &Results) -> Vec<FailedCell> {
    results
        .cells
        .iter()
        .filter_map(|c| match &c.status {
            CellStatus::Failed { reason, .. } => Some(FailedCell {
                id: c.key.id(),
                kind: c.status.failure().unwrap_or(FailureKind::Other),
                reason: reason.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// What keeps the report from concluding: each arm's too few runs or too
/// much noise, then the run's failed and missing cells.
fn warnings(
    group_reports: &[LockComparison],
    cells: &CellCounts,
    results: &Results,
    options: &RenderOptions,
) -> Vec<Warning> {
    let mut warnings = Vec::new();
    for g in group_reports {
        for arm in g.arms() {
            arm_warnings(g, arm, options, &mut warnings);
        }
    }
    if cells.failed > 0 {
        warnings.push(Warning {
            kind: WarningKind::Failed,
            message: format!(
                "{} cell{} failed (listed below; serial logs in {}/cells/<id>/): their runs are left out",
                cells.failed,
                plural(cells.failed),
                results.dir.display()
            ),
        });
    }
    if let Some(w) = disturbed_host(results) {
        warnings.push(w);
    }
    if let Some(w) = rerun_apart(results) {
        warnings.push(w);
    }
    if let Some(w) = cpus_apart(results) {
        warnings.push(w);
    }
    if let Some(w) = guest_clock(results) {
        warnings.push(w);
    }
    if cells.missing > 0 {
        warnings.push(Warning {
            kind: WarningKind::Missing,
            message: format!(
                "{} of {} planned cells have no result (not run yet, or interrupted): finish them with \
                 `pvbench run --resume --out {}`",
                cells.missing,
                cells.planned,
                results.dir.display()
            ),
        });
    }
    warnings
}

/// A cell whose native reference took this many times the run's median
/// (before or after it) ran on a disturbed host.
const DISTURBED_REFERENCE_RATIO: f64 = 1.25;
/// ...or one during which the host stole more than this share of its wall time.
const DISTURBED_STEAL_SHARE: f64 = 0.05;

/// The warning about cells measured on a disturbed host, if any were. Cells
/// without host readings (results written before they were recorded) are
/// not judged.
fn disturbed_host(results: &Results) -> Option<Warning> {
    let readings: Vec<(&CellResult, HostNoise)> =
        results.cells.iter().filter_map(|c| Some((c, c.host?))).collect();
    let refs: Vec<f64> = readings
        .iter()
        .flat_map(|(_, h)| [h.reference_before_ms, h.reference_after_ms])
        .collect();
    let median = median(&refs, MedianRule::MeanOfMiddle)?;
    let disturbed: Vec<String> = readings
        .iter()
        .filter_map(|(c, h)| {
            let ratio = h.reference_before_ms.max(h.reference_after_ms) / median;
            let wall = c.guests.first().map_or(0.0, |g| g.wall_s);
            let steal = h.steal_s.unwrap_or(0.0);
            let stole = wall > 0.0 && steal > DISTURBED_STEAL_SHARE * wall;
            (ratio > DISTURBED_REFERENCE_RATIO || stole)
                .then(|| format!("{} (reference {:.2}x, steal {:.2} s)", c.key.id(), ratio, steal))
        })
        .collect();
    if disturbed.is_empty() {
        return None;
    }
    Some(Warning {
        kind: WarningKind::DisturbedHost,
        message: format!(
            "{} of {} cells ran on a disturbed host (the native reference took over {DISTURBED_REFERENCE_RATIO}x \
             the run's median of {median:.1} ms around them, or the host stole over {}% of their time): \
             {}; compare their figures with care",
            disturbed.len(),
            readings.len(),
            DISTURBED_STEAL_SHARE * 100.0,
            disturbed.join(", ")
        ),
    })
}

/// What the run's rule for the host's CPUs apart (`apart_reruns`) did, if
/// it did anything: how long it waited for them to come near before cells,
/// and how many cells it measured again, per lock mode.
fn rerun_apart(results: &Results) -> Option<Warning> {
    let waits: Vec<f64> = results
        .cells
        .iter()
        .filter_map(|c| c.host?.waited_near_s)
        .filter(|s| *s >= 1.0)
        .collect();
    let rerun: Vec<&CellResult> = results.cells.iter().filter(|c| c.reruns_apart > 0).collect();
    if rerun.is_empty() && waits.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if !waits.is_empty() {
        parts.push(format!(
            "before {} cell{} the runner waited for the host's CPUs to come near ({:.0} s in all)",
            waits.len(),
            plural(waits.len()),
            waits.iter().sum::<f64>()
        ));
    }
    if !rerun.is_empty() {
        let set_aside: u32 = rerun.iter().map(|c| c.reruns_apart).sum();
        parts.push(format!(
            "{} of {} cells were measured again because an earlier attempt ran with the CPUs apart \
             (per lock mode: {}; {set_aside} attempt{} set aside in {}/cells/<id>/apart-N/)",
            rerun.len(),
            results.cells.len(),
            per_lock_mode(&rerun),
            plural(set_aside as usize),
            results.dir.display()
        ));
    }
    Some(Warning {
        kind: WarningKind::RerunApart,
        message: format!(
            "The matrix's rule for the host's CPUs apart (apart_reruns; decided from the host's \
             readings alone, every arm alike): {}",
            parts.join("; ")
        ),
    })
}

/// How many of `cells` each lock mode has, in mode order: "base 3, pv 1".
fn per_lock_mode(cells: &[&CellResult]) -> String {
    let mut counts: std::collections::BTreeMap<LockMode, usize> = std::collections::BTreeMap::new();
    for c in cells {
        *counts.entry(c.key.lock).or_default() += 1;
    }
    let counts: Vec<String> = counts.iter().map(|(m, n)| format!("{m} {n}")).collect();
    counts.join(", ")
}

/// The warning about overcommitted cells timed by guests that calibrated
/// their own TSC rate (no host rate in the provenance). At 1x the guests'
/// own calibration is right to 0.2%, so those cells are not named.
fn guest_clock(results: &Results) -> Option<Warning> {
    if results.manifest.provenance.guest_tsc_mhz.is_some() {
        return None;
    }
    let overcommitted = results
        .cells
        .iter()
        .filter(|c| c.key.overcommit != Overcommit::X1)
        .count();
    (overcommitted > 0).then(|| Warning {
        kind: WarningKind::GuestClock,
        message: format!(
            "the guests were not told the host's TSC rate and calibrated their clocks against three PIT \
             ticks, which QEMU delivers late while its threads wait for a host CPU: the times of the \
             {overcommitted} overcommitted cell{} can be tens of percent off (results/noise/guest-clock)",
            plural(overcommitted)
        ),
    })
}

/// The warning about cells measured with the host's CPUs apart, if any were:
/// which, and how many per lock mode (a comparison whose arms had unequal
/// shares of them compares placements, not locks). Cells without core-to-core
/// readings are not judged.
fn cpus_apart(results: &Results) -> Option<Warning> {
    let floor = crate::results::core_to_core_floor_ns(&results.cells)?;
    let judged: Vec<(&CellResult, bool)> = results
        .cells
        .iter()
        .filter_map(|c| Some((c, c.cpus_apart(floor)?)))
        .collect();
    let apart: Vec<&CellResult> = judged
        .iter()
        .filter(|(_, apart)| *apart)
        .map(|(c, _)| *c)
        .collect();
    if apart.is_empty() {
        return None;
    }
    let judged = judged.len();
    let slowest = apart
        .iter()
        .filter_map(|c| c.host?.core_to_core_max_ns())
        .fold(0.0, f64::max);
    let ids: Vec<String> = apart.iter().map(|c| c.key.id()).collect();
    let after_reruns = apart.iter().filter(|c| c.reruns_apart > 0).count();
    let after_reruns = if after_reruns > 0 {
        format!(" ({after_reruns} of them still apart after their reruns)")
    } else {
        String::new()
    };
    Some(Warning {
        kind: WarningKind::CpusApart,
        message: format!(
            "{} of {judged} cells ran with the host's CPUs apart{after_reruns} (a cache line's round trip \
             between them over {}x the run's fastest, {floor:.0} ns; up to {slowest:.0} ns), which made work \
             keeping two vCPUs busy 1.6-1.8x slower on the host where it was measured \
             (results/noise/slow-epochs); per lock mode: {}; cells: {}; compare their figures with care",
            apart.len(),
            crate::results::CPUS_APART_RATIO,
            per_lock_mode(&apart),
            ids.join(", ")
        ),
    })
}

/// The run's lock modes in report order, base first: those of its planned
/// cells and of its results. Base is always there (everything is compared
/// with it); a run of base alone is compared with an empty pv arm, as
/// before modes were many, so its tables keep their shape.
pub fn run_modes(results: &Results) -> Vec<LockMode> {
    let present: BTreeSet<LockMode> = results
        .manifest
        .cells
        .iter()
        .chain(results.cells.iter().map(|c| &c.key))
        .map(|k| k.lock)
        .collect();
    let mut modes: Vec<LockMode> = LockMode::ALL
        .into_iter()
        .filter(|m| *m == LockMode::Base || present.contains(m))
        .collect();
    if modes.len() == 1 {
        modes.push(LockMode::Pv);
    }
    modes
}

/// Every arm of `groups` (in the order of `locks`) with all its cells that
/// have a result, whatever their status.
fn arm_cells<'r>(
    groups: &BTreeSet<GroupKey>,
    locks: &[LockMode],
    results: &'r Results,
) -> Vec<(ArmKey, Vec<&'r CellResult>)> {
    groups
        .iter()
        .flat_map(|&group| locks.iter().map(move |&lock| ArmKey { group, lock }))
        .map(|arm| (arm, results.cells.iter().filter(|c| c.key.arm() == arm).collect()))
        .collect()
}

/// Per group and lock mode, how many cells failed and how.
fn failure_rows(arms: &[(ArmKey, Vec<&CellResult>)]) -> Vec<FailureRow> {
    let mut rows = Vec::new();
    for (arm, cells) in arms {
        let count = |kind| cells.iter().filter(|c| c.status.failure() == Some(kind)).count();
        let row = FailureRow {
            group: arm.group,
            lock: arm.lock,
            cells: cells.len(),
            kernel_panic: count(FailureKind::KernelPanic),
            app_panic: count(FailureKind::AppPanic),
            stall: count(FailureKind::Stall),
            other: count(FailureKind::Other),
        };
        if row.failed() > 0 {
            rows.push(row);
        }
    }
    rows
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn group_report(
    group: GroupKey,
    locks: &[LockMode],
    results: &Results,
    missing: &[CellKey],
    options: &RenderOptions,
) -> LockComparison {
    let metric = group.workload.metric();
    let in_group: Vec<&CellResult> = results.cells.iter().filter(|c| c.key.group() == group).collect();
    let cap_s = in_group
        .iter()
        .filter(|c| !matches!(c.status, CellStatus::Failed { .. }))
        .map(|c| c.cap_s)
        .fold(None, |acc: Option<f64>, c| Some(acc.map_or(c, |a| a.max(c))));
    let arm = |lock: LockMode| {
        let mine: Vec<&&CellResult> = in_group.iter().filter(|c| c.key.lock == lock).collect();
        let mut runs: Vec<RunValue> = mine
            .iter()
            .filter_map(|c| {
                c.value().map(|(value, censored)| RunValue {
                    rep: c.key.rep,
                    value,
                    censored,
                })
            })
            .collect();
        runs.sort_by_key(|r| r.rep);
        let failed = mine
            .iter()
            .filter(|c| matches!(c.status, CellStatus::Failed { .. }))
            .count();
        let missing = missing
            .iter()
            .filter(|k| k.arm() == ArmKey { group, lock })
            .count();
        let mut arm = Arm {
            lock,
            runs,
            failed,
            missing,
            stats: None,
        };
        arm.stats = arm_stats(&arm, metric);
        arm
    };
    let base = arm(LockMode::Base);
    let modes = locks
        .iter()
        .filter(|&&lock| lock != LockMode::Base)
        .map(|&lock| {
            let other = arm(lock);
            let verdict = verdict(&base, &other, metric, options.confidence);
            ModeComparison {
                resolution: resolution(&base, &other, &verdict, options.confidence),
                host_adjusted: host_adjusted(&in_group, lock, options.confidence),
                arm: other,
                verdict,
            }
        })
        .collect();
    LockComparison {
        group,
        metric,
        cap_s,
        base,
        modes,
    }
}

fn arm_stats(arm: &Arm, metric: Metric) -> Option<ArmStats> {
    let bounded = censored::summarize(&arm.intervals(metric))?;
    let censored = arm.censored();
    // ministat's own figures for uncensored data, for the same digits.
    let (median, mean, stddev) = match arm.sample() {
        Some(s) => {
            let summary = s.summary(MedianRule::UpperMiddle);
            // ministat's one-pass variance can round below zero (its -nan)
            // for equal values: their spread is zero.
            let sd = (s.n() >= 2).then(|| {
                if summary.stddev.is_nan() {
                    0.0
                } else {
                    summary.stddev
                }
            });
            (Bounded::exact(summary.median), Bounded::exact(summary.mean), sd)
        }
        None => (bounded.median, bounded.mean, None),
    };
    Some(ArmStats {
        n: arm.n(),
        censored,
        min: bounded.min,
        max: bounded.max,
        median,
        mean,
        stddev,
        cv_percent: stddev.map(|sd| 100.0 * sd / mean.lo.abs()),
    })
}

/// The comparison rule, for base and another mode's arm `pv`: Student's t
/// as ministat when no run is censored (both arms need two runs), Gehan's
/// test and bounds otherwise.
pub fn verdict(base: &Arm, pv: &Arm, metric: Metric, confidence: Confidence) -> LockVerdict {
    let too_few = LockVerdict::TooFew {
        base: base.n(),
        other: pv.n(),
    };
    if base.censored() > 0 || pv.censored() > 0 {
        let (b, p) = (base.intervals(metric), pv.intervals(metric));
        let (Some(bs), Some(ps), Some(test)) = (
            censored::summarize(&b),
            censored::summarize(&p),
            censored::gehan(&b, &p),
        ) else {
            return too_few;
        };
        let proven = test.p < 1.0 - confidence.level();
        // `censored` names the compared side `pv`: here it is `pv.lock`.
        let side = |m: LockMode| if m == LockMode::Base { m } else { pv.lock };
        return LockVerdict::Censored {
            improvement_percent: censored::improvement(bs.mean, ps.mean, metric),
            dominance: censored::dominance(&b, &p, metric).map(|d| Dominance {
                better: side(d.better),
                ..d
            }),
            gehan_p: test.p,
            min_p: test.min_p,
            proven,
            better: if proven {
                censored::favoured(test.score, metric).map(side)
            } else {
                None
            },
        };
    }
    match (base.sample(), pv.sample()) {
        (Some(b), Some(p)) if b.n() >= 2 && p.n() >= 2 => student(&b, &p, pv.lock, metric, confidence),
        _ => too_few,
    }
}

/// ministat's comparison of the `mode` arm's sample `pv` (a `+` set) with
/// base (the `x` set).
pub fn student(
    base: &Sample,
    pv: &Sample,
    mode: LockMode,
    metric: Metric,
    confidence: Confidence,
) -> LockVerdict {
    let options = CompareOptions {
        confidence,
        ..CompareOptions::default()
    };
    let c = compare(pv, base, &options);
    let sign = if metric.lower_is_better() { -1.0 } else { 1.0 };
    let improvement = sign * c.percent;
    let half = match c.percent_interval {
        PercentInterval::HalfWidth(h) => h.abs(),
        // Not produced with the default options.
        PercentInterval::Bounds { .. } | PercentInterval::Unbounded => f64::NAN,
    };
    LockVerdict::Student {
        difference: c.difference,
        half_width: c.half_width,
        pooled_s: c.pooled_s.unwrap_or(f64::NAN),
        improvement_percent: improvement,
        improvement_half_width_percent: half,
        proven: c.proven,
        better: c
            .proven
            .then_some(if improvement > 0.0 { mode } else { LockMode::Base }),
    }
}

/// The text `pvbench ministat` prints for these sets, base first: rows and
/// each other set's verdict against base (no legend, header or plot: the
/// report prints those once). None unless every arm has two runs or more,
/// none censored.
pub fn ministat_rows<'a>(arms: impl IntoIterator<Item = &'a Arm>, confidence: Confidence) -> Option<String> {
    let mut sets = Vec::new();
    for arm in arms {
        let sample = arm.sample().filter(|s| s.n() >= 2)?;
        sets.push(DataSet {
            name: OsString::from(arm.lock.name()),
            sample,
        });
    }
    let options = AnalysisOptions {
        compare: CompareOptions {
            confidence,
            ..CompareOptions::default()
        },
        ..AnalysisOptions::default()
    };
    let layout = TextOptions {
        plot: false,
        legend: false,
        ..TextOptions::default()
    };
    let analysis = ministat::analyze_sets(sets, &options);
    let bytes = ministat::text::render(&analysis, &layout, 74);
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn arm_warnings(g: &LockComparison, arm: &Arm, options: &RenderOptions, out: &mut Vec<Warning>) {
    let name = format!("{} {}", super::format::short_group(&g.group), arm.lock);
    if arm.n() < options.min_runs {
        out.push(Warning {
            kind: WarningKind::TooFewRuns,
            message: format!(
                "{name}: {} run{} with a value, fewer than {}: too few to conclude; raise reps{}",
                arm.n(),
                plural(arm.n()),
                options.min_runs,
                match (arm.failed, arm.missing) {
                    (0, 0) => String::new(),
                    (f, 0) => format!(" ({f} failed)"),
                    (0, m) => format!(" ({m} missing: resume the run)"),
                    (f, m) => format!(" ({f} failed, {m} missing: resume the run)"),
                }
            ),
        });
    }
    if let Some(cv) = arm.stats.and_then(|s| s.cv_percent) {
        if cv > options.max_cv_percent {
            out.push(Warning {
                kind: WarningKind::Noisy,
                message: format!(
                    "{name}: coefficient of variation {cv:.1}% is above {}%: too noisy to conclude; \
                     run more repetitions, or on a quieter host",
                    options.max_cv_percent
                ),
            });
        }
    }
}

fn latency_row(arm: ArmKey, cells: &[&CellResult]) -> Option<LatencyRow> {
    let with: Vec<(&CellResult, _)> = cells
        .iter()
        .filter_map(|c| c.latency_us.map(|l| (*c, l)))
        .collect();
    if with.is_empty() {
        return None;
    }
    // The textbook median (mean of the middle two for an even count), not
    // ministat's: these are not ministat's tables.
    let med = |f: fn(&crate::results::Percentiles) -> u64| {
        let values: Vec<f64> = with.iter().map(|(_, l)| f(l) as f64).collect();
        median(&values, MedianRule::MeanOfMiddle)
    };
    Some(LatencyRow {
        group: arm.group,
        lock: arm.lock,
        runs: with.len(),
        censored: with
            .iter()
            .filter(|(c, _)| matches!(c.status, CellStatus::Censored))
            .count(),
        samples: with.iter().map(|(_, l)| l.count).sum(),
        p50: med(|l| l.p50)?,
        p90: med(|l| l.p90)?,
        p99: med(|l| l.p99)?,
        p999: med(|l| l.p999)?,
        p9999: med(|l| l.p9999)?,
        max: with.iter().map(|(_, l)| l.max).max().unwrap_or(0),
    })
}

fn lock_row(arm: ArmKey, cells: &[&CellResult]) -> Option<LockRow> {
    // The pv-ticketlock's counters: pv's, and base's (zero, the reference
    // they always had beside pv). The other designs have counters of their own.
    if !matches!(arm.lock, LockMode::Base | LockMode::Pv) {
        return None;
    }
    let stats: Vec<LockStats> = cells.iter().filter_map(|c| c.pvlock).collect();
    if stats.is_empty() {
        return None;
    }
    let mean = |f: fn(&LockStats) -> u64| stats.iter().map(|s| f(s) as f64).sum::<f64>() / stats.len() as f64;
    Some(LockRow {
        group: arm.group,
        lock: arm.lock,
        runs: stats.len(),
        taken_slow: mean(|s| s.taken_slow),
        taken_slow_pickup: mean(|s| s.taken_slow_pickup),
        halted: mean(|s| s.halted),
        spurious_wakeups: mean(|s| s.spurious_wakeups),
        released_slow: mean(|s| s.released_slow),
        released_slow_kicked: mean(|s| s.released_slow_kicked),
        time_blocked_cycles: mean(|s| s.time_blocked_cycles),
    })
}

/// The mean per run of the counters `of` gives (`None` for a cell without
/// them); `None` without any.
fn counter_row(
    arm: ArmKey,
    cells: &[&CellResult],
    of: impl Fn(&CellResult) -> Option<Vec<(&'static str, u64)>>,
) -> Option<CounterRow> {
    let stats: Vec<Vec<(&'static str, u64)>> = cells.iter().filter_map(|c| of(c)).collect();
    let first = stats.first()?;
    let n = stats.len() as f64;
    let counters = first
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (*name, stats.iter().map(|s| s[i].1 as f64).sum::<f64>() / n))
        .collect();
    Some(CounterRow {
        group: arm.group,
        lock: arm.lock,
        runs: stats.len(),
        counters,
    })
}

fn kick_wake_row(arm: ArmKey, cells: &[&CellResult]) -> Option<KickWakeRow> {
    let with: Vec<crate::results::Percentiles> = cells
        .iter()
        .filter_map(|c| c.kick_wake_ns)
        .filter(|p| p.count > 0)
        .collect();
    let med = |f: fn(&crate::results::Percentiles) -> u64| {
        let values: Vec<f64> = with.iter().map(|l| f(l) as f64).collect();
        median(&values, MedianRule::MeanOfMiddle)
    };
    Some(KickWakeRow {
        group: arm.group,
        lock: arm.lock,
        runs: with.len(),
        kicks: with.iter().map(|l| l.count).sum(),
        p50: med(|l| l.p50)?,
        p90: med(|l| l.p90)?,
        p99: med(|l| l.p99)?,
        max: with.iter().map(|l| l.max).max().unwrap_or(0),
    })
}

fn cpu_row(arm: ArmKey, cells: &[&CellResult], host_cores: u32) -> Option<CpuRow> {
    let per_vcpu = |g: &crate::results::GuestCpu| g.cpu_s / g.wall_s / f64::from(g.vcpus.max(1));
    let usable = |g: &&crate::results::GuestCpu| g.wall_s > 0.0 && g.cpu_s.is_finite();
    let runs: Vec<&CellResult> = cells
        .iter()
        .filter(|c| c.guests.iter().any(|g| g.role == GuestRole::Bench && usable(&g)))
        .copied()
        .collect();
    let first = runs.first()?;
    let bench = first.guests.iter().find(|g| g.role == GuestRole::Bench)?;
    let (vcpus, guests) = (bench.vcpus, first.guests.len());
    let fair_share = crate::results::fair_share_per_vcpu(host_cores, guests, vcpus);
    let shares = |role: GuestRole| -> Vec<f64> {
        runs.iter()
            .flat_map(|c| c.guests.iter().filter(move |g| g.role == role && usable(g)))
            .map(per_vcpu)
            .collect()
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let bench_shares = shares(GuestRole::Bench);
    let hog_shares = shares(GuestRole::Hog);
    let bench_share = mean(&bench_shares);
    let delays = |role: GuestRole| -> Option<f64> {
        let d: Vec<f64> = runs
            .iter()
            .flat_map(|c| c.guests.iter().filter(move |g| g.role == role))
            .filter_map(crate::results::GuestCpu::run_delay_share)
            .collect();
        (!d.is_empty()).then(|| mean(&d))
    };
    Some(CpuRow {
        group: arm.group,
        lock: arm.lock,
        runs: runs.len(),
        host_cores,
        guests,
        vcpus,
        fair_share,
        bench_share,
        bench_vs_fair: bench_share / fair_share,
        hog_share: (!hog_shares.is_empty()).then(|| mean(&hog_shares)),
        bench_run_delay: delays(GuestRole::Bench),
        hog_run_delay: delays(GuestRole::Hog),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Overcommit;

    /// A completed kernbench cell of `lock` that took `s` seconds on a host
    /// whose reference took `ms`.
    fn cell(lock: LockMode, rep: u32, s: f64, ms: f64) -> CellResult {
        let key = CellKey {
            workload: Workload::Kernbench,
            overcommit: Overcommit::X1,
            clients: None,
            migrated: false,
            lock,
            rep,
        };
        let mut c = CellResult::new(key, CellStatus::Completed);
        c.elapsed_s = s;
        c.host = Some(HostNoise {
            steal_s: None,
            reference_before_ms: ms,
            reference_after_ms: ms,
            core_to_core_before_ns: None,
            core_to_core_after_ns: None,
            waited_near_s: None,
        });
        c
    }

    #[test]
    fn host_speed_is_taken_out_of_a_comparison_as_a_covariate() {
        // Build time = 1.0 (pv 1.05) + 0.1 per ms of host reference, with the
        // host's speed wandering: the raw arms overlap, the adjusted 5% shows.
        let ms = [10.0, 14.0, 11.0, 13.0, 12.0, 10.5];
        let mut cells = Vec::new();
        for (i, &m) in ms.iter().enumerate() {
            let rep = i as u32 + 1;
            let wobble = [0.001, -0.002, 0.0, 0.002, -0.001, 0.0][i];
            cells.push(cell(LockMode::Base, rep, 1.0 + 0.1 * m + wobble, m));
            let mp = ms[5 - i];
            cells.push(cell(LockMode::Pv, rep, 1.05 + 0.1 * mp - wobble, mp));
        }
        let refs: Vec<&CellResult> = cells.iter().collect();
        let h = host_adjusted(&refs, LockMode::Pv, Confidence::P95).unwrap();
        let base_mean = (0..6).map(|i| 1.0 + 0.1 * ms[i]).sum::<f64>() / 6.0;
        assert!((h.diff_pct - 5.0 / base_mean).abs() < 0.2, "{h:?}");
        assert!(h.p < 0.001 && h.mde_pct < 1.0, "{h:?}");
        // A censored run is a bound: no adjusted comparison.
        cells[3].status = CellStatus::Censored;
        let refs: Vec<&CellResult> = cells.iter().collect();
        assert_eq!(host_adjusted(&refs, LockMode::Pv, Confidence::P95), None);
        // Nor without the host reading.
        cells[3].status = CellStatus::Completed;
        cells[0].host = None;
        let refs: Vec<&CellResult> = cells.iter().collect();
        assert_eq!(host_adjusted(&refs, LockMode::Pv, Confidence::P95), None);
    }

    #[test]
    fn overcommitted_cells_timed_by_the_guests_own_clock_are_warned_about() {
        let mut cells = vec![
            cell(LockMode::Base, 1, 1.0, 10.0),
            cell(LockMode::Pv, 1, 1.0, 10.0),
        ];
        let mut results = Results {
            dir: PathBuf::from("r"),
            manifest: crate::results::RunManifest {
                provenance: crate::test_support::provenance(),
                matrix: serde_json::Value::Null,
                cells: cells.iter().map(|c| c.key).collect(),
                target_mde_pct: None,
                sharding: None,
            },
            cells: cells.clone(),
        };
        // At 1x the guests' own calibration is right: nothing to say.
        assert!(guest_clock(&results).is_none());
        cells[1].key.overcommit = Overcommit::X3;
        results.cells = cells;
        let w = guest_clock(&results).expect("an overcommitted cell without the host's rate");
        assert!(
            w.message.contains("the times of the 1 overcommitted cell can"),
            "{}",
            w.message
        );
        results.manifest.provenance.guest_tsc_mhz = Some(2596);
        assert!(guest_clock(&results).is_none());
    }
}
