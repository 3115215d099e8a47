//! `pvbench report RESULTS_DIR`: the results of a matrix as the 2012
//! pv-ticketlock cover letter reported them, and more.
//!
//! 1. kernbench-like: per overcommit, BASE and every other lock mode's mean
//!    (sd), each mode's % improvement (base - mode) / base and the verdict at
//!    95 % confidence (Student's t exactly as ministat);
//! 2. pgbench-like: per client count, the seed's ministat blocks of TPS,
//!    base (`x`) against pv (`+`) and up to five more sets, each compared
//!    with base as ministat compares every set with the first;
//! 3. latency percentiles, 4. pv-lock counters, queued-lock events,
//!    test-and-set counters, kick-to-wake latency, 5. the CPU each guest got
//!    against its fair share and its vCPUs' run delay; provenance, warnings
//!    (noisy or too few runs), failed and missing cells.
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
pub mod hosts;
mod markdown;
pub mod migration;
pub mod plots;
mod tables;
mod text;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use analysis::{
    Arm, ArmStats, CellCounts, CounterRow, CpuRow, FailedCell, KickWakeRow, LatencyRow, LockComparison,
    LockRow, LockVerdict, ModeComparison, RenderOptions, Report, RunValue, Warning, WarningKind,
};
pub use censored::{Bounded, Dominance};

use crate::exit::Exit;
use crate::results::{Results, ResultsError};

/// The plots' directory inside a results directory, by default.
pub const PLOTS_DIR: &str = "plots";
/// The Markdown report's name inside a results directory (`Report::write_into`).
pub const MARKDOWN_FILE: &str = "report.md";

/// What `pvbench report` does (`crate::cli` makes it from the command line).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// Results directory written by `pvbench run`.
    pub dir: PathBuf,
    pub render: RenderOptions,
    /// Also write the Markdown report here.
    pub markdown: Option<PathBuf>,
    /// Where the SVG plots go; None for no plots.
    pub plots: Option<PathBuf>,
    /// What goes to stdout.
    pub format: StdoutFormat,
}

/// The report on stdout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StdoutFormat {
    /// For people ([`Report::text`]).
    #[default]
    Text,
    /// For scripts ([`Report::json`]).
    Json,
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
        plots::write_file(path, text.as_bytes())
    }
}

/// Entry point of `pvbench report`.
pub fn run(options: &ReportOptions) -> Result<Exit, ReportError> {
    let results = Results::load(&options.dir)?;
    let report = render(&results, &options.render);
    let plots = match &options.plots {
        Some(dir) => report.write_plots(dir)?,
        None => Vec::new(),
    };
    // A merged run's hosts, where there are several (the one addition to
    // the rendered report, kept out of its tables).
    let hosts = hosts::line(&results.manifest);
    if let Some(path) = &options.markdown {
        let mut text = report.markdown(&plots, path.parent());
        text.extend(hosts.as_deref().map(hosts::markdown));
        plots::write_file(path, text.as_bytes())?;
    }
    let out = match options.format {
        StdoutFormat::Json => report.json() + "\n",
        StdoutFormat::Text => report.text() + &hosts.as_deref().map(hosts::text).unwrap_or_default(),
    };
    let mut stdout = io::stdout().lock();
    match stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Exit::OutputClosed),
        Err(e) => return Err(ReportError::Stdout(e)),
    }
    if let Some(dir) = options.plots.as_ref().filter(|_| !plots.is_empty()) {
        eprintln!("pvbench: plots in {}", dir.display());
    }
    if let Some(path) = &options.markdown {
        eprintln!("pvbench: Markdown report in {}", path.display());
    }
    Ok(Exit::Success)
}
