//! The report's tables and ministat blocks, built once from the figures and
//! laid out by `text` and `markdown`.

use super::analysis::{self, Arm, LockComparison, LockVerdict, ModeComparison, Report};
use super::censored::Dominance;
pub use super::format::short_group;
use super::format::{bounded, g6, improvement, micros, utc, Align, Table};
use crate::ministat::cfmt::{g as gfmt, g_width};
use crate::ministat::text::TABLE_HEADER;
use crate::ministat::SYMBOLS;
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
        (
            "guest clock",
            p.guest_tsc_mhz.map_or_else(
                || "calibrated by each guest (no host TSC rate recorded)".to_string(),
                |mhz| format!("host TSC rate, {mhz} MHz, given to every guest"),
            ),
        ),
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

/// A lock mode's column header: the seed's BASE and BASE+pv, the later
/// designs by name.
fn arm_label(lock: LockMode) -> String {
    match lock {
        LockMode::Base => "BASE".into(),
        LockMode::Pv => "BASE+pv".into(),
        other => other.to_string(),
    }
}

/// A table from owned header cells.
fn table(headers: Vec<Vec<String>>, align: Vec<Align>) -> Table {
    let refs: Vec<Vec<&str>> = headers
        .iter()
        .map(|h| h.iter().map(String::as_str).collect())
        .collect();
    Table::new(refs, align)
}

/// The seed's kernbench table: per overcommit, mean (sd) of both arms, the
/// improvement and the verdict. With several modes against base, one table
/// of every mode's mean (sd) ([`kernbench_means`]) and one of each mode
/// against base ([`kernbench_against_base`]) instead.
pub fn kernbench(report: &Report) -> Table {
    let lock = report.locks.get(1).copied().unwrap_or(LockMode::Pv);
    let confidence = format!("at {:.1}% confidence", report.confidence_percent);
    let mut t = table(
        vec![
            vec![
                String::new(),
                "BASE".into(),
                arm_label(lock),
                "%improvement".into(),
                confidence,
                "resolution".into(),
            ],
            ["", "mean (sd)", "mean (sd)", "", "", "+/- CI, MDE"]
                .map(String::from)
                .to_vec(),
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
        let Some(m) = g.modes.first() else { continue };
        let (imp, verdict) = verdict_cells(m, g.metric);
        t.push(vec![
            format!("case {}:", g.group.overcommit),
            mean_sd(&g.base, g.metric),
            mean_sd(&m.arm, g.metric),
            imp,
            verdict,
            resolution_cell(m),
        ]);
    }
    t
}

/// Whether the report compares more than one mode with base (and lays its
/// kernbench table out as [`kernbench_means`] and [`kernbench_against_base`]).
pub fn several_modes(report: &Report) -> bool {
    report.locks.len() > 2
}

/// Every mode's kernbench mean (sd) per overcommit, base first.
pub fn kernbench_means(report: &Report) -> Table {
    let mut headers = vec![String::new()];
    headers.extend(report.locks.iter().map(|&l| arm_label(l)));
    let mut sub = vec![String::new()];
    sub.extend(report.locks.iter().map(|_| "mean (sd)".to_string()));
    let mut t = table(vec![headers, sub], vec![Align::Left; report.locks.len() + 1]);
    for g in &report.kernbench {
        let mut row = vec![format!("case {}:", g.group.overcommit)];
        row.extend(
            report
                .locks
                .iter()
                .map(|&l| g.arm(l).map_or("-".into(), |a| mean_sd(a, g.metric))),
        );
        t.push(row);
    }
    t
}

/// Each mode against base per overcommit: the improvement, the verdict and
/// its resolution.
pub fn kernbench_against_base(report: &Report) -> Table {
    let confidence = format!("at {:.1}% confidence", report.confidence_percent);
    let mut t = table(
        vec![
            vec![
                String::new(),
                "lock".into(),
                "%improvement".into(),
                confidence,
                "resolution".into(),
            ],
            ["", "", "vs BASE", "", "+/- CI, MDE"].map(String::from).to_vec(),
        ],
        vec![Align::Left, Align::Left, Align::Right, Align::Left, Align::Left],
    );
    for g in &report.kernbench {
        for m in &g.modes {
            let (imp, verdict) = verdict_cells(m, g.metric);
            t.push(vec![
                format!("case {}:", g.group.overcommit),
                m.arm.lock.to_string(),
                imp,
                verdict,
                resolution_cell(m),
            ]);
        }
    }
    t
}

/// `+/-4.2%, MDE 6.1%`, or `-` where the row's test has no such figures.
fn resolution_cell(m: &ModeComparison) -> String {
    match (m.resolution.ci_half_pct, m.resolution.mde_pct) {
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

/// What each comparison could have seen, one line per group and mode
/// against base: the minimum detectable effect (80 % power) and the
/// interval's half-width, and for a row with no difference proven, the
/// differences that would have gone unseen. With one mode against base the
/// line names the group alone.
pub fn resolution_notes(groups: &[LockComparison], confidence_percent: f64) -> Vec<String> {
    groups
        .iter()
        .flat_map(|g| {
            g.modes
                .iter()
                .map(move |m| resolution_note(g, m, confidence_percent))
        })
        .collect()
}

fn resolution_note(g: &LockComparison, m: &ModeComparison, confidence_percent: f64) -> String {
    let r = &m.resolution;
    let name = match g.modes.len() {
        1 => short_group(&g.group),
        _ => format!("{} {}", short_group(&g.group), m.arm.lock),
    };
    let conf = g6(confidence_percent);
    let line = match (r.mde_pct, r.ci_half_pct, &r.resolution_note) {
        (Some(mde), ci, _) if !m.verdict.proven() => format!(
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
    match &m.host_adjusted {
        Some(h) => format!(
            "{line} With the host's speed as a covariate: {} {}{}% +/- {}% (p = {:.3}), \
             minimum detectable effect {}%.",
            m.arm.lock,
            if h.diff_pct >= 0.0 { "+" } else { "" },
            pct(h.diff_pct),
            pct(h.ci_half_pct),
            h.p,
            pct(h.mde_pct)
        ),
        None => line,
    }
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

/// The improvement and verdict cells of a mode's kernbench row.
fn verdict_cells(m: &ModeComparison, metric: Metric) -> (String, String) {
    match &m.verdict {
        LockVerdict::TooFew { base, other } => (
            "-".into(),
            format!("too few runs (base {base}, {} {other})", m.arm.lock),
        ),
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
                    better_phrase(*better, metric)
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
                    better_phrase(*better, metric),
                    gfmt(*gehan_p, 3)
                )
            } else {
                format!("No difference proven (rank test p = {})", gfmt(*gehan_p, 3))
            };
            (improvement(*improvement_percent, metric), verdict)
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
    let arms: Vec<String> = g
        .arms()
        .filter(|a| a.censored() > 0)
        .map(|a| format!("{} of {} {} runs", a.censored(), a.n(), a.lock))
        .collect();
    let mut note = format!(
        "{}: {} reached the{cap} cap: {bound}, with no sd and no mean difference.",
        short_group(&g.group),
        arms.join(" and ")
    );
    for m in &g.modes {
        let LockVerdict::Censored {
            improvement_percent,
            dominance,
            gehan_p,
            min_p,
            proven,
            ..
        } = &m.verdict
        else {
            continue;
        };
        // With several modes each sentence says which one it is about.
        let (the, which) = match g.modes.len() {
            1 => (" The".to_string(), String::new()),
            _ => (
                format!(" {} against base: the", m.arm.lock),
                format!(" ({})", m.arm.lock),
            ),
        };
        note.push_str(&format!(
            "{the} improvement of the means is {}%.",
            improvement(*improvement_percent, g.metric)
        ));
        if let Some(d) = dominance {
            note.push_str(&format!(" {}.", dominance_phrase(d, m.arm.lock, g.metric)));
        }
        note.push_str(&format!(
            " Gehan's rank test{which}: p = {}{}, {} at {confidence_percent:.1}% confidence",
            gfmt(*gehan_p, 3),
            if *min_p > 1.0 - confidence_percent / 100.0 {
                format!(
                    " ({} vs {} runs cannot give less than {})",
                    g.base.n(),
                    m.arm.n(),
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

/// `d` of a comparison of base with `mode`, in words.
fn dominance_phrase(d: &Dominance, mode: LockMode, metric: Metric) -> String {
    let other = if d.better == LockMode::Base {
        mode
    } else {
        LockMode::Base
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

/// The ministat symbol of the `index`th arm (base is 0: `x`).
fn symbol(index: usize) -> char {
    SYMBOLS[(index + 1).min(SYMBOLS.len() - 1)] as char
}

/// The legend of the ministat blocks: `x base`, `+ pv`, `* qspin`, ...
pub fn ministat_legend(report: &Report) -> String {
    report
        .locks
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{} {l}\n", symbol(i)))
        .collect()
}

/// The ministat blocks' sets in words: "base (`x`) against pv (`+`)", ...
pub fn ministat_sets(report: &Report) -> String {
    let named: Vec<String> = report
        .locks
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{l} (`{}`)", symbol(i)))
        .collect();
    match named.split_first() {
        Some((base, rest)) => format!("{base} against {}", rest.join(", ")),
        None => String::new(),
    }
}

/// The pgbench comparisons as the seed's ministat blocks: legend and table
/// header once, then per client count a `+--- NRCLIENT = N ---+` separator,
/// the rows and the verdicts (every mode against base, as ministat compares
/// every set with the first).
pub fn pgbench_blocks(report: &Report) -> String {
    let mut out = ministat_legend(report);
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
        if g.group.migrated {
            label = format!("{label}migrated ");
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
    if let Some(text) = analysis::ministat_rows(g.arms(), report.confidence) {
        return text;
    }
    let mut out = String::new();
    for (i, arm) in g.arms().enumerate() {
        out.push_str(&row(symbol(i), arm, g.metric));
    }
    let several = g.modes.len() > 1;
    for (i, m) in g.modes.iter().enumerate() {
        // With several modes each verdict says which set it is about.
        let prefix = if several {
            format!("{} {}: ", symbol(i + 1), m.arm.lock)
        } else {
            String::new()
        };
        out.push_str(&mode_verdict(g, m, &prefix, report, symbol(i + 1)));
    }
    out
}

/// The verdict lines of `m` against base in a block that ministat's own
/// text could not lay out (censored runs, too few runs).
fn mode_verdict(g: &LockComparison, m: &ModeComparison, prefix: &str, report: &Report, sym: char) -> String {
    let confidence = report.confidence_percent;
    let mut out = String::new();
    match &m.verdict {
        LockVerdict::TooFew { base, other } => {
            out.push_str(&format!(
                "{prefix}Too few runs to compare (base {base}, {} {other})\n",
                m.arm.lock
            ));
        }
        LockVerdict::Censored {
            improvement_percent,
            dominance,
            gehan_p,
            min_p,
            proven,
            better,
        } => {
            let arms: Vec<String> = [('x', &g.base), (sym, &m.arm)]
                .iter()
                .filter(|(_, a)| a.censored() > 0)
                .map(|(s, a)| format!("{s} {} of {}", a.censored(), a.n()))
                .collect();
            out.push_str(&format!(
                "{prefix}Censored runs (stopped at the cap, TPS <= the value): {}; no mean difference\n",
                arms.join(", ")
            ));
            out.push_str(&format!(
                "\timprovement {}% (bounds of the means)\n",
                improvement(*improvement_percent, g.metric)
            ));
            if let Some(d) = dominance {
                out.push_str(&format!("\t{}\n", dominance_phrase(d, m.arm.lock, g.metric)));
            }
            let limit = if *min_p > 1.0 - confidence / 100.0 {
                format!("; {} vs {} runs: p >= {}", g.base.n(), m.arm.n(), gfmt(*min_p, 3))
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
        // Beside a censored or too small arm of another mode: this pair's
        // Student's t, in ministat's words.
        LockVerdict::Student {
            improvement_percent,
            improvement_half_width_percent,
            proven,
            better,
            ..
        } => {
            if *proven {
                out.push_str(&format!(
                    "{prefix}Difference at {confidence:.1}% confidence: {}% +/- {}% ({}, Student's t)\n",
                    g6(*improvement_percent),
                    g6(*improvement_half_width_percent),
                    better_phrase(*better, g.metric)
                ));
            } else {
                out.push_str(&format!(
                    "{prefix}No difference proven at {confidence:.1}% confidence\n"
                ));
            }
        }
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

/// Whether any CPU row has run delays (recorded since 2026-11-30): only
/// then does the CPU table show their columns.
pub fn has_run_delay(report: &Report) -> bool {
    report
        .cpu
        .iter()
        .any(|r| r.bench_run_delay.is_some() || r.hog_run_delay.is_some())
}

pub fn cpu(report: &Report) -> Table {
    let delays = has_run_delay(report);
    let mut headers = vec![
        "group",
        "lock",
        "runs",
        "guests x vCPUs / cores",
        "fair share",
        "bench",
        "bench / fair",
        "hogs",
    ];
    if delays {
        headers.extend(["bench run delay", "hogs run delay"]);
    }
    let right = headers.len() - 2;
    let mut t = Table::new(vec![headers], Align::columns(2, right));
    let share = |x: Option<f64>| x.map_or("-".to_string(), |d| format!("{:.0}%", 100.0 * d));
    for r in &report.cpu {
        let mut row = vec![
            short_group(&r.group),
            r.lock.to_string(),
            r.runs.to_string(),
            format!("{} x {} / {}", r.guests, r.vcpus, r.host_cores),
            format!("{:.3}", r.fair_share),
            format!("{:.3}", r.bench_share),
            format!("{:.0}%", 100.0 * r.bench_vs_fair),
            r.hog_share.map_or("-".to_string(), |h| format!("{h:.3}")),
        ];
        if delays {
            row.extend([share(r.bench_run_delay), share(r.hog_run_delay)]);
        }
        t.push(row);
    }
    t
}

/// How the CPU table's columns are defined.
pub const CPU_NOTE: &str =
    "Share of a host core per vCPU: a guest's QEMU CPU seconds / wall seconds / its vCPUs \
     (mean over runs), counted over the repetitions' timed work as the bench guest marks it \
     (results since 2026-12-01; earlier ones from its start line to its end, its data written and \
     removed; before host readings existed, over its whole life, boot and setup included). With G \
     guests of V vCPUs on C host cores, the fair share is min(1, C / (G x V)).";

/// How the run-delay columns are defined (shown with them).
pub const RUN_DELAY_NOTE: &str =
    "Run delay: the time a guest's vCPU threads were runnable but waiting for a host CPU \
     (/proc/PID/task/TID/schedstat, the host's view of steal time), summed over its vCPUs, as a \
     share of the vCPUs' wall time over the measured work (mean over runs). A halting lock \
     design's kicked vCPUs wait here for the host scheduler.";

/// The queued locks' events, mean per run (the main ones; the JSON report has all).
pub fn queued(report: &Report) -> Table {
    const SHOWN: [(&str, &str); 13] = [
        ("pending", "pending"),
        ("queued", "queued"),
        ("steals", "steals"),
        ("wait_node", "wait_node"),
        ("wait_head", "wait_head"),
        ("wait_again", "wait_again"),
        ("wait_early", "wait_early"),
        ("spurious_wakeups", "spurious"),
        ("hashed", "hashed"),
        ("hash_hops", "hash_hops"),
        ("kick_unlock", "kick_unlock"),
        ("kick_wake", "kick_wake"),
        ("time_blocked_cycles", "blocked Mcycles"),
    ];
    let mut headers = vec!["group", "lock", "runs"];
    headers.extend(SHOWN.iter().map(|(_, h)| *h));
    let mut t = Table::new(vec![headers], Align::columns(2, SHOWN.len() + 1));
    for r in &report.queued {
        let mut row = vec![short_group(&r.group), r.lock.to_string(), r.runs.to_string()];
        row.extend(SHOWN.iter().map(|(name, _)| match *name {
            "time_blocked_cycles" => g6(r.get(name) / 1e6),
            _ => g6(r.get(name)),
        }));
        t.push(row);
    }
    t
}

/// The test-and-set lock's counters, mean per run.
pub fn tas(report: &Report) -> Table {
    let mut t = Table::new(
        vec![vec![
            "group",
            "lock",
            "runs",
            "contended",
            "failed_cas",
            "backoff_spins",
        ]],
        Align::columns(2, 4),
    );
    for r in &report.tas {
        t.push(vec![
            short_group(&r.group),
            r.lock.to_string(),
            r.runs.to_string(),
            g6(r.get("contended")),
            g6(r.get("failed_cas")),
            g6(r.get("backoff_spins")),
        ]);
    }
    t
}

/// Kick-to-wake latency per group (overcommit) and paravirtual mode, microseconds.
pub fn kick_wake(report: &Report) -> Table {
    let mut t = Table::new(
        vec![vec!["group", "lock", "runs", "kicks", "p50", "p90", "p99", "max"]],
        Align::columns(2, 6),
    );
    let us = |ns: f64| g6(ns / 1e3);
    for r in &report.kick_wake {
        t.push(vec![
            short_group(&r.group),
            r.lock.to_string(),
            r.runs.to_string(),
            r.kicks.to_string(),
            us(r.p50),
            us(r.p90),
            us(r.p99),
            us(r.max as f64),
        ]);
    }
    t
}

/// Each lock mode's cost of migration: its migrated cells against its
/// unmigrated ones in the same group.
pub fn migration(report: &Report) -> Table {
    let mut t = Table::new(
        vec![vec![
            "group",
            "lock",
            "kind",
            "runs",
            "still",
            "migrated",
            "cost %",
            "+/- %",
            "migr/cell",
            "cost/migr %",
            "down p50 ms",
            "down max ms",
            "resumed",
            "failed",
        ]],
        Align::columns(3, 11),
    );
    // Means to four significant digits, whole numbers from 1000 on (never an
    // exponent); percentages to one decimal: the intervals are points wide.
    let mean = |x: Option<f64>| {
        x.map_or_else(
            || "-".to_string(),
            |x| {
                if x.abs() >= 1000.0 {
                    format!("{x:.0}")
                } else {
                    crate::ministat::cfmt::g(x, 4)
                }
            },
        )
    };
    let pct = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |x| format!("{x:.1}"));
    for r in &report.migration {
        t.push(vec![
            short_group(&r.group),
            r.lock.to_string(),
            r.kind.map_or_else(|| "-".to_string(), |k| k.to_string()),
            format!("{}/{}", r.runs_still, r.runs_migrated),
            mean(r.mean_still),
            mean(r.mean_migrated),
            match r.cost_pct {
                Some(c) => format!("{c:+.1}{}", if r.proven { "*" } else { "" }),
                None => "-".into(),
            },
            pct(r.ci_half_pct),
            crate::ministat::cfmt::g(r.migrations_per_cell, 3),
            pct(r.cost_per_migration_pct),
            mean(r.downtime_ms_p50),
            r.downtime_ms_max
                .map_or_else(|| "-".to_string(), |d| d.to_string()),
            r.resumes.to_string(),
            r.failed_migrated.to_string(),
        ]);
    }
    t
}

/// What the migration table's figures are.
pub const MIGRATION_NOTE: &str = "Each lock mode's bench guests migrated to a fresh QEMU while they work \
     (the matrix's [migration]) against the same mode left alone, in the same run, the two groups \
     adjacent in time. still/migrated: the mean of each side's completed runs (runs: still/migrated); \
     cost: how much worse the migrated runs did, in percent of the unmigrated mean (slower builds, \
     fewer transactions), with the half-width of its confidence interval (* : the interval excludes \
     0); cost/migr: cost over the migrations a cell made. Under TCG a paused migration stops the \
     guest's clock too, so the cost is what the guest sees after each move (cold translation cache on \
     the new QEMU, cold host caches, locks held across the pause), not the downtime itself. resumed: \
     metrics connections the guests opened again (QEMU's user network drops them on migration).";

/// What the kick-to-wake table's figures are.
pub const KICK_WAKE_NOTE: &str = "Microseconds from an unlocker's kick to the kicked waiter running again, \
     from each run's HDR histogram (the cell's <id>.kick-wake.hgrm): each percentile is the median over \
     runs, max the largest of all runs.";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_one_paragraph_of_single_spaces() {
        // A string continued without `\` keeps the next line's indentation:
        // the Markdown report printed it as runs of spaces.
        for note in [
            CPU_NOTE,
            RUN_DELAY_NOTE,
            MIGRATION_NOTE,
            KICK_WAKE_NOTE,
            LATENCY_NOTE,
        ] {
            assert!(!note.contains("  ") && !note.contains('\n'), "{note}");
        }
    }
}
