//! Metrics collection: the host end of `pvbench_wire::frames`.
//!
//! A [`Collector`] listens on 127.0.0.1 (a port picked per collector) for the
//! runs it was started with, each with its own token. Every guest connection
//! gets a thread; it checks the Hello against the run's token, merges the
//! interval histograms into the run's HDR histogram, checks sequence numbers
//! and, at `Done`, acknowledges what it received. [`Collector::finish`] turns
//! each run into a [`RunResult`] whose `status` and `errors` say whether every
//! operation the guest reported arrived; [`write_run_files`] writes the run's
//! JSON summary, `.hgrm` percentile distribution and HdrHistogram interval log.
//!
//! ```ignore
//! let collector = Collector::start(["bench"])?;
//! let target = collector.target("bench").unwrap(); // its words: metrics=10.0.2.2:PORT token=.. run=bench
//! // boot the guest with a NIC and `target.words()` among its application words, wait for it
//! let report = collector.finish(Duration::from_secs(5));
//! for run in &report.runs {
//!     write_run_files(run, &dir)?;
//! }
//! ```

#![warn(missing_docs)]

mod atomic;
mod output;
mod run;
mod server;

pub use atomic::write_atomic;
pub use output::{percentile_distribution, write_run_files, RunFiles};
pub use run::{
    IntervalRecord, LatencySummary, Received, Rejection, RunError, RunResult, RunState, RunStatus,
};
pub use server::{CollectError, Collector, Report};

#[cfg(test)]
mod tests;
