//! pvbench workloads: kernbench-like, pgbench-like and cpuhog.
//!
//! One library for the Hermit guest (x86_64-unknown-hermit, std built with -Zbuild-std) and for
//! host tests, so it uses plain std only: threads, `std::sync`, `std::fs`, `Instant`. The
//! workloads' speed is meant to depend on the *guest kernel's* locks: Hermit's allocator, file
//! system, futex wait queues and thread creation all sit behind kernel ticket spinlocks.
//!
//! ```no_run
//! use pvbench_workloads::{parse_args, run, NullObserver};
//! let config = parse_args(["workload=kernbench", "scale=1", "jobs=8", "reps=3"])?;
//! let summary = run(&config, &mut NullObserver)?;
//! println!("{}", summary.line());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cpuhog;
mod error;
mod hash;
pub mod kernbench;
pub mod params;
pub mod pgbench;
mod placement;
pub mod report;
mod rng;
mod workdir;

use serde::{Deserialize, Serialize};

pub use cpuhog::CpuhogSummary;
pub use error::WorkloadError;
pub use kernbench::KernbenchSummary;
pub use params::{
    parse_args, ConfigError, CpuhogConfig, KernbenchConfig, PgbenchConfig, Profile, RunLimit, SpawnMode,
    WorkloadConfig, WorkloadKind, KEYS,
};
pub use pgbench::PgbenchSummary;
pub use report::{IntervalReport, LatencySummary, MeanSd, MeasureEdge, NullObserver, Observer};

/// The result of any workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "workload", rename_all = "lowercase")]
pub enum RunSummary {
    Kernbench(KernbenchSummary),
    Pgbench(PgbenchSummary),
    Cpuhog(CpuhogSummary),
}

impl RunSummary {
    pub fn kind(&self) -> WorkloadKind {
        match self {
            Self::Kernbench(_) => WorkloadKind::Kernbench,
            Self::Pgbench(_) => WorkloadKind::Pgbench,
            Self::Cpuhog(_) => WorkloadKind::Cpuhog,
        }
    }

    /// The one-line summary the guest prints until results are streamed.
    pub fn line(&self) -> String {
        match self {
            Self::Kernbench(s) => s.line(),
            Self::Pgbench(s) => s.line(),
            Self::Cpuhog(s) => s.line(),
        }
    }
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line())
    }
}

/// Runs the configured workload, reporting intervals to `observer` while it runs and calling
/// `observer.done` with the summary if it succeeds.
pub fn run(config: &WorkloadConfig, observer: &mut dyn Observer) -> Result<RunSummary, WorkloadError> {
    let summary = match config {
        WorkloadConfig::Kernbench(c) => RunSummary::Kernbench(kernbench::run(c, observer)?),
        WorkloadConfig::Pgbench(c) => RunSummary::Pgbench(pgbench::run(c, observer)?),
        WorkloadConfig::Cpuhog(c) => RunSummary::Cpuhog(cpuhog::run(c, observer)?),
    };
    observer.done(&summary);
    Ok(summary)
}

/// Parses `key=value` words and runs the workload they describe.
pub fn run_args<I, S>(words: I, observer: &mut dyn Observer) -> Result<RunSummary, WorkloadError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    run(&parse_args(words)?, observer)
}
