//! cpuhog: every hog runs and its iteration counts add up.

mod common;

use std::time::Duration;

use common::Recording;
use pvbench_workloads::cpuhog::{self, BATCH};
use pvbench_workloads::{CpuhogConfig, NullObserver};

#[test]
fn hogs_report_plausible_counts() {
    let cfg = CpuhogConfig {
        threads: 2,
        duration: Some(Duration::from_millis(400)),
        interval: Duration::from_millis(50),
    };
    let mut rec = Recording::default();
    let s = cpuhog::run(&cfg, &mut rec).unwrap();
    assert!(s.elapsed_s >= 0.4);
    assert_eq!(s.per_thread_iters_per_s.len(), 2);
    // Every hog completes at least one batch before it looks at the clock, so each rate is
    // positive and bounded by what one core can do (no timing assumptions beyond that).
    for rate in &s.per_thread_iters_per_s {
        assert!(*rate > 0.0 && *rate < 1e11, "{rate}");
    }
    assert_eq!(s.iterations % BATCH, 0);
    assert_eq!(s.iterations, BATCH * s.batch_latency.count);
    rec.assert_well_formed(1);
    assert_eq!(rec.ops_of_rep(1), s.iterations);
    let per_hog: Vec<u64> = (0..2)
        .map(|t| rec.intervals.iter().map(|i| i.per_thread_ops[t]).sum())
        .collect();
    assert!(per_hog.iter().all(|&n| n >= BATCH), "{per_hog:?}");
    assert!(s.line().starts_with("cpuhog: threads=2 "), "{}", s.line());
}

#[test]
fn forever_hog_stops_when_the_observer_asks() {
    let cfg = CpuhogConfig {
        threads: 1,
        duration: None,
        interval: Duration::from_millis(20),
    };
    let mut rec = Recording {
        stop_after: Some(3),
        ..Recording::default()
    };
    let s = cpuhog::run(&cfg, &mut rec).unwrap();
    assert!(s.iterations > 0);
    assert!(rec.intervals.len() >= 3);
    // NullObserver never stops a bounded hog early either.
    let short = CpuhogConfig {
        duration: Some(Duration::from_millis(30)),
        ..cfg
    };
    assert!(cpuhog::run(&short, &mut NullObserver).unwrap().iterations > 0);
}
