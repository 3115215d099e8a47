//! Running one guest under QEMU: spawn, stream its serial console, enforce a
//! timeout, decode how it ended. No QEMU process outlives `run`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use pvbench_wire::cmdline::APP_ARGS_SEPARATOR;
use pvbench_wire::exit::GuestExit;

use crate::accel::Accel;
use crate::build::Image;
use crate::qemu;

/// Serial lines kept for error reports.
const TAIL_LINES: usize = 30;
/// Lines the guest application prints start with this.
pub const APP_LINE_PREFIX: &str = "pvbench-guest:";
pub const MAX_VCPUS: u32 = 64;

#[derive(Debug, Clone)]
pub struct GuestConfig {
    pub vcpus: u32,
    pub memory_mib: u32,
    pub accel: Accel,
    /// Words for the kernel (before `--` on the command line).
    pub kernel_args: Vec<String>,
    /// Words for the application (after `--`).
    pub app_args: Vec<String>,
    pub timeout: Duration,
    /// A virtio-net NIC on QEMU's user-mode network, where the guest reaches the
    /// host's loopback at `pvbench_wire::cmdline::HOST_ALIAS`.
    pub network: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("--vcpus {0}: a guest has 1 to {MAX_VCPUS} vCPUs")]
    BadVcpus(u32),
    #[error(
        "guest argument {0:?} contains white space or quotes, which the kernel command line cannot carry"
    )]
    BadArgument(String),
    #[error("cannot start {qemu}: {source}")]
    Spawn {
        qemu: String,
        #[source]
        source: std::io::Error,
    },
    #[error("waiting for QEMU (pid {pid}): {source}")]
    Wait {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
}

/// How the guest ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(GuestExit),
    /// Killed after the timeout.
    TimedOut,
    /// QEMU died from a signal (not ours).
    Signaled,
}

#[derive(Debug)]
pub struct Outcome {
    pub ended: Ended,
    pub pid: u32,
    pub wall: Duration,
    /// From spawning QEMU to the application's first line.
    pub first_app_line: Option<Duration>,
    pub serial_tail: Vec<String>,
    pub qemu_stderr: String,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        matches!(self.ended, Ended::Exited(exit) if exit.is_success())
    }

    /// One line describing the end, for users.
    pub fn describe(&self) -> String {
        match self.ended {
            Ended::Exited(GuestExit::Status(s)) => format!("guest exited with status {s}"),
            Ended::Exited(GuestExit::KernelSuccess) => "guest kernel shut down cleanly".into(),
            Ended::Exited(GuestExit::KernelFailure) => {
                "guest kernel reported a failure (panic or abort)".into()
            }
            Ended::Exited(GuestExit::NoReport(code)) => {
                format!("QEMU exited with code {code} without a report from the guest")
            }
            Ended::TimedOut => format!("guest did not finish in time; QEMU (pid {}) was killed", self.pid),
            Ended::Signaled => "QEMU was killed by a signal".into(),
        }
    }
}

/// The QEMU command for a guest.
pub fn command(qemu: &Path, image: &Image, config: &GuestConfig) -> Result<Command, GuestError> {
    if config.vcpus == 0 || config.vcpus > MAX_VCPUS {
        return Err(GuestError::BadVcpus(config.vcpus));
    }
    let words = config.kernel_args.iter().chain(&config.app_args);
    if let Some(bad) = words
        .clone()
        .find(|w| w.is_empty() || w.contains(|c: char| c.is_whitespace() || c == '"' || c == '\''))
    {
        return Err(GuestError::BadArgument(bad.clone()));
    }
    let mut append: Vec<&str> = config.kernel_args.iter().map(String::as_str).collect();
    append.push(APP_ARGS_SEPARATOR);
    append.extend(config.app_args.iter().map(String::as_str));

    let mut cmd = Command::new(qemu);
    cmd.args(config.accel.qemu_args())
        .args(qemu::common_args(
            config.vcpus,
            config.memory_mib,
            &image.loader(),
        ))
        .arg("-initrd")
        .arg(image.app())
        .arg("-append")
        .arg(append.join(" "));
    if config.network {
        cmd.args(qemu::network_args());
    }
    Ok(cmd)
}

/// Boots a guest and waits for it; serial lines go to `echo` as they arrive.
pub fn run(
    qemu: &Path,
    image: &Image,
    config: &GuestConfig,
    mut echo: Option<&mut (dyn Write + Send)>,
) -> Result<Outcome, GuestError> {
    let mut cmd = command(qemu, image, config)?;
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| GuestError::Spawn {
            qemu: qemu.display().to_string(),
            source,
        })?;
    let pid = child.id();

    let (lines_tx, lines_rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout is piped");
    let reader = thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut buf = Vec::new();
        // Serial output is bytes, not necessarily UTF-8 or newline-terminated.
        while stdout.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\n', '\r'])
                .to_string();
            if lines_tx.send((started.elapsed(), line)).is_err() {
                break;
            }
            buf.clear();
        }
    });
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let mut first_app_line = None;
    let mut handle_line = |(at, line): (Duration, String)| {
        if first_app_line.is_none() && line.starts_with(APP_LINE_PREFIX) {
            first_app_line = Some(at);
        }
        if let Some(out) = echo.as_deref_mut() {
            let _ = writeln!(out, "{line}");
        }
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    };

    let ended = loop {
        match lines_rx.recv_timeout(Duration::from_millis(5)) {
            Ok(line) => handle_line(line),
            Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {}
        }
        if let Some(status) = child
            .try_wait()
            .map_err(|source| GuestError::Wait { pid, source })?
        {
            break match status.code() {
                Some(code) => Ended::Exited(GuestExit::from_qemu_code(code)),
                None => Ended::Signaled,
            };
        }
        if started.elapsed() >= config.timeout {
            kill(&mut child, pid)?;
            break Ended::TimedOut;
        }
    };
    let wall = started.elapsed();
    // QEMU is gone, so the pipes close and the readers finish.
    let _ = reader.join();
    for line in lines_rx.try_iter() {
        handle_line(line);
    }
    let qemu_stderr = stderr_reader.join().unwrap_or_default();
    Ok(Outcome {
        ended,
        pid,
        wall,
        first_app_line,
        serial_tail: tail.into(),
        qemu_stderr,
    })
}

fn kill(child: &mut Child, pid: u32) -> Result<(), GuestError> {
    // SIGKILL: a hung guest cannot be asked nicely, and nothing of it is kept.
    let _ = child.kill();
    child
        .wait()
        .map(drop)
        .map_err(|source| GuestError::Wait { pid, source })
}
