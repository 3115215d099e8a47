//! The benchmark matrix as written (TOML) and as it runs: its cells, in
//! order, with the arms interleaved.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{CellKey, LockMode, MigrationMode, Overcommit, Workload};

/// Most vCPUs a guest may have.
pub const MAX_VCPUS: u32 = 64;
/// Most repetitions (warm-up and measured) in one boot: the guest's own limit.
pub const MAX_BOOT_REPS: u32 = 1000;
/// Default for `apart_reruns`: on the host where apart epochs were measured
/// they lasted minutes (a whole round of 10 cells), so a cell rerun at the end
/// of its pass usually lands in another epoch; a third attempt is rarely
/// needed and a fourth would mostly meet the same epoch again.
pub const DEFAULT_APART_RERUNS: u32 = 2;
/// Most reruns a cell measured apart may get.
pub const MAX_APART_RERUNS: u32 = 10;
/// What the budget check charges per guest start (measured: ~0.3 s under TCG).
const START_COST_S: f64 = 1.0;

/// A built-in matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// At most 10 minutes on 2 cores under TCG: CI and a first look.
    Quick,
    /// What a study uses.
    Full,
}

impl Profile {
    /// Every profile, by its name on the command line.
    pub const NAMES: [&'static str; 2] = ["quick", "full"];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Quick => "quick",
            Profile::Full => "full",
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "quick" => Ok(Profile::Quick),
            "full" => Ok(Profile::Full),
            other => Err(format!("{other:?} is not one of quick, full")),
        }
    }
}

/// Why a matrix cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The matrix cannot be read, or is not a matrix in TOML (unknown keys
    /// included).
    #[error("{path}: {reason}")]
    BadFile {
        /// The file, or where the text came from.
        path: String,
        /// The I/O or TOML error.
        reason: String,
    },
    /// A value out of range, or a combination that cannot run; says which.
    #[error("matrix: {0}")]
    Invalid(String),
    /// The worst case exceeds `budget_s`.
    #[error(
        "matrix: its worst case (every run at its cap) is {worst_s:.0} s, over its budget of {budget_s:.0} s: lower the caps, reps or cells, or raise budget_s"
    )]
    OverBudget {
        /// See [`MatrixSpec::worst_case_s`].
        worst_s: f64,
        /// The matrix's [`MatrixSpec::budget_s`].
        budget_s: f64,
    },
}

/// The quick profile's TOML, `matrices/quick.toml`.
pub const QUICK: &str = include_str!("../../../matrices/quick.toml");
/// The full profile's TOML, `matrices/full.toml`.
pub const FULL: &str = include_str!("../../../matrices/full.toml");

/// A matrix as written in TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSpec {
    /// Lock modes of the bench guest.
    pub locks: Vec<LockMode>,
    /// Overcommit levels for kernbench (pgbench has its own list).
    pub overcommit: Vec<Overcommit>,
    /// Repetitions of every cell.
    pub reps: u32,
    /// Measured runs of the workload in each guest boot (default 1): the boot
    /// writes the workload's data, runs `warmup` unmeasured repetitions, then
    /// these; the cell's value is their mean, so boots (the expensive level)
    /// and runs within a boot (the cheap one) can each be repeated as often
    /// as their own variance warrants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs_per_boot: Option<u32>,
    /// Repetitions at the start of each boot left out of the cell's value
    /// (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<u32>,
    /// vCPUs per guest; absent: the host's cores, so 1x/2x/3x keep their meaning.
    pub vcpus: Option<u32>,
    /// Memory per guest, 64 to 16384 MiB.
    pub memory_mib: u32,
    /// Refuse to start a matrix whose worst case (every run at its cap) exceeds
    /// this many seconds. Planned cells only: reruns of cells measured apart
    /// (`apart_reruns`) and `--target-mde`'s repetitions come on top, each
    /// bounded by its own limit.
    pub budget_s: Option<f64>,
    /// pv spin threshold under TCG; under KVM the kernel's default (2^15, Linux's)
    /// applies. See the README for the measurement behind the TCG value.
    pub spin_tcg: u32,
    /// Seconds a guest may take from QEMU's start to its workload's start line
    /// before its cell fails (default 30).
    pub start_timeout_s: Option<f64>,
    /// Extra `key=value` words for every bench guest (after pvbench's own), e.g.
    /// `pvlock.kick=nmi`, or `inject=stall` to test the stall watch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bench_args: Option<Vec<String>>,
    /// The kernbench cells, if any.
    pub kernbench: Option<KernbenchSpec>,
    /// The pgbench cells, if any.
    pub pgbench: Option<PgbenchSpec>,
    /// Migrations: every group runs twice, its bench guests left alone and
    /// migrated, so the report gives each lock mode's cost of a migration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationSpec>,
    /// How many times a completed cell measured with the host's CPUs apart
    /// (see [`crate::CPUS_APART_RATIO`]) is measured again, at the end of
    /// its pass, whatever its arm (default [`DEFAULT_APART_RERUNS`]). Above
    /// 0 the runner also waits, up to 90 s, for the CPUs to come near
    /// before each cell; 0 turns both off (every first attempt is kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apart_reruns: Option<u32>,
}

/// The `[migration]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationSpec {
    /// Seconds between the end of one migration of a working bench guest and
    /// the start of the next.
    pub every_s: f64,
    /// `live` or `paused`; absent: paused under TCG (where QEMU 7.2's live
    /// migration damages busy guests), live under KVM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MigrationMode>,
}

/// The `[kernbench]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernbenchSpec {
    /// Size of the generated source tree, 16 files per unit.
    pub scale: u32,
    /// Seconds the build may take before the run is censored.
    pub cap_s: f64,
}

/// The `[pgbench]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgbenchSpec {
    /// Client counts; each overcommit level runs every one.
    pub clients: Vec<u32>,
    /// Overcommit levels for pgbench.
    pub overcommit: Vec<Overcommit>,
    /// Size of the tables, 100,000 accounts per unit.
    pub scale: u32,
    /// Seconds of the timed run.
    pub duration_s: f64,
    /// Seconds the run may take before it is censored; above `duration_s`.
    pub cap_s: f64,
}
impl MatrixSpec {
    /// The built-in matrix of `profile`.
    pub fn profile(profile: Profile) -> Self {
        let text = match profile {
            Profile::Quick => QUICK,
            Profile::Full => FULL,
        };
        Self::parse(text, "built-in profile").expect("built-in profiles are valid")
    }

    /// Reads and validates a matrix file.
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let text = fs::read_to_string(path).map_err(|e| SpecError::BadFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates a matrix; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, SpecError> {
        let spec: MatrixSpec = toml::from_str(text).map_err(|e| SpecError::BadFile {
            path: origin.to_string(),
            reason: e.to_string(),
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Refuses matrices that cannot run, before any guest starts.
    pub fn validate(&self) -> Result<(), SpecError> {
        let bad = |why: &str| Err(SpecError::Invalid(why.to_string()));
        if self.locks.is_empty() {
            return bad("`locks` is empty: give one or more of base, pv, qspin, pvqspin, tas");
        }
        if let Some(twice) = self
            .locks
            .iter()
            .enumerate()
            .find_map(|(i, m)| self.locks[..i].contains(m).then_some(m))
        {
            return Err(SpecError::Invalid(format!(
                "`locks` lists {twice} twice: each mode is one arm, list it once"
            )));
        }
        if self.reps == 0 {
            return bad("`reps` must be at least 1");
        }
        if self.runs_per_boot == Some(0) {
            return bad("`runs_per_boot` must be at least 1");
        }
        if self.boot_reps() > MAX_BOOT_REPS {
            return Err(SpecError::Invalid(format!(
                "`warmup` + `runs_per_boot` must be at most {MAX_BOOT_REPS}"
            )));
        }
        if self.vcpus == Some(0) || self.vcpus.is_some_and(|v| v > MAX_VCPUS) {
            return bad("`vcpus` must be 1 to 64");
        }
        if self.start_timeout_s.is_some_and(|t| !positive(t)) {
            return bad("`start_timeout_s` must be above 0");
        }
        if let Some(bad) = self.bench_args.iter().flatten().find(|w| !is_guest_word(w)) {
            return Err(SpecError::Invalid(format!(
                "`bench_args` word {bad:?} is not key=value without spaces or quotes"
            )));
        }
        if !(64..=16384).contains(&self.memory_mib) {
            return bad("`memory_mib` must be 64 to 16384");
        }
        if self.kernbench.is_none() && self.pgbench.is_none() {
            return bad("no workload: add a [kernbench] or [pgbench] table");
        }
        if self.kernbench.is_some() && self.overcommit.is_empty() {
            return bad("`overcommit` is empty but [kernbench] is present");
        }
        if let Some(k) = &self.kernbench {
            if k.scale == 0 || !positive(k.cap_s) {
                return bad("[kernbench] needs scale >= 1 and cap_s > 0");
            }
        }
        if let Some(p) = &self.pgbench {
            if p.clients.is_empty() || p.clients.contains(&0) {
                return bad("[pgbench] `clients` must list client counts >= 1");
            }
            if p.overcommit.is_empty() {
                return bad("[pgbench] `overcommit` is empty");
            }
            if p.scale == 0 || !positive(p.duration_s) || !positive(p.cap_s - p.duration_s) {
                return bad("[pgbench] needs scale >= 1, duration_s > 0 and cap_s > duration_s");
            }
        }
        if let Some(m) = &self.migration {
            if !(positive(m.every_s) && m.every_s <= 3600.0) {
                return bad("[migration] `every_s` must be above 0 and at most 3600");
            }
        }
        if self.apart_reruns.is_some_and(|n| n > MAX_APART_RERUNS) {
            return Err(SpecError::Invalid(format!(
                "`apart_reruns` must be at most {MAX_APART_RERUNS}"
            )));
        }
        if let Some(budget_s) = self.budget_s {
            let worst_s = self.worst_case_s();
            if worst_s > budget_s {
                return Err(SpecError::OverBudget { worst_s, budget_s });
            }
        }
        Ok(())
    }

    /// Seconds the matrix takes if every run reaches its cap.
    pub fn worst_case_s(&self) -> f64 {
        self.plan()
            .iter()
            .map(|key| {
                self.cap_s(key.workload) * f64::from(self.boot_reps())
                    + START_COST_S * key.overcommit.factor() as f64
            })
            .sum()
    }

    /// Reruns a completed cell measured with the host's CPUs apart may get.
    pub fn apart_reruns(&self) -> u32 {
        self.apart_reruns.unwrap_or(DEFAULT_APART_RERUNS)
    }

    /// Measured runs per boot.
    pub fn runs_per_boot(&self) -> u32 {
        self.runs_per_boot.unwrap_or(1)
    }

    /// Unmeasured repetitions at the start of each boot.
    pub fn warmup(&self) -> u32 {
        self.warmup.unwrap_or(0)
    }

    /// Repetitions each boot runs: the warm-up and the measured runs. Every cap
    /// in the matrix is per repetition, so a boot's cap is this times it.
    pub fn boot_reps(&self) -> u32 {
        self.warmup().saturating_add(self.runs_per_boot())
    }

    fn cap_s(&self, workload: Workload) -> f64 {
        match workload {
            Workload::Kernbench => self.kernbench.as_ref().map_or(0.0, |k| k.cap_s),
            Workload::Pgbench => self.pgbench.as_ref().map_or(0.0, |p| p.cap_s),
        }
    }

    /// The lock modes of repetition `rep` (from 1), in the order they run:
    /// `locks` rotated left by `rep - 1`, so over any `locks.len()`
    /// consecutive repetitions every mode runs first (and in every other
    /// position) equally often, and drift in the host hits every arm alike.
    /// With two modes this alternates: base, pv; pv, base; ...
    pub fn arm_order(&self, rep: u32) -> Vec<LockMode> {
        rotation(&self.locks, rep)
    }

    /// Every cell, in run order: repetitions outermost, and inside each group the
    /// lock modes in the rotating order of [`Self::arm_order`].
    pub fn plan(&self) -> Vec<CellKey> {
        let mut groups = Vec::new();
        if self.kernbench.is_some() {
            for &overcommit in &self.overcommit {
                groups.push((Workload::Kernbench, overcommit, None));
            }
        }
        if let Some(p) = &self.pgbench {
            for &overcommit in &p.overcommit {
                for &clients in &p.clients {
                    groups.push((Workload::Pgbench, overcommit, Some(clients)));
                }
            }
        }
        // A migrated group runs right after its unmigrated twin, so the
        // migration's cost is measured on the same host state.
        let migrated: &[bool] = if self.migration.is_some() {
            &[false, true]
        } else {
            &[false]
        };
        let mut cells = Vec::new();
        for rep in 1..=self.reps {
            let locks = self.arm_order(rep);
            for &(workload, overcommit, clients) in &groups {
                for &migrated in migrated {
                    for &lock in &locks {
                        cells.push(CellKey {
                            workload,
                            overcommit,
                            clients,
                            migrated,
                            lock,
                            rep,
                        });
                    }
                }
            }
        }
        cells
    }

    /// Hash of the matrix as it will run (host-dependent defaults resolved).
    pub fn hash(&self) -> String {
        let json = serde_json::to_string(self).expect("spec serializes");
        crate::short_hash(json.as_bytes())
    }
}

/// `locks` in the order repetition `rep` (from 1) runs them: rotated left by
/// `rep - 1` (see [`MatrixSpec::arm_order`]).
pub fn rotation(locks: &[LockMode], rep: u32) -> Vec<LockMode> {
    let mut order = locks.to_vec();
    if !order.is_empty() {
        let shift = (rep.saturating_sub(1) as usize) % order.len();
        order.rotate_left(shift);
    }
    order
}

/// `key=value`, with a key and without white space or quotes (which the guest
/// command line cannot carry).
fn is_guest_word(word: &str) -> bool {
    let clean = !word.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'');
    clean && word.split_once('=').is_some_and(|(k, _)| !k.is_empty())
}

/// A finite number above zero (NaN is not).
fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_and_quick_fits_its_budget() {
        let quick = MatrixSpec::profile(Profile::Quick);
        assert!(quick.worst_case_s() <= quick.budget_s.unwrap());
        let full = MatrixSpec::profile(Profile::Full);
        assert!(full.plan().len() > quick.plan().len());
        // The quick profile compares the seed's two designs; the full one all five.
        assert_eq!(quick.locks, [LockMode::Base, LockMode::Pv]);
        assert_eq!(full.locks, LockMode::ALL);
    }

    #[test]
    fn shipped_matrix_files_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../matrices");
        let four = MatrixSpec::load(&dir.join("full-4vcpu.toml")).expect("full-4vcpu.toml");
        assert_eq!(four.vcpus, Some(4));
        assert_eq!(four.locks, LockMode::ALL);
        for name in ["quick.toml", "full.toml", "modes-3x.toml", "migration.toml"] {
            MatrixSpec::load(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn a_migration_table_runs_every_group_twice_side_by_side() {
        let mut spec = MatrixSpec::profile(Profile::Quick);
        // Twice the cells: the quick profile's budget would refuse it (as it should).
        spec.budget_s = None;
        let plain = spec.plan();
        let text = format!(
            "{}\n[migration]\nevery_s = 2.5\n",
            toml::to_string(&spec).unwrap()
        );
        let migrating: MatrixSpec = toml::from_str(&text).unwrap();
        migrating.validate().unwrap();
        assert_eq!(migrating.migration.as_ref().unwrap().kind, None);
        let plan = migrating.plan();
        assert_eq!(plan.len(), 2 * plain.len());
        // Each group's migrated twin right after it, same modes, same order.
        let n = spec.locks.len();
        for (i, pair) in plan.chunks(2 * n).enumerate() {
            let (still, moved) = pair.split_at(n);
            assert_eq!(still, &plain[i * n..(i + 1) * n]);
            for (a, b) in still.iter().zip(moved) {
                assert!(!a.migrated && b.migrated);
                assert_eq!(
                    CellKey {
                        migrated: false,
                        ..*b
                    },
                    *a
                );
                assert_eq!(b.group(), a.group().twin(true));
            }
        }
        assert!(plan.iter().any(|k| k.id().contains("-mig-")));
        // Unmigrated cells keep their ids and JSON (old results read the same).
        assert!(!serde_json::to_string(&plain[0]).unwrap().contains("migrated"));
        for (text, why) in [
            ("every_s = 0", "`every_s` must be above 0"),
            ("every_s = 1\nkind = \"sometimes\"", "unknown variant"),
            ("every_s = 1\nevery = 2", "unknown field"),
        ] {
            let doc = format!("{}\n[migration]\n{text}\n", toml::to_string(&spec).unwrap());
            let err = match toml::from_str::<MatrixSpec>(&doc) {
                Ok(spec) => spec.validate().unwrap_err().to_string(),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn arms_are_interleaved() {
        let quick = MatrixSpec::profile(Profile::Quick);
        let plan = quick.plan();
        let first = &plan[..2];
        assert_eq!(first[0].group(), first[1].group());
        assert_ne!(first[0].lock, first[1].lock);
        // The next repetition of the same group starts with the other arm.
        let again: Vec<_> = plan
            .iter()
            .filter(|k| k.group() == first[0].group() && k.rep == 2)
            .collect();
        assert_eq!(again[0].lock, first[1].lock);
    }

    #[test]
    fn every_mode_runs_first_equally_often() {
        let mut spec = MatrixSpec::profile(Profile::Quick);
        spec.locks = LockMode::ALL.to_vec();
        spec.reps = 10;
        let n = spec.locks.len();
        // Repetition r starts at mode (r - 1) mod n and keeps the listed cycle.
        for rep in 1..=spec.reps {
            let order = spec.arm_order(rep);
            assert_eq!(order[0], spec.locks[(rep as usize - 1) % n], "rep {rep}");
            for (i, lock) in order.iter().enumerate() {
                assert_eq!(*lock, spec.locks[(rep as usize - 1 + i) % n], "rep {rep}");
            }
        }
        // In the plan: each group's cells of a repetition follow that order,
        // and over the 10 repetitions each mode is first twice, in every
        // position twice.
        let plan = spec.plan();
        let group = plan[0].group();
        let mut positions = std::collections::BTreeMap::new();
        for rep in 1..=spec.reps {
            let locks: Vec<LockMode> = plan
                .iter()
                .filter(|k| k.group() == group && k.rep == rep)
                .map(|k| k.lock)
                .collect();
            assert_eq!(locks, spec.arm_order(rep));
            for (position, lock) in locks.into_iter().enumerate() {
                *positions.entry((lock, position)).or_insert(0) += 1;
            }
        }
        assert_eq!(positions.len(), n * n);
        assert!(positions.values().all(|&count| count == 2), "{positions:?}");
    }

    #[test]
    fn two_modes_alternate_as_they_always_did() {
        let quick = MatrixSpec::profile(Profile::Quick);
        let plan = quick.plan();
        // The plan the quick profile had before modes rotated: base, pv in odd
        // repetitions, pv, base in even ones.
        let mut want = Vec::new();
        for rep in 1..=quick.reps {
            let order = if rep % 2 == 1 {
                [LockMode::Base, LockMode::Pv]
            } else {
                [LockMode::Pv, LockMode::Base]
            };
            for key in plan.iter().filter(|k| k.rep == rep && k.lock == LockMode::Base) {
                for lock in order {
                    want.push(CellKey { lock, ..*key });
                }
            }
        }
        assert_eq!(plan, want);
        assert_eq!(rotation(&[], 3), Vec::<LockMode>::new());
    }

    #[test]
    fn lock_lists_are_checked() {
        // Without its budget: five arms of the quick matrix take longer.
        let quick = QUICK.replace("budget_s = ", "# budget_s = ");
        let with = |locks: &str| quick.replace("locks = [\"base\", \"pv\"]", locks);
        let all = MatrixSpec::parse(
            &with("locks = [\"tas\", \"base\", \"pvqspin\", \"qspin\", \"pv\"]"),
            "test",
        )
        .expect("every mode, any order");
        assert_eq!(all.locks.len(), 5);
        MatrixSpec::parse(&with("locks = [\"qspin\"]"), "test").expect("one mode");
        // The budget counts every arm.
        let err = MatrixSpec::parse(&QUICK.replace("\"pv\"]", "\"pv\", \"tas\"]"), "test").unwrap_err();
        assert!(matches!(err, SpecError::OverBudget { .. }), "{err}");
        let err = MatrixSpec::parse(&with("locks = [\"pv\", \"qspin\", \"pv\"]"), "test")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lists pv twice"), "{err}");
        let err = MatrixSpec::parse(&with("locks = [\"base\", \"mcs\"]"), "test")
            .unwrap_err()
            .to_string();
        // The error names the modes that exist.
        for name in ["mcs", "base", "pv", "qspin", "pvqspin", "tas"] {
            assert!(err.contains(name), "{name} not in {err:?}");
        }
    }

    #[test]
    fn bad_matrices_are_refused_with_the_reason() {
        let quick = QUICK.to_string();
        for (edit, expect) in [
            (
                quick.replace("locks = [\"base\", \"pv\"]", "locks = []"),
                "`locks` is empty",
            ),
            (quick.replace("reps = ", "reps = 0 #"), "`reps` must be"),
            (format!("vcpus = 0\n{quick}"), "`vcpus` must be"),
            (quick.replace("[kernbench]", "[kernbanch]"), "unknown field"),
            (quick.replace("clients = [", "clients = [0, "), "client counts"),
            (quick.replace("budget_s = ", "budget_s = 1 #"), "over its budget"),
            (format!("bench_args = [\"a b\"]\n{quick}"), "`bench_args` word"),
            (
                format!("bench_args = [\"novalue\"]\n{quick}"),
                "`bench_args` word",
            ),
            (
                format!("apart_reruns = 11\n{quick}"),
                "`apart_reruns` must be at most 10",
            ),
            (format!("apart_reruns = -1\n{quick}"), "apart_reruns"),
        ] {
            let err = MatrixSpec::parse(&edit, "test").unwrap_err().to_string();
            assert!(err.contains(expect), "{expect:?} not in {err:?}");
        }
    }
}
