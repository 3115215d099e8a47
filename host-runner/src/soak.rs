//! `pvbench soak`: many overcommitted cells, run for their failures, not their
//! figures. Each vCPU count runs the soak matrix as an ordinary results
//! directory (`<out>/vcpus-<V>/`, resumable like any run); the summary counts,
//! per condition (vCPUs x workload x overcommit x lock), how many cells
//! completed, were censored (still working at their cap), stalled, or died in
//! a kernel or application panic. Its exit status says whether any failed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::build::layout::Layout;
use crate::results::MatrixSpec;
use crate::results::{self, CellStatus, FailureKind, LockMode, Overcommit, Results, ResultsError, Workload};
use crate::runner::{self, Host, RunError, RunOptions};

/// The built-in soak matrix (its `vcpus` is set per run).
pub const SOAK: &str = include_str!("../matrices/soak.toml");
/// The summary files written into the soak directory.
pub const SUMMARY_JSON: &str = "soak.json";
pub const SUMMARY_MARKDOWN: &str = "soak.md";

/// Options of one `pvbench soak`.
pub struct SoakOptions {
    pub spec: MatrixSpec,
    /// vCPU counts, one matrix run each.
    pub vcpus: Vec<u32>,
    pub out: PathBuf,
    pub resume: bool,
    pub quiet: bool,
    /// Write a stalled bench guest's memory into its cell.
    pub dump_on_stall: bool,
}

/// One soak condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Condition {
    pub vcpus: u32,
    pub workload: Workload,
    pub overcommit: Overcommit,
    pub clients: Option<u32>,
    /// The bench guests were migrated while they worked.
    pub migrated: bool,
    pub lock: LockMode,
}

/// What happened to the cells of one condition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub planned: usize,
    pub completed: usize,
    pub censored: usize,
    pub stalled: usize,
    pub kernel_panic: usize,
    pub app_panic: usize,
    pub other_failed: usize,
    /// Planned but without a result (an interrupted soak).
    pub missing: usize,
    /// Migrations the bench guests of cells that did not fail went through.
    pub migrations: u64,
}

impl Counts {
    pub fn failed(&self) -> usize {
        self.stalled + self.kernel_panic + self.app_panic + self.other_failed
    }

    fn add(&mut self, other: &Counts) {
        self.planned += other.planned;
        self.completed += other.completed;
        self.censored += other.censored;
        self.stalled += other.stalled;
        self.kernel_panic += other.kernel_panic;
        self.app_panic += other.app_panic;
        self.other_failed += other.other_failed;
        self.missing += other.missing;
        self.migrations += other.migrations;
    }
}

/// A failed cell, for the list under the table.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub vcpus: u32,
    pub cell: String,
    pub kind: FailureKind,
    pub reason: String,
}

/// The soak's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub rows: Vec<(Condition, Counts)>,
    pub total: Counts,
    pub failures: Vec<Failure>,
    /// Where each vCPU count's results are, with its provenance.
    pub runs: Vec<RunInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub vcpus: u32,
    pub dir: PathBuf,
    pub provenance: results::Provenance,
}

#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error("soak: --vcpus needs at least one vCPU count")]
    NoVcpus,
    /// A vCPU count's run was interrupted: resuming is the soak's business,
    /// not that run directory's (`pvbench run --resume` there would not
    /// write the soak's summary).
    #[error("interrupted: {done} of {total} cells are in {}; continue with pvbench soak --resume --out {} (and the same --vcpus, --reps, --migrate-every)",
        dir.display(), out.display())]
    Interrupted {
        done: usize,
        total: usize,
        dir: PathBuf,
        out: PathBuf,
    },
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Results(#[from] ResultsError),
}

/// The built-in soak matrix.
pub fn spec() -> MatrixSpec {
    MatrixSpec::parse(SOAK, "built-in soak matrix").expect("the built-in soak matrix is valid")
}

/// The results directory of one vCPU count.
pub fn run_dir(out: &Path, vcpus: u32) -> PathBuf {
    out.join(format!("vcpus-{vcpus}"))
}

/// Runs (or resumes) the soak, then writes and returns its summary.
pub fn run(layout: &Layout, host: &Host, options: SoakOptions) -> Result<Summary, SoakError> {
    if options.vcpus.is_empty() {
        return Err(SoakError::NoVcpus);
    }
    let mut all = Vec::new();
    for &vcpus in &options.vcpus {
        let mut spec = options.spec.clone();
        spec.vcpus = Some(vcpus);
        let dir = run_dir(&options.out, vcpus);
        if !options.quiet {
            eprintln!("pvbench: soak with {vcpus}-vCPU guests -> {}", dir.display());
        }
        let results = runner::run(
            layout,
            host,
            RunOptions {
                spec,
                out: dir,
                resume: options.resume,
                quiet: options.quiet,
                target: None,
                shard: None,
                dump_on_stall: options.dump_on_stall,
            },
        )
        .map_err(|error| match error {
            RunError::Interrupted { done, total, dir, .. } => SoakError::Interrupted {
                done,
                total,
                dir,
                out: options.out.clone(),
            },
            other => SoakError::Run(other),
        })?;
        // Each run directory gets its ordinary report too.
        let report = crate::report::render(&results, &crate::report::RenderOptions::default());
        let _ = report.write_markdown(&results.dir.join(crate::report::MARKDOWN_FILE), &[]);
        all.push((vcpus, results));
    }
    let summary = summarize(&all);
    results::write_json_atomic(&options.out.join(SUMMARY_JSON), &summary)?;
    results::write_atomic(&options.out.join(SUMMARY_MARKDOWN), markdown(&summary).as_bytes())?;
    Ok(summary)
}

/// Counts every planned cell of every run by condition. Pure.
pub fn summarize(runs: &[(u32, Results)]) -> Summary {
    let mut rows: BTreeMap<Condition, Counts> = BTreeMap::new();
    let mut failures = Vec::new();
    for (vcpus, results) in runs {
        for key in &results.manifest.cells {
            let condition = Condition {
                vcpus: *vcpus,
                workload: key.workload,
                overcommit: key.overcommit,
                clients: key.clients,
                migrated: key.migrated,
                lock: key.lock,
            };
            let counts = rows.entry(condition).or_default();
            counts.planned += 1;
            let Some(cell) = results.cells.iter().find(|c| c.key == *key) else {
                counts.missing += 1;
                continue;
            };
            if !matches!(cell.status, CellStatus::Failed { .. }) {
                counts.migrations += cell.migrations.as_ref().map_or(0, |m| u64::from(m.count));
            }
            match (&cell.status, cell.status.failure()) {
                (CellStatus::Completed, _) => counts.completed += 1,
                (CellStatus::Censored, _) => counts.censored += 1,
                (CellStatus::Failed { reason, .. }, kind) => {
                    let kind = kind.unwrap_or(FailureKind::Other);
                    *match kind {
                        FailureKind::Stall => &mut counts.stalled,
                        FailureKind::KernelPanic => &mut counts.kernel_panic,
                        FailureKind::AppPanic => &mut counts.app_panic,
                        FailureKind::Other => &mut counts.other_failed,
                    } += 1;
                    failures.push(Failure {
                        vcpus: *vcpus,
                        cell: key.id(),
                        kind,
                        reason: reason.clone(),
                    });
                }
            }
        }
    }
    let mut total = Counts::default();
    rows.values().for_each(|c| total.add(c));
    Summary {
        rows: rows.into_iter().collect(),
        total,
        failures,
        runs: runs
            .iter()
            .map(|(vcpus, r)| RunInfo {
                vcpus: *vcpus,
                dir: r.dir.clone(),
                provenance: r.manifest.provenance.clone(),
            })
            .collect(),
    }
}

const HEADER: [&str; 12] = [
    "vCPUs",
    "workload",
    "overcommit",
    "lock",
    "cells",
    "completed",
    "censored",
    "stalled",
    "kernel panic",
    "app panic",
    "other failed",
    "migrations",
];

fn row_cells(condition: Option<&Condition>, c: &Counts) -> Vec<String> {
    let (vcpus, workload, overcommit, lock) = match condition {
        Some(k) => (
            k.vcpus.to_string(),
            match k.clients {
                Some(n) => format!("{} c{n}", k.workload),
                None => k.workload.to_string(),
            },
            k.overcommit.to_string(),
            if k.migrated {
                format!("{} migrated", k.lock)
            } else {
                k.lock.to_string()
            },
        ),
        None => ("all".into(), String::new(), String::new(), String::new()),
    };
    let planned = if c.missing > 0 {
        format!("{} ({} missing)", c.planned, c.missing)
    } else {
        c.planned.to_string()
    };
    vec![
        vcpus,
        workload,
        overcommit,
        lock,
        planned,
        c.completed.to_string(),
        c.censored.to_string(),
        c.stalled.to_string(),
        c.kernel_panic.to_string(),
        c.app_panic.to_string(),
        c.other_failed.to_string(),
        c.migrations.to_string(),
    ]
}

fn table_rows(summary: &Summary) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = summary.rows.iter().map(|(k, c)| row_cells(Some(k), c)).collect();
    rows.push(row_cells(None, &summary.total));
    rows
}

/// One line with the verdict.
pub fn headline(summary: &Summary) -> String {
    let t = &summary.total;
    let ran = t.planned - t.missing;
    let mut line = format!(
        "pvbench soak: {} of {ran} cells failed ({} stalled, {} kernel panics, {} application panics, {} other); {} completed, {} censored",
        t.failed(),
        t.stalled,
        t.kernel_panic,
        t.app_panic,
        t.other_failed,
        t.completed,
        t.censored
    );
    if t.migrations > 0 {
        let _ = write!(line, "; {} migrations survived", t.migrations);
    }
    if t.missing > 0 {
        let _ = write!(
            line,
            "; {} of {} planned cells not run yet (--resume)",
            t.missing, t.planned
        );
    }
    line
}

/// The summary for a terminal.
pub fn text(summary: &Summary) -> String {
    let rows = table_rows(summary);
    let widths: Vec<usize> = (0..HEADER.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([HEADER[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i < 4 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    let mut out = format!("{}\n\n", headline(summary));
    out.push_str(&line(HEADER.to_vec()));
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    if !summary.failures.is_empty() {
        out.push_str("\nFailed cells\n");
        for f in &summary.failures {
            let _ = writeln!(out, "  vcpus-{}/{}  {}: {}", f.vcpus, f.cell, f.kind, f.reason);
        }
    }
    out
}

/// The summary as Markdown, with where and on what it ran.
pub fn markdown(summary: &Summary) -> String {
    let mut out = String::from("# pvbench soak\n\n");
    let _ = writeln!(out, "{}\n", headline(summary));
    for run in &summary.runs {
        let p = &run.provenance;
        let _ = writeln!(
            out,
            "- {} vCPUs: `{}`; host {} ({} cores), {}, accel {}; guest image {}; git {}",
            run.vcpus,
            run.dir.display(),
            p.host_cpu,
            p.host_cores,
            p.qemu,
            p.accel,
            p.image_id,
            p.git_revision
        );
    }
    out.push('\n');
    let _ = writeln!(out, "| {} |", HEADER.join(" | "));
    let align: Vec<&str> = (0..HEADER.len())
        .map(|i| if i < 4 { ":--" } else { "--:" })
        .collect();
    let _ = writeln!(out, "| {} |", align.join(" | "));
    for row in table_rows(summary) {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    if !summary.failures.is_empty() {
        out.push_str("\n## Failed cells\n\n| cell | kind | reason |\n| :-- | :-- | :-- |\n");
        for f in &summary.failures {
            let _ = writeln!(
                out,
                "| vcpus-{}/{} | {} | {} |",
                f.vcpus,
                f.cell,
                f.kind,
                f.reason.replace('|', "\\|")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{CellKey, CellResult, RunManifest};

    use crate::test_support::provenance;

    fn results(statuses: &[(LockMode, u32, Option<CellStatus>)]) -> Results {
        let key = |lock, rep| CellKey {
            workload: Workload::Kernbench,
            overcommit: Overcommit::X3,
            clients: None,
            migrated: false,
            lock,
            rep,
        };
        Results {
            dir: PathBuf::from("soak/vcpus-2"),
            manifest: RunManifest {
                provenance: provenance(),
                matrix: serde_json::Value::Null,
                cells: statuses.iter().map(|(l, r, _)| key(*l, *r)).collect(),
                target_mde_pct: None,
                sharding: None,
            },
            cells: statuses
                .iter()
                .filter_map(|(l, r, s)| s.clone().map(|s| CellResult::new(key(*l, *r), s)))
                .collect(),
        }
    }

    #[test]
    fn every_planned_cell_is_counted_once_by_how_it_ended() {
        let r = results(&[
            (LockMode::Base, 1, Some(CellStatus::Completed)),
            (LockMode::Base, 2, Some(CellStatus::Censored)),
            (
                LockMode::Base,
                3,
                Some(CellStatus::failed(
                    FailureKind::KernelPanic,
                    "guest kernel panic at x.rs:1",
                )),
            ),
            (
                LockMode::Pv,
                1,
                Some(CellStatus::failed(FailureKind::Stall, "guest stalled: ...")),
            ),
            // Written before kinds existed: the reason says it stalled.
            (
                LockMode::Pv,
                2,
                Some(CellStatus::Failed {
                    reason: "guest stalled: old".into(),
                    kind: None,
                }),
            ),
            (LockMode::Pv, 3, None),
        ]);
        let s = summarize(&[(2, r)]);
        assert_eq!(s.rows.len(), 2);
        let (base_key, base) = s.rows[0];
        assert_eq!((base_key.vcpus, base_key.lock), (2, LockMode::Base));
        assert_eq!(
            (base.planned, base.completed, base.censored, base.kernel_panic),
            (3, 1, 1, 1)
        );
        let pv = s.rows[1].1;
        assert_eq!((pv.planned, pv.stalled, pv.missing, pv.failed()), (3, 2, 1, 2));
        assert_eq!((s.total.planned, s.total.failed(), s.total.missing), (6, 3, 1));
        assert_eq!(s.failures.len(), 3);
        assert_eq!(s.failures[0].cell, "kernbench-3x-base-r3");
        let text = text(&s);
        assert!(
            text.starts_with("pvbench soak: 3 of 5 cells failed (2 stalled, 1 kernel panics"),
            "{text}"
        );
        assert!(text.contains("1 of 6 planned cells not run yet"), "{text}");
        assert!(text.contains("vcpus-2/kernbench-3x-base-r3  kernel panic: guest kernel panic at x.rs:1"));
        let md = markdown(&s);
        assert!(
            md.contains("| 2 | kernbench | 3x | pv | 3 (1 missing) | 0 | 0 | 2 | 0 | 0 | 0 | 0 |"),
            "{md}"
        );
    }

    #[test]
    fn migrated_cells_are_their_own_condition_and_count_the_migrations_survived() {
        use crate::results::{CellMigrations, MigrationMode};
        let mut r = results(&[
            (LockMode::Pv, 1, Some(CellStatus::Completed)),
            (LockMode::Pv, 2, Some(CellStatus::Completed)),
            (
                LockMode::Pv,
                3,
                Some(CellStatus::failed(FailureKind::Other, "migration failed")),
            ),
        ]);
        for (i, c) in r.cells.iter_mut().enumerate().skip(1) {
            c.key.migrated = true;
            r.manifest.cells[i].migrated = true;
            c.migrations = Some(CellMigrations {
                kind: MigrationMode::Paused,
                count: 5,
                downtime_ms: vec![80; 5],
                resumes: 4,
            });
        }
        let s = summarize(&[(4, r)]);
        assert_eq!(s.rows.len(), 2);
        assert!(!s.rows[0].0.migrated && s.rows[1].0.migrated);
        // The failed cell's migrations were not survived.
        assert_eq!((s.rows[0].1.migrations, s.rows[1].1.migrations), (0, 5));
        assert_eq!(s.total.migrations, 5);
        let text = text(&s);
        assert!(text.contains("; 5 migrations survived"), "{text}");
        assert!(text.contains("pv migrated"), "{text}");
    }

    #[test]
    fn the_built_in_matrix_is_overcommitted_only() {
        let spec = spec();
        assert!(spec.plan().iter().all(|k| k.overcommit != Overcommit::X1));
        assert!(spec.plan().len() >= 16);
    }

    #[test]
    fn the_built_in_matrix_soaks_every_lock_mode_at_16_clients() {
        let plan = spec().plan();
        for lock in LockMode::ALL {
            assert!(
                plan.iter().any(|k| k.lock == lock && k.clients == Some(16)),
                "{lock:?}"
            );
        }
    }

    #[test]
    fn an_interrupted_soak_says_how_to_resume_the_soak() {
        let error = SoakError::Interrupted {
            done: 3,
            total: 8,
            dir: PathBuf::from("s/vcpus-2"),
            out: PathBuf::from("s"),
        };
        let text = error.to_string();
        assert!(text.contains("3 of 8 cells are in s/vcpus-2"), "{text}");
        assert!(text.contains("pvbench soak --resume --out s "), "{text}");
    }
}
