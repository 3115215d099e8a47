//! Judging a new run against the baseline (the policy is in the module
//! documentation of `gate`): pure, no files, so tests can run it thousands
//! of times.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;

use super::baseline::{Baseline, BaselineGroup, RepValue};
use super::config::{GateConfig, TestKind, Thresholds};
use super::correction::adjust;
use super::hypothesis::{self, TestResult, MEDIAN_RULE};
use super::{metric_name, short_hash};
use crate::exit::Exit;
use crate::results::{ArmKey, CellKey, CellResult, CellStatus, Metric, Provenance, Results};
use crate::stats::{mean_variance, median};

pub const REPORT_FORMAT: &str = "pvbench-gate-report";
pub const REPORT_VERSION: u32 = 1;

/// The gate's answer: the new run against the baseline (the report's
/// base-against-pv verdict is [`crate::report::LockVerdict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateVerdict {
    Pass,
    Regression,
    CannotJudge,
}

impl GateVerdict {
    /// The status `pvbench gate` exits with (0 pass, 1 regression, 2 cannot
    /// judge), as the JSON report records it.
    pub fn exit_code(self) -> u8 {
        Exit::from(self).code()
    }
}

/// Everything the gate found; `--json` writes it as is.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    /// Always [`REPORT_FORMAT`].
    pub format: &'static str,
    pub version: u32,
    pub verdict: GateVerdict,
    pub exit_code: u8,
    pub baseline: RunInfo,
    pub results: RunInfo,
    /// Why nothing could be compared (different matrix or accelerator).
    pub problems: Vec<String>,
    pub notes: Vec<String>,
    pub metrics: Vec<MetricReport>,
    pub groups: Vec<BaselineComparison>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub path: String,
    pub provenance: Provenance,
}

/// One metric's family of tests.
#[derive(Debug, Clone, Serialize)]
pub struct MetricReport {
    pub metric: Metric,
    pub lower_is_better: bool,
    pub thresholds: Thresholds,
    /// The family's size m: every baseline group of the metric, an untested
    /// one counting as p = 1.
    pub groups: usize,
}

/// One arm of the new run against the same arm of the baseline (the report
/// compares a group's two arms within one run: [`crate::report::LockComparison`]).
#[derive(Debug, Clone, Serialize)]
pub struct BaselineComparison {
    #[serde(flatten)]
    pub arm: ArmKey,
    pub metric: Metric,
    pub lower_is_better: bool,
    pub baseline: Option<SideStats>,
    pub new: Option<SideStats>,
    /// The test, when both sides had values to run it on.
    pub test: Option<TestResult>,
    /// The family-adjusted p-values, when the group was tested.
    pub p_worse_adjusted: Option<f64>,
    pub p_better_adjusted: Option<f64>,
    pub outcome: Outcome,
}

/// One side's values of a group.
#[derive(Debug, Clone, Serialize)]
pub struct SideStats {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    pub stddev: f64,
    /// stddev / |mean|.
    pub cv: f64,
    /// Repetitions that reached their cap (bounds, not values).
    pub censored_reps: Vec<u32>,
    /// By repetition.
    pub values: Vec<f64>,
}

impl SideStats {
    fn of(values: &[RepValue]) -> Option<Self> {
        let raw: Vec<f64> = values.iter().map(|v| v.value).collect();
        // None without values.
        let median = median(&raw, MEDIAN_RULE)?;
        let (mean, variance) = mean_variance(&raw);
        let stddev = variance.max(0.0).sqrt();
        Some(Self {
            n: raw.len(),
            mean,
            median,
            stddev,
            cv: stddev / mean.abs(),
            censored_reps: values.iter().filter(|v| v.censored).map(|v| v.rep).collect(),
            values: raw,
        })
    }
}

/// How one group came out.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Outcome {
    /// No significant change.
    NoChange,
    /// Significant, but smaller than `min_effect`: ignored.
    BelowMinEffect,
    /// Significantly better by at least `min_effect` (does not gate).
    Improved,
    /// Significantly worse by at least `min_effect`: fails the gate.
    /// `by_bounds`: the new run was censored and its bounds alone prove it.
    Regression {
        by_bounds: bool,
    },
    CannotJudge {
        reason: Reason,
    },
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::NoChange => "no change",
            Outcome::BelowMinEffect => "below min effect",
            Outcome::Improved => "improved",
            Outcome::Regression { .. } => "REGRESSION",
            Outcome::CannotJudge { .. } => "cannot judge",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Baseline,
    New,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Baseline => "baseline",
            Side::New => "new run",
        })
    }
}

/// A failed repetition of the arm being judged (the report lists failed
/// cells of a whole run by id: [`crate::report::FailedCell`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedRep {
    pub rep: u32,
    pub reason: String,
}

/// Why a group could not be judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// Planned cells the new run does not have (interrupted or incomplete).
    Missing {
        reps: Vec<u32>,
    },
    Failed {
        cells: Vec<FailedRep>,
    },
    TooFewReps {
        side: Side,
        n: usize,
        min: u32,
    },
    TooNoisy {
        side: Side,
        cv: f64,
        max: f64,
    },
    /// The test cannot reach significance at these sample sizes.
    Insensitive {
        test: TestKind,
        min_p: f64,
        threshold: f64,
    },
    /// The new run was censored and its bounds do not prove a regression.
    CensoredNew {
        reps: Vec<u32>,
    },
    /// A regression against a censored baseline, which proves nothing.
    CensoredBaseline {
        reps: Vec<u32>,
    },
    /// Values no test can use (e.g. a baseline centre of zero).
    Degenerate {
        detail: String,
    },
}

fn reps(reps: &[u32]) -> String {
    reps.iter()
        .map(|r| format!("r{r}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Missing { reps: r } => write!(f, "cells missing from the new run: {}", reps(r)),
            Reason::Failed { cells } => {
                let list: Vec<String> = cells.iter().map(|c| format!("r{} ({})", c.rep, c.reason)).collect();
                write!(f, "cells failed in the new run: {}", list.join(", "))
            }
            Reason::TooFewReps { side, n, min } => {
                write!(f, "too few repetitions: the {side} has {n}, the gate needs {min} (min_reps)")
            }
            Reason::TooNoisy { side, cv, max } => write!(
                f,
                "too noisy to judge: the {side}'s coefficient of variation is {:.1}%, above {:.1}% (max_cv)",
                cv * 100.0,
                max * 100.0
            ),
            Reason::Insensitive {
                test,
                min_p,
                threshold,
            } => write!(
                f,
                "the {} cannot reach significance with these repetitions (smallest p {min_p:.3} > {threshold:.3}): \
                 use more repetitions or a t-test",
                test.describe()
            ),
            Reason::CensoredNew { reps: r } => write!(
                f,
                "the new run reached its cap in {}: its values are bounds, which prove no regression \
                 but cannot rule one out",
                reps(r)
            ),
            Reason::CensoredBaseline { reps: r } => write!(
                f,
                "looks worse, but the baseline reached its cap in {}: against a bound that proves nothing",
                reps(r)
            ),
            Reason::Degenerate { detail } => f.write_str(detail),
        }
    }
}

/// A group before its family's correction.
struct Prepared {
    report: BaselineComparison,
    thresholds: Thresholds,
    /// Set when the group cannot be judged whatever the test says.
    blocked: Option<Reason>,
}

/// Judges `results` against `baseline`; the paths only label the report.
pub fn evaluate(
    baseline: &Baseline,
    baseline_path: &str,
    results: &Results,
    results_path: &str,
    config: &GateConfig,
) -> GateReport {
    let new_prov = &results.manifest.provenance;
    let (problems, mut notes) = compatibility(baseline, new_prov);
    let metrics = families(baseline, config);
    let groups = if problems.is_empty() {
        judge_groups(baseline, results, config, &metrics, &mut notes)
    } else {
        Vec::new()
    };
    let verdict = overall_verdict(&problems, &groups);
    GateReport {
        format: REPORT_FORMAT,
        version: REPORT_VERSION,
        verdict,
        exit_code: verdict.exit_code(),
        baseline: RunInfo {
            path: baseline_path.to_string(),
            provenance: baseline.provenance.clone(),
        },
        results: RunInfo {
            path: results_path.to_string(),
            provenance: new_prov.clone(),
        },
        problems,
        notes,
        metrics,
        groups,
    }
}

/// Whether the two runs can be compared at all: the problems that forbid it
/// (another matrix or accelerator), and notes on what differs but is allowed.
fn compatibility(baseline: &Baseline, new_prov: &Provenance) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let under = &baseline.compare_under;
    if under.matrix_hash != new_prov.matrix_hash {
        problems.push(format!(
            "different matrix: the baseline was recorded under matrix {}, this run is matrix {} \
             (cells, repetitions, caps, sizes or vCPUs differ); compare runs of the same matrix, or \
             record a new baseline with `pvbench baseline save`",
            short_hash(&under.matrix_hash),
            short_hash(&new_prov.matrix_hash)
        ));
    }
    if under.accel != new_prov.accel {
        problems.push(format!(
            "different accelerator: the baseline ran under {}, this run under {}; their timings \
             cannot be compared",
            under.accel, new_prov.accel
        ));
    }
    let (b, n) = (&baseline.provenance, new_prov);
    if (b.host_cpu.as_str(), b.host_cores) != (n.host_cpu.as_str(), n.host_cores) {
        notes.push(format!(
            "different host: the baseline ran on {} ({} cores), this run on {} ({} cores)",
            b.host_cpu, b.host_cores, n.host_cpu, n.host_cores
        ));
    }
    (problems, notes)
}

/// The families: each metric's baseline groups, in the baseline's order.
fn families(baseline: &Baseline, config: &GateConfig) -> Vec<MetricReport> {
    let mut metrics: Vec<MetricReport> = Vec::new();
    for g in &baseline.groups {
        match metrics.iter_mut().find(|m| m.metric == g.metric) {
            Some(m) => m.groups += 1,
            None => metrics.push(MetricReport {
                metric: g.metric,
                lower_is_better: g.metric.lower_is_better(),
                thresholds: config.for_metric(g.metric),
                groups: 1,
            }),
        }
    }
    metrics
}

/// Every baseline group against the new run, one family at a time; notes
/// the new run's groups that the baseline does not have.
fn judge_groups(
    baseline: &Baseline,
    results: &Results,
    config: &GateConfig,
    metrics: &[MetricReport],
    notes: &mut Vec<String>,
) -> Vec<BaselineComparison> {
    let planned = planned_reps(results);
    let cells: HashMap<CellKey, &CellResult> = results.cells.iter().map(|c| (c.key, c)).collect();
    let mut prepared: Vec<Prepared> = baseline
        .groups
        .iter()
        .map(|bg| {
            let family = metrics
                .iter()
                .find(|m| m.metric == bg.metric)
                .map_or(1, |m| m.groups);
            prepare(
                bg,
                planned.get(&bg.arm()),
                &cells,
                config.for_metric(bg.metric),
                family,
            )
        })
        .collect();
    for arm in planned.keys() {
        if baseline.group(arm).is_none() {
            notes.push(format!("{arm}: not in the baseline, not gated"));
        }
    }
    for metric in metrics {
        judge_family(&mut prepared, metric.metric);
    }
    prepared.into_iter().map(|p| p.report).collect()
}

/// The gate's answer: cannot judge when the runs are not comparable, else a
/// regression if any group regressed, else cannot judge if any group could
/// not be judged, else pass.
fn overall_verdict(problems: &[String], groups: &[BaselineComparison]) -> GateVerdict {
    let any = |f: fn(&Outcome) -> bool| groups.iter().any(|g| f(&g.outcome));
    if !problems.is_empty() {
        GateVerdict::CannotJudge
    } else if any(|o| matches!(o, Outcome::Regression { .. })) {
        GateVerdict::Regression
    } else if any(|o| matches!(o, Outcome::CannotJudge { .. })) {
        GateVerdict::CannotJudge
    } else {
        GateVerdict::Pass
    }
}

/// The new run's planned repetitions, by group.
fn planned_reps(results: &Results) -> BTreeMap<ArmKey, Vec<u32>> {
    let mut planned: BTreeMap<ArmKey, Vec<u32>> = BTreeMap::new();
    for key in &results.manifest.cells {
        planned.entry(key.arm()).or_default().push(key.rep);
    }
    for reps in planned.values_mut() {
        reps.sort_unstable();
    }
    planned
}

/// Gathers one group's values, runs its test and finds what blocks a verdict.
fn prepare(
    bg: &BaselineGroup,
    planned: Option<&Vec<u32>>,
    cells: &HashMap<CellKey, &CellResult>,
    thresholds: Thresholds,
    family: usize,
) -> Prepared {
    let arm = bg.arm();
    let metric = bg.metric;
    let lower_is_better = metric.lower_is_better();
    let mut new_values = Vec::new();
    let mut missing = Vec::new();
    let mut failed = Vec::new();
    match planned {
        None => missing.extend(bg.values.iter().map(|v| v.rep)),
        Some(reps) => {
            for &rep in reps {
                match cells.get(&arm.cell(rep)) {
                    None => missing.push(rep),
                    Some(cell) => match (cell.value(), &cell.status) {
                        (Some((value, censored)), _) => new_values.push(RepValue { rep, value, censored }),
                        (None, CellStatus::Failed { reason, .. }) => failed.push(FailedRep {
                            rep,
                            reason: reason.clone(),
                        }),
                        (None, _) => failed.push(FailedRep {
                            rep,
                            reason: format!("no {} recorded", metric_name(metric)),
                        }),
                    },
                }
            }
        }
    }
    let base = SideStats::of(&bg.values);
    let new = SideStats::of(&new_values);
    let base_raw: Vec<f64> = bg.values.iter().map(|v| v.value).collect();
    let new_raw: Vec<f64> = new_values.iter().map(|v| v.value).collect();
    let test = hypothesis::run(thresholds.test, &new_raw, &base_raw, lower_is_better);

    let blocked = blocking_reason(
        &missing,
        failed,
        [(Side::New, new.as_ref()), (Side::Baseline, base.as_ref())],
        test.as_ref(),
        &thresholds,
        family,
    );
    Prepared {
        report: BaselineComparison {
            arm,
            metric,
            lower_is_better,
            baseline: base,
            new,
            test,
            p_worse_adjusted: None,
            p_better_adjusted: None,
            outcome: Outcome::NoChange,
        },
        thresholds,
        blocked,
    }
}

/// The first reason, in the documented order, why a group cannot be judged.
fn blocking_reason(
    missing: &[u32],
    failed: Vec<FailedRep>,
    sides: [(Side, Option<&SideStats>); 2],
    test: Option<&TestResult>,
    t: &Thresholds,
    family: usize,
) -> Option<Reason> {
    if !missing.is_empty() {
        return Some(Reason::Missing {
            reps: missing.to_vec(),
        });
    }
    if !failed.is_empty() {
        return Some(Reason::Failed { cells: failed });
    }
    for (side, stats) in sides {
        let n = stats.map_or(0, |s| s.n);
        if n < t.min_reps as usize {
            return Some(Reason::TooFewReps {
                side,
                n,
                min: t.min_reps,
            });
        }
    }
    // The noisier side speaks, if either is over the limit.
    let noisiest = sides
        .iter()
        .filter_map(|(side, stats)| stats.map(|s| (*side, s.cv)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((side, cv)) = noisiest {
        if cv.is_nan() || cv > t.max_cv {
            return Some(Reason::TooNoisy {
                side,
                cv,
                max: t.max_cv,
            });
        }
    }
    let Some(test) = test.filter(|r| r.change.is_finite()) else {
        return Some(Reason::Degenerate {
            detail: "the baseline's centre is zero or the values are not numbers: no relative change".into(),
        });
    };
    let threshold = t.correction.best_case_threshold(t.alpha, family);
    if test.min_p > threshold {
        return Some(Reason::Insensitive {
            test: t.test,
            min_p: test.min_p,
            threshold,
        });
    }
    None
}

/// Corrects one metric's family and gives each of its groups an outcome.
fn judge_family(prepared: &mut [Prepared], metric: Metric) {
    let members: Vec<usize> = (0..prepared.len())
        .filter(|&i| prepared[i].report.metric == metric)
        .collect();
    let Some(first) = members.first() else {
        return;
    };
    let thresholds = prepared[*first].thresholds;
    // An untestable group stays in the family as p = 1: m cannot shrink by
    // dropping groups, so the guarantee holds whatever was dropped.
    let p_of = |p: &Prepared, pick: fn(&TestResult) -> f64| match (&p.blocked, &p.report.test) {
        (None, Some(test)) => pick(test),
        _ => 1.0,
    };
    let worse: Vec<f64> = members
        .iter()
        .map(|&i| p_of(&prepared[i], |t| t.p_worse))
        .collect();
    let better: Vec<f64> = members
        .iter()
        .map(|&i| p_of(&prepared[i], |t| t.p_better))
        .collect();
    let worse = adjust(&worse, thresholds.correction);
    let better = adjust(&better, thresholds.correction);
    for (k, &i) in members.iter().enumerate() {
        let p = &mut prepared[i];
        p.report.outcome = match (p.blocked.take(), p.report.test) {
            (Some(reason), _) => Outcome::CannotJudge { reason },
            (None, None) => unreachable!("a group without a test is blocked"),
            (None, Some(test)) => {
                p.report.p_worse_adjusted = Some(worse[k]);
                p.report.p_better_adjusted = Some(better[k]);
                classify(&p.report, &test, worse[k], better[k], &p.thresholds)
            }
        };
    }
}

/// A tested group's outcome, with the censoring rules.
fn classify(
    report: &BaselineComparison,
    test: &TestResult,
    p_worse: f64,
    p_better: f64,
    t: &Thresholds,
) -> Outcome {
    let worse_by = test.worse_by(report.lower_is_better);
    let censored = |side: &Option<SideStats>| side.as_ref().map_or(Vec::new(), |s| s.censored_reps.clone());
    let (new_censored, base_censored) = (censored(&report.new), censored(&report.baseline));
    if p_worse <= t.alpha && worse_by >= t.min_effect {
        // Bounds in the new run only understate how bad it is; bounds in the
        // baseline understate how bad *it* was, so they prove nothing.
        if !base_censored.is_empty() {
            return Outcome::CannotJudge {
                reason: Reason::CensoredBaseline { reps: base_censored },
            };
        }
        return Outcome::Regression {
            by_bounds: !new_censored.is_empty(),
        };
    }
    if !new_censored.is_empty() {
        return Outcome::CannotJudge {
            reason: Reason::CensoredNew { reps: new_censored },
        };
    }
    if p_better <= t.alpha && -worse_by >= t.min_effect {
        Outcome::Improved
    } else if p_worse <= t.alpha || p_better <= t.alpha {
        Outcome::BelowMinEffect
    } else {
        Outcome::NoChange
    }
}
