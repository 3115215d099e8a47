//! `pvbench run`: the benchmark matrix, one cell at a time.
//!
//! A cell is (workload, overcommit, clients, lock mode, repetition). For each:
//! start the hog guests (cpuhog, one thread per vCPU) and wait until they hog,
//! start the bench guest with a NIC and the metrics words, collect its metrics,
//! stop every guest, write the cell's result atomically. Arms are interleaved
//! (base, pv in one repetition; pv, base in the next) so drift hits both alike.
//!
//! A bench run that reaches its time cap is *censored*: it is stopped, and its
//! elapsed time is recorded as a lower bound with the work it completed. It is
//! data, not a failure. A guest that crashes, or hangs before its workload starts,
//! fails its cell; its serial log is kept and the matrix goes on.

use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::build::layout::Layout;
use crate::build::Image;
use crate::collect::{self, Collector};
use crate::results::{
    self, CellKey, CellResult, CellStatus, FailureKind, GuestCpu, GuestRole, LockMode, LockStats, MatrixSpec,
    Percentiles, Provenance, Results, RunManifest, SpecError, Workload,
};
use crate::vm::accel::{Accel, Resolved};
use crate::vm::guest::{self, Ended, GuestConfig, PanicSource, Running, StallWatch};
use crate::vm::interrupt::{self, interrupted};
use crate::vm::{qemu, BootFiles};
use pvbench_wire::cmdline;
use pvbench_wire::exit::GuestExit;

/// The line a guest prints when its workload starts (hogs: when they hog).
pub const STARTED_PREFIX: &str = "pvbench-guest: workload started";
/// The line carrying a workload's machine-readable result.
pub const RESULT_PREFIX: &str = "pvbench-result: ";
/// Default for `start_timeout_s`: booting a guest up to its workload's start line.
const BOOT_ALLOWANCE: Duration = Duration::from_secs(30);
/// A bench guest idle (see `StallWatch`) this long has stalled.
const BENCH_STALL_WINDOW: Duration = Duration::from_secs(10);

/// Why a matrix run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Spec(#[from] SpecError),
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
    #[error("interrupted: {done} of {total} cells are in {dir}; continue with --resume --out {dir}")]
    Interrupted { done: usize, total: usize, dir: PathBuf },
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
}

/// Runs (or resumes) the matrix; returns the results directory's contents.
pub fn run(layout: &Layout, host: &Host, mut options: RunOptions) -> Result<Results, RunError> {
    let Host {
        qemu,
        image,
        resolved,
    } = host;
    let host_cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    options.spec.vcpus.get_or_insert(host_cores);
    let spec = options.spec;
    let plan = spec.plan();
    let provenance = provenance(qemu, image, resolved.accel, &spec, layout);
    let manifest = RunManifest {
        provenance,
        matrix: serde_json::to_value(&spec).expect("spec serializes"),
        cells: plan.clone(),
    };
    prepare_out(&options.out, &manifest, options.resume)?;
    interrupt::install();

    let boot_files = host.boot_files();
    let ctx = CellContext {
        host_cores,
        qemu,
        image: &boot_files,
        accel: resolved.accel,
        hardware_kvm: resolved.verified_hardware_kvm,
        spec: &spec,
        out: &options.out,
    };
    let progress = Progress::new(plan.len(), options.quiet);
    for (index, key) in plan.iter().enumerate() {
        if results::cell_path(&options.out, key).is_file() {
            progress.skip(index, key);
            continue;
        }
        progress.start(index, key);
        let result = run_cell(&ctx, key)?;
        let Some(result) = result else {
            let done = plan
                .iter()
                .filter(|k| results::cell_path(&options.out, k).is_file())
                .count();
            return Err(RunError::Interrupted {
                done,
                total: plan.len(),
                dir: options.out.clone(),
            });
        };
        results::write_json_atomic(&results::cell_path(&options.out, key), &result)?;
        progress.finish_cell(&result);
    }
    progress.done();
    Ok(Results::load(&options.out)?)
}

struct CellContext<'a> {
    host_cores: u32,
    qemu: &'a Path,
    image: &'a BootFiles,
    accel: Accel,
    hardware_kvm: bool,
    spec: &'a MatrixSpec,
    out: &'a Path,
}

impl CellContext<'_> {
    fn vcpus(&self) -> u32 {
        self.spec.vcpus.expect("resolved in run()")
    }

    fn start_timeout(&self) -> Duration {
        self.spec
            .start_timeout_s
            .map_or(BOOT_ALLOWANCE, Duration::from_secs_f64)
    }

    fn guest(&self, app_args: Vec<String>, timeout: Duration, network: bool) -> GuestConfig {
        GuestConfig {
            // run_cell watches the bench guest for stalls; a hog never ends by itself.
            stall: None,
            vcpus: self.vcpus(),
            memory_mib: self.spec.memory_mib,
            accel: self.accel,
            kernel_args: Vec::new(),
            app_args,
            timeout,
            network,
        }
    }

    /// Application words selecting the lock mode (and, under TCG, the measured
    /// spin threshold; the host vouches for hardware KVM when it verified it).
    fn lock_words(&self, lock: LockMode) -> Vec<String> {
        let mut words = vec![format!(
            "{}={}",
            cmdline::PVLOCK,
            match lock {
                LockMode::Base => "off",
                LockMode::Pv => "on",
            }
        )];
        if self.accel == Accel::Tcg {
            words.push(format!("{}={}", cmdline::PVLOCK_SPIN, self.spec.spin_tcg));
        }
        if self.hardware_kvm {
            words.push(format!("{}=1", cmdline::PVLOCK_HW_KVM));
        }
        words
    }

    fn workload_words(&self, key: &CellKey) -> (Vec<String>, f64) {
        let vcpus = self.vcpus();
        match key.workload {
            Workload::Kernbench => {
                let k = self
                    .spec
                    .kernbench
                    .as_ref()
                    .expect("kernbench cells need [kernbench]");
                (
                    vec![
                        "workload=kernbench".into(),
                        format!("scale={}", k.scale),
                        "reps=1".into(),
                        format!("vcpus={vcpus}"),
                    ],
                    k.cap_s,
                )
            }
            Workload::Pgbench => {
                let p = self.spec.pgbench.as_ref().expect("pgbench cells need [pgbench]");
                (
                    vec![
                        "workload=pgbench".into(),
                        format!("scale={}", p.scale),
                        format!("clients={}", key.clients.unwrap_or(1)),
                        format!("duration_s={}", p.duration_s),
                        "reps=1".into(),
                        format!("vcpus={vcpus}"),
                    ],
                    p.cap_s,
                )
            }
        }
    }
}

/// Runs one cell; `None` if pvbench was interrupted meanwhile.
fn run_cell(ctx: &CellContext<'_>, key: &CellKey) -> Result<Option<CellResult>, RunError> {
    let cell_dir = results::cell_dir(ctx.out, key);
    fs::create_dir_all(&cell_dir).map_err(|source| RunError::Io {
        path: cell_dir.clone(),
        source,
    })?;
    let vcpus = ctx.vcpus();

    // Hogs first, and only once they hog does the bench guest start.
    let mut hogs: Vec<Running> = Vec::new();
    for i in 0..key.overcommit.hog_guests() {
        let words = vec![
            "workload=cpuhog".into(),
            format!("threads={vcpus}"),
            format!("vcpus={vcpus}"),
        ];
        let mut hog = guest::spawn(ctx.qemu, ctx.image, &ctx.guest(words, Duration::MAX, false))?;
        if !hog.wait_for_line(STARTED_PREFIX, ctx.start_timeout(), None) {
            if interrupted() {
                return Ok(None);
            }
            let outcome = hog.kill()?;
            save_log(&cell_dir, &format!("hog{i}"), &outcome.serial_tail)?;
            return Ok(Some(failed(
                key,
                format!("hog guest {i} did not start hogging: {}", outcome.describe()),
            )));
        }
        hogs.push(hog);
    }
    let hog_cpu_before: Vec<f64> = hogs.iter_mut().map(Running::cpu_seconds).collect();

    let collector = Collector::start([key.id()])?;
    let (workload_words, cap_s) = ctx.workload_words(key);
    let mut app_args = ctx.lock_words(key.lock);
    app_args.extend(workload_words);
    app_args.extend(collector.guest_words(&key.id()).expect("run registered above"));
    app_args.extend(ctx.spec.bench_args.iter().flatten().cloned());
    let cap = Duration::from_secs_f64(cap_s);
    let start_timeout = ctx.start_timeout();
    let mut config = ctx.guest(app_args, cap + start_timeout, true);
    // A bench guest whose tasks all block forever would idle to its cap and
    // pass for a slow (censored) run: a stall fails the cell instead. Its
    // streamed operations tell a stalled guest from a slow one.
    let fair_cores = f64::from(vcpus) * key.overcommit.fair_share_per_vcpu(ctx.host_cores, vcpus);
    let progress = collector.progress(&key.id()).expect("run registered above");
    config.stall = Some(StallWatch::over(BENCH_STALL_WINDOW).with_progress(progress, fair_cores));
    let mut bench = guest::spawn(ctx.qemu, ctx.image, &config)?;
    bench.capture(RESULT_PREFIX);
    bench.capture("pvbench-guest: pvlock stats");
    let started = bench.wait_for_line(STARTED_PREFIX, start_timeout, None);
    let work_start = bench.elapsed();
    let outcome = if started {
        // The cap counts from the start of the measured work.
        bench.set_deadline_from_now(cap);
        bench.wait(None)?
    } else {
        bench.kill()?
    };
    let bench_wall = outcome.wall;
    let hogs_cpu: Vec<GuestCpu> = hogs
        .iter_mut()
        .zip(&hog_cpu_before)
        .map(|(hog, before)| GuestCpu {
            role: GuestRole::Hog,
            vcpus,
            cpu_s: hog.cpu_seconds() - before,
            wall_s: bench_wall.as_secs_f64(),
        })
        .collect();
    for hog in hogs {
        hog.kill()?;
    }
    if interrupted() {
        return Ok(None);
    }

    let report = collector.finish(Duration::from_secs(3));
    let metrics = report.run(&key.id());
    if let Some(run) = metrics {
        collect::write_run_files(run, &cell_dir)?;
    }
    save_log(&cell_dir, "bench", &outcome.serial_tail)?;

    let mut guests = vec![GuestCpu {
        role: GuestRole::Bench,
        vcpus,
        cpu_s: outcome.cpu_s,
        wall_s: bench_wall.as_secs_f64(),
    }];
    guests.extend(hogs_cpu);

    let parsed = outcome
        .captured
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix(RESULT_PREFIX))
        .map(parse_result);
    let pvlock = outcome.captured.iter().rev().find_map(|l| parse_pvlock_stats(l));
    let latency_us = metrics.filter(|m| m.received.samples > 0).map(|m| Percentiles {
        count: m.latency.count,
        mean: m.latency.mean,
        p50: m.latency.p50,
        p90: m.latency.p90,
        p99: m.latency.p99,
        p999: m.latency.p99_9,
        p9999: m.latency.p99_99,
        max: m.latency.max,
    });
    let received_ops = metrics.map_or(0, |m| m.received.ops);

    let mut result = CellResult {
        key: *key,
        status: CellStatus::Completed,
        elapsed_s: 0.0,
        cap_s,
        ops: received_ops,
        tps: None,
        latency_us,
        pvlock,
        guests,
    };
    let ran = outcome.wall.saturating_sub(work_start);
    match classify(started, &outcome, parsed, ran, cap_s) {
        Verdict::Completed(figures) => {
            result.elapsed_s = figures.elapsed_s;
            result.ops = figures.ops;
            result.tps = figures.tps;
        }
        Verdict::Censored { elapsed_s } => {
            result.status = CellStatus::Censored;
            result.elapsed_s = elapsed_s;
            if key.workload == Workload::Pgbench {
                // An upper bound: at most what arrived, over at least `ran`.
                result.tps = Some(received_ops as f64 / ran.as_secs_f64().max(f64::MIN_POSITIVE));
            }
        }
        Verdict::Failed(status) => result.status = status,
    }
    Ok(Some(result))
}

/// What a bench guest's run amounts to.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// The workload finished and reported its figures.
    Completed(Figures),
    /// Killed at its cap after running `elapsed_s` (at least the cap).
    Censored { elapsed_s: f64 },
    /// A failed status, with its kind and reason.
    Failed(CellStatus),
}

/// Classifies a bench guest's run. Pure: `started` is whether its workload's
/// start line came, `parsed` its result line, `ran` the time from the start
/// line to its end. Only a guest still working at its cap is censored; a
/// stalled one fails (it would never have finished), as does any guest that
/// ended without a readable result.
fn classify(
    started: bool,
    outcome: &guest::Outcome,
    parsed: Option<Result<Figures, String>>,
    ran: Duration,
    cap_s: f64,
) -> Verdict {
    let kind = match (outcome.ended, &outcome.panic) {
        (Ended::Stalled { .. }, _) => FailureKind::Stall,
        (_, Some(p)) if p.source == PanicSource::Kernel => FailureKind::KernelPanic,
        (_, Some(_)) => FailureKind::AppPanic,
        _ => FailureKind::Other,
    };
    if !started {
        let reason = format!("the workload never started: {}", outcome.describe());
        return Verdict::Failed(CellStatus::failed(kind, reason));
    }
    match (outcome.ended, parsed) {
        (Ended::Exited(GuestExit::Status(0)), Some(Ok(figures))) => Verdict::Completed(figures),
        // Censored: the work ran at least from its start line to the kill.
        (Ended::TimedOut, _) => Verdict::Censored {
            elapsed_s: ran.as_secs_f64().max(cap_s),
        },
        (_, parsed) => {
            let reason = match parsed {
                Some(Err(e)) => format!("unreadable result line: {e}"),
                _ => outcome.describe(),
            };
            Verdict::Failed(CellStatus::failed(kind, reason))
        }
    }
}

fn failed(key: &CellKey, reason: String) -> CellResult {
    CellResult::new(*key, CellStatus::failed(FailureKind::Other, reason))
}

/// The figures of a `pvbench-result:` line.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Figures {
    elapsed_s: f64,
    ops: u64,
    tps: Option<f64>,
}

/// `pvbench-result: {"workload":"kernbench","elapsed_s":..,"ops":..,"tps":null}`
fn parse_result(json: &str) -> Result<Figures, String> {
    #[derive(Deserialize)]
    struct Line {
        elapsed_s: f64,
        ops: u64,
        tps: Option<f64>,
    }
    let line: Line = serde_json::from_str(json).map_err(|e| e.to_string())?;
    if !line.elapsed_s.is_finite() || line.elapsed_s < 0.0 {
        return Err(format!("elapsed_s {} is not a duration", line.elapsed_s));
    }
    Ok(Figures {
        elapsed_s: line.elapsed_s,
        ops: line.ops,
        tps: line.tps,
    })
}

/// The guest's `pvlock stats key=value ...` line.
fn parse_pvlock_stats(line: &str) -> Option<LockStats> {
    let rest = line.split("pvlock stats ").nth(1)?;
    let get = |key: &str| -> u64 {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(LockStats {
        taken_slow: get("taken_slow"),
        taken_slow_pickup: get("taken_slow_pickup"),
        halted: get("halted"),
        spurious_wakeups: get("spurious_wakeups"),
        released_slow: get("released_slow"),
        released_slow_kicked: get("released_slow_kicked"),
        time_blocked_cycles: get("time_blocked_cycles"),
    })
}

fn save_log(dir: &Path, name: &str, lines: &[String]) -> Result<(), RunError> {
    let path = dir.join(format!("{name}.serial.log"));
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(&path, text).map_err(|source| RunError::Io { path, source })
}

/// Creates the results directory, or checks that a resumed one is the same run.
fn prepare_out(dir: &Path, manifest: &RunManifest, resume: bool) -> Result<(), RunError> {
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
        return Ok(());
    }
    results::write_json_atomic(&manifest_path, manifest)?;
    Ok(())
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
    if git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty()) {
        git_revision.push_str("-dirty");
    }
    Provenance {
        host_cpu,
        host_cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
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
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(ended: Ended, tail: &[&str]) -> guest::Outcome {
        let mut watch = guest::PanicWatch::default();
        tail.iter().for_each(|l| watch.feed(l));
        guest::Outcome {
            ended,
            pid: 42,
            wall: Duration::from_secs(20),
            cpu_s: 1.0,
            first_app_line: Some(Duration::from_millis(300)),
            serial_tail: tail.iter().map(|l| l.to_string()).collect(),
            captured: Vec::new(),
            qemu_stderr: String::new(),
            panic: watch.panic().cloned(),
        }
    }

    const FIGURES: Figures = Figures {
        elapsed_s: 2.5,
        ops: 17,
        tps: None,
    };
    const RAN: Duration = Duration::from_secs(16);

    #[test]
    fn a_finished_workload_is_completed_with_its_own_figures() {
        let ended = Ended::Exited(GuestExit::Status(0));
        let verdict = classify(true, &outcome(ended, &[]), Some(Ok(FIGURES)), RAN, 15.0);
        assert_eq!(verdict, Verdict::Completed(FIGURES));
        // Status 0 without a result line, or with a garbled one, is no result.
        let no_line = classify(true, &outcome(ended, &[]), None, RAN, 15.0);
        assert_eq!(no_line_kind(&no_line), Some(FailureKind::Other));
        let garbled = classify(true, &outcome(ended, &[]), Some(Err("eh".into())), RAN, 15.0);
        assert!(
            matches!(garbled, Verdict::Failed(CellStatus::Failed { ref reason, .. }) if reason.contains("unreadable"))
        );
    }

    fn no_line_kind(v: &Verdict) -> Option<FailureKind> {
        match v {
            Verdict::Failed(status) => status.failure(),
            _ => None,
        }
    }

    #[test]
    fn a_run_killed_at_its_cap_is_censored_at_no_less_than_the_cap() {
        let v = classify(true, &outcome(Ended::TimedOut, &[]), None, RAN, 15.0);
        assert_eq!(v, Verdict::Censored { elapsed_s: 16.0 });
        let v = classify(
            true,
            &outcome(Ended::TimedOut, &[]),
            None,
            Duration::from_secs(14),
            15.0,
        );
        assert_eq!(v, Verdict::Censored { elapsed_s: 15.0 });
    }

    #[test]
    fn a_stalled_run_fails_as_a_stall_and_is_never_censored() {
        let stalled = Ended::Stalled {
            kind: guest::StallKind::NoProgress,
            cpu_ms: 600,
            delay_ms: Some(100),
            limit_ms: 1666,
            window_ms: 10_000,
        };
        let v = classify(true, &outcome(stalled, &[]), None, RAN, 15.0);
        assert_eq!(no_line_kind(&v), Some(FailureKind::Stall));
        let Verdict::Failed(CellStatus::Failed { reason, .. }) = v else {
            unreachable!()
        };
        assert!(reason.contains("completed no operation"), "{reason}");
    }

    #[test]
    fn a_kernel_panic_is_named_with_its_location_and_message() {
        let tail = [
            "[1][PANIC] panicked at /w/hermit-kernel-0.11.0/src/scheduler/task.rs:690:9:",
            "internal error: entered unreachable code",
        ];
        let ended = Ended::Exited(GuestExit::KernelFailure);
        let v = classify(true, &outcome(ended, &tail), None, RAN, 15.0);
        assert_eq!(no_line_kind(&v), Some(FailureKind::KernelPanic));
        let Verdict::Failed(CellStatus::Failed { reason, .. }) = v else {
            unreachable!()
        };
        assert_eq!(
            reason,
            "guest kernel panic at scheduler/task.rs:690: internal error: entered unreachable code"
        );
        // The same panic before the workload started still names the panic.
        let early = classify(false, &outcome(ended, &tail), None, RAN, 15.0);
        assert_eq!(no_line_kind(&early), Some(FailureKind::KernelPanic));
        let app = ["thread 'main' panicked at app/src/main.rs:1:1:", "boom"];
        let v = classify(true, &outcome(ended, &app), None, RAN, 15.0);
        assert_eq!(no_line_kind(&v), Some(FailureKind::AppPanic));
    }

    #[test]
    fn result_and_stats_lines_parse() {
        let f = parse_result(r#"{"workload":"kernbench","elapsed_s":2.5,"ops":17,"tps":null}"#).unwrap();
        assert_eq!((f.elapsed_s, f.ops, f.tps), (2.5, 17, None));
        assert!(parse_result("{garbage").is_err());
        assert!(parse_result(r#"{"elapsed_s":-1,"ops":0,"tps":null}"#).is_err());
        let s =
            parse_pvlock_stats("pvbench-guest: pvlock stats taken_slow=3 halted=2 released_slow_kicked=2")
                .unwrap();
        assert_eq!((s.taken_slow, s.halted, s.released_slow_kicked), (3, 2, 2));
    }
}
