//! `pvbench gate` and `pvbench baseline save` as CI runs them, on the recorded
//! fixtures in tests/fixtures/gate/, which this file also generates.
//!
//! The fixtures are results directories written from the results schema by a
//! deterministic generator (`pvbench::gate::synth`): a baseline and three new
//! runs drawn from one seed, identical but for what each injects. When the
//! schema or the generator changes, `fixtures_are_current` fails; regenerate
//! them with
//!
//! ```sh
//! PVBENCH_REGEN_FIXTURES=1 cargo test -p pvbench --test gate fixtures_are_current
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pvbench::gate::synth::{self, Draw, Synth};
use pvbench::gate::Baseline;
use pvbench::results::{ArmKey, GroupKey, LockMode, Overcommit, Workload};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gate")
}

fn gate_toml() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/gate.toml")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pvbench-gate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pvbench() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pvbench"));
    // Tests must not write into a CI job's summary.
    cmd.env_remove("GITHUB_STEP_SUMMARY");
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `pvbench gate` with the shipped thresholds against `baseline`.
fn gate(baseline: &Path, run: &Path, extra: &[&str]) -> Output {
    pvbench()
        .arg("gate")
        .arg("--baseline")
        .arg(baseline)
        .arg("--config")
        .arg(gate_toml())
        .args(extra)
        .arg(run)
        .output()
        .unwrap()
}

/// The recipe of the recorded fixtures.
mod recipe {
    use super::*;

    /// The quick profile's shape with the vCPUs resolved as on a 2-core host:
    /// 10 groups, 3 repetitions.
    pub const MATRIX: &str = r#"locks = ["base", "pv"]
overcommit = ["1x", "2x", "3x"]
reps = 3
vcpus = 2
memory_mib = 512
budget_s = 600
spin_tcg = 256

[kernbench]
scale = 1
cap_s = 15

[pgbench]
clients = [1, 2]
overcommit = ["1x"]
scale = 1
duration_s = 3
cap_s = 10
"#;

    /// Every value's coefficient of variation: a quiet TCG host.
    const CV: f64 = 0.02;

    pub fn slowed() -> ArmKey {
        ArmKey {
            group: GroupKey {
                workload: Workload::Kernbench,
                overcommit: Overcommit::X2,
                clients: None,
                migrated: false,
            },
            lock: LockMode::Pv,
        }
    }

    pub fn noisy() -> ArmKey {
        ArmKey {
            group: GroupKey {
                workload: Workload::Pgbench,
                overcommit: Overcommit::X1,
                clients: Some(2),
                migrated: false,
            },
            lock: LockMode::Base,
        }
    }

    /// Writes baseline.json and the nochange/, regression/ and noisy/
    /// results directories into `dir`.
    pub fn generate(dir: &Path) {
        let mut s = Synth::new(MATRIX).unwrap();
        s.revision = "fixture-baseline".into();
        let base_run = s.results(&dir.join("baseline-run"), 1, |g| Draw::nominal(g, CV));
        let mut baseline =
            Baseline::from_results(&base_run, "synthetic (host-runner/tests/gate.rs, seed 1)").unwrap();
        baseline.saved_unix = 1_700_000_000;
        baseline.save(&dir.join("baseline.json")).unwrap();

        // One seed for the three runs: they differ only where they inject.
        s.revision = "fixture-new".into();
        for name in ["nochange", "regression", "noisy"] {
            synth::write(&s.results(&dir.join(name), 2, |g| draw(name, g))).unwrap();
        }
    }

    /// How each new run draws a group's values.
    fn draw(run: &str, g: ArmKey) -> Draw {
        match run {
            // kernbench 2x pv 25 % slower.
            "regression" if g == slowed() => Draw::nominal(g, CV).scaled(1.25),
            // pgbench 1x clients=2 base with a CV of 50 %.
            "noisy" if g == noisy() => Draw::nominal(g, 0.5),
            _ => Draw::nominal(g, CV),
        }
    }
}

/// Relative paths of every file under `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The generated fixtures, without the README that explains them.
fn generated(dir: &Path) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|p| p != Path::new("README.md"))
        .collect()
}

#[test]
fn fixtures_are_current() {
    let fresh = scratch("fixtures");
    recipe::generate(&fresh);
    let committed = fixtures();
    if std::env::var_os("PVBENCH_REGEN_FIXTURES").is_some() {
        for name in ["baseline.json", "nochange", "regression", "noisy"] {
            let path = committed.join(name);
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else if path.exists() {
                std::fs::remove_file(&path).unwrap();
            }
        }
        recipe::generate(&committed);
    }
    let want = generated(&fresh);
    assert_eq!(
        generated(&committed),
        want,
        "fixture files differ; regenerate with PVBENCH_REGEN_FIXTURES=1 (see tests/gate.rs)"
    );
    for path in &want {
        let (a, b) = (
            std::fs::read(fresh.join(path)).unwrap(),
            std::fs::read(committed.join(path)).unwrap(),
        );
        assert!(
            a == b,
            "{} is stale; regenerate with PVBENCH_REGEN_FIXTURES=1 (see tests/gate.rs)",
            path.display()
        );
    }
    std::fs::remove_dir_all(fresh).unwrap();
}

#[test]
fn fixtures_give_their_exit_statuses() {
    let out_dir = scratch("statuses");
    for (run, status, verdict) in [
        ("nochange", 0, "pass"),
        ("regression", 1, "regression"),
        ("noisy", 2, "cannot-judge"),
    ] {
        let md = out_dir.join(format!("{run}.md"));
        let json = out_dir.join(format!("{run}.json"));
        let out = gate(
            &fixtures().join("baseline.json"),
            &fixtures().join(run),
            &[
                "--markdown",
                md.to_str().unwrap(),
                "--json",
                json.to_str().unwrap(),
            ],
        );
        assert_eq!(out.status.code(), Some(status), "{run}: {}", text(&out));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(report["verdict"], verdict, "{run}");
        assert_eq!(report["exit_code"], status, "{run}");
        let md = std::fs::read_to_string(&md).unwrap();
        assert!(md.starts_with("## pvbench gate: "), "{md}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        match run {
            "regression" => {
                assert!(md.contains("| kernbench 2x pv | elapsed_s ↓ |"), "{md}");
                assert!(stdout.contains("REGRESSION"), "{stdout}");
            }
            "noisy" => {
                assert!(
                    md.contains("- **pgbench 1x clients=2 base**: too noisy to judge"),
                    "{md}"
                );
                assert!(stdout.contains("too noisy to judge"), "{stdout}");
            }
            _ => assert!(
                stdout.starts_with("pvbench gate: pass: 10 groups: 0 regressed"),
                "{stdout}"
            ),
        }
    }
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn job_summary_is_appended_to() {
    let dir = scratch("step-summary");
    let summary = dir.join("step_summary.md");
    std::fs::write(&summary, "earlier step").unwrap();
    let out = pvbench()
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["gate", "--quiet", "--baseline"])
        .arg(fixtures().join("baseline.json"))
        .arg("--config")
        .arg(gate_toml())
        .arg(fixtures().join("regression"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "--quiet prints the verdict only: {stdout}"
    );
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(
        written.starts_with("earlier step\n## pvbench gate: ❌"),
        "{written}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn saved_baseline_of_a_run_passes_that_run() {
    let dir = scratch("save");
    let path = dir.join("results").join("baseline.json");
    let out = pvbench()
        .args(["baseline", "save"])
        .arg(fixtures().join("nochange"))
        .arg("--out")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(saved["format"], "pvbench-baseline");
    assert_eq!(saved["version"], 1);
    assert_eq!(saved["compare_under"]["accel"], "tcg");
    assert_eq!(saved["provenance"]["git_revision"], "fixture-new");
    assert_eq!(saved["groups"].as_array().unwrap().len(), 10);

    let out = gate(&path, &fixtures().join("nochange"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn incomplete_runs_make_no_baseline() {
    let dir = scratch("incomplete");
    let run = dir.join("run");
    let s = Synth::new(recipe::MATRIX).unwrap();
    let results = s.results(&run, 3, |g| Draw::nominal(g, 0.02));
    synth::write(&results).unwrap();
    let victim = results.manifest.cells[4];
    std::fs::remove_file(pvbench::results::cell_path(&run, &victim)).unwrap();
    let out = pvbench()
        .args(["baseline", "save"])
        .arg(&run)
        .arg("--out")
        .arg(dir.join("b.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{} did not run", victim.id())),
        "{stderr}"
    );
    assert!(!dir.join("b.json").exists());

    // The gate names the missing cell too.
    let out = gate(&fixtures().join("baseline.json"), &run, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("cells missing from the new run: r{}", victim.rep)),
        "{stdout}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn other_accelerator_cannot_be_judged() {
    let dir = scratch("accel");
    let mut s = Synth::new(recipe::MATRIX).unwrap();
    s.accel = "kvm".into();
    synth::write(&s.results(&dir.join("run"), 2, |g| Draw::nominal(g, 0.02))).unwrap();
    let out = gate(&fixtures().join("baseline.json"), &dir.join("run"), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("different accelerator: the baseline ran under tcg, this run under kvm"),
        "{}",
        text(&out)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn command_line_picks_the_test() {
    // Mann–Whitney at 3 against 3 cannot prove anything, and says so.
    let out = gate(
        &fixtures().join("baseline.json"),
        &fixtures().join("regression"),
        &["--test", "mann-whitney", "--correction", "bh"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cannot reach significance"),
        "{}",
        text(&out)
    );
}

#[test]
fn missing_baseline_and_bad_config_are_errors() {
    let dir = scratch("errors");
    let md = dir.join("gate.md");
    let out = gate(
        &dir.join("nope.json"),
        &fixtures().join("nochange"),
        &["--markdown", md.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no baseline at") && stderr.contains("pvbench baseline save"),
        "{stderr}"
    );
    assert!(std::fs::read_to_string(&md).unwrap().contains("no baseline at"));

    let config = dir.join("gate.toml");
    std::fs::write(&config, "[defaults]\nalpha = 2\n").unwrap();
    let out = pvbench()
        .arg("gate")
        .arg("--baseline")
        .arg(fixtures().join("baseline.json"))
        .arg("--config")
        .arg(&config)
        .arg(fixtures().join("nochange"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("alpha = 2 is outside"),
        "{}",
        text(&out)
    );
    std::fs::remove_dir_all(dir).unwrap();
}
