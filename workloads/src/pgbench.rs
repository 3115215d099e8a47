//! pgbench-like workload: pgbench's built-in TPC-B-like script against in-memory tables.
//!
//! Tables are initialised as `pgbench -i` does (per scale unit 1 branch, 10 tellers, 100,000
//! accounts, balances 0, empty history). Each client runs the script:
//!
//! ```text
//! \set aid random(1, 100000 * :scale)    \set bid random(1, 1 * :scale)
//! \set tid random(1, 10 * :scale)        \set delta random(-5000, 5000)
//! BEGIN;
//! UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
//! SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
//! UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
//! UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
//! INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (...);
//! END;
//! ```
//!
//! Each statement is formatted as text and parsed back by the "backend", as it would be sent over
//! a socket; the per-statement buffer is a fresh heap allocation, standing in for the socket
//! buffers a real client/server pair allocates in the kernel. Rows are `std::sync::Mutex`es held
//! until commit (two-phase locking, as PostgreSQL holds row locks), taken in table order
//! (account, teller, branch) by every client, so there is no deadlock. Commit appends a record
//! to one shared write-ahead log under one lock. So the contended locks are the hot rows
//! (at scale 1 every transaction updates the single branch) and the log, both futex-based
//! mutexes whose slow paths run in the guest kernel.
//!
//! History rows go to a per-client partition that folds full pages into a (rows, sum) archive,
//! keeping memory bounded on long runs while keeping every delta in the invariant.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::error::WorkloadError;
use crate::hash::Fnv64;
use crate::params::{PgbenchConfig, RunLimit, WorkloadKind};
use crate::report::{
    new_latency_histogram, run_reported, LatencySummary, MeanSd, Observer, RepContext, Slots,
};
use crate::rng::SplitMix64;

pub const BRANCHES_PER_SCALE: usize = 1;
pub const TELLERS_PER_SCALE: usize = 10;
pub const ACCOUNTS_PER_SCALE: usize = 100_000;
/// pgbench's delta range, inclusive.
pub const DELTA_RANGE: (i64, i64) = (-5000, 5000);

/// History rows a client keeps before folding them into its archive.
const HISTORY_PAGE_ROWS: usize = 1 << 14;
/// Size of the write-ahead log ring (records wrap around: only the insert path is modelled).
const WAL_BYTES: usize = 1 << 20;
/// Size of one WAL record.
const WAL_RECORD: usize = 40;
/// Seed for the clients' random streams (pgbench seeds randomly; fixed here for repeatable runs).
const PG_SEED: u64 = 0x7067_6265_6E63_6821;

/// The invariant's four sums, kept in the summary as the evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    pub accounts: i64,
    pub tellers: i64,
    pub branches: i64,
    pub history: i64,
    pub history_rows: u64,
}

/// One repetition's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PgbenchRep {
    pub rep: u32,
    pub transactions: u64,
    /// Run time without setup: clients released to last client done.
    pub elapsed_s: f64,
    /// Table initialisation time (not in `tps`).
    pub setup_s: f64,
    pub tps: f64,
    pub latency: LatencySummary,
    pub balances: Balances,
}

/// Result of a pgbench run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PgbenchSummary {
    pub config: PgbenchConfig,
    pub branches: usize,
    pub tellers: usize,
    pub accounts: usize,
    pub transactions: u64,
    pub tps: MeanSd,
    /// Per-transaction latency over all repetitions.
    pub latency: LatencySummary,
    pub reps: Vec<PgbenchRep>,
}

impl PgbenchSummary {
    pub fn line(&self) -> String {
        let sum = self.reps.last().map_or(0, |r| r.balances.history);
        format!(
            "pgbench: reps={} scale={} clients={} tps mean={:.1} sd={:.1} txns={} \
             lat_us p50={} p99={} max={} invariant=ok sum={}",
            self.reps.len(),
            self.config.scale,
            self.config.clients,
            self.tps.mean,
            self.tps.sd,
            self.transactions,
            self.latency.p50_us,
            self.latency.p99_us,
            self.latency.max_us,
            sum,
        )
    }
}

struct Db {
    accounts: Box<[Mutex<i64>]>,
    tellers: Box<[Mutex<i64>]>,
    branches: Box<[Mutex<i64>]>,
    wal: Mutex<Wal>,
}

struct Wal {
    ring: Box<[u8]>,
    lsn: u64,
}

impl Wal {
    /// Appends a record; returns the LSN after it.
    fn insert(&mut self, rec: &[u8]) -> u64 {
        for (i, b) in rec.iter().enumerate() {
            let at = (self.lsn as usize + i) % self.ring.len();
            self.ring[at] = *b;
        }
        self.lsn += rec.len() as u64;
        self.lsn
    }
}

fn rows(n: usize) -> Box<[Mutex<i64>]> {
    (0..n).map(|_| Mutex::new(0)).collect()
}

/// Locks a row; a poisoned row only means another client panicked, which is reported when that
/// client is joined.
fn lock(m: &Mutex<i64>) -> MutexGuard<'_, i64> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Db {
    fn new(scale: usize) -> Self {
        Self {
            accounts: rows(ACCOUNTS_PER_SCALE * scale),
            tellers: rows(TELLERS_PER_SCALE * scale),
            branches: rows(BRANCHES_PER_SCALE * scale),
            wal: Mutex::new(Wal {
                ring: vec![0; WAL_BYTES].into_boxed_slice(),
                lsn: 0,
            }),
        }
    }

    fn sum(rows: &[Mutex<i64>]) -> i64 {
        rows.iter().map(|r| *lock(r)).sum()
    }
}

#[derive(Debug, Clone, Copy)]
struct HistoryRow {
    tid: u32,
    bid: u32,
    aid: u32,
    delta: i32,
    mtime_us: u64,
}

/// A client's history partition.
struct History {
    page: Vec<HistoryRow>,
    archived_rows: u64,
    archived_delta: i64,
}

impl History {
    fn new() -> Self {
        Self {
            page: Vec::with_capacity(HISTORY_PAGE_ROWS),
            archived_rows: 0,
            archived_delta: 0,
        }
    }

    fn insert(&mut self, row: HistoryRow) {
        if self.page.len() == HISTORY_PAGE_ROWS {
            self.archived_rows += self.page.len() as u64;
            self.archived_delta += self.page.iter().map(|r| i64::from(r.delta)).sum::<i64>();
            self.page.clear();
        }
        self.page.push(row);
    }

    fn rows(&self) -> u64 {
        self.archived_rows + self.page.len() as u64
    }

    fn delta_sum(&self) -> i64 {
        self.archived_delta + self.page.iter().map(|r| i64::from(r.delta)).sum::<i64>()
    }
}

/// A parsed statement of the script.
#[derive(Debug, PartialEq)]
enum Stmt {
    Begin,
    UpdateAccount {
        aid: i64,
        delta: i64,
    },
    SelectAccount {
        aid: i64,
    },
    UpdateTeller {
        tid: i64,
        delta: i64,
    },
    UpdateBranch {
        bid: i64,
        delta: i64,
    },
    InsertHistory {
        tid: i64,
        bid: i64,
        aid: i64,
        delta: i64,
    },
    End,
}

fn sql_err(sql: &str, msg: &str) -> WorkloadError {
    WorkloadError::Sql {
        statement: sql.to_string(),
        msg: msg.to_string(),
    }
}

/// The backend's parser for the six statement shapes of the script.
fn parse_sql(sql: &str) -> Result<Stmt, WorkloadError> {
    let words: Vec<&str> = sql
        .split(|c: char| c.is_ascii_whitespace() || matches!(c, '(' | ')' | ',' | ';'))
        .filter(|w| !w.is_empty())
        .collect();
    let nums: Vec<i64> = words.iter().filter_map(|w| w.parse::<i64>().ok()).collect();
    let want = |n: usize| {
        if nums.len() == n {
            Ok(())
        } else {
            Err(sql_err(sql, "wrong number of values"))
        }
    };
    match words.as_slice() {
        ["BEGIN"] => Ok(Stmt::Begin),
        ["END"] => Ok(Stmt::End),
        ["UPDATE", table, "SET", ..] => {
            want(2)?;
            let (delta, id) = (nums[0], nums[1]);
            match *table {
                "pgbench_accounts" => Ok(Stmt::UpdateAccount { aid: id, delta }),
                "pgbench_tellers" => Ok(Stmt::UpdateTeller { tid: id, delta }),
                "pgbench_branches" => Ok(Stmt::UpdateBranch { bid: id, delta }),
                _ => Err(sql_err(sql, "unknown table")),
            }
        }
        ["SELECT", "abalance", "FROM", "pgbench_accounts", ..] => {
            want(1)?;
            Ok(Stmt::SelectAccount { aid: nums[0] })
        }
        ["INSERT", "INTO", "pgbench_history", ..] => {
            want(4)?;
            Ok(Stmt::InsertHistory {
                tid: nums[0],
                bid: nums[1],
                aid: nums[2],
                delta: nums[3],
            })
        }
        _ => Err(sql_err(sql, "unsupported statement")),
    }
}

/// An open transaction: the row locks it holds (until commit) and its pending history row.
struct Tx<'db> {
    account: Option<MutexGuard<'db, i64>>,
    teller: Option<MutexGuard<'db, i64>>,
    branch: Option<MutexGuard<'db, i64>>,
    history: Option<HistoryRow>,
}

/// A row index from a 1-based key, checked against the table size.
fn row<'a>(table: &'a [Mutex<i64>], key: i64, sql: &str) -> Result<&'a Mutex<i64>, WorkloadError> {
    usize::try_from(key - 1)
        .ok()
        .and_then(|i| table.get(i))
        .ok_or_else(|| sql_err(sql, "key out of range"))
}

struct Client<'a> {
    db: &'a Db,
    id: u64,
    rng: SplitMix64,
    history: History,
    /// Sum of the SELECTed balances, so the read is not optimised away.
    selected: i64,
    txns: u64,
    rep_start: Instant,
}

impl<'a> Client<'a> {
    fn transaction(&mut self) -> Result<(), WorkloadError> {
        let scale_accounts = self.db.accounts.len() as i64;
        let aid = self.rng.range_i64(1, scale_accounts);
        let bid = self.rng.range_i64(1, self.db.branches.len() as i64);
        let tid = self.rng.range_i64(1, self.db.tellers.len() as i64);
        let delta = self.rng.range_i64(DELTA_RANGE.0, DELTA_RANGE.1);
        let script = [
            "BEGIN;".to_string(),
            format!("UPDATE pgbench_accounts SET abalance = abalance + {delta} WHERE aid = {aid};"),
            format!("SELECT abalance FROM pgbench_accounts WHERE aid = {aid};"),
            format!("UPDATE pgbench_tellers SET tbalance = tbalance + {delta} WHERE tid = {tid};"),
            format!("UPDATE pgbench_branches SET bbalance = bbalance + {delta} WHERE bid = {bid};"),
            format!(
                "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) \
                 VALUES ({tid}, {bid}, {aid}, {delta}, CURRENT_TIMESTAMP);"
            ),
            "END;".to_string(),
        ];
        let db = self.db;
        let mut tx = Tx {
            account: None,
            teller: None,
            branch: None,
            history: None,
        };
        for sql in &script {
            match parse_sql(sql)? {
                Stmt::Begin => {}
                Stmt::UpdateAccount { aid, delta } => {
                    let mut g = lock(row(&db.accounts, aid, sql)?);
                    *g += delta;
                    tx.account = Some(g);
                }
                Stmt::SelectAccount { .. } => {
                    // The row is locked by this transaction already (same aid as the update).
                    let g = tx
                        .account
                        .as_ref()
                        .ok_or_else(|| sql_err(sql, "row not locked"))?;
                    self.selected = self.selected.wrapping_add(**g);
                }
                Stmt::UpdateTeller { tid, delta } => {
                    let mut g = lock(row(&db.tellers, tid, sql)?);
                    *g += delta;
                    tx.teller = Some(g);
                }
                Stmt::UpdateBranch { bid, delta } => {
                    let mut g = lock(row(&db.branches, bid, sql)?);
                    *g += delta;
                    tx.branch = Some(g);
                }
                Stmt::InsertHistory { tid, bid, aid, delta } => {
                    tx.history = Some(HistoryRow {
                        tid: tid as u32,
                        bid: bid as u32,
                        aid: aid as u32,
                        delta: delta as i32,
                        mtime_us: self.rep_start.elapsed().as_micros() as u64,
                    });
                }
                Stmt::End => self.commit(&mut tx),
            }
        }
        Ok(())
    }

    /// Writes the commit record to the shared log, then releases the row locks.
    fn commit(&mut self, tx: &mut Tx<'_>) {
        let xid = (self.id << 40) | self.txns;
        let mut rec = [0u8; WAL_RECORD];
        rec[0..8].copy_from_slice(&xid.to_le_bytes());
        if let Some(h) = &tx.history {
            rec[8..12].copy_from_slice(&h.aid.to_le_bytes());
            rec[12..16].copy_from_slice(&h.bid.to_le_bytes());
            rec[16..20].copy_from_slice(&h.tid.to_le_bytes());
            rec[20..24].copy_from_slice(&h.delta.to_le_bytes());
            rec[24..32].copy_from_slice(&h.mtime_us.to_le_bytes());
        }
        let crc = Fnv64::new().bytes(&rec[..32]).finish();
        rec[32..40].copy_from_slice(&crc.to_le_bytes());
        self.db.wal.lock().unwrap_or_else(|e| e.into_inner()).insert(&rec);
        // Release in reverse acquisition order, as a lock manager would.
        tx.branch = None;
        tx.teller = None;
        tx.account = None;
        if let Some(h) = tx.history.take() {
            self.history.insert(h);
        }
        self.txns += 1;
    }
}

/// Runs pgbench. Intervals go to `observer`; `observer.done` is left to the caller.
pub fn run(cfg: &PgbenchConfig, observer: &mut dyn Observer) -> Result<PgbenchSummary, WorkloadError> {
    cfg.validate()?;
    let stop = AtomicBool::new(false);
    let mut reps = Vec::new();
    let mut all = new_latency_histogram()?;
    for rep in 1..=cfg.reps {
        if rep > 1 {
            // Start where repetition 1 started: it spawned the reporter and the
            // clients (see `placement`).
            crate::placement::align(1 + cfg.clients);
        }
        let (r, histogram) = run_rep(cfg, rep, observer, &stop)?;
        let _ = all.add(&histogram);
        reps.push(r);
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    let scale = cfg.scale as usize;
    let tps: Vec<f64> = reps.iter().map(|r| r.tps).collect();
    Ok(PgbenchSummary {
        config: cfg.clone(),
        branches: BRANCHES_PER_SCALE * scale,
        tellers: TELLERS_PER_SCALE * scale,
        accounts: ACCOUNTS_PER_SCALE * scale,
        transactions: reps.iter().map(|r| r.transactions).sum(),
        tps: MeanSd::of(&tps),
        latency: LatencySummary::of(&all),
        reps,
    })
}

fn run_rep(
    cfg: &PgbenchConfig,
    rep: u32,
    observer: &mut dyn Observer,
    stop: &AtomicBool,
) -> Result<(PgbenchRep, Histogram<u64>), WorkloadError> {
    let setup = Instant::now();
    let db = Db::new(cfg.scale as usize);
    let setup_s = setup.elapsed().as_secs_f64();

    let ctx = RepContext {
        kind: WorkloadKind::Pgbench,
        rep,
        recorders: cfg.clients,
        interval: cfg.interval,
        observer,
        stop,
    };
    let (ran, totals) = run_reported(ctx, |slots| run_clients(cfg, rep, &db, slots, stop))?;
    let (clients, elapsed) = ran?;

    let transactions: u64 = clients.iter().map(|c| c.0).sum();
    let balances = Balances {
        accounts: Db::sum(&db.accounts),
        tellers: Db::sum(&db.tellers),
        branches: Db::sum(&db.branches),
        history: clients.iter().map(|c| c.1.delta_sum()).sum(),
        history_rows: clients.iter().map(|c| c.1.rows()).sum(),
    };
    check_invariant(rep, &balances, transactions, totals.ops)?;
    let elapsed_s = elapsed.as_secs_f64();
    let rep = PgbenchRep {
        rep,
        transactions,
        elapsed_s,
        setup_s,
        tps: if elapsed_s > 0.0 {
            transactions as f64 / elapsed_s
        } else {
            0.0
        },
        latency: LatencySummary::of(&totals.histogram),
        balances,
    };
    Ok((rep, totals.histogram))
}

/// pgbench's consistency check: sum(abalance) = sum(tbalance) = sum(bbalance) =
/// sum(history.delta), with one history row per committed transaction (and per recorded
/// latency, so the observer saw every transaction).
fn check_invariant(rep: u32, b: &Balances, transactions: u64, recorded: u64) -> Result<(), WorkloadError> {
    let holds = b.accounts == b.tellers
        && b.tellers == b.branches
        && b.branches == b.history
        && b.history_rows == transactions
        && recorded == transactions;
    if holds {
        return Ok(());
    }
    Err(WorkloadError::InvariantViolated {
        rep,
        accounts: b.accounts,
        tellers: b.tellers,
        branches: b.branches,
        history: b.history,
        history_rows: b.history_rows,
        transactions,
    })
}

/// Starts the clients behind a gate, releases them together and waits for all. Returns each
/// client's (transactions, history) and the run time from release to the last client's end.
fn run_clients(
    cfg: &PgbenchConfig,
    rep: u32,
    db: &Db,
    slots: &Slots,
    stop: &AtomicBool,
) -> Result<(Vec<(u64, History)>, Duration), WorkloadError> {
    // The start line: clients block on the read side until the main thread has stored the
    // common start time and dropped the write guard; `None` tells them not to run. The deadline
    // is common too (as pgbench -T's): Hermit does not time-slice equal-priority threads on a
    // vCPU, so clients may first run long after the start, and per-client deadlines would
    // stretch the run.
    let gate: RwLock<Option<Instant>> = RwLock::new(None);
    let abort = AtomicBool::new(false);
    thread::scope(|s| {
        let mut closed = gate.write().unwrap_or_else(|e| e.into_inner());
        let mut handles = Vec::with_capacity(cfg.clients);
        let mut spawn_err = None;
        for c in 0..cfg.clients {
            let (gate, abort) = (&gate, &abort);
            let rec = slots.recorder(c);
            let spawned = thread::Builder::new().spawn_scoped(s, move || {
                let Some(start) = *gate.read().unwrap_or_else(|e| e.into_inner()) else {
                    return Ok((0, History::new()));
                };
                let mut client = Client {
                    db,
                    id: c as u64,
                    rng: SplitMix64::for_stream(PG_SEED ^ u64::from(rep), c as u64),
                    history: History::new(),
                    selected: 0,
                    txns: 0,
                    rep_start: start,
                };
                let (max_txns, deadline) = match cfg.limit {
                    RunLimit::Transactions(n) => (n, None),
                    RunLimit::Duration(d) => (u64::MAX, Some(start + d)),
                };
                let mut t = Instant::now();
                // Relaxed loads: stop/abort are polled flags; results travel through join.
                while client.txns < max_txns && !abort.load(Ordering::Relaxed) {
                    if let Some(deadline) = deadline {
                        if t >= deadline || stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                    if let Err(e) = client.transaction() {
                        abort.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                    let now = Instant::now();
                    rec.record(now - t, 1);
                    t = now;
                }
                std::hint::black_box(client.selected);
                Ok((client.txns, client.history))
            });
            match spawned {
                Ok(h) => handles.push(h),
                Err(source) => {
                    abort.store(true, Ordering::Relaxed);
                    spawn_err = Some(WorkloadError::Spawn {
                        what: "pgbench client",
                        source,
                    });
                    break;
                }
            }
        }
        let start = Instant::now();
        if spawn_err.is_none() {
            *closed = Some(start);
        }
        drop(closed);
        let mut results = Vec::with_capacity(handles.len());
        let mut first_err = spawn_err;
        for h in handles {
            match h.join() {
                Ok(Ok(r)) => results.push(r),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(WorkloadError::ThreadPanicked {
                        what: "pgbench client",
                    });
                }
            }
        }
        let elapsed = start.elapsed();
        first_err.map_or(Ok((results, elapsed)), Err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_script() {
        assert_eq!(
            parse_sql("UPDATE pgbench_accounts SET abalance = abalance + -17 WHERE aid = 5;").unwrap(),
            Stmt::UpdateAccount { aid: 5, delta: -17 }
        );
        assert_eq!(
            parse_sql(
                "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 9, 12, CURRENT_TIMESTAMP);"
            )
            .unwrap(),
            Stmt::InsertHistory {
                tid: 3,
                bid: 1,
                aid: 9,
                delta: 12
            }
        );
        assert!(parse_sql("DROP TABLE pgbench_accounts;").is_err());
    }

    #[test]
    fn history_folds_without_losing_deltas() {
        let mut h = History::new();
        for i in 0..(HISTORY_PAGE_ROWS * 2 + 5) {
            h.insert(HistoryRow {
                tid: 1,
                bid: 1,
                aid: 1,
                delta: (i % 7) as i32 - 3,
                mtime_us: 0,
            });
        }
        let expect: i64 = (0..(HISTORY_PAGE_ROWS * 2 + 5)).map(|i| (i % 7) as i64 - 3).sum();
        assert_eq!(h.rows(), (HISTORY_PAGE_ROWS * 2 + 5) as u64);
        assert_eq!(h.delta_sum(), expect);
    }

    #[test]
    fn invariant_violation_is_an_error() {
        let good = Balances {
            accounts: 7,
            tellers: 7,
            branches: 7,
            history: 7,
            history_rows: 2,
        };
        assert!(check_invariant(1, &good, 2, 2).is_ok());
        let bad = Balances { tellers: 8, ..good };
        let e = check_invariant(3, &bad, 2, 2).unwrap_err().to_string();
        assert!(e.contains("invariant violated in rep 3"), "{e}");
        assert!(e.contains("sum(tbalance)=8"), "{e}");
        assert!(check_invariant(1, &good, 3, 3).is_err(), "a lost history row");
        assert!(
            check_invariant(1, &good, 2, 1).is_err(),
            "an unrecorded transaction"
        );
    }

    #[test]
    fn wal_wraps() {
        let mut w = Wal {
            ring: vec![0; 10].into_boxed_slice(),
            lsn: 0,
        };
        assert_eq!(w.insert(&[1; 8]), 8);
        assert_eq!(w.insert(&[2; 4]), 12);
        assert_eq!(&w.ring[..], &[2, 2, 1, 1, 1, 1, 1, 1, 2, 2]);
    }
}
