//! Live migration of a running guest to a fresh QEMU on the same host, through
//! QEMU's own migration: the destination starts with `-incoming` on a UNIX
//! socket, the source is told `migrate` over QMP, and once QEMU reports the
//! migration completed the source is killed and the destination, which
//! resumes by itself, becomes the guest. Its serial console feeds the same
//! line stream, so a reader of the guest sees one console.
//!
//! A destination that fails to start, or a migration that fails, leaves the
//! source running and nothing else behind; the caller decides whether that
//! ends the guest.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
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

/// What a guest's migrations amounted to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MigrationReport {
    /// Migrations that completed.
    pub count: u32,
    /// QEMU's downtime of each, in milliseconds (the guest stopped on the
    /// source until it ran on the destination).
    pub downtimes_ms: Vec<u64>,
    /// Why the last attempt failed, if it did (the guest was then stopped).
    pub error: Option<String>,
}

/// The migration state of a running guest.
pub(super) struct Migration {
    pub(super) every: Duration,
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
        every: Duration,
        qemu: &Path,
        image: &BootFiles,
        config: &GuestConfig,
    ) -> std::io::Result<Migration> {
        // Unique per process and guest; short, since a UNIX socket path is
        // limited to 108 bytes.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pvbench-mig-{}-{}",
            std::process::id(),
            // Relaxed: only uniqueness matters.
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir)?;
        Ok(Migration {
            every,
            dir,
            qemu: qemu.to_path_buf(),
            image: image.clone(),
            config: config.clone(),
            generation: 0,
            last: Instant::now(),
            report: MigrationReport::default(),
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

    /// Waits until destination number `generation` listens on both sockets;
    /// `exited` says whether its process is gone (then it never will).
    pub(super) fn wait_listening(&self, generation: u32, mut exited: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + DESTINATION_START;
        while Instant::now() < deadline {
            if self.qmp_socket(generation).exists() && self.incoming_socket(generation).exists() {
                return true;
            }
            if exited() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Migrates the current QEMU to the one listening as `next`; returns QEMU's
    /// downtime in milliseconds. On failure the source is left running.
    pub(super) fn transfer(&self, next: u32) -> Result<u64, MigrateError> {
        let mut source = Qmp::connect(&self.qmp_socket(self.generation), QMP_TIMEOUT)?;
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
