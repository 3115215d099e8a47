//! `pvbench run` with real guests under TCG: a tiny matrix end to end, Ctrl-C
//! and --resume, a guest that never starts its workload, a run censored at its
//! cap, a guest that stalls, bad matrix files, several runs in one boot.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{image, pvbench, text};
use pvbench::results::{CellStatus, FailureKind, LockMode, Results, Workload};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pvbench-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `body` as the matrix file in `dir`.
fn write_toml(dir: &Path, body: String) -> PathBuf {
    let path = dir.join("matrix.toml");
    std::fs::write(&path, body).unwrap();
    path
}

/// A matrix small enough for a test; `extra` is prepended (top-level keys).
fn write_matrix(dir: &Path, extra: &str, memory_mib: u32) -> PathBuf {
    write_toml(
        dir,
        format!(
            r#"{extra}
locks = ["base", "pv"]
overcommit = ["1x", "2x"]
reps = 1
vcpus = 2
memory_mib = {memory_mib}
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
}

fn run(matrix: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    image();
    pvbench()
        .args(["run", "--accel", "tcg", "--quiet", "--matrix"])
        .arg(matrix)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// QEMU processes whose command line carries this test's memory size.
fn qemus_with_memory(memory_mib: u32) -> Vec<u32> {
    let marker = format!("{memory_mib}M");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = text(&cmd);
            cmd.contains("qemu-system") && cmd.split('\0').any(|w| w == marker)
        })
        .collect()
}

#[test]
fn tiny_matrix_runs_every_cell() {
    let dir = scratch("tiny");
    let out = dir.join("out");
    let output = run(&write_matrix(&dir, "", 500), &out, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let results = Results::load(&out).unwrap();
    assert_eq!(results.manifest.cells.len(), 6);
    assert_eq!(results.cells.len(), 6, "every cell has a result");
    assert_eq!(results.manifest.provenance.accel, "tcg");
    for cell in &results.cells {
        let id = cell.key.id();
        assert!(
            !matches!(cell.status, CellStatus::Failed { .. }),
            "{id} failed: {:?}",
            cell.status
        );
        assert!(
            cell.guests.len() == cell.key.overcommit.factor() as usize,
            "{id}: {:?}",
            cell.guests
        );
        if cell.status == CellStatus::Completed {
            let (value, bound) = cell.value().unwrap();
            assert!(value > 0.0 && !bound, "{id}: {value}");
            let latency = cell.latency_us.expect("latency from the metrics stream");
            assert_eq!(latency.count, cell.ops, "{id}: every operation's latency arrived");
            if cell.key.workload == Workload::Kernbench {
                assert_eq!(cell.ops, 17, "{id}: 16 compile jobs and the link");
            }
        }
        // Finished guests report the slow-path counters; base cells have none.
        // (A censored guest is stopped before it prints them.)
        if cell.status == CellStatus::Completed {
            let pv = cell.pvlock.expect("stats line");
            if cell.key.lock == LockMode::Base {
                assert_eq!(pv.taken_slow, 0, "{id}");
            }
        }
        // The guests' CPU is counted over the repetitions the guest marked:
        // inside its work (which also writes and removes its data), and about
        // its measured time (the host reads each mark a little after the
        // guest prints it: a loose bound, this is no timing test).
        if cell.status == CellStatus::Completed {
            let times = cell.times.expect("phase times");
            let marked = times.marked_s.expect("the guest marked its repetitions");
            assert!(marked > 0.0 && marked < times.work_s, "{id}: {times:?}");
            assert!(
                marked >= cell.elapsed_s * 0.9,
                "{id}: {marked} < {}",
                cell.elapsed_s
            );
            assert!(
                cell.guests.iter().all(|g| g.wall_s == marked),
                "{id}: {:?}",
                cell.guests
            );
        }
        // Every guest's vCPU threads were found by name and their run delays
        // read over the measured work.
        for g in &cell.guests {
            assert_eq!(g.vcpu_run_delay_s.len(), g.vcpus as usize, "{id}: {g:?}");
            let sum: f64 = g.vcpu_run_delay_s.iter().sum();
            // The total is summed in nanoseconds, the list in seconds.
            let total = g.run_delay_s.expect("run delay recorded");
            assert!((total - sum).abs() < 1e-6, "{id}: {g:?}");
            assert!(
                sum >= 0.0 && sum <= g.wall_s * f64::from(g.vcpus) + 1.0,
                "{id}: {g:?}"
            );
        }
        let files = results::cell_files(&out, &id);
        assert!(files.iter().any(|f| f.ends_with(".hlog")), "{id}: {files:?}");
        // The guest's clock runs at the host's TSC rate, as the host measured
        // it: not its own calibration against PIT ticks, which a guest booted
        // next to a hog (the 2x cells) gets wrong.
        let log = std::fs::read_to_string(out.join("cells").join(&id).join("bench.serial.log")).unwrap();
        let host_mhz = pvbench::vm::tsc::host_mhz().expect("an x86_64 host with a steady TSC");
        assert!(
            log.contains(&format!(" tsc_mhz={host_mhz} ")),
            "{id}: host {host_mhz} MHz\n{log}"
        );
    }
    // ...and the run records the rate it gave them.
    assert_eq!(
        results.manifest.provenance.guest_tsc_mhz,
        pvbench::vm::tsc::host_mhz()
    );
    // `pvbench run` ends with the report, written beside the results.
    assert!(
        text(&output.stdout).contains("kernbench-like"),
        "{}",
        text(&output.stdout)
    );
    assert!(out.join("report.md").is_file());

    // A baseline from these results, and the gate on them: one repetition is
    // too few to judge, which the gate must say (exit 2) rather than pass.
    let baseline = dir.join("baseline.json");
    let saved = pvbench()
        .args(["baseline", "save"])
        .arg(&out)
        .arg("--out")
        .arg(&baseline)
        .output()
        .unwrap();
    assert!(saved.status.success(), "{}", text(&saved.stderr));
    let gate = pvbench()
        .args(["gate", "--quiet", "--baseline"])
        .arg(&baseline)
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        gate.status.code(),
        Some(2),
        "{}{}",
        text(&gate.stdout),
        text(&gate.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

mod results {
    use std::path::Path;

    pub fn cell_files(out: &Path, id: &str) -> Vec<String> {
        std::fs::read_dir(out.join("cells").join(id))
            .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
            .unwrap_or_default()
    }
}

#[test]
fn interrupted_matrix_resumes_and_leaves_no_qemu() {
    let dir = scratch("resume");
    let out = dir.join("out");
    let matrix = write_matrix(&dir, "", 501);
    image();
    let child = pvbench()
        .args(["run", "--accel", "tcg", "--quiet", "--matrix"])
        .arg(&matrix)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first = out.join("cells").join("kernbench-1x-base-r1.json");
    let t = Instant::now();
    while !first.is_file() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no cell finished in 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Ctrl-C (SIGINT) while the second cell runs: once its guests are up (the
    // first cell's are gone by the time its result is written).
    while qemus_with_memory(501).is_empty() {
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
    assert!(
        stderr.contains("interrupted") && stderr.contains("--resume"),
        "{stderr}"
    );
    assert!(
        qemus_with_memory(501).is_empty(),
        "QEMU left running after Ctrl-C"
    );
    let kept = std::fs::read(&first).unwrap();

    // Without --resume the directory is refused; with it the rest runs.
    let refused = run(&matrix, &out, &[]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("--resume"),
        "{}",
        text(&refused.stderr)
    );
    let resumed = run(&matrix, &out, &["--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    let results = Results::load(&out).unwrap();
    assert_eq!(results.cells.len(), 6);
    for cell in &results.cells {
        assert_eq!(
            cell.status.failure(),
            None,
            "{}: {:?}",
            cell.key.id(),
            cell.status
        );
        // The host around every cell: the one-core reference, and the
        // core-to-core round trip where there are two CPUs to pin to.
        let host = cell.host.expect("host readings");
        assert!(host.reference_before_ms > 0.0 && host.reference_after_ms > 0.0);
        if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
            assert!(host.core_to_core_ns().is_some_and(|ns| ns > 0.0), "{host:?}");
        }
    }
    assert_eq!(
        std::fs::read(&first).unwrap(),
        kept,
        "a finished cell was rewritten"
    );

    // A different matrix in the same directory is never mixed in.
    let other = write_matrix(&dir, "", 502);
    let mixed = run(&other, &out, &["--resume"]);
    assert_eq!(mixed.status.code(), Some(2));
    assert!(
        text(&mixed.stderr).contains("different matrix"),
        "{}",
        text(&mixed.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn guest_that_never_starts_fails_its_cell_and_the_matrix_goes_on() {
    let dir = scratch("hang");
    let out = dir.join("out");
    // No guest gets from QEMU's start to its workload in 50 ms under TCG.
    let output = run(&write_matrix(&dir, "start_timeout_s = 0.05", 503), &out, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let results = Results::load(&out).unwrap();
    assert_eq!(results.cells.len(), 6, "the matrix went on after failed cells");
    for cell in &results.cells {
        match &cell.status {
            CellStatus::Failed { reason, .. } => assert!(
                reason.contains("never started") || reason.contains("did not start hogging"),
                "{reason}"
            ),
            other => panic!("{}: {other:?}", cell.key.id()),
        }
        let log = out.join("cells").join(cell.key.id());
        assert!(std::fs::read_dir(&log)
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().ends_with(".serial.log") }));
    }
    assert!(qemus_with_memory(503).is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_matrix_files_are_refused_before_any_guest_starts() {
    let dir = scratch("bad");
    let good = std::fs::read_to_string(write_matrix(&dir, "", 504)).unwrap();
    for (name, body, expect) in [
        (
            "unknown-workload",
            good.replace("[pgbench]", "[sysbench]"),
            "unknown field",
        ),
        (
            "empty-locks",
            good.replace(r#"locks = ["base", "pv"]"#, "locks = []"),
            "`locks` is empty",
        ),
        (
            "twice-pv",
            good.replace(r#"locks = ["base", "pv"]"#, r#"locks = ["base", "pv", "pv"]"#),
            "lists pv twice",
        ),
        (
            "unknown-mode",
            good.replace(r#"locks = ["base", "pv"]"#, r#"locks = ["base", "mcs"]"#),
            "`base`, `pv`, `qspin`, `pvqspin`, `tas`",
        ),
        (
            "zero-vcpus",
            good.replace("vcpus = 2", "vcpus = 0"),
            "`vcpus` must be",
        ),
        ("over-budget", format!("budget_s = 5\n{good}"), "over its budget"),
        ("not-toml", "locks = [".to_string(), "not-toml.toml"),
    ] {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, body).unwrap();
        let out = dir.join(format!("{name}-out"));
        let output = pvbench()
            .args(["run", "--accel", "tcg", "--matrix"])
            .arg(&path)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(expect), "{name}: {expect:?} not in {stderr}");
        // Refused before the run began: the run writes its manifest before any
        // guest starts, and there is none.
        assert!(!out.exists(), "{name}: {} was created", out.display());
    }
    assert!(qemus_with_memory(504).is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

/// A one-group matrix at 1x: kernbench only, base only.
fn write_kernbench_matrix(dir: &Path, extra: &str, cap_s: f64, memory_mib: u32) -> PathBuf {
    write_toml(
        dir,
        format!(
            r#"{extra}
locks = ["base"]
overcommit = ["1x"]
reps = 1
vcpus = 2
memory_mib = {memory_mib}
spin_tcg = 256
# Function, not figures: no waiting out the host's CPUs apart (up to 90 s a cell).
apart_reruns = 0
[kernbench]
scale = 1
cap_s = {cap_s}
"#
        ),
    )
}

#[test]
fn a_run_stopped_at_its_cap_is_censored_not_failed() {
    let dir = scratch("censored");
    let out = dir.join("out");
    // No kernbench-like build of scale 1 finishes in 10 ms under TCG.
    let output = run(&write_kernbench_matrix(&dir, "", 0.01, 505), &out, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let results = Results::load(&out).unwrap();
    let cell = &results.cells[0];
    assert_eq!(cell.status, CellStatus::Censored, "{:?}", cell.status);
    let (value, bound) = cell.value().unwrap();
    assert!(
        bound && value >= 0.01,
        "a censored time is a bound of at least the cap: {value}"
    );
    assert!(qemus_with_memory(505).is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_guest_that_stops_progressing_fails_as_stalled_before_its_cap() {
    let dir = scratch("stall");
    let out = dir.join("out");
    // inject=stall: the guest announces its workload, then never completes an
    // operation while staying awake ~10% of the time (above the idle rule's 5%
    // of a core). Only the no-progress rule can catch it; without it the cell
    // would run to its 600 s cap and be recorded as censored.
    let matrix = write_kernbench_matrix(&dir, r#"bench_args = ["inject=stall"]"#, 600.0, 506);
    let output = run(&matrix, &out, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let results = Results::load(&out).unwrap();
    let cell = &results.cells[0];
    assert_eq!(
        cell.status.failure(),
        Some(FailureKind::Stall),
        "{:?}",
        cell.status
    );
    let CellStatus::Failed { reason, .. } = &cell.status else {
        unreachable!()
    };
    assert!(reason.contains("completed no operation"), "{reason}");
    // And where its vCPUs were when it was killed, from QEMU's monitor.
    assert!(reason.contains("; vCPUs at the kill: cpu0 RIP="), "{reason}");
    let log =
        std::fs::read_to_string(out.join("cells").join(cell.key.id()).join("bench.serial.log")).unwrap();
    assert!(log.contains("inject=stall"), "{log}");
    // The report counts it in its row.
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("| kernbench 1x | base | 1 | 0 | 0 | 1 | 0 |"),
        "{report}"
    );
    assert!(qemus_with_memory(506).is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_boot_of_several_runs_records_each_and_is_worth_its_measured_mean() {
    let dir = scratch("runs-per-boot");
    let out = dir.join("out");
    let matrix = write_kernbench_matrix(&dir, "runs_per_boot = 2\nwarmup = 1", 30.0, 507);
    let output = run(&matrix, &out, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let results = Results::load(&out).unwrap();
    let cell = &results.cells[0];
    assert_eq!(cell.status, CellStatus::Completed, "{:?}", cell.status);
    // The guest ran the warm-up and both measured builds, one figure each.
    let runs = cell.runs.as_ref().expect("a boot of three builds records them");
    assert_eq!((runs.warmup, runs.values.len()), (1, 3), "{runs:?}");
    assert!(runs.values.iter().all(|&s| s > 0.0), "{runs:?}");
    let measured = (runs.values[1] + runs.values[2]) / 2.0;
    assert!(
        (cell.elapsed_s - measured).abs() < 1e-9,
        "{} vs {measured}",
        cell.elapsed_s
    );
    // The cap covers the boot's three builds; the cell's wall time its whole life.
    assert_eq!(cell.cap_s, 90.0);
    let wall = cell.cell_wall_s.unwrap();
    assert!(wall > runs.values.iter().sum::<f64>(), "{wall} {runs:?}");
    // Its phases: no hogs at 1x, a boot, the tree written, three builds.
    let t = cell.times.unwrap();
    assert!(t.boot_s > 0.0 && t.setup_s >= 0.0, "{t:?}");
    assert!(t.work_s >= runs.values.iter().sum::<f64>(), "{t:?} {runs:?}");
    assert!(t.hogs_s + t.boot_s + t.setup_s + t.work_s <= wall, "{t:?} {wall}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("time measured"), "{report}");
    // Each build ran the same work: one checksum (the guest checks it), and
    // the serial log says three repetitions.
    let log =
        std::fs::read_to_string(out.join("cells").join(cell.key.id()).join("bench.serial.log")).unwrap();
    assert!(log.contains("kernbench: reps=3"), "{log}");
    assert!(qemus_with_memory(507).is_empty());
    let _ = std::fs::remove_dir_all(dir);
}
