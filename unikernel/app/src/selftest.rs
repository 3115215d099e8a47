//! `mode=selftest`: the metrics path measured on its own. Runs a workload with
//! streaming (if `metrics=` is given) and, with `compare=N`, N more times
//! without, alternating, printing both timings: what streaming costs the
//! workload. The workload is the real one named by `workload=`, else a
//! synthetic one.

use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use pvbench_wire::cmdline;
use pvbench_wire::frames::{Figures, KernelEvents};
use pvbench_workloads::params::{key_spec, keys as workload_keys};
use pvbench_workloads::report::new_latency_histogram;
use pvbench_workloads::NullObserver;

use crate::metrics::{Ending, MetricsError, RunInfo, Sink, Target, REPLY_DEADLINE};

/// Runs the self test the words ask for; the synthetic workload records
/// `selftest_samples` latencies per interval for `selftest_intervals`
/// intervals of `selftest_ms` each. Returns the guest's exit status.
pub fn selftest(line: &str) -> u8 {
    match run_selftest(line) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("pvbench-guest: selftest failed: {e}");
            1
        }
    }
}

fn run_selftest(line: &str) -> Result<(), MetricsError> {
    let work = Work::from_line(line)?;
    let compare = word_u64(line, cmdline::COMPARE, 0, 1000)?;
    let target = Target::parse(line).map_err(MetricsError::Target)?;
    let mut sink = match target {
        Some(t) => Some(Sink::connect(t, RunInfo::new(work.name(), line))?),
        None => None,
    };
    // Synthetic rounds with streaming wait for the sender to finish, so their
    // time includes all of streaming's guest-side work (the cost per sample);
    // real workloads are timed as they run (the slowdown they see).
    let drain = matches!(work, Work::Synthetic { .. });
    let mut result = String::new();
    let mut on = Vec::new();
    let mut off = Vec::new();
    if compare > 0 {
        // The first run pays for page faults and heap growth; neither side gets it.
        let (elapsed, _) = work.run(None)?;
        println!(
            "pvbench-guest: selftest warmup elapsed_s={:.4}",
            elapsed.as_secs_f64()
        );
    }
    for round in 0..compare.max(1) {
        let r = run_round(&work, round, compare > 0, sink.as_mut(), drain)?;
        off.extend(r.off);
        on.push(r.on);
        result = r.line;
    }
    if compare > 0 {
        print_comparison(&work, compare, &on, &off, sink.is_some());
    }
    match sink {
        Some(sink) => finish_streaming(sink, result, on.last().map_or(0.0, Duration::as_secs_f64)),
        None => Ok(()),
    }
}

/// One round's timings and the workload's verdict line.
struct Round {
    /// Without streaming, when comparing.
    off: Option<Duration>,
    /// With streaming, if there is a sink.
    on: Duration,
    line: String,
}

/// One round: a run without streaming when comparing, then one with it (if
/// there is a sink), each printed.
fn run_round(
    work: &Work,
    round: u64,
    compare: bool,
    mut sink: Option<&mut Sink>,
    drain: bool,
) -> Result<Round, MetricsError> {
    let mut off = None;
    if compare {
        let (elapsed, line) = work.run(None)?;
        off = Some(elapsed);
        println!(
            "pvbench-guest: selftest round={round} streaming=off elapsed_s={:.4} {line}",
            elapsed.as_secs_f64()
        );
    }
    let started = Instant::now();
    let (mut elapsed, line) = work.run(sink.as_deref_mut())?;
    if let Some(sink) = sink.as_deref().filter(|_| drain) {
        if !sink.drain(REPLY_DEADLINE) {
            return Err(MetricsError::Timeout("progress from the sender"));
        }
        elapsed = started.elapsed();
    }
    let streaming = if sink.is_some() { "on" } else { "off" };
    println!(
        "pvbench-guest: selftest round={round} streaming={streaming} elapsed_s={:.4} {line}",
        elapsed.as_secs_f64()
    );
    Ok(Round {
        off,
        on: elapsed,
        line,
    })
}

/// The comparison of the rounds with and without streaming: mean times,
/// the slowdown and, for the synthetic workload, the cost per sample.
fn print_comparison(work: &Work, compare: u64, on: &[Duration], off: &[Duration], streaming: bool) {
    let mean = |v: &[Duration]| v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len() as f64;
    let (on_s, off_s) = (mean(on), mean(off));
    println!(
        "pvbench-guest: selftest compare rounds={compare} on_s={on_s:.4} off_s={off_s:.4} slowdown_pct={:.2}",
        (on_s / off_s - 1.0) * 100.0
    );
    if let (
        Work::Synthetic {
            intervals, samples, ..
        },
        true,
    ) = (work, streaming)
    {
        let per_round = (intervals * samples).max(1) as f64;
        println!(
            "pvbench-guest: selftest streaming_cost_ns_per_sample={:.1}",
            (on_s - off_s) * 1e9 / per_round
        );
    }
}

/// Ends the stream with the last round's line and time, prints what the
/// metrics path counted and checks it against the host's acknowledgement.
fn finish_streaming(sink: Sink, line: String, elapsed_s: f64) -> Result<(), MetricsError> {
    let ending = Ending {
        line,
        figures: Figures {
            elapsed_s,
            ops: 0,
            tps: None,
            runs: Vec::new(),
        },
        counters: Default::default(),
        kick_wake_ns: Vec::new(),
        kernel: KernelEvents::default(),
    };
    let f = sink.finish(Ok(ending))?;
    let c = f.done.unwrap_or_default();
    let per_sample = |d: Duration| d.as_nanos() as f64 / c.samples.max(1) as f64;
    println!(
        "pvbench-guest: metrics intervals={} dropped={} ops={} samples={} frames={} bytes={} \
         handoff_ns_per_sample={:.1} encode_ns_per_sample={:.1} write_ms={:.1}",
        c.intervals,
        c.intervals_dropped,
        c.ops,
        c.samples,
        f.sender.frames,
        f.sender.bytes,
        per_sample(f.handoff),
        per_sample(f.sender.encode),
        f.sender.write.as_secs_f64() * 1e3,
    );
    if let Some(ack) = f.ack {
        println!(
            "pvbench-guest: metrics host acknowledged intervals={} ops={} samples={}",
            ack.intervals, ack.ops, ack.samples
        );
        let sent = (
            c.intervals - c.intervals_dropped,
            c.ops - c.ops_dropped,
            c.samples - c.samples_dropped,
        );
        if (ack.intervals, ack.ops, ack.samples) != sent {
            return Err(MetricsError::UnexpectedReply(format!(
                "host counted {ack:?}, guest sent intervals/ops/samples {sent:?}"
            )));
        }
    }
    Ok(())
}

/// What `mode=selftest` runs.
enum Work {
    Synthetic {
        intervals: u64,
        samples: u64,
        interval: Duration,
    },
    Workload(pvbench_workloads::WorkloadConfig),
}

impl Work {
    fn from_line(line: &str) -> Result<Work, MetricsError> {
        if cmdline::find(line, workload_keys::WORKLOAD).is_some() {
            // The workload parser refuses words that are not its own.
            let words = line
                .split_ascii_whitespace()
                .filter(|w| w.split_once('=').is_some_and(|(k, _)| key_spec(k).is_some()));
            let config =
                pvbench_workloads::parse_args(words).map_err(|e| MetricsError::Workload(e.to_string()))?;
            return Ok(Work::Workload(config));
        }
        Ok(Work::Synthetic {
            intervals: word_u64(line, cmdline::SELFTEST_INTERVALS, 20, 1_000_000)?,
            samples: word_u64(line, cmdline::SELFTEST_SAMPLES, 1000, 100_000_000)?,
            interval: Duration::from_millis(word_u64(line, cmdline::SELFTEST_MS, 50, 60_000)?),
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Work::Synthetic { .. } => "selftest",
            Work::Workload(c) => c.kind().name(),
        }
    }

    /// Runs once; returns the time taken and the workload's verdict line.
    fn run(&self, sink: Option<&mut Sink>) -> Result<(Duration, String), MetricsError> {
        let started = Instant::now();
        let line = match self {
            Work::Synthetic {
                intervals,
                samples,
                interval,
            } => synthetic(*intervals, *samples, *interval, sink)?,
            Work::Workload(config) => {
                let summary = match sink {
                    Some(sink) => pvbench_workloads::run(config, sink),
                    None => pvbench_workloads::run(config, &mut NullObserver),
                };
                summary.map_err(|e| MetricsError::Workload(e.to_string()))?.line()
            }
        };
        Ok((started.elapsed(), line))
    }
}

/// Records pseudo-random latencies (a body around 100-1100 us, one in a thousand
/// a thousand times longer) and hands each interval to the sink.
fn synthetic(
    intervals: u64,
    samples: u64,
    interval: Duration,
    mut sink: Option<&mut Sink>,
) -> Result<String, MetricsError> {
    let template = new_latency_histogram().map_err(|e| MetricsError::Workload(e.to_string()))?;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut checksum = 0u64;
    let mut total = 0u64;
    for _ in 0..intervals {
        let started = Instant::now();
        let mut h = Histogram::new_from(&template);
        for _ in 0..samples {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut us = 100 + rng % 1000;
            if rng % 1000 == 0 {
                us *= 1000;
            }
            h.saturating_record(us);
            checksum = checksum.wrapping_add(us);
        }
        total += samples;
        if let Some(rest) = interval.checked_sub(started.elapsed()) {
            thread::sleep(rest);
        }
        if let Some(sink) = sink.as_deref_mut() {
            sink.record(1, started.elapsed(), samples, vec![samples], h);
        }
    }
    Ok(format!(
        "selftest: intervals={intervals} samples={total} checksum={checksum:#018x}"
    ))
}

fn word_u64(line: &str, key: &'static str, default: u64, max: u64) -> Result<u64, MetricsError> {
    match cmdline::find(line, key) {
        None => Ok(default),
        Some(v) => v.parse().ok().filter(|n| *n <= max).ok_or(MetricsError::BadWord {
            key,
            value: v.into(),
            expected: "a non-negative integer in range",
        }),
    }
}
