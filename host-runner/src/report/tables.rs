//! The report's tables and ministat blocks, built once from the figures and
//! laid out by `text` and `markdown`.

use super::analysis::{self, Arm, LockComparison, LockVerdict, Report};
use super::censored::Dominance;
pub use super::format::short_group;
use super::format::{bounded, g6, improvement, micros, utc, Align, Table};
use crate::ministat::cfmt::{g as gfmt, g_width};
use crate::ministat::text::TABLE_HEADER;
use crate::results::{LockMode, Metric, Overcommit};

/// Width of a ministat block between its `+` corners (ministat's plot width).
const BLOCK_WIDTH: usize = 74;

pub fn provenance(report: &Report) -> Table {
    let p = &report.provenance;
    let mut t = Table::new(vec![vec!["", ""]], vec![Align::Left, Align::Left]);
    let c = &report.cells;
    let rows = [
        ("results", report.dir.display().to_string()),
        ("started", utc(p.started_unix)),
        (
            "host",
            format!(
                "{} ({} cores), kernel {}",
                p.host_cpu, p.host_cores, p.host_kernel
            ),
        ),
        ("QEMU", format!("{}, accel {}", p.qemu, p.accel)),
        ("guest image", p.image_id.clone()),
        ("git revision", p.git_revision.clone()),
        ("matrix", p.matrix_hash.clone()),
        ("pvbench", p.pvbench_version.clone()),
        (
            "cells",
            format!(
                "{} planned: {} completed, {} censored, {} failed, {} missing",
                c.planned, c.completed, c.censored, c.failed, c.missing
            ),
        ),
    ];
    for (k, v) in rows {
        t.push(vec![k.to_string(), v]);
    }
    if let Some(time) = &report.time {
        t.push(vec![
            "time measured".to_string(),
            format!(
                "{:.0} s of {:.0} s in {} cells ({:.0}%); the rest: hog guests {:.0} s, bench boot {:.0} s, \
                 workload data, warm-up and cleanup {:.0} s, stopping and collecting {:.0} s",
                time.measured_s,
                time.cell_wall_s,
                time.cells,
                time.measured_percent(),
                time.hogs_s,
                time.boot_s,
                time.unmeasured_work_s,
                time.teardown_s
            ),
        ]);
    }
    t
}

/// The seed's kernbench table: per overcommit, mean (sd) of both arms, the
/// improvement and the verdict.
pub fn kernbench(report: &Report) -> Table {
    let confidence = format!("at {:.1}% confidence", report.confidence_percent);
    let mut t = Table::new(
        vec![
            vec!["", "BASE", "BASE+pv", "%improvement", &confidence, "resolution"],
            vec!["", "mean (sd)", "mean (sd)", "", "", "+/- CI, MDE"],
        ],
        vec![
            Align::Left,
            Align::Left,
            Align::Left,
            Align::Right,
            Align::Left,
            Align::Left,
        ],
    );
    for g in &report.kernbench {
        let (imp, verdict) = verdict_cells(g);
        t.push(vec![
            format!("case {}:", g.group.overcommit),
            mean_sd(&g.base, g.metric),
            mean_sd(&g.pv, g.metric),
            imp,
            verdict,
            resolution_cell(g),
        ]);
    }
    t
}

/// `+/-4.2%, MDE 6.1%`, or `-` where the row's test has no such figures.
fn resolution_cell(g: &LockComparison) -> String {
    match (g.resolution.ci_half_pct, g.resolution.mde_pct) {
        (Some(ci), Some(mde)) => format!("+/-{}%, MDE {}%", pct(ci), pct(mde)),
        (Some(ci), None) => format!("+/-{}%", pct(ci)),
        _ => "-".into(),
    }
}

/// Which rows reached the run's target MDE, in one sentence.
pub fn target_line(t: &super::analysis::TargetRows) -> String {
    let mut line = format!("Target minimum detectable effect {}%: ", pct(t.mde_pct));
    if t.reached.is_empty() {
        line.push_str("reached by no row");
    } else {
        line.push_str(&format!("reached by {}", t.reached.join(", ")));
    }
    if !t.missed.is_empty() {
        let missed: Vec<String> = t
            .missed
            .iter()
            .map(|(name, mde, n)| match mde {
                Some(mde) => format!("{name} (MDE {}% with {n} runs a side)", pct(*mde)),
                None => format!("{name} (no MDE: censored or too few runs)"),
            })
            .collect();
        line.push_str(&format!("; not reached by {}", missed.join(", ")));
    }
    line.push('.');
    line
}

/// A percentage to 3 significant digits.
fn pct(x: f64) -> String {
    gfmt(x, 3)
}

/// What each comparison could have seen, one line per group: the minimum
/// detectable effect (80 % power) and the interval's half-width, and for a
/// row with no difference proven, the differences that would have gone unseen.
pub fn resolution_notes(groups: &[LockComparison], confidence_percent: f64) -> Vec<String> {
    groups
        .iter()
        .map(|g| {
            let r = &g.resolution;
            let name = short_group(&g.group);
            let conf = g6(confidence_percent);
            let line = match (r.mde_pct, r.ci_half_pct, &r.resolution_note) {
                (Some(mde), ci, _) if !g.verdict.proven() => format!(
                    "{name}: no difference proven; differences below {}% cannot be seen with these runs \
                     (80% power at {conf}% confidence){}.",
                    pct(mde),
                    ci.map_or(String::new(), |ci| format!(
                        "; the {conf}% interval is +/-{}%",
                        pct(ci)
                    ))
                ),
                (Some(mde), ci, _) => format!(
                    "{name}: the {conf}% interval is +/-{}%; the minimum detectable effect {}% (80% power).",
                    ci.map_or("-".into(), pct),
                    pct(mde)
                ),
                (None, _, Some(note)) => format!("{name}: {note}."),
                (None, _, None) => format!("{name}: no resolution."),
            };
            match &g.host_adjusted {
                Some(h) => format!(
                    "{line} With the host's speed as a covariate: pv {}{}% +/- {}% (p = {:.3}), \
                     minimum detectable effect {}%.",
                    if h.diff_pct >= 0.0 { "+" } else { "" },
                    pct(h.diff_pct),
                    pct(h.ci_half_pct),
                    h.p,
                    pct(h.mde_pct)
                ),
                None => line,
            }
        })
        .collect()
}

/// `mean (sd)`, a bound with how many runs were capped, or `-` without runs.
fn mean_sd(arm: &Arm, metric: Metric) -> String {
    let Some(s) = arm.stats else {
        return "-".to_string();
    };
    if s.censored > 0 {
        return format!("{} ({}/{} capped)", bounded(s.mean, metric, 6), s.censored, s.n);
    }
    match s.stddev {
        Some(sd) => format!("{} ({})", g6(s.mean.lo), g6(sd)),
        None => format!("{} (n=1)", g6(s.mean.lo)),
    }
}

/// The improvement and verdict cells of a kernbench row.
fn verdict_cells(g: &LockComparison) -> (String, String) {
    match &g.verdict {
        LockVerdict::TooFew { base, pv } => ("-".into(), format!("too few runs (base {base}, pv {pv})")),
        LockVerdict::Student {
            improvement_percent,
            improvement_half_width_percent,
            proven,
            better,
            ..
        } => {
            let verdict = if *proven {
                format!(
                    "{}% +/- {}% ({})",
                    g6(*improvement_percent),
                    g6(*improvement_half_width_percent),
                    better_phrase(*better, g.metric)
                )
            } else {
                "No difference proven".to_string()
            };
            (g6(*improvement_percent), verdict)
        }
        LockVerdict::Censored {
            improvement_percent,
            gehan_p,
            proven,
            better,
            ..
        } => {
            let verdict = if *proven {
                format!(
                    "{} (rank test p = {})",
                    better_phrase(*better, g.metric),
                    gfmt(*gehan_p, 3)
                )
            } else {
                format!("No difference proven (rank test p = {})", gfmt(*gehan_p, 3))
            };
            (improvement(*improvement_percent, g.metric), verdict)
        }
    }
}

fn better_phrase(better: Option<LockMode>, metric: Metric) -> String {
    let what = match metric {
        Metric::ElapsedS => "faster",
        Metric::Tps => "better",
    };
    match better {
        Some(lock) => format!("{lock} {what}"),
        None => "no direction".to_string(),
    }
}

/// What the censored groups' figures mean, one paragraph per group.
pub fn censored_notes(groups: &[LockComparison], confidence_percent: f64) -> Vec<String> {
    groups
        .iter()
        .filter(|g| g.censored())
        .map(|g| censored_note(g, confidence_percent))
        .collect()
}

fn censored_note(g: &LockComparison, confidence_percent: f64) -> String {
    let cap = g.cap_s.map_or(String::new(), |c| format!(" {} s", g6(c)));
    let bound = match g.metric {
        Metric::ElapsedS => "their times are lower bounds (>=)",
        Metric::Tps => "their TPS are upper bounds (<=)",
    };
    let arms: Vec<String> = [&g.base, &g.pv]
        .iter()
        .filter(|a| a.censored() > 0)
        .map(|a| format!("{} of {} {} runs", a.censored(), a.n(), a.lock))
        .collect();
    let mut note = format!(
        "{}: {} reached the{cap} cap: {bound}, with no sd and no mean difference.",
        short_group(&g.group),
        arms.join(" and ")
    );
    if let LockVerdict::Censored {
        improvement_percent,
        dominance,
        gehan_p,
        min_p,
        proven,
        ..
    } = &g.verdict
    {
        note.push_str(&format!(
            " The improvement of the means is {}%.",
            improvement(*improvement_percent, g.metric)
        ));
        if let Some(d) = dominance {
            note.push_str(&format!(" {}.", dominance_phrase(d, g.metric)));
        }
        note.push_str(&format!(
            " Gehan's rank test: p = {}{}, {} at {confidence_percent:.1}% confidence",
            gfmt(*gehan_p, 3),
            if *min_p > 1.0 - confidence_percent / 100.0 {
                format!(
                    " ({} vs {} runs cannot give less than {})",
                    g.base.n(),
                    g.pv.n(),
                    gfmt(*min_p, 3)
                )
            } else {
                String::new()
            },
            if *proven {
                "a difference"
            } else {
                "no difference proven"
            }
        ));
        note.push('.');
    }
    note
}

fn dominance_phrase(d: &Dominance, metric: Metric) -> String {
    // The report compares base and pv (the matrix refuses other modes until
    // it compares them).
    let other = match d.better {
        LockMode::Base => LockMode::Pv,
        _ => LockMode::Base,
    };
    match metric {
        Metric::ElapsedS => format!(
            "Every {} run was at least {}x faster than every {other} run",
            d.better,
            gfmt(d.factor, 3)
        ),
        Metric::Tps => format!(
            "Every {} run had at least {}x the TPS of every {other} run",
            d.better,
            gfmt(d.factor, 3)
        ),
    }
}

/// The pgbench comparisons as the seed's ministat blocks: legend and table
/// header once, then per client count a `+--- NRCLIENT = N ---+` separator,
/// the rows and the verdict.
pub fn pgbench_blocks(report: &Report) -> String {
    let mut out = String::from("x base\n+ pv\n");
    out.push_str(TABLE_HEADER);
    for g in &report.pgbench {
        let mut label = format!(" NRCLIENT = {} ", g.group.clients.unwrap_or(0));
        if g.group.overcommit != Overcommit::X1 {
            label = format!(
                " NRCLIENT = {}, {} overcommit ",
                g.group.clients.unwrap_or(0),
                g.group.overcommit
            );
        }
        let lead = 21;
        let fill = BLOCK_WIDTH.saturating_sub(lead + label.len());
        out.push_str(&format!("+{}{label}{}+\n", "-".repeat(lead), "-".repeat(fill)));
        out.push_str(&block_body(g, report));
    }
    out.push_str(&format!("+{}+\n", "-".repeat(BLOCK_WIDTH)));
    out
}

fn block_body(g: &LockComparison, report: &Report) -> String {
    if let Some(text) = analysis::ministat_rows(&g.base, &g.pv, report.confidence) {
        return text;
    }
    let mut out = String::new();
    for (symbol, arm) in [('x', &g.base), ('+', &g.pv)] {
        out.push_str(&row(symbol, arm, g.metric));
    }
    let confidence = report.confidence_percent;
    match &g.verdict {
        LockVerdict::TooFew { base, pv } => {
            out.push_str(&format!("Too few runs to compare (base {base}, pv {pv})\n"));
        }
        LockVerdict::Censored {
            improvement_percent,
            dominance,
            gehan_p,
            min_p,
            proven,
            better,
        } => {
            let arms: Vec<String> = [('x', &g.base), ('+', &g.pv)]
                .iter()
                .filter(|(_, a)| a.censored() > 0)
                .map(|(s, a)| format!("{s} {} of {}", a.censored(), a.n()))
                .collect();
            out.push_str(&format!(
                "Censored runs (stopped at the cap, TPS <= the value): {}; no mean difference\n",
                arms.join(", ")
            ));
            out.push_str(&format!(
                "\timprovement {}% (bounds of the means)\n",
                improvement(*improvement_percent, g.metric)
            ));
            if let Some(d) = dominance {
                out.push_str(&format!("\t{}\n", dominance_phrase(d, g.metric)));
            }
            let limit = if *min_p > 1.0 - confidence / 100.0 {
                format!("; {} vs {} runs: p >= {}", g.base.n(), g.pv.n(), gfmt(*min_p, 3))
            } else {
                String::new()
            };
            if *proven {
                out.push_str(&format!(
                    "Difference at {confidence:.1}% confidence: {} (Gehan's rank test, p = {}{limit})\n",
                    better_phrase(*better, g.metric),
                    gfmt(*gehan_p, 3)
                ));
            } else {
                out.push_str(&format!(
                    "No difference proven at {confidence:.1}% confidence (Gehan's rank test, p = {}{limit})\n",
                    gfmt(*gehan_p, 3)
                ));
            }
        }
        // ministat_rows covers every uncensored pair of two runs or more.
        LockVerdict::Student { .. } => {}
    }
    out
}

/// A ministat table row for data with bounds or too few runs.
fn row(symbol: char, arm: &Arm, metric: Metric) -> String {
    let cell = |b| {
        let text = bounded(b, metric, 8);
        format!("{text:>13}")
    };
    match arm.stats {
        None => format!("{symbol} {:>3} {:>13}\n", 0, "(no runs)"),
        Some(s) => format!(
            "{symbol} {:>3} {} {} {} {} {}\n",
            s.n,
            cell(s.min),
            cell(s.max),
            cell(s.median),
            cell(s.mean),
            s.stddev.map_or(format!("{:>13}", "-"), |sd| g_width(sd, 13, 8)),
        ),
    }
}

pub fn latency(report: &Report) -> Table {
    let mut t = Table::new(
        vec![vec![
            "group", "lock", "runs", "samples", "p50", "p90", "p99", "p99.9", "p99.99", "max",
        ]],
        Align::columns(2, 8),
    );
    for r in &report.latency {
        let runs = if r.censored > 0 {
            format!("{} ({} capped)", r.runs, r.censored)
        } else {
            r.runs.to_string()
        };
        t.push(vec![
            short_group(&r.group),
            r.lock.to_string(),
            runs,
            r.samples.to_string(),
            micros(r.p50),
            micros(r.p90),
            micros(r.p99),
            micros(r.p999),
            micros(r.p9999),
            r.max.to_string(),
        ]);
    }
    t
}

pub fn pvlock(report: &Report) -> Table {
    let mut t = Table::new(
        vec![vec![
            "group",
            "lock",
            "runs",
            "taken_slow",
            "slow_pickup",
            "halted",
            "spurious",
            "released_slow",
            "kicked",
            "blocked Mcycles",
        ]],
        Align::columns(2, 8),
    );
    for r in &report.pvlock {
        t.push(vec![
            short_group(&r.group),
            r.lock.to_string(),
            r.runs.to_string(),
            g6(r.taken_slow),
            g6(r.taken_slow_pickup),
            g6(r.halted),
            g6(r.spurious_wakeups),
            g6(r.released_slow),
            g6(r.released_slow_kicked),
            g6(r.time_blocked_cycles / 1e6),
        ]);
    }
    t
}

pub fn cpu(report: &Report) -> Table {
    let mut t = Table::new(
        vec![vec![
            "group",
            "lock",
            "runs",
            "guests x vCPUs / cores",
            "fair share",
            "bench",
            "bench / fair",
            "hogs",
        ]],
        Align::columns(2, 6),
    );
    for r in &report.cpu {
        t.push(vec![
            short_group(&r.group),
            r.lock.to_string(),
            r.runs.to_string(),
            format!("{} x {} / {}", r.guests, r.vcpus, r.host_cores),
            format!("{:.3}", r.fair_share),
            format!("{:.3}", r.bench_share),
            format!("{:.0}%", 100.0 * r.bench_vs_fair),
            r.hog_share.map_or("-".to_string(), |h| format!("{h:.3}")),
        ]);
    }
    t
}

/// How the CPU table's columns are defined.
pub const CPU_NOTE: &str =
    "Share of a host core per vCPU: a guest's QEMU CPU seconds / wall seconds / its vCPUs \
     (mean over runs), counted over the measured work (results recorded since host readings exist; \
     older ones count the bench guest's whole life, boot and setup included). With G guests of V \
     vCPUs on C host cores, the fair share is min(1, C / (G x V)).";

/// What the latency table's figures are.
pub const LATENCY_NOTE: &str = "Microseconds, from each run's HDR histogram: each percentile is the median over \
     runs, max the largest of all runs. Capped runs never finished their slowest operations: their tails read low.";

pub fn failed(report: &Report) -> Table {
    let mut t = Table::new(
        vec![vec!["cell", "kind", "reason"]],
        vec![Align::Left, Align::Left, Align::Left],
    );
    for f in &report.failed {
        t.push(vec![f.id.clone(), f.kind.to_string(), f.reason.clone()]);
    }
    t
}

/// Failures per group and lock mode, by kind.
pub fn failures(report: &Report) -> Table {
    let mut t = Table::new(
        vec![vec![
            "",
            "lock",
            "cells",
            "kernel panic",
            "app panic",
            "stall",
            "other",
        ]],
        Align::columns(2, 5),
    );
    for r in &report.failures {
        let n = |x: usize| x.to_string();
        t.push(vec![
            short_group(&r.group),
            r.lock.to_string(),
            n(r.cells),
            n(r.kernel_panic),
            n(r.app_panic),
            n(r.stall),
            n(r.other),
        ]);
    }
    t
}
