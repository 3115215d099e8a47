//! Merging fake shard directories written with the real types: the merged
//! directory, and every refusal (no guests needed).

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::report::{self, RenderOptions};
use crate::results::shard::partition;
use crate::results::{CellResult, CellStatus, Profile, Workload};
use crate::test_support::provenance;

fn spec() -> MatrixSpec {
    MatrixSpec::profile(Profile::Quick)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pvbench-merge-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A finished cell with a plausible value.
fn cell(key: CellKey) -> CellResult {
    let mut c = CellResult::new(key, CellStatus::Completed);
    c.elapsed_s = 2.0 + f64::from(key.rep) * 0.1 + f64::from(key.lock as u8) * 0.05;
    c.cap_s = 15.0;
    if key.workload == Workload::Pgbench {
        c.tps = Some(1000.0 + f64::from(key.rep) * 10.0);
    }
    c
}

/// Writes shard `index`/`count` of the quick profile into `root/name` as
/// `pvbench run --shard` would, on host `host`; `edit` changes its manifest
/// first, and cells of `skip` get no result.
fn shard_dir(
    root: &Path,
    name: &str,
    index: u32,
    count: u32,
    host: &str,
    edit: impl FnOnce(&mut RunManifest),
    skip: usize,
) -> PathBuf {
    let spec = spec();
    let shard = Shard { index, count };
    let p = partition(&spec, count).unwrap();
    let mut prov = provenance();
    prov.hostname = Some(host.into());
    prov.started_unix = 100 + u64::from(index);
    let mut manifest = RunManifest {
        provenance: prov,
        matrix: serde_json::to_value(&spec).unwrap(),
        cells: p.cells(&spec, shard),
        target_mde_pct: None,
        sharding: Some(Sharding::Shard(p.record(shard))),
    };
    edit(&mut manifest);
    let dir = root.join(name);
    results::write_json_atomic(&dir.join(results::MANIFEST_FILE), &manifest).unwrap();
    for key in manifest.cells.iter().skip(skip) {
        results::write_json_atomic(&results::cell_path(&dir, key), &cell(*key)).unwrap();
        let files = results::cell_dir(&dir, key);
        fs::create_dir_all(&files).unwrap();
        fs::write(files.join("bench.serial.log"), key.id()).unwrap();
    }
    dir
}

fn two_shards(root: &Path) -> Vec<PathBuf> {
    vec![
        shard_dir(root, "s1", 1, 2, "alpha", |_| {}, 0),
        shard_dir(root, "s2", 2, 2, "beta", |_| {}, 0),
    ]
}

fn merge_into(dirs: Vec<PathBuf>, out: &Path) -> Result<Results, MergeError> {
    merge(&MergeOptions {
        dirs,
        out: out.to_path_buf(),
    })
}

#[test]
fn shards_merge_into_the_unsharded_matrix_with_each_groups_host() {
    let root = scratch("ok");
    let out = root.join("merged");
    // Given in any order.
    let mut dirs = two_shards(&root);
    dirs.reverse();
    let merged = merge_into(dirs, &out).unwrap();
    // Exactly the unsharded plan's cells, in its order, each with a result.
    assert_eq!(merged.manifest.cells, spec().plan());
    assert_eq!(merged.cells.len(), spec().plan().len());
    for key in &merged.manifest.cells {
        let log = fs::read_to_string(results::cell_dir(&out, key).join("bench.serial.log")).unwrap();
        assert_eq!(log, key.id(), "the cell's files came along");
    }
    let Some(Sharding::Merged(record)) = &merged.manifest.sharding else {
        panic!("{:?}", merged.manifest.sharding)
    };
    assert_eq!(record.count, 2);
    assert_eq!(record.hosts(), ["alpha", "beta"]);
    assert_eq!(record.shards[0].index, 1);
    assert_eq!(record.shards[0].started_unix, 101);
    let p = partition(&spec(), 2).unwrap();
    for g in &record.groups {
        let owner = p
            .shards
            .iter()
            .position(|s| s.groups.iter().any(|x| x.group == g.group));
        assert_eq!(owner, Some(g.shard as usize - 1), "{}", g.group);
        assert_eq!(g.hostname, ["alpha", "beta"][g.shard as usize - 1]);
    }
    assert_eq!(merged.manifest.provenance.started_unix, 101);
    assert_eq!(merged.manifest.provenance.hostname, None, "two hosts");
    // A normal results directory: the report has every row of the plan.
    let report = report::render(&merged, &RenderOptions::default());
    let rows: Vec<GroupKey> = report
        .kernbench
        .iter()
        .chain(&report.pgbench)
        .map(|r| r.group)
        .collect();
    let mut planned: Vec<GroupKey> = spec().plan().iter().map(CellKey::group).collect();
    planned.sort();
    planned.dedup();
    assert_eq!(rows, planned);
    assert!(report.missing.is_empty());
    // ... and says which host ran which group.
    let line = report::hosts::line(&merged.manifest).unwrap();
    assert!(line.starts_with("groups ran on 2 hosts (alpha: "), "{line}");
    assert!(line.contains("never across hosts"), "{line}");
    assert!(line.contains("beta: "), "{line}");
    // Nothing left beside it.
    let names: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let _ = fs::remove_dir_all(root);
}

#[test]
fn one_host_needs_no_hosts_line() {
    let root = scratch("onehost");
    let dirs = vec![
        shard_dir(&root, "s1", 1, 2, "alpha", |_| {}, 0),
        shard_dir(&root, "s2", 2, 2, "alpha", |_| {}, 0),
    ];
    let merged = merge_into(dirs, &root.join("merged")).unwrap();
    assert_eq!(merged.manifest.provenance.hostname.as_deref(), Some("alpha"));
    assert_eq!(report::hosts::line(&merged.manifest), None);
    let _ = fs::remove_dir_all(root);
}

#[test]
fn a_shard_whose_guests_calibrated_their_own_clocks_is_not_hidden() {
    let root = scratch("clock");
    let told = |m: &mut RunManifest| m.provenance.guest_tsc_mhz = Some(2596);
    let dirs = vec![
        shard_dir(&root, "s1", 1, 2, "alpha", told, 0),
        shard_dir(&root, "s2", 2, 2, "alpha", told, 0),
    ];
    let merged = merge_into(dirs, &root.join("merged")).unwrap();
    assert_eq!(merged.manifest.provenance.guest_tsc_mhz, Some(2596));
    // Shard 2 from before the rate was passed: the merged run says so.
    let dirs = vec![
        shard_dir(&root, "t1", 1, 2, "alpha", told, 0),
        shard_dir(&root, "t2", 2, 2, "alpha", |_| {}, 0),
    ];
    let merged = merge_into(dirs, &root.join("merged2")).unwrap();
    assert_eq!(merged.manifest.provenance.guest_tsc_mhz, None);
    let Some(Sharding::Merged(record)) = &merged.manifest.sharding else {
        panic!("a merge record")
    };
    let rates: Vec<Option<u16>> = record.shards.iter().map(|s| s.guest_tsc_mhz).collect();
    assert_eq!(rates, [Some(2596), None]);
    let _ = fs::remove_dir_all(root);
}

/// `merge` fails with `check`'s error, names `dir` in its message, and
/// leaves no `out` nor temporary behind.
fn refused(root: &Path, dirs: Vec<PathBuf>, expect: &str, names: &Path) -> MergeError {
    let out = root.join("merged");
    let before: Vec<_> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let err = merge_into(dirs, &out).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(expect), "{expect:?} not in {text}");
    assert!(
        text.contains(&names.display().to_string()),
        "{} not named in {text}",
        names.display()
    );
    let after: Vec<_> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "a refused merge left something");
    err
}

#[test]
fn shards_of_another_experiment_are_refused_naming_the_directory() {
    let root = scratch("differs");
    type Edit = fn(&mut RunManifest);
    let edits: [(&str, Edit); 5] = [
        ("matrix", |m| m.provenance.matrix_hash = "other".into()),
        ("guest image", |m| m.provenance.image_id = "other".into()),
        ("accelerator", |m| m.provenance.accel = "kvm".into()),
        ("pvbench version", |m| {
            m.provenance.pvbench_version = "9.9.9".into()
        }),
        ("--target-mde", |m| m.target_mde_pct = Some(10.0)),
    ];
    for (what, edit) in edits {
        let s1 = shard_dir(&root, "s1", 1, 2, "alpha", |_| {}, 0);
        let s2 = shard_dir(&root, "s2", 2, 2, "beta", edit, 0);
        let err = refused(
            &root,
            vec![s1.clone(), s2.clone()],
            &format!("different {what}"),
            &s2,
        );
        assert!(
            matches!(err, MergeError::Differs { what: w, .. } if w == what),
            "{err}"
        );
        fs::remove_dir_all(&s1).unwrap();
        fs::remove_dir_all(&s2).unwrap();
    }
    // Another number of shards.
    let s1 = shard_dir(&root, "s1", 1, 2, "alpha", |_| {}, 0);
    let s3 = shard_dir(&root, "s3", 2, 3, "beta", |_| {}, 0);
    refused(&root, vec![s1, s3.clone()], "different number of shards", &s3);
    let _ = fs::remove_dir_all(root);
}

#[test]
fn missing_duplicated_and_overlapping_shards_are_refused() {
    let root = scratch("set");
    let [s1, s2] = <[PathBuf; 2]>::try_from(two_shards(&root)).unwrap();
    // Shard 2 missing: the message says which, and names what was given.
    let err = refused(&root, vec![s1.clone()], "shard 2 of 2 missing", &s1);
    assert!(matches!(err, MergeError::Missing { ref missing, count: 2, .. } if missing == &[2]));
    // Shard 1 twice, from two directories.
    let copy = shard_dir(&root, "s1-again", 1, 2, "gamma", |_| {}, 0);
    refused(
        &root,
        vec![s1.clone(), copy.clone(), s2.clone()],
        "both shard 1/2",
        &copy,
    );
    // A shard holding a cell of another's group (a different partition).
    let other = partition(&spec(), 2)
        .unwrap()
        .cells(&spec(), Shard { index: 1, count: 2 })[0];
    let greedy = shard_dir(
        &root,
        "s2-greedy",
        2,
        2,
        "beta",
        |m| {
            if !m.cells.contains(&other) {
                m.cells.push(other)
            }
        },
        0,
    );
    let err = refused(&root, vec![s1.clone(), greedy.clone()], "both hold cell", &greedy);
    assert!(err.to_string().contains(&other.id()), "{err}");
    // A group no shard ran.
    let lost = p2_without_a_group(&root);
    refused(
        &root,
        vec![s1.clone(), lost.clone()],
        "ran comparison group",
        &lost,
    );
    let _ = fs::remove_dir_all(root);
}

/// Shard 2/2 whose plan lacks one of its groups: no overlap, nothing
/// incomplete, but the matrix is not covered.
fn p2_without_a_group(root: &Path) -> PathBuf {
    shard_dir(
        root,
        "s2-short",
        2,
        2,
        "beta",
        |m| {
            let lost = m.cells[0].group();
            m.cells.retain(|k| k.group() != lost);
        },
        0,
    )
}

#[test]
fn an_incomplete_shard_is_refused_with_how_to_finish_it() {
    let root = scratch("incomplete");
    let s1 = shard_dir(&root, "s1", 1, 2, "alpha", |_| {}, 0);
    let s2 = shard_dir(&root, "s2", 2, 2, "beta", |_| {}, 3);
    let err = refused(&root, vec![s1, s2.clone()], "shard 2/2 is incomplete: 3 of", &s2);
    assert!(err.to_string().contains("--resume --shard 2/2"), "{err}");
    let _ = fs::remove_dir_all(root);
}

#[test]
fn not_shards_and_an_existing_out_are_refused() {
    let root = scratch("not");
    let [s1, s2] = <[PathBuf; 2]>::try_from(two_shards(&root)).unwrap();
    let whole = shard_dir(&root, "whole", 1, 2, "alpha", |m| m.sharding = None, 0);
    refused(&root, vec![whole.clone(), s2.clone()], "not a shard", &whole);
    let nothing = root.join("nothing");
    refused(
        &root,
        vec![s1.clone(), nothing.clone()],
        "not a results directory",
        &nothing,
    );
    // An existing --out is never replaced or added to, even when empty.
    let out = root.join("taken");
    fs::create_dir_all(&out).unwrap();
    let err = merge_into(vec![s1.clone(), s2.clone()], &out).unwrap_err();
    assert!(matches!(err, MergeError::OutExists(ref d) if d == &out), "{err}");
    assert!(fs::read_dir(&out).unwrap().next().is_none());
    // A merge is not a shard of another merge.
    let merged = root.join("merged");
    merge_into(vec![s1.clone(), s2.clone()], &merged).unwrap();
    let err = merge_into(vec![merged.clone(), s2], &root.join("again")).unwrap_err();
    assert!(
        matches!(err, MergeError::NotAShard(ref d) if d == &merged),
        "{err}"
    );
    let _ = fs::remove_dir_all(root);
}
