//! From what a cell's guests did to the cell's result. Pure: whether a cell
//! completed, was censored or failed (and how) is decided here, from values a
//! test can make without QEMU.

use std::time::Duration;

use pvbench_wire::exit::GuestExit;
use pvbench_wire::frames::Figures;

use super::plan::CellPlan;
use crate::collect::{LatencySummary, RunResult};
use crate::results::{
    BootRuns, CellMigrations, CellResult, CellStatus, CellTimes, FailureKind, GuestCpu, GuestRole, HostNoise,
    MigrationMode, Percentiles, Workload,
};
use crate::vm::guest::{self, delay_between, Ended, MigrationKind, Outcome, PanicSource};

/// What the guests of one cell did.
#[derive(Debug)]
pub enum CellRun {
    /// Hog guest `index` never reported hogging; the bench guest did not start.
    /// Boxed like `Bench`: an outcome is large and a cell holds one.
    HogFailed { index: usize, outcome: Box<Outcome> },
    /// The bench guest ran (or never reached its workload's start line).
    /// Boxed: its metrics are large and a cell holds one run at a time.
    Bench(Box<BenchRun>),
}

/// The bench guest's run and what was measured around it.
#[derive(Debug)]
pub struct BenchRun {
    /// Its workload's start line came.
    pub started: bool,
    /// From the cell's start to the bench guest's QEMU start (host readings,
    /// hog guests booted).
    pub hogs_ready: Duration,
    /// From QEMU's start to the start line (or to the kill, if it never came).
    pub work_start: Duration,
    pub outcome: Outcome,
    /// Every guest's CPU over the measured work.
    pub cpu: SpannedCpu,
    /// What its metrics stream delivered (`None`: the collector knew no such run).
    pub metrics: Option<RunResult>,
    /// The host around the cell, if it was read.
    pub host: Option<HostNoise>,
}

/// What the host read of every guest of a cell at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Since the bench guest's QEMU started.
    pub at: Duration,
    pub bench_cpu_s: f64,
    /// The bench guest's vCPU threads' run delays so far (`None` unknown).
    pub bench_delays: Option<Vec<Duration>>,
    /// Each hog guest's, likewise.
    pub hog_cpu_s: Vec<f64>,
    pub hog_delays: Vec<Option<Vec<Duration>>>,
}

/// Every guest's CPU and run delays summed over spans of the bench guest's
/// run: the repetitions' timed work it marked on its console, or (where it
/// marked none) the one span from its start line to its end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpannedCpu {
    /// Spans summed; `marked` tells whether the guest marked them.
    pub spans: u32,
    pub marked: bool,
    /// Wall seconds over all spans.
    pub wall_s: f64,
    pub bench_cpu_s: f64,
    /// Per vCPU; `None` where any span's reading was unknown.
    pub bench_delay_s: Option<Vec<f64>>,
    pub hog_cpu_s: Vec<f64>,
    pub hog_delay_s: Vec<Option<Vec<f64>>>,
}

impl SpannedCpu {
    /// Adds the span from `begin` to `end`.
    pub fn add(&mut self, begin: &Reading, end: &Reading) {
        fn sum(total: Option<Vec<f64>>, span: Option<Vec<f64>>, first: bool) -> Option<Vec<f64>> {
            match (total, span) {
                (_, Some(span)) if first => Some(span),
                (Some(total), Some(span)) if total.len() == span.len() => {
                    Some(total.iter().zip(&span).map(|(a, b)| a + b).collect())
                }
                _ => None,
            }
        }
        let first = self.spans == 0;
        if first {
            self.hog_cpu_s = vec![0.0; begin.hog_cpu_s.len()];
            self.hog_delay_s = vec![None; begin.hog_cpu_s.len()];
        }
        self.spans += 1;
        self.wall_s += end.at.saturating_sub(begin.at).as_secs_f64();
        self.bench_cpu_s += (end.bench_cpu_s - begin.bench_cpu_s).max(0.0);
        let delays = delay_between(begin.bench_delays.as_deref(), end.bench_delays.as_deref());
        self.bench_delay_s = sum(self.bench_delay_s.take(), delays, first);
        for (i, total) in self.hog_cpu_s.iter_mut().enumerate() {
            let (Some(b), Some(e)) = (begin.hog_cpu_s.get(i), end.hog_cpu_s.get(i)) else {
                continue;
            };
            *total += (e - b).max(0.0);
            let (b, e) = (
                begin.hog_delays.get(i).cloned().flatten(),
                end.hog_delays.get(i).cloned().flatten(),
            );
            let delays = delay_between(b.as_deref(), e.as_deref());
            self.hog_delay_s[i] = sum(self.hog_delay_s[i].take(), delays, first);
        }
    }
}

/// What a bench guest's run amounts to.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// The workload finished and its last frame carried its figures.
    Completed {
        elapsed_s: f64,
        ops: u64,
        tps: Option<f64>,
        /// Every repetition, where the boot ran more than one.
        runs: Option<BootRuns>,
    },
    /// Killed at its cap after running `elapsed_s` per repetition (at least
    /// the cap per repetition).
    Censored { elapsed_s: f64 },
    /// A failed status, with its kind and reason.
    Failed(CellStatus),
}

/// A finished boot's figures, checked: the cell's value is the mean of its
/// measured repetitions where it ran more than one.
fn completed(f: &Figures, boot: Boot) -> Result<Verdict, String> {
    if !(f.elapsed_s.is_finite() && f.elapsed_s >= 0.0) {
        return Err(format!(
            "the guest reported elapsed_s {}, not a duration",
            f.elapsed_s
        ));
    }
    if boot.reps <= 1 {
        return Ok(Verdict::Completed {
            elapsed_s: f.elapsed_s,
            ops: f.ops,
            tps: f.tps,
            runs: None,
        });
    }
    if f.runs.len() != boot.reps as usize {
        return Err(format!(
            "the guest reported {} repetitions, not the {} it was asked for",
            f.runs.len(),
            boot.reps
        ));
    }
    if let Some(bad) = f.runs.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
        return Err(format!("the guest reported a repetition's figure of {bad}"));
    }
    let runs = BootRuns {
        warmup: boot.warmup,
        values: f.runs.clone(),
    };
    let mean = runs
        .measured_mean()
        .expect("runs_per_boot >= 1 leaves a measured run");
    let (elapsed_s, tps) = match f.tps {
        Some(_) => (f.elapsed_s, Some(mean)),
        None => (mean, None),
    };
    Ok(Verdict::Completed {
        elapsed_s,
        ops: f.ops,
        tps,
        runs: Some(runs),
    })
}

/// The phases of the cell up to its bench guest's end (the runner times the
/// whole cell).
fn times(bench: &BenchRun) -> CellTimes {
    let boot = bench
        .outcome
        .first_app_line
        .unwrap_or(bench.work_start)
        .min(bench.work_start);
    CellTimes {
        hogs_s: bench.hogs_ready.as_secs_f64(),
        boot_s: boot.as_secs_f64(),
        setup_s: bench.work_start.saturating_sub(boot).as_secs_f64(),
        work_s: bench.outcome.wall.saturating_sub(bench.work_start).as_secs_f64(),
        marked_s: bench.cpu.marked.then_some(bench.cpu.wall_s),
    }
}

/// The cell's result.
pub fn cell_result(plan: &CellPlan, run: &CellRun) -> CellResult {
    let key = plan.key;
    let bench = match run {
        CellRun::HogFailed { index, outcome } => {
            let reason = format!("hog guest {index} did not start hogging: {}", outcome.describe());
            return CellResult::new(key, CellStatus::failed(FailureKind::Other, reason));
        }
        CellRun::Bench(bench) => bench,
    };
    let cpu = &bench.cpu;
    let with_delays = |cpu: GuestCpu, per_vcpu: Option<Vec<f64>>| match per_vcpu {
        Some(per_vcpu) => GuestCpu {
            run_delay_s: Some(per_vcpu.iter().sum()),
            vcpu_run_delay_s: per_vcpu,
            ..cpu
        },
        None => cpu,
    };
    let mut guests = vec![with_delays(
        GuestCpu::new(GuestRole::Bench, plan.vcpus, cpu.bench_cpu_s, cpu.wall_s),
        cpu.bench_delay_s.clone(),
    )];
    guests.extend(cpu.hog_cpu_s.iter().enumerate().map(|(i, &cpu_s)| {
        with_delays(
            GuestCpu::new(GuestRole::Hog, plan.vcpus, cpu_s, cpu.wall_s),
            cpu.hog_delay_s.get(i).cloned().flatten(),
        )
    }));
    let done = bench.metrics.as_ref().and_then(|m| m.done.as_ref());
    let metrics = bench.metrics.as_ref();
    let received_ops = metrics.map_or(0, |m| m.received.ops);
    let cap_s = plan.cap.as_secs_f64();
    let mut result = CellResult {
        key,
        status: CellStatus::Completed,
        elapsed_s: 0.0,
        cap_s,
        ops: received_ops,
        tps: None,
        latency_us: metrics
            .filter(|m| m.received.samples > 0)
            .map(|m| percentiles(&m.latency)),
        pvlock: done.map(|d| d.lock),
        queued: done.map(|d| d.queued),
        tas: done.map(|d| d.tas),
        kick_wake_ns: metrics
            .and_then(|m| m.kick_wake.as_ref())
            .map(|h| percentiles(&LatencySummary::of(h))),
        guests,
        host: bench.host,
        runs: None,
        cell_wall_s: None,
        times: Some(times(bench)),
        migrations: bench.outcome.migrations.as_ref().map(|m| CellMigrations {
            kind: match m.kind {
                Some(MigrationKind::Live) => MigrationMode::Live,
                _ => MigrationMode::Paused,
            },
            count: m.count,
            downtime_ms: m.downtimes_ms.clone(),
            resumes: metrics.map_or(0, |r| r.resumes),
        }),
        vcpus_at_cap: None,
        reruns_apart: 0,
    };
    let ran = bench.outcome.wall.saturating_sub(bench.work_start);
    match classify(bench, ran, Boot::of(plan)) {
        Verdict::Completed {
            elapsed_s,
            ops,
            tps,
            runs,
        } => {
            result.elapsed_s = elapsed_s;
            result.ops = ops;
            result.tps = tps;
            result.runs = runs;
        }
        Verdict::Censored { elapsed_s } => {
            result.status = CellStatus::Censored;
            result.elapsed_s = elapsed_s;
            // Where the vCPUs were at the cap: a deadlocked guest reaches it
            // busy too, and the stall watch cannot tell (see vcpus_at_cap).
            result.vcpus_at_cap = bench
                .outcome
                .vcpus_at_kill
                .as_deref()
                .map(guest::compact_vcpu_states);
            if key.workload == Workload::Pgbench {
                // An upper bound: at most what arrived, over at least `ran`.
                result.tps = Some(received_ops as f64 / ran.as_secs_f64().max(f64::MIN_POSITIVE));
            }
        }
        Verdict::Failed(status) => result.status = status,
    }
    result
}

fn percentiles(l: &LatencySummary) -> Percentiles {
    Percentiles {
        count: l.count,
        mean: l.mean,
        p50: l.p50,
        p90: l.p90,
        p99: l.p99,
        p999: l.p99_9,
        p9999: l.p99_99,
        max: l.max,
    }
}

/// What one boot was asked to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Boot {
    /// The cap of the whole boot's work (all its repetitions).
    pub cap_s: f64,
    /// Repetitions, warm-up included.
    pub reps: u32,
    pub warmup: u32,
}

impl Boot {
    /// One measured repetition under `cap_s`: a matrix without `runs_per_boot`.
    pub fn single(cap_s: f64) -> Self {
        Self {
            cap_s,
            reps: 1,
            warmup: 0,
        }
    }

    fn of(plan: &CellPlan) -> Self {
        Self {
            cap_s: plan.cap.as_secs_f64(),
            reps: plan.boot_reps,
            warmup: plan.warmup,
        }
    }
}

/// Classifies a bench guest's run; `ran` is the time from its start line to
/// its end. Only a guest still working at its cap is censored; a stalled one
/// fails (it would never have finished), as does any guest that ended without
/// its figures or with another number of repetitions than it was asked for.
pub fn classify(bench: &BenchRun, ran: Duration, boot: Boot) -> Verdict {
    let outcome = &bench.outcome;
    let kind = match (outcome.ended, &outcome.panic) {
        (Ended::Stalled { .. }, _) => FailureKind::Stall,
        (_, Some(p)) if p.source == PanicSource::Kernel => FailureKind::KernelPanic,
        (_, Some(_)) => FailureKind::AppPanic,
        _ => FailureKind::Other,
    };
    // A guest killed as hung says where its vCPUs were and, if stalled, what
    // an injected NMI did to it.
    let describe = || {
        let mut text = outcome.describe();
        if let Some(states) = &outcome.vcpus_at_kill {
            text.push_str(&format!(
                "; vCPUs at the kill: {}",
                guest::compact_vcpu_states(states)
            ));
        }
        if let Some(probe) = &outcome.nmi_probe {
            text.push_str(&format!("; {probe}"));
        }
        text
    };
    if !bench.started {
        let reason = format!("the workload never started: {}", describe());
        return Verdict::Failed(CellStatus::failed(kind, reason));
    }
    let done = bench.metrics.as_ref().and_then(|m| m.done.as_ref());
    match (outcome.ended, done) {
        (Ended::Exited(GuestExit::Status(0)), Some(done)) => completed(&done.figures, boot)
            .unwrap_or_else(|reason| Verdict::Failed(CellStatus::failed(FailureKind::Other, reason))),
        // Censored: the boot's work ran at least from its start line to the
        // kill, so its repetitions took at least this much each on average.
        (Ended::TimedOut, _) => Verdict::Censored {
            elapsed_s: ran.as_secs_f64().max(boot.cap_s) / f64::from(boot.reps.max(1)),
        },
        (Ended::Exited(GuestExit::Status(0)), None) => {
            let why = bench.metrics.as_ref().map_or_else(
                || "the collector had no such run".to_string(),
                |m| {
                    m.errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                },
            );
            let reason = format!("the guest finished but its last frame never arrived: {why}");
            Verdict::Failed(CellStatus::failed(FailureKind::Other, reason))
        }
        _ => Verdict::Failed(CellStatus::failed(kind, describe())),
    }
}
