//! The data model: cell keys, statuses, results, provenance, and the
//! results directory's files.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The [`RunManifest`] in a results directory.
pub const MANIFEST_FILE: &str = "run.json";
/// The directory of cell results and cell files in a results directory.
pub const CELLS_DIR: &str = "cells";

/// The pv-lock's counters as the guest reports them in its last frame.
pub use pvbench_wire::frames::LockStats;
/// The queued locks' events (`qspin`, `pvqspin`) from the guest's last frame.
pub use pvbench_wire::frames::QueuedStats;
/// The test-and-set lock's counters (`tas`) from the guest's last frame.
pub use pvbench_wire::frames::TasStats;
/// Lock mode of the bench guest (`base`: the plain ticket lock, `pvlock=off`):
/// the wire's, the one definition guest and host share.
pub use pvbench_wire::LockMode;

/// vCPU overcommit: 1x = the bench guest alone, 2x = one hog guest beside it,
/// 3x = two hog guests (each with as many vCPUs as the bench guest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Overcommit {
    /// The bench guest alone.
    #[serde(rename = "1x")]
    X1,
    /// One hog guest beside it.
    #[serde(rename = "2x")]
    X2,
    /// Two hog guests beside it.
    #[serde(rename = "3x")]
    X3,
}

impl Overcommit {
    /// Hog guests beside the bench guest.
    pub fn hog_guests(self) -> usize {
        match self {
            Overcommit::X1 => 0,
            Overcommit::X2 => 1,
            Overcommit::X3 => 2,
        }
    }

    /// Guests in all, the N of Nx.
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

/// What the bench guest runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// A `make -j N` of a generated source tree.
    Kernbench,
    /// pgbench's TPC-B-like script against in-memory tables.
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
    /// Whether the smaller value is the better one.
    pub fn lower_is_better(self) -> bool {
        matches!(self, Metric::ElapsedS)
    }
}

impl Workload {
    /// The metric it is judged by.
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
    /// What the bench guest runs.
    pub workload: Workload,
    /// Guests sharing the host.
    pub overcommit: Overcommit,
    /// pgbench's client count; `None` for kernbench.
    pub clients: Option<u32>,
    /// The bench guest is migrated to a fresh QEMU while it works (the matrix's
    /// `[migration]`); absent from the JSON when not.
    #[serde(default, skip_serializing_if = "is_false")]
    pub migrated: bool,
    /// The bench guest's lock mode.
    pub lock: LockMode,
    /// Repetition, from 1.
    pub rep: u32,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl CellKey {
    /// File-name-safe id, e.g. `kernbench-2x-pv-r1`, `pgbench-1x-c8-base-r3`,
    /// `kernbench-3x-mig-pvqspin-r2` (migrated).
    pub fn id(&self) -> String {
        let clients = self.clients.map(|c| format!("-c{c}")).unwrap_or_default();
        let migrated = if self.migrated { "-mig" } else { "" };
        format!(
            "{}-{}{}{}-{}-r{}",
            self.workload, self.overcommit, clients, migrated, self.lock, self.rep
        )
    }

    /// The comparison group: the key without lock mode and repetition.
    pub fn group(&self) -> GroupKey {
        GroupKey {
            workload: self.workload,
            overcommit: self.overcommit,
            clients: self.clients,
            migrated: self.migrated,
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
    /// As in [`CellKey::workload`].
    pub workload: Workload,
    /// As in [`CellKey::overcommit`].
    pub overcommit: Overcommit,
    /// As in [`CellKey::clients`].
    pub clients: Option<u32>,
    /// As in [`CellKey::migrated`]: migrated cells are compared among
    /// themselves, and with their unmigrated twin group for the migration's cost.
    #[serde(default, skip_serializing_if = "is_false")]
    pub migrated: bool,
}

impl GroupKey {
    /// The same group with the other migration setting.
    pub fn twin(&self, migrated: bool) -> GroupKey {
        GroupKey { migrated, ..*self }
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.clients {
            Some(c) => write!(f, "{} {} clients={c}", self.workload, self.overcommit)?,
            None => write!(f, "{} {}", self.workload, self.overcommit)?,
        }
        if self.migrated {
            f.write_str(" migrated")?;
        }
        Ok(())
    }
}

/// One lock mode's cells of a group, over its repetitions: a side of the
/// report's base-against-pv comparison, and what the gate compares with its
/// baseline. Serialized flat, as a cell key without `rep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ArmKey {
    /// The group it is one side of.
    #[serde(flatten)]
    pub group: GroupKey,
    /// Its lock mode.
    pub lock: LockMode,
}

impl ArmKey {
    /// The metric its workload is judged by.
    pub fn metric(&self) -> Metric {
        self.group.workload.metric()
    }

    /// The cell of repetition `rep`.
    pub fn cell(&self, rep: u32) -> CellKey {
        CellKey {
            workload: self.group.workload,
            overcommit: self.group.overcommit,
            clients: self.group.clients,
            migrated: self.group.migrated,
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
        /// What happened, for people.
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

/// Percentiles of an HDR histogram, in its unit: microseconds for a
/// workload's latency, nanoseconds for kick-to-wake latency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Mean of the samples.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Largest sample.
    pub max: u64,
}

/// What a guest of a cell is there for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestRole {
    /// Runs the measured workload.
    Bench,
    /// Keeps its vCPUs busy to overcommit the host.
    Hog,
}

/// Host CPU one guest's QEMU process got during the cell: since results of
/// 2026-12-01 (those with `times.marked_s`), over the repetitions' timed work
/// as the bench guest marked it on its console; from 2026-11-29 (those with
/// `host`), from the bench guest's start line to its end (its data written and
/// removed, its exit included); before, over the bench guest's whole life
/// (boot, setup and teardown included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestCpu {
    /// Bench or hog.
    pub role: GuestRole,
    /// Its vCPUs.
    pub vcpus: u32,
    /// User + system CPU seconds of the QEMU process.
    pub cpu_s: f64,
    /// Wall seconds the CPU was counted over.
    pub wall_s: f64,
    /// Seconds its vCPU threads were runnable but waiting for a host CPU
    /// (run delay, `/proc/PID/task/TID/schedstat`: the host's view of the
    /// guest's steal time), summed over its vCPUs, over the same interval as
    /// `cpu_s`. Absent in results written before it was recorded, and where
    /// the host kernel keeps no schedstats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_delay_s: Option<f64>,
    /// The same per vCPU, by vCPU index (empty where unknown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vcpu_run_delay_s: Vec<f64>,
}

impl GuestCpu {
    /// A guest's CPU without run delays (where none was read).
    pub fn new(role: GuestRole, vcpus: u32, cpu_s: f64, wall_s: f64) -> Self {
        Self {
            role,
            vcpus,
            cpu_s,
            wall_s,
            run_delay_s: None,
            vcpu_run_delay_s: Vec::new(),
        }
    }

    /// Run delay as a share of the vCPUs' wall time: the fraction of the
    /// interval an average vCPU wanted a host CPU and waited (`None` unknown).
    pub fn run_delay_share(&self) -> Option<f64> {
        let delay = self.run_delay_s?;
        (self.wall_s > 0.0).then(|| delay / self.wall_s / f64::from(self.vcpus.max(1)))
    }
}

/// What the host was doing around a cell (see the runner's `noise` module).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HostNoise {
    /// Steal time the host kernel reported during the cell, summed over its
    /// CPUs (`None` where it reports none).
    pub steal_s: Option<f64>,
    /// The native reference workload's time just before the cell...
    pub reference_before_ms: f64,
    /// ...and just after it: a host slower than usual takes longer.
    pub reference_after_ms: f64,
    /// The round trip of one cache line between two host CPUs just before
    /// the cell, ns (`None`: one CPU, pinning refused, or written before
    /// pvbench recorded it)...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_to_core_before_ns: Option<f64>,
    /// ...and just after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_to_core_after_ns: Option<f64>,
    /// Seconds the runner waited before the cell for the host's CPUs to
    /// come near (see `apart_reruns` in the matrix; `None`: it did not
    /// look, 0: they were near).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited_near_s: Option<f64>,
}

impl HostNoise {
    /// The host-speed index of the cell: the mean of the reference timings
    /// around it (a slower host gives a larger index).
    pub fn speed_index_ms(&self) -> f64 {
        (self.reference_before_ms + self.reference_after_ms) / 2.0
    }

    /// The core-to-core index of the cell: the mean of its two readings.
    pub fn core_to_core_ns(&self) -> Option<f64> {
        Some((self.core_to_core_before_ns? + self.core_to_core_after_ns?) / 2.0)
    }

    /// The slower of the two core-to-core readings: a cell during which the
    /// host moved its CPUs apart (or together) has one of each.
    pub fn core_to_core_max_ns(&self) -> Option<f64> {
        Some(self.core_to_core_before_ns?.max(self.core_to_core_after_ns?))
    }

    /// The faster of the two core-to-core readings.
    pub fn core_to_core_min_ns(&self) -> Option<f64> {
        Some(self.core_to_core_before_ns?.min(self.core_to_core_after_ns?))
    }
}

/// A cell ran with the host's CPUs apart when a cache line's round trip
/// between them, before or after it, took over this many times the fastest
/// round trip of its run. Measured on an AMD EPYC host: 36-71 ns near, 363-412
/// ns apart (10x), and work keeping two TCG vCPUs busy 1.6-1.8x slower apart
/// (`results/noise/slow-epochs`); the one-core reference does not move.
pub const CPUS_APART_RATIO: f64 = 3.0;

/// The fastest core-to-core reading of `cells` (the floor a near placement
/// reaches; a round trip can be slowed, never sped up, by what else runs).
pub fn core_to_core_floor_ns<'a>(cells: impl IntoIterator<Item = &'a CellResult>) -> Option<f64> {
    cells
        .into_iter()
        .filter_map(|c| c.host?.core_to_core_min_ns())
        .filter(|ns| *ns > 0.0)
        .reduce(f64::min)
}

impl CellResult {
    /// Whether this cell ran (at least in part) with the host's CPUs apart,
    /// judged against `floor_ns` ([`core_to_core_floor_ns`] of its run);
    /// `None` without readings.
    pub fn cpus_apart(&self, floor_ns: f64) -> Option<bool> {
        Some(self.host?.core_to_core_max_ns()? > CPUS_APART_RATIO * floor_ns)
    }
}

/// A finished cell: `cells/<id>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// Which cell.
    pub key: CellKey,
    /// How its run ended; flattened, so `status` (and `reason`, `kind`) sit at
    /// the top of the JSON.
    #[serde(flatten)]
    pub status: CellStatus,
    /// Seconds the measured work took (kernbench: the build; pgbench: the timed
    /// run). For a censored cell: the cap, a lower bound.
    pub elapsed_s: f64,
    /// The time cap the run had.
    pub cap_s: f64,
    /// Jobs (kernbench) or transactions (pgbench) completed.
    pub ops: u64,
    /// pgbench only: transactions per second (for a censored cell, an upper bound
    /// computed from the work done by the cap).
    pub tps: Option<f64>,
    /// Latency of the workload's operations, if any samples arrived.
    pub latency_us: Option<Percentiles>,
    /// The pv-lock's counters from the guest's `Done`, if it sent one.
    pub pvlock: Option<LockStats>,
    /// The queued locks' events from the guest's `Done` (absent in results
    /// written before they were streamed, and where no `Done` came).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<QueuedStats>,
    /// The test-and-set lock's counters from the guest's `Done` (absent likewise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tas: Option<TasStats>,
    /// Kick-to-wake latency in nanoseconds (`pv`, `pvqspin`): percentiles of
    /// the histogram in the guest's `Done`, whose percentile distribution is
    /// the cell's `<id>.kick-wake.hgrm`. Absent where no kick was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kick_wake_ns: Option<Percentiles>,
    /// Host CPU of each of the cell's guests, the bench guest first.
    pub guests: Vec<GuestCpu>,
    /// The host's steal time and speed around the cell (absent in results
    /// written before they were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostNoise>,
    /// Every repetition of a boot that ran more than one (matrix
    /// `runs_per_boot`, `warmup`): the cell's value is the mean of the
    /// measured ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<BootRuns>,
    /// Seconds the whole cell took, from its start to its last guest gone and
    /// its results collected: the cost of a repetition (absent in results
    /// written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell_wall_s: Option<f64>,
    /// Where the bench guest's part of it went (absent likewise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<CellTimes>,
    /// The bench guest's migrations (migrated cells only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrations: Option<CellMigrations>,
    /// Censored cells: where each vCPU was when the guest was killed at its
    /// cap (QEMU's `info registers -a`, compacted: `cpuN RIP=.. RFL=.. HLT=..`;
    /// three samples 0.5 s apart, one after the other). Raw evidence only: a
    /// spin-lock deadlock and a fair lock's collapse under overcommit look
    /// alike here (every vCPU in the same spin loop with interrupts off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus_at_cap: Option<String>,
    /// Earlier attempts of this cell set aside because they ran with the
    /// host's CPUs apart (`apart_reruns` in the matrix); each is kept in
    /// `cells/<id>/apart-N/` ([`set_aside_dir`]). 0 for a first attempt.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reruns_apart: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What moving a cell's bench guest took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellMigrations {
    /// `live` or `paused`.
    pub kind: MigrationMode,
    /// Migrations completed.
    pub count: u32,
    /// Downtime of each, milliseconds.
    pub downtime_ms: Vec<u64>,
    /// Metrics connections the guest opened again after a migration broke one.
    pub resumes: u32,
}

/// How a guest is migrated (the vm crate's `MigrationKind`, as results name it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationMode {
    /// Copied while it runs; stopped only for the last dirty pages.
    Live,
    /// Stopped for the whole copy.
    Paused,
}

impl fmt::Display for MigrationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MigrationMode::Live => "live",
            MigrationMode::Paused => "paused",
        })
    }
}

/// Wall seconds of a cell's phases, in order.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CellTimes {
    /// Host readings and hog guests booted to hogging, before the bench guest
    /// started.
    pub hogs_s: f64,
    /// The bench guest's QEMU start to its application's first line (firmware,
    /// loader, kernel boot).
    pub boot_s: f64,
    /// From there to the workload's start line (metrics stream connected).
    pub setup_s: f64,
    /// The workload's start line to the guest's end: its data written, warm-up
    /// and measured repetitions, cleanup.
    pub work_s: f64,
    /// Of `work_s`, the repetitions' timed work as the guest marked it (warm-up
    /// included): what the guests' CPU figures are counted over. Absent where
    /// the guest marked none (results before 2026-12-01, a guest that failed
    /// before its first repetition): their CPU is over `work_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marked_s: Option<f64>,
}

impl CellTimes {
    /// What the phases leave of a cell of `cell_wall_s`: stopping guests,
    /// collecting results, host readings.
    pub fn teardown_s(&self, cell_wall_s: f64) -> f64 {
        (cell_wall_s - self.hogs_s - self.boot_s - self.setup_s - self.work_s).max(0.0)
    }
}

/// The repetitions one guest boot ran, in order, each in the workload's metric
/// (kernbench: seconds; pgbench: transactions per second).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootRuns {
    /// The first `warmup` values are left out of the cell's value.
    pub warmup: u32,
    /// Each repetition's figure, in the order the guest ran them.
    pub values: Vec<f64>,
}

impl BootRuns {
    /// The measured repetitions: all but the warm-up.
    pub fn measured(&self) -> &[f64] {
        let skip = (self.warmup as usize).min(self.values.len());
        &self.values[skip..]
    }

    /// Their mean (`None` if there are none).
    pub fn measured_mean(&self) -> Option<f64> {
        let m = self.measured();
        (!m.is_empty()).then(|| m.iter().sum::<f64>() / m.len() as f64)
    }
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
            queued: None,
            tas: None,
            kick_wake_ns: None,
            guests: Vec::new(),
            host: None,
            runs: None,
            cell_wall_s: None,
            times: None,
            migrations: None,
            vcpus_at_cap: None,
            reruns_apart: 0,
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
    /// The host CPU's model name.
    pub host_cpu: String,
    /// Host CPUs available to pvbench.
    pub host_cores: u32,
    /// The host kernel's release.
    pub host_kernel: String,
    /// QEMU's version line.
    pub qemu: String,
    /// `tcg` or `kvm`.
    pub accel: String,
    /// The guest image's id.
    pub image_id: String,
    /// The checkout's commit, with `-dirty` if tracked files were changed.
    pub git_revision: String,
    /// [`MatrixSpec::hash`](crate::MatrixSpec::hash): same hash, same cells,
    /// caps, sizes and vCPUs.
    pub matrix_hash: String,
    /// pvbench's crate version.
    pub pvbench_version: String,
    /// When the run started, in seconds since the Unix epoch.
    pub started_unix: u64,
    /// The host's name (absent in results written before it was recorded):
    /// which machine of a fleet ran a shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The TSC rate (MHz) every guest was told (Hermit's `-freq`), measured on
    /// the host. Absent: the guests calibrated their clocks themselves against
    /// three PIT ticks, which QEMU delivers late when its threads wait for a
    /// host CPU, so under overcommit their timings can be tens of percent off
    /// (results written before the rate was passed, or a host without a
    /// steady TSC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_tsc_mhz: Option<u16>,
}

/// `run.json`: the matrix as planned and where it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    /// Where and on what it ran.
    pub provenance: Provenance,
    /// The matrix specification as given (TOML or profile), for the record.
    pub matrix: serde_json::Value,
    /// Cells in the order they run (arms interleaved); with a target MDE, the
    /// repetitions added to reach it follow the planned ones.
    pub cells: Vec<CellKey>,
    /// The minimum detectable effect (percent) repetitions were added for, if
    /// one was asked for (`pvbench run --target-mde`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_mde_pct: Option<f64>,
    /// The shard this directory holds and the partition it came from
    /// (`pvbench run --shard K/N`), or the shards it was merged from
    /// (`pvbench merge`); absent for a whole matrix run on one host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharding: Option<crate::shard::Sharding>,
}

/// Why a results file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// Reading or writing a file failed, or a value did not serialize.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A file is not JSON of the expected shape.
    #[error("{path} is not a valid results file: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        reason: String,
    },
    /// The directory has no [`MANIFEST_FILE`].
    #[error("{0} is not a results directory (no {MANIFEST_FILE})")]
    NotResults(PathBuf),
}

/// A results directory read back.
#[derive(Debug, Clone)]
pub struct Results {
    /// The results directory.
    pub dir: PathBuf,
    /// Its `run.json`.
    pub manifest: RunManifest,
    /// Finished cells in planned order (cells not run yet are absent).
    pub cells: Vec<CellResult>,
}

impl Results {
    /// Reads `run.json` and the result of every planned cell that has one.
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

/// The result file of cell `key` in the results directory `dir`.
pub fn cell_path(dir: &Path, key: &CellKey) -> PathBuf {
    dir.join(CELLS_DIR).join(format!("{}.json", key.id()))
}

/// The directory for a cell's metrics files and logs.
pub fn cell_dir(dir: &Path, key: &CellKey) -> PathBuf {
    dir.join(CELLS_DIR).join(key.id())
}

/// Where attempt `n` (from 1) of cell `key` set aside for running with the
/// host's CPUs apart is kept: its result as `result.json` beside its logs
/// and metrics files.
pub fn set_aside_dir(dir: &Path, key: &CellKey, n: u32) -> PathBuf {
    cell_dir(dir, key).join(format!("apart-{n}"))
}

/// How many attempts of cell `key` have been set aside (those whose result
/// moved into [`set_aside_dir`]).
pub fn set_aside_count(dir: &Path, key: &CellKey) -> u32 {
    (1..)
        .take_while(|&n| set_aside_dir(dir, key, n).join(CELL_RESULT_FILE).is_file())
        .count() as u32
}

/// A set-aside attempt's result file, inside its [`set_aside_dir`].
pub const CELL_RESULT_FILE: &str = "result.json";

/// Sets the finished attempt of cell `key` aside so the cell can run again:
/// its logs and metrics files, then its result (last: the rename that makes
/// the cell unfinished, so an interruption anywhere leaves either a finished
/// cell or a set-aside one, and doing it again finishes the move). Returns
/// the attempt's number.
pub fn set_aside(dir: &Path, key: &CellKey) -> Result<u32, ResultsError> {
    let n = set_aside_count(dir, key) + 1;
    let to = set_aside_dir(dir, key, n);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ResultsError::Io { path, source }
    };
    fs::create_dir_all(&to).map_err(io(&to))?;
    let files = cell_dir(dir, key);
    for entry in fs::read_dir(&files).map_err(io(&files))? {
        let entry = entry.map_err(io(&files))?;
        // Earlier attempts stay where they are.
        if entry.file_type().map_err(io(&files))?.is_dir() {
            continue;
        }
        let from = entry.path();
        fs::rename(&from, to.join(entry.file_name())).map_err(io(&from))?;
    }
    let result = cell_path(dir, key);
    fs::rename(&result, to.join(CELL_RESULT_FILE)).map_err(io(&result))?;
    Ok(n)
}

/// Reads a JSON file into a `T`.
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
            migrated: false,
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
            queued: Some(QueuedStats {
                wait_head: 3,
                ..QueuedStats::default()
            }),
            tas: None,
            kick_wake_ns: None,
            guests: vec![GuestCpu {
                run_delay_s: Some(0.25),
                vcpu_run_delay_s: vec![0.125, 0.125],
                ..GuestCpu::new(GuestRole::Bench, 2, 1.5, 2.0)
            }],
            host: Some(HostNoise {
                steal_s: Some(0.0),
                reference_before_ms: 9.5,
                reference_after_ms: 10.5,
                core_to_core_before_ns: Some(40.0),
                core_to_core_after_ns: Some(44.0),
                waited_near_s: None,
            }),
            runs: None,
            cell_wall_s: None,
            times: None,
            migrations: None,
            vcpus_at_cap: Some("cpu0 RIP=00000000004f8ba2 RFL=00001046 HLT=0".to_string()),
            reruns_apart: 0,
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
    fn host_readings_written_before_the_core_to_core_probe_load() {
        let old = r#"{"steal_s": 0.0, "reference_before_ms": 6.2, "reference_after_ms": 6.0}"#;
        let host: HostNoise = serde_json::from_str(old).unwrap();
        assert_eq!(
            (host.core_to_core_before_ns, host.core_to_core_ns()),
            (None, None)
        );
        assert!((host.speed_index_ms() - 6.1).abs() < 1e-9);
        // And they are written back as they were.
        assert_eq!(
            serde_json::to_string(&host).unwrap().replace(' ', ""),
            old.replace(' ', "")
        );
    }

    #[test]
    fn results_written_before_the_lock_designs_load() {
        // A cell of the first edition: pv-ticket counters only, guests without
        // run delays.
        let old = r#"{
            "key": {"workload": "kernbench", "overcommit": "3x", "clients": null, "lock": "pv", "rep": 2},
            "status": "completed",
            "elapsed_s": 8.1, "cap_s": 15.0, "ops": 24, "tps": null,
            "latency_us": null,
            "pvlock": {"taken_slow": 10, "halted": 4},
            "guests": [{"role": "bench", "vcpus": 2, "cpu_s": 3.0, "wall_s": 8.1}]
        }"#;
        let cell: CellResult = serde_json::from_str(old).unwrap();
        assert_eq!(cell.key.lock, LockMode::Pv);
        assert_eq!(
            cell.pvlock.map(|l| (l.taken_slow, l.halted, l.released_slow)),
            Some((10, 4, 0))
        );
        assert_eq!((cell.queued, cell.tas, cell.kick_wake_ns), (None, None, None));
        assert_eq!(cell.guests[0].run_delay_s, None);
        assert!(cell.guests[0].vcpu_run_delay_s.is_empty());
        assert_eq!(cell.guests[0].run_delay_share(), None);
        // Written back, it has no new fields: an old reader still takes it.
        let json = serde_json::to_string(&cell).unwrap();
        for field in ["queued", "tas", "kick_wake_ns", "run_delay_s"] {
            assert!(!json.contains(field), "{field} in {json}");
        }
    }

    #[test]
    fn run_delay_is_a_share_of_the_vcpus_time() {
        let g = GuestCpu {
            run_delay_s: Some(3.0),
            ..GuestCpu::new(GuestRole::Hog, 2, 1.0, 2.0)
        };
        assert_eq!(g.run_delay_share(), Some(0.75));
        let g = GuestCpu {
            run_delay_s: Some(3.0),
            ..GuestCpu::new(GuestRole::Hog, 2, 1.0, 0.0)
        };
        assert_eq!(g.run_delay_share(), None);
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
