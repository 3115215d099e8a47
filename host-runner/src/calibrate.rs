//! `pvbench calibrate`: the noise floor of this host and of the appliance on
//! it, measured in one run.
//!
//! 1. The host: a short native reference workload (the runner's
//!    [`noise::reference`]) repeated, before and after the A/A matrix; its
//!    coefficient of variation is what the host alone adds to a loop that
//!    stays in the core's L1. And each 1x group's own work run natively (no
//!    QEMU, no guest: [`NativeWork`]), before and after: what the host adds
//!    to this very work.
//! 2. The appliance: an A/A matrix (`host-runner/matrices/calibrate.toml`),
//!    the same lock mode in every cell. Each group's repetitions are split
//!    into disjoint comparisons of `aa_runs` against `aa_runs` (odd against
//!    even repetitions, interleaved as a real comparison's arms are), each
//!    judged by the report's own test. Any "difference proven" is a false
//!    positive; at 95 % confidence about 5 % are expected.
//!
//! Written like any results directory (`<out>/aa/`) plus `calibration.json`
//! and `calibration.md` beside it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::build::layout::Layout;
use crate::report::analysis::{verdict, Arm, RunValue};
use crate::results::{
    self, BootRuns, CellResult, CellStatus, GroupKey, LockMode, MatrixSpec, Overcommit, Provenance, Results,
    Workload,
};
use crate::runner::{self, noise, Host, RunError, RunOptions};
use crate::stats::{ancova, mean_variance, paired_t_resolution, t_resolution, Confidence, Sample};

/// The built-in A/A matrix.
pub const CALIBRATE: &str = include_str!("../matrices/calibrate.toml");
/// Files written beside the A/A results.
pub const SUMMARY_JSON: &str = "calibration.json";
pub const SUMMARY_MARKDOWN: &str = "calibration.md";
/// Times the native reference runs before the matrix, and again after it.
const REFERENCE_RUNS: usize = 30;
/// Native runs of each group's own work before the matrix, and again after
/// it (a pgbench-like run of 1 warm-up and 3 measured repetitions of 3 s
/// costs 12 s).
const NATIVE_RUNS: usize = 6;
/// Where a native kernbench-like builds: a memory file system, as the guest's
/// (Hermit's `/tmp`). On the host's disk the build measures the disk's file
/// system instead (measured: on ext4 `/tmp` 8 native builds in a row slowed
/// from 0.021 to 0.059 s; on this tmpfs they took 0.016-0.017 s).
const NATIVE_BUILD_ROOT: &str = "/dev/shm";

/// Options of one `pvbench calibrate`.
pub struct CalibrateOptions {
    pub spec: MatrixSpec,
    /// Runs per arm of each A/A comparison.
    pub aa_runs: usize,
    pub out: PathBuf,
    pub resume: bool,
    pub quiet: bool,
}

/// Why calibration stopped.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error("calibrate: --aa-runs must be at least 2 (a comparison needs two runs a side)")]
    TooFewRuns,
    #[error(
        "calibrate: the matrix's {reps} repetitions give no comparison of {aa_runs} against {aa_runs}; raise reps"
    )]
    NoComparison { reps: u32, aa_runs: usize },
    #[error("calibrate: the native run of `{words}` failed: {reason}")]
    Native { words: String, reason: String },
    #[error("calibrate: cannot read the summary {}: {reason}", path.display())]
    Summary { path: PathBuf, reason: String },
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Results(#[from] results::ResultsError),
}

/// The native reference's repeated timings and their spread.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reference {
    pub runs_ms: Vec<f64>,
    pub mean_ms: f64,
    pub cv_percent: f64,
}

impl Reference {
    /// Times the reference `n` times.
    pub fn measure(n: usize) -> Self {
        Self::of((0..n).map(|_| noise::reference().as_secs_f64() * 1e3).collect())
    }

    fn of(runs_ms: Vec<f64>) -> Self {
        let (mean_ms, cv_percent) = mean_cv(&runs_ms);
        Self {
            runs_ms,
            mean_ms,
            cv_percent,
        }
    }
}

/// A 1x group's own work run on the host, without QEMU or a guest: the same
/// workload words (work, threads, repetitions) as its cells. Its spread is the
/// host's noise on this very work, which the loop reference cannot show: work
/// that walks memory feels the neighbours a loop in L1 does not (a native
/// pgbench-like at 1 client ran 358k to 585k tps over 6 runs on one of these
/// hosts, the loop's CV was 2%).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NativeWork {
    pub group: GroupKey,
    /// As the `pvbench-workloads` `run` example takes them.
    pub words: Vec<String>,
    /// Each run's figure as a cell's (the mean of its measured repetitions:
    /// seconds per build, or transactions per second), before and after the
    /// matrix.
    pub before: Vec<f64>,
    pub after: Vec<f64>,
}

impl NativeWork {
    /// The 1x groups of `spec` with their work for guests of `vcpus`, no runs yet.
    pub fn of(spec: &MatrixSpec, vcpus: u32) -> Vec<Self> {
        let mut work: Vec<Self> = Vec::new();
        for key in spec.plan() {
            if key.overcommit != Overcommit::X1 || work.iter().any(|w| w.group == key.group()) {
                continue;
            }
            let (args, _) = runner::workload(spec, vcpus, &key);
            let mut words: Vec<String> = args
                .words()
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if key.workload == Workload::Kernbench && Path::new(NATIVE_BUILD_ROOT).is_dir() {
                words.push(format!(
                    "{}={NATIVE_BUILD_ROOT}",
                    pvbench_workloads::params::keys::ROOT
                ));
            }
            work.push(Self {
                group: key.group(),
                words,
                before: Vec::new(),
                after: Vec::new(),
            });
        }
        work
    }

    /// Mean and CV (percent) of all its runs, before and after together: the
    /// A/A runs span the whole matrix too.
    pub fn mean_cv(&self) -> (f64, f64) {
        mean_cv(&[self.before.as_slice(), self.after.as_slice()].concat())
    }
}

/// Runs every group's work `rounds` times, the groups interleaved as the
/// matrix interleaves them; `after` says which list the runs go to.
fn measure_native(
    work: &mut [NativeWork],
    rounds: usize,
    warmup: u32,
    after: bool,
) -> Result<(), CalibrateError> {
    for _ in 0..rounds {
        for w in work.iter_mut() {
            let value = native_run(&w.words, warmup)?;
            if after {
                w.after.push(value);
            } else {
                w.before.push(value);
            }
        }
    }
    Ok(())
}

/// One native run of `words`: its figure as a cell's.
fn native_run(words: &[String], warmup: u32) -> Result<f64, CalibrateError> {
    use pvbench_workloads::{IntervalReport, Observer, RunSummary};
    struct Quiet;
    impl Observer for Quiet {
        fn interval(&mut self, _: IntervalReport) {}
    }
    let failed = |reason: String| CalibrateError::Native {
        words: words.join(" "),
        reason,
    };
    let summary = pvbench_workloads::run_args(words, &mut Quiet).map_err(|e| failed(e.to_string()))?;
    // The figures the guest reports per repetition (its application's summary).
    let values = match &summary {
        RunSummary::Kernbench(k) => k.reps.iter().map(|r| r.elapsed_s).collect(),
        RunSummary::Pgbench(p) => p.reps.iter().map(|r| r.tps).collect(),
        RunSummary::Cpuhog(_) => return Err(failed("cpuhog has no figure to compare".into())),
    };
    BootRuns { warmup, values }
        .measured_mean()
        .ok_or_else(|| failed("no measured repetition".into()))
}

/// One group's A/A figures.
#[derive(Debug, Clone, Serialize)]
pub struct GroupNoise {
    pub group: GroupKey,
    /// Runs with a value (completed or censored).
    pub runs: usize,
    /// Mean and coefficient of variation (percent) of all its runs (`None`
    /// with censored runs).
    pub mean: Option<f64>,
    pub cv_percent: Option<f64>,
    /// The minimum detectable effect of an `aa_runs` vs `aa_runs` comparison
    /// with this spread, percent of the mean (80 % power, 95 % confidence).
    pub mde_percent: Option<f64>,
    /// A/A comparisons made, and how many said "difference proven".
    pub comparisons: usize,
    pub false_positives: usize,
    /// The spread at each level, where boots ran several repetitions.
    pub levels: Option<Levels>,
    /// Pairing and the host covariate, where every cell completed.
    pub cuts: Option<Cuts>,
    /// The group's own work run natively (1x groups): its mean and CV.
    pub native_mean: Option<f64>,
    pub native_cv_percent: Option<f64>,
}

/// The calibration's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub provenance: Provenance,
    pub aa_dir: PathBuf,
    pub aa_runs: usize,
    pub reference_before: Reference,
    pub reference_after: Reference,
    /// Each 1x group's work run natively (see [`NativeWork`]).
    pub native: Vec<NativeWork>,
    pub groups: Vec<GroupNoise>,
    pub comparisons: usize,
    pub false_positives: usize,
    /// False positives per comparison, with a 95 % Wilson interval.
    pub false_positive_rate: f64,
    pub false_positive_interval: (f64, f64),
    /// The same for each boot's first repetition alone, where boots ran
    /// several (`None` otherwise): the A/A rate of one run per boot.
    pub first_run_false_positives: Option<(usize, usize)>,
}

/// The built-in A/A matrix.
pub fn spec() -> MatrixSpec {
    MatrixSpec::parse(CALIBRATE, "built-in calibrate matrix").expect("the built-in calibrate matrix is valid")
}

/// Measures the host, runs (or resumes) the A/A matrix, and writes and returns
/// the calibration.
pub fn run(layout: &Layout, host: &Host, options: CalibrateOptions) -> Result<Calibration, CalibrateError> {
    if options.aa_runs < 2 {
        return Err(CalibrateError::TooFewRuns);
    }
    if (options.spec.reps as usize) < 2 * options.aa_runs {
        return Err(CalibrateError::NoComparison {
            reps: options.spec.reps,
            aa_runs: options.aa_runs,
        });
    }
    let reference_before = Reference::measure(REFERENCE_RUNS);
    let vcpus = options.spec.vcpus.unwrap_or_else(runner::host_cores);
    let warmup = options.spec.warmup();
    let mut native = NativeWork::of(&options.spec, vcpus);
    measure_native(&mut native, NATIVE_RUNS, warmup, false)?;
    let aa_dir = options.out.join("aa");
    let results = runner::run(
        layout,
        host,
        RunOptions {
            spec: options.spec,
            out: aa_dir.clone(),
            resume: options.resume,
            quiet: options.quiet,
            target: None,
            shard: None,
            dump_on_stall: false,
        },
    )?;
    let reference_after = Reference::measure(REFERENCE_RUNS);
    measure_native(&mut native, NATIVE_RUNS, warmup, true)?;
    let calibration = analyze(
        &results,
        options.aa_runs,
        reference_before,
        reference_after,
        native,
    );
    write_summary(&options.out, &calibration)?;
    Ok(calibration)
}

/// Analyses the finished calibration in `out` again, from its A/A results
/// and the native reference runs its summary stored, and rewrites the
/// summary. Runs nothing.
pub fn reanalyze(out: &Path, aa_runs: usize) -> Result<Calibration, CalibrateError> {
    /// The part of a stored summary that cannot be measured again.
    #[derive(Deserialize)]
    struct Stored {
        reference_before: Reference,
        reference_after: Reference,
        /// Summaries written before the native runs existed have none.
        #[serde(default)]
        native: Vec<NativeWork>,
    }
    if aa_runs < 2 {
        return Err(CalibrateError::TooFewRuns);
    }
    let summary = out.join(SUMMARY_JSON);
    let text = std::fs::read_to_string(&summary).map_err(|e| CalibrateError::Summary {
        path: summary.clone(),
        reason: e.to_string(),
    })?;
    let stored: Stored = serde_json::from_str(&text).map_err(|e| CalibrateError::Summary {
        path: summary.clone(),
        reason: e.to_string(),
    })?;
    let results = Results::load(&aa_dir(out))?;
    let calibration = analyze(
        &results,
        aa_runs,
        stored.reference_before,
        stored.reference_after,
        stored.native,
    );
    write_summary(out, &calibration)?;
    Ok(calibration)
}

fn write_summary(out: &Path, calibration: &Calibration) -> Result<(), CalibrateError> {
    results::write_json_atomic(&out.join(SUMMARY_JSON), calibration)?;
    results::write_atomic(&out.join(SUMMARY_MARKDOWN), markdown(calibration).as_bytes())?;
    Ok(())
}

/// The calibration of an A/A results directory. Pure.
pub fn analyze(
    results: &Results,
    aa_runs: usize,
    before: Reference,
    after: Reference,
    native: Vec<NativeWork>,
) -> Calibration {
    // Each group once, in plan order (the plan interleaves groups per repetition).
    let mut groups: Vec<GroupKey> = Vec::new();
    for key in &results.manifest.cells {
        if !groups.contains(&key.group()) {
            groups.push(key.group());
        }
    }
    let groups: Vec<GroupNoise> = groups
        .into_iter()
        .map(|g| group_noise(results, g, aa_runs, native.iter().find(|w| w.group == g)))
        .collect();
    let comparisons = groups.iter().map(|g| g.comparisons).sum();
    let false_positives = groups.iter().map(|g| g.false_positives).sum();
    let first_run_false_positives = first_run_totals(&groups);
    Calibration {
        provenance: results.manifest.provenance.clone(),
        aa_dir: results.dir.clone(),
        aa_runs,
        reference_before: before,
        reference_after: after,
        native,
        groups,
        comparisons,
        false_positives,
        false_positive_rate: false_positives as f64 / comparisons.max(1) as f64,
        false_positive_interval: wilson(false_positives, comparisons),
        first_run_false_positives,
    }
}

fn group_noise(
    results: &Results,
    group: GroupKey,
    aa_runs: usize,
    native: Option<&NativeWork>,
) -> GroupNoise {
    let mut cells: Vec<&CellResult> = results.cells.iter().filter(|c| c.key.group() == group).collect();
    cells.sort_by_key(|c| c.key.rep);
    let runs: Vec<RunValue> = cells
        .iter()
        .filter_map(|c| {
            c.value().map(|(value, censored)| RunValue {
                rep: c.key.rep,
                value,
                censored,
            })
        })
        .collect();
    let series = Series::of(&runs, group, aa_runs);
    let floor = crate::results::core_to_core_floor_ns(&results.cells);
    let cuts = Cuts::of(&cells, aa_runs, floor);
    let native = native.map(NativeWork::mean_cv);
    GroupNoise {
        group,
        runs: runs.len(),
        mean: series.mean,
        cv_percent: series.cv_percent,
        mde_percent: series.mde_percent,
        comparisons: series.comparisons,
        false_positives: series.false_positives,
        levels: Levels::of(&cells, group, aa_runs),
        cuts,
        native_mean: native.map(|(mean, _)| mean),
        native_cv_percent: native.map(|(_, cv)| cv).filter(|cv| cv.is_finite()),
    }
}

/// What two ways of cutting noise without more runs would do to a group's
/// resolution, from the same runs: pairing adjacent repetitions (the matrix
/// runs a comparison's arms side by side), and removing the host's speed
/// (the native reference timed around each cell) as a covariate.
#[derive(Debug, Clone, Serialize)]
pub struct Cuts {
    /// Adjacent repetitions taken as pairs (rep 1 with 2, 3 with 4, ...).
    pub pairs: usize,
    /// The MDE of `pairs` runs against `pairs` runs, unpaired (Student), and
    /// paired on adjacent repetitions, percent of the mean.
    pub unpaired_mde_percent: f64,
    pub paired_mde_percent: f64,
    /// The share of the runs' variance the host-speed index explains (R^2 of
    /// a linear fit), and the CV left once it is removed (`None` without the
    /// index in every cell).
    pub host_r2: Option<f64>,
    pub host_adjusted_cv_percent: Option<f64>,
    /// The MDE of `pairs` vs `pairs` runs compared with the host index as a
    /// covariate (common slope), percent of the mean.
    pub host_adjusted_mde_percent: Option<f64>,
    /// The A/A comparisons judged that way, and how many said "difference
    /// proven" (at 95 %): whether the adjustment keeps its error rate.
    pub host_adjusted_comparisons: usize,
    pub host_adjusted_false_positives: usize,
    /// The share of the runs' variance the core-to-core index explains (R^2
    /// of a linear fit; `None` without the index in every cell).
    pub core_to_core_r2: Option<f64>,
    /// Runs measured with the host's CPUs apart (see
    /// [`crate::results::CPUS_APART_RATIO`]), and the CV of the others: what
    /// rerunning those would leave (`None` without the readings, or with
    /// fewer than two near runs).
    pub apart: Option<usize>,
    pub near_cv_percent: Option<f64>,
    /// Runs the matrix's `apart_reruns` rule measured again (their figures
    /// here are of the last attempt).
    pub rerun: usize,
}

impl Cuts {
    /// From a group's completed cells in repetition order; `None` with
    /// censored or failed cells (their values are bounds or missing) or fewer
    /// than two pairs.
    fn of(cells: &[&CellResult], aa_runs: usize, floor_ns: Option<f64>) -> Option<Self> {
        if cells.iter().any(|c| !matches!(c.status, CellStatus::Completed)) {
            return None;
        }
        let values: Vec<f64> = cells.iter().filter_map(|c| c.value().map(|(v, _)| v)).collect();
        let pairs = values.len() / 2;
        if pairs < 2 || values.len() != cells.len() {
            return None;
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let firsts: Vec<f64> = values.iter().step_by(2).take(pairs).copied().collect();
        let seconds: Vec<f64> = values.iter().skip(1).step_by(2).take(pairs).copied().collect();
        let pooled = ((variance(&firsts) + variance(&seconds)) / 2.0).sqrt();
        let diffs: Vec<f64> = firsts.iter().zip(&seconds).map(|(a, b)| b - a).collect();
        let unpaired = t_resolution(pairs, pairs, pooled, Confidence::P95)?;
        let paired = paired_t_resolution(pairs, variance(&diffs).sqrt(), Confidence::P95)?;
        let host: Option<Vec<f64>> = cells.iter().map(|c| c.host.map(|h| h.speed_index_ms())).collect();
        let fit = host.as_ref().and_then(|h| linear_fit(h, &values));
        // Odd against even repetitions, as the A/A split: adjusted for the host.
        let split = |y: &[f64], h: &[f64]| {
            let odd = |v: &[f64]| v.iter().step_by(2).copied().collect::<Vec<f64>>();
            let even = |v: &[f64]| v.iter().skip(1).step_by(2).copied().collect::<Vec<f64>>();
            ancova((&odd(y), &odd(h)), (&even(y), &even(h)), Confidence::P95)
        };
        let whole = host.as_ref().and_then(|h| split(&values, h));
        let core_to_core: Option<Vec<f64>> = cells.iter().map(|c| c.host?.core_to_core_ns()).collect();
        let core_to_core_fit = core_to_core.as_ref().and_then(|x| linear_fit(x, &values));
        let apart: Option<Vec<bool>> = floor_ns.and_then(|f| cells.iter().map(|c| c.cpus_apart(f)).collect());
        let near: Option<Vec<f64>> = apart.as_ref().map(|a| {
            values
                .iter()
                .zip(a)
                .filter(|(_, apart)| !**apart)
                .map(|(v, _)| *v)
                .collect()
        });
        let near_cv_percent = near.filter(|v| v.len() >= 2).map(|v| mean_cv(&v).1);
        let (mut comparisons, mut false_positives) = (0, 0);
        if let Some(h) = &host {
            for (y, x) in values.chunks_exact(2 * aa_runs).zip(h.chunks_exact(2 * aa_runs)) {
                if let Some(r) = split(y, x) {
                    comparisons += 1;
                    if r.p < 0.05 {
                        false_positives += 1;
                    }
                }
            }
        }
        Some(Self {
            pairs,
            unpaired_mde_percent: unpaired.mde / mean.abs() * 100.0,
            paired_mde_percent: paired.mde / mean.abs() * 100.0,
            host_r2: fit.map(|f| f.r2),
            host_adjusted_cv_percent: fit.map(|f| f.residual_sd / mean.abs() * 100.0),
            host_adjusted_mde_percent: whole.map(|r| r.mde / mean.abs() * 100.0),
            host_adjusted_comparisons: comparisons,
            host_adjusted_false_positives: false_positives,
            core_to_core_r2: core_to_core_fit.map(|f| f.r2),
            apart: apart.map(|a| a.iter().filter(|x| **x).count()),
            near_cv_percent,
            rerun: cells.iter().filter(|c| c.reruns_apart > 0).count(),
        })
    }
}

/// A least-squares line through (x, y).
#[derive(Debug, Clone, Copy)]
struct Fit {
    /// The share of y's variance the line explains.
    r2: f64,
    /// The residuals' standard deviation (n - 2 degrees of freedom).
    residual_sd: f64,
}

/// `None` with fewer than three points or no spread in x.
fn linear_fit(x: &[f64], y: &[f64]) -> Option<Fit> {
    let n = x.len();
    if n < 3 || n != y.len() {
        return None;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n as f64, y.iter().sum::<f64>() / n as f64);
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let syy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    let residual = syy - sxy * sxy / sxx;
    Some(Fit {
        r2: 1.0 - residual / syy,
        residual_sd: (residual.max(0.0) / (n - 2) as f64).sqrt(),
    })
}

/// False positives and comparisons of the first-run series over all groups.
fn first_run_totals(groups: &[GroupNoise]) -> Option<(usize, usize)> {
    let series: Vec<&Series> = groups
        .iter()
        .filter_map(|g| g.levels.as_ref().map(|l| &l.first_run))
        .collect();
    (!series.is_empty()).then(|| {
        (
            series.iter().map(|s| s.false_positives).sum(),
            series.iter().map(|s| s.comparisons).sum(),
        )
    })
}

/// One series of per-cell values, as the report would judge it.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// Mean and coefficient of variation (percent; `None` with censored runs).
    pub mean: Option<f64>,
    pub cv_percent: Option<f64>,
    /// The MDE of an `aa_runs` vs `aa_runs` comparison, percent of the mean.
    pub mde_percent: Option<f64>,
    pub comparisons: usize,
    pub false_positives: usize,
}

impl Series {
    fn of(runs: &[RunValue], group: GroupKey, aa_runs: usize) -> Self {
        let uncensored = runs.iter().all(|r| !r.censored);
        let values: Vec<f64> = runs.iter().map(|r| r.value).collect();
        let (mean, cv) = mean_cv(&values);
        let cv_percent = (uncensored && runs.len() >= 2).then_some(cv);
        let sd = cv / 100.0 * mean;
        let mde_percent = cv_percent
            .and_then(|_| t_resolution(aa_runs, aa_runs, sd, Confidence::P95))
            .map(|r| r.mde / mean.abs() * 100.0);
        let (mut comparisons, mut false_positives) = (0, 0);
        for batch in runs.chunks_exact(2 * aa_runs) {
            // Odd repetitions against even ones: each arm spans the batch's time.
            let arm = |parity: usize| Arm {
                lock: LockMode::Pv,
                runs: batch.iter().skip(parity).step_by(2).copied().collect(),
                failed: 0,
                missing: 0,
                stats: None,
            };
            comparisons += 1;
            if verdict(&arm(0), &arm(1), group.workload.metric(), Confidence::P95).proven() {
                false_positives += 1;
            }
        }
        Self {
            mean: cv_percent.map(|_| mean),
            cv_percent,
            mde_percent,
            comparisons,
            false_positives,
        }
    }
}

/// Where each boot ran several repetitions (matrix `runs_per_boot`): the
/// spread at each level and what it costs (Kalibera and Jones, "Rigorous
/// benchmarking in reasonable time", 2013).
#[derive(Debug, Clone, Serialize)]
pub struct Levels {
    /// Boots (cells) with all their repetitions.
    pub boots: usize,
    pub warmup: u32,
    pub runs_per_boot: usize,
    /// Each boot's first repetition alone: what a matrix of one run per boot
    /// measures, judged in the same A/A comparisons.
    pub first_run: Series,
    /// Mean of the first repetitions over the mean of the measured ones.
    pub first_over_measured: f64,
    /// Spread of measured runs within a boot, percent of the mean.
    pub within_cv_percent: f64,
    /// The boots' own spread (the between-boot variance component, within-boot
    /// noise removed), percent of the mean.
    pub between_cv_percent: f64,
    /// Seconds per boot outside its repetitions (start, setup, teardown), and
    /// per repetition; `None` in results without cell wall times.
    pub boot_cost_s: Option<f64>,
    pub run_cost_s: Option<f64>,
    /// The measured runs per boot that minimise variance per unit of time:
    /// sqrt(boot cost (with its warm-up) / run cost x within variance /
    /// between variance), at most [`MAX_OPTIMAL_RUNS`].
    pub optimal_runs_per_boot: Option<u32>,
    /// The MDE this design reaches in a fixed time over that of one run per
    /// boot (below 1: this design resolves more per hour).
    pub mde_ratio_same_time: Option<f64>,
}

/// The cap on the suggested runs per boot: beyond it a boot's own variance,
/// which only more boots reduce, dominates whatever the estimate says.
pub const MAX_OPTIMAL_RUNS: u32 = 20;

impl Levels {
    fn of(cells: &[&CellResult], group: GroupKey, aa_runs: usize) -> Option<Self> {
        let boots: Vec<(&CellResult, &BootRuns)> = cells
            .iter()
            .filter(|c| matches!(c.status, CellStatus::Completed))
            .filter_map(|c| c.runs.as_ref().map(|r| (*c, r)))
            .filter(|(_, r)| r.measured().len() >= 2)
            .collect();
        let (first, runs) = boots.first().map(|(_, r)| (r, r.measured().len()))?;
        let warmup = first.warmup;
        let boots: Vec<_> = boots
            .into_iter()
            .filter(|(_, r)| r.measured().len() == runs)
            .collect();
        if boots.len() < 2 {
            return None;
        }
        let first_runs: Vec<RunValue> = boots
            .iter()
            .map(|(c, r)| RunValue {
                rep: c.key.rep,
                value: r.values[0],
                censored: false,
            })
            .collect();
        let means: Vec<f64> = boots.iter().filter_map(|(_, r)| r.measured_mean()).collect();
        let grand = means.iter().sum::<f64>() / means.len() as f64;
        // One-way random effects: within = the pooled variance inside boots;
        // between = the variance of boot means less what within noise adds.
        let within = boots.iter().map(|(_, r)| variance(r.measured())).sum::<f64>() / boots.len() as f64;
        let between = (variance(&means) - within / runs as f64).max(0.0);
        let first_mean = first_runs.iter().map(|r| r.value).sum::<f64>() / first_runs.len() as f64;
        let costs = Costs::of(&boots, warmup, runs);
        let optimal = costs.map(|c| {
            let boot = c.boot_s + f64::from(warmup) * c.run_s;
            if between <= 0.0 {
                return MAX_OPTIMAL_RUNS;
            }
            let r = (boot / c.run_s * within / between).sqrt().round();
            (r as u32).clamp(1, MAX_OPTIMAL_RUNS)
        });
        let first_run = Series::of(&first_runs, group, aa_runs);
        let (_, measured_cv) = mean_cv(&means);
        // MDE in a fixed time scales with sd x sqrt(cost per cell).
        let mde_ratio_same_time = costs.zip(first_run.cv_percent).map(|(c, first_cv)| {
            let this = measured_cv * (c.boot_s + f64::from(warmup) * c.run_s + runs as f64 * c.run_s).sqrt();
            let single = first_cv * (c.boot_s + c.run_s).sqrt();
            this / single
        });
        Some(Self {
            boots: boots.len(),
            warmup,
            runs_per_boot: runs,
            first_run,
            first_over_measured: first_mean / grand,
            within_cv_percent: within.sqrt() / grand.abs() * 100.0,
            between_cv_percent: between.sqrt() / grand.abs() * 100.0,
            boot_cost_s: costs.map(|c| c.boot_s),
            run_cost_s: costs.map(|c| c.run_s),
            optimal_runs_per_boot: optimal,
            mde_ratio_same_time,
        })
    }
}

/// Mean seconds a boot spends outside its repetitions, and per repetition.
#[derive(Debug, Clone, Copy)]
struct Costs {
    boot_s: f64,
    run_s: f64,
}

impl Costs {
    /// From the cells' wall times: a repetition costs its own time
    /// (kernbench: its build; pgbench: its timed run), a boot everything else
    /// in its cell (guest start, data written, cleanup, teardown).
    fn of(boots: &[(&CellResult, &BootRuns)], warmup: u32, runs: usize) -> Option<Self> {
        let reps = f64::from(warmup) + runs as f64;
        let (mut boot, mut run, mut n) = (0.0, 0.0, 0usize);
        for (c, r) in boots {
            let Some(cell_s) = c.cell_wall_s else {
                continue;
            };
            let run_s = match c.key.workload {
                Workload::Kernbench => r.values.iter().sum::<f64>() / reps,
                Workload::Pgbench => c.elapsed_s / reps,
            };
            run += run_s;
            boot += (cell_s - run_s * reps).max(0.0);
            n += 1;
        }
        (n > 0 && run > 0.0).then(|| Self {
            boot_s: boot / n as f64,
            run_s: run / n as f64,
        })
    }
}

/// Sample variance; every caller has at least two values.
fn variance(values: &[f64]) -> f64 {
    mean_variance(values).1
}

/// Mean and coefficient of variation (percent; sample standard deviation).
fn mean_cv(values: &[f64]) -> (f64, f64) {
    match Sample::new(values.to_vec()) {
        Ok(s) if s.n() >= 2 => {
            let mean = s.mean();
            (mean, s.stddev() / mean.abs() * 100.0)
        }
        Ok(s) => (s.mean(), f64::NAN),
        Err(_) => (f64::NAN, f64::NAN),
    }
}

/// The 95 % Wilson score interval of `k` successes in `n` trials.
fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n, z) = (k as f64, n as f64, 1.959_964);
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The calibration for people.
pub fn markdown(c: &Calibration) -> String {
    let p = &c.provenance;
    let mut out = String::from("# pvbench calibrate: the noise floor\n\n");
    let _ = writeln!(
        out,
        "Host {} ({} cores), {}, accel {}; guest image {}; git {}. A/A results in `{}`.\n",
        p.host_cpu,
        p.host_cores,
        p.qemu,
        p.accel,
        p.image_id,
        p.git_revision,
        c.aa_dir.display()
    );
    let r = (&c.reference_before, &c.reference_after);
    let _ = writeln!(
        out,
        "Native reference ({} runs each): before {:.2} ms mean, CV {:.1}%; after {:.2} ms, CV {:.1}%.\n",
        r.0.runs_ms.len(),
        r.0.mean_ms,
        r.0.cv_percent,
        r.1.mean_ms,
        r.1.cv_percent
    );
    let _ = writeln!(
        out,
        "A/A: {} false positives in {} comparisons of {} vs {} runs at 95% confidence: rate {:.1}% \
         (95% interval {:.1}-{:.1}%; 5% expected).\n",
        c.false_positives,
        c.comparisons,
        c.aa_runs,
        c.aa_runs,
        c.false_positive_rate * 100.0,
        c.false_positive_interval.0 * 100.0,
        c.false_positive_interval.1 * 100.0
    );
    out.push_str(
        "| group | runs | CV | CV / native CV | CV / same work native CV | MDE of a comparison | comparisons | false positives |\n",
    );
    out.push_str("| :-- | --: | --: | --: | --: | --: | --: | --: |\n");
    let native = c.reference_before.cv_percent.max(c.reference_after.cv_percent);
    let pct = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.1}%"));
    let ratio = |cv: Option<f64>, to: Option<f64>| match (cv, to) {
        (Some(cv), Some(to)) if to > 0.0 => format!("{:.1}", cv / to),
        _ => "-".to_string(),
    };
    for g in &c.groups {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            g.group,
            g.runs,
            pct(g.cv_percent),
            ratio(g.cv_percent, Some(native)),
            ratio(g.cv_percent, g.native_cv_percent),
            pct(g.mde_percent),
            g.comparisons,
            g.false_positives
        );
    }
    let _ = writeln!(
        out,
        "\nCV / native CV compares the appliance's run-to-run spread with the larger of the two native \
         reference CVs, measured in the same run; CV / same work native CV with that of the group's own \
         work run natively before and after the matrix (below). The MDE is that of a comparison of {} vs {} \
         runs with the group's spread (80% power).",
        c.aa_runs, c.aa_runs
    );
    native_markdown(c, &mut out);
    levels_markdown(c, &mut out);
    cuts_markdown(c, &mut out);
    out
}

/// The native section: each 1x group's own work without QEMU or a guest.
fn native_markdown(c: &Calibration, out: &mut String) {
    if c.native.is_empty() {
        return;
    }
    out.push_str(
        "\n## The same work natively\n\nEach 1x group's workload (the same words: work, threads, repetitions) run \
         on the host without QEMU or a guest, before the matrix and again after it, the groups interleaved. \
         Its spread is what the host adds to this very work; the guest's time over the native one is \
         what QEMU and the guest kernel cost it.\n\n\
         | group | workload | runs before + after | native mean | CV before | CV after | CV all | guest / native time |\n\
         | :-- | :-- | --: | --: | --: | --: | --: | --: |\n",
    );
    let pct = |x: f64| {
        if x.is_finite() {
            format!("{x:.1}%")
        } else {
            "-".to_string()
        }
    };
    for w in &c.native {
        let (mean, cv) = w.mean_cv();
        let guest = c.groups.iter().find(|g| g.group == w.group);
        // Seconds per build grow with the cost, transactions per second shrink.
        let slowdown = guest
            .and_then(|g| g.mean)
            .map_or("-".to_string(), |m| match w.group.workload {
                Workload::Kernbench => format!("{:.1}x", m / mean),
                Workload::Pgbench => format!("{:.1}x", mean / m),
            });
        let _ = writeln!(
            out,
            "| {} | `{}` | {} + {} | {} | {} | {} | {} | {slowdown} |",
            w.group,
            w.words.join(" "),
            w.before.len(),
            w.after.len(),
            match w.group.workload {
                Workload::Kernbench => format!("{mean:.4} s"),
                Workload::Pgbench => format!("{mean:.0} tps"),
            },
            pct(mean_cv(&w.before).1),
            pct(mean_cv(&w.after).1),
            pct(cv),
        );
    }
}

/// The cuts section: pairing and the host covariate.
fn cuts_markdown(c: &Calibration, out: &mut String) {
    let cuts: Vec<(&GroupNoise, &Cuts)> = c
        .groups
        .iter()
        .filter_map(|g| g.cuts.as_ref().map(|k| (g, k)))
        .collect();
    if cuts.is_empty() {
        return;
    }
    out.push_str(
        "\n## Pairing and the host covariate\n\n| group | pairs | MDE unpaired | MDE paired | paired / unpaired | host index R^2 | CV | CV without the host index | MDE host-adjusted | A/A false positives host-adjusted | core-to-core R^2 | runs measured again | runs with the CPUs apart | CV of the others |\n",
    );
    out.push_str("| :-- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |\n");
    let pct = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.1}%"));
    for (g, k) in cuts {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1}% | {:.1}% | {:.2} | {} | {} | {} | {} | {} of {} | {} | {} | {} | {} |",
            g.group,
            k.pairs,
            k.unpaired_mde_percent,
            k.paired_mde_percent,
            k.paired_mde_percent / k.unpaired_mde_percent,
            k.host_r2.map_or("-".to_string(), |r| format!("{r:.2}")),
            pct(g.cv_percent),
            pct(k.host_adjusted_cv_percent),
            pct(k.host_adjusted_mde_percent),
            k.host_adjusted_false_positives,
            k.host_adjusted_comparisons,
            k.core_to_core_r2.map_or("-".to_string(), |r| format!("{r:.2}")),
            k.rerun,
            k.apart.map_or("-".to_string(), |n| n.to_string()),
            pct(k.near_cv_percent),
        );
    }
    out.push_str(
        "\nPairs are adjacent repetitions of the group (1 with 2, 3 with 4, ...), judged as k vs k runs \
         unpaired (Student) and as k differences (paired t); in an A/A matrix the runs of a pair are one \
         round of the matrix apart, further than a real comparison's arms, which run side by side. The \
         host index is the native reference timed just before and after each cell; its R^2 is the share \
         of the runs' variance a straight line in it explains. Host-adjusted: the same odd-against-even \
         comparisons with the host index as a covariate (one slope for both arms, fitted within them), \
         the MDE of all pairs and the false positives of the A/A batches. Core-to-core R^2: the same for \
         the round trip of a cache line between two host CPUs around each cell (the slow epochs of \
         `results/noise/slow-epochs` are invisible to the one-core reference). Runs measured again: an \
         earlier attempt ran with the CPUs apart and the matrix's `apart_reruns` rule set it aside (every \
         figure here is of the last attempt). Runs with the CPUs apart: a round trip before or after the \
         cell over 3x the run's fastest, after the reruns; CV of the others: the group's CV without \
         them.\n",
    );
}

/// The levels section: boots against runs within a boot.
fn levels_markdown(c: &Calibration, out: &mut String) {
    let levels: Vec<(&GroupNoise, &Levels)> = c
        .groups
        .iter()
        .filter_map(|g| g.levels.as_ref().map(|l| (g, l)))
        .collect();
    let Some((_, first)) = levels.first() else {
        return;
    };
    let _ = writeln!(
        out,
        "\n## Boots and runs within a boot\n\nEach boot ran {} warm-up and {} measured repetitions; a cell's value is \
         the mean of the measured ones. The first repetition of each boot alone is what one run per boot \
         measures, judged here in the same A/A comparisons.\n",
        first.warmup, first.runs_per_boot
    );
    if let Some((k, n)) = c.first_run_false_positives {
        let _ = writeln!(
            out,
            "First run per boot: {k} false positives in {n} comparisons ({:.1}%).\n",
            k as f64 / n.max(1) as f64 * 100.0
        );
    }
    out.push_str(
        "| group | boots | CV (mean of runs) | CV (first run) | first / measured | within boot | between boots | boot s | run s | optimal runs/boot | MDE in equal time vs 1 run/boot |\n",
    );
    out.push_str("| :-- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |\n");
    let pct = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.1}%"));
    let num = |x: Option<f64>, d: usize| x.map_or("-".to_string(), |x| format!("{x:.d$}"));
    for (g, l) in levels {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.3} | {:.1}% | {:.1}% | {} | {} | {} | {} |",
            g.group,
            l.boots,
            pct(g.cv_percent),
            pct(l.first_run.cv_percent),
            l.first_over_measured,
            l.within_cv_percent,
            l.between_cv_percent,
            num(l.boot_cost_s, 2),
            num(l.run_cost_s, 2),
            l.optimal_runs_per_boot.map_or("-".to_string(), |r| r.to_string()),
            num(l.mde_ratio_same_time, 2),
        );
    }
    out.push_str(
        "\nWithin boot and between boots are the two variance components (one-way random effects, \
         percent of the mean); the boots' own spread is what only more boots reduce. Optimal runs per \
         boot minimises variance per unit of time: sqrt(boot cost with its warm-up / run cost x within \
         variance / between variance) (Kalibera and Jones 2013). The last column is the MDE this design \
         reaches in a fixed time over that of one run per boot (cost from the cells' wall times): below 1, \
         it resolves more per hour.\n",
    );
}

/// `<out>` for a calibration run by default: results/runs/calibrate-<time>.
pub fn default_out(layout: &Layout) -> PathBuf {
    runner::default_out(layout, "calibrate")
}

/// The A/A results directory of a calibration in `out`.
pub fn aa_dir(out: &Path) -> PathBuf {
    out.join("aa")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{CellKey, CellStatus, Overcommit, RunManifest, Workload};
    use crate::test_support::provenance;

    /// A/A results of one kernbench group whose rep `r` took `value(r)` s.
    fn results(reps: u32, value: impl Fn(u32) -> f64) -> Results {
        let key = |rep| CellKey {
            workload: Workload::Kernbench,
            overcommit: Overcommit::X1,
            clients: None,
            migrated: false,
            lock: LockMode::Pv,
            rep,
        };
        let cells = (1..=reps)
            .map(|rep| {
                let mut c = CellResult::new(key(rep), CellStatus::Completed);
                c.elapsed_s = value(rep);
                c
            })
            .collect();
        Results {
            dir: PathBuf::from("cal/aa"),
            manifest: RunManifest {
                provenance: provenance(),
                matrix: serde_json::Value::Null,
                cells: (1..=reps).map(key).collect(),
                target_mde_pct: None,
                sharding: None,
            },
            cells,
        }
    }

    fn reference() -> Reference {
        Reference::of(vec![10.0, 10.2, 9.8, 10.0])
    }

    /// Boots of 1 warm-up and 3 measured builds: boot `b` is offset by
    /// `between(b)`, its runs by `within(i)`; each cell took 10 s, 4 of them
    /// the bench guest's work.
    fn boots(n: u32, between: impl Fn(u32) -> f64, within: [f64; 3]) -> Results {
        let mut r = results(n, |_| 0.0);
        for c in &mut r.cells {
            let b = 2.0 + between(c.key.rep);
            let values = vec![b * 1.5, b + within[0], b + within[1], b + within[2]];
            let runs = BootRuns { warmup: 1, values };
            c.elapsed_s = runs.measured_mean().unwrap();
            c.runs = Some(runs);
            c.cell_wall_s = Some(10.0);
            c.guests = vec![crate::results::GuestCpu::new(
                crate::results::GuestRole::Bench,
                2,
                7.0,
                4.0,
            )];
        }
        r
    }

    #[test]
    fn boots_and_runs_within_them_are_separate_variance_components() {
        // Indexed by rep % 10: odd and even repetitions get the same offsets.
        let offsets = [0.0, 0.2, 0.2, -0.2, -0.2, 0.1, 0.1, -0.1, -0.1, 0.0];
        // Boots differ, runs within a boot hardly: more boots, not more runs.
        let r = boots(20, |rep| offsets[rep as usize % 10], [-0.01, 0.0, 0.01]);
        let c = analyze(&r, 5, reference(), reference(), Vec::new());
        let l = c.groups[0].levels.as_ref().unwrap();
        assert_eq!((l.boots, l.warmup, l.runs_per_boot), (20, 1, 3));
        assert!(l.between_cv_percent > 10.0 * l.within_cv_percent, "{l:?}");
        assert!((l.first_over_measured - 1.5).abs() < 0.01, "{l:?}");
        // A build costs its own time (2.25 s on average here: a 3 s warm-up
        // and three of ~2 s), a boot the rest of its 10 s cell.
        let (boot, run) = (l.boot_cost_s.unwrap(), l.run_cost_s.unwrap());
        assert!(
            (run - 2.25).abs() < 0.05 && (boot + 4.0 * run - 10.0).abs() < 1e-9,
            "{l:?}"
        );
        assert_eq!(l.optimal_runs_per_boot, Some(1));
        assert_eq!(l.first_run.comparisons, 2);
        assert_eq!(c.first_run_false_positives, Some((0, 2)));
        // Runs within a boot noisy, boots alike: many runs per boot pay.
        let r = boots(20, |_| 0.0, [-0.3, 0.0, 0.3]);
        let l = analyze(&r, 5, reference(), reference(), Vec::new()).groups[0]
            .levels
            .clone()
            .unwrap();
        assert_eq!(l.optimal_runs_per_boot, Some(MAX_OPTIMAL_RUNS));
        assert!(markdown(&analyze(&r, 5, reference(), reference(), Vec::new()))
            .contains("## Boots and runs within a boot"));
    }

    #[test]
    fn drift_shared_by_adjacent_runs_is_what_pairing_and_the_host_index_remove() {
        // The host drifts slowly (pairs of adjacent runs share it) and the
        // native reference sees it; on top, a little noise of the run's own.
        let drift = |rep: u32| f64::from(rep.div_ceil(2) % 5) * 0.4;
        let own = [0.02, -0.03, 0.01, 0.0, -0.01, 0.03, -0.02, 0.01];
        let mut r = results(20, |rep| 10.0 + drift(rep) + own[rep as usize % 8]);
        for c in &mut r.cells {
            let ms = 5.0 * (1.0 + drift(c.key.rep) / 10.0);
            c.host = Some(crate::results::HostNoise {
                steal_s: None,
                reference_before_ms: ms,
                reference_after_ms: ms,
                core_to_core_before_ns: None,
                core_to_core_after_ns: None,
                waited_near_s: None,
            });
        }
        let c = analyze(&r, 5, reference(), reference(), Vec::new());
        let k = c.groups[0].cuts.clone().unwrap();
        assert_eq!(k.pairs, 10);
        assert!(k.paired_mde_percent < k.unpaired_mde_percent / 5.0, "{k:?}");
        assert!(k.host_r2.unwrap() > 0.95, "{k:?}");
        assert!(
            k.host_adjusted_cv_percent.unwrap() < c.groups[0].cv_percent.unwrap() / 5.0,
            "{k:?}"
        );
        // The adjusted comparison resolves far less than the raw one, and
        // finds no difference between the A/A halves.
        assert!(
            k.host_adjusted_mde_percent.unwrap() < k.unpaired_mde_percent / 5.0,
            "{k:?}"
        );
        assert_eq!(
            (k.host_adjusted_comparisons, k.host_adjusted_false_positives),
            (2, 0)
        );
        assert!(markdown(&c).contains("## Pairing and the host covariate"));
        // A censored cell: no cuts (its value is a bound).
        r.cells[3].status = CellStatus::Censored;
        assert!(analyze(&r, 5, reference(), reference(), Vec::new()).groups[0]
            .cuts
            .is_none());
    }

    #[test]
    fn runs_with_the_hosts_cpus_apart_are_counted_and_their_absence_shows_the_floor() {
        // Epochs of CPUs apart (round trip 390 ns, not 40) make the runs
        // 1.7x slower; the one-core reference is blind to them.
        let apart = |rep: u32| matches!(rep, 3..=6 | 15);
        let own = [0.02, -0.03, 0.01, 0.0, -0.01, 0.03, -0.02, 0.01];
        let mut r = results(20, |rep| {
            10.0 * if apart(rep) { 1.7 } else { 1.0 } + own[rep as usize % 8]
        });
        for c in &mut r.cells {
            let ns = if apart(c.key.rep) { 390.0 } else { 40.0 };
            c.host = Some(crate::results::HostNoise {
                steal_s: None,
                reference_before_ms: 6.0,
                reference_after_ms: 6.0,
                core_to_core_before_ns: Some(ns),
                core_to_core_after_ns: Some(ns + 2.0),
                waited_near_s: None,
            });
        }
        let c = analyze(&r, 5, reference(), reference(), Vec::new());
        let k = c.groups[0].cuts.clone().unwrap();
        assert_eq!(k.apart, Some(5), "{k:?}");
        assert!(k.core_to_core_r2.unwrap() > 0.95, "{k:?}");
        assert!(
            k.host_r2.is_none(),
            "a constant reference explains nothing: {k:?}"
        );
        let cv = c.groups[0].cv_percent.unwrap();
        assert!(cv > 20.0 && k.near_cv_percent.unwrap() < 0.5, "{cv} {k:?}");
        assert!(markdown(&c).contains("| 5 | "), "{}", markdown(&c));
    }

    #[test]
    fn groups_interleaved_by_the_plan_are_each_judged_once() {
        let mut r = results(10, |rep| 10.0 + f64::from(rep % 3) * 0.1);
        let pg = |rep| CellKey {
            workload: Workload::Pgbench,
            overcommit: Overcommit::X1,
            clients: Some(4),
            migrated: false,
            lock: LockMode::Pv,
            rep,
        };
        // The plan's order: every group once per repetition.
        r.manifest.cells = (1..=10)
            .flat_map(|rep| [r.manifest.cells[rep as usize - 1], pg(rep)])
            .collect();
        for rep in 1..=10 {
            let mut c = CellResult::new(pg(rep), CellStatus::Completed);
            c.tps = Some(500.0 + f64::from(rep % 4));
            r.cells.push(c);
        }
        let c = analyze(&r, 5, reference(), reference(), Vec::new());
        assert_eq!(
            c.groups.len(),
            2,
            "{:?}",
            c.groups.iter().map(|g| g.group).collect::<Vec<_>>()
        );
        assert_eq!(c.comparisons, 2);
    }

    #[test]
    fn the_same_work_natively_is_set_against_its_group() {
        // Guest builds of ~10 s with a CV of about 2%; the same work natively
        // 0.5 s with a CV of 4%: the appliance is quieter than the host here.
        let r = results(10, |rep| 10.0 + [0.2, -0.2][rep as usize % 2]);
        let group = r.cells[0].key.group();
        let native = NativeWork {
            group,
            words: vec!["workload=kernbench".into(), "scale=1".into()],
            before: vec![0.48, 0.52, 0.50],
            after: vec![0.46, 0.54, 0.50],
        };
        let (mean, cv) = native.mean_cv();
        assert!((mean - 0.5).abs() < 1e-9);
        let c = analyze(&r, 5, reference(), reference(), vec![native]);
        let g = &c.groups[0];
        assert_eq!(g.native_mean, Some(mean));
        assert_eq!(g.native_cv_percent, Some(cv));
        assert!((g.mean.unwrap() - 10.0).abs() < 1e-9);
        let text = markdown(&c);
        assert!(text.contains("## The same work natively"), "{text}");
        assert!(
            text.contains("`workload=kernbench scale=1` | 3 + 3 | 0.5000 s"),
            "{text}"
        );
        // 10 s in the guest for 0.5 s natively.
        assert!(text.contains("| 20.0x |"), "{text}");
        let ratio = format!("| {:.1} |", g.cv_percent.unwrap() / cv);
        assert!(text.contains(&ratio), "{ratio} in {text}");
        // Without native runs, no section and no ratio.
        let bare = markdown(&analyze(&r, 5, reference(), reference(), Vec::new()));
        assert!(!bare.contains("The same work natively"), "{bare}");
    }

    #[test]
    fn native_work_covers_each_1x_group_once_with_its_own_words() {
        let spec = MatrixSpec::parse(
            r#"locks = ["pv"]
overcommit = ["1x", "3x"]
reps = 4
runs_per_boot = 3
warmup = 1
memory_mib = 512
spin_tcg = 256
[kernbench]
scale = 10
cap_s = 15
[pgbench]
clients = [1, 4]
overcommit = ["1x"]
scale = 1
duration_s = 3
cap_s = 10
"#,
            "test",
        )
        .unwrap();
        let work = NativeWork::of(&spec, 2);
        let words: Vec<String> = work.iter().map(|w| w.words.join(" ")).collect();
        assert_eq!(work.len(), 3, "{words:?}");
        assert!(work.iter().all(|w| w.group.overcommit == Overcommit::X1));
        assert!(
            words[0].contains("workload=kernbench") && words[0].contains("scale=10"),
            "{words:?}"
        );
        assert!(
            words[0].contains("reps=4") && words[0].contains("vcpus=2"),
            "{words:?}"
        );
        assert!(
            words[2].contains("clients=4") && words[2].contains("duration_s=3"),
            "{words:?}"
        );
        // The words are the workloads crate's: it parses them back.
        for w in &work {
            pvbench_workloads::params::parse_args(&w.words).unwrap();
        }
    }

    #[test]
    fn results_of_one_run_per_boot_have_no_levels() {
        let c = analyze(
            &results(10, |rep| 10.0 + f64::from(rep % 3)),
            5,
            reference(),
            reference(),
            Vec::new(),
        );
        assert!(c.groups[0].levels.is_none());
        assert_eq!(c.first_run_false_positives, None);
        assert!(!markdown(&c).contains("Boots and runs"));
    }

    #[test]
    fn same_configuration_runs_are_split_into_disjoint_aa_comparisons() {
        // A spread without a pattern between odd and even repetitions.
        let noise = [0.0, 0.3, -0.2, 0.1, -0.3, 0.2, 0.05, -0.1, 0.25, -0.05];
        let r = results(20, |rep| 10.0 + noise[rep as usize % 10]);
        let c = analyze(&r, 5, reference(), reference(), Vec::new());
        let g = &c.groups[0];
        assert_eq!((g.runs, g.comparisons, g.false_positives), (20, 2, 0));
        let cv = g.cv_percent.unwrap();
        assert!(cv > 1.0 && cv < 3.0, "{cv}");
        assert!(
            g.mde_percent.unwrap() > cv,
            "an MDE of 5 vs 5 runs exceeds one run's spread"
        );
        assert_eq!(c.false_positive_rate, 0.0);
        assert!(
            c.false_positive_interval.1 > 0.5,
            "2 comparisons bound the rate loosely"
        );
    }

    #[test]
    fn an_arm_effect_hidden_in_the_aa_split_is_a_false_positive() {
        // Odd repetitions 20% slower: what an A/A comparison must not see by
        // chance, but here it is in the data, so the test flags it.
        let r = results(
            10,
            |rep| if rep % 2 == 1 { 12.0 } else { 10.0 } + f64::from(rep % 3) * 0.01,
        );
        let c = analyze(&r, 5, reference(), reference(), Vec::new());
        assert_eq!((c.comparisons, c.false_positives), (1, 1));
        assert!(markdown(&c).contains("1 false positives in 1 comparisons"));
    }

    #[test]
    fn wilson_intervals() {
        let (lo, hi) = wilson(1, 20);
        assert!(
            (lo - 0.0089).abs() < 1e-3 && (hi - 0.2361).abs() < 1e-3,
            "{lo} {hi}"
        );
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }
}
