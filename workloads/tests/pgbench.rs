//! pgbench: the TPC-B invariant must hold after concurrent runs.

mod common;

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use common::Recording;
use pvbench_workloads::pgbench::{self, ACCOUNTS_PER_SCALE};
use pvbench_workloads::{run, NullObserver, PgbenchConfig, RunLimit, RunSummary, WorkloadConfig};

fn config(clients: usize, limit: RunLimit, reps: u32) -> PgbenchConfig {
    PgbenchConfig {
        scale: 1,
        clients,
        reps,
        limit,
        interval: Duration::from_millis(20),
    }
}

#[test]
fn invariant_holds_with_many_clients() {
    for clients in [1, 7, 32] {
        let s = pgbench::run(
            &config(clients, RunLimit::Transactions(300), 2),
            &mut NullObserver,
        )
        .unwrap();
        assert_eq!(s.reps.len(), 2);
        assert_eq!(s.accounts, ACCOUNTS_PER_SCALE);
        assert_eq!((s.branches, s.tellers), (1, 10));
        for r in &s.reps {
            assert_eq!(r.transactions, clients as u64 * 300);
            let b = r.balances;
            assert_eq!(
                (b.accounts, b.tellers, b.branches),
                (b.history, b.history, b.history)
            );
            assert_eq!(b.history_rows, r.transactions);
            assert!(r.tps > 0.0);
        }
        assert_eq!(s.transactions, 2 * clients as u64 * 300);
    }
}

/// Fails a run that has not ended after this long: a hang guard, not a
/// measure of speed.
const WATCHDOG: Duration = Duration::from_secs(60);

#[test]
fn duration_mode_reports_every_transaction() {
    const LIMIT: Duration = Duration::from_millis(300);
    let cfg = config(6, RunLimit::Duration(LIMIT), 1);
    let mut rec = Recording::default();
    let summary = run(&WorkloadConfig::Pgbench(cfg), &mut rec).unwrap();
    let RunSummary::Pgbench(s) = &summary else {
        panic!("wrong summary kind")
    };
    rec.assert_well_formed(1);
    assert!(s.transactions > 0);
    assert_eq!(rec.ops_of_rep(1), s.transactions);
    let recorded: u64 = rec.intervals.iter().map(|i| i.histogram_count).sum();
    assert_eq!(recorded, s.transactions);
    // Every transaction arrived in a report and the final one closed the run.
    // (How many periodic reports came depends on the reporter thread getting
    // a CPU during the 300 ms, which a loaded machine does not promise.)
    assert!(rec.intervals.last().is_some_and(|i| i.last), "no final report");
    // The run ended at its deadline: `elapsed_s` is the workload's own clock
    // from the clients' release to the last one's end, and a client stops
    // only once that release time plus the limit has passed. So this holds
    // however fast or slow the machine is, and fails only for a run that
    // stopped early.
    let r = &s.reps[0];
    assert!(
        r.elapsed_s >= LIMIT.as_secs_f64(),
        "the run ended before its duration: {} s",
        r.elapsed_s
    );
    assert!(summary.line().contains("invariant=ok"), "{}", summary.line());
}

#[test]
fn observer_can_end_a_timed_run() {
    const LIMIT: Duration = Duration::from_secs(3600);
    let cfg = config(2, RunLimit::Duration(LIMIT), 1);
    let mut rec = Recording {
        stop_after: Some(2),
        ..Recording::default()
    };
    // On a thread, so that a stop that does not work fails at the watchdog
    // rather than after the hour the run is configured for.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let summary = run(&WorkloadConfig::Pgbench(cfg), &mut rec);
        let _ = tx.send((summary, rec));
    });
    let (summary, rec) = match rx.recv_timeout(WATCHDOG) {
        Ok(done) => done,
        Err(RecvTimeoutError::Timeout) => {
            panic!("the run is still going after {WATCHDOG:?}: the observer's stop did not end it")
        }
        Err(RecvTimeoutError::Disconnected) => panic!("the run panicked"),
    };
    let RunSummary::Pgbench(s) = summary.unwrap() else {
        panic!("wrong summary kind")
    };
    // Nothing but the stop can end this run before its deadline, and the
    // stop is asked for after two reports, so there are two reports, then the
    // final one, and the run (by the workload's clock) fell short of its limit.
    assert!(rec.intervals.len() >= 3, "{} reports", rec.intervals.len());
    assert!(rec.intervals.last().is_some_and(|i| i.last));
    assert!(
        s.reps[0].elapsed_s < LIMIT.as_secs_f64(),
        "{} s",
        s.reps[0].elapsed_s
    );
    assert_eq!(rec.ops_of_rep(1), s.transactions);
}
