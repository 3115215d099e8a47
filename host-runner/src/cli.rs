//! Command-line options, parsed once into typed structs. `report`, `gate`,
//! `baseline` and `ministat` take options without clap in them; their
//! argument structs (in the submodules) convert into those once (`From`), so
//! nothing downstream reads raw arguments.

use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand};

mod gate;
mod ministat;
mod report;

pub use self::gate::{BaselineArgs, BaselineCommand, GateArgs, SaveArgs};
pub use self::ministat::MinistatArgs;
pub use self::report::ReportArgs;

use crate::results::{Profile, Shard};
use crate::vm::accel::AccelChoice;
use crate::vm::guest::{MigrationKind, MAX_VCPUS};

#[derive(Debug, Parser)]
#[command(
    name = "pvbench",
    version,
    about = "How much do paravirtual spinlocks help, or cost, when vCPUs are overcommitted?",
    long_about = "pvbench boots Hermit unikernel guests whose kernel ticket spinlocks are \
                  paravirtual ticket spinlocks, under QEMU (KVM where it runs at speed, else TCG), \
                  and measures base vs pv locks under 1x/2x/3x vCPU overcommit."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the guest image (installs the guest toolchain through rustup if missing).
    Build(BuildArgs),
    /// Boot one guest, stream its serial console and return its exit status.
    Boot(BootArgs),
    /// Run the default benchmark.
    Run(RunArgs),
    /// Show how `run --shard K/N` splits a matrix: each shard's comparison
    /// groups and expected cost.
    Plan(PlanArgs),
    /// Combine the results directories of every shard of one matrix
    /// (`run --shard K/N`) into one results directory.
    Merge(MergeArgs),
    /// Compare data sets like ministat(1): distribution plot, summary table and
    /// Student's t verdict (exit 1 if a difference is proven).
    Ministat(MinistatArgs),
    /// Report a results directory: kernbench table, pgbench ministat blocks,
    /// latency, pv-lock counters, CPU shares; Markdown, JSON and SVG plots.
    Report(ReportArgs),
    /// Compare a results directory with the CI baseline: exit 0 pass, 1 regression,
    /// 2 cannot judge.
    Gate(GateArgs),
    /// The CI gate's baseline (`baseline save RESULTS_DIR`).
    Baseline(BaselineArgs),
    /// Run many overcommitted cells (every lock mode, 2x and 3x, guests of 2
    /// and 4 vCPUs) and count how many completed, were censored, stalled or panicked:
    /// exit 0 if none failed, 1 if any did.
    Soak(SoakArgs),
    /// Measure the noise floor: a native reference workload's spread on this
    /// host and an A/A matrix (the same lock in both arms): its run-to-run
    /// spread, minimum detectable effects and false-positive rate.
    Calibrate(CalibrateArgs),
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Rebuild even if a cached image matches the sources.
    #[arg(long)]
    pub force: bool,
    /// Print nothing but errors and the image directory.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct GuestArgs {
    /// vCPUs of the guest.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=MAX_VCPUS as i64))]
    pub vcpus: u32,
    /// Accelerator: auto uses KVM only where a probe shows it runs guest code at speed.
    #[arg(long, default_value = "auto", value_parser = accel_choice())]
    pub accel: AccelChoice,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(64..=16384))]
    pub memory: u32,
    /// Seconds before a guest that has not ended is killed.
    #[arg(long, default_value = "120", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// Give the guest a virtio-net NIC on QEMU's user-mode network.
    #[arg(long)]
    pub network: bool,
    /// Kill the guest as stalled if its QEMU uses less than 5% of a core over
    /// this many seconds (every vCPU idle, all guest tasks blocked).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub stall_after: Option<Duration>,
    /// Before killing a stalled guest, write its memory to FILE as an ELF core
    /// (QEMU's `dump-guest-memory`, at the guest's virtual addresses: gdb reads
    /// it with the image's app.elf). About as large as the guest's memory.
    #[arg(long, value_name = "FILE", requires = "stall_after")]
    pub dump_on_stall: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct BootArgs {
    #[command(flatten)]
    pub guest: GuestArgs,
    /// Do not echo the serial console; show its last lines only if the guest fails.
    #[arg(long, short)]
    pub quiet: bool,
    /// Stream the guest workload's metrics over virtio-net and write the run's
    /// JSON summary, .hgrm distribution and interval log into DIR.
    #[arg(long, value_name = "DIR")]
    pub metrics: Option<std::path::PathBuf>,
    /// Migrate the running guest to a fresh QEMU (QEMU's own migration over a
    /// local socket) every SECONDS; prints how many migrations happened and
    /// their downtime.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub migrate_every: Option<Duration>,
    /// How to migrate: live (copy while the guest runs) or paused (stop, copy,
    /// continue). Default: paused under TCG, where QEMU 7.2's live migration
    /// damages guests that write memory on several vCPUs; live under KVM.
    #[arg(long, value_name = "KIND", value_parser = migration_kind(), requires = "migrate_every")]
    pub migration: Option<MigrationKind>,
    /// Words for the guest application (`key=value`), after `--`.
    #[arg(last = true)]
    pub guest_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Built-in matrix: quick (at most 10 minutes on 2 cores under TCG, for CI and
    /// a first look) or full (what a study uses).
    #[arg(long, default_value = "quick", value_parser = profile())]
    pub profile: Profile,
    /// A matrix TOML file instead of the profile (see `pvbench run --print-matrix`).
    #[arg(long, value_name = "FILE")]
    pub matrix: Option<std::path::PathBuf>,
    /// Print the matrix that would run (TOML) and exit.
    #[arg(long)]
    pub print_matrix: bool,
    /// Results directory (default: results/runs/<profile>-<time>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// Continue an interrupted run in --out: finished cells are kept, the rest run.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// Accelerator: auto uses KVM only where a probe shows it runs guest code at speed.
    #[arg(long, default_value = "auto", value_parser = accel_choice())]
    pub accel: AccelChoice,
    /// vCPUs per guest (default: the matrix's, else the host's cores).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_VCPUS as i64))]
    pub vcpus: Option<u32>,
    /// No progress bar; only the report (or JSON) at the end.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the results summary as JSON on stdout instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Add repetitions (interleaved, one of every lock mode at a time) to
    /// rows whose minimum detectable effect is above PCT percent, until they
    /// reach it or --max-reps; never stops on a p-value.
    #[arg(long, value_name = "PCT", value_parser = parse_percent)]
    pub target_mde: Option<f64>,
    /// With --target-mde: the most repetitions a row may get (default: 3x the
    /// matrix's).
    #[arg(long, requires = "target_mde", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_reps: Option<u32>,
    /// Run only shard K of N: whole comparison groups (every lock mode and
    /// repetition of a row), balanced by expected cost; merge the shards'
    /// directories with `pvbench merge` (see `pvbench plan`).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Before a stalled bench guest is killed, write its memory into its cell's
    /// directory (`bench.stall.core`, an ELF core about as large as the guest's
    /// memory; see `pvbench boot --dump-on-stall`), for finding the stall's cause.
    #[arg(long)]
    pub dump_on_stall: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Built-in matrix: quick or full.
    #[arg(long, default_value = "quick", value_parser = profile())]
    pub profile: Profile,
    /// A matrix TOML file instead of the profile.
    #[arg(long, value_name = "FILE")]
    pub matrix: Option<std::path::PathBuf>,
    /// Number of shards.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub shards: u32,
    /// Print the partition as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The results directories of every shard (`pvbench run --shard K/N --out DIR`).
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<std::path::PathBuf>,
    /// The merged results directory; must not exist.
    #[arg(long, value_name = "DIR")]
    pub out: std::path::PathBuf,
}

fn parse_percent(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 1000.0 => Ok(p),
        _ => Err(format!("{text:?} is not a percentage above 0")),
    }
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// A matrix TOML file instead of the built-in A/A matrix (its lock modes
    /// are ignored: every cell runs the first).
    #[arg(long, value_name = "FILE")]
    pub matrix: Option<std::path::PathBuf>,
    /// Repetitions per group (default: the matrix's).
    #[arg(long, value_parser = clap::value_parser!(u32).range(4..=10_000))]
    pub reps: Option<u32>,
    /// Runs per arm of each A/A comparison.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(2..=1000))]
    pub aa_runs: u64,
    /// Output directory (default: results/runs/calibrate-<time>); the A/A
    /// results go to DIR/aa/, the summary to DIR/calibration.{json,md}.
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// Continue an interrupted calibration in --out.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// Run nothing: analyse the finished calibration in --out again (its A/A
    /// results and its stored native reference runs), e.g. with another
    /// --aa-runs or a newer pvbench.
    #[arg(long, requires = "out", conflicts_with_all = ["resume", "matrix", "reps", "vcpus"])]
    pub reanalyze: bool,
    /// Accelerator: auto uses KVM only where a probe shows it runs guest code at speed.
    #[arg(long, default_value = "auto", value_parser = accel_choice())]
    pub accel: AccelChoice,
    /// vCPUs per guest (default: the matrix's, else the host's cores).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_VCPUS as i64))]
    pub vcpus: Option<u32>,
    /// No progress bar; only the summary at the end.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SoakArgs {
    /// A matrix TOML file instead of the built-in soak matrix (its `vcpus` is
    /// replaced by each of --vcpus).
    #[arg(long, value_name = "FILE")]
    pub matrix: Option<std::path::PathBuf>,
    /// Repetitions per condition (default: the matrix's).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub reps: Option<u32>,
    /// vCPU counts of the guests, one matrix run each.
    #[arg(long, value_delimiter = ',', default_values_t = [2u32, 4],
          value_parser = clap::value_parser!(u32).range(1..=MAX_VCPUS as i64))]
    pub vcpus: Vec<u32>,
    /// Soak directory (default: results/runs/soak-<time>); each vCPU count's
    /// results go to DIR/vcpus-<V>/, the summary to DIR/soak.{json,md}.
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// Continue an interrupted soak in --out.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// Also run every condition with its bench guests migrated to a fresh QEMU
    /// every SECONDS while they work (the matrix's `[migration]`; paused under
    /// TCG, live under KVM), and count the migrations survived.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub migrate_every: Option<Duration>,
    /// Accelerator: auto uses KVM only where a probe shows it runs guest code at speed.
    #[arg(long, default_value = "auto", value_parser = accel_choice())]
    pub accel: AccelChoice,
    /// No progress bar; only the summary at the end.
    #[arg(long, short)]
    pub quiet: bool,
    /// Keep a stalled bench guest's memory in its cell (`bench.stall.core`, see
    /// `pvbench run --dump-on-stall`): a soak is where a rare stall shows up.
    #[arg(long)]
    pub dump_on_stall: bool,
}

/// `--accel auto|tcg|kvm`, parsed into the VM crate's type.
fn accel_choice() -> impl clap::builder::TypedValueParser<Value = AccelChoice> {
    clap::builder::PossibleValuesParser::new(AccelChoice::NAMES)
        .map(|name| name.parse::<AccelChoice>().expect("a listed name"))
}

/// `--migration live|paused`.
fn migration_kind() -> impl clap::builder::TypedValueParser<Value = MigrationKind> {
    clap::builder::PossibleValuesParser::new(["live", "paused"]).map(|name| match name.as_str() {
        "live" => MigrationKind::Live,
        _ => MigrationKind::Paused,
    })
}

/// `--profile quick|full`, parsed into the results crate's type.
fn profile() -> impl clap::builder::TypedValueParser<Value = Profile> {
    clap::builder::PossibleValuesParser::new(Profile::NAMES)
        .map(|name| name.parse::<Profile>().expect("a listed name"))
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(seconds > 0.0 && seconds <= 86_400.0) {
        return Err(format!("{seconds} s is outside 0 < timeout <= 86400"));
    }
    Ok(Duration::from_secs_f64(seconds))
}
