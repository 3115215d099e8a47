//! The report for a terminal: plain text, sections numbered like the seed's
//! cover letter.

use super::analysis::Report;
use super::tables;

/// Notes are wrapped to this many columns.
const WRAP: usize = 100;

pub fn render(report: &Report) -> String {
    let mut out = String::from("pvbench report\n\n");
    out.push_str(&tables::provenance(report).text("  "));

    if !report.warnings.is_empty() {
        out.push_str("\nWarnings\n");
        for w in &report.warnings {
            out.push_str(&wrap(&w.message, "  ! ", "    "));
        }
    }

    let mut section = 0;
    let mut heading = |out: &mut String, title: &str| {
        section += 1;
        out.push_str(&format!("\n{section}) {title}\n"));
    };
    if !report.kernbench.is_empty() {
        heading(
            &mut out,
            "kernbench-like: elapsed time in seconds, lower is better",
        );
        if tables::several_modes(report) {
            out.push_str(&tables::kernbench_means(report).text(""));
            out.push_str("\nagainst BASE:\n");
            out.push_str(&tables::kernbench_against_base(report).text(""));
        } else {
            out.push_str(&tables::kernbench(report).text(""));
        }
        for note in tables::censored_notes(&report.kernbench, report.confidence_percent) {
            out.push_str(&wrap(&note, "  * ", "    "));
        }
        for note in tables::resolution_notes(&report.kernbench, report.confidence_percent) {
            out.push_str(&wrap(&note, "  - ", "    "));
        }
    }
    if !report.pgbench.is_empty() {
        heading(
            &mut out,
            "pgbench-like: transactions per second, higher is better (ministat)",
        );
        out.push_str(&tables::pgbench_blocks(report));
        for note in tables::censored_notes(&report.pgbench, report.confidence_percent) {
            out.push_str(&wrap(&note, "  * ", "    "));
        }
        for note in tables::resolution_notes(&report.pgbench, report.confidence_percent) {
            out.push_str(&wrap(&note, "  - ", "    "));
        }
    }
    if !report.latency.is_empty() {
        heading(&mut out, "Latency percentiles (us)");
        out.push_str(&tables::latency(report).text("  "));
        out.push_str(&wrap(tables::LATENCY_NOTE, "  ", "  "));
    }
    if !report.pvlock.is_empty() {
        heading(&mut out, "pv-lock statistics (mean per run)");
        out.push_str(&tables::pvlock(report).text("  "));
    }
    if !report.queued.is_empty() {
        heading(&mut out, "Queued-lock events (mean per run)");
        out.push_str(&tables::queued(report).text("  "));
    }
    if !report.tas.is_empty() {
        heading(&mut out, "Test-and-set lock statistics (mean per run)");
        out.push_str(&tables::tas(report).text("  "));
    }
    if !report.kick_wake.is_empty() {
        heading(&mut out, "Kick-to-wake latency (us)");
        out.push_str(&tables::kick_wake(report).text("  "));
        out.push_str(&wrap(tables::KICK_WAKE_NOTE, "  ", "  "));
    }
    if !report.migration.is_empty() {
        heading(&mut out, "Migration cost per lock mode");
        out.push_str(&tables::migration(report).text("  "));
        out.push_str(&wrap(tables::MIGRATION_NOTE, "  ", "  "));
    }
    if !report.cpu.is_empty() {
        heading(&mut out, "CPU per vCPU against the fair share");
        out.push_str(&tables::cpu(report).text("  "));
        out.push_str(&wrap(tables::CPU_NOTE, "  ", "  "));
        if tables::has_run_delay(report) {
            out.push_str(&wrap(tables::RUN_DELAY_NOTE, "  ", "  "));
        }
    }
    if !report.failed.is_empty() {
        out.push_str("\nFailed cells\n");
        out.push_str(&tables::failures(report).text("  "));
        out.push('\n');
        out.push_str(&tables::failed(report).text("  "));
    }
    if let Some(target) = &report.target {
        out.push_str("\nTarget\n");
        out.push_str(&wrap(&tables::target_line(target), "  ", "  "));
    }
    if !report.missing.is_empty() {
        out.push_str("\nMissing cells (no result)\n");
        out.push_str(&wrap(&report.missing.join(" "), "  ", "  "));
    }
    out
}

/// `text` wrapped at word boundaries to `WRAP` columns, the first line after
/// `first`, the rest after `rest`.
pub fn wrap(text: &str, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(first);
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WRAP {
            out.push_str(&line);
            out.push('\n');
            line = String::from(rest);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_at_words() {
        let text = "word ".repeat(30);
        let wrapped = wrap(&text, "  ! ", "    ");
        let lines: Vec<&str> = wrapped.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("  ! word") && lines[0].len() <= 100);
        assert!(lines[1].starts_with("    word"));
        assert_eq!(wrapped.matches("word").count(), 30);
    }
}
