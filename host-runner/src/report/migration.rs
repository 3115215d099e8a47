//! What a migration costs each lock mode: a matrix with `[migration]` runs
//! every group twice, its bench guests left alone and migrated, adjacent in
//! time; each mode's migrated cells are compared with its own unmigrated ones.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::results::{CellResult, CellStatus, GroupKey, LockMode, Metric, MigrationMode, Results};
use crate::stats::{compare, median, CompareOptions, Confidence, MedianRule, PercentInterval, Sample};

/// One lock mode of one group: migrated against left alone.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationRow {
    /// The unmigrated group; its migrated twin is `group.twin(true)`.
    pub group: GroupKey,
    pub lock: LockMode,
    pub metric: Metric,
    /// How its guests were moved (`None` if no migrated cell ran).
    pub kind: Option<MigrationMode>,
    /// Completed cells of each side (failed and censored ones left out).
    pub runs_still: usize,
    pub runs_migrated: usize,
    pub mean_still: Option<f64>,
    pub mean_migrated: Option<f64>,
    /// How much worse the migrated runs did, in percent of the unmigrated mean
    /// (slower builds, fewer transactions); negative: better.
    pub cost_pct: Option<f64>,
    /// Half-width of its confidence interval (Student's t, as the report's
    /// other verdicts), where both sides have two runs or more.
    pub ci_half_pct: Option<f64>,
    /// The interval excludes zero.
    pub proven: bool,
    /// Migrations per migrated cell, on average.
    pub migrations_per_cell: f64,
    /// `cost_pct` over `migrations_per_cell`.
    pub cost_per_migration_pct: Option<f64>,
    /// Median and largest downtime over every migration, milliseconds.
    pub downtime_ms_p50: Option<f64>,
    pub downtime_ms_max: Option<u64>,
    /// Metrics connections resumed after a migration broke one, over all cells.
    pub resumes: u32,
    /// Migrated cells that failed (a migration that failed fails its cell).
    pub failed_migrated: usize,
}

/// The rows of every group that has a migrated twin, in group order, modes
/// in `locks`' order.
pub fn rows(results: &Results, locks: &[LockMode], confidence: Confidence) -> Vec<MigrationRow> {
    let migrated: BTreeSet<GroupKey> = results
        .cells
        .iter()
        .map(|c| c.key.group())
        .filter(|g| g.migrated)
        .collect();
    let mut out = Vec::new();
    for twin in migrated {
        let group = twin.twin(false);
        for &lock in locks {
            let cells = |g: GroupKey| -> Vec<&CellResult> {
                results
                    .cells
                    .iter()
                    .filter(|c| c.key.group() == g && c.key.lock == lock)
                    .collect()
            };
            out.push(row(group, lock, &cells(group), &cells(twin), confidence));
        }
    }
    out
}

fn row(
    group: GroupKey,
    lock: LockMode,
    still: &[&CellResult],
    moved: &[&CellResult],
    confidence: Confidence,
) -> MigrationRow {
    let metric = group.workload.metric();
    // Each side's completed runs (failed and censored ones left out).
    let sample = |cells: &[&CellResult]| -> Option<Sample> {
        let values: Vec<f64> = cells
            .iter()
            .filter(|c| matches!(c.status, CellStatus::Completed))
            .filter_map(|c| c.value().map(|(v, _)| v))
            .collect();
        Sample::new(values).ok()
    };
    let (a, b) = (sample(still), sample(moved));
    let (mean_still, mean_migrated) = (a.as_ref().map(Sample::mean), b.as_ref().map(Sample::mean));
    // Worse is larger for times, smaller for throughput.
    let sign = if metric.lower_is_better() { 1.0 } else { -1.0 };
    let cost_pct = match (mean_still, mean_migrated) {
        (Some(s), Some(m)) if s != 0.0 => Some(sign * (m - s) / s * 100.0),
        _ => None,
    };
    let (mut ci_half_pct, mut proven) = (None, false);
    if let (Some(sa), Some(sb)) = (&a, &b) {
        if sa.n() >= 2 && sb.n() >= 2 {
            let c = compare(
                sb,
                sa,
                &CompareOptions {
                    confidence,
                    ..CompareOptions::default()
                },
            );
            if let PercentInterval::HalfWidth(h) = c.percent_interval {
                ci_half_pct = Some(h.abs());
            }
            proven = c.proven;
        }
    }
    let records: Vec<_> = moved.iter().filter_map(|c| c.migrations.as_ref()).collect();
    let downtimes: Vec<f64> = records
        .iter()
        .flat_map(|m| m.downtime_ms.iter().map(|&d| d as f64))
        .collect();
    let migrations_per_cell = if records.is_empty() {
        0.0
    } else {
        records.iter().map(|m| f64::from(m.count)).sum::<f64>() / records.len() as f64
    };
    MigrationRow {
        group,
        lock,
        metric,
        kind: records.first().map(|m| m.kind),
        runs_still: a.as_ref().map_or(0, Sample::n),
        runs_migrated: b.as_ref().map_or(0, Sample::n),
        mean_still,
        mean_migrated,
        cost_pct,
        ci_half_pct,
        proven,
        migrations_per_cell,
        cost_per_migration_pct: cost_pct
            .filter(|_| migrations_per_cell > 0.0)
            .map(|c| c / migrations_per_cell),
        downtime_ms_p50: median(&downtimes, MedianRule::MeanOfMiddle),
        downtime_ms_max: records.iter().flat_map(|m| m.downtime_ms.iter().copied()).max(),
        resumes: records.iter().map(|m| m.resumes).sum(),
        failed_migrated: moved
            .iter()
            .filter(|c| matches!(c.status, CellStatus::Failed { .. }))
            .count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{CellKey, CellMigrations, Overcommit, Workload};

    fn cell(migrated: bool, lock: LockMode, rep: u32, elapsed_s: f64) -> CellResult {
        let key = CellKey {
            workload: Workload::Kernbench,
            overcommit: Overcommit::X2,
            clients: None,
            migrated,
            lock,
            rep,
        };
        let mut c = CellResult::new(key, CellStatus::Completed);
        c.elapsed_s = elapsed_s;
        if migrated {
            c.migrations = Some(CellMigrations {
                kind: MigrationMode::Paused,
                count: 4,
                downtime_ms: vec![60, 80, 100, 400],
                resumes: 3,
            });
        }
        c
    }

    #[test]
    fn each_mode_is_compared_with_itself_left_alone() {
        let cells = [
            cell(false, LockMode::Base, 1, 10.0),
            cell(false, LockMode::Base, 2, 12.0),
            cell(true, LockMode::Base, 1, 11.0),
            cell(true, LockMode::Base, 2, 13.0),
            cell(false, LockMode::Pv, 1, 5.0),
            cell(false, LockMode::Pv, 2, 5.0),
            cell(true, LockMode::Pv, 1, 6.0),
            cell(true, LockMode::Pv, 2, 6.0),
        ];
        let still: Vec<&CellResult> = cells[..2].iter().collect();
        let moved: Vec<&CellResult> = cells[2..4].iter().collect();
        let g = cells[0].key.group();
        let r = row(g, LockMode::Base, &still, &moved, Confidence::P95);
        assert_eq!((r.runs_still, r.runs_migrated), (2, 2));
        // 12 s against 11 s: 9.09% slower, 4 migrations a cell.
        assert!((r.cost_pct.unwrap() - 100.0 / 11.0).abs() < 1e-9, "{r:?}");
        assert!((r.cost_per_migration_pct.unwrap() - 100.0 / 44.0).abs() < 1e-9);
        assert_eq!(r.downtime_ms_p50, Some(90.0));
        assert_eq!(r.downtime_ms_max, Some(400));
        assert_eq!(r.resumes, 6);
        assert_eq!(r.kind, Some(MigrationMode::Paused));
        assert!(r.ci_half_pct.is_some() && !r.proven, "{r:?}");
        // pv: 5 s against 6 s every time, no spread: proven 20% slower.
        let still: Vec<&CellResult> = cells[4..6].iter().collect();
        let moved: Vec<&CellResult> = cells[6..].iter().collect();
        let r = row(g, LockMode::Pv, &still, &moved, Confidence::P95);
        assert!((r.cost_pct.unwrap() - 20.0).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn throughput_lost_is_a_positive_cost() {
        let key = |migrated, rep| CellKey {
            workload: Workload::Pgbench,
            overcommit: Overcommit::X1,
            clients: Some(4),
            migrated,
            lock: LockMode::Pv,
            rep,
        };
        let with_tps = |migrated, rep, tps| {
            let mut c = CellResult::new(key(migrated, rep), CellStatus::Completed);
            c.tps = Some(tps);
            c
        };
        let still = [with_tps(false, 1, 1000.0)];
        let moved = [with_tps(true, 1, 900.0)];
        let r = row(
            still[0].key.group(),
            LockMode::Pv,
            &still.iter().collect::<Vec<_>>(),
            &moved.iter().collect::<Vec<_>>(),
            Confidence::P95,
        );
        assert!((r.cost_pct.unwrap() - 10.0).abs() < 1e-9, "{r:?}");
        // One run a side: no interval, and no migrations were recorded.
        assert_eq!(r.ci_half_pct, None);
        assert_eq!(r.cost_per_migration_pct, None);
    }
}
