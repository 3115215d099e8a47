//! One run's stream: checks frames in order, merges histograms, accounts for
//! every operation and interval, and says what went wrong.

use std::time::SystemTime;

use hdrhistogram::Histogram;
use pvbench_wire::frames::{
    self, Ack, Done, Frame, FrameError, Hello, HistogramView, Interval, LockStats, Reply, Resume,
};
use serde::Serialize;

/// Gap ranges kept for the error message; the count of missing intervals is exact.
const GAPS_KEPT: usize = 16;
/// Most samples a run may merge: HdrHistogram sums counts without overflow
/// checks (a debug-build panic, a wrong percentile in release), so the merged
/// histogram's total must stay well inside a u64.
const MAX_RUN_SAMPLES: u64 = 1 << 62;
/// Histogram errors reported one by one before they are only counted.
const HISTOGRAM_ERRORS_KEPT: usize = 8;

/// A connection the collector refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The peer's address.
    pub peer: String,
    /// The run its Hello named, if it got that far.
    pub run: Option<String>,
    /// Why it was refused.
    pub reason: String,
}

/// Whether a run's data is whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// `Done` arrived and every interval and operation it declares was received.
    Complete,
    /// Anything else; `errors` says what.
    Failed,
}

/// What is wrong with a run's data. A run with any of these is `Failed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// No connection presented the run's token in an accepted Hello.
    #[error("the guest never connected (or every connection it made was refused)")]
    NeverConnected,
    /// Collection ended while the run's stream was still open.
    #[error(
        "no Done frame: the stream was still open when collection ended ({intervals} intervals received)"
    )]
    NoDone {
        /// Intervals received by then.
        intervals: u64,
    },
    /// The connection closed, failed or broke off mid-frame before `Done` or
    /// the guest's `Error`.
    #[error("connection lost before Done after {intervals} intervals: {detail}")]
    ConnectionLost {
        /// Intervals received by then.
        intervals: u64,
        /// How it ended.
        detail: String,
    },
    /// A frame did not decode; an error even after `Done`.
    #[error("protocol error after {intervals} intervals: {detail}")]
    Protocol {
        /// Intervals received by then.
        intervals: u64,
        /// The decode error.
        detail: String,
    },
    /// A frame where the protocol allows none: a second Hello or Done,
    /// anything after Done or Error. Holds which.
    #[error("unexpected frame: {0}")]
    UnexpectedFrame(String),
    /// Intervals arrived with a sequence number already passed; none of them
    /// was merged.
    #[error(
        "{count} intervals with an already used sequence number (first: seq {first}, expected {expected})"
    )]
    DuplicateSeqs {
        /// How many.
        count: u64,
        /// The first such sequence number.
        first: u64,
        /// The sequence number expected when it came.
        expected: u64,
    },
    /// The gaps in the sequence numbers do not match the intervals the guest
    /// declared dropped (with no `Done`, any gap).
    #[error(
        "{missing} intervals missing (sequence numbers {ranges}); the guest declared {declared} dropped"
    )]
    MissingSeqs {
        /// Intervals missing.
        missing: u64,
        /// The guest's count of dropped intervals, or `none (no Done)`.
        declared: String,
        /// The first missing ranges, as `a` or `a..=b`.
        ranges: String,
    },
    /// An interval's histogram did not decode, or would overflow the run's;
    /// the interval was not counted. Only the first 8 are listed.
    #[error("interval {seq}: {reason}")]
    BadHistogram {
        /// The interval's sequence number.
        seq: u64,
        /// What was wrong.
        reason: String,
    },
    /// Bad histograms beyond those listed.
    #[error("{count} more intervals with bad histograms")]
    MoreBadHistograms {
        /// How many.
        count: u64,
    },
    /// A total the guest declared in `Done` differs from the host's count.
    #[error("{what}: guest reported {guest}, host received {host}")]
    Accounting {
        /// Which total.
        what: &'static str,
        /// The guest's figure.
        guest: u64,
        /// The host's figure.
        host: u64,
    },
    /// The guest declared data dropped at its end, so the run is incomplete
    /// even if everything it sent arrived.
    #[error(
        "the guest dropped {intervals} intervals ({ops} operations, {samples} samples) because its send queue was full"
    )]
    GuestDropped {
        /// Intervals dropped.
        intervals: u64,
        /// Operations in them.
        ops: u64,
        /// Latency samples in them.
        samples: u64,
    },
    /// The guest sent `Error`, with this message.
    #[error("the guest failed: {0}")]
    GuestFailed(String),
    /// The kick-to-wake histogram in `Done` did not decode.
    #[error("the kick-to-wake histogram in Done: {0}")]
    BadKickWake(String),
}

/// Counted by the host.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Received {
    /// Intervals merged; duplicates and bad histograms are not.
    pub intervals: u64,
    /// Operations in those intervals.
    pub ops: u64,
    /// Latency samples in their histograms.
    pub samples: u64,
    /// Bytes on the wire, frame prefixes included.
    pub bytes: u64,
}

/// One received interval, kept for the interval log.
#[derive(Debug, Clone)]
pub struct IntervalRecord {
    /// Its sequence number.
    pub seq: u64,
    /// The workload's repetition (from 1; 0 if it has none).
    pub rep: u32,
    /// Guest clock at its start, nanoseconds since the guest's sink started.
    pub start_ns: u64,
    /// Guest clock at its end; never before `start_ns`.
    pub end_ns: u64,
    /// Operations completed in it.
    pub ops: u64,
    /// Latency samples in its histogram.
    pub samples: u64,
    /// `ops` per recording thread.
    pub per_thread_ops: Vec<u64>,
    /// The pv-lock's counters during it.
    pub lock: LockStats,
    /// The histogram as received (V2), decoded again when the log is written:
    /// a decoded workload histogram is ~200 KB, its encoding usually < 2 KB.
    pub histogram: Vec<u8>,
}

/// Percentiles of the merged histogram, in the guest's unit (microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Smallest sample.
    pub min: u64,
    /// Mean of the samples.
    pub mean: f64,
    /// Standard deviation of the samples.
    pub stdev: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// 99.99th percentile.
    pub p99_99: u64,
    /// Largest sample.
    pub max: u64,
}

impl LatencySummary {
    /// The summary of `h`; all zeros if it is empty.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self {
                count: 0,
                min: 0,
                mean: 0.0,
                stdev: 0.0,
                p50: 0,
                p90: 0,
                p99: 0,
                p99_9: 0,
                p99_99: 0,
                max: 0,
            };
        }
        Self {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            stdev: h.stdev(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            p99_99: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The run id given to the collector.
    pub run: String,
    /// [`RunStatus::Complete`] only if `Done` arrived and `errors` is empty.
    pub status: RunStatus,
    /// Everything wrong with the run's data.
    pub errors: Vec<RunError>,
    /// Connections refused that named this run (wrong token, second connection).
    pub rejected: Vec<Rejection>,
    /// The accepted Hello.
    pub hello: Option<Hello>,
    /// Host time the Hello arrived: the interval log's start and base time.
    pub hello_at: Option<SystemTime>,
    /// The guest's `Done`, with its own totals.
    pub done: Option<Done>,
    /// The message of the guest's `Error` frame.
    pub guest_error: Option<String>,
    /// What the host counted.
    pub received: Received,
    /// Lock statistics summed over the received intervals.
    pub lock: LockStats,
    /// Percentiles of `histogram`.
    pub latency: LatencySummary,
    /// Every merged interval's histogram, added up.
    pub histogram: Histogram<u64>,
    /// The merged intervals, in arrival order.
    pub intervals: Vec<IntervalRecord>,
    /// Kick-to-wake latency in nanoseconds, decoded from `Done` (`None`
    /// without `Done`, or where the guest measured no kick: an empty or
    /// absent histogram).
    pub kick_wake: Option<Histogram<u64>>,
    /// Connections the guest opened again after one broke (a migration each).
    pub resumes: u32,
}

impl RunResult {
    /// Whether every operation the guest reported arrived.
    pub fn is_complete(&self) -> bool {
        self.status == RunStatus::Complete
    }
}

/// How a connection ended before or after `Done`.
#[derive(Debug)]
pub enum Disconnect {
    /// Clean end of stream.
    Eof,
    /// The collector shut the connection down at the end of collection.
    Stopped,
    /// A read or decode error.
    Error(FrameError),
}

/// The state of one run while its connection is open.
#[derive(Debug)]
pub struct RunState {
    run: String,
    hello: Option<Hello>,
    hello_at: Option<SystemTime>,
    merged: Histogram<u64>,
    intervals: Vec<IntervalRecord>,
    next_seq: u64,
    missing: u64,
    gaps: Vec<(u64, u64)>,
    duplicates: Option<(u64, u64, u64)>,
    bad_histograms: u64,
    received: Received,
    lock: LockStats,
    done: Option<Done>,
    guest_error: Option<String>,
    errors: Vec<RunError>,
    /// The Ack sent for `Done`, sent again to a guest that resumes after it.
    ack: Option<Ack>,
    /// How the last connection was lost before `Done`; an error only if the
    /// guest does not resume.
    lost: Option<RunError>,
    resumes: u32,
}

impl RunState {
    /// Run `run` before its guest has connected.
    pub fn new(run: &str) -> Self {
        Self {
            run: run.to_string(),
            hello: None,
            hello_at: None,
            merged: merged_histogram(),
            intervals: Vec::new(),
            next_seq: 0,
            missing: 0,
            gaps: Vec::new(),
            duplicates: None,
            bad_histograms: 0,
            received: Received::default(),
            lock: LockStats::default(),
            done: None,
            guest_error: None,
            errors: Vec::new(),
            ack: None,
            lost: None,
            resumes: 0,
        }
    }

    /// The accepted Hello (token already checked).
    pub fn start(&mut self, hello: Hello, at: SystemTime) {
        self.hello = Some(hello);
        self.hello_at = Some(at);
    }

    /// A resumed Hello (token already checked) on a new connection of a run
    /// whose last one broke: where the guest is to pick up, or why not.
    pub fn resume(&mut self, hello: &Hello) -> Result<Resume, String> {
        let Some(first) = &self.hello else {
            // The first connection broke before its Hello arrived: this one
            // starts the run.
            self.start(hello.clone(), SystemTime::now());
            self.resumes += 1;
            return Ok(Resume {
                next_seq: 0,
                ack: None,
            });
        };
        let same = first.workload == hello.workload
            && first.params == hello.params
            && first.vcpus == hello.vcpus
            && first.lock_requested == hello.lock_requested
            && first.lock_effective == hello.lock_effective
            && first.build_id == hello.build_id;
        if !same {
            return Err(format!(
                "run {} resumes with another Hello than its first",
                self.run
            ));
        }
        if self.guest_error.is_some() {
            return Err(format!("run {} already ended with the guest's error", self.run));
        }
        self.lost = None;
        self.resumes += 1;
        Ok(Resume {
            next_seq: self.next_seq,
            ack: self.ack,
        })
    }

    /// Whether a Hello was accepted.
    pub fn connected(&self) -> bool {
        self.hello.is_some()
    }

    /// `Done` or `Error` arrived: nothing more is expected.
    pub fn finished(&self) -> bool {
        self.done.is_some() || self.guest_error.is_some()
    }

    /// What has been received so far.
    pub fn received(&self) -> Received {
        self.received
    }

    /// Adds wire bytes to the count.
    pub fn count_bytes(&mut self, bytes: u64) {
        self.received.bytes += bytes;
    }

    /// Decodes and applies one payload; returns the reply owed to the guest.
    pub fn on_payload(&mut self, payload: &[u8]) -> Result<Option<Reply>, FrameError> {
        let frame: Frame = frames::decode(payload)?;
        Ok(self.on_frame(frame))
    }

    /// Applies one frame; returns the reply owed to the guest.
    pub fn on_frame(&mut self, frame: Frame) -> Option<Reply> {
        if self.finished() {
            let what = match (&frame, self.done.is_some()) {
                (Frame::Done(_), true) => "a second Done",
                (_, true) => "a frame after Done",
                (_, false) => "a frame after the guest's Error",
            };
            self.errors.push(RunError::UnexpectedFrame(what.into()));
            return None;
        }
        match frame {
            Frame::Hello(_) => {
                self.errors
                    .push(RunError::UnexpectedFrame("a second Hello".into()));
                None
            }
            Frame::Interval(interval) => {
                self.on_interval(interval);
                None
            }
            Frame::Done(done) => {
                self.done = Some(done);
                let ack = Ack {
                    intervals: self.received.intervals,
                    ops: self.received.ops,
                    samples: self.received.samples,
                };
                self.ack = Some(ack);
                Some(Reply::Ack(ack))
            }
            Frame::Error(failure) => {
                self.guest_error = Some(failure.message);
                None
            }
        }
    }

    fn on_interval(&mut self, interval: Interval) {
        let seq = interval.seq;
        if seq < self.next_seq {
            let d = self.duplicates.get_or_insert((0, seq, self.next_seq));
            d.0 += 1;
            return;
        }
        if seq > self.next_seq {
            self.note_gap(self.next_seq, seq);
        }
        self.next_seq = seq.saturating_add(1);
        // An interval is checked whole before anything is merged, and counted
        // whole or not at all, so the totals stay comparable.
        let view = match HistogramView::parse(&interval.histogram) {
            Ok(view) => view,
            Err(e) => return self.bad_histogram(seq, e.to_string()),
        };
        let samples = view.total();
        if self.received.samples.saturating_add(samples) > MAX_RUN_SAMPLES {
            return self.bad_histogram(seq, format!("the run would exceed {MAX_RUN_SAMPLES} samples"));
        }
        if let Err(e) = view.add_to(&mut self.merged) {
            return self.bad_histogram(seq, e.to_string());
        }
        self.received.intervals += 1;
        self.received.ops = self.received.ops.saturating_add(interval.ops);
        self.received.samples = self.received.samples.saturating_add(samples);
        self.lock.accumulate(&interval.lock);
        self.intervals.push(IntervalRecord {
            seq,
            rep: interval.rep,
            start_ns: interval.start_ns,
            end_ns: interval.end_ns.max(interval.start_ns),
            ops: interval.ops,
            samples,
            per_thread_ops: interval.per_thread_ops,
            lock: interval.lock,
            histogram: interval.histogram,
        });
    }

    fn note_gap(&mut self, from: u64, to: u64) {
        self.missing = self.missing.saturating_add(to - from);
        if self.gaps.len() < GAPS_KEPT {
            self.gaps.push((from, to));
        }
    }

    fn bad_histogram(&mut self, seq: u64, reason: String) {
        self.bad_histograms += 1;
        if self.bad_histograms <= HISTOGRAM_ERRORS_KEPT as u64 {
            self.errors.push(RunError::BadHistogram { seq, reason });
        }
    }

    /// The connection ended. Lost before `Done`, the run fails unless the
    /// guest resumes on a new connection.
    pub fn on_disconnect(&mut self, how: Disconnect) {
        let intervals = self.received.intervals;
        let lost = |detail: String| RunError::ConnectionLost { intervals, detail };
        match how {
            Disconnect::Eof if !self.finished() => {
                self.lost = Some(lost("the guest closed the connection".into()))
            }
            Disconnect::Error(FrameError::Io(e)) if !self.finished() => self.lost = Some(lost(e.to_string())),
            Disconnect::Error(e @ FrameError::Truncated { .. }) if !self.finished() => {
                self.lost = Some(lost(e.to_string()))
            }
            // After Done the guest may go away however it likes.
            Disconnect::Error(FrameError::Io(_) | FrameError::Truncated { .. }) => {}
            // A malformed frame is an error even after Done.
            Disconnect::Error(e) => self.errors.push(RunError::Protocol {
                intervals,
                detail: e.to_string(),
            }),
            Disconnect::Eof | Disconnect::Stopped => {}
        }
    }

    /// The run's verdict. `rejected` are the refused connections that named it.
    pub fn into_result(mut self, rejected: Vec<Rejection>) -> RunResult {
        let mut errors = Vec::new();
        if let Some(lost) = self.lost.take() {
            self.errors.push(lost);
        }
        if !self.connected() {
            errors.push(RunError::NeverConnected);
        } else if !self.finished()
            && !self
                .errors
                .iter()
                .any(|e| matches!(e, RunError::ConnectionLost { .. } | RunError::Protocol { .. }))
        {
            errors.push(RunError::NoDone {
                intervals: self.received.intervals,
            });
        }
        if let Some(message) = &self.guest_error {
            errors.push(RunError::GuestFailed(message.clone()));
        }
        errors.append(&mut self.errors);
        if self.bad_histograms > HISTOGRAM_ERRORS_KEPT as u64 {
            errors.push(RunError::MoreBadHistograms {
                count: self.bad_histograms - HISTOGRAM_ERRORS_KEPT as u64,
            });
        }
        if let Some((count, first, expected)) = self.duplicates {
            errors.push(RunError::DuplicateSeqs {
                count,
                first,
                expected,
            });
        }
        // Decoded once here: the report needs its percentiles and the run's
        // files its distribution. Empty bytes: a mode that never halts.
        let kick_wake = match self.done.as_ref().map(|d| d.kick_wake_ns.as_slice()) {
            None | Some([]) => None,
            Some(bytes) => match frames::decode_histogram(bytes) {
                Ok(h) => (!h.is_empty()).then_some(h),
                Err(e) => {
                    errors.push(RunError::BadKickWake(e.to_string()));
                    None
                }
            },
        };
        match self.done.clone() {
            Some(done) => self.check_totals(&done, &mut errors),
            None if self.missing > 0 => errors.push(RunError::MissingSeqs {
                missing: self.missing,
                declared: "none (no Done)".into(),
                ranges: self.gap_text(),
            }),
            None => {}
        }
        let status = if errors.is_empty() && self.done.is_some() {
            RunStatus::Complete
        } else {
            RunStatus::Failed
        };
        RunResult {
            run: self.run,
            status,
            errors,
            rejected,
            hello: self.hello,
            hello_at: self.hello_at,
            done: self.done,
            guest_error: self.guest_error,
            received: self.received,
            lock: self.lock,
            latency: LatencySummary::of(&self.merged),
            histogram: self.merged,
            intervals: self.intervals,
            kick_wake,
            resumes: self.resumes,
        }
    }

    /// Compares the guest's totals with what arrived.
    fn check_totals(&mut self, done: &Done, errors: &mut Vec<RunError>) {
        let produced = done.intervals_sent.saturating_add(done.intervals_dropped);
        if self.next_seq < produced {
            // The last intervals never arrived (dropped, or lost).
            self.note_gap(self.next_seq, produced);
        } else if self.next_seq > produced {
            errors.push(RunError::Accounting {
                what: "intervals produced (highest sequence number + 1)",
                guest: produced,
                host: self.next_seq,
            });
        }
        if self.missing != done.intervals_dropped {
            errors.push(RunError::MissingSeqs {
                missing: self.missing,
                declared: done.intervals_dropped.to_string(),
                ranges: self.gap_text(),
            });
        }
        let r = self.received;
        let checks = [
            ("intervals sent", done.intervals_sent, r.intervals),
            (
                "operations sent",
                done.ops.saturating_sub(done.ops_dropped),
                r.ops,
            ),
            (
                "latency samples sent",
                done.samples.saturating_sub(done.samples_dropped),
                r.samples,
            ),
        ];
        for (what, guest, host) in checks {
            if guest != host {
                errors.push(RunError::Accounting { what, guest, host });
            }
        }
        if done.ops_dropped > done.ops || done.samples_dropped > done.samples {
            errors.push(RunError::Accounting {
                what: "dropped operations (more than the total)",
                guest: done.ops_dropped,
                host: done.ops,
            });
        }
        if done.intervals_dropped > 0 || done.ops_dropped > 0 || done.samples_dropped > 0 {
            errors.push(RunError::GuestDropped {
                intervals: done.intervals_dropped,
                ops: done.ops_dropped,
                samples: done.samples_dropped,
            });
        }
    }

    fn gap_text(&self) -> String {
        let mut parts: Vec<String> = self
            .gaps
            .iter()
            .map(|&(a, b)| {
                if b - a == 1 {
                    a.to_string()
                } else {
                    format!("{a}..={}", b - 1)
                }
            })
            .collect();
        if self.gaps.len() == GAPS_KEPT {
            parts.push("...".into());
        }
        parts.join(", ")
    }
}

/// The run's merged histogram: resizes to whatever the intervals hold, so a merge
/// never fails on range (each interval's size is bounded when it is decoded).
fn merged_histogram() -> Histogram<u64> {
    // 3 significant digits, as the workloads record; 1..2 grows on demand.
    let mut h = Histogram::new_with_bounds(1, 2, 3).expect("1..2 at 3 digits is a valid histogram");
    h.auto(true);
    h
}
