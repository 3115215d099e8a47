//! `pvbench run --shard K/N` and `pvbench merge` with real guests under TCG:
//! a small matrix run as shards 1/2 and 2/2 (shard 2 interrupted midway and
//! resumed), merged; the merged directory holds exactly the unsharded plan's
//! cells, and `report` (with its exports) and `gate` read it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{image, pvbench, text};
use pvbench::results::{CellKey, GroupKey, MatrixSpec, Results, Sharding};

/// This test's guests' memory: how it finds its own QEMU processes.
const MEMORY_MIB: u32 = 508;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pvbench-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Three comparison groups (kernbench-like 1x and 2x, pgbench-like 1x with 2
/// clients), base and pv, one repetition: 6 cells.
fn write_matrix(dir: &Path) -> PathBuf {
    let path = dir.join("matrix.toml");
    std::fs::write(
        &path,
        format!(
            r#"locks = ["base", "pv"]
overcommit = ["1x", "2x"]
reps = 1
vcpus = 2
memory_mib = {MEMORY_MIB}
spin_tcg = 256
# Function, not figures: no waiting out the host's CPUs apart (up to 90 s a cell).
apart_reruns = 0
[kernbench]
scale = 1
cap_s = 12
[pgbench]
clients = [2]
overcommit = ["1x"]
scale = 1
duration_s = 1
cap_s = 8
"#
        ),
    )
    .unwrap();
    path
}

fn run_shard(matrix: &Path, out: &Path, shard: &str, extra: &[&str]) -> Output {
    image();
    pvbench()
        .args(["run", "--accel", "tcg", "--quiet", "--matrix"])
        .arg(matrix)
        .args(["--shard", shard, "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// QEMU processes whose command line carries this test's memory size.
fn our_qemus() -> usize {
    let marker = format!("{MEMORY_MIB}M");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmd = text(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default());
            cmd.contains("qemu-system") && cmd.split('\0').any(|w| w == marker)
        })
        .count()
}

/// Starts shard `shard` and stops it with Ctrl-C once its first cell is
/// written and the next one's guests are up; returns its stderr.
fn interrupt_after_first_cell(matrix: &Path, out: &Path, shard: &str) -> String {
    image();
    let child = pvbench()
        .args(["run", "--accel", "tcg", "--quiet", "--matrix"])
        .arg(matrix)
        .args(["--shard", shard, "--out"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cells = out.join("cells");
    let t = Instant::now();
    let written = || {
        std::fs::read_dir(&cells)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "json")
                })
                .count()
            })
            .unwrap_or(0)
    };
    while written() == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no cell finished in 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    while our_qemus() == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the second cell never started a guest"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let output = child.wait_with_output().unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(written(), 1, "{stderr}");
    stderr
}

fn groups(cells: &[CellKey]) -> BTreeSet<GroupKey> {
    cells.iter().map(CellKey::group).collect()
}

#[test]
fn shards_of_a_real_matrix_resume_and_merge_into_the_unsharded_plan() {
    let dir = scratch("shards");
    let matrix = write_matrix(&dir);
    let plan = MatrixSpec::load(&matrix).unwrap().plan();
    let (s1, s2, merged) = (dir.join("s1"), dir.join("s2"), dir.join("merged"));

    // Shard 2, killed midway: it says how to resume, as itself.
    let stderr = interrupt_after_first_cell(&matrix, &s2, "2/2");
    assert!(
        stderr.contains("--resume --out") && stderr.contains("--shard 2/2"),
        "{stderr}"
    );
    assert_eq!(our_qemus(), 0, "QEMU left running after Ctrl-C");
    let first = std::fs::read_dir(s2.join("cells"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let kept = std::fs::read(&first).unwrap();
    // An incomplete shard does not merge.
    let early = pvbench()
        .arg("merge")
        .args([&s2])
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    assert_eq!(early.status.code(), Some(2));
    assert!(
        text(&early.stderr).contains("incomplete"),
        "{}",
        text(&early.stderr)
    );
    assert!(!merged.exists());
    // Resuming it as another shard is refused before any guest starts.
    let wrong = run_shard(&matrix, &s2, "1/2", &["--resume"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        text(&wrong.stderr).contains("different shard"),
        "{}",
        text(&wrong.stderr)
    );
    let resumed = run_shard(&matrix, &s2, "2/2", &["--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert_eq!(
        std::fs::read(&first).unwrap(),
        kept,
        "a finished cell was rewritten"
    );

    // Shard 1 in one go.
    let one = run_shard(&matrix, &s1, "1/2", &[]);
    assert!(one.status.success(), "{}", text(&one.stderr));

    // Each shard holds whole groups, and the two share none.
    let (r1, r2) = (Results::load(&s1).unwrap(), Results::load(&s2).unwrap());
    for r in [&r1, &r2] {
        assert_eq!(r.cells.len(), r.manifest.cells.len(), "every planned cell ran");
        assert!(matches!(r.manifest.sharding, Some(Sharding::Shard(_))));
    }
    assert!(groups(&r1.manifest.cells).is_disjoint(&groups(&r2.manifest.cells)));

    // Merged: exactly the unsharded plan's cells, in its order.
    let merge = pvbench()
        .arg("merge")
        .args([&s2, &s1])
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(merge.status.success(), "{}", text(&merge.stderr));
    let m = Results::load(&merged).unwrap();
    assert_eq!(m.manifest.cells, plan);
    let mut got: Vec<CellKey> = m.cells.iter().map(|c| c.key).collect();
    got.sort();
    let mut want = plan.clone();
    want.sort();
    assert_eq!(got, want);
    let Some(Sharding::Merged(record)) = &m.manifest.sharding else {
        panic!("{:?}", m.manifest.sharding)
    };
    assert_eq!(record.groups.len(), groups(&plan).len(), "a host for every group");

    // Its report has one row per group of the plan; the exports parse.
    let bmf = dir.join("bmf.json");
    let gab = dir.join("smaller.json");
    let report = pvbench()
        .arg("report")
        .arg(&merged)
        .args(["--json", "--no-plots", "--export"])
        .arg(format!("bmf={}", bmf.display()))
        .arg("--export")
        .arg(format!("customSmallerIsBetter={}", gab.display()))
        .output()
        .unwrap();
    assert!(report.status.success(), "{}", text(&report.stderr));
    let json: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let rows: BTreeSet<GroupKey> = ["kernbench", "pgbench"]
        .iter()
        .flat_map(|w| json[w].as_array().unwrap())
        .map(|row| serde_json::from_value(row["group"].clone()).unwrap())
        .collect();
    assert_eq!(rows, groups(&plan));
    let bmf: serde_json::Value = serde_json::from_slice(&std::fs::read(&bmf).unwrap()).unwrap();
    assert!(bmf.as_object().unwrap().len() <= 6, "{bmf}");
    let gab: serde_json::Value = serde_json::from_slice(&std::fs::read(&gab).unwrap()).unwrap();
    assert!(gab.as_array().unwrap().iter().all(|e| e["unit"] == "s"), "{gab}");

    // The gate reads it too: one repetition is too few to judge (exit 2),
    // which it must say rather than pass.
    let baseline = dir.join("baseline.json");
    let saved = pvbench()
        .args(["baseline", "save"])
        .arg(&merged)
        .arg("--out")
        .arg(&baseline)
        .output()
        .unwrap();
    assert!(saved.status.success(), "{}", text(&saved.stderr));
    let gate = pvbench()
        .args(["gate", "--quiet", "--baseline"])
        .arg(&baseline)
        .arg(&merged)
        .output()
        .unwrap();
    assert_eq!(
        gate.status.code(),
        Some(2),
        "{}{}",
        text(&gate.stdout),
        text(&gate.stderr)
    );
    assert_eq!(our_qemus(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn plan_shows_every_shard_and_bad_shards_are_refused_before_anything_runs() {
    let out = pvbench()
        .args(["plan", "--profile", "full", "--shards", "4"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for k in 1..=4 {
        assert!(stdout.contains(&format!("shard {k}/4: ")), "{stdout}");
    }
    assert!(stdout.contains("kernbench 3x"), "{stdout}");
    let json = pvbench()
        .args(["plan", "--profile", "full", "--shards", "2", "--json"])
        .output()
        .unwrap();
    let partition: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(partition["shards"].as_array().unwrap().len(), 2);

    let too_many = pvbench()
        .args(["plan", "--profile", "full", "--shards", "10"])
        .output()
        .unwrap();
    assert_eq!(too_many.status.code(), Some(2));
    assert!(
        text(&too_many.stderr).contains("at most 9 shards"),
        "{}",
        text(&too_many.stderr)
    );
    let dir = scratch("bad-shard");
    for (bad, why) in [
        ("3/2", "must be 1 to 2"),
        ("2", "expected K/N"),
        ("1/0", "at least 1"),
        // The quick profile has 5 groups: refused before the image is built.
        ("6/6", "at most 5 shards"),
    ] {
        let out = pvbench()
            .args([
                "run",
                "--accel",
                "tcg",
                "--profile",
                "quick",
                "--shard",
                bad,
                "--out",
            ])
            .arg(dir.join("out"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(text(&out.stderr).contains(why), "{bad}: {}", text(&out.stderr));
        assert!(!dir.join("out").exists(), "{bad}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
