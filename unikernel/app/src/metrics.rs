//! Streams the workload's measurements to the host while it runs
//! (`pvbench_wire::frames`), over TCP on the virtio-net NIC.
//!
//! The workload never waits for the network: [`Sink`] hands each interval to a
//! sender thread through a bounded queue and, if the queue is full, drops the
//! interval and counts it; `Done` tells the host what was dropped. The sender
//! thread owns the socket: it connects, says Hello, serializes and writes
//! intervals, and at the end waits for the host's Ack, because Hermit 0.11's
//! `shutdown()` does nothing and the VM powers off right after `main` returns.
//!
//! If the connection breaks (the guest was migrated to another QEMU, whose
//! user-mode network resets the connection it never saw), the sender connects
//! again with a resumed Hello and resends, from the host's next sequence
//! number, the interval frames it keeps ([`KEPT_FRAMES`]): the host gets each
//! interval once.
//!
//! ```ignore
//! let target = metrics::Target::parse(&line)?;              // None: metrics= not given
//! let mut sink = metrics::Sink::connect(target.unwrap(), info)?;
//! let outcome = pvbench_workloads::run(&config, &mut sink);  // Sink is an Observer
//! sink.finish(outcome.map(ending).map_err(|e| e.to_string()))?;       // figures in Done
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use pvbench_wire::cmdline;
use pvbench_wire::frames::{
    self, Ack, Done, Frame, FrameError, FrameReader, GuestFailure, Hello, HistogramEncoder, Interval,
    Figures, KernelEvents, LockMode, Param, Reply, Resume, TargetError, LEN_PREFIX_BYTES,
};
use pvbench_workloads::{IntervalReport, Observer, RunSummary};

use crate::pvlock::Counters;

/// How long the guest keeps trying to reach the host (DHCP may still be running).
const CONNECT_DEADLINE: Duration = Duration::from_secs(20);
/// How long the guest waits for the host's Welcome and, at the end, its Ack.
pub(crate) const REPLY_DEADLINE: Duration = Duration::from_secs(30);
/// Interval frames kept after writing, to resend on a resumed connection:
/// more than the TCP send buffer and QEMU's network can hold in flight when a
/// migration cuts the connection (a frame is 0.3-10 KB).
const KEPT_FRAMES: usize = 64;
/// Connections a run may open after its first (a migration costs one).
const MAX_RESUMES: u32 = 10_000;
/// How long the guest waits for the Ack before it takes the connection for
/// lost and resumes (the host acks at once; see `Conn::ack_within`).
const ACK_PATIENCE: Duration = Duration::from_secs(2);

const KERNEL_VERSION: &str = match option_env!("PVBENCH_KERNEL_VERSION") {
    Some(version) => version,
    None => "unknown",
};
const IMAGE_ID: &str = match option_env!("PVBENCH_IMAGE_ID") {
    Some(id) => id,
    None => "unknown",
};

/// Identifies this guest build in Hello.
pub fn build_id() -> String {
    format!("hermit-{KERNEL_VERSION}/image-{IMAGE_ID}")
}

#[derive(Debug)]
pub enum MetricsError {
    BadWord {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    Target(TargetError),
    Connect {
        addr: SocketAddr,
        source: io::Error,
    },
    Rejected(String),
    UnexpectedReply(String),
    /// The host closed the connection where a reply was due.
    Closed,
    Frame(FrameError),
    Write(io::Error),
    Timeout(&'static str),
    SenderGone,
    Workload(String),
}

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadWord { key, value, expected } => write!(f, "{key}={value}: expected {expected}"),
            Self::Target(e) => e.fmt(f),
            Self::Connect { addr, source } => write!(f, "cannot reach the host at {addr}: {source}"),
            Self::Rejected(why) => write!(f, "host refused the run: {why}"),
            Self::UnexpectedReply(what) => write!(f, "unexpected reply from the host: {what}"),
            Self::Closed => f.write_str("the host closed the connection"),
            Self::Frame(e) => write!(f, "metrics connection: {e}"),
            Self::Write(e) => write!(f, "sending metrics: {e}"),
            Self::Timeout(what) => write!(f, "no {what} from the host in time"),
            Self::SenderGone => f.write_str("the metrics sender thread ended early"),
            Self::Workload(e) => write!(f, "workload: {e}"),
        }
    }
}

impl std::error::Error for MetricsError {}

impl MetricsError {
    /// The connection broke (rather than the host refusing or misbehaving):
    /// worth connecting again.
    fn is_connection_loss(&self) -> bool {
        matches!(
            self,
            Self::Write(_) | Self::Closed | Self::Frame(FrameError::Io(_) | FrameError::Truncated { .. })
        )
    }
}

/// Where and as whom to stream (the `metrics=`, `token=`, `run=` and
/// `metrics_queue=` words): the wire's type, which the host builds them from.
pub use pvbench_wire::frames::Target;

/// How a run ended, for its last frame.
pub struct Ending {
    /// The workload's verdict line (checksum or invariant).
    pub line: String,
    pub figures: Figures,
    /// Lock counters since the lock was configured.
    pub counters: Counters,
    /// Kick-to-wake latencies (HDR V2 bytes, nanoseconds; empty if none).
    pub kick_wake_ns: Vec<u8>,
    pub kernel: KernelEvents,
}

/// What Hello says about the run, besides who the guest is.
pub struct RunInfo {
    pub workload: String,
    pub params: Vec<Param>,
    pub lock_requested: LockMode,
    pub lock_effective: LockMode,
    pub kick_backend: String,
    /// Cumulative lock counters; each interval carries the change since the last.
    pub lock_stats: Option<Box<dyn FnMut() -> Counters + Send>>,
}

impl RunInfo {
    /// A run without lock information; `params` are the line's `key=value` words
    /// other than the streaming words.
    pub fn new(workload: &str, line: &str) -> Self {
        let params = line
            .split_ascii_whitespace()
            .filter_map(|w| w.split_once('='))
            .filter(|(k, _)| !cmdline::METRICS_KEYS.contains(k))
            .map(|(k, v)| Param {
                key: k.into(),
                value: v.into(),
            })
            .collect();
        Self {
            workload: workload.into(),
            params,
            lock_requested: LockMode::Pv,
            lock_effective: LockMode::Pv,
            kick_backend: "unknown".into(),
            lock_stats: None,
        }
    }
}

/// What the sender thread is asked to do, in order.
enum Msg {
    Interval(Pending),
    Done(Done),
    Error(String),
}

struct Pending {
    seq: u64,
    rep: u32,
    start_ns: u64,
    end_ns: u64,
    ops: u64,
    per_thread_ops: Vec<u64>,
    histogram: Histogram<u64>,
    lock: Counters,
}

/// What the sender thread tells the sink.
enum Event {
    Connected,
    Finished(Result<Option<Ack>, MetricsError>),
}

/// The sender thread's own costs, for the report line.
#[derive(Debug, Default, Clone, Copy)]
pub struct SenderStats {
    pub frames: u64,
    pub bytes: u64,
    /// CPU spent serializing (histograms and frames).
    pub encode: Duration,
    /// Time in `write` (includes waiting for the network).
    pub write: Duration,
    /// Connections opened again after one broke.
    pub resumes: u32,
    /// Kept frames written again on resumed connections.
    pub resent: u64,
}

/// What [`Sink::finish`] reports.
#[derive(Debug, Clone, Copy)]
pub struct Finished {
    pub done: Option<Counts>,
    pub ack: Option<Ack>,
    pub sender: SenderStats,
    /// Time the workload's threads spent inside the sink.
    pub handoff: Duration,
}

/// The guest's own totals.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub intervals: u64,
    pub ops: u64,
    pub samples: u64,
    pub intervals_dropped: u64,
    pub ops_dropped: u64,
    pub samples_dropped: u64,
}

/// Streams intervals to the host; an [`Observer`] for the workloads.
pub struct Sink {
    tx: SyncSender<Msg>,
    events: Receiver<Event>,
    sender: Option<JoinHandle<SenderStats>>,
    t0: Instant,
    counts: Counts,
    result: Option<String>,
    lock_stats: Option<Box<dyn FnMut() -> Counters + Send>>,
    lock_prev: Counters,
    handoff: Duration,
    /// From `connect` to the host's Welcome.
    connected_after: Duration,
    /// Intervals the sender has finished with (written, or skipped after a failure).
    handled: Arc<AtomicU64>,
}

impl Sink {
    /// Connects, says Hello and waits for the host's Welcome (before the
    /// workload starts, so none of this is measured).
    pub fn connect(target: Target, mut info: RunInfo) -> Result<Sink, MetricsError> {
        let t0 = Instant::now();
        let hello = Hello {
            run: target.run.clone(),
            token: target.token,
            workload: info.workload.clone(),
            params: std::mem::take(&mut info.params),
            vcpus: thread::available_parallelism().map_or(0, |n| n.get() as u32),
            lock_requested: info.lock_requested,
            lock_effective: info.lock_effective,
            kick_backend: info.kick_backend.clone(),
            build_id: build_id(),
            resumed: 0,
        };
        let (tx, rx) = mpsc::sync_channel(target.queue());
        let (events_tx, events) = mpsc::channel();
        let addr = target.addr;
        let handled = Arc::new(AtomicU64::new(0));
        let sender_handled = Arc::clone(&handled);
        let sender = thread::Builder::new()
            .name("pvbench-metrics".into())
            .spawn(move || sender_main(addr, hello, rx, events_tx, &sender_handled))
            .map_err(MetricsError::Write)?;
        match events.recv_timeout(CONNECT_DEADLINE + REPLY_DEADLINE) {
            Ok(Event::Connected) => {}
            Ok(Event::Finished(Err(e))) => return Err(e),
            Ok(Event::Finished(Ok(_))) => return Err(MetricsError::SenderGone),
            Err(RecvTimeoutError::Timeout) => return Err(MetricsError::Timeout("welcome")),
            Err(RecvTimeoutError::Disconnected) => return Err(MetricsError::SenderGone),
        }
        let mut lock_stats = info.lock_stats.take();
        let lock_prev = lock_stats.as_mut().map(|f| f()).unwrap_or_default();
        Ok(Sink {
            tx,
            events,
            sender: Some(sender),
            t0,
            counts: Counts::default(),
            result: None,
            lock_stats,
            lock_prev,
            handoff: Duration::ZERO,
            connected_after: t0.elapsed(),
            handled,
        })
    }

    /// How long connecting and the Hello/Welcome exchange took.
    pub fn connected_after(&self) -> Duration {
        self.connected_after
    }

    /// Queues one interval that ended now and lasted `span`; never blocks.
    pub fn record(
        &mut self,
        rep: u32,
        span: Duration,
        ops: u64,
        per_thread_ops: Vec<u64>,
        histogram: Histogram<u64>,
    ) {
        let entered = Instant::now();
        let end_ns = nanos(entered - self.t0);
        let lock = match self.lock_stats.as_mut() {
            Some(f) => {
                let now = f();
                let delta = now.since(&self.lock_prev);
                self.lock_prev = now;
                delta
            }
            None => Counters::default(),
        };
        let samples = histogram.len();
        let seq = self.counts.intervals;
        self.counts.intervals += 1;
        self.counts.ops += ops;
        self.counts.samples += samples;
        let pending = Pending {
            seq,
            rep,
            start_ns: end_ns.saturating_sub(nanos(span)),
            end_ns,
            ops,
            per_thread_ops,
            histogram,
            lock,
        };
        match self.tx.try_send(Msg::Interval(pending)) {
            Ok(()) => {}
            // A dead sender is reported by `finish`; its intervals count as dropped too.
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counts.intervals_dropped += 1;
                self.counts.ops_dropped += ops;
                self.counts.samples_dropped += samples;
            }
        }
        self.handoff += entered.elapsed();
    }

    /// Waits until the sender has finished with every queued interval, or
    /// `timeout` passed; returns whether it has. For measurements that must
    /// include the cost of sending (a real workload never waits for this).
    pub fn drain(&self, timeout: Duration) -> bool {
        let queued = self.counts.intervals - self.counts.intervals_dropped;
        let deadline = Instant::now() + timeout;
        // Acquire: pairs with the sender's Release increment; nothing else is
        // published through it, so this only orders the measurement.
        while self.handled.load(Ordering::Acquire) < queued {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_micros(200));
        }
        true
    }

    /// Ends the stream: `Done` with the totals (and `result`, the workload's
    /// verdict) or `Error` with the failure; waits for the sender to write
    /// everything and, after `Done`, for the host's Ack.
    pub fn finish(mut self, outcome: Result<Ending, String>) -> Result<Finished, MetricsError> {
        let c = self.counts;
        let (msg, done) = match outcome {
            Ok(ending) => (
                Msg::Done(Done {
                    ops: c.ops,
                    samples: c.samples,
                    intervals_sent: c.intervals - c.intervals_dropped,
                    intervals_dropped: c.intervals_dropped,
                    ops_dropped: c.ops_dropped,
                    samples_dropped: c.samples_dropped,
                    result: self.result.take().unwrap_or(ending.line),
                    elapsed_ns: nanos(self.t0.elapsed()),
                    figures: ending.figures,
                    lock: ending.counters.lock,
                    queued: ending.counters.queued,
                    tas: ending.counters.tas,
                    kick_wake_ns: ending.kick_wake_ns,
                    kernel: ending.kernel,
                }),
                Some(c),
            ),
            Err(message) => (Msg::Error(message), None),
        };
        // Blocking is fine now that the workload is over, but not forever.
        let deadline = Instant::now() + REPLY_DEADLINE;
        let mut msg = msg;
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                    msg = m;
                    thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(_)) => return Err(MetricsError::Timeout("room in the send queue")),
                Err(TrySendError::Disconnected(_)) => break,
            }
        }
        let ack = match self.events.recv_timeout(REPLY_DEADLINE + Duration::from_secs(30)) {
            Ok(Event::Finished(result)) => result?,
            Ok(Event::Connected) => return Err(MetricsError::SenderGone),
            Err(RecvTimeoutError::Timeout) => return Err(MetricsError::Timeout("acknowledgement")),
            Err(RecvTimeoutError::Disconnected) => return Err(MetricsError::SenderGone),
        };
        let sender = self.sender.take().and_then(|h| h.join().ok()).unwrap_or_default();
        Ok(Finished {
            done,
            ack,
            sender,
            handoff: self.handoff,
        })
    }
}

impl Observer for Sink {
    fn interval(&mut self, report: IntervalReport) {
        self.record(
            report.rep,
            report.span,
            report.ops,
            report.per_thread_ops,
            report.histogram,
        );
    }

    fn done(&mut self, summary: &RunSummary) {
        self.result = Some(summary.line());
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The sender thread: owns the socket from connect to Ack.
fn sender_main(
    addr: SocketAddr,
    hello: Hello,
    rx: Receiver<Msg>,
    events: mpsc::Sender<Event>,
    handled: &AtomicU64,
) -> SenderStats {
    let mut stats = SenderStats::default();
    let mut link = match Link::open(addr, hello, &mut stats) {
        Ok(link) => link,
        Err(e) => {
            let _ = events.send(Event::Finished(Err(e)));
            return stats;
        }
    };
    let _ = events.send(Event::Connected);
    // After an error the stream is given up: keep draining the queue so the
    // workload never blocks, and report the error at the end.
    let mut failed: Option<MetricsError> = None;
    while let Ok(msg) = rx.recv() {
        let result = match msg {
            Msg::Interval(p) => {
                let result = match failed {
                    None => link.interval(p, &mut stats),
                    Some(_) => Ok(()),
                };
                // Release: pairs with the Acquire in `Sink::drain`.
                handled.fetch_add(1, Ordering::Release);
                result
            }
            Msg::Done(done) => {
                let result = match failed.take() {
                    Some(e) => Err(e),
                    None => link.done(done, &mut stats),
                };
                let _ = events.send(Event::Finished(result.map(Some)));
                return stats;
            }
            Msg::Error(message) => {
                let result = match failed.take() {
                    Some(e) => Err(e),
                    None => link.error(message, &mut stats),
                };
                let _ = events.send(Event::Finished(result.map(|()| None)));
                return stats;
            }
        };
        if let Err(e) = result {
            failed.get_or_insert(e);
        }
    }
    stats
}

/// The run's stream across connections: the current one, and the interval
/// frames kept to resend if it breaks.
struct Link {
    addr: SocketAddr,
    hello: Hello,
    /// `None` only between closing a broken connection and opening the next.
    conn: Option<Conn>,
    encoder: Encoder,
    /// Interval frames already written, oldest first: (seq, encoded frame).
    kept: VecDeque<(u64, Vec<u8>)>,
}

impl Link {
    fn open(addr: SocketAddr, hello: Hello, stats: &mut SenderStats) -> Result<Link, MetricsError> {
        let mut link = Link {
            addr,
            hello,
            conn: None,
            encoder: Encoder::default(),
            kept: VecDeque::with_capacity(KEPT_FRAMES),
        };
        match Conn::open(addr, &link.hello, stats) {
            Ok((conn, Reply::Welcome)) => link.conn = Some(conn),
            Ok((_, Reply::Rejected(why))) => return Err(MetricsError::Rejected(why)),
            Ok((_, other)) => return Err(MetricsError::UnexpectedReply(format!("{other:?}"))),
            // Broken before the Welcome (a migration): go on as a resumed
            // connection, whether or not the Hello arrived.
            Err(e) => {
                link.resume(e, stats)?;
            }
        }
        Ok(link)
    }

    fn conn(&mut self) -> Result<&mut Conn, MetricsError> {
        self.conn.as_mut().ok_or(MetricsError::Closed)
    }

    fn interval(&mut self, p: Pending, stats: &mut SenderStats) -> Result<(), MetricsError> {
        let seq = p.seq;
        // The oldest kept frame's buffer is reused once the window is full.
        let mut bytes = match self.kept.len() {
            KEPT_FRAMES => self.kept.pop_front().map(|(_, b)| b).unwrap_or_default(),
            _ => Vec::new(),
        };
        self.encoder.interval(p, &mut bytes, stats)?;
        let written = self.conn().and_then(|c| c.write(&bytes, stats));
        // Kept whether or not the write worked: a resumed connection resends it.
        self.kept.push_back((seq, bytes));
        match written {
            Ok(()) => Ok(()),
            Err(e) => self.resume(e, stats).map(|_| ()),
        }
    }

    fn done(&mut self, done: Done, stats: &mut SenderStats) -> Result<Ack, MetricsError> {
        let mut bytes = Vec::new();
        self.encoder.frame(&Frame::Done(done), &mut bytes, stats)?;
        loop {
            let acked = self
                .conn()
                .and_then(|c| c.write(&bytes, stats))
                .and_then(|()| self.conn()?.ack_within(ACK_PATIENCE));
            match acked {
                Ok(ack) => return Ok(ack),
                Err(e) => {
                    if let Some(ack) = self.resume(e, stats)? {
                        // Done had arrived; only its Ack was lost.
                        return Ok(ack);
                    }
                }
            }
        }
    }

    fn error(&mut self, message: String, stats: &mut SenderStats) -> Result<(), MetricsError> {
        let mut bytes = Vec::new();
        self.encoder
            .frame(&Frame::Error(GuestFailure { message }), &mut bytes, stats)?;
        loop {
            match self.conn().and_then(|c| c.write(&bytes, stats)) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.resume(e, stats)?;
                }
            }
        }
    }

    /// After `cause` broke the connection: connects again with a resumed Hello
    /// and resends the kept frames the host has not received. Returns the
    /// host's Ack if `Done` had already arrived.
    fn resume(&mut self, cause: MetricsError, stats: &mut SenderStats) -> Result<Option<Ack>, MetricsError> {
        if !cause.is_connection_loss() || self.hello.resumed >= MAX_RESUMES {
            return Err(cause);
        }
        // Closed first: the host takes the run over to the new connection once
        // it sees the old one end.
        self.conn = None;
        let deadline = Instant::now() + CONNECT_DEADLINE;
        let mut last = cause;
        while Instant::now() < deadline {
            self.hello.resumed += 1;
            match self.reconnect(stats) {
                Ok(ack) => {
                    stats.resumes += 1;
                    return Ok(ack);
                }
                // The host may not have seen the old connection end yet: it
                // refuses until then.
                Err(e @ (MetricsError::Rejected(_) | MetricsError::Connect { .. })) => last = e,
                Err(e) if e.is_connection_loss() => last = e,
                Err(e) => return Err(e),
            }
            self.conn = None;
            thread::sleep(Duration::from_millis(50));
        }
        Err(last)
    }

    fn reconnect(&mut self, stats: &mut SenderStats) -> Result<Option<Ack>, MetricsError> {
        let (conn, reply) = Conn::open(self.addr, &self.hello, stats)?;
        let Resume { next_seq, ack } = match reply {
            Reply::Resume(resume) => resume,
            Reply::Rejected(why) => return Err(MetricsError::Rejected(why)),
            other => return Err(MetricsError::UnexpectedReply(format!("{other:?}"))),
        };
        let conn = self.conn.insert(conn);
        if ack.is_some() {
            return Ok(ack);
        }
        // Frames older than the window and not received are lost for good: the
        // host sees the gap in the sequence numbers and says so.
        for (_, bytes) in self.kept.iter().filter(|(seq, _)| *seq >= next_seq) {
            conn.write(bytes, stats)?;
            stats.resent += 1;
        }
        Ok(None)
    }
}

/// Serializes frames, reusing its buffers.
#[derive(Default)]
struct Encoder {
    histograms: HistogramEncoder,
    hist: Vec<u8>,
}

impl Encoder {
    fn interval(&mut self, p: Pending, out: &mut Vec<u8>, stats: &mut SenderStats) -> Result<(), MetricsError> {
        let started = Instant::now();
        self.hist.clear();
        self.histograms
            .encode(&p.histogram, &mut self.hist)
            .map_err(|e| MetricsError::Workload(e.to_string()))?;
        // The histogram is freed here, on the sender, not on the workload's thread.
        drop(p.histogram);
        let frame = Frame::Interval(Interval {
            seq: p.seq,
            rep: p.rep,
            start_ns: p.start_ns,
            end_ns: p.end_ns,
            ops: p.ops,
            per_thread_ops: p.per_thread_ops,
            histogram: std::mem::take(&mut self.hist),
            lock: p.lock.lock,
            queued: p.lock.queued,
            tas: p.lock.tas,
        });
        stats.encode += started.elapsed();
        let result = self.frame(&frame, out, stats);
        if let Frame::Interval(i) = frame {
            self.hist = i.histogram;
        }
        result
    }

    fn frame(&mut self, frame: &Frame, out: &mut Vec<u8>, stats: &mut SenderStats) -> Result<(), MetricsError> {
        let started = Instant::now();
        out.clear();
        frames::encode_into(frame, out).map_err(MetricsError::Frame)?;
        stats.encode += started.elapsed();
        Ok(())
    }
}

struct Conn {
    stream: TcpStream,
    replies: FrameReader<TcpStream>,
}

impl Conn {
    /// Connects, says Hello and returns the host's answer.
    fn open(addr: SocketAddr, hello: &Hello, stats: &mut SenderStats) -> Result<(Conn, Reply), MetricsError> {
        let stream = connect(addr)?;
        // Frames are written whole; Nagle would only delay them.
        let _ = stream.set_nodelay(true);
        let replies = FrameReader::new(
            stream
                .try_clone()
                .map_err(|source| MetricsError::Connect { addr, source })?,
        );
        let mut conn = Conn { stream, replies };
        let mut bytes = Vec::new();
        Encoder::default().frame(&Frame::Hello(hello.clone()), &mut bytes, stats)?;
        conn.write(&bytes, stats)?;
        let reply = conn.reply()?;
        Ok((conn, reply))
    }

    fn write(&mut self, bytes: &[u8], stats: &mut SenderStats) -> Result<(), MetricsError> {
        let started = Instant::now();
        self.stream.write_all(bytes).map_err(MetricsError::Write)?;
        stats.write += started.elapsed();
        stats.frames += 1;
        stats.bytes += bytes.len() as u64;
        Ok(())
    }

    fn reply(&mut self) -> Result<Reply, MetricsError> {
        match self.replies.read::<Reply>() {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err(MetricsError::Closed),
            Err(e) => Err(MetricsError::Frame(e)),
        }
    }

    /// The host's Ack, if it comes within `patience`; otherwise the connection
    /// counts as lost. A guest migrated between sending `Done` and reading the
    /// Ack would wait forever: the Ack went to the old QEMU's network, and a
    /// guest that only reads never learns its connection is gone. Hermit 0.11
    /// has no read timeout (SO_RCVTIMEO is refused), so the wait polls a
    /// non-blocking socket; the Ack is one small frame, read whole.
    fn ack_within(&mut self, patience: Duration) -> Result<Ack, MetricsError> {
        self.stream.set_nonblocking(true).map_err(|e| MetricsError::Frame(FrameError::Io(e)))?;
        let deadline = Instant::now() + patience;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        let reply = loop {
            if let Some(len) = frame_len(&buf) {
                if buf.len() >= LEN_PREFIX_BYTES + len {
                    break frames::decode::<Reply>(&buf[LEN_PREFIX_BYTES..LEN_PREFIX_BYTES + len])
                        .map_err(MetricsError::Frame)?;
                }
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(MetricsError::Closed),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(5));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(MetricsError::Closed),
                Err(e) => return Err(MetricsError::Frame(FrameError::Io(e))),
            }
        };
        match reply {
            Reply::Ack(ack) => Ok(ack),
            Reply::Rejected(why) => Err(MetricsError::Rejected(why)),
            other => Err(MetricsError::UnexpectedReply(format!("{other:?}"))),
        }
    }
}

/// The payload length a buffer's frame declares, once its prefix is in.
fn frame_len(buf: &[u8]) -> Option<usize> {
    let prefix: [u8; LEN_PREFIX_BYTES] = buf.get(..LEN_PREFIX_BYTES)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(prefix)).ok()
}

/// Connects, retrying while the NIC comes up (DHCP) or the host is not listening yet.
fn connect(addr: SocketAddr) -> Result<TcpStream, MetricsError> {
    let deadline = Instant::now() + CONNECT_DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match TcpStream::connect_timeout(&addr, left.max(Duration::from_millis(1))) {
            Ok(stream) => return Ok(stream),
            Err(source) if Instant::now() >= deadline => return Err(MetricsError::Connect { addr, source }),
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}
