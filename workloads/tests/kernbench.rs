//! kernbench: the checksum proves the same work was done, whatever the parallelism.

mod common;

use common::{Recording, TestRoot};
use pvbench_workloads::kernbench::{self, FILES_PER_SCALE};
use pvbench_workloads::{
    parse_args, run, KernbenchConfig, NullObserver, Profile, RunSummary, SpawnMode, WorkloadConfig,
};

fn config(root: &TestRoot, jobs: usize, reps: u32, spawn: SpawnMode) -> KernbenchConfig {
    KernbenchConfig {
        scale: 1,
        jobs,
        reps,
        root: root.path().to_path_buf(),
        spawn,
        ..KernbenchConfig::for_profile(Profile::Quick, 2)
    }
}

#[test]
fn checksum_is_identical_across_thread_counts_runs_and_spawn_modes() {
    let root = TestRoot::new("kb-det");
    let mut sums = Vec::new();
    for (jobs, spawn) in [
        (1, SpawnMode::Job),
        (2, SpawnMode::Job),
        (7, SpawnMode::Job),
        (7, SpawnMode::Pool),
    ] {
        let s = kernbench::run(&config(&root, jobs, 1, spawn), &mut NullObserver).unwrap();
        assert_eq!(s.files, FILES_PER_SCALE);
        assert_eq!(s.jobs_done, FILES_PER_SCALE as u64 + 1, "files plus the link");
        assert!(s.source_bytes > 0 && s.object_bytes > 0 && s.image_bytes > 0);
        sums.push(s.checksum);
    }
    // A second run of the first configuration, with two repetitions (checked against each
    // other inside the run).
    let again = kernbench::run(&config(&root, 1, 2, SpawnMode::Job), &mut NullObserver).unwrap();
    sums.push(again.checksum);
    assert!(sums.iter().all(|&c| c == sums[0]), "{sums:x?}");
    assert!(root.is_empty(), "the run's tree must be removed");
}

#[test]
fn observer_sees_every_job_and_the_summary() {
    let root = TestRoot::new("kb-obs");
    let mut cfg = config(&root, 3, 2, SpawnMode::Job);
    cfg.interval = std::time::Duration::from_millis(10);
    let mut rec = Recording::default();
    let summary = run(&WorkloadConfig::Kernbench(cfg), &mut rec).unwrap();
    let RunSummary::Kernbench(s) = &summary else {
        panic!("wrong summary kind")
    };
    rec.assert_well_formed(2);
    for rep in &s.reps {
        assert_eq!(rec.ops_of_rep(rep.rep), rep.jobs_done);
        assert_eq!(rep.latency.count, rep.jobs_done);
    }
    let recorded: u64 = rec.intervals.iter().map(|i| i.histogram_count).sum();
    assert_eq!(recorded, s.jobs_done * 2);
    assert_eq!(rec.done.as_ref(), Some(&summary));

    let line = summary.line();
    assert!(line.starts_with("kernbench: reps=2 "), "{line}");
    assert!(line.contains(&format!("checksum={:#018x}", s.checksum)), "{line}");
    // The summary is serialisable (it will travel to the host).
    let json = serde_json::to_string(&summary).unwrap();
    let back: RunSummary = serde_json::from_str(&json).unwrap();
    // (Floats may differ in the last bit through serde_json's default parser.)
    let RunSummary::Kernbench(b) = back else {
        panic!("wrong summary kind after a round trip")
    };
    assert_eq!((b.checksum, b.reps.len(), &b.config), (s.checksum, 2, &s.config));
}

#[test]
fn root_comes_from_the_arguments() {
    let root = TestRoot::new("kb-args");
    let words = [
        "workload=kernbench".to_string(),
        "scale=1".into(),
        "jobs=2".into(),
        "reps=1".into(),
        "spawn=pool".into(),
        format!("root={}", root.path().display()),
    ];
    let WorkloadConfig::Kernbench(cfg) = parse_args(&words).unwrap() else {
        panic!("wrong workload")
    };
    assert_eq!(cfg.root, root.path());
    assert_eq!(cfg.spawn, SpawnMode::Pool);
    kernbench::run(&cfg, &mut NullObserver).unwrap();
    assert!(root.is_empty());
}

#[test]
fn a_missing_root_is_a_clear_error() {
    let root = TestRoot::new("kb-missing");
    let mut cfg = config(&root, 1, 1, SpawnMode::Pool);
    cfg.root = root.path().join("does-not-exist");
    let e = kernbench::run(&cfg, &mut NullObserver).unwrap_err().to_string();
    assert!(
        e.contains("create directory") && e.contains("does-not-exist"),
        "{e}"
    );
}
