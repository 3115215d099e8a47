//! Sharding a matrix across hosts (`pvbench run --shard K/N`) and the record
//! of it in `run.json`.
//!
//! The unit of partition is the **comparison group** (workload x overcommit x
//! clients): every lock mode and every repetition of a row run on one shard,
//! so every comparison the report and the gate make is between cells of one
//! host. Base on host A against pv on host B would measure the hosts.
//!
//! Groups are balanced by their expected cost with greedy
//! longest-processing-time: groups by cost, largest first (ties in plan
//! order), each to the shard with the least cost so far (ties to the lowest
//! shard). Pure and deterministic: every host computes the same partition
//! from the same matrix, with no coordinator.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{CellKey, GroupKey, MatrixSpec, Workload};

/// Shard K of N (both from 1): `--shard 2/4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, 1 to `count`.
    pub index: u32,
    /// How many shards the matrix is split into.
    pub count: u32,
}

/// Why a `--shard` or a partition is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShardError {
    /// Not `K/N` with two whole numbers.
    #[error("expected K/N, e.g. 2/4 (shard 2 of 4)")]
    Syntax(String),
    /// `N` is 0.
    #[error("the number of shards N in K/N must be at least 1")]
    NoShards(String),
    /// `K` is 0 or above `N`.
    #[error("the shard K in K/N must be 1 to {count} (shards count from 1)")]
    OutOfRange {
        /// As given.
        text: String,
        /// N.
        count: u32,
    },
    /// More shards than comparison groups: some shard would run nothing.
    #[error(
        "{count} shards but the matrix has only {groups} comparison groups (a group never \
         splits across shards): use at most {groups} shards"
    )]
    TooManyShards {
        /// N.
        count: u32,
        /// Comparison groups in the matrix.
        groups: usize,
    },
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Self, ShardError> {
        let syntax = || ShardError::Syntax(text.to_string());
        let (k, n) = text.split_once('/').ok_or_else(syntax)?;
        let number = |s: &str| {
            // `u32::from_str` takes a leading `+`; a shard is plain digits.
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax());
            }
            s.parse::<u32>().map_err(|_| syntax())
        };
        let (index, count) = (number(k)?, number(n)?);
        if count == 0 {
            return Err(ShardError::NoShards(text.to_string()));
        }
        if index == 0 || index > count {
            return Err(ShardError::OutOfRange {
                text: text.to_string(),
                count,
            });
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a cell is expected to cost in wall seconds, for balancing only.
///
/// Per cell: a fixed overhead (the bench guest's boot, its metrics
/// connection, teardown and collection) plus a start per hog guest, plus the
/// work: pgbench-like runs for `duration_s` per repetition of the boot
/// (warm-up included); kernbench-like has no fixed duration, so its cap per
/// repetition stands in as the bound (a collapsing base run takes it all).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostModel {
    /// Seconds every cell costs besides its work.
    pub cell_overhead_s: f64,
    /// Seconds each hog guest adds (booted to hogging before the bench guest).
    pub hog_start_s: f64,
}

impl CostModel {
    /// Measured under TCG on 2 cores with 2-vCPU guests (a pgbench-like
    /// matrix of 1 s runs at 1x/2x/3x, 4 cells each; wall time of the cell
    /// minus its measured work, medians): 0.74 s at 1x, 1.36 s at 2x, 2.20 s
    /// at 3x (bench boot 0.4-0.8 s, metrics connect 0.1-0.3 s, each hog
    /// guest ~0.35 s to hogging plus its share of teardown). Under KVM
    /// everything but the work is faster still; the costs only balance
    /// shards, and the work dominates them.
    pub const MEASURED: CostModel = CostModel {
        cell_overhead_s: 0.75,
        hog_start_s: 0.7,
    };

    /// Expected seconds of one cell of `key` under `spec`.
    pub fn cell_s(&self, spec: &MatrixSpec, key: &CellKey) -> f64 {
        let reps = f64::from(spec.boot_reps());
        let work_s = match key.workload {
            Workload::Kernbench => spec.kernbench.as_ref().map_or(0.0, |k| k.cap_s) * reps,
            Workload::Pgbench => spec.pgbench.as_ref().map_or(0.0, |p| p.duration_s) * reps,
        };
        self.cell_overhead_s + self.hog_start_s * key.overcommit.hog_guests() as f64 + work_s
    }
}

/// One comparison group as the partition sees it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroupCost {
    /// The group.
    #[serde(flatten)]
    pub group: GroupKey,
    /// Its cells (every lock mode, every repetition).
    pub cells: usize,
    /// Their expected cost in seconds.
    pub cost_s: f64,
}

/// The groups one shard runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardPlan {
    /// Its groups, in plan order.
    pub groups: Vec<GroupCost>,
    /// Their expected cost in seconds.
    pub cost_s: f64,
}

impl ShardPlan {
    /// Its cells.
    pub fn cells(&self) -> usize {
        self.groups.iter().map(|g| g.cells).sum()
    }
}

/// A matrix split into shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    /// The cost model it balanced with.
    pub cost_model: CostModel,
    /// Shard 1 first.
    pub shards: Vec<ShardPlan>,
}

/// Splits `spec`'s planned cells into `count` shards by comparison group,
/// balanced by [`CostModel::MEASURED`].
pub fn partition(spec: &MatrixSpec, count: u32) -> Result<Partition, ShardError> {
    partition_with(spec, count, CostModel::MEASURED)
}

/// [`partition`] with another cost model.
pub fn partition_with(spec: &MatrixSpec, count: u32, model: CostModel) -> Result<Partition, ShardError> {
    // Groups in plan order, with their cells and cost.
    let mut groups: Vec<GroupCost> = Vec::new();
    for key in spec.plan() {
        let cost_s = model.cell_s(spec, &key);
        match groups.iter_mut().find(|g| g.group == key.group()) {
            Some(g) => {
                g.cells += 1;
                g.cost_s += cost_s;
            }
            None => groups.push(GroupCost {
                group: key.group(),
                cells: 1,
                cost_s,
            }),
        }
    }
    if count == 0 || count as usize > groups.len() {
        return Err(ShardError::TooManyShards {
            count,
            groups: groups.len(),
        });
    }
    // Largest first; the sort is stable, so equal costs keep plan order.
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by(|&a, &b| groups[b].cost_s.total_cmp(&groups[a].cost_s));
    let mut load = vec![0.0f64; count as usize];
    let mut owner = vec![0usize; groups.len()];
    for g in order {
        // The least loaded shard; `min_by` keeps the first of equals.
        let (shard, _) = load
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .expect("at least one shard");
        load[shard] += groups[g].cost_s;
        owner[g] = shard;
    }
    let shards = (0..count as usize)
        .map(|s| {
            let mine: Vec<GroupCost> = groups
                .iter()
                .zip(&owner)
                .filter(|(_, &o)| o == s)
                .map(|(g, _)| *g)
                .collect();
            ShardPlan {
                cost_s: mine.iter().map(|g| g.cost_s).sum(),
                groups: mine,
            }
        })
        .collect();
    Ok(Partition {
        cost_model: model,
        shards,
    })
}

impl Partition {
    /// Shard `shard`'s plan.
    pub fn shard(&self, shard: Shard) -> &ShardPlan {
        &self.shards[shard.index as usize - 1]
    }

    /// The cells of `shard`: the matrix's plan, in its order (arms
    /// interleaved, repetitions outermost), restricted to the shard's groups.
    pub fn cells(&self, spec: &MatrixSpec, shard: Shard) -> Vec<CellKey> {
        let mine = self.shard(shard);
        spec.plan()
            .into_iter()
            .filter(|k| mine.groups.iter().any(|g| g.group == k.group()))
            .collect()
    }

    /// The record of `shard` for its `run.json`.
    pub fn record(&self, shard: Shard) -> ShardRecord {
        ShardRecord {
            index: shard.index,
            count: shard.count,
            groups: self.shard(shard).groups.iter().map(|g| g.group).collect(),
            // To the millisecond: an estimate, and a figure that reads back
            // from run.json exactly (sums in another order differ in the last bits).
            expected_cost_s: self
                .shards
                .iter()
                .map(|s| (s.cost_s * 1e3).round() / 1e3)
                .collect(),
            cost_model: self.cost_model,
        }
    }
}

/// How a results directory relates to shards (`run.json`'s `sharding`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Sharding {
    /// One shard of a matrix (`pvbench run --shard K/N`).
    Shard(ShardRecord),
    /// Every shard of a matrix, merged (`pvbench merge`).
    Merged(MergeRecord),
}

/// One shard's plan, as `pvbench run --shard K/N` recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// K.
    pub index: u32,
    /// N.
    pub count: u32,
    /// The comparison groups this shard runs, in plan order.
    pub groups: Vec<GroupKey>,
    /// Expected seconds of every shard, shard 1 first.
    pub expected_cost_s: Vec<f64>,
    /// The model the costs come from.
    pub cost_model: CostModel,
}

impl ShardRecord {
    /// Which shard.
    pub fn shard(&self) -> Shard {
        Shard {
            index: self.index,
            count: self.count,
        }
    }
}

/// What `pvbench merge` combined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeRecord {
    /// N.
    pub count: u32,
    /// Each shard's origin, shard 1 first.
    pub shards: Vec<ShardOrigin>,
    /// The host of every comparison group, in plan order.
    pub groups: Vec<GroupHost>,
}

impl MergeRecord {
    /// Distinct hosts, in shard order.
    pub fn hosts(&self) -> Vec<&str> {
        let mut hosts: Vec<&str> = Vec::new();
        for s in &self.shards {
            if !hosts.contains(&s.hostname.as_str()) {
                hosts.push(&s.hostname);
            }
        }
        hosts
    }
}

/// Where one merged shard came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardOrigin {
    /// K.
    pub index: u32,
    /// The directory it was merged from, as given.
    pub dir: String,
    /// Its host's name (`unknown` for results written before hosts were named).
    pub hostname: String,
    /// Its host's CPU model.
    pub host_cpu: String,
    /// Its host's CPUs available to pvbench.
    pub host_cores: u32,
    /// Its checkout's commit.
    pub git_revision: String,
    /// When it started, in seconds since the Unix epoch.
    pub started_unix: u64,
    /// The TSC rate its guests were told, if they were
    /// ([`Provenance::guest_tsc_mhz`](crate::Provenance::guest_tsc_mhz)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_tsc_mhz: Option<u16>,
}

/// The host a comparison group ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupHost {
    /// The group.
    #[serde(flatten)]
    pub group: GroupKey,
    /// The shard that ran it.
    pub shard: u32,
    /// That shard's host.
    pub hostname: String,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::{spec::FULL, Profile};

    #[test]
    fn shards_parse_and_bad_ones_say_why() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!("1/1".parse::<Shard>().unwrap().to_string(), "1/1");
        for bad in [
            "", "2", "2/", "/4", "a/4", "2/b", "2-4", "+2/4", "2/4/8", " 2/4", "-1/4",
        ] {
            assert_eq!(
                bad.parse::<Shard>(),
                Err(ShardError::Syntax(bad.to_string())),
                "{bad:?}"
            );
        }
        assert_eq!("1/0".parse::<Shard>(), Err(ShardError::NoShards("1/0".into())));
        for bad in ["0/4", "5/4"] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert_eq!(
                err,
                ShardError::OutOfRange {
                    text: bad.into(),
                    count: 4
                }
            );
            assert!(err.to_string().contains("1 to 4"), "{err}");
        }
    }

    fn full() -> MatrixSpec {
        MatrixSpec::profile(Profile::Full)
    }

    #[test]
    fn every_cell_is_in_exactly_one_shard_and_groups_never_split() {
        let spec = full();
        let plan = spec.plan();
        let groups: BTreeSet<GroupKey> = plan.iter().map(CellKey::group).collect();
        for n in 1..=groups.len() as u32 {
            let p = partition(&spec, n).unwrap();
            let mut seen: Vec<CellKey> = Vec::new();
            let mut owner = std::collections::BTreeMap::new();
            for k in 1..=n {
                let shard = Shard { index: k, count: n };
                let cells = p.cells(&spec, shard);
                assert_eq!(cells.len(), p.shard(shard).cells(), "{shard}");
                for c in &cells {
                    // A group's cells are all on the shard that first had one.
                    assert_eq!(*owner.entry(c.group()).or_insert(k), k, "{shard}: {}", c.id());
                }
                seen.extend(cells);
            }
            // Exactly the plan's cells, each once.
            let mut sorted = seen.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), seen.len(), "N={n}: a cell on two shards");
            let mut all = plan.clone();
            all.sort();
            assert_eq!(sorted, all, "N={n}");
            assert!(
                p.shards.iter().all(|s| !s.groups.is_empty()),
                "N={n}: an empty shard"
            );
        }
    }

    #[test]
    fn a_shard_keeps_the_plans_order_and_interleaving() {
        let spec = full();
        let p = partition(&spec, 4).unwrap();
        let plan = spec.plan();
        for k in 1..=4 {
            let cells = p.cells(&spec, Shard { index: k, count: 4 });
            let positions: Vec<usize> = cells
                .iter()
                .map(|c| plan.iter().position(|x| x == c).unwrap())
                .collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "shard {k}");
        }
    }

    #[test]
    fn the_partition_is_deterministic() {
        let spec = full();
        let a = partition(&spec, 3).unwrap();
        let b = partition(&MatrixSpec::parse(FULL, "again").unwrap(), 3).unwrap();
        assert_eq!(a, b);
        // And pinned: the full profile's kernbench rows (150 s caps) dominate,
        // largest first (3x has the most hog guests), ties in plan order.
        let firsts: Vec<String> = a.shards.iter().map(|s| s.groups[0].group.to_string()).collect();
        assert_eq!(firsts, ["kernbench 3x", "kernbench 2x", "kernbench 1x"]);
        assert_eq!(a.shards[0].groups.len(), 3, "{:?}", a.shards[0]);
    }

    #[test]
    fn shards_are_balanced_within_one_group() {
        // Greedy LPT: the last group put on the most loaded shard went to the
        // least loaded one, so max - min <= the largest group's cost.
        let spec = full();
        let p = partition(&spec, 2).unwrap();
        let largest = p
            .shards
            .iter()
            .flat_map(|s| &s.groups)
            .map(|g| g.cost_s)
            .fold(0.0, f64::max);
        for n in 1..=9 {
            let p = partition(&spec, n).unwrap();
            let costs: Vec<f64> = p.shards.iter().map(|s| s.cost_s).collect();
            let (max, min) = (
                costs.iter().copied().fold(f64::MIN, f64::max),
                costs.iter().copied().fold(f64::MAX, f64::min),
            );
            assert!(max - min <= largest + 1e-9, "N={n}: {costs:?}");
        }
        // Equal groups split evenly: a pgbench-only matrix of 6 equal rows.
        let mut even = spec.clone();
        even.kernbench = None;
        let p = partition(&even, 3).unwrap();
        assert!(p.shards.iter().all(|s| s.groups.len() == 2), "{p:?}");
        let costs: Vec<f64> = p.shards.iter().map(|s| s.cost_s).collect();
        assert!(costs.iter().all(|c| (c - costs[0]).abs() < 1e-9), "{costs:?}");
    }

    #[test]
    fn costs_follow_the_cost_model() {
        let spec = full();
        let p = partition(&spec, 1).unwrap();
        let m = CostModel::MEASURED;
        let cost = |name: &str| {
            p.shards[0]
                .groups
                .iter()
                .find(|g| g.group.to_string() == name)
                .unwrap()
                .cost_s
        };
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-9, "{a} != {b}");
        // Every lock mode in every repetition, one boot repetition each.
        let cells = (spec.locks.len() as u32 * spec.reps) as f64;
        close(cost("kernbench 1x"), cells * (m.cell_overhead_s + 150.0));
        close(
            cost("kernbench 3x"),
            cells * (m.cell_overhead_s + 2.0 * m.hog_start_s + 150.0),
        );
        close(cost("pgbench 1x clients=8"), cells * (m.cell_overhead_s + 10.0));
        // Warm-up and runs per boot multiply the work, not the overhead.
        let mut more = spec.clone();
        more.runs_per_boot = Some(3);
        more.warmup = Some(1);
        let p = partition(&more, 1).unwrap();
        let pg = p.shards[0]
            .groups
            .iter()
            .find(|g| g.group.clients == Some(8))
            .unwrap();
        close(pg.cost_s, cells * (m.cell_overhead_s + 40.0));
    }

    #[test]
    fn more_shards_than_groups_are_refused() {
        let err = partition(&full(), 10).unwrap_err();
        assert_eq!(err, ShardError::TooManyShards { count: 10, groups: 9 });
        assert!(err.to_string().contains("at most 9 shards"), "{err}");
    }

    #[test]
    fn run_json_written_before_shards_and_hostnames_still_loads() {
        let old = r#"{"provenance": {"host_cpu": "c", "host_cores": 2, "host_kernel": "k",
            "qemu": "q", "accel": "tcg", "image_id": "i", "git_revision": "g",
            "matrix_hash": "m", "pvbench_version": "0.1.0", "started_unix": 1},
            "matrix": null, "cells": []}"#;
        let manifest: crate::RunManifest = serde_json::from_str(old).unwrap();
        assert_eq!((manifest.sharding, manifest.provenance.hostname), (None, None));
        // And writes none back.
        let json = serde_json::to_string(&crate::RunManifest {
            sharding: None,
            ..serde_json::from_str(old).unwrap()
        })
        .unwrap();
        assert!(!json.contains("sharding") && !json.contains("hostname"), "{json}");
    }

    #[test]
    fn records_round_trip_through_json() {
        let spec = full();
        let p = partition(&spec, 4).unwrap();
        let record = Sharding::Shard(p.record(Shard { index: 2, count: 4 }));
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains(r#""kind":"shard""#), "{json}");
        let back: Sharding = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
        let Sharding::Shard(r) = back else { unreachable!() };
        assert_eq!(r.expected_cost_s.len(), 4);
        assert_eq!(r.shard(), Shard { index: 2, count: 4 });
    }
}
