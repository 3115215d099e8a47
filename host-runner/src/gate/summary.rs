//! The gate's report for people: a few terminal lines, and Markdown fit for a
//! CI job summary. Files are written atomically (temporary file, then
//! rename), so a reader never sees half a summary.

use std::fmt::Write as _;
use std::path::Path;

use super::evaluate::{BaselineComparison, GateReport, GateVerdict, Outcome, SideStats};
use super::{metric_name, short_hash, GateError};
use crate::results::{LockMode, Provenance};

/// GitHub Actions' job summary file; appended to when set.
const STEP_SUMMARY_ENV: &str = "GITHUB_STEP_SUMMARY";

/// Counts for the headline.
struct Tally {
    regressions: usize,
    improved: usize,
    unchanged: usize,
    cannot_judge: usize,
}

fn tally(report: &GateReport) -> Tally {
    tally_of(report.groups.iter())
}

fn tally_of<'a>(groups: impl Iterator<Item = &'a BaselineComparison> + Clone) -> Tally {
    let count = |f: fn(&Outcome) -> bool| groups.clone().filter(|g| f(&g.outcome)).count();
    Tally {
        regressions: count(|o| matches!(o, Outcome::Regression { .. })),
        improved: count(|o| matches!(o, Outcome::Improved)),
        unchanged: count(|o| matches!(o, Outcome::NoChange | Outcome::BelowMinEffect)),
        cannot_judge: count(|o| matches!(o, Outcome::CannotJudge { .. })),
    }
}

fn headline(report: &GateReport) -> String {
    let t = tally(report);
    let verdict = match report.verdict {
        GateVerdict::Pass => "pass",
        GateVerdict::Regression => "REGRESSION",
        GateVerdict::CannotJudge => "cannot judge",
    };
    if !report.problems.is_empty() {
        return format!("{verdict}: the run cannot be compared with the baseline");
    }
    format!(
        "{verdict}: {} groups: {} regressed, {} improved, {} unchanged, {} could not be judged",
        report.groups.len(),
        t.regressions,
        t.improved,
        t.unchanged,
        t.cannot_judge
    )
}

/// The terminal report: the verdict line, then (unless `quiet`) a line per
/// group and the reasons.
pub fn print(report: &GateReport, quiet: bool) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pvbench gate: {}; {} against {}",
        headline(report),
        report.results.path,
        report.baseline.path
    );
    for problem in &report.problems {
        let _ = writeln!(out, "  {problem}");
    }
    if !quiet {
        let width = report
            .groups
            .iter()
            .map(|g| g.arm.to_string().len())
            .max()
            .unwrap_or(0);
        for g in &report.groups {
            let _ = write!(
                out,
                "  {:<width$}  {:<9}  {:>21}  {:>7}  {:>10}  {}",
                g.arm.to_string(),
                metric_name(g.metric),
                format!("{} -> {}", centre(&g.baseline), centre(&g.new)),
                change(g),
                p_text(g).map_or(String::new(), |p| format!("p {p}")),
                g.outcome.label()
            );
            if let Outcome::CannotJudge { reason } = &g.outcome {
                let _ = write!(out, ": {reason}");
            }
            out.push('\n');
        }
        for note in &report.notes {
            let _ = writeln!(out, "  note: {note}");
        }
    }
    print!("{out}");
}

/// The Markdown summary.
pub fn markdown(report: &GateReport) -> String {
    let mut md = String::new();
    let icon = match report.verdict {
        GateVerdict::Pass => "✅",
        GateVerdict::Regression => "❌",
        GateVerdict::CannotJudge => "⚠️",
    };
    let _ = writeln!(md, "## pvbench gate: {icon} {}\n", headline(report));
    let _ = writeln!(
        md,
        "New run `{}` ({}) against the baseline `{}` ({}).\n",
        report.results.path,
        run_label(&report.results.provenance),
        report.baseline.path,
        run_label(&report.baseline.provenance)
    );
    list_section(&mut md, "Cannot compare", &report.problems);
    modes_table(&mut md, &report.groups);
    groups_table(&mut md, &report.groups);
    let blocked: Vec<String> = report
        .groups
        .iter()
        .filter_map(|g| match &g.outcome {
            Outcome::CannotJudge { reason } => Some(format!("**{}**: {reason}", g.arm)),
            _ => None,
        })
        .collect();
    list_section(&mut md, "Could not judge", &blocked);
    list_section(&mut md, "Notes", &report.notes);
    thresholds_and_provenance(&mut md, report);
    md
}

/// A `###` section listing `items`, or nothing without items.
fn list_section(md: &mut String, title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(md, "### {title}\n");
    for item in items {
        let _ = writeln!(md, "- {item}");
    }
    md.push('\n');
}

/// The lock modes of `groups`, in report order.
fn modes(groups: &[BaselineComparison]) -> Vec<LockMode> {
    LockMode::ALL
        .into_iter()
        .filter(|m| groups.iter().any(|g| g.arm.lock == *m))
        .collect()
}

/// With more than the seed's two lock modes, the outcomes per mode (each
/// mode's arms against their baseline arms), before the table of groups.
fn modes_table(md: &mut String, groups: &[BaselineComparison]) {
    let modes = modes(groups);
    if modes.len() <= 2 {
        return;
    }
    md.push_str("| lock | groups | regressed | improved | unchanged | could not be judged |\n");
    md.push_str("|:--|--:|--:|--:|--:|--:|\n");
    for mode in modes {
        let mine = groups.iter().filter(move |g| g.arm.lock == mode);
        let t = tally_of(mine.clone());
        let _ = writeln!(
            md,
            "| {mode} | {} | {} | {} | {} | {} |",
            mine.count(),
            t.regressions,
            t.improved,
            t.unchanged,
            t.cannot_judge
        );
    }
    md.push('\n');
}

/// The table of groups with its legend, or nothing without groups.
fn groups_table(md: &mut String, groups: &[BaselineComparison]) {
    if groups.is_empty() {
        return;
    }
    md.push_str("| group | metric | baseline | new | change | p (adj.) | verdict |\n");
    md.push_str("|:--|:--|--:|--:|--:|--:|:--|\n");
    for g in groups {
        let arrow = if g.lower_is_better { "↓" } else { "↑" };
        let verdict = match &g.outcome {
            Outcome::Regression { by_bounds: true } => "**REGRESSION** (proven by bounds)".to_string(),
            Outcome::Regression { .. } => "**REGRESSION**".to_string(),
            other => other.label().to_string(),
        };
        let _ = writeln!(
            md,
            "| {} | {} {arrow} | {} | {} | {} | {} | {verdict} |",
            g.arm,
            metric_name(g.metric),
            side_md(&g.baseline, g.lower_is_better),
            side_md(&g.new, g.lower_is_better),
            change(g),
            p_text(g).unwrap_or_else(|| "–".into()),
        );
    }
    md.push_str(
        "\n↓ lower is better, ↑ higher is better. Values: mean ± sd (n); `≥`/`≤` marks a side \
         with runs stopped at their cap, whose values are bounds. p: the family-adjusted \
         one-sided p-value in the direction of the change.\n\n",
    );
}

/// The folded section: each family's thresholds and both runs' provenance.
fn thresholds_and_provenance(md: &mut String, report: &GateReport) {
    md.push_str("<details><summary>Thresholds and provenance</summary>\n\n");
    for m in &report.metrics {
        let _ = writeln!(
            md,
            "- {} (family of {} groups)",
            m.thresholds.describe(m.metric),
            m.groups
        );
    }
    for (name, info) in [("baseline", &report.baseline), ("new run", &report.results)] {
        let p = &info.provenance;
        let _ = writeln!(
            md,
            "- {name}: revision `{}`, {} ({} cores), {}, {}, image `{}`, matrix `{}`",
            short_revision(&p.git_revision),
            p.host_cpu,
            p.host_cores,
            p.qemu,
            p.accel,
            short_hash(&p.image_id),
            short_hash(&p.matrix_hash)
        );
    }
    md.push_str("\n</details>\n");
}

/// Markdown for a gate that could not run at all.
pub fn error_markdown(error: &str) -> String {
    format!("## pvbench gate: ⚠️ cannot judge\n\n{error}\n")
}

/// Writes `text` to `path` (if given) and appends it to the job summary (if
/// the environment names one).
pub fn write_markdown(path: Option<&Path>, text: &str) -> Result<(), GateError> {
    if let Some(path) = path {
        write_file(path, text.as_bytes())?;
    }
    if let Some(summary) = std::env::var_os(STEP_SUMMARY_ENV).filter(|s| !s.is_empty()) {
        let summary = Path::new(&summary);
        // Earlier steps' summaries stay: read, append, replace atomically.
        let mut existing = match std::fs::read(summary) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(GateError::Io {
                    path: summary.to_path_buf(),
                    source,
                })
            }
        };
        if !existing.is_empty() && !existing.ends_with(b"\n") {
            existing.push(b'\n');
        }
        existing.extend_from_slice(text.as_bytes());
        write_file(summary, &existing)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (the shared helper), failing with the
/// gate's error.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), GateError> {
    crate::collect::write_atomic(path, bytes).map_err(|source| GateError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn run_label(p: &Provenance) -> String {
    format!("revision `{}`, {}", short_revision(&p.git_revision), p.accel)
}

/// A git revision cut to 12 hex digits, keeping a `-dirty` mark.
fn short_revision(revision: &str) -> String {
    match revision.get(..40) {
        Some(hash) if hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            format!("{}{}", &hash[..12], &revision[40..])
        }
        _ => revision.to_string(),
    }
}

fn centre(side: &Option<SideStats>) -> String {
    side.as_ref().map_or("–".into(), |s| number(s.mean))
}

fn side_md(side: &Option<SideStats>, lower_is_better: bool) -> String {
    let Some(s) = side else {
        return "–".into();
    };
    // A bound is on the bad side: at least this slow, at most this fast.
    let bound = match (s.censored_reps.is_empty(), lower_is_better) {
        (true, _) => "",
        (false, true) => "≥ ",
        (false, false) => "≤ ",
    };
    format!("{bound}{} ± {} ({})", number(s.mean), number(s.stddev), s.n)
}

fn change(g: &BaselineComparison) -> String {
    match &g.test {
        Some(t) if t.change.is_finite() => format!("{:+.1}%", t.change * 100.0),
        _ => "–".into(),
    }
}

/// The adjusted p-value in the direction of the observed change.
fn p_text(g: &BaselineComparison) -> Option<String> {
    let test = g.test.as_ref()?;
    let worse = test.worse_by(g.lower_is_better) > 0.0;
    let p = if worse {
        g.p_worse_adjusted
    } else {
        g.p_better_adjusted
    }?;
    Some(if p >= 0.9995 {
        "1".into()
    } else if p < 1e-4 {
        format!("{p:.0e}")
    } else {
        format!("{p:.4}")
    })
}

/// Four significant digits, no exponent for the magnitudes benchmarks give.
fn number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".into();
    }
    let decimals = (3 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{x:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_four_significant_digits() {
        assert_eq!(number(4.0234), "4.023");
        assert_eq!(number(392.14), "392.1");
        assert_eq!(number(12345.6), "12346");
        assert_eq!(number(0.012345), "0.01235");
        assert_eq!(number(0.0), "0");
    }

    #[test]
    fn revisions_are_shortened_but_keep_dirty() {
        let hash = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(short_revision(hash), "0123456789ab");
        assert_eq!(short_revision(&format!("{hash}-dirty")), "0123456789ab-dirty");
        assert_eq!(short_revision("unknown"), "unknown");
    }
}
