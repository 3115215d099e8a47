//! cpuhog: one busy thread per vCPU, like the seed's `while true` shell hogs.
//!
//! Each hog counts loop iterations; the interval reports carry each hog's count, so
//! `per_thread_ops / span` is the CPU share that hog's vCPU really got. The histogram holds the
//! time per batch of [`BATCH`] iterations: under overcommit, batches that straddle a preemption
//! show up as its long tail.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::WorkloadError;
use crate::params::{CpuhogConfig, WorkloadKind};
use crate::report::{run_reported, LatencySummary, Observer, RepContext, Slots};

/// Iterations between clock reads, records and stop checks: ~0.15 ms natively, ~1.5 ms under
/// TCG, so bookkeeping is negligible, stopping is prompt and the batch-time histogram resolves
/// preemptions of a few milliseconds.
pub const BATCH: u64 = 1 << 16;

/// Result of a cpuhog run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuhogSummary {
    pub config: CpuhogConfig,
    pub elapsed_s: f64,
    /// Total iterations of all hogs.
    pub iterations: u64,
    /// Iterations per second of each hog over the whole run.
    pub per_thread_iters_per_s: Vec<f64>,
    /// Time per batch of [`BATCH`] iterations.
    pub batch_latency: LatencySummary,
}

impl CpuhogSummary {
    pub fn line(&self) -> String {
        let rates: Vec<String> = self
            .per_thread_iters_per_s
            .iter()
            .map(|r| format!("{:.3e}", r))
            .collect();
        format!(
            "cpuhog: threads={} elapsed_s={:.3} iterations={} iters_per_s per_thread=[{}] \
             batch_us p50={} p99={} max={}",
            self.config.threads,
            self.elapsed_s,
            self.iterations,
            rates.join(","),
            self.batch_latency.p50_us,
            self.batch_latency.p99_us,
            self.batch_latency.max_us,
        )
    }
}

/// Runs the hogs until the duration passes or the observer asks to stop (forever if neither).
pub fn run(cfg: &CpuhogConfig, observer: &mut dyn Observer) -> Result<CpuhogSummary, WorkloadError> {
    cfg.validate()?;
    let stop = AtomicBool::new(false);
    let ctx = RepContext {
        kind: WorkloadKind::Cpuhog,
        rep: 1,
        recorders: cfg.threads,
        interval: cfg.interval,
        observer,
        stop: &stop,
    };
    let ((ran, elapsed), totals) = run_reported(ctx, |slots| {
        let start = Instant::now();
        (hogs(cfg, slots, &stop), start.elapsed())
    })?;
    ran?;
    let elapsed_s = elapsed.as_secs_f64();
    Ok(CpuhogSummary {
        config: cfg.clone(),
        elapsed_s,
        iterations: totals.ops,
        per_thread_iters_per_s: totals
            .per_thread_ops
            .iter()
            .map(|&n| n as f64 / elapsed_s.max(f64::MIN_POSITIVE))
            .collect(),
        batch_latency: LatencySummary::of(&totals.histogram),
    })
}

fn hogs(cfg: &CpuhogConfig, slots: &Slots, stop: &AtomicBool) -> Result<(), WorkloadError> {
    // One deadline for all hogs: a hog that first runs late (Hermit does not time-slice
    // equal-priority threads) still stops with the others.
    let deadline = cfg.duration.map(|d| Instant::now() + d);
    thread::scope(|s| {
        let mut handles = Vec::with_capacity(cfg.threads);
        let mut spawn_err = None;
        for t in 0..cfg.threads {
            let rec = slots.recorder(t);
            let spawned = thread::Builder::new().spawn_scoped(s, move || {
                let mut counter = 0u64;
                let mut t0 = Instant::now();
                loop {
                    for _ in 0..BATCH {
                        // black_box keeps the loop a real loop of adds (the shell's `:`).
                        counter = black_box(counter.wrapping_add(1));
                    }
                    let now = Instant::now();
                    rec.record(now - t0, BATCH);
                    t0 = now;
                    // Relaxed: a polled flag; results travel through the slots and join.
                    if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| now >= d) {
                        break;
                    }
                }
                black_box(counter);
            });
            match spawned {
                Ok(h) => handles.push(h),
                Err(source) => {
                    stop.store(true, Ordering::Relaxed);
                    spawn_err = Some(WorkloadError::Spawn { what: "hog", source });
                    break;
                }
            }
        }
        let mut first_err = spawn_err;
        for h in handles {
            if h.join().is_err() {
                first_err.get_or_insert(WorkloadError::ThreadPanicked { what: "hog" });
            }
        }
        first_err.map_or(Ok(()), Err)
    })
}
