//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use pvbench_workloads::{IntervalReport, MeasureEdge, Observer, RunSummary};

/// A per-test root directory, removed when dropped.
pub struct TestRoot(PathBuf);

impl TestRoot {
    pub fn new(name: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "pvbench-wl-test-{}-{name}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        std::fs::read_dir(&self.0).unwrap().next().is_none()
    }
}

impl Drop for TestRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Keeps what an observer is told (without the histograms' bulk, except their counts).
#[derive(Default)]
pub struct Recording {
    pub intervals: Vec<Seen>,
    /// Measure edges and intervals (`None`: an interval of the rep), in the order told.
    pub order: Vec<(u32, Option<MeasureEdge>)>,
    pub done: Option<RunSummary>,
    /// Ask to stop after this many intervals.
    pub stop_after: Option<usize>,
}

pub struct Seen {
    pub rep: u32,
    pub seq: u64,
    pub ops: u64,
    pub per_thread_ops: Vec<u64>,
    pub histogram_count: u64,
    pub span_s: f64,
    pub last: bool,
}

impl Observer for Recording {
    fn interval(&mut self, r: IntervalReport) {
        self.order.push((r.rep, None));
        self.intervals.push(Seen {
            rep: r.rep,
            seq: r.seq,
            ops: r.ops,
            per_thread_ops: r.per_thread_ops,
            histogram_count: r.histogram.len(),
            span_s: r.span.as_secs_f64(),
            last: r.last,
        });
    }

    fn done(&mut self, summary: &RunSummary) {
        self.done = Some(summary.clone());
    }

    fn measure(&mut self, edge: MeasureEdge, rep: u32) {
        self.order.push((rep, Some(edge)));
    }

    fn should_stop(&mut self) -> bool {
        self.stop_after.is_some_and(|n| self.intervals.len() >= n)
    }
}

impl Recording {
    pub fn ops_of_rep(&self, rep: u32) -> u64 {
        self.intervals
            .iter()
            .filter(|i| i.rep == rep)
            .map(|i| i.ops)
            .sum()
    }

    /// Each repetition's reports are numbered 0.. and end with exactly one `last`; its measure
    /// edges bracket its reports, the end coming just before the last one.
    pub fn assert_well_formed(&self, reps: u32) {
        let mut expected = Vec::new();
        for rep in 1..=reps {
            let n = self.intervals.iter().filter(|i| i.rep == rep).count();
            expected.push((rep, Some(MeasureEdge::Begins)));
            expected.extend(std::iter::repeat_n((rep, None), n.saturating_sub(1)));
            expected.push((rep, Some(MeasureEdge::Ends)));
            expected.push((rep, None));
        }
        assert_eq!(self.order, expected, "measure edges and intervals out of order");
        for rep in 1..=reps {
            let of_rep: Vec<&Seen> = self.intervals.iter().filter(|i| i.rep == rep).collect();
            assert!(!of_rep.is_empty(), "no reports for rep {rep}");
            for (k, i) in of_rep.iter().enumerate() {
                assert_eq!(i.seq, k as u64);
                assert_eq!(i.last, k + 1 == of_rep.len());
                assert_eq!(i.per_thread_ops.iter().sum::<u64>(), i.ops);
            }
        }
    }
}
