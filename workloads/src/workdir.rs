//! A per-run directory under a caller-chosen root, removed again when dropped.
//!
//! Cleanup removes the paths the run created, one by one, instead of `remove_dir_all`: Hermit's
//! std does not implement `remove_dir_all` (nor `rename`), and knowing the exact paths keeps the
//! workload from deleting anything it did not create.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::WorkloadError;

/// Distinguishes runs of one process (parallel tests share a pid and maybe a timestamp).
static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) struct WorkDir {
    path: PathBuf,
    /// Directories created inside `path`, in creation order (removed in reverse).
    dirs: Vec<PathBuf>,
}

impl WorkDir {
    /// Creates `root/<prefix>-<pid>-<time>-<n>`; `root` must exist.
    pub(crate) fn create(root: &Path, prefix: &str) -> Result<Self, WorkloadError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let pid = std::process::id();
        let mut last_err = None;
        for _ in 0..100 {
            let n = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = root.join(format!("{prefix}-{pid}-{nanos:x}-{n}"));
            match fs::create_dir(&path) {
                Ok(()) => {
                    return Ok(Self {
                        path,
                        dirs: Vec::new(),
                    })
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => last_err = Some((path, e)),
                Err(e) => return Err(WorkloadError::io("create directory", path, e)),
            }
        }
        let (path, e) = last_err.expect("loop ran at least once");
        Err(WorkloadError::io("create directory", path, e))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a directory inside the run directory (relative path, parent must exist).
    pub(crate) fn mkdir(&mut self, rel: &Path) -> Result<PathBuf, WorkloadError> {
        let p = self.path.join(rel);
        fs::create_dir(&p).map_err(|e| WorkloadError::io("create directory", &p, e))?;
        self.dirs.push(p.clone());
        Ok(p)
    }
}

/// Removes a file if it exists.
pub(crate) fn remove_file_if_exists(path: &Path) -> Result<(), WorkloadError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(WorkloadError::io("remove", path, e)),
        _ => Ok(()),
    }
}

impl Drop for WorkDir {
    /// Best effort: the owner removes its files first; leftovers only cost space under the root.
    fn drop(&mut self) {
        for d in self.dirs.iter().rev() {
            let _ = fs::remove_dir(d);
        }
        let _ = fs::remove_dir(&self.path);
    }
}
