//! `pvbench gate`: a CI check that fails when performance regresses, without
//! crying wolf; `pvbench baseline save`: the baseline it compares against.
//!
//! # What is compared
//!
//! A *group* is a cell without its repetition: workload, overcommit, clients
//! and lock mode ([`GateGroup`]). For each group of the baseline the gate
//! compares the new run's per-repetition values of the group's metric
//! ([`Metric`]: kernbench's elapsed seconds, lower is better; pgbench's TPS,
//! higher is better) with the baseline's.
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

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use crate::build::layout;
use crate::results::{CellKey, LockMode, Metric, Overcommit, Results, ResultsError, Workload};

pub use baseline::{Baseline, BaselineGroup, CompareUnder, RepValue};
pub use config::{GateConfig, TestKind, Thresholds};
pub use correction::{adjust, Correction};
pub use evaluate::{
    evaluate, FailedCell, GateReport, GroupReport, MetricReport, Outcome, Reason, Side, SideStats, Verdict,
};
pub use hypothesis::TestResult;

/// The committed baseline, relative to the project root.
pub const DEFAULT_BASELINE: &str = "results/baseline.json";
/// The gate's thresholds, relative to the project root.
pub const DEFAULT_CONFIG: &str = "ci/gate.toml";

/// Exit statuses of `pvbench gate`.
pub const EXIT_PASS: u8 = 0;
pub const EXIT_REGRESSION: u8 = 1;
pub const EXIT_CANNOT_JUDGE: u8 = 2;

/// Compare a results directory with the baseline, metric by metric and group
/// by group; fail on a regression.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit status: 0 = no regression, 1 = a regression, 2 = cannot judge \
                        (different matrix or accelerator than the baseline, missing or failed \
                        cells, too few repetitions, too noisy, censored runs) or an error."
)]
pub struct GateArgs {
    /// Results directory of the new run (`pvbench run --out DIR`).
    #[arg(value_name = "RESULTS_DIR")]
    pub results: PathBuf,
    /// The baseline [default: results/baseline.json in the project].
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Thresholds [default: ci/gate.toml in the project, else built-in defaults].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Test for every metric, overriding the thresholds file.
    #[arg(long, value_enum)]
    pub test: Option<TestKind>,
    /// Multiple-comparison correction for every metric, overriding the thresholds file.
    #[arg(long, value_enum)]
    pub correction: Option<Correction>,
    /// Write the summary as Markdown to FILE. It is also appended to
    /// $GITHUB_STEP_SUMMARY when that is set.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write the full report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Print only the verdict line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The baseline `pvbench gate` compares against.
#[derive(Debug, Clone, clap::Args)]
pub struct BaselineArgs {
    #[command(subcommand)]
    pub command: BaselineCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum BaselineCommand {
    /// Write a baseline from a complete results directory (refuses missing or
    /// failed cells), with its provenance and the matrix hash and accelerator
    /// it must be compared under.
    Save(SaveArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct SaveArgs {
    /// Results directory of the run to record.
    #[arg(value_name = "RESULTS_DIR")]
    pub results: PathBuf,
    /// Where to write it [default: results/baseline.json in the project].
    #[arg(long, value_name = "FILE")]
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

/// The unit the gate judges: a cell without its repetition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GateGroup {
    pub workload: Workload,
    pub overcommit: Overcommit,
    /// pgbench's client count; `None` for kernbench.
    pub clients: Option<u32>,
    pub lock: LockMode,
}

impl GateGroup {
    pub fn of(key: &CellKey) -> Self {
        Self {
            workload: key.workload,
            overcommit: key.overcommit,
            clients: key.clients,
            lock: key.lock,
        }
    }

    pub fn metric(&self) -> Metric {
        self.workload.metric()
    }

    /// The cell of repetition `rep`.
    pub fn cell(&self, rep: u32) -> CellKey {
        CellKey {
            workload: self.workload,
            overcommit: self.overcommit,
            clients: self.clients,
            lock: self.lock,
            rep,
        }
    }
}

impl fmt::Display for GateGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.cell(1).group(), self.lock)
    }
}

/// A metric's name as results files spell it (`elapsed_s`, `tps`).
pub fn metric_name(metric: Metric) -> String {
    match serde_json::to_value(metric) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{metric:?}"),
    }
}

/// `pvbench gate`.
pub fn run(args: &GateArgs) -> ExitCode {
    let root = layout::project_root();
    let baseline_path = args
        .baseline
        .clone()
        .unwrap_or_else(|| root.join(DEFAULT_BASELINE));
    match gate(args, &root, &baseline_path) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("pvbench gate: error: {err}");
            // A CI job summary should say why the gate could not run, too.
            let text = summary::error_markdown(&err.to_string());
            if let Err(write_err) = summary::write_markdown(args.markdown.as_deref(), &text) {
                eprintln!("pvbench gate: error: {write_err}");
            }
            ExitCode::from(EXIT_CANNOT_JUDGE)
        }
    }
}

fn gate(args: &GateArgs, root: &Path, baseline_path: &Path) -> Result<u8, GateError> {
    let mut config = match &args.config {
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
    config.override_all(args.test, args.correction);
    let baseline = Baseline::load(baseline_path)?;
    let results = Results::load(&args.results)?;
    let report = evaluate(
        &baseline,
        &display_path(baseline_path, root),
        &results,
        &display_path(&args.results, root),
        &config,
    );
    let code = report.exit_code;
    summary::print(&report, args.quiet);
    summary::write_markdown(args.markdown.as_deref(), &summary::markdown(&report))?;
    if let Some(path) = &args.json {
        crate::results::write_json_atomic(path, &report)?;
    }
    Ok(code)
}

/// `pvbench baseline ...`.
pub fn baseline(args: &BaselineArgs) -> ExitCode {
    let result = match &args.command {
        BaselineCommand::Save(save) => save_baseline(save),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pvbench baseline: error: {err}");
            ExitCode::from(EXIT_CANNOT_JUDGE)
        }
    }
}

fn save_baseline(args: &SaveArgs) -> Result<(), GateError> {
    let root = layout::project_root();
    let out = args.out.clone().unwrap_or_else(|| root.join(DEFAULT_BASELINE));
    let results = Results::load(&args.results)?;
    let baseline = Baseline::from_results(&results, &display_path(&args.results, &root))?;
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
    Ok(())
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
