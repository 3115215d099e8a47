//! kernbench-like workload: `make -j N` of a generated source tree, kernbench's optimal-load run.
//!
//! The tree is written once per run (not timed, like kernbench's untar). Each repetition then
//! removes the objects (make clean) and builds: `jobs` job slots take files from a shared queue
//! and compile each one (read the file, lex, build a tree of small heap nodes, rebuild it in
//! passes, hash it, write an object), in a fresh thread per job by default as make forks a
//! compiler. A final link step reads every object back and writes the image, whose hash is the
//! run's checksum: the same for every run, thread count and lock mode.

mod compile;
mod link;
mod tree;

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::WorkloadError;
use crate::hash::fnv64;
use crate::params::{KernbenchConfig, SpawnMode, WorkloadKind};
use crate::report::{
    new_latency_histogram, run_reported, LatencySummary, MeanSd, Observer, RepContext, Slots,
};
use crate::workdir::{remove_file_if_exists, WorkDir};

pub use tree::FILES_PER_SCALE;

/// Stack of a compile thread. Explicit so host and guest behave alike (the compiler's recursion
/// is bounded by the generator's nesting limits and needs far less); also the allocation size
/// each per-job thread asks the guest kernel for.
const COMPILE_STACK: usize = 512 * 1024;

/// One repetition's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernbenchRep {
    pub rep: u32,
    /// Wall time of the build: first job started to image written.
    pub elapsed_s: f64,
    /// Jobs completed: one per source file plus the link.
    pub jobs_done: u64,
    pub checksum: u64,
    /// Per-job latency (the link included).
    pub latency: LatencySummary,
}

/// Result of a kernbench run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernbenchSummary {
    pub config: KernbenchConfig,
    pub files: usize,
    pub source_bytes: u64,
    pub object_bytes: u64,
    pub image_bytes: u64,
    /// Jobs per repetition (files + link).
    pub jobs_done: u64,
    /// FNV-1a of the linked image; identical in every repetition (checked).
    pub checksum: u64,
    pub elapsed_s: MeanSd,
    /// Per-job latency over all repetitions.
    pub latency: LatencySummary,
    pub reps: Vec<KernbenchRep>,
}

impl KernbenchSummary {
    /// One line for logs and the guest console.
    pub fn line(&self) -> String {
        format!(
            "kernbench: reps={} scale={} jobs={} spawn={} files={} elapsed_s mean={:.3} sd={:.3} \
             done={} job_us p50={} p99={} max={} checksum={:#018x}",
            self.reps.len(),
            self.config.scale,
            self.config.jobs,
            self.config.spawn.name(),
            self.files,
            self.elapsed_s.mean,
            self.elapsed_s.sd,
            self.jobs_done,
            self.latency.p50_us,
            self.latency.p99_us,
            self.latency.max_us,
            self.checksum,
        )
    }
}

/// The on-disk tree of one run.
struct Tree {
    files: usize,
    dir: WorkDir,
    source_bytes: u64,
}

impl Tree {
    fn create(root: &Path, files: usize) -> Result<Self, WorkloadError> {
        let mut dir = WorkDir::create(root, "pvbench-kernbench")?;
        let mut source_bytes = 0u64;
        dir.mkdir(Path::new("src"))?;
        dir.mkdir(Path::new("obj"))?;
        for d in 0..tree::dirs_for(files) {
            dir.mkdir(&Path::new("src").join(tree::dir_name(d)))?;
            dir.mkdir(&Path::new("obj").join(tree::dir_name(d)))?;
        }
        let mut tree = Self {
            files,
            dir,
            source_bytes: 0,
        };
        for f in 0..files {
            let text = tree::generate(f);
            source_bytes += text.len() as u64;
            let path = tree.source(f);
            if let Err(e) = fs::write(&path, text) {
                // Leave nothing behind (the directories go when `tree` drops).
                let _ = tree.remove();
                return Err(WorkloadError::io("write", path, e));
            }
        }
        tree.source_bytes = source_bytes;
        Ok(tree)
    }

    fn source(&self, f: usize) -> PathBuf {
        self.dir.path().join(tree::source_rel_path(f))
    }

    fn object(&self, f: usize) -> PathBuf {
        self.dir.path().join(tree::object_rel_path(f))
    }

    fn image(&self) -> PathBuf {
        self.dir.path().join("vmlinux")
    }

    /// make clean. Also required for correctness in the guest: Hermit's in-memory file system
    /// ignores O_TRUNC, so rewriting an existing, longer object would leave stale bytes.
    fn clean(&self) -> Result<(), WorkloadError> {
        for f in 0..self.files {
            remove_file_if_exists(&self.object(f))?;
        }
        remove_file_if_exists(&self.image())
    }

    fn remove(self) -> Result<(), WorkloadError> {
        self.clean()?;
        for f in 0..self.files {
            remove_file_if_exists(&self.source(f))?;
        }
        // Dropping the WorkDir removes the directories.
        Ok(())
    }
}

/// Runs kernbench. Intervals go to `observer` during each build; `observer.done` is left to the
/// caller ([`crate::run`] calls it).
pub fn run(cfg: &KernbenchConfig, observer: &mut dyn Observer) -> Result<KernbenchSummary, WorkloadError> {
    cfg.validate()?;
    let files = cfg.scale as usize * FILES_PER_SCALE;
    let tree = Tree::create(&cfg.root, files)?;
    let source_bytes = tree.source_bytes;
    let result = run_reps(cfg, &tree, observer);
    // Remove the tree whether or not the build worked; a build error wins over a cleanup error.
    let cleanup = tree.remove();
    let (reps, latency, object_bytes, image_bytes) = result?;
    cleanup?;
    let elapsed: Vec<f64> = reps.iter().map(|r| r.elapsed_s).collect();
    Ok(KernbenchSummary {
        config: cfg.clone(),
        files,
        source_bytes,
        object_bytes,
        image_bytes,
        jobs_done: reps.first().map_or(0, |r| r.jobs_done),
        checksum: reps.first().map_or(0, |r| r.checksum),
        elapsed_s: MeanSd::of(&elapsed),
        latency,
        reps,
    })
}

fn run_reps(
    cfg: &KernbenchConfig,
    tree: &Tree,
    observer: &mut dyn Observer,
) -> Result<(Vec<KernbenchRep>, LatencySummary, u64, u64), WorkloadError> {
    let stop = AtomicBool::new(false);
    let mut reps = Vec::new();
    let mut all = new_latency_histogram()?;
    let mut sizes = (0, 0);
    // The reporter, the job slots and (spawn=job) a compile thread per file.
    let spawns = 1
        + cfg.jobs
        + if cfg.spawn == SpawnMode::Job {
            tree.files
        } else {
            0
        };
    for rep in 1..=cfg.reps {
        tree.clean()?;
        if rep > 1 {
            // Start where repetition 1 started (see `placement`).
            crate::placement::align(spawns);
        }
        let ctx = RepContext {
            kind: WorkloadKind::Kernbench,
            rep,
            recorders: cfg.jobs + 1,
            interval: cfg.interval,
            observer: &mut *observer,
            stop: &stop,
        };
        // Timed inside, so the reporter's start and final report are not in the build time.
        let ((built, elapsed), totals) = run_reported(ctx, |slots| {
            let start = Instant::now();
            let built = build(cfg, tree, slots);
            (built, start.elapsed())
        })?;
        let (checksum, object_bytes, image_bytes) = built?;
        let elapsed_s = elapsed.as_secs_f64();
        if let Some(first) = reps.first().map(|r: &KernbenchRep| r.checksum) {
            if checksum != first {
                return Err(WorkloadError::ChecksumMismatch {
                    rep,
                    expected: first,
                    got: checksum,
                });
            }
        }
        sizes = (object_bytes, image_bytes);
        let _ = all.add(&totals.histogram);
        reps.push(KernbenchRep {
            rep,
            elapsed_s,
            jobs_done: totals.ops,
            checksum,
            latency: LatencySummary::of(&totals.histogram),
        });
    }
    Ok((reps, LatencySummary::of(&all), sizes.0, sizes.1))
}

/// One build: compile every file with `cfg.jobs` job slots, then link. Returns the image
/// checksum and the object and image sizes.
fn build(cfg: &KernbenchConfig, tree: &Tree, slots: &Slots) -> Result<(u64, u64, u64), WorkloadError> {
    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..tree.files).collect());
    // Set on the first failure so the other slots stop taking jobs.
    let abort = AtomicBool::new(false);
    let object_bytes = thread::scope(|s| {
        let mut handles = Vec::with_capacity(cfg.jobs);
        let mut spawn_err = None;
        for j in 0..cfg.jobs {
            let (queue, abort) = (&queue, &abort);
            let rec = slots.recorder(j);
            let spawned = thread::Builder::new().stack_size(COMPILE_STACK).spawn_scoped(
                s,
                move || -> Result<u64, WorkloadError> {
                    let mut bytes = 0;
                    // Relaxed: the flag only shortens the run; results travel through join.
                    while !abort.load(Ordering::Relaxed) {
                        let Some(f) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                            break;
                        };
                        let t = Instant::now();
                        let res = match cfg.spawn {
                            SpawnMode::Pool => compile_job(tree, f),
                            SpawnMode::Job => compile_in_new_thread(tree, f),
                        };
                        match res {
                            Ok(n) => {
                                bytes += n;
                                rec.record(t.elapsed(), 1);
                            }
                            Err(e) => {
                                abort.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                    Ok(bytes)
                },
            );
            match spawned {
                Ok(h) => handles.push(h),
                Err(source) => {
                    abort.store(true, Ordering::Relaxed);
                    spawn_err = Some(WorkloadError::Spawn {
                        what: "job slot",
                        source,
                    });
                    break;
                }
            }
        }
        let mut first_err = spawn_err;
        let mut total = 0u64;
        for h in handles {
            match h.join() {
                Ok(Ok(n)) => total += n,
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(WorkloadError::ThreadPanicked { what: "job slot" });
                }
            }
        }
        first_err.map_or(Ok(total), Err)
    })?;

    let t = Instant::now();
    let (checksum, image_bytes) = link_tree(tree)?;
    slots.recorder(cfg.jobs).record(t.elapsed(), 1);
    Ok((checksum, object_bytes, image_bytes))
}

/// A job in a thread of its own, as make forks a compiler per file.
fn compile_in_new_thread(tree: &Tree, f: usize) -> Result<u64, WorkloadError> {
    thread::scope(|s| {
        let h = thread::Builder::new()
            .stack_size(COMPILE_STACK)
            .spawn_scoped(s, || compile_job(tree, f))
            .map_err(|source| WorkloadError::Spawn {
                what: "compile",
                source,
            })?;
        h.join()
            .map_err(|_| WorkloadError::ThreadPanicked { what: "compile" })?
    })
}

/// Compiles file `f`: source file in, object file out. Returns the object size.
fn compile_job(tree: &Tree, f: usize) -> Result<u64, WorkloadError> {
    let src_path = tree.source(f);
    let src = fs::read_to_string(&src_path).map_err(|e| WorkloadError::io("read", &src_path, e))?;
    let obj = compile::compile(&src, f).map_err(|e| WorkloadError::Compile {
        path: src_path,
        msg: e.0,
    })?;
    let obj_path = tree.object(f);
    fs::write(&obj_path, &obj).map_err(|e| WorkloadError::io("write", obj_path, e))?;
    Ok(obj.len() as u64)
}

/// Reads all objects back in file order, links them and writes the image. Returns the image's
/// checksum and size.
fn link_tree(tree: &Tree) -> Result<(u64, u64), WorkloadError> {
    let mut objects = Vec::with_capacity(tree.files);
    for f in 0..tree.files {
        let p = tree.object(f);
        objects.push(fs::read(&p).map_err(|e| WorkloadError::io("read", p, e))?);
    }
    let image = link::link(&objects).map_err(|(i, msg)| WorkloadError::Link {
        path: tree.object(i),
        msg,
    })?;
    let path = tree.image();
    fs::write(&path, &image).map_err(|e| WorkloadError::io("write", &path, e))?;
    Ok((fnv64(&image), image.len() as u64))
}
