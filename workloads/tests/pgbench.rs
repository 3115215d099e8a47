//! pgbench: the TPC-B invariant must hold after concurrent runs.

mod common;

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

#[test]
fn duration_mode_reports_every_transaction() {
    let cfg = config(6, RunLimit::Duration(Duration::from_millis(300)), 1);
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
    assert!(rec.intervals.len() >= 2, "a 300 ms run with 20 ms intervals");
    let r = &s.reps[0];
    assert!(r.elapsed_s >= 0.3, "ran for the duration: {}", r.elapsed_s);
    assert!(summary.line().contains("invariant=ok"), "{}", summary.line());
}

#[test]
fn observer_can_end_a_timed_run() {
    let cfg = config(2, RunLimit::Duration(Duration::from_secs(3600)), 1);
    let mut rec = Recording {
        stop_after: Some(2),
        ..Recording::default()
    };
    let summary = run(&WorkloadConfig::Pgbench(cfg), &mut rec).unwrap();
    let RunSummary::Pgbench(s) = summary else {
        panic!("wrong summary kind")
    };
    assert!(s.reps[0].elapsed_s < 60.0);
    assert_eq!(rec.ops_of_rep(1), s.transactions);
}
