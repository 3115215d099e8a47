//! `pvbench gate`: a CI check that fails when performance regresses, without
//! crying wolf; `pvbench baseline save`: the baseline it compares against.
//!
//! # What is compared
//!
//! A *group* here is an arm ([`ArmKey`]): a cell without its repetition,
//! i.e. workload, overcommit, clients and lock mode. For each group of the baseline the gate
//! compares the new run's per-repetition values of the group's metric
//! ([`Metric`]: kernbench's elapsed seconds, lower is better; pgbench's TPS,
//! higher is better) with the baseline's. Every lock mode of the matrix
//! (base, pv, qspin, pvqspin, tas) is thus judged against its own baseline
//! arm, never against another mode; the Markdown summary counts the outcomes
//! per mode when there are more than two.
//!
//! # How a group is judged
//!
//! In this order, the first that applies decides:
//!
//! 1. Cells missing from the new run, or failed there: cannot judge.
//! 2. Fewer repetitions than `min_reps` on either side: cannot judge.
//! 3. Coefficient of variation above `max_cv` on either side: too noisy to
//!    judge.
//! 4. A test that cannot reach significance with these sample sizes
//!    (Mann–Whitney at 3 against 3 cannot go below p = 0.05): cannot judge.
//! 5. The test (Welch's t by default; Student's t or Mann–Whitney U by
//!    option) gives a one-sided p-value for "worse than the baseline" and one
//!    for "better". Each metric is a family: its groups' p-values are
//!    adjusted together (Holm by default, which bounds the family-wise error
//!    rate by `alpha`; Benjamini–Hochberg bounds the false discovery rate
//!    instead), a group that could not be tested counting as p = 1. The whole
//!    gate's false-alarm rate is at most the sum of the metrics' `alpha`s.
//! 6. A regression needs an adjusted p <= `alpha` *and* a change of the
//!    centre (the mean; the median for Mann–Whitney) of at least
//!    `min_effect` of the baseline's, in the bad direction. A significant
//!    change smaller than that is reported and ignored.
//!
//! # Censored cells
//!
//! A run stopped at its time cap gives a bound that is always on the bad
//! side of the truth (elapsed >= cap; TPS <= what it did by then). The gate
//! tests with the bounds in place of the values, and then:
//!
//! * censored cells in the **new** run make its values look better than they
//!   are: a regression found anyway is proven by the bounds alone and fails
//!   the gate; otherwise no regression can be ruled out: cannot judge. (For
//!   Mann–Whitney this is exact: a value moving further to the bad side can
//!   only raise its rank. For the t-tests the mean moves further the same
//!   way; the spread of the true values is unknown.)
//! * censored cells in the **baseline** make it look better than it was: a
//!   "regression" against it proves nothing (cannot judge), while finding
//!   none is a pass.
//!
//! # Exit status
//!
//! 0: no regression and every group judged. 1: at least one regression
//! (whatever else could not be judged: a proven regression stays proven, as
//! untested groups count as p = 1). 2: nothing or not everything could be
//! judged: a different matrix or accelerator than the baseline's, missing
//! or failed cells, too few repetitions, too noisy, censored; or an error.

mod baseline;
mod config;
mod correction;
mod evaluate;
mod hypothesis;
mod summary;
pub mod synth;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::build::layout;
use crate::exit::Exit;
use crate::results::{Metric, Results, ResultsError};

pub use baseline::{Baseline, BaselineGroup, CompareUnder, RepValue};
pub use config::{GateConfig, TestKind, Thresholds};
pub use correction::{adjust, Correction};
pub use evaluate::{
    evaluate, BaselineComparison, FailedRep, GateReport, GateVerdict, MetricReport, Outcome, Reason, Side,
    SideStats,
};
pub use hypothesis::TestResult;

/// The committed baseline, relative to the project root.
pub const DEFAULT_BASELINE: &str = "results/baseline.json";
/// The gate's thresholds, relative to the project root.
pub const DEFAULT_CONFIG: &str = "ci/gate.toml";

/// What `pvbench gate` does (`crate::cli` makes it from the command line).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GateOptions {
    /// Results directory of the new run.
    pub results: PathBuf,
    /// The baseline; None: [`DEFAULT_BASELINE`] in the project.
    pub baseline: Option<PathBuf>,
    /// The thresholds; None: [`DEFAULT_CONFIG`] in the project, else the
    /// built-in ones.
    pub config: Option<PathBuf>,
    /// The test for every metric, over the thresholds file's.
    pub test: Option<TestKind>,
    /// The correction for every metric, over the thresholds file's.
    pub correction: Option<Correction>,
    /// Where to write the Markdown summary (also appended to
    /// `$GITHUB_STEP_SUMMARY` when that is set).
    pub markdown: Option<PathBuf>,
    /// Where to write the full report as JSON.
    pub json: Option<PathBuf>,
    /// Print only the verdict line.
    pub quiet: bool,
}

/// What `pvbench baseline save` does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SaveBaselineOptions {
    /// Results directory of the run to record.
    pub results: PathBuf,
    /// Where to write it; None: [`DEFAULT_BASELINE`] in the project.
    pub out: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error(
        "no baseline at {0}: record one with `pvbench baseline save RESULTS_DIR --out {0}` and commit it"
    )]
    NoBaseline(PathBuf),
    #[error("{path} is not a usable pvbench baseline: {reason}")]
    BadBaseline { path: PathBuf, reason: String },
    #[error("{dir} cannot be a baseline: {}", problems.join("; "))]
    Incomplete { dir: PathBuf, problems: Vec<String> },
    #[error(transparent)]
    Results(#[from] ResultsError),
}

/// Why `pvbench gate` could not run, and, should that have failed too, why
/// the job summary saying so could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct GateFailure {
    #[source]
    pub error: GateError,
    pub summary: Option<GateError>,
}

/// A metric's name as results files spell it (`elapsed_s`, `tps`).
pub fn metric_name(metric: Metric) -> String {
    match serde_json::to_value(metric) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{metric:?}"),
    }
}

/// `pvbench gate`: [`Exit`] from the verdict.
pub fn run(options: &GateOptions) -> Result<Exit, GateFailure> {
    let root = layout::project_root();
    let baseline_path = options
        .baseline
        .clone()
        .unwrap_or_else(|| root.join(DEFAULT_BASELINE));
    gate(options, &root, &baseline_path)
        .map(Exit::from)
        .map_err(|error| {
            // A CI job summary should say why the gate could not run, too.
            let text = summary::error_markdown(&error.to_string());
            let summary = summary::write_markdown(options.markdown.as_deref(), &text).err();
            GateFailure { error, summary }
        })
}

fn gate(options: &GateOptions, root: &Path, baseline_path: &Path) -> Result<GateVerdict, GateError> {
    let mut config = match &options.config {
        Some(path) => GateConfig::load(path)?,
        None => {
            let path = root.join(DEFAULT_CONFIG);
            if path.is_file() {
                GateConfig::load(&path)?
            } else {
                eprintln!(
                    "pvbench gate: no {}: using the built-in thresholds",
                    path.display()
                );
                GateConfig::default()
            }
        }
    };
    config.override_all(options.test, options.correction);
    let baseline = Baseline::load(baseline_path)?;
    let results = Results::load(&options.results)?;
    let mut report = evaluate(
        &baseline,
        &display_path(baseline_path, root),
        &results,
        &display_path(&options.results, root),
        &config,
    );
    // A merged run from several hosts: say which host ran which group (each
    // group is judged on its own host's runs only).
    report.notes.extend(crate::report::hosts::line(&results.manifest));
    summary::print(&report, options.quiet);
    summary::write_markdown(options.markdown.as_deref(), &summary::markdown(&report))?;
    if let Some(path) = &options.json {
        crate::results::write_json_atomic(path, &report)?;
    }
    Ok(report.verdict)
}

/// `pvbench baseline save`.
pub fn save_baseline(options: &SaveBaselineOptions) -> Result<Exit, GateError> {
    let root = layout::project_root();
    let out = options.out.clone().unwrap_or_else(|| root.join(DEFAULT_BASELINE));
    let results = Results::load(&options.results)?;
    let baseline = Baseline::from_results(&results, &display_path(&options.results, &root))?;
    let censored = baseline.censored_count();
    if censored > 0 {
        eprintln!(
            "pvbench baseline: warning: {censored} cells reached their cap; their groups can pass the \
             gate but never fail it (a bound cannot prove a regression). Raise the caps and rerun for \
             a baseline that can."
        );
    }
    baseline.save(&out)?;
    eprintln!(
        "pvbench baseline: {} groups ({} accel, matrix {}) -> {}",
        baseline.groups.len(),
        baseline.compare_under.accel,
        short_hash(&baseline.compare_under.matrix_hash),
        out.display()
    );
    Ok(Exit::Success)
}

/// `path` relative to the project root when it is inside it, for summaries
/// that read the same on every machine.
fn display_path(path: &Path, root: &Path) -> String {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or(path.to_path_buf(), |cwd| cwd.join(path))
    };
    absolute
        .strip_prefix(root)
        .map_or_else(|_| path.display().to_string(), |p| p.display().to_string())
}

fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
