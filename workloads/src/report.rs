//! Progress reporting: per-thread latency recording, a reporting thread, and the [`Observer`] sink.
//!
//! Each worker thread records into its own slot (a histogram and an op count behind a mutex that
//! only that worker and the reporter ever take), so recording adds no lock contention that is not
//! the workload's own: a shared histogram behind one mutex would itself be a hot lock in the guest.
//! Every interval the reporter swaps each slot's histogram for an empty one (a pointer swap under
//! the slot lock), merges the taken ones outside any lock and hands the result to the observer.

use std::mem;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::error::WorkloadError;
use crate::params::WorkloadKind;
use crate::RunSummary;

/// Latencies are recorded in microseconds, from 1 us ...
pub const LATENCY_LOWEST_US: u64 = 1;
/// ... to 2^32 us (~71 min): overcommitted base-lock runs can stall for minutes; longer values
/// saturate at this bound instead of being lost.
pub const LATENCY_HIGHEST_US: u64 = 1 << 32;
/// Three significant digits, HDR's usual precision (0.1 % value error).
pub const LATENCY_SIGFIG: u8 = 3;

/// An empty histogram with the crate's latency bounds; all histograms handed out are compatible
/// with it (and with each other) for `add`.
pub fn new_latency_histogram() -> Result<Histogram<u64>, WorkloadError> {
    Histogram::new_with_bounds(LATENCY_LOWEST_US, LATENCY_HIGHEST_US, LATENCY_SIGFIG)
        .map_err(|e| WorkloadError::Histogram(format!("{e:?}")))
}

/// What happened during one reporting interval of one repetition.
#[derive(Debug, Clone)]
pub struct IntervalReport {
    pub workload: WorkloadKind,
    /// Repetition, from 1.
    pub rep: u32,
    /// Interval number within the repetition, from 0.
    pub seq: u64,
    /// Start of the interval, measured from the start of the repetition.
    pub start: Duration,
    /// Length of the interval.
    pub span: Duration,
    /// Operations completed in the interval: jobs (kernbench), transactions (pgbench), loop
    /// iterations (cpuhog). Over a repetition these sum exactly to its total.
    pub ops: u64,
    /// `ops` per recording thread (kernbench: per job slot, then the link step; pgbench: per
    /// client; cpuhog: per hog).
    pub per_thread_ops: Vec<u64>,
    /// Latencies completed in the interval, in microseconds: per job, per transaction, or (cpuhog)
    /// per batch of [`crate::cpuhog::BATCH`] iterations.
    pub histogram: Histogram<u64>,
    /// The repetition's final report (its workers have finished).
    pub last: bool,
}

/// The sink for progress and results (the guest streams these to the host).
///
/// `interval` runs on the reporting thread while the workload runs, so it must be cheap and must
/// never block for long (no synchronous network round trips: queue the data and return). A slow
/// observer does not stall the workers, but it delays later reports and takes CPU from the
/// measured workload.
pub trait Observer: Send {
    /// Called about every `interval_ms`, and once more at the end of each repetition.
    fn interval(&mut self, report: IntervalReport);

    /// Called once, on the calling thread, when the run succeeded.
    fn done(&mut self, _summary: &RunSummary) {}

    /// Called just before repetition `rep`'s timed work begins and, on the reporting thread, as
    /// soon as it has ended (before its final interval): what lies between is what was measured.
    /// The guest marks both on its console, so the host reads CPU over the measured work only.
    fn measure(&mut self, _edge: MeasureEdge, _rep: u32) {}

    /// Polled after each interval; returning true ends time-bound work early (cpuhog, pgbench
    /// with a duration). Counted work (kernbench, pgbench `transactions`) always completes.
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// Which end of a repetition's timed work [`Observer::measure`] is told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeasureEdge {
    Begins,
    Ends,
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullObserver;

impl Observer for NullObserver {
    fn interval(&mut self, _report: IntervalReport) {}
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min_us: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self {
                count: 0,
                min_us: 0,
                mean_us: 0.0,
                p50_us: 0,
                p90_us: 0,
                p99_us: 0,
                p999_us: 0,
                max_us: 0,
            };
        }
        Self {
            count: h.len(),
            min_us: h.min(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// Mean and sample standard deviation, as kernbench and ministat print them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanSd {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1); 0 for fewer than two values.
    pub sd: f64,
}

impl MeanSd {
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        if n == 0 {
            return Self {
                n,
                mean: 0.0,
                sd: 0.0,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = if n < 2 {
            0.0
        } else {
            let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
            (ss / (n - 1) as f64).sqrt()
        };
        Self { n, mean, sd }
    }
}

/// One recording thread's slot. Aligned so neighbouring slots' mutexes do not share a cache line
/// (false sharing between workers would be contention the workload does not have).
#[repr(align(128))]
struct Slot {
    data: Mutex<SlotData>,
}

struct SlotData {
    hist: Histogram<u64>,
    ops: u64,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotData> {
        // A poisoned slot only means a worker panicked mid-record; its counts are still usable
        // and the panic itself is reported when the thread is joined.
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The recording slots of one repetition, one per recording thread.
pub(crate) struct Slots {
    slots: Box<[Slot]>,
}

impl Slots {
    fn new(n: usize, template: &Histogram<u64>) -> Self {
        let slots = (0..n)
            .map(|_| Slot {
                data: Mutex::new(SlotData {
                    hist: Histogram::new_from(template),
                    ops: 0,
                }),
            })
            .collect();
        Self { slots }
    }

    /// The recorder of thread `i`. Each index must be used by one thread at a time.
    pub(crate) fn recorder(&self, i: usize) -> Recorder<'_> {
        Recorder { slot: &self.slots[i] }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Moves every slot's data into `into`; returns the ops taken. `spare` is an empty histogram
    /// that is swapped in, so no histogram is allocated while a slot lock is held.
    fn drain(&self, spare: &mut Histogram<u64>, into: &mut Histogram<u64>, per_thread: &mut [u64]) -> u64 {
        let mut ops = 0;
        for (slot, thread_ops) in self.slots.iter().zip(per_thread.iter_mut()) {
            {
                let mut d = slot.lock();
                *thread_ops = mem::take(&mut d.ops);
                if d.hist.is_empty() {
                    ops += *thread_ops;
                    continue;
                }
                mem::swap(&mut d.hist, spare);
            }
            ops += *thread_ops;
            // Same configuration on both sides, so the addition cannot run out of range.
            let _ = into.add(&*spare);
            spare.reset();
        }
        ops
    }
}

/// A worker's handle for recording completed operations.
pub(crate) struct Recorder<'a> {
    slot: &'a Slot,
}

impl Recorder<'_> {
    /// Records one latency sample covering `ops` operations.
    pub(crate) fn record(&self, latency: Duration, ops: u64) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let mut d = self.slot.lock();
        d.hist.saturating_record(us);
        d.ops += ops;
    }
}

/// What the reporter saw over a whole repetition.
pub(crate) struct RepTotals {
    pub(crate) ops: u64,
    pub(crate) per_thread_ops: Vec<u64>,
    pub(crate) histogram: Histogram<u64>,
}

/// Who a repetition reports to and how.
pub(crate) struct RepContext<'a> {
    pub(crate) kind: WorkloadKind,
    pub(crate) rep: u32,
    pub(crate) recorders: usize,
    pub(crate) interval: Duration,
    pub(crate) observer: &'a mut dyn Observer,
    /// Set when the observer asks to stop; time-bound workers poll it.
    pub(crate) stop: &'a AtomicBool,
}

/// Runs `body` (which starts and joins the workers, recording through the given slots) while a
/// reporting thread feeds the observer. Returns the body's result and the repetition's totals.
pub(crate) fn run_reported<R>(
    ctx: RepContext<'_>,
    body: impl FnOnce(&Slots) -> R,
) -> Result<(R, RepTotals), WorkloadError> {
    let template = new_latency_histogram()?;
    let slots = Slots::new(ctx.recorders, &template);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    // Before the reporter takes the observer; the thread spawn is the only unmeasured work left
    // inside the bracket.
    ctx.observer.measure(MeasureEdge::Begins, ctx.rep);
    thread::scope(|s| {
        let slots = &slots;
        let template = &template;
        let reporter = thread::Builder::new()
            .name("pvbench-reporter".into())
            .spawn_scoped(s, move || reporter_loop(ctx, slots, template, done_rx))
            .map_err(|source| WorkloadError::Spawn {
                what: "reporter",
                source,
            })?;
        let result = body(slots);
        // Dropping the sender wakes the reporter for its final drain.
        drop(done_tx);
        let totals = reporter
            .join()
            .map_err(|_| WorkloadError::ThreadPanicked { what: "reporter" })?;
        Ok((result, totals))
    })
}

fn reporter_loop(
    ctx: RepContext<'_>,
    slots: &Slots,
    template: &Histogram<u64>,
    done: mpsc::Receiver<()>,
) -> RepTotals {
    let start = Instant::now();
    let mut spare = Histogram::new_from(template);
    let mut total = Histogram::new_from(template);
    let mut total_per_thread = vec![0u64; slots.len()];
    let mut total_ops = 0u64;
    let mut last = start;
    let mut seq = 0u64;
    loop {
        let wait = (last + ctx.interval).saturating_duration_since(Instant::now());
        // Only a disconnect ends the wait early: the workers have finished.
        let finished = !matches!(done.recv_timeout(wait), Err(RecvTimeoutError::Timeout));
        let now = Instant::now();
        let mut histogram = Histogram::new_from(template);
        let mut per_thread_ops = vec![0u64; slots.len()];
        let ops = slots.drain(&mut spare, &mut histogram, &mut per_thread_ops);
        let _ = total.add(&histogram);
        total_ops += ops;
        for (t, n) in total_per_thread.iter_mut().zip(&per_thread_ops) {
            *t += n;
        }
        if finished {
            // First, before the final interval's (network) work.
            ctx.observer.measure(MeasureEdge::Ends, ctx.rep);
        }
        ctx.observer.interval(IntervalReport {
            workload: ctx.kind,
            rep: ctx.rep,
            seq,
            start: last - start,
            span: now - last,
            ops,
            per_thread_ops,
            histogram,
            last: finished,
        });
        if finished {
            break;
        }
        if ctx.observer.should_stop() {
            // Relaxed: a flag polled in a loop; nothing else is published through it.
            ctx.stop.store(true, Ordering::Relaxed);
        }
        last = now;
        seq += 1;
    }
    RepTotals {
        ops: total_ops,
        per_thread_ops: total_per_thread,
        histogram: total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_sd_matches_hand_computation() {
        let m = MeanSd::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m.mean, 5.0);
        assert!((m.sd - 2.138_089_935).abs() < 1e-6);
        assert_eq!(MeanSd::of(&[3.0]).sd, 0.0);
    }

    #[test]
    fn drain_moves_everything_once() {
        let template = new_latency_histogram().unwrap();
        let slots = Slots::new(2, &template);
        slots.recorder(0).record(Duration::from_micros(10), 1);
        slots.recorder(1).record(Duration::from_micros(20), 3);
        let mut spare = Histogram::new_from(&template);
        let mut into = Histogram::new_from(&template);
        let mut per = [0; 2];
        assert_eq!(slots.drain(&mut spare, &mut into, &mut per), 4);
        assert_eq!(per, [1, 3]);
        assert_eq!(into.len(), 2);
        let mut again = Histogram::new_from(&template);
        assert_eq!(slots.drain(&mut spare, &mut again, &mut per), 0);
        assert!(again.is_empty());
    }
}
