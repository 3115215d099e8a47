//! `pvbench run`: the benchmark matrix, one cell at a time.
//!
//! A cell is (workload, overcommit, clients, lock mode, repetition). For each:
//! start the hog guests (cpuhog, one thread per vCPU) and wait until they hog,
//! start the bench guest with a NIC and the metrics words, collect its metrics,
//! stop every guest, write the cell's result atomically. Arms are interleaved
//! in rotating order (base, pv, qspin in one repetition; pv, qspin, base in
//! the next, ...: `MatrixSpec::arm_order`) so drift hits every arm alike.
//!
//! A bench run that reaches its time cap is *censored*: it is stopped, and its
//! elapsed time is recorded as a lower bound with the work it completed. It is
//! data, not a failure. A guest that crashes, or hangs before its workload starts,
//! fails its cell; its serial log is kept and the matrix goes on.
//!
//! A host that moves this VM's two CPUs apart slows two-vCPU work 1.6-1.8x
//! for seconds to minutes (README "Noise floor"). Unless the matrix says
//! `apart_reruns = 0`, the runner waits for them to come near before each
//! cell and measures again, after the pass, the cells that ran apart anyway
//! ([`rerun_apart`]); both read the host alone, never a cell's figure or arm.

mod launch;
pub mod noise;
mod outcome;
mod plan;
#[cfg(test)]
mod tests;

use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use launch::{Launcher, Qemu};
pub use outcome::{cell_result, classify, BenchRun, Boot, CellRun, Reading, SpannedCpu, Verdict};
pub use plan::{workload, CellPlan, Env};
use pvbench_wire::cmdline::CmdlineError;

use crate::build::layout::Layout;
use crate::build::Image;
use crate::collect;
use crate::results::{
    self, CellKey, CellResult, CellStatus, MatrixSpec, Provenance, Results, RunManifest, Shard, ShardError,
    Sharding, SpecError, Workload,
};
use crate::vm::accel::{Accel, Resolved};
use crate::vm::interrupt;
use crate::vm::{guest, qemu, BootFiles};

/// Why a matrix run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Cmdline(#[from] CmdlineError),
    #[error("{0} already holds results: pass --resume to continue it, or choose another --out")]
    OutExists(PathBuf),
    #[error("cannot resume {dir}: its results come from a different {what} ({theirs} there, {ours} now); use another --out")]
    Mismatch {
        dir: PathBuf,
        what: &'static str,
        theirs: String,
        ours: String,
    },
    #[error(transparent)]
    Results(#[from] results::ResultsError),
    #[error(transparent)]
    Guest(#[from] guest::GuestError),
    #[error(transparent)]
    Collect(#[from] collect::CollectError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("interrupted: {done} of {total} cells are in {dir}; continue with --resume --out {dir}{}",
        shard.map(|s| format!(" --shard {s}")).unwrap_or_default())]
    Interrupted {
        done: usize,
        total: usize,
        dir: PathBuf,
        shard: Option<Shard>,
    },
    #[error(transparent)]
    Shard(#[from] ShardError),
}

/// QEMU, the guest image and the accelerator, found and checked by the caller.
pub struct Host {
    pub qemu: PathBuf,
    pub image: Image,
    pub resolved: Resolved,
}

impl Host {
    /// The files guests boot from.
    pub fn boot_files(&self) -> BootFiles {
        BootFiles {
            loader: self.image.loader(),
            app: self.image.app(),
        }
    }
}

/// Options of one `pvbench run`.
pub struct RunOptions {
    pub spec: MatrixSpec,
    pub out: PathBuf,
    pub resume: bool,
    pub quiet: bool,
    /// Add repetitions until every row resolves this (see [`TargetMde`]).
    pub target: Option<TargetMde>,
    /// Run only this shard's comparison groups (see [`results::shard`]).
    pub shard: Option<Shard>,
    /// Keep a stalled bench guest's memory in its cell directory
    /// ([`launch::STALL_CORE`]).
    pub dump_on_stall: bool,
}

/// The host's cores: the fair share's denominator, and guests' vCPUs where
/// the matrix does not say.
pub fn host_cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// Runs (or resumes) the matrix with real guests; returns the results
/// directory's contents.
pub fn run(layout: &Layout, host: &Host, mut options: RunOptions) -> Result<Results, RunError> {
    let host_cores = host_cores();
    options.spec.vcpus.get_or_insert(host_cores);
    let env = Env {
        host_cores,
        vcpus: options.spec.vcpus.expect("set above"),
        accel: host.resolved.accel,
        hardware_kvm: host.resolved.verified_hardware_kvm,
    };
    let provenance = provenance(&host.qemu, &host.image, env.accel, &options.spec, layout);
    interrupt::install();
    let mut launcher = launch::Qemu {
        qemu: &host.qemu,
        files: host.boot_files(),
        accel: env.accel,
        dump_on_stall: options.dump_on_stall,
    };
    run_with(&mut launcher, &env, provenance, &options)
}

/// Runs (or resumes) the matrix of `options` through `launcher`: every planned
/// cell without a result, in order, each result written atomically as it
/// comes. Stops with [`RunError::Interrupted`] (finished cells kept) if the
/// launcher reports an interruption.
pub fn run_with(
    launcher: &mut impl Launcher,
    env: &Env,
    provenance: Provenance,
    options: &RunOptions,
) -> Result<Results, RunError> {
    let (cells, sharding) = match options.shard {
        None => (options.spec.plan(), None),
        Some(shard) => {
            let partition = results::shard::partition(&options.spec, shard.count)?;
            (
                partition.cells(&options.spec, shard),
                Some(Sharding::Shard(partition.record(shard))),
            )
        }
    };
    let mut manifest = RunManifest {
        provenance,
        matrix: serde_json::to_value(&options.spec).expect("spec serializes"),
        cells,
        target_mde_pct: options.target.map(|t| t.mde_pct),
        sharding,
    };
    // A resumed run goes on with the cells it had, added repetitions included.
    manifest.cells = prepare_out(&options.out, &manifest, options.resume)?;
    run_cells(launcher, env, options, &manifest.cells)?;
    rerun_apart(launcher, env, options, &manifest.cells)?;
    if let Some(target) = options.target {
        loop {
            let results = Results::load(&options.out)?;
            let more = target.more_cells(&results, &options.spec);
            if more.is_empty() {
                break;
            }
            manifest.cells.extend(&more);
            results::write_json_atomic(&options.out.join(results::MANIFEST_FILE), &manifest)?;
            run_cells(launcher, env, options, &manifest.cells)?;
            rerun_apart(launcher, env, options, &manifest.cells)?;
        }
    }
    Ok(Results::load(&options.out)?)
}

/// The rule for cells measured with the host's CPUs apart (README "Noise
/// floor"): after a pass, every completed or censored cell whose slower
/// core-to-core reading is over [`results::CPUS_APART_RATIO`] times the
/// fastest of the run so far is set aside (kept in `cells/<id>/apart-N/`)
/// and measured again, in plan order, at most the matrix's `apart_reruns`
/// times. The choice reads the host alone, never the cell's figure or arm,
/// so every arm of a comparison is treated alike. A failed cell is never
/// rerun: a guest failure stays in the record. An interruption counts the
/// finished cells of the whole `plan`.
fn rerun_apart(
    launcher: &mut impl Launcher,
    env: &Env,
    options: &RunOptions,
    plan: &[CellKey],
) -> Result<(), RunError> {
    let limit = options.spec.apart_reruns();
    loop {
        let results = Results::load(&options.out)?;
        let Some(floor) = results::core_to_core_floor_ns(&results.cells) else {
            return Ok(());
        };
        let again: Vec<CellKey> = results
            .cells
            .iter()
            .filter(|c| !matches!(c.status, CellStatus::Failed { .. }))
            .filter(|c| c.reruns_apart < limit && c.cpus_apart(floor) == Some(true))
            .map(|c| c.key)
            .collect();
        if again.is_empty() {
            return Ok(());
        }
        if !options.quiet {
            eprintln!(
                "pvbench: measuring {} cell{} again: the host's CPUs were apart (a round trip over {}x the \
                 run's fastest, {floor:.0} ns)",
                again.len(),
                if again.len() == 1 { "" } else { "s" },
                results::CPUS_APART_RATIO
            );
        }
        for key in &again {
            results::set_aside(&options.out, key)?;
        }
        match run_cells(launcher, env, options, &again) {
            Err(RunError::Interrupted { .. }) => return Err(interrupted_in(options, plan)),
            other => other?,
        }
    }
}

/// Runs every cell of `plan` without a result, in order, writing each result
/// atomically as it comes; stops with [`RunError::Interrupted`] (finished
/// cells kept) if the launcher reports an interruption.
fn run_cells(
    launcher: &mut impl Launcher,
    env: &Env,
    options: &RunOptions,
    plan: &[CellKey],
) -> Result<(), RunError> {
    let progress = Progress::new(plan.len(), options.quiet);
    // The first half of the rule for the CPUs apart (the second is
    // rerun_apart): before a cell, wait for them to come near, judged
    // against the run's fastest reading so far. After a wait that ran out
    // of patience, wait no more until a cell reads near again: a host that
    // keeps them apart for long would otherwise cost a patience per cell.
    let rule = options.spec.apart_reruns() > 0;
    let mut floor = if rule {
        results::core_to_core_floor_ns(&Results::load(&options.out)?.cells)
    } else {
        None
    };
    let mut patient = true;
    for (index, key) in plan.iter().enumerate() {
        let path = results::cell_path(&options.out, key);
        if path.is_file() {
            progress.skip(index, key);
            continue;
        }
        progress.start(index, key);
        let cell = plan::cell(&options.spec, env, key)?;
        let waited = floor
            .filter(|_| patient)
            .map(|f| launcher.await_near(f, NEAR_PATIENCE));
        patient &= waited.is_none_or(|w| w.near);
        let started = Instant::now();
        let Some(run) = launcher.run_cell(&cell, &results::cell_dir(&options.out, key))? else {
            return Err(interrupted_in(options, plan));
        };
        let mut result = outcome::cell_result(&cell, &run);
        result.cell_wall_s = Some(started.elapsed().as_secs_f64());
        result.reruns_apart = results::set_aside_count(&options.out, key);
        if let Some(host) = result.host.as_mut() {
            host.waited_near_s = waited.map(|w| w.waited.as_secs_f64());
        }
        if rule {
            floor = floor
                .into_iter()
                .chain(result.host.and_then(|h| h.core_to_core_min_ns()))
                .reduce(f64::min);
            patient |= floor.and_then(|f| result.cpus_apart(f)) == Some(false);
        }
        results::write_json_atomic(&path, &result)?;
        progress.finish_cell(&result);
    }
    progress.done();
    Ok(())
}

/// The interruption of a run of `plan`, with its finished cells counted.
fn interrupted_in(options: &RunOptions, plan: &[CellKey]) -> RunError {
    let done = plan
        .iter()
        .filter(|k| results::cell_path(&options.out, k).is_file())
        .count();
    RunError::Interrupted {
        done,
        total: plan.len(),
        dir: options.out.clone(),
        shard: options.shard,
    }
}

/// The longest wait for the host's CPUs to come near before a cell: longer
/// than the apart epochs measured on the project's AMD host (1-70 s).
const NEAR_PATIENCE: Duration = Duration::from_secs(90);

/// Adaptive repetitions (`pvbench run --target-mde`): rows whose minimum
/// detectable effect is above the target get one more repetition of every
/// lock mode (interleaved as planned ones are) at a time, until they reach it
/// or `max_reps`. Rows stop on their precision only, never on a p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetMde {
    /// Percent of the base arm's mean.
    pub mde_pct: f64,
    /// The most repetitions a row may get.
    pub max_reps: u32,
}

impl TargetMde {
    /// The cells of one more repetition of every row still above the target.
    /// Rows whose test gives no MDE (censored runs, too few runs) get none.
    pub fn more_cells(&self, results: &Results, spec: &MatrixSpec) -> Vec<CellKey> {
        let report = crate::report::render(results, &crate::report::RenderOptions::default());
        let mut more = Vec::new();
        for row in report.kernbench.iter().chain(&report.pgbench) {
            // Every mode of the row against base: the row is done when all are.
            let above = row
                .modes
                .iter()
                .any(|m| m.resolution.mde_pct.is_some_and(|mde| mde > self.mde_pct));
            let reps = results
                .manifest
                .cells
                .iter()
                .filter(|k| k.group() == row.group)
                .map(|k| k.rep)
                .max()
                .unwrap_or(0);
            if !above || reps >= self.max_reps {
                continue;
            }
            let rep = reps + 1;
            more.extend(spec.arm_order(rep).into_iter().map(|lock| CellKey {
                workload: row.group.workload,
                overcommit: row.group.overcommit,
                clients: row.group.clients,
                migrated: row.group.migrated,
                lock,
                rep,
            }));
        }
        more
    }
}

/// Creates the results directory, or checks that a resumed one is the same
/// run; returns the cells to run (a resumed run's, added repetitions included).
fn prepare_out(dir: &Path, manifest: &RunManifest, resume: bool) -> Result<Vec<CellKey>, RunError> {
    let manifest_path = dir.join(results::MANIFEST_FILE);
    if manifest_path.is_file() {
        if !resume {
            return Err(RunError::OutExists(dir.to_path_buf()));
        }
        let theirs: RunManifest = results::read_json(&manifest_path)?;
        let (t, o) = (&theirs.provenance, &manifest.provenance);
        for (what, theirs, ours) in [
            ("matrix", &t.matrix_hash, &o.matrix_hash),
            ("guest image", &t.image_id, &o.image_id),
            ("accelerator", &t.accel, &o.accel),
        ] {
            if theirs != ours {
                return Err(RunError::Mismatch {
                    dir: dir.to_path_buf(),
                    what,
                    theirs: theirs.clone(),
                    ours: ours.clone(),
                });
            }
        }
        // A shard resumes as itself: another shard's plan in this directory
        // would mix two shards' cells under one record.
        let (theirs_shard, ours_shard) = (shard_of(&theirs), shard_of(manifest));
        if theirs_shard != ours_shard {
            let name = |s: Option<Shard>| {
                s.map_or("no shard (the whole matrix)".to_string(), |s| {
                    format!("shard {s}")
                })
            };
            return Err(RunError::Mismatch {
                dir: dir.to_path_buf(),
                what: "shard",
                theirs: name(theirs_shard),
                ours: name(ours_shard),
            });
        }
        return Ok(theirs.cells);
    }
    results::write_json_atomic(&manifest_path, manifest)?;
    Ok(manifest.cells.clone())
}

/// The shard a manifest's run is (none for a whole matrix, or a merge).
fn shard_of(manifest: &RunManifest) -> Option<Shard> {
    match &manifest.sharding {
        Some(Sharding::Shard(record)) => Some(record.shard()),
        _ => None,
    }
}

fn provenance(qemu: &Path, image: &Image, accel: Accel, spec: &MatrixSpec, layout: &Layout) -> Provenance {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let host_cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split(':').nth(1)))
        .map_or("unknown".into(), |s| s.trim().to_string());
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .current_dir(&layout.root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let mut git_revision = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    // Results a run writes (its own tracked directory replaced, a report
    // edited) change no measurement: only sources and the scripts and
    // matrices under results/ make a revision dirty.
    let changed = |paths: &[&str]| {
        let mut args = vec!["status", "--porcelain", "--untracked-files=no", "--"];
        args.extend_from_slice(paths);
        git(&args).is_some_and(|s| !s.is_empty())
    };
    if changed(&[".", ":(exclude)results"])
        || changed(&[
            ":(glob)results/**/*.sh",
            ":(glob)results/**/*.toml",
            ":(glob)results/**/*.py",
        ])
    {
        git_revision.push_str("-dirty");
    }
    Provenance {
        host_cpu,
        host_cores: host_cores(),
        host_kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        qemu: qemu::version(qemu),
        accel: accel.name().to_string(),
        image_id: image.manifest.id.clone(),
        git_revision,
        matrix_hash: spec.hash(),
        pvbench_version: env!("CARGO_PKG_VERSION").to_string(),
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        hostname: hostname(),
        // What `vm::guest::command` passes to every guest of this run.
        guest_tsc_mhz: crate::vm::tsc::host_mhz(),
    }
}

/// This host's name, from the kernel (`None` if it has none to tell).
pub fn hostname() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The live progress line (an indicatif bar on a terminal, plain lines otherwise).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    plain: bool,
    total: usize,
}

impl Progress {
    fn new(total: usize, quiet: bool) -> Self {
        if quiet {
            return Self {
                bar: None,
                plain: false,
                total,
            };
        }
        if !std::io::stderr().is_terminal() {
            return Self {
                bar: None,
                plain: true,
                total,
            };
        }
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} cells  ETA {eta}  {msg}")
                .expect("valid template"),
        );
        Self {
            bar: Some(bar),
            plain: false,
            total,
        }
    }

    fn skip(&self, index: usize, key: &CellKey) {
        if let Some(bar) = &self.bar {
            bar.set_position(index as u64 + 1);
        } else if self.plain {
            eprintln!(
                "pvbench: [{}/{}] {} (kept from before)",
                index + 1,
                self.total,
                key.id()
            );
        }
    }

    fn start(&self, index: usize, key: &CellKey) {
        if let Some(bar) = &self.bar {
            bar.set_position(index as u64);
            bar.set_message(format!("running {}", key.id()));
        } else if self.plain {
            eprint!("pvbench: [{}/{}] {} ... ", index + 1, self.total, key.id());
            let _ = std::io::stderr().flush();
        }
    }

    fn finish_cell(&self, result: &CellResult) {
        let figure = describe(result);
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!("last: {} {figure}", result.key.id()));
        } else if self.plain {
            eprintln!("{figure}");
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// One cell's figure for humans: `12.3 s`, `>= 60.0 s (censored)`, `1234 tps`.
pub fn describe(result: &CellResult) -> String {
    match (&result.status, result.key.workload) {
        (CellStatus::Failed { reason, .. }, _) => format!("FAILED: {reason}"),
        (CellStatus::Completed, Workload::Kernbench) => format!("{:.2} s", result.elapsed_s),
        (CellStatus::Censored, Workload::Kernbench) => format!(">= {:.1} s (censored)", result.elapsed_s),
        (CellStatus::Completed, Workload::Pgbench) => format!("{:.1} tps", result.tps.unwrap_or(0.0)),
        (CellStatus::Censored, Workload::Pgbench) => {
            format!("<= {:.1} tps (censored)", result.tps.unwrap_or(0.0))
        }
    }
}

/// Default results directory: results/runs/<profile>-<unix time>.
pub fn default_out(layout: &Layout, name: &str) -> PathBuf {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    layout
        .root
        .join("results")
        .join("runs")
        .join(format!("{name}-{now}"))
}
