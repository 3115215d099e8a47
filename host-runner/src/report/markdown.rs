//! The report as Markdown (GitHub-flavoured tables), for results/ and PRs.

use std::path::{Path, PathBuf};

use super::analysis::Report;
use super::format::md_inline;
use super::tables;

/// The Markdown report. `plots` are linked relative to `dir`, the directory
/// the Markdown file will be in, when they are inside it.
pub fn render(report: &Report, plots: &[PathBuf], dir: Option<&Path>) -> String {
    let mut out = String::from("# pvbench report\n\n");
    out.push_str(&tables::provenance(report).markdown());

    if !report.warnings.is_empty() {
        out.push_str("\n## Warnings\n\n");
        for w in &report.warnings {
            out.push_str(&format!("- {}\n", md_inline(&w.message)));
        }
    }
    if !report.kernbench.is_empty() {
        out.push_str("\n## kernbench-like: elapsed time in seconds, lower is better\n\n");
        if tables::several_modes(report) {
            out.push_str(&tables::kernbench_means(report).markdown());
            out.push_str("\nAgainst BASE:\n\n");
            out.push_str(&tables::kernbench_against_base(report).markdown());
        } else {
            out.push_str(&tables::kernbench(report).markdown());
        }
        notes(
            &mut out,
            &tables::censored_notes(&report.kernbench, report.confidence_percent),
        );
        notes(
            &mut out,
            &tables::resolution_notes(&report.kernbench, report.confidence_percent),
        );
    }
    if !report.pgbench.is_empty() {
        out.push_str("\n## pgbench-like: transactions per second, higher is better\n\n");
        out.push_str(&format!(
            "ministat, {}:\n\n```text\n",
            tables::ministat_sets(report)
        ));
        out.push_str(&tables::pgbench_blocks(report));
        out.push_str("```\n");
        notes(
            &mut out,
            &tables::censored_notes(&report.pgbench, report.confidence_percent),
        );
        notes(
            &mut out,
            &tables::resolution_notes(&report.pgbench, report.confidence_percent),
        );
    }
    if !report.latency.is_empty() {
        out.push_str("\n## Latency percentiles (us)\n\n");
        out.push_str(&tables::latency(report).markdown());
        out.push_str(&format!("\n{}\n", tables::LATENCY_NOTE));
    }
    if !report.pvlock.is_empty() {
        out.push_str("\n## pv-lock statistics (mean per run)\n\n");
        out.push_str(&tables::pvlock(report).markdown());
    }
    if !report.queued.is_empty() {
        out.push_str("\n## Queued-lock events (mean per run)\n\n");
        out.push_str(&tables::queued(report).markdown());
    }
    if !report.tas.is_empty() {
        out.push_str("\n## Test-and-set lock statistics (mean per run)\n\n");
        out.push_str(&tables::tas(report).markdown());
    }
    if !report.kick_wake.is_empty() {
        out.push_str("\n## Kick-to-wake latency (us)\n\n");
        out.push_str(&tables::kick_wake(report).markdown());
        out.push_str(&format!("\n{}\n", tables::KICK_WAKE_NOTE));
    }
    if !report.migration.is_empty() {
        out.push_str("\n## Migration cost per lock mode\n\n");
        out.push_str(&tables::migration(report).markdown());
        out.push_str(&format!("\n{}\n", tables::MIGRATION_NOTE));
    }
    if !report.cpu.is_empty() {
        out.push_str("\n## CPU per vCPU against the fair share\n\n");
        out.push_str(&tables::cpu(report).markdown());
        out.push_str(&format!("\n{}\n", tables::CPU_NOTE));
        if tables::has_run_delay(report) {
            out.push_str(&format!("\n{}\n", tables::RUN_DELAY_NOTE));
        }
    }
    if !report.failed.is_empty() {
        out.push_str("\n## Failed cells\n\n");
        out.push_str(&tables::failures(report).markdown());
        out.push('\n');
        out.push_str(&tables::failed(report).markdown());
    }
    if let Some(target) = &report.target {
        out.push_str(&format!("\n## Target\n\n{}\n", tables::target_line(target)));
    }
    if !report.missing.is_empty() {
        out.push_str("\n## Missing cells (no result)\n\n");
        let ids: Vec<String> = report.missing.iter().map(|id| format!("`{id}`")).collect();
        out.push_str(&format!("{}\n", ids.join(", ")));
    }
    if !plots.is_empty() {
        out.push_str("\n## Plots\n\n");
        for plot in plots {
            let shown = dir
                .and_then(|d| plot.strip_prefix(d).ok())
                .unwrap_or(plot)
                .display()
                .to_string();
            let name = plot
                .file_stem()
                .map_or(shown.clone(), |s| s.to_string_lossy().into_owned());
            out.push_str(&format!("![{name}]({shown})\n\n"));
        }
    }
    out
}

fn notes(out: &mut String, notes: &[String]) {
    if notes.is_empty() {
        return;
    }
    out.push('\n');
    for note in notes {
        out.push_str(&format!("- {}\n", md_inline(note)));
    }
}
