//! `pvbench report`: golden outputs for a small recorded results directory,
//! and the rules behind the figures (censored bounds, Student's t verdicts,
//! noise warnings, missing and failed cells, CPU shares, plots).
//!
//! The fixture in fixtures/results/quick is written by `fixture()` below.
//! After a deliberate change, regenerate it and the golden outputs with
//! `PVBENCH_BLESS=1 cargo test -p pvbench --test report` and review the diff.

use std::fs;
use std::path::{Path, PathBuf};

use pvbench::report::{self, Bounded, LockVerdict, RenderOptions, WarningKind};
use pvbench::results::{
    self, CellKey, CellResult, CellStatus, GuestCpu, GuestRole, LockMode, LockStats, Overcommit, Percentiles,
    Provenance, Results, RunManifest, Workload,
};
use pvbench::stats::Confidence;

mod common;

/// Cargo runs integration tests in the package root (host-runner/).
const FIXTURE: &str = "tests/fixtures/results/quick";
const EXPECTED: &str = "tests/fixtures/results/expected";

/// The pv arm's comparison with base in a group of the report.
fn pv(g: &report::LockComparison) -> &report::ModeComparison {
    g.mode(LockMode::Pv).expect("a pv arm")
}

fn bless() -> bool {
    std::env::var_os("PVBENCH_BLESS").is_some()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pvbench-report-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------
// Fixture generator: results as `pvbench run --profile quick` writes them, on
// a 2-core host with 2 vCPUs per guest, with one of each awkward case.

fn provenance() -> Provenance {
    Provenance {
        host_cpu: "Intel(R) Xeon(R) CPU @ 2.20GHz".into(),
        host_cores: 2,
        host_kernel: "6.1.0-28-cloud-amd64".into(),
        qemu: "QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u12)".into(),
        accel: "tcg".into(),
        image_id: "3f9c2a1b7d4e5f60".into(),
        git_revision: "50b627e".into(),
        matrix_hash: "a1b2c3d4e5f60718".into(),
        pvbench_version: "0.1.0".into(),
        started_unix: 1_795_600_800,
        hostname: None,
        guest_tsc_mhz: Some(2596),
    }
}

fn key(
    workload: Workload,
    overcommit: Overcommit,
    clients: Option<u32>,
    lock: LockMode,
    rep: u32,
) -> CellKey {
    CellKey {
        workload,
        overcommit,
        clients,
        migrated: false,
        lock,
        rep,
    }
}

/// Percentiles growing from `p50` with a `tail` factor.
fn latency(p50: u64, tail: f64, count: u64) -> Percentiles {
    let at = |f: f64| (p50 as f64 * f).round() as u64;
    Percentiles {
        count,
        mean: r6(p50 as f64 * 1.1),
        p50,
        p90: at(1.4),
        p99: at(2.5 * tail),
        p999: at(4.0 * tail),
        p9999: at(6.0 * tail),
        max: at(8.0 * tail),
    }
}

fn pv_stats(scale: u64, rep: u32) -> LockStats {
    let s = scale * (10 + u64::from(rep)) / 10;
    LockStats {
        taken_slow: 120 * s,
        taken_slow_pickup: 30 * s,
        halted: 85 * s,
        spurious_wakeups: 3 * s,
        released_slow: 84 * s,
        released_slow_kicked: 82 * s,
        time_blocked_cycles: 12_000_000 * s,
        ..LockStats::default()
    }
}

/// `x` to 6 decimals: such short decimals read back from JSON exactly
/// (serde_json's default float parser is not correctly rounded for long ones).
fn r6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The bench guest and `hogs` hog guests, 2 vCPUs each, for `wall_s`.
fn guests(wall_s: f64, bench_per_vcpu: f64, hogs: usize, hog_per_vcpu: f64) -> Vec<GuestCpu> {
    let wall_s = r6(wall_s);
    let mut g = vec![GuestCpu::new(
        GuestRole::Bench,
        2,
        r6(wall_s * 2.0 * bench_per_vcpu),
        wall_s,
    )];
    g.extend((0..hogs).map(|_| GuestCpu::new(GuestRole::Hog, 2, r6(wall_s * 2.0 * hog_per_vcpu), wall_s)));
    g
}

/// What a cell's value is in the fixture.
enum Run {
    Done(f64),
    Capped(f64),
    Failed(&'static str),
    Missing,
}

fn kernbench_runs(oc: Overcommit, lock: LockMode) -> [Run; 3] {
    use Run::*;
    match (oc, lock) {
        (Overcommit::X1, LockMode::Base) => [Done(4.12), Done(4.05), Done(4.21)],
        (Overcommit::X1, LockMode::Pv) => [Done(4.18), Done(4.09), Done(4.15)],
        // Noisy: CV 13.7 %.
        (Overcommit::X2, LockMode::Base) => [Done(9.8), Done(12.9), Done(11.2)],
        (Overcommit::X2, LockMode::Pv) => [Done(6.1), Done(6.4), Done(5.9)],
        // Every base run reached the 15 s cap.
        (Overcommit::X3, LockMode::Base) => [Capped(15.02), Capped(15.01), Capped(15.03)],
        (Overcommit::X3, LockMode::Pv) => [Done(7.9), Done(8.4), Done(8.1)],
        (_, other) => unreachable!("the fixture has no {other} arm"),
    }
}

fn pgbench_runs(clients: u32, lock: LockMode) -> [Run; 3] {
    use Run::*;
    match (clients, lock) {
        // pv's small overhead without contention, as in the seed.
        (1, LockMode::Base) => [Done(412.5), Done(405.1), Done(409.8)],
        (1, LockMode::Pv) => [Done(398.7), Done(401.2), Done(396.5)],
        (_, LockMode::Base) => [
            Done(690.2),
            Failed("the workload never started: killed after 30 s (no start line)"),
            Capped(120.4),
        ],
        (_, LockMode::Pv) => [Done(731.5), Done(725.0), Missing],
        (_, other) => unreachable!("the fixture has no {other} arm"),
    }
}

/// The fixture's manifest and cell results (missing cells have none).
pub fn fixture() -> (RunManifest, Vec<CellResult>) {
    let mut plan = Vec::new();
    let mut cells = Vec::new();
    let arms = |rep: u32| {
        if rep % 2 == 1 {
            [LockMode::Base, LockMode::Pv]
        } else {
            [LockMode::Pv, LockMode::Base]
        }
    };
    for oc in [Overcommit::X1, Overcommit::X2, Overcommit::X3] {
        for rep in 1..=3 {
            for lock in arms(rep) {
                let k = key(Workload::Kernbench, oc, None, lock, rep);
                plan.push(k);
                let hogs = oc.hog_guests();
                let (bench_share, hog_share) = match (hogs, lock) {
                    (0, _) => (0.93, 0.0),
                    (_, LockMode::Base) => (0.52 / hogs as f64 * 1.1, 0.46 / hogs as f64),
                    (_, LockMode::Pv) => (0.41 / hogs as f64 * 1.1, 0.55 / hogs as f64),
                    (_, other) => unreachable!("the fixture has no {other} arm"),
                };
                let pvlock = match lock {
                    LockMode::Base => LockStats::default(),
                    LockMode::Pv => pv_stats([1, 8, 15][hogs], rep),
                    other => unreachable!("the fixture has no {other} arm"),
                };
                let tail = [1.0, 2.0, 4.0][hogs] * if lock == LockMode::Base { 1.5 } else { 1.0 };
                let cell = |status, elapsed_s: f64| CellResult {
                    key: k,
                    status,
                    elapsed_s,
                    cap_s: 15.0,
                    ops: 24,
                    tps: None,
                    latency_us: Some(latency(52_000 + 1000 * u64::from(rep), tail, 24)),
                    pvlock: Some(pvlock),
                    queued: None,
                    tas: None,
                    kick_wake_ns: None,
                    guests: guests(elapsed_s + 0.8, bench_share, hogs, hog_share),
                    host: None,
                    runs: None,
                    cell_wall_s: None,
                    times: None,
                    migrations: None,
                    vcpus_at_cap: None,
                    reruns_apart: 0,
                };
                match &kernbench_runs(oc, lock)[rep as usize - 1] {
                    Run::Done(v) => cells.push(cell(CellStatus::Completed, *v)),
                    Run::Capped(v) => {
                        let mut c = cell(CellStatus::Censored, *v);
                        c.ops = 17;
                        c.latency_us = Some(latency(52_000, tail, 17));
                        cells.push(c);
                    }
                    Run::Failed(_) | Run::Missing => unreachable!("kernbench has none"),
                }
            }
        }
    }
    for clients in [1, 2] {
        for rep in 1..=3 {
            for lock in arms(rep) {
                let k = key(Workload::Pgbench, Overcommit::X1, Some(clients), lock, rep);
                plan.push(k);
                let pvlock = match lock {
                    LockMode::Base => LockStats::default(),
                    LockMode::Pv => pv_stats(u64::from(clients), rep),
                    other => unreachable!("the fixture has no {other} arm"),
                };
                let cell = |status, elapsed_s: f64, tps: f64| CellResult {
                    key: k,
                    status,
                    elapsed_s,
                    cap_s: 10.0,
                    ops: (tps * elapsed_s).round() as u64,
                    tps: Some(tps),
                    latency_us: Some(latency(
                        2300 * u64::from(clients) + 10 * u64::from(rep),
                        1.2,
                        1200,
                    )),
                    pvlock: Some(pvlock),
                    queued: None,
                    tas: None,
                    kick_wake_ns: None,
                    guests: guests(elapsed_s + 0.5, 0.9, 0, 0.0),
                    host: None,
                    runs: None,
                    cell_wall_s: None,
                    times: None,
                    migrations: None,
                    vcpus_at_cap: None,
                    reruns_apart: 0,
                };
                match &pgbench_runs(clients, lock)[rep as usize - 1] {
                    Run::Done(tps) => cells.push(cell(CellStatus::Completed, 3.0, *tps)),
                    Run::Capped(tps) => cells.push(cell(CellStatus::Censored, 10.0, *tps)),
                    Run::Failed(reason) => cells.push(CellResult::new(
                        k,
                        // As results written before failure kinds existed: the
                        // kind comes from the reason.
                        CellStatus::Failed {
                            reason: (*reason).into(),
                            kind: None,
                        },
                    )),
                    Run::Missing => {}
                }
            }
        }
    }
    let matrix = serde_json::json!({
        "locks": ["base", "pv"], "overcommit": ["1x", "2x", "3x"], "reps": 3, "vcpus": 2,
        "memory_mib": 512, "budget_s": 600.0, "spin_tcg": 256,
        "kernbench": {"scale": 1, "cap_s": 15.0},
        "pgbench": {"clients": [1, 2], "overcommit": ["1x"], "scale": 1, "duration_s": 3.0, "cap_s": 10.0}
    });
    let manifest = RunManifest {
        provenance: provenance(),
        matrix,
        cells: plan,
        target_mde_pct: None,
        sharding: None,
    };
    (manifest, cells)
}

fn write_results(dir: &Path, manifest: &RunManifest, cells: &[CellResult]) {
    let _ = fs::remove_dir_all(dir.join(results::CELLS_DIR));
    results::write_json_atomic(&dir.join(results::MANIFEST_FILE), manifest).unwrap();
    for cell in cells {
        results::write_json_atomic(&results::cell_path(dir, &cell.key), cell).unwrap();
    }
}

fn in_memory(manifest: RunManifest, cells: Vec<CellResult>) -> Results {
    Results {
        dir: PathBuf::from("in-memory"),
        manifest,
        cells,
    }
}

// ---------------------------------------------------------------------------
// Golden outputs.

#[test]
fn recorded_fixture_is_the_generators() {
    let (manifest, cells) = fixture();
    if bless() {
        write_results(Path::new(FIXTURE), &manifest, &cells);
    }
    let recorded = Results::load(Path::new(FIXTURE)).expect("the recorded fixture loads");
    assert_eq!(recorded.manifest, manifest);
    assert_eq!(recorded.cells, cells);
    assert_eq!(recorded.cells.len(), 29, "30 planned, one missing");
}

/// Compares `actual` with the golden file `name`, or rewrites it when blessing.
fn golden(name: &str, actual: &str) {
    let path = Path::new(EXPECTED).join(name);
    if bless() {
        fs::create_dir_all(EXPECTED).unwrap();
        fs::write(&path, actual).unwrap();
    }
    let expected = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if actual != expected {
        let out = std::env::temp_dir().join(format!("pvbench-report-actual-{name}"));
        fs::write(&out, actual).unwrap();
        panic!(
            "{name} differs from {} (actual in {}; diff them, and bless if intended)",
            path.display(),
            out.display()
        );
    }
}

fn fixture_report() -> report::Report {
    let results = Results::load(Path::new(FIXTURE)).unwrap();
    report::render(&results, &RenderOptions::default())
}

#[test]
fn golden_text() {
    golden("report.txt", &fixture_report().text());
}

#[test]
fn golden_json() {
    golden("report.json", &(fixture_report().json() + "\n"));
}

#[test]
fn golden_markdown_with_plot_links() {
    let dir = scratch("markdown");
    let report = fixture_report();
    let plots = report.write_plots(&dir.join("plots")).unwrap();
    let md = dir.join("report.md");
    report.write_markdown(&md, &plots).unwrap();
    golden("report.md", &fs::read_to_string(&md).unwrap());
    // Atomic: nothing but the report and the plots' directory is left.
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["plots", "report.md"]);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn cli_prints_the_golden_text_and_writes_markdown() {
    let dir = scratch("cli");
    let md = dir.join("report.md");
    let out = common::pvbench()
        .args(["report", FIXTURE, "--plots"])
        .arg(dir.join("plots"))
        .arg("--markdown")
        .arg(&md)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = fs::read_to_string(Path::new(EXPECTED).join("report.txt")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    assert_eq!(
        fs::read_to_string(&md).unwrap(),
        fs::read_to_string(Path::new(EXPECTED).join("report.md")).unwrap()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("plots in") && stderr.contains("Markdown report in"),
        "{stderr}"
    );

    let json = common::pvbench()
        .args(["report", FIXTURE, "--json", "--no-plots"])
        .output()
        .unwrap();
    assert!(json.status.success());
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["cells"]["planned"], 30);
    assert_eq!(value["locks"], serde_json::json!(["base", "pv"]));
    assert_eq!(value["kernbench"][2]["modes"][0]["arm"]["lock"], "pv");
    assert_eq!(value["kernbench"][2]["modes"][0]["verdict"]["kind"], "censored");
    // --no-plots wrote nothing into the committed fixture.
    assert!(!Path::new(FIXTURE).join(report::PLOTS_DIR).exists());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn cli_refuses_what_is_not_a_results_directory() {
    let dir = scratch("not-results");
    let out = common::pvbench().arg("report").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a results directory"), "{stderr}");
    let out = common::pvbench()
        .args(["report", FIXTURE, "--no-plots", "-c", "96"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------------------
// The figures, against hand-computed values.

#[test]
fn fixture_figures() {
    let r = fixture_report();
    assert_eq!(
        (
            r.cells.planned,
            r.cells.completed,
            r.cells.censored,
            r.cells.failed,
            r.cells.missing
        ),
        (30, 24, 4, 1, 1)
    );
    // 1x: means 4.12667 and 4.14, no difference.
    let x1 = &r.kernbench[0];
    let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol;
    match &pv(x1).verdict {
        LockVerdict::Student {
            improvement_percent,
            proven,
            ..
        } => {
            // (4.126667 - 4.14) / 4.126667 = -0.3231 %.
            assert!(
                close(*improvement_percent, -0.323_102, 1e-5),
                "{improvement_percent}"
            );
            assert!(!proven);
        }
        v => panic!("{v:?}"),
    }
    // 2x: base 11.3 (sd 1.5524), pv 6.13333 (sd 0.2517): improvement 45.7227 %,
    // pooled s = 1.112055, half-width 2.776 x 1.112055 x sqrt(2/3) = 2.520578.
    match &pv(&r.kernbench[1]).verdict {
        LockVerdict::Student {
            improvement_percent,
            half_width,
            proven,
            better,
            ..
        } => {
            assert!(
                close(*improvement_percent, 45.7227, 1e-4),
                "{improvement_percent}"
            );
            assert!(close(*half_width, 2.520_578, 1e-6), "{half_width}");
            assert!(proven);
            assert_eq!(*better, Some(LockMode::Pv));
        }
        v => panic!("{v:?}"),
    }
    // 3x: all base runs capped (15.01..15.03), pv 7.9, 8.4, 8.1.
    match &pv(&r.kernbench[2]).verdict {
        LockVerdict::Censored {
            improvement_percent,
            dominance,
            gehan_p,
            proven,
            ..
        } => {
            // >= (15.02 - 8.13333) / 15.02 = 45.8500 %.
            let mean_pv = (7.9 + 8.4 + 8.1) / 3.0;
            assert!(close(
                improvement_percent.lo,
                100.0 * (15.02 - mean_pv) / 15.02,
                1e-9
            ));
            assert_eq!(improvement_percent.hi, 100.0);
            let d = dominance.unwrap();
            assert_eq!(d.better, LockMode::Pv);
            assert!(close(d.factor, 15.01 / 8.4, 1e-12));
            assert!(close(*gehan_p, 0.1, 1e-12) && !proven);
        }
        v => panic!("{v:?}"),
    }
    // pgbench c2: base 690.2 and a stalled run <= 120.4 (one failed), pv 731.5,
    // 725 (one missing): too few for Student, bounds and Gehan instead.
    let c2 = &r.pgbench[1];
    assert_eq!(
        (c2.base.n(), c2.base.failed, pv(c2).arm.n(), pv(c2).arm.missing),
        (2, 1, 2, 1)
    );
    match &pv(c2).verdict {
        LockVerdict::Censored {
            improvement_percent: Bounded { lo, hi },
            gehan_p,
            ..
        } => {
            assert!(close(*lo, 100.0 * (728.25 / 405.3 - 1.0), 1e-9), "{lo}");
            assert!(close(*hi, 100.0 * (728.25 / 345.1 - 1.0), 1e-9), "{hi}");
            // All of pv above all of base: 2 of C(4, 2) = 6 as extreme.
            assert!(close(*gehan_p, 1.0 / 3.0, 1e-12));
        }
        v => panic!("{v:?}"),
    }
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].id, "pgbench-1x-c2-base-r2");
    assert_eq!(r.missing, ["pgbench-1x-c2-pv-r3"]);
}

#[test]
fn text_shows_bounds_not_means_for_capped_runs() {
    let text = fixture_report().text();
    // Notes are wrapped; look for phrases in the text as one line.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let row = text.lines().find(|l| l.starts_with("case 3x:")).unwrap();
    assert!(row.contains(">= 15.02 (3/3 capped)"), "{row}");
    assert!(row.contains(">= 45.85"), "{row}");
    assert!(row.contains("No difference proven"), "{row}");
    assert!(flat.contains("Every pv run was at least 1.79x faster than every base run"));
    assert!(flat.contains("3 vs 3 runs cannot give less than 0.1"));
    // The stalled pgbench run: an upper bound in min, median and mean, no sd.
    let x = text
        .lines()
        .skip_while(|l| !l.contains("NRCLIENT = 2"))
        .nth(1)
        .unwrap();
    assert!(x.starts_with("x   2      <= 120.4"), "{x}");
    assert!(x.trim_end().ends_with('-'), "{x}");
    // Seed separators, 76 columns.
    for line in text.lines().filter(|l| l.starts_with("+---")) {
        assert_eq!(line.len(), 76, "{line}");
    }
}

/// A sample of `n` values (n - 1 equal, one larger) with the given mean and
/// sample standard deviation: d = sd sqrt(n) apart, the low ones at mean - d/n.
fn with_mean_sd(mean: f64, sd: f64, n: usize) -> Vec<f64> {
    let d = sd * (n as f64).sqrt();
    let low = mean - d / n as f64;
    let mut v = vec![low; n - 1];
    v.push(low + d);
    v
}

fn kernbench_cells(oc: Overcommit, lock: LockMode, values: &[f64], censored: bool) -> Vec<CellResult> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| CellResult {
            key: key(Workload::Kernbench, oc, None, lock, i as u32 + 1),
            status: if censored {
                CellStatus::Censored
            } else {
                CellStatus::Completed
            },
            elapsed_s: v,
            cap_s: 4000.0,
            ops: 1,
            tps: None,
            latency_us: None,
            pvlock: None,
            queued: None,
            tas: None,
            kick_wake_ns: None,
            guests: Vec::new(),
            host: None,
            runs: None,
            cell_wall_s: None,
            times: None,
            migrations: None,
            vcpus_at_cap: None,
            reruns_apart: 0,
        })
        .collect()
}

fn results_of(cells: Vec<CellResult>) -> Results {
    let manifest = RunManifest {
        provenance: provenance(),
        matrix: serde_json::Value::Null,
        cells: cells.iter().map(|c| c.key).collect(),
        target_mde_pct: None,
        sharding: None,
    };
    in_memory(manifest, cells)
}

#[test]
fn seed_kernbench_2x_row() {
    // The seed: 2x, base 778.622 (1092.68), BASE+pv 129.342 (156.324),
    // 83.3883 % improvement. Its run count is not given: with 10 runs each,
    // pooled s = 780.508, t(18) = 2.101, half-width 733.362 > 649.28: no
    // difference proven; with 20 each, t(38) = 2.024, half-width 499.561:
    // proven (hand computation in the comments of each case).
    for (n, hw, proven) in [(10, 733.362_401_7, false), (20, 499.560_508_0, true)] {
        let mut cells = kernbench_cells(
            Overcommit::X2,
            LockMode::Base,
            &with_mean_sd(778.622, 1092.68, n),
            false,
        );
        cells.extend(kernbench_cells(
            Overcommit::X2,
            LockMode::Pv,
            &with_mean_sd(129.342, 156.324, n),
            false,
        ));
        let r = report::render(&results_of(cells), &RenderOptions::default());
        let g = &r.kernbench[0];
        let s = g.base.stats.unwrap();
        assert!((s.mean.lo - 778.622).abs() < 1e-9 && (s.stddev.unwrap() - 1092.68).abs() < 1e-9);
        match &pv(g).verdict {
            LockVerdict::Student {
                improvement_percent,
                half_width,
                improvement_half_width_percent,
                proven: p,
                ..
            } => {
                assert!(
                    (improvement_percent - 83.388_345).abs() < 1e-6,
                    "{improvement_percent}"
                );
                assert!((half_width - hw).abs() < 1e-6, "n {n}: {half_width}");
                assert!((improvement_half_width_percent - half_width * 100.0 / s.mean.lo).abs() < 1e-9);
                assert_eq!(*p, proven, "n {n}");
            }
            v => panic!("{v:?}"),
        }
        let text = r.text();
        let row = text.lines().find(|l| l.starts_with("case 2x:")).unwrap();
        assert!(
            row.contains("778.622 (1092.68)") && row.contains("129.342 (156.324)"),
            "{row}"
        );
        assert!(row.contains("83.3883"), "{row}");
        assert_eq!(row.contains("No difference proven"), !proven, "{row}");
    }
}

#[test]
fn all_base_capped_gives_conservative_bounds() {
    // Base capped at 100 s three times, pv 20, 25, 30: improvement >= (100 -
    // 25) / 100 = 75 %, every pv run >= 100 / 30 = 3.33x faster; the 4-vs-4
    // Gehan test can prove it (p = 2/70).
    let cap = [100.0; 4];
    let mut cells = kernbench_cells(Overcommit::X3, LockMode::Base, &cap, true);
    cells.extend(kernbench_cells(
        Overcommit::X3,
        LockMode::Pv,
        &[20.0, 25.0, 30.0, 25.0],
        false,
    ));
    let r = report::render(&results_of(cells), &RenderOptions::default());
    let g = &r.kernbench[0];
    assert!(g.base.stats.unwrap().stddev.is_none(), "no sd for capped runs");
    match &pv(g).verdict {
        LockVerdict::Censored {
            improvement_percent,
            dominance,
            gehan_p,
            proven,
            better,
            ..
        } => {
            assert!((improvement_percent.lo - 75.0).abs() < 1e-12);
            assert!((dominance.unwrap().factor - 100.0 / 30.0).abs() < 1e-12);
            assert!((gehan_p - 2.0 / 70.0).abs() < 1e-12);
            assert!(*proven);
            assert_eq!(*better, Some(LockMode::Pv));
        }
        v => panic!("{v:?}"),
    }
    let text = r.text();
    assert!(
        text.contains(">= 100 (4/4 capped)") && text.contains(">= 75"),
        "{text}"
    );
    assert!(text.contains("pv faster (rank test p = 0.0286)"), "{text}");
    // No mean is ever printed for the capped arm.
    assert!(!text.contains("100 (0)"), "{text}");
}

#[test]
fn capped_pv_bounds_the_improvement_from_above() {
    let mut cells = kernbench_cells(Overcommit::X2, LockMode::Base, &[10.0, 11.0, 12.0], false);
    cells.extend(kernbench_cells(
        Overcommit::X2,
        LockMode::Pv,
        &[30.0, 30.0, 30.0],
        true,
    ));
    let r = report::render(&results_of(cells), &RenderOptions::default());
    match &pv(&r.kernbench[0]).verdict {
        LockVerdict::Censored {
            improvement_percent,
            dominance,
            ..
        } => {
            // pv >= 30 against base 11: improvement <= 1 - 30/11 = -172.7 %.
            assert!(improvement_percent.lo.is_infinite());
            assert!((improvement_percent.hi - 100.0 * (1.0 - 30.0 / 11.0)).abs() < 1e-9);
            // Every base run >= 30 / 12 = 2.5x faster.
            let d = dominance.unwrap();
            assert_eq!(d.better, LockMode::Base);
            assert!((d.factor - 2.5).abs() < 1e-12);
        }
        v => panic!("{v:?}"),
    }
    assert!(r.text().contains("<= -172.727"));
}

#[test]
fn noise_and_too_few_runs_are_warned() {
    // CV of 10, 12, 14 is 2/12 = 16.7 % (> 10 %); of 10, 10.5, 11 it is 4.8 %.
    let mut cells = kernbench_cells(Overcommit::X1, LockMode::Base, &[10.0, 12.0, 14.0], false);
    cells.extend(kernbench_cells(
        Overcommit::X1,
        LockMode::Pv,
        &[10.0, 10.5, 11.0],
        false,
    ));
    cells.extend(kernbench_cells(
        Overcommit::X2,
        LockMode::Base,
        &[10.0, 10.1],
        false,
    ));
    cells.extend(kernbench_cells(
        Overcommit::X2,
        LockMode::Pv,
        &[9.0, 9.1, 9.0],
        false,
    ));
    let r = report::render(&results_of(cells.clone()), &RenderOptions::default());
    let kinds: Vec<(WarningKind, &str)> = r.warnings.iter().map(|w| (w.kind, w.message.as_str())).collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert_eq!(kinds[0].0, WarningKind::Noisy);
    assert!(kinds[0]
        .1
        .starts_with("kernbench 1x base: coefficient of variation 16.7%"));
    assert_eq!(kinds[1].0, WarningKind::TooFewRuns);
    assert!(kinds[1]
        .1
        .starts_with("kernbench 2x base: 2 runs with a value, fewer than 3"));
    // A looser threshold silences the first.
    let loose = RenderOptions {
        max_cv_percent: 20.0,
        ..RenderOptions::default()
    };
    let r = report::render(&results_of(cells), &loose);
    assert_eq!(r.warnings.len(), 1);
    assert!(r.text().contains("Warnings\n  ! kernbench 2x base: 2 runs"));
}

#[test]
fn missing_and_failed_cells_are_listed() {
    let (mut manifest, cells) = fixture();
    // Plan one more group that never ran.
    let extra = key(Workload::Pgbench, Overcommit::X1, Some(4), LockMode::Base, 1);
    manifest.cells.push(extra);
    let r = report::render(&in_memory(manifest, cells), &RenderOptions::default());
    assert_eq!(r.missing, ["pgbench-1x-c2-pv-r3", "pgbench-1x-c4-base-r1"]);
    let c4 = r.pgbench.last().unwrap();
    assert_eq!(c4.group.clients, Some(4));
    assert!(matches!(
        pv(c4).verdict,
        LockVerdict::TooFew { base: 0, other: 0 }
    ));
    let text = r.text();
    assert!(text.contains("2 of 31 planned cells have no result"));
    assert!(text.contains("--resume --out in-memory"));
    assert!(text.contains("1 cell failed"));
    assert!(text.contains("pgbench-1x-c2-base-r2  other  the workload never started"));
    // Counted per row and kind.
    let row = &r.failures[0];
    assert_eq!(
        (row.group.clients, row.lock, row.cells, row.other, row.failed()),
        (Some(2), LockMode::Base, 3, 1, 1)
    );
    assert_eq!(r.failures.len(), 1);
    assert!(text.contains("x   0     (no runs)") && text.contains("Too few runs to compare (base 0, pv 0)"));
}

#[test]
fn pgbench_blocks_are_pvbench_ministats_output() {
    // The same data through `pvbench ministat -A -q`: identical rows and verdict.
    let r = fixture_report();
    let g = &r.pgbench[0];
    let dir = scratch("ministat");
    let write = |name: &str, values: Vec<f64>| {
        let path = dir.join(name);
        let text: String = values.iter().map(|v| format!("{v}\n")).collect();
        fs::write(&path, text).unwrap();
        path
    };
    let (b, p) = (write("base", g.base.values()), write("pv", pv(g).arm.values()));
    let out = common::pvbench()
        .args(["ministat", "-A", "-q"])
        .arg(&b)
        .arg(&p)
        .output()
        .unwrap();
    let ministat = String::from_utf8(out.stdout).unwrap();
    assert!(ministat.contains("Difference at 95.0% confidence"), "{ministat}");
    let text = r.text();
    assert!(text.contains(&ministat), "{ministat}\nnot in\n{text}");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn confidence_level_changes_the_verdicts() {
    // 1x pgbench: -10.33 TPS, pooled s = 3.12677; proven at 95 % (t = 2.776,
    // half-width 7.087), not at 99.5 %: ministat's table (t = 7.173, its
    // "99.5 %" column being 99.8 %) gives 18.31.
    let results = Results::load(Path::new(FIXTURE)).unwrap();
    let strict = RenderOptions {
        confidence: Confidence::P99_5,
        ..RenderOptions::default()
    };
    assert!(pv(&fixture_report().pgbench[0]).verdict.proven());
    let r = report::render(&results, &strict);
    assert!(!pv(&r.pgbench[0]).verdict.proven());
    assert!(r.text().contains("No difference proven at 99.5% confidence"));
}

#[test]
fn cpu_against_fair_share() {
    // 3x: 3 guests x 2 vCPUs on 2 cores: fair share 2/6 = 0.333. Bench base
    // got 0.52/2 x 1.1 = 0.286 of a core per vCPU: 85.8 % of fair.
    let r = fixture_report();
    let row = r
        .cpu
        .iter()
        .find(|c| c.group.overcommit == Overcommit::X3 && c.lock == LockMode::Base)
        .unwrap();
    assert_eq!((row.guests, row.vcpus, row.host_cores), (3, 2, 2));
    assert!((row.fair_share - 1.0 / 3.0).abs() < 1e-12);
    assert!((row.bench_share - 0.286).abs() < 1e-9, "{}", row.bench_share);
    assert!((row.bench_vs_fair - 0.858).abs() < 1e-9);
    assert!((row.hog_share.unwrap() - 0.23).abs() < 1e-9);
    // 1x: one guest of 2 vCPUs on 2 cores: the share is capped at a whole core.
    let x1 = r
        .cpu
        .iter()
        .find(|c| c.group.overcommit == Overcommit::X1)
        .unwrap();
    assert_eq!(x1.fair_share, 1.0);
    assert_eq!(x1.hog_share, None);
}

#[test]
fn latency_is_the_median_over_runs() {
    // kernbench 1x base: p50 of the runs 53000, 54000, 55000 -> 54000; max
    // is the largest, 8 x 1.5 x 55000.
    let r = fixture_report();
    let row = r
        .latency
        .iter()
        .find(|l| l.group.workload == Workload::Kernbench && l.group.overcommit == Overcommit::X1)
        .filter(|l| l.lock == LockMode::Base)
        .unwrap();
    assert_eq!((row.runs, row.censored, row.samples), (3, 0, 72));
    assert_eq!(row.p50, 54_000.0);
    assert_eq!(row.max, 660_000);
    let capped = r
        .latency
        .iter()
        .find(|l| l.group.overcommit == Overcommit::X3 && l.lock == LockMode::Base)
        .unwrap();
    assert_eq!(capped.censored, 3);
}

#[test]
fn plots_are_svg_with_their_series() {
    let dir = scratch("plots");
    let written = fixture_report().write_plots(&dir).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            report::plots::KERNBENCH_SVG,
            report::plots::PGBENCH_SVG,
            report::plots::LATENCY_KERNBENCH_SVG,
            report::plots::LATENCY_PGBENCH_SVG
        ]
    );
    for (path, series) in written.iter().zip([
        &["base", "pv", ">= 15.02"][..],
        &["base", "pv", "<= 405.3", "clients"][..],
        &["kernbench 1x base", "kernbench 3x pv", "p99.99"][..],
        &["pgbench 1x c1 base", "pgbench 1x c2 pv"][..],
    ]) {
        let svg = fs::read_to_string(path).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let texts: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .map(str::trim)
            .collect();
        for s in series {
            assert!(
                texts.contains(s),
                "{}: no text {s:?} in {texts:?}",
                path.display()
            );
        }
        // Data were drawn: lines or shapes besides the frame.
        assert!(doc.descendants().filter(|n| n.has_tag_name("polyline")).count() >= 2);
    }
    // Nothing but the plots (atomic writes leave no temporaries).
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 4);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn write_into_leaves_the_report_beside_the_results() {
    let dir = scratch("write-into");
    let (manifest, cells) = fixture();
    write_results(&dir, &manifest, &cells);
    let results = Results::load(&dir).unwrap();
    let (md, plots) = report::render(&results, &RenderOptions::default())
        .write_into(&dir)
        .unwrap();
    assert_eq!(md, dir.join(report::MARKDOWN_FILE));
    assert_eq!(plots.len(), 4);
    assert!(plots.iter().all(|p| p.starts_with(dir.join(report::PLOTS_DIR))));
    let text = fs::read_to_string(&md).unwrap();
    assert!(text.contains("![kernbench](plots/kernbench.svg)"), "{text}");
    // The results still load: the report's files do not disturb them.
    assert_eq!(Results::load(&dir).unwrap().cells.len(), 29);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn equal_values_have_zero_spread_not_nan() {
    // ministat's one-pass variance of 0.1, 0.1, 0.1 rounds below zero.
    let mut cells = kernbench_cells(Overcommit::X1, LockMode::Base, &[0.1, 0.1, 0.1], false);
    cells.extend(kernbench_cells(
        Overcommit::X1,
        LockMode::Pv,
        &[0.1, 0.1, 0.1],
        false,
    ));
    let r = report::render(&results_of(cells), &RenderOptions::default());
    assert_eq!(r.kernbench[0].base.stats.unwrap().stddev, Some(0.0));
    assert!(r.text().contains("case 1x:  0.1 (0)"), "{}", r.text());
}

#[test]
fn cells_measured_on_a_disturbed_host_are_named() {
    let (manifest, mut cells) = fixture();
    // Without host readings (results from before they were recorded): no verdict.
    let quiet = report::render(
        &in_memory(manifest.clone(), cells.clone()),
        &RenderOptions::default(),
    );
    assert!(!quiet
        .warnings
        .iter()
        .any(|w| w.kind == WarningKind::DisturbedHost));
    for (i, cell) in cells.iter_mut().enumerate() {
        cell.host = Some(pvbench::results::HostNoise {
            steal_s: Some(0.0),
            reference_before_ms: 10.0,
            // One cell's host was 1.6x slower after it, another stole 40% of its time.
            reference_after_ms: if i == 3 { 16.0 } else { 10.0 },
            core_to_core_before_ns: None,
            core_to_core_after_ns: None,
            waited_near_s: None,
        });
    }
    cells[5].host.as_mut().unwrap().steal_s = Some(0.4 * cells[5].guests[0].wall_s);
    let r = report::render(&in_memory(manifest, cells.clone()), &RenderOptions::default());
    let w = r
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::DisturbedHost)
        .expect("a disturbed-host warning");
    assert!(w.message.starts_with("2 of "), "{}", w.message);
    assert!(
        w.message
            .contains(&format!("{} (reference 1.60x", cells[3].key.id())),
        "{}",
        w.message
    );
    assert!(w.message.contains(&cells[5].key.id()), "{}", w.message);
}

#[test]
fn cells_measured_with_the_hosts_cpus_apart_are_named_per_lock_mode() {
    let (manifest, mut cells) = fixture();
    // Near: 38-60 ns; cell 2 apart throughout, cell 4 moved apart during it
    // (one reading of each); a near reading slowed 1.5x is not apart.
    let readings = |i: usize| match i {
        2 => (390.0, 402.0),
        4 => (41.0, 371.0),
        6 => (60.0, 57.0),
        _ => (38.0 + i as f64 % 3.0, 40.0),
    };
    for (i, cell) in cells.iter_mut().enumerate() {
        let (before, after) = readings(i);
        cell.host = Some(pvbench::results::HostNoise {
            steal_s: Some(0.0),
            reference_before_ms: 10.0,
            reference_after_ms: 10.0,
            core_to_core_before_ns: Some(before),
            core_to_core_after_ns: Some(after),
            waited_near_s: None,
        });
    }
    // The message of the warning of `kind` the report gives `cells`, if any.
    let warning = |cells: &[CellResult], kind: WarningKind| {
        let r = report::render(
            &in_memory(manifest.clone(), cells.to_vec()),
            &RenderOptions::default(),
        );
        r.warnings.into_iter().find(|w| w.kind == kind)
    };
    let w = warning(&cells, WarningKind::CpusApart).expect("a CPUs-apart warning");
    assert!(
        w.message.starts_with(&format!("2 of {} cells", cells.len())),
        "{}",
        w.message
    );
    assert!(
        w.message.contains("fastest, 38 ns; up to 402 ns"),
        "{}",
        w.message
    );
    for (i, cell) in cells.iter().enumerate() {
        assert_eq!(
            w.message.contains(&cell.key.id()),
            i == 2 || i == 4,
            "{i}: {}",
            w.message
        );
    }
    let (a, b) = (cells[2].key.lock, cells[4].key.lock);
    let per_mode = if a == b {
        format!("{a} 2")
    } else {
        format!("{} 1", a.min(b))
    };
    assert!(w.message.contains(&per_mode), "{per_mode}: {}", w.message);
    assert!(warning(&cells, WarningKind::RerunApart).is_none());
    // Cells the rule measured again: counted, and those still apart told.
    cells[4].reruns_apart = 2;
    cells[1].reruns_apart = 1;
    let rerun = warning(&cells, WarningKind::RerunApart).expect("a rerun warning");
    assert!(
        rerun
            .message
            .contains(&format!(": 2 of {} cells were measured again", cells.len()))
            && rerun.message.contains("3 attempts set aside"),
        "{}",
        rerun.message
    );
    let apart = warning(&cells, WarningKind::CpusApart).unwrap();
    assert!(
        apart
            .message
            .contains("(1 of them still apart after their reruns)"),
        "{}",
        apart.message
    );
    // Waits before cells are counted too (under a second is no wait).
    for (cell, s) in cells.iter_mut().zip([30.5, 0.2, 12.0]) {
        cell.host.as_mut().unwrap().waited_near_s = Some(s);
    }
    let rerun = warning(&cells, WarningKind::RerunApart).unwrap();
    assert!(
        rerun.message.contains(
            "before 2 cells the runner waited for the host's CPUs to come near (42 s in all); 2 of"
        ),
        "{}",
        rerun.message
    );
    // Without readings nobody is judged.
    for cell in &mut cells {
        cell.host = None;
    }
    assert!(warning(&cells, WarningKind::CpusApart).is_none());
}

// ---------------------------------------------------------------------------
// Five lock modes: every design against base.

/// A run of all five modes, in the rotating order `pvbench run` plans:
/// kernbench at 1x/2x/3x and pgbench with 1 and 4 clients at 1x, 5
/// repetitions (each mode first once), each mode with its own counters, pv and pvqspin with
/// kick-to-wake latency, every guest with its vCPUs' run delay.
fn five_modes() -> Results {
    use pvbench::results::{QueuedStats, TasStats};
    let modes = LockMode::ALL;
    let mut plan = Vec::new();
    let mut cells = Vec::new();
    // Seconds per mode and overcommit: base collapses (capped at 3x), qspin
    // (fair, native) nearly so, tas and the paravirtual ones hold up.
    let kernbench = |oc: Overcommit, lock: LockMode, rep: u32| -> (f64, bool) {
        let r = f64::from(rep) * 0.05;
        match (oc, lock) {
            (Overcommit::X1, LockMode::Base) => (4.10 + r, false),
            (Overcommit::X1, LockMode::Pv) => (4.16 + r, false),
            (Overcommit::X1, LockMode::Qspin) => (4.05 + r, false),
            (Overcommit::X1, LockMode::Pvqspin) => (4.12 + r, false),
            (Overcommit::X1, LockMode::Tas) => (4.00 + r, false),
            (Overcommit::X2, LockMode::Base) => (11.0 + 3.0 * r, false),
            (Overcommit::X2, LockMode::Qspin) => (10.0 + 3.0 * r, false),
            (Overcommit::X2, LockMode::Tas) => (7.0 + r, false),
            (Overcommit::X2, _) => (6.0 + r, false),
            (Overcommit::X3, LockMode::Base) => (15.0, true),
            (Overcommit::X3, LockMode::Qspin) => (if rep == 2 { 15.0 } else { 14.0 + r }, rep == 2),
            (Overcommit::X3, LockMode::Tas) => (9.0 + r, false),
            (Overcommit::X3, _) => (8.0 + r, false),
        }
    };
    let pgbench = |clients: u32, lock: LockMode, rep: u32| -> f64 {
        let r = f64::from(rep) * 4.0;
        match (clients, lock) {
            (1, LockMode::Base) => 410.0 + r,
            (1, LockMode::Pv) => 398.0 + r,
            (1, LockMode::Qspin) => 409.0 + r,
            (1, LockMode::Pvqspin) => 404.0 + r,
            (1, _) => 415.0 + r,
            (_, LockMode::Base) => 690.0 + r,
            (_, LockMode::Pv) => 730.0 + r,
            (_, LockMode::Qspin) => 700.0 + r,
            (_, LockMode::Pvqspin) => 760.0 + r,
            (_, _) => 650.0 + r,
        }
    };
    let counters = |cell: &mut CellResult, scale: u64| {
        let lock = cell.key.lock;
        cell.pvlock = Some(match lock {
            LockMode::Pv => pv_stats(scale, cell.key.rep),
            _ => LockStats::default(),
        });
        cell.queued = Some(match lock {
            LockMode::Qspin | LockMode::Pvqspin => QueuedStats {
                pending: 40 * scale,
                queued: 90 * scale,
                wait_node: if lock == LockMode::Pvqspin { 30 * scale } else { 0 },
                wait_head: if lock == LockMode::Pvqspin { 20 * scale } else { 0 },
                kick_unlock: if lock == LockMode::Pvqspin { 19 * scale } else { 0 },
                time_blocked_cycles: if lock == LockMode::Pvqspin {
                    9_000_000 * scale
                } else {
                    0
                },
                ..QueuedStats::default()
            },
            _ => QueuedStats::default(),
        });
        cell.tas = Some(match lock {
            LockMode::Tas => TasStats {
                contended: 70 * scale,
                failed_cas: 150 * scale,
                backoff_spins: 5000 * scale,
            },
            _ => TasStats::default(),
        });
        if lock.is_paravirt() {
            let p50 = 1_700_000 * scale / 15 + 1000 * u64::from(cell.key.rep);
            cell.kick_wake_ns = Some(Percentiles {
                count: 80 * scale,
                mean: r6(p50 as f64 * 1.2),
                p50,
                p90: 2 * p50,
                p99: 4 * p50,
                p999: 5 * p50,
                p9999: 6 * p50,
                max: 7 * p50,
            });
        }
    };
    for rep in 1..=5 {
        // Repetition r starts at mode (r - 1) mod 5.
        let order: Vec<LockMode> = (0..5).map(|i| modes[(rep as usize - 1 + i) % 5]).collect();
        for oc in [Overcommit::X1, Overcommit::X2, Overcommit::X3] {
            for &lock in &order {
                let k = key(Workload::Kernbench, oc, None, lock, rep);
                plan.push(k);
                let (v, capped) = kernbench(oc, lock, rep);
                let hogs = oc.hog_guests();
                let mut c = CellResult::new(
                    k,
                    if capped {
                        CellStatus::Censored
                    } else {
                        CellStatus::Completed
                    },
                );
                c.elapsed_s = r6(v);
                c.cap_s = 15.0;
                c.ops = 24;
                c.latency_us = Some(latency(52_000, 1.0 + hogs as f64, 24));
                let (bench, hog) = match (hogs, lock.is_paravirt()) {
                    (0, _) => (0.93, 0.0),
                    (_, true) => (0.41 / hogs as f64, 0.55 / hogs as f64),
                    (_, false) => (0.55 / hogs as f64, 0.45 / hogs as f64),
                };
                c.guests = guests(v + 0.8, bench, hogs, hog);
                // Run delay per vCPU: half the wall time per hog guest beside it.
                for g in &mut c.guests {
                    let per_vcpu = r6(g.wall_s * 0.25 * hogs as f64);
                    g.vcpu_run_delay_s = vec![per_vcpu; 2];
                    g.run_delay_s = Some(2.0 * per_vcpu);
                }
                counters(&mut c, [1, 8, 15][hogs]);
                cells.push(c);
            }
        }
        for clients in [1, 4] {
            for &lock in &order {
                let k = key(Workload::Pgbench, Overcommit::X1, Some(clients), lock, rep);
                plan.push(k);
                let mut c = CellResult::new(k, CellStatus::Completed);
                c.elapsed_s = 3.0;
                c.cap_s = 10.0;
                c.tps = Some(r6(pgbench(clients, lock, rep)));
                c.ops = 1200;
                c.guests = guests(3.5, 0.9, 0, 0.0);
                counters(&mut c, u64::from(clients));
                cells.push(c);
            }
        }
    }
    in_memory(
        RunManifest {
            provenance: provenance(),
            matrix: serde_json::Value::Null,
            cells: plan,
            target_mde_pct: None,
            sharding: None,
        },
        cells,
    )
}

#[test]
fn five_modes_golden_text_and_markdown() {
    let report = report::render(&five_modes(), &RenderOptions::default());
    golden("five-modes.txt", &report.text());
    golden("five-modes.md", &report.markdown(&[], None));
}

#[test]
fn every_mode_is_compared_with_base() {
    let r = report::render(&five_modes(), &RenderOptions::default());
    assert_eq!(r.locks, LockMode::ALL);
    for g in r.kernbench.iter().chain(&r.pgbench) {
        let modes: Vec<LockMode> = g.modes.iter().map(|m| m.arm.lock).collect();
        assert_eq!(modes, &LockMode::ALL[1..], "{}", g.group);
        assert!(g.arms().all(|a| a.n() == 5), "{}", g.group);
    }
    let x3 = &r.kernbench[2];
    // Base capped in every run: each mode against it is a rank test (5 vs 5
    // can reach p = 0.008), and the ones that never came near the cap are
    // proven faster, each by name.
    for lock in [LockMode::Pv, LockMode::Pvqspin, LockMode::Tas] {
        match &x3.mode(lock).unwrap().verdict {
            LockVerdict::Censored {
                proven: true,
                better: Some(better),
                dominance: Some(d),
                ..
            } => {
                assert_eq!(*better, lock);
                assert_eq!(d.better, lock);
            }
            other => panic!("{lock}: {other:?}"),
        }
    }
    // qspin had a capped run too: a rank test, whose resolution is no
    // percentage.
    let qspin = x3.mode(LockMode::Qspin).unwrap();
    assert_eq!(qspin.arm.censored(), 1);
    assert!(matches!(qspin.verdict, LockVerdict::Censored { .. }));
    assert!(qspin.resolution.mde_pct.is_none() && qspin.resolution.resolution_note.is_some());
    // 1x: Student's t per mode, each with its own resolution.
    let x1 = &r.kernbench[0];
    for m in &x1.modes {
        assert!(
            matches!(m.verdict, LockVerdict::Student { .. }),
            "{:?}",
            m.verdict
        );
        assert!(m.resolution.mde_pct.is_some() && m.resolution.ci_half_pct.is_some());
    }
    let tas = x1.mode(LockMode::Tas).unwrap();
    match &tas.verdict {
        LockVerdict::Student {
            improvement_percent, ..
        } => assert!(
            (improvement_percent - 100.0 * 0.10 / 4.25).abs() < 1e-9,
            "{improvement_percent}"
        ),
        other => panic!("{other:?}"),
    }
    // pgbench with 4 clients: pvqspin better, tas worse, both proven.
    let c4 = &r.pgbench[1];
    let better = |lock| match &c4.mode(lock).unwrap().verdict {
        LockVerdict::Student { better, .. } => *better,
        other => panic!("{other:?}"),
    };
    assert_eq!(better(LockMode::Pvqspin), Some(LockMode::Pvqspin));
    assert_eq!(better(LockMode::Tas), Some(LockMode::Base));
}

#[test]
fn five_modes_have_their_own_counters_and_kick_latency() {
    let r = report::render(&five_modes(), &RenderOptions::default());
    // pv-ticket counters for base (zeros, the seed's reference) and pv only.
    assert!(r
        .pvlock
        .iter()
        .all(|row| matches!(row.lock, LockMode::Base | LockMode::Pv)));
    assert!(r
        .pvlock
        .iter()
        .any(|row| row.lock == LockMode::Pv && row.halted > 0.0));
    // Queued-lock events for the queued locks, test-and-set counters for tas.
    assert!(r.queued.iter().all(|row| row.lock.is_queued()));
    assert_eq!(r.queued.len(), 2 * 5, "two modes, five groups");
    let pvq = r
        .queued
        .iter()
        .find(|row| row.lock == LockMode::Pvqspin && row.group.overcommit == Overcommit::X3)
        .unwrap();
    assert_eq!(pvq.get("wait_head"), 20.0 * 15.0);
    assert_eq!(pvq.get("kick_unlock"), 19.0 * 15.0);
    assert!(r.tas.iter().all(|row| row.lock == LockMode::Tas));
    assert_eq!(r.tas.len(), 5);
    // Kick-to-wake: pv and pvqspin at every overcommit (and pgbench group).
    assert!(r.kick_wake.iter().all(|row| row.lock.is_paravirt()));
    assert_eq!(r.kick_wake.len(), 2 * 5);
    let kick = r
        .kick_wake
        .iter()
        .find(|row| row.lock == LockMode::Pv && row.group == r.kernbench[2].group)
        .unwrap();
    // Median over runs of 1.7 ms + 1..5 us; max the largest run's.
    assert_eq!((kick.runs, kick.kicks), (5, 5 * 80 * 15));
    assert_eq!(kick.p50, 1_703_000.0);
    assert_eq!(kick.max, 7 * 1_705_000);
    // Run delay: a quarter of the wall time per vCPU per hog guest.
    let cpu = r
        .cpu
        .iter()
        .find(|row| row.lock == LockMode::Tas && row.group == r.kernbench[2].group)
        .unwrap();
    assert!((cpu.bench_run_delay.unwrap() - 0.5).abs() < 1e-6, "{cpu:?}");
    assert!((cpu.hog_run_delay.unwrap() - 0.5).abs() < 1e-6, "{cpu:?}");
    let text = r.text();
    for heading in [
        "Queued-lock events",
        "Test-and-set lock statistics",
        "Kick-to-wake latency (us)",
        "bench run delay",
    ] {
        assert!(text.contains(heading), "{heading} not in the report");
    }
}

#[test]
fn five_modes_ministat_blocks_compare_every_set_with_base() {
    let r = report::render(&five_modes(), &RenderOptions::default());
    let text = r.text();
    let legend = "x base\n+ pv\n* qspin\n% pvqspin\n# tas\n";
    assert!(text.contains(legend), "{text}");
    // One block per client count, each with five rows and four verdicts
    // (ministat's own text, every set compared with the first).
    let block = text
        .split("+--------------------- NRCLIENT = 4 ")
        .nth(1)
        .and_then(|b| b.split_once('\n'))
        .and_then(|(_, b)| b.split("\n+---").next())
        .unwrap();
    for symbol in ['x', '+', '*', '%', '#'] {
        assert_eq!(
            block
                .lines()
                .filter(|l| l.starts_with(&format!("{symbol}   5 ")))
                .count(),
            1,
            "{symbol}: {block}"
        );
    }
    let verdicts = block
        .lines()
        .filter(|l| l.starts_with("Difference at") || l.starts_with("No difference proven"))
        .count();
    assert_eq!(verdicts, 4, "{block}");
    // The same text as `pvbench ministat` on the five sets.
    let dir = scratch("five-ministat");
    let files: Vec<PathBuf> = r.pgbench[1]
        .arms()
        .map(|a| {
            let path = dir.join(a.lock.name());
            let lines: Vec<String> = a.values().iter().map(|v| v.to_string()).collect();
            fs::write(&path, lines.join("\n") + "\n").unwrap();
            path
        })
        .collect();
    let out = common::pvbench()
        .args(["ministat", "-q", "-A"])
        .args(&files)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim_end(),
        block.trim_end()
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn five_modes_plot_a_line_per_mode() {
    let dir = scratch("five-plots");
    let r = report::render(&five_modes(), &RenderOptions::default());
    let written = r.write_plots(&dir).unwrap();
    for path in &written[..2] {
        let svg = fs::read_to_string(path).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let texts: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .map(str::trim)
            .collect();
        for lock in LockMode::ALL {
            assert!(
                texts.contains(&lock.name()),
                "{}: no {lock} in {texts:?}",
                path.display()
            );
        }
        // A line per mode (and the legend's sample of each).
        assert!(doc.descendants().filter(|n| n.has_tag_name("polyline")).count() >= 5);
    }
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn json_has_every_mode_and_its_counters() {
    let r = report::render(&five_modes(), &RenderOptions::default());
    let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
    assert_eq!(
        v["locks"],
        serde_json::json!(["base", "pv", "qspin", "pvqspin", "tas"])
    );
    let modes = v["kernbench"][2]["modes"].as_array().unwrap();
    assert_eq!(modes.len(), 4);
    assert_eq!(modes[3]["arm"]["lock"], "tas");
    assert_eq!(modes[3]["verdict"]["better"], "tas");
    assert!(v["kick_wake"].as_array().unwrap().len() == 10);
    assert_eq!(v["queued"][0]["counters"][0][0], "pending");
    assert!(v["tas"][0]["counters"].as_array().unwrap().len() == 3);
    assert!(v["cpu"][0]["bench_run_delay"].is_number());
}
