//! Migration of a running guest to a fresh QEMU on the same host, through
//! QEMU's own migration: the destination starts with `-incoming` on a UNIX
//! socket, the source is told `migrate` over QMP, and once QEMU reports the
//! migration completed the source is killed and the destination becomes the
//! guest. Its serial console feeds the same line stream, so a reader of the
//! guest sees one console.
//!
//! Two kinds ([`MigrationKind`]): *live* (the guest runs while its memory is
//! copied, and stops only for the last dirty pages) and *paused* (QMP `stop`
//! first, the whole copy while stopped, `cont` on the destination). Under
//! QEMU 7.2 TCG, live migration damages guests that write memory hard on
//! several vCPUs: about 1 in 8 four-vCPU lock stresses (every lock mode,
//! `-accel tcg,thread=multi` and `thread=single` alike) end with a vCPU lost
//! in the kernel allocator after ~10 migrations, while 0 paused ones do
//! (results/migration). That fits writes TCG's dirty-page tracking misses (a
//! store that passed its TLB check before the migration thread re-armed the
//! page's not-dirty flag, landing after the page was sent), so pvbench
//! migrates paused under TCG by default; KVM tracks dirty pages in the host
//! kernel and migrates live. Both kinds carry the same CPU state: halted
//! vCPUs, pending NMIs and interrupts.
//!
//! A destination that fails to start, or a migration that fails, leaves the
//! source running and nothing else behind; the caller decides whether that
//! ends the guest.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use super::GuestConfig;
use crate::qmp::{Qmp, QmpError};
use crate::BootFiles;

/// How long a destination may take to open its sockets.
const DESTINATION_START: Duration = Duration::from_secs(20);
/// How long one migration may take before it is cancelled.
const MIGRATION_LIMIT: Duration = Duration::from_secs(120);
/// QMP reads and writes.
const QMP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a migration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The destination QEMU could not be started or exited before it listened.
    #[error("the migration destination did not start: {0}")]
    Destination(String),
    /// QMP failed on the source.
    #[error(transparent)]
    Qmp(#[from] QmpError),
    /// QEMU reported the migration failed or cancelled.
    #[error("QEMU reports the migration {status}: {reason}")]
    Failed {
        /// `failed` or `cancelled`.
        status: String,
        /// QEMU's `error-desc`, if it gave one.
        reason: String,
    },
    /// It did not complete in time and was cancelled.
    #[error("the migration did not complete in {0:?} and was cancelled")]
    TooSlow(Duration),
}

/// How the guest is moved (see the module's comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationKind {
    /// QEMU's live migration: iterative copy while the guest runs.
    Live,
    /// `stop`, migrate, `cont` on the destination: the guest is stopped for
    /// the whole copy, so no page can change behind the copy.
    Paused,
}

impl MigrationKind {
    /// What pvbench uses unless told otherwise: paused under TCG (live
    /// migration damages guests there), live under KVM.
    pub fn default_for(accel: crate::accel::Accel) -> MigrationKind {
        match accel {
            crate::accel::Accel::Kvm => MigrationKind::Live,
            crate::accel::Accel::Tcg => MigrationKind::Paused,
        }
    }

    /// The word for it (`live`, `paused`).
    pub fn name(self) -> &'static str {
        match self {
            MigrationKind::Live => "live",
            MigrationKind::Paused => "paused",
        }
    }
}

/// When and how a guest migrates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigratePlan {
    /// Time between the end of one migration and the start of the next.
    pub every: Duration,
    /// Live or paused.
    pub kind: MigrationKind,
}

/// What a guest's migrations amounted to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MigrationReport {
    /// How they were made.
    pub kind: Option<MigrationKind>,
    /// Migrations that completed.
    pub count: u32,
    /// Downtime of each, in milliseconds: the guest stopped on the source until
    /// it ran on the destination (live: QEMU's `downtime`; paused: measured by
    /// pvbench from `stop` to the destination's `cont`).
    pub downtimes_ms: Vec<u64>,
    /// Why the last attempt failed, if it did (the guest was then stopped).
    pub error: Option<String>,
}

/// The migration state of a running guest.
pub(super) struct Migration {
    pub(super) every: Duration,
    kind: MigrationKind,
    dir: PathBuf,
    pub(super) qemu: PathBuf,
    pub(super) image: BootFiles,
    pub(super) config: GuestConfig,
    /// Numbers the QEMUs of this guest: the current one's sockets.
    generation: u32,
    pub(super) last: Instant,
    pub(super) report: MigrationReport,
}

impl Migration {
    /// Sets up the socket directory of a guest that migrates every `every`.
    pub(super) fn new(
        plan: MigratePlan,
        qemu: &Path,
        image: &BootFiles,
        config: &GuestConfig,
    ) -> std::io::Result<Migration> {
        let dir = super::monitor::socket_dir("mig")?;
        Ok(Migration {
            every: plan.every,
            kind: plan.kind,
            dir,
            qemu: qemu.to_path_buf(),
            image: image.clone(),
            config: config.clone(),
            generation: 0,
            last: Instant::now(),
            report: MigrationReport {
                kind: Some(plan.kind),
                ..MigrationReport::default()
            },
        })
    }

    /// The QMP socket of QEMU number `generation`.
    pub(super) fn qmp_socket(&self, generation: u32) -> PathBuf {
        self.dir.join(format!("qmp-{generation}.sock"))
    }

    /// The socket QEMU number `generation` receives its migration on.
    pub(super) fn incoming_socket(&self, generation: u32) -> PathBuf {
        self.dir.join(format!("in-{generation}.sock"))
    }

    /// The current QEMU's number.
    pub(super) fn generation(&self) -> u32 {
        self.generation
    }

    /// Whether the next migration is due.
    pub(super) fn due(&self) -> bool {
        self.last.elapsed() >= self.every
    }

    /// QEMU's `-qmp` argument for QEMU number `generation`.
    pub(super) fn qmp_arg(&self, generation: u32) -> String {
        format!(
            "unix:{},server=on,wait=off",
            self.qmp_socket(generation).display()
        )
    }

    /// Waits until destination number `generation` accepts the migration;
    /// `exited` says whether its process is gone (then it never will).
    ///
    /// Both socket files existing is not enough: QEMU binds the incoming
    /// socket (the file appears) before it listens on it, and a `migrate` in
    /// between is refused (a soak run lost its guest to that: "Failed to
    /// connect to '.../in-14.sock': Connection refused"). QEMU runs QMP
    /// commands only from its main loop, which it enters after `-incoming`
    /// listens: `qmp_capabilities` answered (in `Qmp::connect`) closes the
    /// window.
    pub(super) fn wait_listening(&self, generation: u32, mut exited: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + DESTINATION_START;
        while Instant::now() < deadline {
            if self.qmp_socket(generation).exists() && self.incoming_socket(generation).exists() {
                let left = deadline.saturating_duration_since(Instant::now());
                if Qmp::connect(&self.qmp_socket(generation), left.min(QMP_TIMEOUT)).is_ok() {
                    return true;
                }
            }
            if exited() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Migrates the current QEMU to the one listening as `next`; returns the
    /// downtime in milliseconds. On failure the source is left running.
    pub(super) fn transfer(&self, next: u32) -> Result<u64, MigrateError> {
        let mut source = Qmp::connect(&self.qmp_socket(self.generation), QMP_TIMEOUT)?;
        match self.kind {
            MigrationKind::Live => self.copy(&mut source, next),
            MigrationKind::Paused => {
                let stopped = Instant::now();
                source.execute("stop", None)?;
                let resumed = self.copy(&mut source, next).and_then(|_| self.resume(next));
                if resumed.is_err() {
                    // The guest goes on where it was; if even this fails the
                    // caller kills the source.
                    let _ = source.execute("cont", None);
                }
                resumed.map(|()| u64::try_from(stopped.elapsed().as_millis()).unwrap_or(u64::MAX))
            }
        }
    }

    /// Runs QEMU's migration to `next` and waits for it; returns QEMU's downtime.
    fn copy(&self, source: &mut Qmp, next: u32) -> Result<u64, MigrateError> {
        let uri = format!("unix:{}", self.incoming_socket(next).display());
        source.execute("migrate", Some(json!({ "uri": uri })))?;
        let started = Instant::now();
        loop {
            let status = source.execute("query-migrate", None)?;
            let field = |name: &str| status.get(name).and_then(|v| v.as_str()).map(str::to_string);
            match field("status").as_deref() {
                Some("completed") => {
                    return Ok(status.get("downtime").and_then(|v| v.as_u64()).unwrap_or(0));
                }
                Some(s @ ("failed" | "cancelled")) => {
                    return Err(MigrateError::Failed {
                        status: s.to_string(),
                        reason: field("error-desc").unwrap_or_else(|| "no reason given".into()),
                    });
                }
                _ if started.elapsed() > MIGRATION_LIMIT => {
                    let _ = source.execute("migrate_cancel", None);
                    return Err(MigrateError::TooSlow(MIGRATION_LIMIT));
                }
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// Starts the guest on destination `next` once it has loaded the state
    /// (a stopped source's guest arrives stopped: QEMU does not start it).
    fn resume(&self, next: u32) -> Result<(), MigrateError> {
        let mut dest = Qmp::connect(&self.qmp_socket(next), QMP_TIMEOUT)?;
        let started = Instant::now();
        loop {
            let status = dest.execute("query-status", None)?;
            match status.get("status").and_then(|v| v.as_str()) {
                // Still receiving.
                Some("inmigrate") if started.elapsed() < MIGRATION_LIMIT => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Some("inmigrate") => return Err(MigrateError::TooSlow(MIGRATION_LIMIT)),
                Some("running") => return Ok(()),
                _ => {
                    dest.execute("cont", None)?;
                    return Ok(());
                }
            }
        }
    }

    /// The QMP socket of the QEMU that runs the guest now.
    pub(super) fn current_qmp_socket(&self) -> PathBuf {
        self.qmp_socket(self.generation)
    }

    /// QEMU number `next` is the guest now: forget the old one's sockets.
    pub(super) fn advance(&mut self, next: u32, downtime_ms: u64) {
        let _ = fs::remove_file(self.qmp_socket(self.generation));
        let _ = fs::remove_file(self.incoming_socket(self.generation));
        self.generation = next;
        self.last = Instant::now();
        self.report.count += 1;
        self.report.downtimes_ms.push(downtime_ms);
    }

    /// Forgets a destination that did not become the guest.
    pub(super) fn abandon(&self, next: u32) {
        let _ = fs::remove_file(self.qmp_socket(next));
        let _ = fs::remove_file(self.incoming_socket(next));
    }
}

impl Drop for Migration {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
