//! `pvbench gate` and `pvbench baseline`'s command lines, and the options
//! they make.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::gate::{Correction, GateOptions, SaveBaselineOptions, TestKind};

/// Compare a results directory with the baseline, metric by metric and group
/// by group; fail on a regression.
#[derive(Debug, Clone, Args)]
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

impl From<GateArgs> for GateOptions {
    fn from(args: GateArgs) -> Self {
        GateOptions {
            results: args.results,
            baseline: args.baseline,
            config: args.config,
            test: args.test,
            correction: args.correction,
            markdown: args.markdown,
            json: args.json,
            quiet: args.quiet,
        }
    }
}

/// The baseline `pvbench gate` compares against.
#[derive(Debug, Clone, Args)]
pub struct BaselineArgs {
    #[command(subcommand)]
    pub command: BaselineCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BaselineCommand {
    /// Write a baseline from a complete results directory (refuses missing or
    /// failed cells), with its provenance and the matrix hash and accelerator
    /// it must be compared under.
    Save(SaveArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SaveArgs {
    /// Results directory of the run to record.
    #[arg(value_name = "RESULTS_DIR")]
    pub results: PathBuf,
    /// Where to write it [default: results/baseline.json in the project].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

impl From<SaveArgs> for SaveBaselineOptions {
    fn from(args: SaveArgs) -> Self {
        SaveBaselineOptions {
            results: args.results,
            out: args.out,
        }
    }
}
