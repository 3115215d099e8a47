//! Running guests under QEMU: spawn, stream the serial console, sample the QEMU
//! process's CPU time, enforce a timeout, decode how it ended.
//!
//! No QEMU outlives pvbench: `Running` kills its QEMU when dropped, and every
//! QEMU gets SIGKILL from the kernel if pvbench itself dies (PR_SET_PDEATHSIG).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use pvbench_wire::cmdline::Cmdline;
use pvbench_wire::console::APP_PREFIX;
use pvbench_wire::exit::{GuestExit, Status};

use crate::accel::Accel;
use crate::interrupt::interrupted;
use crate::{qemu, tsc, BootFiles};

mod migrate;
mod monitor;
mod panic;
mod stall;
mod vcpu;

pub use migrate::{MigrateError, MigratePlan, MigrationKind, MigrationReport};
pub use monitor::compact_vcpu_states;

pub use panic::{GuestPanic, PanicSource, PanicWatch};
pub use stall::{NmiProbe, ProgressRule, StallKind, StallWatch, WindowUse};
pub use vcpu::delay_between;

/// Serial lines kept for error reports.
const TAIL_LINES: usize = 30;
/// Most vCPUs a guest may have.
pub const MAX_VCPUS: u32 = 64;
/// How often the QEMU process's CPU time (and its vCPUs' run delays) are
/// sampled while it runs.
const CPU_SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// How long a stalled guest is watched after pvbench injects an NMI into it
/// (see [`NmiProbe`]): long enough for a woken guest to show several windows'
/// worth of its idle-rule busy time, short beside the stall window.
const NMI_PROBE: Duration = Duration::from_secs(3);
/// vCPU-state samples taken of a guest about to be killed at its timeout, and
/// the time between them: long enough for a preempted lock holder to be run
/// by the host again even at 3x.
const CAP_SAMPLES: usize = 3;
const CAP_SAMPLE_GAP: Duration = Duration::from_millis(500);
/// How long a QEMU whose migration failed is given to show it was exiting by
/// itself (the guest ended) before the migration counts as failed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// How to run one guest: its machine, its command line, its limits.
#[derive(Debug, Clone)]
pub struct GuestConfig {
    /// 1 to [`MAX_VCPUS`].
    pub vcpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// What QEMU runs the guest on.
    pub accel: Accel,
    /// The guest's command line, its words checked as they were added.
    pub cmdline: Cmdline,
    /// From spawning QEMU until the guest is killed as [`Ended::TimedOut`].
    pub timeout: Duration,
    /// A virtio-net NIC on QEMU's user-mode network, where the guest reaches the
    /// host's loopback at `pvbench_wire::cmdline::HOST_ALIAS`.
    pub network: bool,
    /// Kill the guest as stalled if it idles through a window (see [`StallWatch`]).
    pub stall: Option<StallWatch>,
    /// Migrate the guest to a fresh QEMU, this often and this way (see `migrate`).
    pub migrate: Option<MigratePlan>,
    /// Write a stalled guest's memory here (an ELF core) before it is killed.
    pub dump_on_stall: Option<PathBuf>,
}

/// Why a guest could not be started or waited for.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// [`GuestConfig::vcpus`] is 0 or above [`MAX_VCPUS`].
    #[error("--vcpus {0}: a guest has 1 to {MAX_VCPUS} vCPUs")]
    BadVcpus(u32),
    /// QEMU could not be started.
    #[error("cannot start {qemu}: {source}")]
    Spawn {
        /// The QEMU binary, as given.
        qemu: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for QEMU to exit, or to die after SIGKILL, failed.
    #[error("waiting for QEMU (pid {pid}): {source}")]
    Wait {
        /// QEMU's process id.
        pid: u32,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// How the guest ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// QEMU exited by itself, with this code decoded.
    Exited(GuestExit),
    /// Killed after the timeout.
    TimedOut,
    /// Killed by pvbench (`Running::kill`).
    Killed,
    /// Killed as stalled (see [`StallWatch`]): in `window_ms` its QEMU used
    /// `cpu_ms` of CPU and its threads waited `delay_ms` for a host CPU (if
    /// known), together under `limit_ms`, and (for [`StallKind::NoProgress`])
    /// the guest completed nothing.
    Stalled {
        /// Which rule fired.
        kind: StallKind,
        /// QEMU's CPU time in the window.
        cpu_ms: u64,
        /// Its threads' run delay in the window, where the host reports it.
        delay_ms: Option<u64>,
        /// The busy time (CPU plus run delay) the rule asks for.
        limit_ms: u64,
        /// The window's length.
        window_ms: u64,
    },
    /// QEMU died from a signal (not ours).
    Signaled,
    /// A migration failed; the guest was stopped (the reason is in
    /// [`Outcome::migrations`]).
    MigrationFailed,
}

/// How a guest run went: how it ended, what it cost, what it printed.
#[derive(Debug)]
pub struct Outcome {
    /// How the guest ended.
    pub ended: Ended,
    /// QEMU's process id, for messages.
    pub pid: u32,
    /// From spawning QEMU to its end.
    pub wall: Duration,
    /// CPU seconds (user + system) of the QEMU process, last sample.
    pub cpu_s: f64,
    /// From spawning QEMU to the application's first line.
    pub first_app_line: Option<Duration>,
    /// The last serial lines (at most 30), for error reports.
    pub serial_tail: Vec<String>,
    /// Everything QEMU wrote to stderr.
    pub qemu_stderr: String,
    /// The first panic the guest printed, kernel or application.
    pub panic: Option<GuestPanic>,
    /// Each vCPU thread's run delay since QEMU started, last sample (see
    /// [`Running::vcpu_run_delays`]).
    pub vcpu_run_delays: Option<Vec<Duration>>,
    /// The guest's migrations, if it was to migrate.
    pub migrations: Option<MigrationReport>,
    /// Where each vCPU was when pvbench killed the guest as hung (timed out
    /// or stalled): QEMU's `CPU#n` / `RIP=...` lines (instruction pointer,
    /// flags, halt state), if it answered. Every guest has a monitor to ask.
    pub vcpus_at_kill: Option<String>,
    /// What a guest killed as stalled did after an NMI injected just before
    /// the kill, if its QEMU took the NMI.
    pub nmi_probe: Option<NmiProbe>,
    /// Where a stalled guest's memory was written, or why it was not (only
    /// with [`GuestConfig::dump_on_stall`]).
    pub memory_dump: Option<String>,
}

impl Outcome {
    /// Whether the guest exited with status 0 or the kernel shut down cleanly.
    pub fn succeeded(&self) -> bool {
        matches!(self.ended, Ended::Exited(exit) if exit.is_success())
    }

    /// One line describing the end, for users.
    pub fn describe(&self) -> String {
        match self.ended {
            Ended::Exited(GuestExit::Status(s)) => match Status::from_code(s) {
                Some(status) if s != 0 => format!("guest exited with status {s} ({})", status.meaning()),
                _ => format!("guest exited with status {s}"),
            },
            Ended::Exited(GuestExit::KernelSuccess) => "guest kernel shut down cleanly".into(),
            Ended::Exited(GuestExit::KernelFailure) => match &self.panic {
                Some(panic) => panic.to_string(),
                None => "guest kernel reported a failure (abort, no panic message on the console)".into(),
            },
            Ended::Exited(GuestExit::NoReport(code)) => {
                format!("QEMU exited with code {code} without a report from the guest")
            }
            Ended::TimedOut => format!("guest did not finish in time; QEMU (pid {}) was killed", self.pid),
            Ended::Killed => format!("QEMU (pid {}) was stopped by pvbench", self.pid),
            Ended::Stalled {
                kind,
                cpu_ms,
                delay_ms,
                limit_ms,
                window_ms,
            } => format!(
                "guest stalled: {} and its QEMU used {:.2} s of CPU{} in {:.0} s (under {:.2} s) \
                 while the guest had not finished (every vCPU idle: all guest tasks blocked, a \
                 lost wakeup); QEMU (pid {}) was killed",
                match kind {
                    StallKind::Idle => "it was idle",
                    StallKind::NoProgress => "it completed no operation",
                },
                cpu_ms as f64 / 1e3,
                delay_ms.map_or(String::new(), |d| format!(
                    " and waited {:.2} s for a host CPU",
                    d as f64 / 1e3
                )),
                window_ms as f64 / 1e3,
                limit_ms as f64 / 1e3,
                self.pid
            ),
            Ended::Signaled => "QEMU was killed by a signal".into(),
            Ended::MigrationFailed => format!(
                "{} migration {} failed: {}; the guest was stopped",
                self.migrations
                    .as_ref()
                    .and_then(|m| m.kind)
                    .map_or("live", MigrationKind::name),
                self.migrations.as_ref().map_or(1, |m| m.count + 1),
                self.migrations
                    .as_ref()
                    .and_then(|m| m.error.as_deref())
                    .unwrap_or("no reason recorded")
            ),
        }
    }
}

/// The QEMU command for a guest.
pub fn command(qemu: &Path, image: &BootFiles, config: &GuestConfig) -> Result<Command, GuestError> {
    if config.vcpus == 0 || config.vcpus > MAX_VCPUS {
        return Err(GuestError::BadVcpus(config.vcpus));
    }
    let mut cmdline = config.cmdline.clone();
    // The guest's clock from the host's, not from PIT ticks that QEMU delivers
    // late under overcommit (see `tsc`).
    if let Some(mhz) = tsc::host_mhz() {
        cmdline.tsc_mhz(mhz);
    }
    let mut cmd = Command::new(qemu);
    cmd.args(config.accel.qemu_args())
        .args(qemu::common_args(config.vcpus, config.memory_mib, &image.loader))
        .arg("-initrd")
        .arg(&image.app)
        .arg("-append")
        .arg(cmdline.to_append());
    if config.network {
        cmd.args(qemu::network_args());
    }
    Ok(cmd)
}

/// A guest that is running.
pub struct Running {
    child: Option<Child>,
    pid: u32,
    started: Instant,
    timeout: Duration,
    lines: Receiver<(Duration, String)>,
    reader: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<String>>,
    tail: VecDeque<String>,
    first_app_line: Option<Duration>,
    cpu_s: f64,
    last_cpu_sample: Option<Instant>,
    stall: Option<StallWindow>,
    panic: PanicWatch,
    vcpu_threads: vcpu::VcpuThreads,
    vcpu_run_delays: Option<Vec<Duration>>,
    /// Feeds `lines` from each QEMU's console (a migrated guest has several).
    lines_tx: mpsc::Sender<(Duration, String)>,
    migration: Option<migrate::Migration>,
    /// The QMP socket of a guest that does not migrate.
    monitor: Option<monitor::Monitor>,
    vcpus_at_kill: Option<String>,
    nmi_probe: Option<NmiProbe>,
    dump_on_stall: Option<PathBuf>,
    memory_dump: Option<String>,
    /// CPU, run delays and stderr of the QEMUs the guest migrated away from.
    earlier_cpu_s: f64,
    earlier_run_delays: Vec<Duration>,
    earlier_stderr: String,
    /// How the guest ended, once [`Running::wait_for_any`] saw it end.
    ended: Option<Ended>,
}

/// What one round of [`Running::watch`] saw.
enum Watched {
    /// A line starting with the prefix of this index.
    Line(usize),
    Ended(Ended),
}

/// A [`StallWatch`] and where its current window began.
struct StallWindow {
    watch: StallWatch,
    since: Instant,
    /// The QEMU's CPU and run delay at the window's start.
    then: stall::Usage,
    ops_then: u64,
}

/// One console line from its bytes (lossy UTF-8, without its line ending).
fn console_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches(['\n', '\r'])
        .to_string()
}

/// A started QEMU: the process, its console reader (which returns the
/// console's last bytes if no newline ended them) and its stderr reader.
type Started = (Child, JoinHandle<Vec<u8>>, JoinHandle<String>);

/// Starts `cmd` as a guest's QEMU whose console lines go to `lines_tx`,
/// stamped with the time since `started`. A migration's destination gets
/// `carry_in`: the source's unterminated last line, sent once the source has
/// ended, which begins the destination's first line (a line the guest was
/// writing when it moved is one line, not two halves).
fn start(
    qemu: &Path,
    mut cmd: Command,
    started: Instant,
    lines_tx: mpsc::Sender<(Duration, String)>,
    carry_in: Option<mpsc::Receiver<Vec<u8>>>,
) -> Result<Started, GuestError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only makes
    // the async-signal-safe prctl system call.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|source| GuestError::Spawn {
        qemu: qemu.display().to_string(),
        source,
    })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let reader = thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut carry_in = carry_in;
        // The source's bytes before ours (none if the migration was given up:
        // then the source goes on and keeps them).
        let prepend_carry = |carry: mpsc::Receiver<Vec<u8>>, buf: &mut Vec<u8>| {
            let mut line = carry.recv().unwrap_or_default();
            line.append(buf);
            *buf = line;
        };
        let mut buf = Vec::new();
        // Serial output is bytes, not necessarily UTF-8 or newline-terminated.
        while stdout.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) && buf.ends_with(b"\n") {
            if let Some(carry) = carry_in.take() {
                prepend_carry(carry, &mut buf);
            }
            if lines_tx.send((started.elapsed(), console_line(&buf))).is_err() {
                break;
            }
            buf.clear();
        }
        // End of output: bytes without a newline are the caller's (the next
        // QEMU's first line begins with them, or they are the guest's last).
        if let Some(carry) = carry_in.filter(|_| !buf.is_empty()) {
            prepend_carry(carry, &mut buf);
        }
        buf
    });
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stderr = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    Ok((child, reader, stderr))
}

/// Starts a guest; its console is read in the background.
pub fn spawn(qemu: &Path, image: &BootFiles, config: &GuestConfig) -> Result<Running, GuestError> {
    let mut cmd = command(qemu, image, config)?;
    let migration = match config.migrate {
        None => None,
        Some(plan) => {
            let m =
                migrate::Migration::new(plan, qemu, image, config).map_err(|source| GuestError::Spawn {
                    qemu: qemu.display().to_string(),
                    source,
                })?;
            cmd.arg("-qmp").arg(m.qmp_arg(m.generation()));
            Some(m)
        }
    };
    // Every other guest gets a monitor too: a hung one is asked where its
    // vCPUs are before it is killed.
    let monitor = match migration {
        Some(_) => None,
        None => {
            let m = monitor::Monitor::new().map_err(|source| GuestError::Spawn {
                qemu: qemu.display().to_string(),
                source,
            })?;
            cmd.arg("-qmp").arg(m.qmp_arg());
            Some(m)
        }
    };
    let started = Instant::now();
    let (lines_tx, lines) = mpsc::channel();
    let (child, reader, stderr) = start(qemu, cmd, started, lines_tx.clone(), None)?;
    let pid = child.id();
    Ok(Running {
        child: Some(child),
        pid,
        started,
        timeout: config.timeout,
        lines,
        reader: Some(reader),
        stderr: Some(stderr),
        tail: VecDeque::with_capacity(TAIL_LINES),
        first_app_line: None,
        cpu_s: 0.0,
        last_cpu_sample: None,
        stall: config.stall.clone().map(|watch| StallWindow {
            ops_then: watch.progress.as_ref().map_or(0, |p| p.ops()),
            watch,
            since: started,
            then: stall::Usage::of(pid),
        }),
        panic: PanicWatch::default(),
        vcpu_threads: vcpu::VcpuThreads::new(pid, config.vcpus),
        vcpu_run_delays: None,
        lines_tx,
        migration,
        monitor,
        vcpus_at_kill: None,
        nmi_probe: None,
        dump_on_stall: config.dump_on_stall.clone(),
        memory_dump: None,
        earlier_cpu_s: 0.0,
        earlier_run_delays: Vec::new(),
        earlier_stderr: String::new(),
        ended: None,
    })
}

impl Running {
    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// From now on the guest has `limit` before it is killed as timed out.
    pub fn set_deadline_from_now(&mut self, limit: Duration) {
        self.timeout = self.started.elapsed().saturating_add(limit);
    }

    /// Time since QEMU was started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// CPU seconds the QEMU process has used so far.
    pub fn cpu_seconds(&mut self) -> f64 {
        self.sample_cpu();
        self.cpu_s
    }

    /// Each vCPU thread's run delay so far (time runnable but waiting for a
    /// host CPU), by vCPU index; `None` where the host kernel keeps no
    /// schedstats or QEMU's vCPU threads are not (yet) found. Sampled with
    /// the CPU time while the guest runs, so a guest's outcome has the last
    /// reading before it ended.
    pub fn vcpu_run_delays(&mut self) -> Option<Vec<Duration>> {
        self.sample_cpu();
        self.vcpu_run_delays.clone()
    }

    /// Waits until a serial line starts with `prefix`; false if the guest ended,
    /// `timeout` passed or pvbench was interrupted first.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration, mut echo: Echo<'_>) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || interrupted() {
                return false;
            }
            match self.lines.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(line) => {
                    let hit = line.1.starts_with(prefix);
                    self.take_line(line, &mut echo);
                    if hit {
                        return true;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self
                        .child
                        .as_mut()
                        .is_some_and(|c| c.try_wait().ok().flatten().is_some())
                    {
                        return false;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Waits for the guest to end (or kills it at its timeout).
    pub fn wait(mut self, mut echo: Echo<'_>) -> Result<Outcome, GuestError> {
        let ended = match self.ended.take() {
            Some(ended) => ended,
            None => loop {
                if let Watched::Ended(ended) = self.watch(&[], &mut echo)? {
                    break ended;
                }
            },
        };
        Ok(self.finish(ended, echo))
    }

    /// Watches the guest as [`Running::wait`] does (its cap, stall watch and
    /// migrations included) until a serial line starts with one of
    /// `prefixes`: `Some(index)` of the prefix, or `None` once the guest has
    /// ended (then `wait` returns its outcome at once).
    pub fn wait_for_any(
        &mut self,
        prefixes: &[&str],
        mut echo: Echo<'_>,
    ) -> Result<Option<usize>, GuestError> {
        if self.ended.is_some() {
            return Ok(None);
        }
        match self.watch(prefixes, &mut echo)? {
            Watched::Line(index) => Ok(Some(index)),
            Watched::Ended(ended) => {
                self.ended = Some(ended);
                Ok(None)
            }
        }
    }

    /// One round of watching: the next serial line (if it matches a prefix),
    /// the guest's end, or nothing yet.
    fn watch(&mut self, prefixes: &[&str], echo: &mut Echo<'_>) -> Result<Watched, GuestError> {
        loop {
            match self.lines.recv_timeout(Duration::from_millis(5)) {
                Ok(line) => {
                    let hit = prefixes.iter().position(|p| line.1.starts_with(p));
                    self.take_line(line, echo);
                    if let Some(index) = hit {
                        return Ok(Watched::Line(index));
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
            self.sample_cpu_every(CPU_SAMPLE_EVERY);
            if let Some(ended) = self.exited()? {
                return Ok(Watched::Ended(ended));
            }
            if self.started.elapsed() >= self.timeout {
                self.note_vcpu_states(CAP_SAMPLES);
                self.kill_child()?;
                return Ok(Watched::Ended(Ended::TimedOut));
            }
            if let Some(stalled) = self.check_stall() {
                self.note_vcpu_states(1);
                // The memory first: the NMI changes what it would show.
                self.dump_memory();
                self.nmi_probe = self.probe_with_nmi();
                self.kill_child()?;
                return Ok(Watched::Ended(stalled));
            }
            if self.migration.as_ref().is_some_and(migrate::Migration::due) {
                if let Err(e) = self.migrate() {
                    // A guest that ended by itself while its migration was
                    // being set up took the source QEMU (and its QMP socket)
                    // with it: that is its own exit, not a failed migration.
                    // QEMU closes its monitor before its process ends, and
                    // under overcommit the rest of its exit waits for a host
                    // core: seen in the soak as "Connection reset by peer" on
                    // a guest that had printed its exit status.
                    if let Some(ended) = self.exited_within(EXIT_GRACE)? {
                        return Ok(Watched::Ended(ended));
                    }
                    if let Some(m) = self.migration.as_mut() {
                        m.report.error = Some(e.to_string());
                    }
                    self.kill_child()?;
                    return Ok(Watched::Ended(Ended::MigrationFailed));
                }
            }
            if interrupted() {
                self.kill_child()?;
                return Ok(Watched::Ended(Ended::Killed));
            }
        }
    }

    /// Stops the guest now.
    pub fn kill(mut self) -> Result<Outcome, GuestError> {
        self.sample_cpu();
        self.kill_child()?;
        Ok(self.finish(Ended::Killed, None))
    }

    /// How QEMU ended, if it exits by itself within `grace`.
    fn exited_within(&mut self, grace: Duration) -> Result<Option<Ended>, GuestError> {
        let deadline = Instant::now() + grace;
        loop {
            if let Some(ended) = self.exited()? {
                return Ok(Some(ended));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How QEMU ended, if it has exited by itself.
    fn exited(&mut self) -> Result<Option<Ended>, GuestError> {
        let pid = self.pid;
        let child = self.child.as_mut().expect("child until finish");
        let status = child
            .try_wait()
            .map_err(|source| GuestError::Wait { pid, source })?;
        Ok(status.map(|status| match status.code() {
            Some(code) => Ended::Exited(GuestExit::from_qemu_code(code)),
            None => Ended::Signaled,
        }))
    }

    fn kill_child(&mut self) -> Result<(), GuestError> {
        // SIGKILL: a hung guest cannot be asked nicely, and nothing of it is kept.
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let pid = self.pid;
            child.wait().map_err(|source| GuestError::Wait { pid, source })?;
        }
        Ok(())
    }

    fn finish(mut self, ended: Ended, mut echo: Echo<'_>) -> Outcome {
        let wall = self.started.elapsed();
        self.child = None;
        // QEMU is gone, so the pipes close and the readers finish.
        let last = self.reader.take().and_then(|r| r.join().ok()).unwrap_or_default();
        while let Ok(line) = self.lines.try_recv() {
            self.take_line(line, &mut echo);
        }
        // The guest's last output, if no newline ended it.
        if !last.is_empty() {
            self.take_line((wall, console_line(&last)), &mut echo);
        }
        let mut qemu_stderr = std::mem::take(&mut self.earlier_stderr);
        qemu_stderr.push_str(&self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default());
        Outcome {
            ended,
            pid: self.pid,
            wall,
            cpu_s: self.cpu_s,
            first_app_line: self.first_app_line,
            serial_tail: std::mem::take(&mut self.tail).into(),
            qemu_stderr,
            panic: self.panic.panic().cloned(),
            vcpu_run_delays: self.vcpu_run_delays.take(),
            migrations: self.migration.take().map(|m| m.report.clone()),
            vcpus_at_kill: self.vcpus_at_kill.take(),
            nmi_probe: self.nmi_probe.take(),
            memory_dump: self.memory_dump.take(),
        }
    }

    fn take_line(&mut self, (at, line): (Duration, String), echo: &mut Echo<'_>) {
        if self.first_app_line.is_none() && line.starts_with(APP_PREFIX) {
            self.first_app_line = Some(at);
        }
        if let Some(out) = echo.as_deref_mut() {
            let _ = writeln!(out, "{line}");
        }
        self.panic.feed(&line);
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    /// Closes the stall window if it is over: `Some` if the guest stalled in it.
    fn check_stall(&mut self) -> Option<Ended> {
        let pid = self.pid;
        let window = self.stall.as_mut()?;
        if window.since.elapsed() < window.watch.window {
            return None;
        }
        let now = stall::Usage::of(pid);
        let used = now.since(&window.then);
        let ops_now = window.watch.progress.as_ref().map(ProgressRule::ops);
        let done = ops_now.map(|now| now.saturating_sub(window.ops_then));
        if let Some(kind) = window.watch.stalled(used, done) {
            return Some(Ended::Stalled {
                kind,
                cpu_ms: used.cpu.as_millis() as u64,
                delay_ms: used.run_delay.map(|d| d.as_millis() as u64),
                limit_ms: window.watch.limit(kind).as_millis() as u64,
                window_ms: window.since.elapsed().as_millis() as u64,
            });
        }
        window.since = Instant::now();
        window.then = now;
        window.ops_then = ops_now.unwrap_or(0);
        None
    }

    fn sample_cpu_every(&mut self, every: Duration) {
        if self.last_cpu_sample.is_none_or(|t| t.elapsed() >= every) {
            self.sample_cpu();
        }
    }

    /// Reads utime + stime from /proc; the zombie keeps them until reaped, so the
    /// last sample before `try_wait` reaps is (nearly) the final figure.
    fn sample_cpu(&mut self) {
        self.last_cpu_sample = Some(Instant::now());
        // Earlier QEMUs (a migrated guest) count too.
        if let Some(cpu) = process_cpu_seconds(self.pid) {
            self.cpu_s = self.earlier_cpu_s + cpu;
        }
        // Kept from the last reading once the threads are gone (QEMU exiting).
        if let Some(mut delays) = self.vcpu_threads.run_delays() {
            for (d, earlier) in delays.iter_mut().zip(&self.earlier_run_delays) {
                *d += *earlier;
            }
            self.vcpu_run_delays = Some(delays);
        }
    }

    /// The QMP socket of the QEMU running the guest now.
    fn qmp_socket(&self) -> Option<PathBuf> {
        match (&self.migration, &self.monitor) {
            (Some(m), _) => Some(m.current_qmp_socket()),
            (None, Some(monitor)) => Some(monitor.socket()),
            (None, None) => None,
        }
    }

    /// Where a guest about to be killed as hung is, if its QEMU answers:
    /// `samples` readings [`CAP_SAMPLE_GAP`] apart, one after the other. At a
    /// timeout ([`CAP_SAMPLES`]) they are kept with the censored cell as
    /// evidence, not a verdict: a spin-lock deadlock shows every vCPU in one
    /// spin loop with interrupts off in every sample, and so does a fair
    /// lock's collapse under overcommit (measured: 4-vCPU base and qspin
    /// guests at 3x, no build job in 15 s).
    fn note_vcpu_states(&mut self, samples: usize) {
        let Some(socket) = self.qmp_socket() else {
            return;
        };
        let mut taken = Vec::new();
        for i in 0..samples {
            if i > 0 {
                std::thread::sleep(CAP_SAMPLE_GAP);
            }
            match monitor::vcpu_states(&socket) {
                Some(s) => taken.push(s),
                None => break,
            }
        }
        self.vcpus_at_kill = (!taken.is_empty()).then(|| taken.join("\n"));
    }

    /// Writes the stalled guest's memory where [`GuestConfig::dump_on_stall`]
    /// says, if it says so.
    fn dump_memory(&mut self) {
        let Some(path) = self.dump_on_stall.clone() else {
            return;
        };
        self.memory_dump = Some(match self.qmp_socket() {
            None => "no QMP monitor to dump the guest's memory with".to_string(),
            Some(socket) => match monitor::dump_memory(&socket, &path) {
                Ok(()) => format!(
                    "the stalled guest's memory is in {} (an ELF core)",
                    path.display()
                ),
                Err(e) => format!(
                    "could not dump the stalled guest's memory to {}: {e}",
                    path.display()
                ),
            },
        });
    }

    /// Injects an NMI into a stalled guest and watches it for [`NMI_PROBE`]
    /// (see [`NmiProbe`]); `None` if QEMU did not take the NMI.
    fn probe_with_nmi(&mut self) -> Option<NmiProbe> {
        let socket = self.qmp_socket()?;
        let watch = self.stall.as_ref()?.watch.scaled(NMI_PROBE);
        let ops_before = watch.progress.as_ref().map(ProgressRule::ops);
        let before = stall::Usage::of(self.pid);
        let since = Instant::now();
        if !monitor::inject_nmi(&socket) {
            return None;
        }
        // The console lines wait in their channel meanwhile.
        thread::sleep(NMI_PROBE.saturating_sub(since.elapsed()));
        let used = stall::Usage::of(self.pid).since(&before);
        let ops = watch
            .progress
            .as_ref()
            .map(ProgressRule::ops)
            .zip(ops_before)
            .map(|(now, then)| now.saturating_sub(then));
        Some(NmiProbe {
            ran_again: watch.stalled(used, ops).is_none(),
            cpu_ms: used.cpu.as_millis() as u64,
            ops,
            window_ms: since.elapsed().as_millis() as u64,
        })
    }

    /// Migrates the guest to a fresh QEMU (see `migrate`). On failure the
    /// destination is gone and the source still runs.
    fn migrate(&mut self) -> Result<(), MigrateError> {
        let m = self.migration.as_ref().expect("only called with a migration");
        let next = m.generation() + 1;
        let mut cmd =
            command(&m.qemu, &m.image, &m.config).map_err(|e| MigrateError::Destination(e.to_string()))?;
        cmd.arg("-qmp")
            .arg(m.qmp_arg(next))
            .arg("-incoming")
            .arg(format!("unix:{}", m.incoming_socket(next).display()));
        let (carry_tx, carry_rx) = mpsc::channel();
        let (mut dest, dest_reader, dest_stderr) =
            start(&m.qemu, cmd, self.started, self.lines_tx.clone(), Some(carry_rx))
                .map_err(|e| MigrateError::Destination(e.to_string()))?;
        let give_up = |dest: &mut Child, reader: JoinHandle<Vec<u8>>, stderr: JoinHandle<String>| {
            let _ = dest.kill();
            let _ = dest.wait();
            let _ = reader.join();
            stderr.join().unwrap_or_default()
        };
        if !m.wait_listening(next, || dest.try_wait().ok().flatten().is_some()) {
            // First: a destination reader waiting for the carry then ends.
            drop(carry_tx);
            let why = give_up(&mut dest, dest_reader, dest_stderr);
            m.abandon(next);
            return Err(MigrateError::Destination(if why.trim().is_empty() {
                "it opened no sockets in time".into()
            } else {
                why.trim().to_string()
            }));
        }
        let downtime = match m.transfer(next) {
            Ok(downtime) => downtime,
            Err(e) => {
                drop(carry_tx);
                give_up(&mut dest, dest_reader, dest_stderr);
                m.abandon(next);
                return Err(e);
            }
        };
        // The source has stopped for good: fold its costs in, then swap.
        self.sample_cpu();
        self.earlier_cpu_s = self.cpu_s;
        self.earlier_run_delays = self.vcpu_run_delays.clone().unwrap_or_default();
        let _ = self.kill_child();
        // The source's unterminated last line goes to the destination's first.
        let carry = self.reader.take().and_then(|r| r.join().ok()).unwrap_or_default();
        let _ = carry_tx.send(carry);
        if let Some(stderr) = self.stderr.take() {
            self.earlier_stderr.push_str(&stderr.join().unwrap_or_default());
        }
        self.pid = dest.id();
        self.child = Some(dest);
        self.reader = Some(dest_reader);
        self.stderr = Some(dest_stderr);
        self.vcpu_threads =
            vcpu::VcpuThreads::new(self.pid, self.migration.as_ref().map_or(1, |m| m.config.vcpus));
        if let Some(window) = self.stall.as_mut() {
            window.since = Instant::now();
            window.then = stall::Usage::of(self.pid);
        }
        if let Some(m) = self.migration.as_mut() {
            m.advance(next, downtime);
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.kill_child();
    }
}

/// Where serial lines are echoed as they arrive, if anywhere.
pub type Echo<'a> = Option<&'a mut (dyn Write + Send)>;

/// Boots a guest and waits for it; serial lines go to `echo` as they arrive.
pub fn run(
    qemu: &Path,
    image: &BootFiles,
    config: &GuestConfig,
    echo: Echo<'_>,
) -> Result<Outcome, GuestError> {
    spawn(qemu, image, config)?.wait(echo)
}

/// User + system CPU seconds of a process, from /proc/PID/stat.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is parenthesised and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_of_a_busy_process_grow() {
        let me = std::process::id();
        let before = process_cpu_seconds(me).expect("own /proc stat");
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let after = process_cpu_seconds(me).unwrap();
        assert!(after > before, "{before} -> {after}");
        assert_eq!(process_cpu_seconds(u32::MAX), None);
    }
}
