//! The collector against fake guests over loopback TCP, and bad input of every kind.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use pvbench_wire::frames::{
    self, Done, Figures, Frame, FrameReader, GuestFailure, Hello, HistogramEncoder, Interval, KernelEvents,
    LockMode, LockStats, Param, Reply, Resume, Token, VERSION,
};

use super::run::Disconnect;
use super::*;

/// Fails a wait on the collector that has not ended after this long: a hang
/// guard, not a measure of speed.
const WATCHDOG: Duration = Duration::from_secs(60);
/// A `finish` timeout no test reaches: a `finish` given it returns because
/// every run settled, however slow the machine.
const NEVER: Duration = Duration::from_secs(24 * 3600);
/// How long `finish` gives runs that cannot settle (never connected, or
/// silent); no result depends on it.
const SHORT: Duration = Duration::from_millis(300);

fn hello(run: &str, token: Token) -> Hello {
    Hello {
        run: run.into(),
        token,
        workload: "selftest".into(),
        params: vec![Param {
            key: "selftest_samples".into(),
            value: "3".into(),
        }],
        vcpus: 2,
        lock_requested: LockMode::Pv,
        lock_effective: LockMode::Base,
        kick_backend: "unknown".into(),
        build_id: "test".into(),
        resumed: 0,
    }
}

fn histogram(values: &[u64]) -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 1 << 32, 3).unwrap();
    for &v in values {
        h.record(v).unwrap();
    }
    h
}

fn interval(seq: u64, values: &[u64]) -> Frame {
    let mut bytes = Vec::new();
    HistogramEncoder::new()
        .encode(&histogram(values), &mut bytes)
        .unwrap();
    Frame::Interval(Interval {
        seq,
        rep: 1,
        start_ns: seq * 100_000_000,
        end_ns: (seq + 1) * 100_000_000,
        ops: values.len() as u64,
        per_thread_ops: vec![values.len() as u64],
        histogram: bytes,
        lock: LockStats {
            taken_slow: 1,
            ..LockStats::default()
        },
        queued: Default::default(),
        tas: Default::default(),
    })
}

/// Done for `intervals` intervals of 3 samples each, `dropped` of them dropped.
fn done(intervals: u64, dropped: u64) -> Frame {
    Frame::Done(Done {
        ops: 3 * intervals,
        samples: 3 * intervals,
        intervals_sent: intervals - dropped,
        intervals_dropped: dropped,
        ops_dropped: 3 * dropped,
        samples_dropped: 3 * dropped,
        result: "selftest: checksum=0x1".into(),
        elapsed_ns: intervals * 100_000_000,
        figures: Figures {
            elapsed_s: intervals as f64 * 0.1,
            ops: 3 * intervals,
            tps: None,
            runs: Vec::new(),
        },
        lock: LockStats::default(),
        queued: Default::default(),
        tas: Default::default(),
        kick_wake_ns: Vec::new(),
        kernel: KernelEvents::default(),
    })
}

const VALUES: [u64; 3] = [100, 200, 40_000];

struct FakeGuest {
    stream: TcpStream,
    replies: FrameReader<TcpStream>,
}

impl FakeGuest {
    fn connect(c: &Collector) -> FakeGuest {
        let stream = TcpStream::connect(c.addr()).unwrap();
        // A hang guard on every read from the collector.
        stream.set_read_timeout(Some(WATCHDOG)).unwrap();
        let replies = FrameReader::new(stream.try_clone().unwrap());
        FakeGuest { stream, replies }
    }

    /// Connects and says Hello with the run's real token; expects Welcome.
    fn start(c: &Collector, run: &str) -> FakeGuest {
        let mut g = FakeGuest::connect(c);
        g.send(&Frame::Hello(hello(run, c.token(run).unwrap())));
        assert_eq!(g.reply(), Some(Reply::Welcome));
        g
    }

    fn send(&mut self, frame: &Frame) {
        self.raw(&frames::encode(frame).unwrap());
    }

    fn raw(&mut self, bytes: &[u8]) {
        if let Err(e) = self.stream.write_all(bytes) {
            panic!("cannot send to the collector (did it close the connection?): {e}");
        }
    }

    fn reply(&mut self) -> Option<Reply> {
        self.replies
            .read::<Reply>()
            .unwrap_or_else(|e| panic!("no reply from the collector (watchdog {WATCHDOG:?}): {e}"))
    }

    /// Reads to the end of the stream, which the guest never closed: returns
    /// once the collector has closed the connection.
    fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        if let Err(e) = self.stream.read_to_end(&mut rest) {
            panic!("the collector did not close the connection (watchdog {WATCHDOG:?}): {e}");
        }
    }

    /// Closes the guest's sending side and waits for the collector to close
    /// in turn: it has then read, and applied, everything the guest sent.
    fn hang_up(&mut self) {
        self.stream.shutdown(Shutdown::Write).unwrap();
        self.expect_closed();
    }

    /// Sends `n` intervals and Done; returns the Ack.
    fn run_to_done(&mut self, n: u64) -> Reply {
        for seq in 0..n {
            self.send(&interval(seq, &VALUES));
        }
        self.send(&done(n, 0));
        self.reply().unwrap()
    }
}

/// `c.finish(timeout)` running on a thread of its own.
struct Finishing {
    report: mpsc::Receiver<Report>,
    timeout: Duration,
}

impl Finishing {
    /// Returns once the thread is about to call `finish`.
    fn start(c: Collector, timeout: Duration) -> Finishing {
        let (tx, report) = mpsc::channel();
        let (calling_tx, calling) = mpsc::channel();
        thread::spawn(move || {
            let _ = calling_tx.send(());
            let _ = tx.send(c.finish(timeout));
        });
        calling.recv().expect("the finishing thread died");
        Finishing { report, timeout }
    }

    /// The report, once `finish` returned; fails after [`WATCHDOG`].
    fn report(self) -> Report {
        match self.report.recv_timeout(WATCHDOG) {
            Ok(report) => report,
            Err(RecvTimeoutError::Timeout) => panic!(
                "finish({:?}) has not returned after {WATCHDOG:?}: it waits for a run that should \
                 have settled (Done, Error or a closed connection), or it cannot cut the runs left open",
                self.timeout
            ),
            Err(RecvTimeoutError::Disconnected) => panic!("finish panicked"),
        }
    }
}

/// The report once every run has settled: `finish` with a timeout no test
/// reaches, so that the report never depends on how fast frames are served.
fn finish_settled(c: Collector) -> Report {
    Finishing::start(c, NEVER).report()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pvbench-collect-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn error_text(r: &RunResult) -> String {
    r.errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn complete_run_merges_every_interval_and_acks_the_totals() {
    let c = Collector::start(["bench"]).unwrap();
    let mut g = FakeGuest::start(&c, "bench");
    let ack = g.run_to_done(10);
    assert_eq!(
        ack,
        Reply::Ack(frames::Ack {
            intervals: 10,
            ops: 30,
            samples: 30
        })
    );
    // The guest is still connected (Hermit never closes): finish returns on
    // Done alone (it cannot time out), and it is the collector that hangs up.
    let report = finish_settled(c);
    g.expect_closed();
    let r = report.run("bench").unwrap();
    assert!(r.is_complete(), "{}", error_text(r));
    assert_eq!(r.latency.count, 30);
    assert_eq!(r.histogram.len(), 30);
    assert_eq!(r.received.ops, 30);
    assert_eq!(r.intervals.len(), 10);
    assert_eq!(r.lock.taken_slow, 10);
    assert_eq!(r.latency.p50, r.histogram.value_at_quantile(0.5));
    assert!(
        r.latency.max >= 40_000 && r.latency.max <= 40_100,
        "{}",
        r.latency.max
    );
    assert!(r.received.bytes > 10 * 40);
    assert_eq!(r.hello.as_ref().unwrap().workload, "selftest");
}

#[test]
fn files_are_written_and_read_back_with_hdrhistogram() {
    let c = Collector::start(["bench"]).unwrap();
    FakeGuest::start(&c, "bench").run_to_done(4);
    let report = finish_settled(c);
    let r = report.run("bench").unwrap();
    let dir = temp_dir("files");
    let files = write_run_files(r, &dir).unwrap();
    assert_eq!(files, RunFiles::in_dir(&dir, "bench"));

    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&files.summary).unwrap()).unwrap();
    assert_eq!(json["status"], "complete");
    assert_eq!(json["latency"]["count"], 12);
    assert_eq!(json["received"]["ops"], 12);
    assert_eq!(json["done"]["ops"], 12);
    assert_eq!(json["hello"]["token"], c_token_hex(&report));
    assert_eq!(json["errors"].as_array().unwrap().len(), 0);
    assert!(json["wire_bytes_per_s"].as_f64().unwrap() > 0.0);

    let log = std::fs::read(&files.interval_log).unwrap();
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("#[Histogram log format version 1.3]"), "{text}");
    assert!(text.contains("\"StartTimestamp\",\"Interval_Length\""), "{text}");
    let mut merged = Histogram::<u64>::new(3).unwrap();
    let mut intervals = 0;
    let mut base_time = None;
    for entry in IntervalLogIterator::new(&log) {
        match entry.unwrap() {
            LogEntry::BaseTime(t) => base_time = Some(t),
            LogEntry::StartTime(_) => {}
            LogEntry::Interval(i) => {
                assert_eq!(i.start_timestamp(), Duration::from_millis(100 * intervals));
                assert_eq!(i.duration(), Duration::from_millis(100));
                let bytes = base64_decode(i.encoded_histogram());
                let h: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
                assert_eq!(h.len(), 3);
                merged.add(&h).unwrap();
                intervals += 1;
            }
        }
    }
    assert_eq!(intervals, 4);
    assert!(base_time.is_some());
    assert_eq!(merged.len(), r.histogram.len());
    assert_eq!(
        merged.value_at_quantile(0.99),
        r.histogram.value_at_quantile(0.99)
    );

    let hgrm = std::fs::read_to_string(&files.percentiles).unwrap();
    assert!(hgrm.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
    assert!(hgrm.contains("#[Max     = "), "{hgrm}");
    assert!(hgrm.contains("Total count    =           12]"), "{hgrm}");

    // Nothing but the three files: no temporary left behind.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["bench.hgrm", "bench.hlog", "bench.json"]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn c_token_hex(report: &Report) -> String {
    report.runs[0].hello.as_ref().unwrap().token.to_hex()
}

/// Standard base64 (the interval log's alphabet), for the test only.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::new();
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= u32::from(value(c)) << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[test]
fn percentile_distribution_has_the_hgrm_layout() {
    let mut h = Histogram::<u64>::new_with_bounds(1, 1 << 32, 3).unwrap();
    for v in 1..=100 {
        h.record(v).unwrap();
    }
    let text = percentile_distribution(&h);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "       Value     Percentile TotalCount 1/(1-Percentile)"
    );
    assert_eq!(lines[1], "");
    assert_eq!(lines[2], "       1.000 0.000000000000          1           1.00");
    assert_eq!(lines[3], "      10.000 0.100000000000         10           1.11");
    // The 100th percentile has no 1/(1-p) column.
    let last = lines.iter().rev().find(|l| !l.starts_with('#')).unwrap();
    assert_eq!(*last, "     100.000 1.000000000000        100");
    let n = lines.len();
    assert_eq!(
        lines[n - 3],
        "#[Mean    =       50.500, StdDeviation   =       28.866]"
    );
    assert_eq!(
        lines[n - 2],
        "#[Max     =      100.000, Total count    =          100]"
    );
    assert_eq!(
        lines[n - 1],
        "#[Buckets =           23, SubBuckets     =         2048]"
    );
}

#[test]
fn truncated_frame_is_a_lost_connection() {
    let c = Collector::start(["bench"]).unwrap();
    let mut g = FakeGuest::start(&c, "bench");
    g.send(&interval(0, &VALUES));
    let bytes = frames::encode(&interval(1, &VALUES)).unwrap();
    g.raw(&bytes[..bytes.len() / 2]);
    drop(g);
    let report = finish_settled(c);
    let r = &report.runs[0];
    assert!(!r.is_complete());
    assert!(matches!(
        r.errors[..],
        [RunError::ConnectionLost { intervals: 1, .. }]
    ));
    assert!(
        error_text(r).contains("stream ended inside a frame"),
        "{}",
        error_text(r)
    );
    assert_eq!(
        r.received.intervals, 1,
        "the whole interval before the cut counts"
    );
}

#[test]
fn oversized_length_prefix_is_a_protocol_error() {
    let c = Collector::start(["bench"]).unwrap();
    let mut g = FakeGuest::start(&c, "bench");
    g.raw(&(64u32 << 20).to_le_bytes());
    g.raw(&[0; 64]);
    let report = finish_settled(c);
    let text = error_text(&report.runs[0]);
    assert!(
        matches!(report.runs[0].errors[..], [RunError::Protocol { .. }]),
        "{text}"
    );
    assert!(text.contains("exceeds the limit"), "{text}");
}

#[test]
fn random_bytes_are_refused_and_other_guests_keep_being_served() {
    let c = Collector::start(["good", "noisy"]).unwrap();
    // Garbage instead of a Hello.
    let mut junk = FakeGuest::connect(&c);
    let mut x = 0x1234_5678_9abc_def0u64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let _ = junk.stream.write_all(&bytes);
    // Garbage after a valid Hello.
    let mut noisy = FakeGuest::start(&c, "noisy");
    noisy.send(&interval(0, &VALUES));
    let mut frame = 200u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&VERSION.to_le_bytes());
    frame.extend(bytes.iter().take(198));
    noisy.raw(&frame);
    // Meanwhile a good guest completes.
    FakeGuest::start(&c, "good").run_to_done(3);
    let report = finish_settled(c);
    assert!(report.run("good").unwrap().is_complete());
    let noisy = report.run("noisy").unwrap();
    assert!(
        matches!(noisy.errors[..], [RunError::Protocol { intervals: 1, .. }]),
        "{}",
        error_text(noisy)
    );
    assert!(
        report
            .rejected
            .iter()
            .any(|r| r.run.is_none() && r.reason.starts_with("before Hello")),
        "{:?}",
        report.rejected
    );
}

#[test]
fn wrong_version_is_refused_with_its_number() {
    let c = Collector::start(["bench"]).unwrap();
    // At Hello: refused.
    let mut g = FakeGuest::connect(&c);
    let mut bytes = frames::encode(&Frame::Hello(hello("bench", c.token("bench").unwrap()))).unwrap();
    bytes[4..6].copy_from_slice(&(VERSION + 7).to_le_bytes());
    g.raw(&bytes);
    let mut rest = Vec::new();
    let _ = g.stream.read_to_end(&mut rest);
    // Mid-stream: the run fails.
    let mut g = FakeGuest::start(&c, "bench");
    let mut bytes = frames::encode(&interval(0, &VALUES)).unwrap();
    bytes[4..6].copy_from_slice(&(VERSION + 7).to_le_bytes());
    g.raw(&bytes);
    let report = finish_settled(c);
    let want = format!("protocol version {}", VERSION + 7);
    assert!(report.rejected[0].reason.contains(&want), "{:?}", report.rejected);
    assert!(
        error_text(&report.runs[0]).contains(&want),
        "{}",
        error_text(&report.runs[0])
    );
}

#[test]
fn wrong_token_is_rejected_and_the_run_never_connected() {
    let c = Collector::start(["bench"]).unwrap();
    let mut g = FakeGuest::connect(&c);
    g.send(&Frame::Hello(hello("bench", Token::from_bytes([0; Token::LEN]))));
    assert_eq!(
        g.reply(),
        Some(Reply::Rejected("wrong token for run bench".into()))
    );
    let mut g = FakeGuest::connect(&c);
    g.send(&Frame::Hello(hello("other", c.token("bench").unwrap())));
    assert!(matches!(g.reply(), Some(Reply::Rejected(r)) if r.contains("unknown run")));
    let report = c.finish(SHORT);
    let r = &report.runs[0];
    assert_eq!(r.errors, [RunError::NeverConnected]);
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.rejected[0].reason, "wrong token for run bench");
    assert_eq!(report.rejected.len(), 2);
}

#[test]
fn second_connection_for_a_run_is_rejected() {
    let c = Collector::start(["bench"]).unwrap();
    let mut first = FakeGuest::start(&c, "bench");
    let mut second = FakeGuest::connect(&c);
    second.send(&Frame::Hello(hello("bench", c.token("bench").unwrap())));
    assert!(matches!(second.reply(), Some(Reply::Rejected(r)) if r.contains("already has a connection")));
    first.run_to_done(2);
    let report = finish_settled(c);
    let r = &report.runs[0];
    assert!(r.is_complete(), "{}", error_text(r));
    assert_eq!(r.rejected.len(), 1);
}

/// A guest whose connection broke (as a migration breaks it) connecting again.
fn resume(c: &Collector, run: &str, resumed: u32) -> (FakeGuest, Option<Reply>) {
    let mut g = FakeGuest::connect(c);
    let mut h = hello(run, c.token(run).unwrap());
    h.resumed = resumed;
    g.send(&Frame::Hello(h));
    let reply = g.reply();
    (g, reply)
}

#[test]
fn a_resumed_connection_picks_up_at_the_first_interval_not_received() {
    let c = Collector::start(["bench"]).unwrap();
    let mut g = FakeGuest::start(&c, "bench");
    for seq in 0..3 {
        g.send(&interval(seq, &VALUES));
    }
    // Broken mid-frame: the partial frame is not counted.
    g.raw(&frames::encode(&interval(3, &VALUES)).unwrap()[..9]);
    drop(g);
    let (mut g, reply) = resume(&c, "bench", 1);
    assert_eq!(
        reply,
        Some(Reply::Resume(Resume {
            next_seq: 3,
            ack: None
        }))
    );
    for seq in 3..5 {
        g.send(&interval(seq, &VALUES));
    }
    g.send(&done(5, 0));
    assert!(matches!(g.reply(), Some(Reply::Ack(a)) if a.intervals == 5 && a.samples == 15));
    let report = finish_settled(c);
    let r = &report.runs[0];
    assert!(r.is_complete(), "{}", error_text(r));
    assert_eq!(r.resumes, 1);
    assert_eq!(r.received.intervals, 5);
}

#[test]
fn a_guest_that_missed_its_ack_gets_it_on_resuming() {
    let c = Collector::start(["bench"]).unwrap();
    let mut g = FakeGuest::start(&c, "bench");
    for seq in 0..2 {
        g.send(&interval(seq, &VALUES));
    }
    g.send(&done(2, 0));
    drop(g);
    let (_g, reply) = resume(&c, "bench", 3);
    let Some(Reply::Resume(Resume {
        next_seq: 2,
        ack: Some(ack),
    })) = reply
    else {
        panic!("no Resume with the Ack: {reply:?}");
    };
    assert_eq!((ack.intervals, ack.ops), (2, 6));
    let report = finish_settled(c);
    assert!(report.runs[0].is_complete(), "{}", error_text(&report.runs[0]));
}

#[test]
fn a_lost_connection_not_resumed_fails_the_run() {
    let c = Collector::start(["bench"]).unwrap();
    let mut g = FakeGuest::start(&c, "bench");
    g.send(&interval(0, &VALUES));
    drop(g);
    let report = c.finish(SHORT);
    let r = &report.runs[0];
    assert!(!r.is_complete());
    assert!(
        matches!(
            r.errors.as_slice(),
            [RunError::ConnectionLost { intervals: 1, .. }]
        ),
        "{}",
        error_text(r)
    );
}

#[test]
fn resumes_that_do_not_fit_the_run_are_rejected_and_late_first_ones_start_it() {
    let c = Collector::start(["bench", "late"]).unwrap();
    // A first connection that broke before its Hello arrived: the resumed one
    // starts the run from its first interval.
    let (mut late, reply) = resume(&c, "late", 1);
    assert_eq!(
        reply,
        Some(Reply::Resume(Resume {
            next_seq: 0,
            ack: None
        }))
    );
    late.send(&interval(0, &VALUES));
    late.send(&done(1, 0));
    assert!(matches!(late.reply(), Some(Reply::Ack(a)) if a.intervals == 1));
    // Another guest's Hello under this run's name and token.
    let mut g = FakeGuest::start(&c, "bench");
    g.send(&interval(0, &VALUES));
    drop(g);
    let mut other = FakeGuest::connect(&c);
    let mut h = hello("bench", c.token("bench").unwrap());
    h.resumed = 1;
    h.vcpus = 4;
    other.send(&Frame::Hello(h));
    assert!(matches!(other.reply(), Some(Reply::Rejected(r)) if r.contains("another Hello")));
    // The run is still there for its own guest.
    let (mut g, reply) = resume(&c, "bench", 2);
    assert!(
        matches!(&reply, Some(Reply::Resume(Resume { next_seq: 1, .. }))),
        "{reply:?}"
    );
    g.send(&done(1, 0));
    assert!(matches!(g.reply(), Some(Reply::Ack(_))));
    let report = c.finish(SHORT);
    assert!(report.runs[0].is_complete(), "{}", error_text(&report.runs[0]));
    assert_eq!(report.runs[0].resumes, 1);
    assert!(report.runs[1].is_complete(), "{}", error_text(&report.runs[1]));
}

#[test]
fn duplicate_sequence_numbers_are_counted_not_merged() {
    let c = Collector::start(["bench"]).unwrap();
    let mut g = FakeGuest::start(&c, "bench");
    for seq in [0, 1, 1, 2, 0] {
        g.send(&interval(seq, &VALUES));
    }
    g.send(&done(3, 0));
    assert!(matches!(g.reply(), Some(Reply::Ack(a)) if a.intervals == 3));
    let report = finish_settled(c);
    let r = &report.runs[0];
    assert_eq!(
        r.errors,
        [RunError::DuplicateSeqs {
            count: 2,
            first: 1,
            expected: 2
        }]
    );
    assert_eq!(r.histogram.len(), 9);
}

#[test]
fn missing_sequence_numbers_are_named() {
    let c = Collector::start(["bench"]).unwrap();
    let mut g = FakeGuest::start(&c, "bench");
    for seq in [0, 1, 4, 5] {
        g.send(&interval(seq, &VALUES));
    }
    // The guest claims it sent all 7 and dropped none.
    g.send(&done(7, 0));
    g.reply();
    let report = finish_settled(c);
    let text = error_text(&report.runs[0]);
    assert!(!report.runs[0].is_complete());
    assert!(
        text.contains("3 intervals missing (sequence numbers 2..=3, 6); the guest declared 0 dropped"),
        "{text}"
    );
    assert!(
        text.contains("operations sent: guest reported 21, host received 12"),
        "{text}"
    );
}

#[test]
fn declared_drops_are_an_error_but_add_up() {
    let c = Collector::start(["bench"]).unwrap();
    let mut g = FakeGuest::start(&c, "bench");
    for seq in [0, 2, 3] {
        g.send(&interval(seq, &VALUES));
    }
    g.send(&done(5, 2));
    g.reply();
    let report = finish_settled(c);
    let r = &report.runs[0];
    assert_eq!(
        r.errors,
        [RunError::GuestDropped {
            intervals: 2,
            ops: 6,
            samples: 6
        }],
        "{}",
        error_text(r)
    );
}

#[test]
fn ops_gap_against_done_is_an_error() {
    let c = Collector::start(["bench"]).unwrap();
    let mut g = FakeGuest::start(&c, "bench");
    g.send(&interval(0, &VALUES));
    let Frame::Done(mut d) = done(1, 0) else {
        unreachable!()
    };
    d.ops += 1;
    g.send(&Frame::Done(d));
    g.reply();
    let report = finish_settled(c);
    assert_eq!(
        report.runs[0].errors,
        [RunError::Accounting {
            what: "operations sent",
            guest: 4,
            host: 3
        }]
    );
}

#[test]
fn connection_dropped_mid_run_is_lost() {
    let c = Collector::start(["bench"]).unwrap();
    let mut g = FakeGuest::start(&c, "bench");
    for seq in 0..3 {
        g.send(&interval(seq, &VALUES));
    }
    drop(g);
    // A closed run counts as settled: finish returns without a timeout.
    let report = finish_settled(c);
    assert!(matches!(
        report.runs[0].errors[..],
        [RunError::ConnectionLost { intervals: 3, .. }]
    ));
}

#[test]
fn guest_that_never_sends_done_times_out() {
    let c = Collector::start(["bench"]).unwrap();
    // Welcomed, then silent and still connected. (Nothing tells the test when
    // the collector has read a frame that has no reply, so an interval sent
    // here might or might not be counted when finish cuts the stream; the
    // count is checked on the run state below.)
    let mut g = FakeGuest::start(&c, "bench");
    let report = Finishing::start(c, SHORT).report();
    assert_eq!(report.runs[0].errors, [RunError::NoDone { intervals: 0 }]);
    g.expect_closed();
}

#[test]
fn stream_cut_by_the_collector_keeps_its_intervals() {
    let mut state = RunState::new("bench");
    state.start(
        hello("bench", Token::from_bytes([1; Token::LEN])),
        SystemTime::now(),
    );
    for seq in 0..2 {
        assert_eq!(state.on_frame(interval(seq, &VALUES)), None);
    }
    state.on_disconnect(Disconnect::Stopped);
    let r = state.into_result(Vec::new());
    assert_eq!(r.errors, [RunError::NoDone { intervals: 2 }]);
    assert_eq!(r.received.ops, 6);
}

#[test]
fn finish_waits_for_a_run_still_streaming() {
    let c = Collector::start(["bench"]).unwrap();
    let mut g = FakeGuest::start(&c, "bench");
    let finishing = Finishing::start(c, NEVER);
    // finish is being called: it must leave this unsettled run alone until it
    // settles, so the Ack arrives and the run is complete.
    let ack = g.run_to_done(3);
    assert!(matches!(ack, Reply::Ack(a) if a.intervals == 3), "{ack:?}");
    let report = finishing.report();
    let r = &report.runs[0];
    assert!(r.is_complete(), "{}", error_text(r));
    g.expect_closed();
}

#[test]
fn silent_connection_without_hello_does_not_block_finish() {
    let c = Collector::start(["bench"]).unwrap();
    let _silent = FakeGuest::connect(&c);
    FakeGuest::start(&c, "bench").run_to_done(1);
    let report = finish_settled(c);
    assert!(report.runs[0].is_complete());
    // finish closed the silent connection (accepted before the guest's, so
    // open by then) instead of waiting out its Hello timeout: the collector
    // read an end of stream, not a timeout.
    let reasons: Vec<&str> = report.rejected.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons, ["closed before Hello"]);
}

#[test]
fn guest_error_frame_fails_the_run() {
    let c = Collector::start(["bench"]).unwrap();
    let mut g = FakeGuest::start(&c, "bench");
    g.send(&interval(0, &VALUES));
    g.send(&Frame::Error(GuestFailure {
        message: "kernbench: checksum mismatch".into(),
    }));
    let report = finish_settled(c);
    assert_eq!(
        report.runs[0].errors,
        [RunError::GuestFailed("kernbench: checksum mismatch".into())]
    );
    assert_eq!(
        report.runs[0].guest_error.as_deref(),
        Some("kernbench: checksum mismatch")
    );
}

#[test]
fn frames_after_done_and_second_hello_are_errors() {
    let c = Collector::start(["bench"]).unwrap();
    let mut g = FakeGuest::start(&c, "bench");
    g.send(&Frame::Hello(hello("bench", c.token("bench").unwrap())));
    g.run_to_done(1);
    g.send(&interval(1, &VALUES));
    // Done settled the run already: make sure the stray frame was read.
    g.hang_up();
    let report = finish_settled(c);
    let errors = &report.runs[0].errors;
    assert!(errors.contains(&RunError::UnexpectedFrame("a second Hello".into())));
    assert!(errors.contains(&RunError::UnexpectedFrame("a frame after Done".into())));
}

#[test]
fn bad_histogram_is_reported_and_the_interval_not_counted() {
    let c = Collector::start(["bench"]).unwrap();
    let mut g = FakeGuest::start(&c, "bench");
    let Frame::Interval(mut i) = interval(0, &VALUES) else {
        unreachable!()
    };
    i.histogram[12..16].copy_from_slice(&5u32.to_be_bytes());
    i.histogram[24..32].copy_from_slice(&u64::MAX.to_be_bytes());
    g.send(&Frame::Interval(i));
    g.send(&done(1, 0));
    g.reply();
    let report = finish_settled(c);
    let text = error_text(&report.runs[0]);
    assert!(text.contains("interval 0: histogram would need"), "{text}");
    assert!(
        text.contains("intervals sent: guest reported 1, host received 0"),
        "{text}"
    );
}

#[test]
fn several_guests_at_once() {
    let runs: Vec<String> = (0..6).map(|i| format!("guest-{i}")).collect();
    let c = Collector::start(runs.clone()).unwrap();
    std::thread::scope(|s| {
        for run in &runs {
            let c = &c;
            s.spawn(move || {
                FakeGuest::start(c, run).run_to_done(20);
            });
        }
    });
    let report = finish_settled(c);
    for r in &report.runs {
        assert!(r.is_complete(), "{}: {}", r.run, error_text(r));
        assert_eq!(r.histogram.len(), 60);
    }
}

#[test]
fn run_ids_and_file_names_are_checked() {
    for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(65)] {
        assert!(
            matches!(Collector::start([bad]), Err(CollectError::BadRunId(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(
        Collector::start(["a", "a"]),
        Err(CollectError::DuplicateRun(_))
    ));
    assert!(matches!(
        Collector::start(Vec::<String>::new()),
        Err(CollectError::NoRuns)
    ));
    let c = Collector::start(["r1"]).unwrap();
    let target = c.target("r1").unwrap();
    assert_eq!(target.addr.to_string(), format!("10.0.2.2:{}", c.addr().port()));
    assert_eq!(Some(target.token), c.token("r1"));
    assert_eq!(target.run, "r1");
    assert_eq!(c.target("r2"), None);
    assert!(c.addr().ip().is_loopback());
    assert_ne!(c.token("r1"), Collector::start(["r1"]).unwrap().token("r1"));
}

#[test]
fn failed_write_leaves_no_partial_file() {
    let c = Collector::start(["bench"]).unwrap();
    FakeGuest::start(&c, "bench").run_to_done(1);
    let report = finish_settled(c);
    let dir = temp_dir("nowrite");
    // The summary path is taken by a directory: the last rename fails.
    std::fs::create_dir_all(dir.join("bench.json").join("x")).unwrap();
    let err = write_run_files(&report.runs[0], &dir).unwrap_err();
    assert!(err.to_string().contains("bench.json"), "{err}");
    let leftovers: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // An earlier complete file is replaced whole, never truncated in place.
    std::fs::remove_dir_all(dir.join("bench.json")).unwrap();
    std::fs::write(dir.join("bench.hgrm"), "old").unwrap();
    write_run_files(&report.runs[0], &dir).unwrap();
    assert!(std::fs::read_to_string(dir.join("bench.hgrm"))
        .unwrap()
        .contains("Percentile"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failed_runs_still_write_their_files() {
    let c = Collector::start(["bench"]).unwrap();
    let report = c.finish(Duration::ZERO);
    let dir = temp_dir("failed");
    let files = write_run_files(&report.runs[0], &dir).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&files.summary).unwrap()).unwrap();
    assert_eq!(json["status"], "failed");
    assert!(json["errors"][0].as_str().unwrap().contains("never connected"));
    assert_eq!(
        IntervalLogIterator::new(&std::fs::read(&files.interval_log).unwrap()).count(),
        0
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stream of one interval whose `Done` carries `kick_wake_ns`, applied
/// to a run state directly (the socket adds nothing here).
fn run_with_kick_wake(kick_wake_ns: Vec<u8>) -> RunResult {
    let mut state = RunState::new("bench");
    state.start(
        hello("bench", Token::from_bytes([7; Token::LEN])),
        SystemTime::now(),
    );
    state.on_frame(interval(0, &VALUES));
    let Frame::Done(mut d) = done(1, 0) else {
        unreachable!()
    };
    d.kick_wake_ns = kick_wake_ns;
    assert!(matches!(state.on_frame(Frame::Done(d)), Some(Reply::Ack(_))));
    state.into_result(Vec::new())
}

#[test]
fn kick_to_wake_latency_is_decoded_and_written_beside_the_latency() {
    let mut bytes = Vec::new();
    let kicks = histogram(&[900, 1_200, 1_500, 2_000_000]);
    HistogramEncoder::new().encode(&kicks, &mut bytes).unwrap();
    let r = run_with_kick_wake(bytes);
    assert!(r.is_complete(), "{}", error_text(&r));
    let h = r.kick_wake.as_ref().expect("a kick-to-wake histogram");
    assert_eq!(h.len(), 4);
    assert_eq!(h.value_at_quantile(0.5), kicks.value_at_quantile(0.5));

    let dir = temp_dir("kick-wake");
    let files = write_run_files(&r, &dir).unwrap();
    let hgrm = std::fs::read_to_string(&files.kick_wake).unwrap();
    assert!(hgrm.contains("Total count    =            4"), "{hgrm}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&files.summary).unwrap()).unwrap();
    assert_eq!(json["kick_wake_ns"]["count"], 4);
    assert_eq!(json["files"]["kick_wake"], "bench.kick-wake.hgrm");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_kicks_no_kick_to_wake_file_and_a_bad_histogram_fails_the_run() {
    let r = run_with_kick_wake(Vec::new());
    assert!(r.is_complete(), "{}", error_text(&r));
    assert!(r.kick_wake.is_none());
    let dir = temp_dir("no-kick-wake");
    let files = write_run_files(&r, &dir).unwrap();
    assert!(!files.kick_wake.exists());
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&files.summary).unwrap()).unwrap();
    assert!(json["kick_wake_ns"].is_null());
    let _ = std::fs::remove_dir_all(&dir);

    let r = run_with_kick_wake(vec![0x1c, 0x84, 0x93, 0x13, 0, 0]);
    assert!(!r.is_complete());
    assert!(r.kick_wake.is_none());
    assert!(
        r.errors.iter().any(|e| matches!(e, RunError::BadKickWake(_))),
        "{}",
        error_text(&r)
    );
}

/// Host decode-and-merge throughput: `cargo test -p pvbench --release -- --ignored bench_`.
#[test]
#[ignore = "benchmark"]
fn bench_decode_and_merge() {
    // Intervals like a workload's: 1000 samples over ~1000 distinct values.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let n = 20_000u64;
    let payloads: Vec<Vec<u8>> = (0..n)
        .map(|seq| {
            let values: Vec<u64> = (0..1000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    100 + x % 1000 + if x.trailing_zeros() >= 10 { 1_000_000 } else { 0 }
                })
                .collect();
            frames::encode(&interval(seq, &values)).unwrap()[4..].to_vec()
        })
        .collect();
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    let mut state = RunState::new("bench");
    state.start(
        hello("bench", Token::from_bytes([1; Token::LEN])),
        std::time::SystemTime::now(),
    );
    let started = Instant::now();
    for p in &payloads {
        state.on_payload(p).unwrap();
    }
    let took = started.elapsed();
    eprintln!(
        "decode+merge: {n} frames of ~{} bytes (1000 samples each) in {:.3} s: {:.0} frames/s, {:.1} MB/s",
        bytes as u64 / n,
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        bytes as f64 / took.as_secs_f64() / 1e6
    );
    let result = state.into_result(Vec::new());
    assert_eq!(result.histogram.len(), n * 1000);
}
