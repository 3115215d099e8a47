//! `pvbench merge DIR... --out DIR`: the shards of one matrix
//! (`pvbench run --shard K/N`, possibly on different hosts) combined into one
//! ordinary results directory that `report` and `gate` read.
//!
//! Shards merge only if they are the same experiment: same matrix (hash),
//! guest image, accelerator and pvbench version, every shard 1..N exactly
//! once, no cell in two shards, and every planned cell of every shard with a
//! result. Hosts may differ: a shard holds whole comparison groups, so each
//! comparison stays within one host; the merged `run.json` records the host
//! of every group.
//!
//! The merged directory is built in a temporary sibling and renamed into
//! place at the end: a failed merge leaves nothing at `--out`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::results::shard::{GroupHost, MergeRecord, ShardOrigin};
use crate::results::{
    self, CellKey, GroupKey, MatrixSpec, Results, ResultsError, RunManifest, Shard, Sharding,
};

/// What `pvbench merge` does.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeOptions {
    /// The shards' results directories, in any order.
    pub dirs: Vec<PathBuf>,
    /// The merged directory; must not exist.
    pub out: PathBuf,
}

/// Why shards cannot be merged; each names the directory at fault.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge: give the shards' results directories")]
    NoShards,
    #[error("{0} already exists: merge into a new directory (the merge never adds to or replaces one)")]
    OutExists(PathBuf),
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(
        "{0}: not a shard (its run.json records no `--shard K/N`: a whole matrix or a merge); \
         merge only directories written by `pvbench run --shard K/N`"
    )]
    NotAShard(PathBuf),
    #[error(
        "{dir}: different {what} from {first} ({theirs} there, {ours} in {first}): shards of one \
         run share it; rerun {dir}'s shard with the same {what}"
    )]
    Differs {
        dir: PathBuf,
        first: PathBuf,
        what: &'static str,
        theirs: String,
        ours: String,
    },
    #[error("{dir} and {other} are both shard {shard}: give each shard once")]
    Duplicate {
        dir: PathBuf,
        other: PathBuf,
        shard: Shard,
    },
    #[error(
        "shard {} of {count} missing: given {given}; run the missing shard{} with \
         `pvbench run --shard K/{count}` and merge all {count}",
        missing.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
        if missing.len() == 1 { "" } else { "s" }
    )]
    Missing {
        missing: Vec<u32>,
        count: u32,
        given: String,
    },
    #[error("{dir} and {other} both hold cell {cell}: shards of one partition never overlap")]
    Overlap {
        dir: PathBuf,
        other: PathBuf,
        cell: String,
    },
    #[error(
        "{dir}: shard {shard} is incomplete: {missing} of {planned} planned cells have no result \
         (first: {first}); finish it with `pvbench run --resume --shard {shard} --out {dir}` and \
         the same matrix options, then merge again"
    )]
    Incomplete {
        dir: PathBuf,
        shard: Shard,
        missing: usize,
        planned: usize,
        first: String,
    },
    #[error("{dir}: its run.json's matrix cannot be read back ({reason})")]
    BadMatrix { dir: PathBuf, reason: String },
    #[error(
        "no shard among {dirs} ran comparison group {group} of their matrix (their plans do not \
         cover it): were they made by different pvbench versions?"
    )]
    Uncovered { group: GroupKey, dirs: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One shard, loaded and identified.
struct Loaded {
    dir: PathBuf,
    shard: Shard,
    results: Results,
}

/// Merges `options.dirs` into `options.out`; returns the merged results.
pub fn merge(options: &MergeOptions) -> Result<Results, MergeError> {
    if options.dirs.is_empty() {
        return Err(MergeError::NoShards);
    }
    if options.out.exists() {
        return Err(MergeError::OutExists(options.out.clone()));
    }
    let shards = load(&options.dirs)?;
    let manifest = merged_manifest(&shards)?;
    write(&options.out, &shards, &manifest)?;
    Ok(Results::load(&options.out)?)
}

/// Loads every directory and checks they are the shards of one run, whole.
fn load(dirs: &[PathBuf]) -> Result<Vec<Loaded>, MergeError> {
    let mut shards = Vec::new();
    for dir in dirs {
        let results = Results::load(dir)?;
        let Some(Sharding::Shard(record)) = &results.manifest.sharding else {
            return Err(MergeError::NotAShard(dir.clone()));
        };
        shards.push(Loaded {
            dir: dir.clone(),
            shard: record.shard(),
            results,
        });
    }
    same_run(&shards)?;
    // Every planned cell of every shard finished.
    for s in &shards {
        let planned = &s.results.manifest.cells;
        let absent: Vec<&CellKey> = planned
            .iter()
            .filter(|k| !s.results.cells.iter().any(|c| c.key == **k))
            .collect();
        if let Some(first) = absent.first() {
            return Err(MergeError::Incomplete {
                dir: s.dir.clone(),
                shard: s.shard,
                missing: absent.len(),
                planned: planned.len(),
                first: first.id(),
            });
        }
    }
    // Every shard once.
    let count = shards[0].shard.count;
    let mut by_index: BTreeMap<u32, &Loaded> = BTreeMap::new();
    for s in &shards {
        if let Some(other) = by_index.insert(s.shard.index, s) {
            return Err(MergeError::Duplicate {
                dir: s.dir.clone(),
                other: other.dir.clone(),
                shard: s.shard,
            });
        }
    }
    let missing: Vec<u32> = (1..=count).filter(|i| !by_index.contains_key(i)).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing {
            missing,
            count,
            given: shards
                .iter()
                .map(|s| format!("{} (shard {})", s.dir.display(), s.shard))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    // No cell in two shards.
    let mut owner: BTreeMap<CellKey, &Loaded> = BTreeMap::new();
    for s in &shards {
        for key in &s.results.manifest.cells {
            if let Some(other) = owner.insert(*key, s) {
                return Err(MergeError::Overlap {
                    dir: s.dir.clone(),
                    other: other.dir.clone(),
                    cell: key.id(),
                });
            }
        }
    }
    // Together they cover the matrix.
    let spec = matrix(&shards[0])?;
    for key in spec.plan() {
        if !owner.contains_key(&key) {
            return Err(MergeError::Uncovered {
                group: key.group(),
                dirs: shards
                    .iter()
                    .map(|s| s.dir.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    shards.sort_by_key(|s| s.shard.index);
    Ok(shards)
}

/// Refuses shards that are not the same experiment as the first.
fn same_run(shards: &[Loaded]) -> Result<(), MergeError> {
    let first = &shards[0];
    let facts = |s: &Loaded| {
        let p = &s.results.manifest.provenance;
        [
            ("matrix", p.matrix_hash.clone()),
            ("guest image", p.image_id.clone()),
            ("accelerator", p.accel.clone()),
            ("pvbench version", p.pvbench_version.clone()),
            ("number of shards", s.shard.count.to_string()),
            (
                "--target-mde",
                s.results
                    .manifest
                    .target_mde_pct
                    .map_or("none".into(), |t| format!("{t}%")),
            ),
        ]
    };
    let ours = facts(first);
    for s in &shards[1..] {
        for ((what, theirs), (_, ours)) in facts(s).into_iter().zip(&ours) {
            if theirs != *ours {
                return Err(MergeError::Differs {
                    dir: s.dir.clone(),
                    first: first.dir.clone(),
                    what,
                    theirs,
                    ours: ours.clone(),
                });
            }
        }
    }
    Ok(())
}

fn matrix(shard: &Loaded) -> Result<MatrixSpec, MergeError> {
    serde_json::from_value(shard.results.manifest.matrix.clone()).map_err(|e| MergeError::BadMatrix {
        dir: shard.dir.clone(),
        reason: e.to_string(),
    })
}

/// The merged `run.json`: shard 1's provenance (the shards agree on
/// everything that makes the experiment), the earliest start, the cells in
/// the unsharded plan's order, and where each shard and group ran.
fn merged_manifest(shards: &[Loaded]) -> Result<RunManifest, MergeError> {
    let first = &shards[0].results.manifest;
    let spec = matrix(&shards[0])?;
    let host = |s: &Loaded| {
        s.results
            .manifest
            .provenance
            .hostname
            .clone()
            .unwrap_or_else(|| "unknown".into())
    };
    let plan = spec.plan();
    let mut cells: Vec<CellKey> = shards
        .iter()
        .flat_map(|s| s.results.manifest.cells.iter().copied())
        .collect();
    // Planned cells in plan order; repetitions a shard added for a target
    // MDE after them, in shard order (a stable sort keeps it).
    cells.sort_by_key(|k| plan.iter().position(|p| p == k).unwrap_or(usize::MAX));
    let mut groups: Vec<GroupHost> = Vec::new();
    for key in &cells {
        if groups.iter().any(|g| g.group == key.group()) {
            continue;
        }
        let s = shards
            .iter()
            .find(|s| s.results.manifest.cells.contains(key))
            .expect("every cell comes from a shard");
        groups.push(GroupHost {
            group: key.group(),
            shard: s.shard.index,
            hostname: host(s),
        });
    }
    let record = MergeRecord {
        count: shards[0].shard.count,
        shards: shards
            .iter()
            .map(|s| {
                let p = &s.results.manifest.provenance;
                ShardOrigin {
                    index: s.shard.index,
                    dir: s.dir.display().to_string(),
                    hostname: host(s),
                    host_cpu: p.host_cpu.clone(),
                    host_cores: p.host_cores,
                    git_revision: p.git_revision.clone(),
                    started_unix: p.started_unix,
                    guest_tsc_mhz: p.guest_tsc_mhz,
                }
            })
            .collect(),
        groups,
    };
    let mut provenance = first.provenance.clone();
    provenance.started_unix = shards
        .iter()
        .map(|s| s.results.manifest.provenance.started_unix)
        .min()
        .expect("at least one shard");
    let hosts = record.hosts();
    provenance.hostname = (hosts.len() == 1).then(|| hosts[0].to_string());
    // Absent when any shard's guests calibrated their own clocks, so the
    // report warns; each shard's own rate stays in its origin record.
    if shards
        .iter()
        .any(|s| s.results.manifest.provenance.guest_tsc_mhz.is_none())
    {
        provenance.guest_tsc_mhz = None;
    }
    Ok(RunManifest {
        provenance,
        matrix: first.matrix.clone(),
        cells,
        target_mde_pct: first.target_mde_pct,
        sharding: Some(Sharding::Merged(record)),
    })
}

/// Builds the merged directory beside `out` and renames it into place.
fn write(out: &Path, shards: &[Loaded], manifest: &RunManifest) -> Result<(), MergeError> {
    let name = out
        .file_name()
        .map_or("merged".into(), |n| n.to_string_lossy().into_owned());
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = parent.join(format!(".{name}.merging-{}", std::process::id()));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MergeError::Io { path, source }
    };
    fs::create_dir_all(&parent).map_err(io(&parent))?;
    // A leftover of a merge killed with this pid is ours to replace.
    let _ = fs::remove_dir_all(&tmp);
    let built = (|| {
        for s in shards {
            for key in &s.results.manifest.cells {
                let from = results::cell_path(&s.dir, key);
                let to = results::cell_path(&tmp, key);
                fs::create_dir_all(to.parent().expect("cells dir")).map_err(io(&to))?;
                fs::copy(&from, &to).map_err(io(&from))?;
                let files = results::cell_dir(&s.dir, key);
                if files.is_dir() {
                    copy_dir(&files, &results::cell_dir(&tmp, key))?;
                }
            }
        }
        results::write_json_atomic(&tmp.join(results::MANIFEST_FILE), manifest)?;
        if out.exists() {
            return Err(MergeError::OutExists(out.to_path_buf()));
        }
        fs::rename(&tmp, out).map_err(io(out))
    })();
    if built.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    built
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), MergeError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MergeError::Io { path, source }
    };
    fs::create_dir_all(to).map_err(io(to))?;
    for entry in fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().map_err(io(&src))?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            fs::copy(&src, &dst).map_err(io(&src))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
