//! Atomic file replacement: the one implementation every host crate uses
//! (collect's run files, results' cells and manifests, report's Markdown and
//! plots, gate's summaries and baseline).
//!
//! It lives here because collect is the lowest crate that writes files: the
//! data flows guest -> wire -> collect -> results -> report/gate, so results
//! and the binary may depend on collect, never the other way round.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary names already taken (a crashed writer's leftovers) are skipped;
/// this many in a row means something else is wrong.
const MAX_ATTEMPTS: u32 = 64;

/// Numbers the temporaries of this process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory (created with its parents if missing), synced, renamed over
/// `path`, then the directory synced so the rename survives a crash. Readers
/// see the old file or the whole new one, never a part. The temporary is
/// removed if anything fails.
///
/// Temporary names are unique per process *and* per call, so threads writing
/// the same path at once each rename a complete file of their own (the last
/// rename wins) instead of interleaving into one temporary.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let (tmp, mut file) = create_temporary(dir, path)?;
    let result = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        // Gone already if only the directory sync failed.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A new file `.<name>.tmp.<pid>.<n>` in `dir`; never an existing one, so a
/// concurrent writer's temporary is never truncated.
fn create_temporary(dir: &Path, path: &Path) -> io::Result<(PathBuf, File)> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut attempt = 0;
    loop {
        // Relaxed: only uniqueness matters.
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp.{}.{n}", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt + 1 < MAX_ATTEMPTS => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pvbench-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_whole_and_leaves_no_temporary() {
        let dir = scratch("replace");
        let path = dir.join("sub").join("x.md");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(names(path.parent().unwrap()), ["x.md"]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn failure_removes_the_temporary() {
        let dir = scratch("fail");
        // A directory in the way: the rename fails.
        fs::create_dir_all(dir.join("x.json").join("inside")).unwrap();
        assert!(write_atomic(&dir.join("x.json"), b"{}").is_err());
        assert_eq!(names(&dir), ["x.json"]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_leftover_temporary_is_skipped_not_reused() {
        let dir = scratch("leftover");
        fs::create_dir_all(&dir).unwrap();
        // A crashed writer of an earlier process with this pid left the next
        // few names behind.
        let next = COUNTER.load(Ordering::Relaxed);
        let leftovers: Vec<String> = (next..next + 3)
            .map(|n| format!(".x.json.tmp.{}.{n}", std::process::id()))
            .collect();
        for name in &leftovers {
            fs::write(dir.join(name), "stale").unwrap();
        }
        write_atomic(&dir.join("x.json"), b"new").unwrap();
        assert_eq!(fs::read_to_string(dir.join("x.json")).unwrap(), "new");
        for name in &leftovers {
            assert_eq!(fs::read_to_string(dir.join(name)).unwrap(), "stale");
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn concurrent_writers_each_rename_a_whole_file() {
        let dir = scratch("concurrent");
        let path = dir.join("x.txt");
        let contents: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 64 * 1024]).collect();
        std::thread::scope(|s| {
            for bytes in &contents {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..10 {
                        write_atomic(path, bytes).unwrap();
                    }
                });
            }
        });
        let read = fs::read(&path).unwrap();
        assert!(contents.contains(&read), "a mix of writers' bytes");
        assert_eq!(names(&dir), ["x.txt"]);
        fs::remove_dir_all(dir).unwrap();
    }
}
