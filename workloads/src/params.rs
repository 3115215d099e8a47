//! Run parameters: the `key=value` words a run is configured with.
//!
//! The words arrive on the guest kernel command line (`workload=kernbench scale=2 jobs=8 reps=3`) or
//! from a host test. [`KEYS`] is the one table of accepted keys, so the guest and the host runner
//! agree on them; [`parse_args`] turns the words into one typed config, and nothing downstream reads
//! raw words.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The key names, for callers that build argument lists.
pub mod keys {
    pub const WORKLOAD: &str = "workload";
    pub const PROFILE: &str = "profile";
    pub const VCPUS: &str = "vcpus";
    pub const INTERVAL_MS: &str = "interval_ms";
    pub const REPS: &str = "reps";
    pub const SCALE: &str = "scale";
    pub const JOBS: &str = "jobs";
    pub const ROOT: &str = "root";
    pub const SPAWN: &str = "spawn";
    pub const CLIENTS: &str = "clients";
    pub const DURATION_S: &str = "duration_s";
    pub const TRANSACTIONS: &str = "transactions";
    pub const THREADS: &str = "threads";
}

/// Most threads (jobs, clients, hogs) a run may ask for: far above any sensible guest, low enough
/// that a typo (`jobs=80000`) is an error instead of a guest that runs out of memory.
pub const MAX_THREADS: usize = 1024;
/// Largest `scale` (kernbench: 16 files per unit; pgbench: 100,000 accounts per unit).
pub const MAX_SCALE: u32 = 10_000;
/// Most repetitions.
pub const MAX_REPS: u32 = 1000;
/// Longest `duration_s` (30 days); longer runs use `forever` (cpuhog).
pub const MAX_DURATION_S: f64 = 30.0 * 86_400.0;
/// Reporting interval bounds in milliseconds.
pub const INTERVAL_MS_RANGE: (u64, u64) = (10, 60_000);

/// Which workload a run executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    Kernbench,
    Pgbench,
    Cpuhog,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 3] = [Self::Kernbench, Self::Pgbench, Self::Cpuhog];

    pub fn name(self) -> &'static str {
        match self {
            Self::Kernbench => "kernbench",
            Self::Pgbench => "pgbench",
            Self::Cpuhog => "cpuhog",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Size of a run: `quick` for CI and tests (seconds under TCG), `full` for real runs (minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    Quick,
    Full,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::Full => "full",
        }
    }
}

/// How kernbench runs a compile job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpawnMode {
    /// A fresh thread per job, as make forks a compiler per file: thread creation and teardown
    /// (stack allocation, scheduler queues) go through the guest kernel's locks too.
    #[default]
    Job,
    /// Long-lived worker threads; only the compile work itself is measured.
    Pool,
}

impl SpawnMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Job => "job",
            Self::Pool => "pool",
        }
    }
}

/// One accepted key: the single place that says which workloads take it and what it accepts.
#[derive(Debug)]
pub struct KeySpec {
    pub key: &'static str,
    pub workloads: &'static [WorkloadKind],
    /// The accepted values, as shown in error messages.
    pub accepts: &'static str,
    /// The default, per profile where it differs.
    pub default: &'static str,
    pub help: &'static str,
}

const ALL: &[WorkloadKind] = &WorkloadKind::ALL;
const KB: &[WorkloadKind] = &[WorkloadKind::Kernbench];
const PG: &[WorkloadKind] = &[WorkloadKind::Pgbench];
const HOG: &[WorkloadKind] = &[WorkloadKind::Cpuhog];
const KB_PG: &[WorkloadKind] = &[WorkloadKind::Kernbench, WorkloadKind::Pgbench];
const PG_HOG: &[WorkloadKind] = &[WorkloadKind::Pgbench, WorkloadKind::Cpuhog];

/// Every accepted key. Keep `docs/`-style tables and the host runner in step with this one.
pub const KEYS: &[KeySpec] = &[
    KeySpec {
        key: keys::WORKLOAD,
        workloads: ALL,
        accepts: "kernbench, pgbench, cpuhog",
        default: "(required)",
        help: "which workload to run",
    },
    KeySpec {
        key: keys::PROFILE,
        workloads: ALL,
        accepts: "quick, full",
        default: "quick",
        help: "picks the defaults of the other keys",
    },
    KeySpec {
        key: keys::VCPUS,
        workloads: ALL,
        accepts: "an integer in 1..=1024",
        default: "available parallelism",
        help: "CPU count the thread defaults are derived from",
    },
    KeySpec {
        key: keys::INTERVAL_MS,
        workloads: ALL,
        accepts: "an integer in 10..=60000",
        default: "250",
        help: "how often the observer receives an interval report",
    },
    KeySpec {
        key: keys::REPS,
        workloads: KB_PG,
        accepts: "an integer in 1..=1000",
        default: "kernbench quick 2, full 5; pgbench quick 1, full 3",
        help: "repetitions (kernbench -n), summarised as mean (sd)",
    },
    KeySpec {
        key: keys::SCALE,
        workloads: KB_PG,
        accepts: "an integer in 1..=10000",
        default: "kernbench quick 3, full 20; pgbench quick 1, full 10",
        help: "kernbench: 16 source files per unit; pgbench: 1 branch, 10 tellers, 100000 accounts per unit",
    },
    KeySpec {
        key: keys::JOBS,
        workloads: KB,
        accepts: "an integer in 1..=1024",
        default: "4 x vcpus (kernbench's optimal load)",
        help: "parallel compile jobs (make -j, kernbench -o)",
    },
    KeySpec {
        key: keys::ROOT,
        workloads: KB,
        accepts: "a directory path",
        default: "/tmp in the guest, the system temp dir on the host",
        help: "where the per-run source tree is created (and removed afterwards)",
    },
    KeySpec {
        key: keys::SPAWN,
        workloads: KB,
        accepts: "job, pool",
        default: "job",
        help: "job: a new thread per compile job, as make forks a compiler; pool: reuse threads",
    },
    KeySpec {
        key: keys::CLIENTS,
        workloads: PG,
        accepts: "an integer in 1..=1024",
        default: "vcpus",
        help: "client threads (pgbench -c)",
    },
    KeySpec {
        key: keys::DURATION_S,
        workloads: PG_HOG,
        accepts: "seconds > 0 (decimals allowed, at most 2592000), or `forever` for cpuhog",
        default: "pgbench quick 5, full 60; cpuhog forever",
        help: "run time (pgbench -T); excludes pgbench's table setup",
    },
    KeySpec {
        key: keys::TRANSACTIONS,
        workloads: PG,
        accepts: "an integer >= 1",
        default: "(unset: run for duration_s)",
        help: "transactions per client instead of a duration (pgbench -t)",
    },
    KeySpec {
        key: keys::THREADS,
        workloads: HOG,
        accepts: "an integer in 1..=1024",
        default: "vcpus",
        help: "busy threads, one per vCPU like the seed's hogs",
    },
];

/// Looks a key up in [`KEYS`].
pub fn key_spec(key: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|s| s.key == key)
}

/// A parameter error; the message names the key and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("`{word}` is not a key=value word (accepted keys: {accepted})")]
    NotKeyValue { word: String, accepted: String },
    #[error("unknown key `{key}` (accepted keys: {accepted})")]
    UnknownKey { key: String, accepted: String },
    #[error("key `{key}` is given more than once")]
    Duplicate { key: String },
    #[error("missing key `workload` (accepted values: kernbench, pgbench, cpuhog)")]
    MissingWorkload,
    #[error("bad value `{value}` for key `{key}`: expected {expected}")]
    BadValue {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("key `{key}` does not apply to workload {workload} (its keys: {accepted})")]
    NotForWorkload {
        key: &'static str,
        workload: WorkloadKind,
        accepted: String,
    },
    #[error("keys `{first}` and `{second}` cannot be used together")]
    Conflict {
        first: &'static str,
        second: &'static str,
    },
}

/// kernbench-like run: build a generated source tree with `jobs` parallel compile jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernbenchConfig {
    pub scale: u32,
    pub jobs: usize,
    pub reps: u32,
    /// Directory under which the run's tree is created.
    pub root: PathBuf,
    pub spawn: SpawnMode,
    pub interval: Duration,
}

impl KernbenchConfig {
    /// Sizes measured in a Hermit 0.11 guest under QEMU TCG (not host time divided by ~9: the
    /// guest is ~100x slower here, since every allocation takes the kernel allocator's lock and
    /// costs time proportional to the live small allocations, and every file system call costs
    /// ~1 ms): one job slot compiles a file in ~40-60 ms, eight slots on one vCPU build 48 files
    /// in ~4.3 s. So quick (48 files, 2 reps) takes ~5-20 s with 2 vCPUs, full (320 files, 5
    /// reps) a few minutes; on the host both take well under a second.
    pub fn for_profile(profile: Profile, vcpus: usize) -> Self {
        let (scale, reps) = match profile {
            Profile::Quick => (3, 2),
            Profile::Full => (20, 5),
        };
        Self {
            scale,
            jobs: (4 * vcpus).clamp(1, MAX_THREADS),
            reps,
            root: default_root(),
            spawn: SpawnMode::Job,
            interval: DEFAULT_INTERVAL,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_count(keys::JOBS, self.jobs)?;
        check_scale(self.scale)?;
        check_reps(self.reps)?;
        check_interval(self.interval)?;
        if self.root.as_os_str().is_empty() {
            return Err(bad(keys::ROOT, "", "a directory path"));
        }
        Ok(())
    }
}

/// When a pgbench client stops.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunLimit {
    /// Run for this long (pgbench -T).
    Duration(Duration),
    /// Run this many transactions per client (pgbench -t).
    Transactions(u64),
}

/// pgbench-like run: the TPC-B-like transaction from `clients` threads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PgbenchConfig {
    pub scale: u32,
    pub clients: usize,
    pub reps: u32,
    pub limit: RunLimit,
    pub interval: Duration,
}

impl PgbenchConfig {
    /// pgbench-tools' usual 60 s runs for full; scale 10 keeps 1M accounts (16 MiB of rows)
    /// comfortably inside a 512 MiB guest.
    pub fn for_profile(profile: Profile, vcpus: usize) -> Self {
        let (scale, secs, reps) = match profile {
            Profile::Quick => (1, 5, 1),
            Profile::Full => (10, 60, 3),
        };
        Self {
            scale,
            clients: vcpus.clamp(1, MAX_THREADS),
            reps,
            limit: RunLimit::Duration(Duration::from_secs(secs)),
            interval: DEFAULT_INTERVAL,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_count(keys::CLIENTS, self.clients)?;
        check_scale(self.scale)?;
        check_reps(self.reps)?;
        check_interval(self.interval)?;
        match self.limit {
            RunLimit::Duration(d) => check_duration(d),
            RunLimit::Transactions(0) => Err(bad(keys::TRANSACTIONS, "0", TRANSACTIONS_EXPECTED)),
            RunLimit::Transactions(_) => Ok(()),
        }
    }
}

/// cpuhog run: `threads` busy loops, like the seed's `while true` hogs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuhogConfig {
    pub threads: usize,
    /// `None` runs until the observer asks to stop (or forever).
    pub duration: Option<Duration>,
    pub interval: Duration,
}

impl CpuhogConfig {
    /// A hog is background load for as long as the benchmark runs, so every profile defaults to
    /// `forever`; the host ends it (or an observer's `should_stop`).
    pub fn for_profile(_profile: Profile, vcpus: usize) -> Self {
        Self {
            threads: vcpus.clamp(1, MAX_THREADS),
            duration: None,
            interval: DEFAULT_INTERVAL,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_count(keys::THREADS, self.threads)?;
        check_interval(self.interval)?;
        self.duration.map_or(Ok(()), check_duration)
    }
}

/// A parsed run: one workload and its typed parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "workload", rename_all = "lowercase")]
pub enum WorkloadConfig {
    Kernbench(KernbenchConfig),
    Pgbench(PgbenchConfig),
    Cpuhog(CpuhogConfig),
}

impl WorkloadConfig {
    pub fn kind(&self) -> WorkloadKind {
        match self {
            Self::Kernbench(_) => WorkloadKind::Kernbench,
            Self::Pgbench(_) => WorkloadKind::Pgbench,
            Self::Cpuhog(_) => WorkloadKind::Cpuhog,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Self::Kernbench(c) => c.validate(),
            Self::Pgbench(c) => c.validate(),
            Self::Cpuhog(c) => c.validate(),
        }
    }
}

/// Reporting interval unless `interval_ms` says otherwise: several reports a second for live
/// plots, few enough that merging histograms costs the guest next to nothing.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(250);

/// Where kernbench's tree goes by default: Hermit's in-memory file system is mounted at `/tmp`
/// (its `temp_dir` says so too, but being explicit keeps the guest's choice visible here).
pub fn default_root() -> PathBuf {
    if cfg!(target_os = "hermit") {
        PathBuf::from("/tmp")
    } else {
        std::env::temp_dir()
    }
}

/// The CPU count defaults derive from when `vcpus` is not given.
pub fn default_vcpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
}

/// What the host asks of a guest's workload, typed: the words it sets. The
/// guest reads them back with [`parse_args`]; both use [`keys`], so one place
/// knows them.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkloadArgs {
    Kernbench {
        scale: u32,
        reps: u32,
        vcpus: usize,
    },
    Pgbench {
        scale: u32,
        clients: usize,
        duration_s: f64,
        reps: u32,
        vcpus: usize,
    },
    Cpuhog {
        threads: usize,
        vcpus: usize,
    },
}

impl WorkloadArgs {
    /// The words, as (key, value), `workload=` first.
    pub fn words(&self) -> Vec<(&'static str, String)> {
        let kind = |k: WorkloadKind| (keys::WORKLOAD, k.name().to_string());
        match *self {
            WorkloadArgs::Kernbench { scale, reps, vcpus } => vec![
                kind(WorkloadKind::Kernbench),
                (keys::SCALE, scale.to_string()),
                (keys::REPS, reps.to_string()),
                (keys::VCPUS, vcpus.to_string()),
            ],
            WorkloadArgs::Pgbench {
                scale,
                clients,
                duration_s,
                reps,
                vcpus,
            } => vec![
                kind(WorkloadKind::Pgbench),
                (keys::SCALE, scale.to_string()),
                (keys::CLIENTS, clients.to_string()),
                (keys::DURATION_S, duration_s.to_string()),
                (keys::REPS, reps.to_string()),
                (keys::VCPUS, vcpus.to_string()),
            ],
            WorkloadArgs::Cpuhog { threads, vcpus } => vec![
                kind(WorkloadKind::Cpuhog),
                (keys::THREADS, threads.to_string()),
                (keys::VCPUS, vcpus.to_string()),
            ],
        }
    }
}

/// Parses `key=value` words into a config. Words that are empty are ignored (they can arise from
/// doubled spaces on a command line); everything else must be a known key, given once, that
/// applies to the chosen workload.
pub fn parse_args<I, S>(words: I) -> Result<WorkloadConfig, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let given = Given::from_words(words)?;
    let kind = match given.get(keys::WORKLOAD) {
        Some(v) => parse_enum(keys::WORKLOAD, v, &WorkloadKind::ALL.map(|k| (k.name(), k)))?,
        None => return Err(ConfigError::MissingWorkload),
    };
    given.check_apply_to(kind)?;
    let common = Common::parse(&given)?;
    Ok(match kind {
        WorkloadKind::Kernbench => WorkloadConfig::Kernbench(kernbench_config(&given, common)?),
        WorkloadKind::Pgbench => WorkloadConfig::Pgbench(pgbench_config(&given, common)?),
        WorkloadKind::Cpuhog => WorkloadConfig::Cpuhog(cpuhog_config(&given, common)?),
    })
}

/// The words given, each a known key at most once, in the order given.
struct Given(Vec<(&'static KeySpec, String)>);

impl Given {
    fn from_words<I, S>(words: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut pairs: Vec<(&'static KeySpec, String)> = Vec::new();
        for word in words {
            let word = word.as_ref().trim();
            if word.is_empty() {
                continue;
            }
            let Some((key, value)) = word.split_once('=') else {
                return Err(ConfigError::NotKeyValue {
                    word: word.to_string(),
                    accepted: key_list(KEYS.iter()),
                });
            };
            let spec = key_spec(key).ok_or_else(|| ConfigError::UnknownKey {
                key: key.to_string(),
                accepted: key_list(KEYS.iter()),
            })?;
            if pairs.iter().any(|(s, _)| s.key == spec.key) {
                return Err(ConfigError::Duplicate { key: key.to_string() });
            }
            pairs.push((spec, value.to_string()));
        }
        Ok(Self(pairs))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(s, _)| s.key == key).map(|(_, v)| v.as_str())
    }

    /// Fails on the first key given that `kind` does not take.
    fn check_apply_to(&self, kind: WorkloadKind) -> Result<(), ConfigError> {
        match self.0.iter().find(|(spec, _)| !spec.workloads.contains(&kind)) {
            Some((spec, _)) => Err(ConfigError::NotForWorkload {
                key: spec.key,
                workload: kind,
                accepted: key_list(KEYS.iter().filter(|s| s.workloads.contains(&kind))),
            }),
            None => Ok(()),
        }
    }
}

/// The keys every workload takes.
struct Common {
    profile: Profile,
    vcpus: usize,
    interval: Duration,
}

impl Common {
    fn parse(given: &Given) -> Result<Self, ConfigError> {
        let profile = match given.get(keys::PROFILE) {
            Some(v) => parse_enum(
                keys::PROFILE,
                v,
                &[("quick", Profile::Quick), ("full", Profile::Full)],
            )?,
            None => Profile::Quick,
        };
        let vcpus = match given.get(keys::VCPUS) {
            Some(v) => parse_count(keys::VCPUS, v)?,
            None => default_vcpus(),
        };
        let interval = match given.get(keys::INTERVAL_MS) {
            Some(v) => parse_interval(v)?,
            None => DEFAULT_INTERVAL,
        };
        Ok(Self {
            profile,
            vcpus,
            interval,
        })
    }
}

/// The profile's kernbench defaults with the words' values over them.
fn kernbench_config(given: &Given, common: Common) -> Result<KernbenchConfig, ConfigError> {
    let mut c = KernbenchConfig::for_profile(common.profile, common.vcpus);
    c.interval = common.interval;
    if let Some(v) = given.get(keys::SCALE) {
        c.scale = parse_scale(v)?;
    }
    if let Some(v) = given.get(keys::JOBS) {
        c.jobs = parse_count(keys::JOBS, v)?;
    }
    if let Some(v) = given.get(keys::REPS) {
        c.reps = parse_reps(v)?;
    }
    if let Some(v) = given.get(keys::ROOT) {
        if v.is_empty() {
            return Err(bad(keys::ROOT, v, "a directory path"));
        }
        c.root = PathBuf::from(v);
    }
    if let Some(v) = given.get(keys::SPAWN) {
        c.spawn = parse_enum(
            keys::SPAWN,
            v,
            &[("job", SpawnMode::Job), ("pool", SpawnMode::Pool)],
        )?;
    }
    Ok(c)
}

/// The profile's pgbench defaults with the words' values over them.
fn pgbench_config(given: &Given, common: Common) -> Result<PgbenchConfig, ConfigError> {
    let mut c = PgbenchConfig::for_profile(common.profile, common.vcpus);
    c.interval = common.interval;
    if let Some(v) = given.get(keys::SCALE) {
        c.scale = parse_scale(v)?;
    }
    if let Some(v) = given.get(keys::CLIENTS) {
        c.clients = parse_count(keys::CLIENTS, v)?;
    }
    if let Some(v) = given.get(keys::REPS) {
        c.reps = parse_reps(v)?;
    }
    match (given.get(keys::DURATION_S), given.get(keys::TRANSACTIONS)) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Conflict {
                first: keys::DURATION_S,
                second: keys::TRANSACTIONS,
            })
        }
        (Some(v), None) => c.limit = RunLimit::Duration(parse_duration(v, PG_DURATION_EXPECTED)?),
        (None, Some(v)) => c.limit = RunLimit::Transactions(parse_transactions(v)?),
        (None, None) => {}
    }
    Ok(c)
}

/// The profile's cpuhog defaults with the words' values over them.
fn cpuhog_config(given: &Given, common: Common) -> Result<CpuhogConfig, ConfigError> {
    let mut c = CpuhogConfig::for_profile(common.profile, common.vcpus);
    c.interval = common.interval;
    if let Some(v) = given.get(keys::THREADS) {
        c.threads = parse_count(keys::THREADS, v)?;
    }
    if let Some(v) = given.get(keys::DURATION_S) {
        c.duration = if v == "forever" {
            None
        } else {
            Some(parse_duration(v, HOG_DURATION_EXPECTED)?)
        };
    }
    Ok(c)
}

const COUNT_EXPECTED: &str = "an integer in 1..=1024";
const SCALE_EXPECTED: &str = "an integer in 1..=10000";
const REPS_EXPECTED: &str = "an integer in 1..=1000";
const INTERVAL_EXPECTED: &str = "an integer in 10..=60000";
const TRANSACTIONS_EXPECTED: &str = "an integer >= 1";
const PG_DURATION_EXPECTED: &str = "seconds > 0 (decimals allowed, at most 2592000)";
const HOG_DURATION_EXPECTED: &str = "seconds > 0 (decimals allowed, at most 2592000) or `forever`";

fn bad(key: &'static str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::BadValue {
        key,
        value: value.to_string(),
        expected,
    }
}

fn key_list<'a>(specs: impl Iterator<Item = &'a KeySpec>) -> String {
    specs.map(|s| s.key).collect::<Vec<_>>().join(", ")
}

fn parse_enum<T: Copy>(key: &'static str, value: &str, names: &[(&str, T)]) -> Result<T, ConfigError> {
    names
        .iter()
        .find(|(n, _)| *n == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| bad(key, value, key_spec(key).map_or("", |s| s.accepts)))
}

fn parse_u64_in(
    key: &'static str,
    value: &str,
    lo: u64,
    hi: u64,
    expected: &'static str,
) -> Result<u64, ConfigError> {
    match value.parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(bad(key, value, expected)),
    }
}

fn parse_count(key: &'static str, value: &str) -> Result<usize, ConfigError> {
    parse_u64_in(key, value, 1, MAX_THREADS as u64, COUNT_EXPECTED).map(|n| n as usize)
}

fn parse_scale(value: &str) -> Result<u32, ConfigError> {
    parse_u64_in(keys::SCALE, value, 1, u64::from(MAX_SCALE), SCALE_EXPECTED).map(|n| n as u32)
}

fn parse_reps(value: &str) -> Result<u32, ConfigError> {
    parse_u64_in(keys::REPS, value, 1, u64::from(MAX_REPS), REPS_EXPECTED).map(|n| n as u32)
}

fn parse_transactions(value: &str) -> Result<u64, ConfigError> {
    parse_u64_in(keys::TRANSACTIONS, value, 1, u64::MAX, TRANSACTIONS_EXPECTED)
}

fn parse_interval(value: &str) -> Result<Duration, ConfigError> {
    let (lo, hi) = INTERVAL_MS_RANGE;
    parse_u64_in(keys::INTERVAL_MS, value, lo, hi, INTERVAL_EXPECTED).map(Duration::from_millis)
}

fn parse_duration(value: &str, expected: &'static str) -> Result<Duration, ConfigError> {
    match value.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= MAX_DURATION_S => Ok(Duration::from_secs_f64(s)),
        _ => Err(bad(keys::DURATION_S, value, expected)),
    }
}

fn check_count(key: &'static str, n: usize) -> Result<(), ConfigError> {
    if (1..=MAX_THREADS).contains(&n) {
        Ok(())
    } else {
        Err(bad(key, &n.to_string(), COUNT_EXPECTED))
    }
}

fn check_scale(n: u32) -> Result<(), ConfigError> {
    if (1..=MAX_SCALE).contains(&n) {
        Ok(())
    } else {
        Err(bad(keys::SCALE, &n.to_string(), SCALE_EXPECTED))
    }
}

fn check_reps(n: u32) -> Result<(), ConfigError> {
    if (1..=MAX_REPS).contains(&n) {
        Ok(())
    } else {
        Err(bad(keys::REPS, &n.to_string(), REPS_EXPECTED))
    }
}

fn check_interval(d: Duration) -> Result<(), ConfigError> {
    let (lo, hi) = INTERVAL_MS_RANGE;
    let ms = d.as_millis();
    if (u128::from(lo)..=u128::from(hi)).contains(&ms) {
        Ok(())
    } else {
        Err(bad(keys::INTERVAL_MS, &ms.to_string(), INTERVAL_EXPECTED))
    }
}

fn check_duration(d: Duration) -> Result<(), ConfigError> {
    let s = d.as_secs_f64();
    if s > 0.0 && s <= MAX_DURATION_S {
        Ok(())
    } else {
        Err(bad(keys::DURATION_S, &format!("{s}"), PG_DURATION_EXPECTED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_constant_and_applies_somewhere() {
        for spec in KEYS {
            assert!(!spec.workloads.is_empty(), "{}", spec.key);
            assert_eq!(KEYS.iter().filter(|s| s.key == spec.key).count(), 1);
        }
    }

    #[test]
    fn defaults_derive_from_vcpus() {
        let c = parse_args(["workload=kernbench", "vcpus=3"]).unwrap();
        let WorkloadConfig::Kernbench(k) = c else { panic!() };
        assert_eq!(k.jobs, 12);
        assert_eq!(k.reps, 2);
        let c = parse_args(["workload=pgbench", "vcpus=3", "profile=full"]).unwrap();
        let WorkloadConfig::Pgbench(p) = c else { panic!() };
        assert_eq!((p.clients, p.scale, p.reps), (3, 10, 3));
    }

    #[test]
    fn what_the_host_asks_is_what_the_guest_parses() {
        let words =
            |a: &WorkloadArgs| -> Vec<String> { a.words().iter().map(|(k, v)| format!("{k}={v}")).collect() };
        let k = WorkloadArgs::Kernbench {
            scale: 3,
            reps: 1,
            vcpus: 4,
        };
        let WorkloadConfig::Kernbench(c) = parse_args(words(&k)).unwrap() else {
            panic!()
        };
        assert_eq!((c.scale, c.reps, c.jobs), (3, 1, 16));
        let p = WorkloadArgs::Pgbench {
            scale: 1,
            clients: 8,
            duration_s: 2.5,
            reps: 1,
            vcpus: 2,
        };
        let WorkloadConfig::Pgbench(c) = parse_args(words(&p)).unwrap() else {
            panic!()
        };
        assert_eq!((c.scale, c.clients, c.reps), (1, 8, 1));
        assert_eq!(c.limit, RunLimit::Duration(Duration::from_secs_f64(2.5)));
        let h = WorkloadArgs::Cpuhog { threads: 2, vcpus: 2 };
        let WorkloadConfig::Cpuhog(c) = parse_args(words(&h)).unwrap() else {
            panic!()
        };
        assert_eq!((c.threads, c.duration), (2, None));
    }
}
