//! The seam between deciding a cell and running it: a [`Launcher`] runs a
//! cell's guests and reports what they did. [`Qemu`] boots real guests; the
//! runner's tests use a fake, so the matrix loop is tested without QEMU.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pvbench_wire::console::{MEASURE_BEGINS, MEASURE_ENDS, WORKLOAD_STARTED};

use super::noise;
use super::outcome::{BenchRun, CellRun, Reading, SpannedCpu};
use super::plan::CellPlan;
use super::RunError;
use crate::collect::{self, Collector};
use crate::results::MigrationMode;
use crate::vm::accel::Accel;
use crate::vm::guest::{self, GuestConfig, MigratePlan, MigrationKind, Outcome, Running, StallWatch};
use crate::vm::interrupt::interrupted;
use crate::vm::BootFiles;

/// A bench guest that idles (see `StallWatch`) this long has stalled.
const BENCH_STALL_WINDOW: Duration = Duration::from_secs(10);
/// How long the collector waits for a run's last frame after its guest ended.
const COLLECT_GRACE: Duration = Duration::from_secs(3);

/// Runs the guests of one cell.
pub trait Launcher {
    /// Runs `plan`, keeping its logs in `dir`; `None` if pvbench was
    /// interrupted meanwhile (every guest of the cell is stopped then).
    fn run_cell(&mut self, plan: &CellPlan, dir: &Path) -> Result<Option<CellRun>, RunError>;

    /// Waits at most `patience` for the host's CPUs to come near (a
    /// core-to-core round trip within `CPUS_APART_RATIO` times `floor_ns`,
    /// [`noise::await_near`]). The default, for launchers that read no host,
    /// does not wait.
    fn await_near(&mut self, _floor_ns: f64, _patience: Duration) -> noise::NearWait {
        noise::NearWait {
            waited: Duration::ZERO,
            near: true,
        }
    }
}

/// Real guests under QEMU.
pub struct Qemu<'a> {
    pub qemu: &'a Path,
    pub files: BootFiles,
    pub accel: Accel,
    /// Write a stalled bench guest's memory to [`STALL_CORE`] in its cell.
    pub dump_on_stall: bool,
}

/// A stalled bench guest's memory, in its cell's directory (`--dump-on-stall`).
pub const STALL_CORE: &str = "bench.stall.core";

impl Launcher for Qemu<'_> {
    fn run_cell(&mut self, plan: &CellPlan, dir: &Path) -> Result<Option<CellRun>, RunError> {
        // Interrupted while the runner waited for the CPUs: start nothing.
        if interrupted() {
            return Ok(None);
        }
        fs::create_dir_all(dir).map_err(|source| RunError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let cell_start = Instant::now();
        let noise = noise::before();
        // Hogs first, and only once they hog does the bench guest start.
        let mut hogs: Vec<Running> = Vec::new();
        for (index, cmdline) in plan.hogs.iter().enumerate() {
            let config = self.guest(plan, cmdline.clone(), Duration::MAX, false);
            let mut hog = guest::spawn(self.qemu, &self.files, &config)?;
            if !hog.wait_for_line(WORKLOAD_STARTED, plan.start_timeout, None) {
                if interrupted() {
                    return Ok(None);
                }
                let outcome = hog.kill()?;
                save_log(dir, &format!("hog{index}"), &outcome.serial_tail)?;
                return Ok(Some(CellRun::HogFailed {
                    index,
                    outcome: Box::new(outcome),
                }));
            }
            hogs.push(hog);
        }
        let bench = self.bench(plan, dir, &mut hogs, cell_start)?;
        Ok(bench.map(|mut b| {
            b.host = Some(noise.after());
            CellRun::Bench(Box::new(b))
        }))
    }

    fn await_near(&mut self, floor_ns: f64, patience: Duration) -> noise::NearWait {
        noise::await_near(floor_ns, patience)
    }
}

impl Qemu<'_> {
    fn guest(
        &self,
        plan: &CellPlan,
        cmdline: pvbench_wire::cmdline::Cmdline,
        timeout: Duration,
        network: bool,
    ) -> GuestConfig {
        GuestConfig {
            vcpus: plan.vcpus,
            memory_mib: plan.memory_mib,
            accel: self.accel,
            cmdline,
            timeout,
            network,
            stall: None,
            migrate: None,
            dump_on_stall: None,
        }
    }

    /// The bench guest, streaming to a collector of its own, beside `hogs`
    /// (which it stops at the end).
    fn bench(
        &self,
        plan: &CellPlan,
        dir: &Path,
        hogs: &mut Vec<Running>,
        cell_start: Instant,
    ) -> Result<Option<BenchRun>, RunError> {
        let run_id = plan.key.id();
        let collector = Collector::start([run_id.clone()])?;
        let mut cmdline = plan.bench.clone();
        for (key, value) in collector.target(&run_id).expect("run registered above").words() {
            cmdline.push(key, value)?;
        }
        let mut config = self.guest(plan, cmdline, plan.cap + plan.start_timeout, true);
        // A bench guest whose tasks all block forever would idle to its cap and
        // pass for a slow (censored) run: a stall fails the cell instead. Its
        // streamed operations tell a stalled guest from a slow one.
        let progress = collector.progress(&run_id).expect("run registered above");
        config.stall = Some(StallWatch::over(BENCH_STALL_WINDOW).with_progress(progress, plan.fair_cores));
        config.dump_on_stall = self.dump_on_stall.then(|| dir.join(STALL_CORE));
        config.migrate = plan.migrate.map(|(every, mode)| MigratePlan {
            every,
            kind: match mode {
                Some(MigrationMode::Live) => MigrationKind::Live,
                Some(MigrationMode::Paused) => MigrationKind::Paused,
                None => MigrationKind::default_for(self.accel),
            },
        });
        let hogs_ready = cell_start.elapsed();
        let mut bench = guest::spawn(self.qemu, &self.files, &config)?;
        let started = bench.wait_for_line(WORKLOAD_STARTED, plan.start_timeout, None);
        let work_start = bench.elapsed();
        // CPU counts over the measured work only: boot, setup and teardown are
        // not what the fair share is about. The guest marks each repetition's
        // timed work; every guest is read at each mark.
        let at_start = read_guests(&mut bench, hogs);
        let mut cpu = SpannedCpu::default();
        let outcome = if started {
            // The cap counts from the start of the measured work.
            bench.set_deadline_from_now(plan.cap);
            let mut open: Option<Reading> = None;
            while let Some(mark) = bench.wait_for_any(&[MEASURE_BEGINS, MEASURE_ENDS], None)? {
                let now = read_guests(&mut bench, hogs);
                match (mark, open.take()) {
                    (0, _) => open = Some(now),
                    (_, Some(begin)) => cpu.add(&begin, &now),
                    // An end without a begin: nothing to count.
                    (_, None) => {}
                }
                cpu.marked = true;
            }
            let outcome = bench.wait(None)?;
            // A repetition cut short (cap, stall, crash) counts to the guest's end.
            if let Some(begin) = open {
                cpu.add(&begin, &read_ended(&outcome, hogs));
            }
            outcome
        } else {
            bench.kill()?
        };
        if cpu.spans == 0 {
            // Nothing marked: from the start line to the guest's end.
            cpu = SpannedCpu::default();
            cpu.add(&at_start, &read_ended(&outcome, hogs));
        }
        for hog in hogs.drain(..) {
            hog.kill()?;
        }
        if interrupted() {
            return Ok(None);
        }
        let mut report = collector.finish(COLLECT_GRACE);
        let metrics = report.runs.pop();
        if let Some(run) = &metrics {
            collect::write_run_files(run, dir)?;
        }
        save_log(dir, "bench", &outcome.serial_tail)?;
        Ok(Some(BenchRun {
            started,
            hogs_ready,
            work_start,
            outcome,
            cpu,
            metrics,
            host: None,
        }))
    }
}

/// Every guest's CPU and run delays now.
fn read_guests(bench: &mut Running, hogs: &mut [Running]) -> Reading {
    reading(
        bench.elapsed(),
        bench.cpu_seconds(),
        bench.vcpu_run_delays(),
        hogs,
    )
}

/// Every guest's CPU and run delays as the bench guest ended: its own from
/// its last readings, the hogs' now.
fn read_ended(outcome: &Outcome, hogs: &mut [Running]) -> Reading {
    reading(outcome.wall, outcome.cpu_s, outcome.vcpu_run_delays.clone(), hogs)
}

/// The bench guest's figures as given, with the hogs' read now.
fn reading(
    at: Duration,
    bench_cpu_s: f64,
    bench_delays: Option<Vec<Duration>>,
    hogs: &mut [Running],
) -> Reading {
    Reading {
        at,
        bench_cpu_s,
        bench_delays,
        hog_cpu_s: hogs.iter_mut().map(Running::cpu_seconds).collect(),
        hog_delays: hogs.iter_mut().map(Running::vcpu_run_delays).collect(),
    }
}

fn save_log(dir: &Path, name: &str, lines: &[String]) -> Result<(), RunError> {
    let path: PathBuf = dir.join(format!("{name}.serial.log"));
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(&path, text).map_err(|source| RunError::Io { path, source })
}
