//! `pvbench calibrate`: the noise floor of this host and of the appliance on
//! it, measured in one run.
//!
//! 1. The host: a short native reference workload (the runner's
//!    [`noise::reference`]) repeated, before and after the A/A matrix; its
//!    coefficient of variation is what the host alone adds.
//! 2. The appliance: an A/A matrix (`host-runner/matrices/calibrate.toml`),
//!    the same lock mode in every cell. Each group's repetitions are split
//!    into disjoint comparisons of `aa_runs` against `aa_runs` (odd against
//!    even repetitions, interleaved as a real comparison's arms are), each
//!    judged by the report's own test. Any "difference proven" is a false
//!    positive; at 95 % confidence about 5 % are expected.
//!
//! Written like any results directory (`<out>/aa/`) plus `calibration.json`
//! and `calibration.md` beside it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::build::layout::Layout;
use crate::report::analysis::{verdict, Arm, RunValue};
use crate::results::{self, CellResult, GroupKey, LockMode, MatrixSpec, Provenance, Results};
use crate::runner::{self, noise, Host, RunError, RunOptions};
use crate::stats::{t_resolution, Confidence, Sample};

/// The built-in A/A matrix.
pub const CALIBRATE: &str = include_str!("../matrices/calibrate.toml");
/// Files written beside the A/A results.
pub const SUMMARY_JSON: &str = "calibration.json";
pub const SUMMARY_MARKDOWN: &str = "calibration.md";
/// Times the native reference runs before the matrix, and again after it.
const REFERENCE_RUNS: usize = 30;

/// Options of one `pvbench calibrate`.
pub struct CalibrateOptions {
    pub spec: MatrixSpec,
    /// Runs per arm of each A/A comparison.
    pub aa_runs: usize,
    pub out: PathBuf,
    pub resume: bool,
    pub quiet: bool,
}

/// Why calibration stopped.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error("calibrate: --aa-runs must be at least 2 (a comparison needs two runs a side)")]
    TooFewRuns,
    #[error(
        "calibrate: the matrix's {reps} repetitions give no comparison of {aa_runs} against {aa_runs}; raise reps"
    )]
    NoComparison { reps: u32, aa_runs: usize },
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Results(#[from] results::ResultsError),
}

/// The native reference's repeated timings and their spread.
#[derive(Debug, Clone, Serialize)]
pub struct Reference {
    pub runs_ms: Vec<f64>,
    pub mean_ms: f64,
    pub cv_percent: f64,
}

impl Reference {
    /// Times the reference `n` times.
    pub fn measure(n: usize) -> Self {
        Self::of((0..n).map(|_| noise::reference().as_secs_f64() * 1e3).collect())
    }

    fn of(runs_ms: Vec<f64>) -> Self {
        let (mean_ms, cv_percent) = mean_cv(&runs_ms);
        Self {
            runs_ms,
            mean_ms,
            cv_percent,
        }
    }
}

/// One group's A/A figures.
#[derive(Debug, Clone, Serialize)]
pub struct GroupNoise {
    pub group: GroupKey,
    /// Runs with a value (completed or censored).
    pub runs: usize,
    /// Coefficient of variation of all its runs, percent (`None` with censored runs).
    pub cv_percent: Option<f64>,
    /// The minimum detectable effect of an `aa_runs` vs `aa_runs` comparison
    /// with this spread, percent of the mean (80 % power, 95 % confidence).
    pub mde_percent: Option<f64>,
    /// A/A comparisons made, and how many said "difference proven".
    pub comparisons: usize,
    pub false_positives: usize,
}

/// The calibration's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub provenance: Provenance,
    pub aa_dir: PathBuf,
    pub aa_runs: usize,
    pub reference_before: Reference,
    pub reference_after: Reference,
    pub groups: Vec<GroupNoise>,
    pub comparisons: usize,
    pub false_positives: usize,
    /// False positives per comparison, with a 95 % Wilson interval.
    pub false_positive_rate: f64,
    pub false_positive_interval: (f64, f64),
}

/// The built-in A/A matrix.
pub fn spec() -> MatrixSpec {
    MatrixSpec::parse(CALIBRATE, "built-in calibrate matrix").expect("the built-in calibrate matrix is valid")
}

/// Measures the host, runs (or resumes) the A/A matrix, and writes and returns
/// the calibration.
pub fn run(layout: &Layout, host: &Host, options: CalibrateOptions) -> Result<Calibration, CalibrateError> {
    if options.aa_runs < 2 {
        return Err(CalibrateError::TooFewRuns);
    }
    if (options.spec.reps as usize) < 2 * options.aa_runs {
        return Err(CalibrateError::NoComparison {
            reps: options.spec.reps,
            aa_runs: options.aa_runs,
        });
    }
    let reference_before = Reference::measure(REFERENCE_RUNS);
    let aa_dir = options.out.join("aa");
    let results = runner::run(
        layout,
        host,
        RunOptions {
            spec: options.spec,
            out: aa_dir.clone(),
            resume: options.resume,
            quiet: options.quiet,
            target: None,
        },
    )?;
    let reference_after = Reference::measure(REFERENCE_RUNS);
    let calibration = analyze(&results, options.aa_runs, reference_before, reference_after);
    results::write_json_atomic(&options.out.join(SUMMARY_JSON), &calibration)?;
    results::write_atomic(
        &options.out.join(SUMMARY_MARKDOWN),
        markdown(&calibration).as_bytes(),
    )?;
    Ok(calibration)
}

/// The calibration of an A/A results directory. Pure.
pub fn analyze(results: &Results, aa_runs: usize, before: Reference, after: Reference) -> Calibration {
    let mut groups: Vec<GroupKey> = results.manifest.cells.iter().map(|k| k.group()).collect();
    groups.dedup();
    let groups: Vec<GroupNoise> = groups
        .into_iter()
        .map(|g| group_noise(results, g, aa_runs))
        .collect();
    let comparisons = groups.iter().map(|g| g.comparisons).sum();
    let false_positives = groups.iter().map(|g| g.false_positives).sum();
    Calibration {
        provenance: results.manifest.provenance.clone(),
        aa_dir: results.dir.clone(),
        aa_runs,
        reference_before: before,
        reference_after: after,
        groups,
        comparisons,
        false_positives,
        false_positive_rate: false_positives as f64 / comparisons.max(1) as f64,
        false_positive_interval: wilson(false_positives, comparisons),
    }
}

fn group_noise(results: &Results, group: GroupKey, aa_runs: usize) -> GroupNoise {
    let metric = group.workload.metric();
    let mut cells: Vec<&CellResult> = results.cells.iter().filter(|c| c.key.group() == group).collect();
    cells.sort_by_key(|c| c.key.rep);
    let runs: Vec<RunValue> = cells
        .iter()
        .filter_map(|c| {
            c.value().map(|(value, censored)| RunValue {
                rep: c.key.rep,
                value,
                censored,
            })
        })
        .collect();
    let uncensored = runs.iter().all(|r| !r.censored);
    let values: Vec<f64> = runs.iter().map(|r| r.value).collect();
    let (mean, cv) = mean_cv(&values);
    let cv_percent = (uncensored && runs.len() >= 2).then_some(cv);
    let sd = cv / 100.0 * mean;
    let mde_percent = cv_percent
        .and_then(|_| t_resolution(aa_runs, aa_runs, sd, Confidence::P95))
        .map(|r| r.mde / mean.abs() * 100.0);
    let (mut comparisons, mut false_positives) = (0, 0);
    for batch in runs.chunks_exact(2 * aa_runs) {
        // Odd repetitions against even ones: each arm spans the batch's time.
        let arm = |parity: usize| Arm {
            lock: LockMode::Pv,
            runs: batch.iter().skip(parity).step_by(2).copied().collect(),
            failed: 0,
            missing: 0,
            stats: None,
        };
        comparisons += 1;
        if verdict(&arm(0), &arm(1), metric, Confidence::P95).proven() {
            false_positives += 1;
        }
    }
    GroupNoise {
        group,
        runs: runs.len(),
        cv_percent,
        mde_percent,
        comparisons,
        false_positives,
    }
}

/// Mean and coefficient of variation (percent; sample standard deviation).
fn mean_cv(values: &[f64]) -> (f64, f64) {
    match Sample::new(values.to_vec()) {
        Ok(s) if s.n() >= 2 => {
            let mean = s.mean();
            (mean, s.stddev() / mean.abs() * 100.0)
        }
        Ok(s) => (s.mean(), f64::NAN),
        Err(_) => (f64::NAN, f64::NAN),
    }
}

/// The 95 % Wilson score interval of `k` successes in `n` trials.
fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n, z) = (k as f64, n as f64, 1.959_964);
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The calibration for people.
pub fn markdown(c: &Calibration) -> String {
    let p = &c.provenance;
    let mut out = String::from("# pvbench calibrate: the noise floor\n\n");
    let _ = writeln!(
        out,
        "Host {} ({} cores), {}, accel {}; guest image {}; git {}. A/A results in `{}`.\n",
        p.host_cpu,
        p.host_cores,
        p.qemu,
        p.accel,
        p.image_id,
        p.git_revision,
        c.aa_dir.display()
    );
    let r = (&c.reference_before, &c.reference_after);
    let _ = writeln!(
        out,
        "Native reference ({} runs each): before {:.2} ms mean, CV {:.1}%; after {:.2} ms, CV {:.1}%.\n",
        r.0.runs_ms.len(),
        r.0.mean_ms,
        r.0.cv_percent,
        r.1.mean_ms,
        r.1.cv_percent
    );
    let _ = writeln!(
        out,
        "A/A: {} false positives in {} comparisons of {} vs {} runs at 95% confidence: rate {:.1}% \
         (95% interval {:.1}-{:.1}%; 5% expected).\n",
        c.false_positives,
        c.comparisons,
        c.aa_runs,
        c.aa_runs,
        c.false_positive_rate * 100.0,
        c.false_positive_interval.0 * 100.0,
        c.false_positive_interval.1 * 100.0
    );
    out.push_str(
        "| group | runs | CV | CV / native CV | MDE of a comparison | comparisons | false positives |\n",
    );
    out.push_str("| :-- | --: | --: | --: | --: | --: | --: |\n");
    let native = c.reference_before.cv_percent.max(c.reference_after.cv_percent);
    let pct = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.1}%"));
    for g in &c.groups {
        let ratio = g
            .cv_percent
            .map_or("-".to_string(), |cv| format!("{:.1}", cv / native));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {ratio} | {} | {} | {} |",
            g.group,
            g.runs,
            pct(g.cv_percent),
            pct(g.mde_percent),
            g.comparisons,
            g.false_positives
        );
    }
    let _ = writeln!(
        out,
        "\nCV / native CV compares the appliance's run-to-run spread with the larger of the two native \
         reference CVs, measured in the same run. The MDE is that of a comparison of {} vs {} runs \
         with the group's spread (80% power).",
        c.aa_runs, c.aa_runs
    );
    out
}

/// `<out>` for a calibration run by default: results/runs/calibrate-<time>.
pub fn default_out(layout: &Layout) -> PathBuf {
    runner::default_out(layout, "calibrate")
}

/// The A/A results directory of a calibration in `out`.
pub fn aa_dir(out: &Path) -> PathBuf {
    out.join("aa")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{CellKey, CellStatus, Overcommit, RunManifest, Workload};
    use crate::test_support::provenance;

    /// A/A results of one kernbench group whose rep `r` took `value(r)` s.
    fn results(reps: u32, value: impl Fn(u32) -> f64) -> Results {
        let key = |rep| CellKey {
            workload: Workload::Kernbench,
            overcommit: Overcommit::X1,
            clients: None,
            lock: LockMode::Pv,
            rep,
        };
        let cells = (1..=reps)
            .map(|rep| {
                let mut c = CellResult::new(key(rep), CellStatus::Completed);
                c.elapsed_s = value(rep);
                c
            })
            .collect();
        Results {
            dir: PathBuf::from("cal/aa"),
            manifest: RunManifest {
                provenance: provenance(),
                matrix: serde_json::Value::Null,
                cells: (1..=reps).map(key).collect(),
                target_mde_pct: None,
            },
            cells,
        }
    }

    fn reference() -> Reference {
        Reference::of(vec![10.0, 10.2, 9.8, 10.0])
    }

    #[test]
    fn same_configuration_runs_are_split_into_disjoint_aa_comparisons() {
        // A spread without a pattern between odd and even repetitions.
        let noise = [0.0, 0.3, -0.2, 0.1, -0.3, 0.2, 0.05, -0.1, 0.25, -0.05];
        let r = results(20, |rep| 10.0 + noise[rep as usize % 10]);
        let c = analyze(&r, 5, reference(), reference());
        let g = &c.groups[0];
        assert_eq!((g.runs, g.comparisons, g.false_positives), (20, 2, 0));
        let cv = g.cv_percent.unwrap();
        assert!(cv > 1.0 && cv < 3.0, "{cv}");
        assert!(
            g.mde_percent.unwrap() > cv,
            "an MDE of 5 vs 5 runs exceeds one run's spread"
        );
        assert_eq!(c.false_positive_rate, 0.0);
        assert!(
            c.false_positive_interval.1 > 0.5,
            "2 comparisons bound the rate loosely"
        );
    }

    #[test]
    fn an_arm_effect_hidden_in_the_aa_split_is_a_false_positive() {
        // Odd repetitions 20% slower: what an A/A comparison must not see by
        // chance, but here it is in the data, so the test flags it.
        let r = results(
            10,
            |rep| if rep % 2 == 1 { 12.0 } else { 10.0 } + f64::from(rep % 3) * 0.01,
        );
        let c = analyze(&r, 5, reference(), reference());
        assert_eq!((c.comparisons, c.false_positives), (1, 1));
        assert!(markdown(&c).contains("1 false positives in 1 comparisons"));
    }

    #[test]
    fn wilson_intervals() {
        let (lo, hi) = wilson(1, 20);
        assert!(
            (lo - 0.0089).abs() < 1e-3 && (hi - 0.2361).abs() < 1e-3,
            "{lo} {hi}"
        );
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }
}
