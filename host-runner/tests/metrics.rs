//! Metrics streaming end to end: real guests under QEMU TCG stream intervals over
//! virtio-net to the host's collector.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{boot_networked, text};
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use pvbench::collect::{write_run_files, Collector, RunError, RunResult};

/// The guest has exited when `boot` returns, so its data is in (or lost).
const FINISH: Duration = Duration::from_secs(5);

fn boot_streaming(
    collector: &Collector,
    run: &str,
    vcpus: u32,
    args: &[&str],
) -> (std::process::Output, String) {
    let mut words: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    words.extend(target_words(collector, run));
    let out = boot_networked(vcpus, 300, &words);
    let console = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    (out, console)
}

/// The words that make `run`'s guest stream to `collector`.
fn target_words(collector: &Collector, run: &str) -> Vec<String> {
    let target = collector.target(run).unwrap();
    target.words().iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn errors(r: &RunResult) -> String {
    r.errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pvbench-metrics-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Reads an interval log back with the hdrhistogram crate; returns the intervals'
/// merged histogram and their count.
fn read_interval_log(bytes: &[u8]) -> (Histogram<u64>, usize) {
    let mut merged = Histogram::<u64>::new(3).unwrap();
    let mut n = 0;
    for entry in IntervalLogIterator::new(bytes) {
        if let LogEntry::Interval(i) = entry.expect("interval log parses") {
            let compressed = decode_base64(i.encoded_histogram());
            let h: Histogram<u64> = Deserializer::new()
                .deserialize(&mut &compressed[..])
                .expect("interval histogram decodes");
            merged.add(&h).unwrap();
            n += 1;
        }
    }
    (merged, n)
}

fn decode_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn synthetic_intervals_all_arrive_and_the_log_reads_back() {
    let collector = Collector::start(["selftest"]).unwrap();
    let (out, console) = boot_streaming(
        &collector,
        "selftest",
        2,
        &[
            "mode=selftest",
            "selftest_intervals=20",
            "selftest_samples=500",
            "selftest_ms=50",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{console}");
    let report = collector.finish(FINISH);
    let r = report.run("selftest").unwrap();
    assert!(r.is_complete(), "{}\n{console}", errors(r));
    let done = r.done.as_ref().unwrap();
    assert_eq!((done.intervals_sent, done.intervals_dropped), (20, 0));
    assert_eq!(r.received.intervals, 20);
    assert_eq!(r.histogram.len(), 20 * 500);
    assert_eq!(r.histogram.len(), done.samples);
    assert_eq!(r.received.ops, done.ops);
    assert!(
        done.result.starts_with("selftest: intervals=20 samples=10000"),
        "{}",
        done.result
    );
    assert!(
        console.contains("metrics host acknowledged intervals=20 ops=10000 samples=10000"),
        "{console}"
    );
    // Guest time is sequential and spans the run.
    assert!(r
        .intervals
        .windows(2)
        .all(|w| w[0].end_ns <= w[1].start_ns + 1_000_000));
    let hello = r.hello.as_ref().unwrap();
    assert_eq!((hello.workload.as_str(), hello.vcpus), ("selftest", 2));

    let dir = temp_dir("selftest");
    let files = write_run_files(r, &dir).unwrap();
    let (merged, n) = read_interval_log(&std::fs::read(&files.interval_log).unwrap());
    assert_eq!(n, 20);
    assert_eq!(merged.len(), r.histogram.len());
    assert_eq!(
        merged.value_at_quantile(0.999),
        r.histogram.value_at_quantile(0.999)
    );
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&files.summary).unwrap()).unwrap();
    assert_eq!(summary["status"], "complete");
    assert_eq!(summary["latency"]["count"], 10_000);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn real_workload_streams_every_operation() {
    let collector = Collector::start(["pgbench"]).unwrap();
    let (out, console) = boot_streaming(
        &collector,
        "pgbench",
        2,
        &[
            "mode=selftest",
            "workload=pgbench",
            "scale=1",
            "clients=2",
            "duration_s=2",
            "interval_ms=100",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{console}");
    let report = collector.finish(FINISH);
    let r = report.run("pgbench").unwrap();
    assert!(r.is_complete(), "{}\n{console}", errors(r));
    let done = r.done.as_ref().unwrap();
    assert!(
        done.result.starts_with("pgbench:") && done.result.contains("invariant=ok"),
        "{}",
        done.result
    );
    assert!(r.received.intervals >= 10, "{} intervals", r.received.intervals);
    assert_eq!(r.received.ops, done.ops);
    assert_eq!(r.histogram.len(), done.samples);
    assert!(!r.histogram.is_empty());
    assert_eq!(r.hello.as_ref().unwrap().workload, "pgbench");
}

#[test]
fn overflowing_queue_is_counted_never_silent() {
    // A one-slot queue and intervals produced back to back: the sender falls behind.
    let collector = Collector::start(["burst"]).unwrap();
    let (out, console) = boot_streaming(
        &collector,
        "burst",
        1,
        &[
            "mode=selftest",
            "selftest_intervals=400",
            "selftest_samples=20",
            "selftest_ms=0",
            "metrics_queue=1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{console}");
    let report = collector.finish(FINISH);
    let r = report.run("burst").unwrap();
    let done = r.done.as_ref().unwrap();
    // Whatever was dropped is declared, and the rest adds up exactly.
    assert_eq!(done.intervals_sent + done.intervals_dropped, 400, "{console}");
    assert_eq!(r.received.intervals, done.intervals_sent);
    assert_eq!(r.received.ops + done.ops_dropped, done.ops);
    assert_eq!(r.histogram.len() + done.samples_dropped, 400 * 20);
    assert!(
        done.intervals_dropped > 0,
        "the queue never overflowed:\n{console}"
    );
    assert!(!r.is_complete());
    assert_eq!(
        r.errors,
        [RunError::GuestDropped {
            intervals: done.intervals_dropped,
            ops: done.ops_dropped,
            samples: done.samples_dropped
        }]
    );
}

#[test]
fn guest_with_a_wrong_token_is_refused_and_says_so() {
    let collector = Collector::start(["bench"]).unwrap();
    let mut words = target_words(&collector, "bench");
    words[1] = "token=00000000000000000000000000000000".into();
    words.push("mode=selftest".into());
    let out = boot_networked(1, 120, &words);
    let console = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{console}");
    assert!(
        console.contains("host refused the run: wrong token for run bench"),
        "{console}"
    );
    let report = collector.finish(Duration::ZERO);
    assert_eq!(report.runs[0].errors, [RunError::NeverConnected]);
    assert_eq!(report.runs[0].rejected.len(), 1);
}

/// Streaming's cost, printed: `cargo test -p pvbench --test metrics -- --ignored --nocapture bench_`.
#[test]
#[ignore = "benchmark"]
fn bench_streaming_overhead() {
    let cases: &[(&str, u32, &[&str])] = &[
        // Cost per recorded sample: one vCPU, so the sender's work adds to the
        // wall time, and rounds wait until everything is sent; a queue that
        // holds a whole round, so nothing is dropped.
        (
            "samples-20k",
            1,
            &[
                "mode=selftest",
                "selftest_intervals=40",
                "selftest_samples=20000",
                "selftest_ms=0",
                "metrics_queue=256",
                "compare=5",
            ],
        ),
        (
            "samples-1k",
            1,
            &[
                "mode=selftest",
                "selftest_intervals=200",
                "selftest_samples=1000",
                "selftest_ms=0",
                "metrics_queue=256",
                "compare=5",
            ],
        ),
        // Workload slowdown, streaming on vs off in the same guest, alternating.
        // One vCPU: the workload's speed does not depend on lock-holder preemption
        // there, so the comparison is not drowned in its variance.
        (
            "pgbench-compare-1vcpu",
            1,
            &[
                "mode=selftest",
                "workload=pgbench",
                "scale=1",
                "clients=2",
                "transactions=1500",
                "compare=6",
            ],
        ),
        (
            "pgbench-compare-2vcpu",
            2,
            &[
                "mode=selftest",
                "workload=pgbench",
                "scale=1",
                "clients=2",
                "transactions=1500",
                "compare=6",
            ],
        ),
        (
            "kernbench-compare-1vcpu",
            1,
            &[
                "mode=selftest",
                "workload=kernbench",
                "scale=1",
                "reps=1",
                "jobs=4",
                "compare=4",
            ],
        ),
        // Bytes per second on the wire, default 250 ms intervals.
        (
            "pgbench-stream",
            2,
            &[
                "mode=selftest",
                "workload=pgbench",
                "scale=1",
                "clients=2",
                "duration_s=10",
            ],
        ),
    ];
    for &(run, vcpus, args) in cases {
        let collector = Collector::start([run]).unwrap();
        let (out, console) = boot_streaming(&collector, run, vcpus, args);
        let report = collector.finish(FINISH);
        let r = report.run(run).unwrap();
        let verdict = if r.is_complete() {
            "complete".into()
        } else {
            errors(r)
        };
        eprintln!("=== {run} (exit {:?}, {verdict})", out.status.code());
        for line in console
            .lines()
            .filter(|l| l.contains("selftest") || l.contains("metrics"))
        {
            eprintln!("  {}", line.chars().take(220).collect::<String>());
        }
        let elapsed = r.done.as_ref().map_or(0.0, |d| d.elapsed_ns as f64 / 1e9);
        eprintln!(
            "  host: {} intervals, {} samples, {} bytes in {elapsed:.2} s of guest sink time: {:.0} bytes/s",
            r.received.intervals,
            r.received.samples,
            r.received.bytes,
            r.received.bytes as f64 / elapsed.max(1e-9)
        );
    }
}
