//! `pvbench report RESULTS_DIR`: the results of a matrix as the 2012
//! pv-ticketlock cover letter reported them, and more.
//!
//! 1. kernbench-like: per overcommit, BASE and BASE+pv mean (sd), the %
//!    improvement (base - pv) / base and the verdict at 95 % confidence
//!    (Student's t exactly as ministat);
//! 2. pgbench-like: per client count, the seed's ministat blocks of TPS,
//!    base (`x`) against pv (`+`);
//! 3. latency percentiles, 4. pv-lock counters, 5. the CPU each guest got
//!    against its fair share; provenance, warnings (noisy or too few runs),
//!    failed and missing cells.
//!
//! Censored runs (stopped at their cap) are bounds, never values: every
//! statistic touching one says `>=` or `<=`, and their comparisons are
//! bounds plus a rank test (rules in [`censored`]).
//!
//! Data flow: [`render`] turns [`Results`] into a [`Report`] (figures only,
//! no I/O); [`Report::text`], [`Report::markdown`], [`Report::json`] and
//! [`Report::write_plots`] lay it out.

pub mod analysis;
pub mod censored;
mod format;
mod markdown;
pub mod plots;
mod tables;
mod text;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub use analysis::{
    Arm, ArmStats, CellCounts, CpuRow, FailedCell, GroupReport, LatencyRow, LockRow, RenderOptions, Report,
    RunValue, Verdict, Warning, WarningKind,
};
pub use censored::{Bounded, Dominance};

use crate::results::{Results, ResultsError};
use crate::stats::Confidence;

/// The plots' directory inside a results directory, by default.
pub const PLOTS_DIR: &str = "plots";
/// The Markdown report's name inside a results directory (`Report::write_into`).
pub const MARKDOWN_FILE: &str = "report.md";

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Results directory written by `pvbench run`.
    #[arg(value_name = "RESULTS_DIR")]
    pub dir: PathBuf,
    /// Also write the report as Markdown to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Print a machine-readable JSON summary instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// Directory for the SVG plots [default: RESULTS_DIR/plots].
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Write no plots.
    #[arg(long, conflicts_with = "plots")]
    pub no_plots: bool,
    /// Confidence level of the verdicts: 80, 90, 95, 98, 99 or 99.5.
    #[arg(long, short = 'c', value_name = "PERCENT", default_value = "95", value_parser = parse_confidence)]
    pub confidence: Confidence,
    /// Warn when an arm's coefficient of variation (sd / mean) is above
    /// this many percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 10.0)]
    pub max_cv: f64,
}

fn parse_confidence(s: &str) -> Result<Confidence, String> {
    s.parse::<f64>()
        .ok()
        .and_then(Confidence::from_percent)
        .ok_or_else(|| format!("{s:?} is not one of 80, 90, 95, 98, 99, 99.5"))
}

impl ReportArgs {
    pub fn render_options(&self) -> RenderOptions {
        RenderOptions {
            confidence: self.confidence,
            max_cv_percent: self.max_cv,
            ..RenderOptions::default()
        }
    }

    /// Where the plots go, or None with `--no-plots`.
    pub fn plots_dir(&self) -> Option<PathBuf> {
        if self.no_plots {
            None
        } else {
            Some(self.plots.clone().unwrap_or_else(|| self.dir.join(PLOTS_DIR)))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot draw {path}: {reason}")]
    Plot { path: PathBuf, reason: String },
    #[error("cannot write the report to stdout: {0}")]
    Stdout(#[source] io::Error),
}

/// The report's figures for `results`; no I/O. The matrix runner calls this
/// at the end of `pvbench run`.
pub fn render(results: &Results, options: &RenderOptions) -> Report {
    analysis::build(results, options)
}

impl Report {
    /// The terminal report.
    pub fn text(&self) -> String {
        text::render(self)
    }

    /// The Markdown report, linking `plots` relative to `dir` (the directory
    /// the Markdown file goes to) when they are inside it.
    pub fn markdown(&self, plots: &[PathBuf], dir: Option<&Path>) -> String {
        markdown::render(self, plots, dir)
    }

    /// The machine-readable summary (unbounded ends of bounds are null).
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }

    /// Writes the SVG plots into `dir`; returns their paths.
    pub fn write_plots(&self, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
        plots::write_all(self, dir)
    }

    /// Writes the plots into `RESULTS_DIR/plots` and the Markdown report to
    /// `RESULTS_DIR/report.md`, as `pvbench run` leaves them; returns the
    /// Markdown file's path and the plots'.
    pub fn write_into(&self, results_dir: &Path) -> Result<(PathBuf, Vec<PathBuf>), ReportError> {
        let plots = self.write_plots(&results_dir.join(PLOTS_DIR))?;
        let markdown = results_dir.join(MARKDOWN_FILE);
        self.write_markdown(&markdown, &plots)?;
        Ok((markdown, plots))
    }

    /// Writes the Markdown report to `path` atomically.
    pub fn write_markdown(&self, path: &Path, plots: &[PathBuf]) -> Result<(), ReportError> {
        let text = self.markdown(plots, path.parent());
        plots::write_atomic(path, text.as_bytes())
    }
}

/// Entry point of `pvbench report`.
pub fn run(args: &ReportArgs) -> Result<ExitCode, ReportError> {
    let results = Results::load(&args.dir)?;
    let report = render(&results, &args.render_options());
    let plots = match args.plots_dir() {
        Some(dir) => report.write_plots(&dir)?,
        None => Vec::new(),
    };
    if let Some(path) = &args.markdown {
        report.write_markdown(path, &plots)?;
    }
    let out = if args.json {
        report.json() + "\n"
    } else {
        report.text()
    };
    let mut stdout = io::stdout().lock();
    match stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => {}
        // A reader that went away (`| head`) wants no more; not a success.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::FAILURE),
        Err(e) => return Err(ReportError::Stdout(e)),
    }
    if let Some(dir) = args.plots_dir().filter(|_| !plots.is_empty()) {
        eprintln!("pvbench: plots in {}", dir.display());
    }
    if let Some(path) = &args.markdown {
        eprintln!("pvbench: Markdown report in {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
