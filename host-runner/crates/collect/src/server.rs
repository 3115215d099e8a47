//! The listener: one thread accepting, one thread per guest connection.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use pvbench_wire::frames::{self, Frame, FrameError, FrameReader, Hello, Reply, Target, Token};

use super::run::{Disconnect, Rejection, RunResult, RunState};

/// How long a new connection has to present its Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a resumed connection waits for its run's previous connection to
/// end (the host sees it end once the old QEMU is gone).
const RESUME_WAIT: Duration = Duration::from_secs(5);
/// Connections open at once; more are refused (a guest needs one).
const MAX_CONNECTIONS: usize = 256;
/// Longest run id: it names files.
const MAX_RUN_ID: usize = 64;
/// Refused connections remembered (the count beyond is not).
const REJECTIONS_KEPT: usize = 256;

/// Why a collector could not start, or a run's files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// No port on 127.0.0.1 could be bound, or its address read.
    #[error("cannot listen on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// The accept thread could not be started.
    #[error("cannot start the collector's accept thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// A run id that cannot name files: empty, too long, a leading dot or a
    /// character outside `A-Z a-z 0-9 . _ -`.
    #[error("run id {0:?}: use 1 to 64 of A-Z a-z 0-9 . _ -, not starting with a dot")]
    BadRunId(String),
    /// Two runs have the same id.
    #[error("run id {0:?} is given twice")]
    DuplicateRun(String),
    /// [`Collector::start`] was given no runs.
    #[error("a collector needs at least one run")]
    NoRuns,
    /// `/dev/urandom` could not be read for a run's token.
    #[error("cannot make a run token: {0}")]
    Token(#[source] std::io::Error),
    /// A run file could not be written, or its summary serialized.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A run's interval log could not be encoded.
    #[error("writing the interval log of run {run}: {detail}")]
    IntervalLog {
        /// The run id.
        run: String,
        /// The encoder's error.
        detail: String,
    },
}

/// Everything a collector saw.
#[derive(Debug)]
pub struct Report {
    /// One per run given to [`Collector::start`], in that order.
    pub runs: Vec<RunResult>,
    /// Every refused connection (also listed under the run it named, if any).
    pub rejected: Vec<Rejection>,
}

impl Report {
    /// The result of run `id`.
    pub fn run(&self, id: &str) -> Option<&RunResult> {
        self.runs.iter().find(|r| r.run == id)
    }
}

/// Listens for the guests of a set of runs; see the module documentation.
pub struct Collector {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stopping: AtomicBool,
}

struct State {
    slots: Vec<Slot>,
    rejected: Vec<Rejection>,
    /// Clones of open connections, to shut them down at the end.
    open: HashMap<u64, TcpStream>,
    workers: Vec<JoinHandle<()>>,
    next_conn: u64,
}

struct Slot {
    run: String,
    token: Token,
    /// A connection presented the token.
    claimed: bool,
    /// Done or Error arrived.
    finished: bool,
    /// The run's state; taken by its connection thread while it runs.
    state: Option<RunState>,
    /// Operations received so far, readable while the run streams (the
    /// matrix's stall watch reads it to tell a stalled guest from a slow one).
    progress: Arc<AtomicU64>,
}

impl Collector {
    /// Starts listening on 127.0.0.1 (a free port) for the given runs, each with
    /// a fresh token.
    pub fn start<I, S>(runs: I) -> Result<Collector, CollectError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut slots: Vec<Slot> = Vec::new();
        for run in runs {
            let run = run.into();
            check_run_id(&run)?;
            if slots.iter().any(|s| s.run == run) {
                return Err(CollectError::DuplicateRun(run));
            }
            slots.push(Slot {
                token: new_token().map_err(CollectError::Token)?,
                state: Some(RunState::new(&run)),
                run,
                claimed: false,
                finished: false,
                progress: Arc::new(AtomicU64::new(0)),
            });
        }
        if slots.is_empty() {
            return Err(CollectError::NoRuns);
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(CollectError::Bind)?;
        let addr = listener.local_addr().map_err(CollectError::Bind)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                slots,
                rejected: Vec::new(),
                open: HashMap::new(),
                workers: Vec::new(),
                next_conn: 0,
            }),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("pvbench-collect".into())
                .spawn(move || accept_loop(listener, shared))
                .map_err(CollectError::Spawn)?
        };
        Ok(Collector {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// Where the collector listens (on the host).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token `run`'s guest must present in its Hello.
    pub fn token(&self, run: &str) -> Option<Token> {
        let state = self.shared.lock();
        state.slots.iter().find(|s| s.run == run).map(|s| s.token)
    }

    /// Where `run`'s guest streams to reach this collector through QEMU's
    /// user-mode network (its words: `metrics=10.0.2.2:PORT token=... run=...`).
    pub fn target(&self, run: &str) -> Option<Target> {
        let token = self.token(run)?;
        Some(Target::host_port(self.addr.port(), token, run))
    }

    /// The count of operations received for `run` so far, updated as its
    /// intervals arrive.
    pub fn progress(&self, run: &str) -> Option<Arc<AtomicU64>> {
        let state = self.shared.lock();
        state
            .slots
            .iter()
            .find(|s| s.run == run)
            .map(|s| Arc::clone(&s.progress))
    }

    /// Whether every run has sent Done or Error, or lost its connection.
    pub fn all_finished(&self) -> bool {
        self.shared.lock().slots.iter().all(Slot::settled)
    }

    /// Waits up to `timeout` for every run to finish, then closes every
    /// connection and returns what each run delivered. Runs that did not finish
    /// say why in their errors; this never panics on guest input.
    pub fn finish(mut self, timeout: Duration) -> Report {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while !state.slots.iter().all(Slot::settled) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = match self.shared.changed.wait_timeout(state, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        // Release: connection threads that see `stopping` after their read
        // fails treat the failure as our shutdown, not the guest's.
        self.shared.stopping.store(true, Ordering::Release);
        for stream in state.open.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        drop(state);
        // Wake the accept loop; it checks `stopping` after every accept.
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok();
        if let Some(acceptor) = self.acceptor.take() {
            if woke {
                let _ = acceptor.join();
            }
        }
        let workers = std::mem::take(&mut self.shared.lock().workers);
        for worker in workers {
            let _ = worker.join();
        }
        let mut state = self.shared.lock();
        let rejected = std::mem::take(&mut state.rejected);
        let runs = state
            .slots
            .iter_mut()
            .map(|slot| {
                let run_state = slot.state.take().unwrap_or_else(|| RunState::new(&slot.run));
                let mine = rejected
                    .iter()
                    .filter(|r| r.run.as_deref() == Some(slot.run.as_str()))
                    .cloned()
                    .collect();
                run_state.into_result(mine)
            })
            .collect();
        Report { runs, rejected }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        // A collector dropped without `finish` still must not leave threads
        // blocked on guests.
        if self.acceptor.is_some() {
            self.shared.stopping.store(true, Ordering::Release);
            for stream in self.shared.lock().open.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        }
    }
}

impl Slot {
    /// Nothing more will change for this run unless a guest connects late.
    fn settled(&self) -> bool {
        self.finished || (self.claimed && self.state.is_some())
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in
        // a way that matters more than losing the results; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        // Acquire: pairs with the Release store in `finish`.
        self.stopping.load(Ordering::Acquire)
    }

    fn reject(&self, peer: SocketAddr, run: Option<&str>, reason: String) {
        let mut state = self.lock();
        if state.rejected.len() < REJECTIONS_KEPT {
            state.rejected.push(Rejection {
                peer: peer.to_string(),
                run: run.map(|r| truncate(r, MAX_RUN_ID)),
                reason,
            });
        }
    }

    /// Hands the run's state to the connection that presented its token. A
    /// resumed Hello waits a while for the run's previous connection to end.
    fn claim(&self, hello: &Hello) -> Result<(usize, RunState, Arc<AtomicU64>), String> {
        let deadline = Instant::now() + RESUME_WAIT;
        let mut state = self.lock();
        loop {
            if self.stopping() {
                return Err("the collector is finishing".into());
            }
            let Some(i) = state.slots.iter().position(|s| s.run == hello.run) else {
                return Err(format!("unknown run {:?}", truncate(&hello.run, MAX_RUN_ID)));
            };
            let slot = &mut state.slots[i];
            if slot.token != hello.token {
                return Err(format!("wrong token for run {}", slot.run));
            }
            // A resumed Hello may also be the run's first to arrive (its first
            // connection broke before the Hello got through).
            match (hello.resumed, slot.claimed, slot.state.is_some()) {
                (_, false, true) | (1.., true, true) => {
                    let run_state = slot.state.take().expect("checked above");
                    slot.claimed = true;
                    return Ok((i, run_state, Arc::clone(&slot.progress)));
                }
                (1.., true, false) if Instant::now() < deadline => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    state = match self.changed.wait_timeout(state, left) {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    };
                }
                _ => return Err(format!("run {} already has a connection", slot.run)),
            }
        }
    }

    fn mark_finished(&self, slot: usize) {
        self.lock().slots[slot].finished = true;
        self.changed.notify_all();
    }

    fn give_back(&self, slot: usize, run_state: RunState) {
        self.lock().slots[slot].state = Some(run_state);
        self.changed.notify_all();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping() {
            break;
        }
        let Ok(stream) = stream else {
            // Per-connection failures (reset before accept): keep serving.
            continue;
        };
        let peer = stream
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
        let mut state = shared.lock();
        state.workers.retain(|w| !w.is_finished());
        if state.open.len() >= MAX_CONNECTIONS {
            drop(state);
            shared.reject(
                peer,
                None,
                format!("more than {MAX_CONNECTIONS} connections open"),
            );
            continue;
        }
        let id = state.next_conn;
        state.next_conn += 1;
        if let Ok(clone) = stream.try_clone() {
            state.open.insert(id, clone);
        }
        let worker = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("pvbench-collect-{id}"))
                .spawn(move || {
                    serve(&shared, stream, peer);
                    shared.lock().open.remove(&id);
                })
        };
        match worker {
            Ok(worker) => state.workers.push(worker),
            Err(e) => {
                state.open.remove(&id);
                drop(state);
                shared.reject(peer, None, format!("cannot start a thread for it: {e}"));
            }
        }
    }
}

/// One guest connection, from Hello to close.
fn serve(shared: &Shared, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_read_timeout(Some(HELLO_TIMEOUT));
    let mut reader = FrameReader::new(BufReader::new(&stream));
    let mut writer = &stream;
    let hello = match reader.read::<Frame>() {
        Ok(Some(Frame::Hello(hello))) => hello,
        Ok(Some(_)) => {
            return shared.reject(peer, None, "first frame is not Hello".into());
        }
        Ok(None) => return shared.reject(peer, None, "closed before Hello".into()),
        Err(e) => return shared.reject(peer, None, format!("before Hello: {e}")),
    };
    let (slot, mut run, progress) = match shared.claim(&hello) {
        Ok(claimed) => claimed,
        Err(reason) => {
            let _ = send(&mut writer, &Reply::Rejected(reason.clone()));
            return shared.reject(peer, Some(&hello.run), reason);
        }
    };
    let welcome = if hello.resumed == 0 {
        run.start(hello, SystemTime::now());
        Reply::Welcome
    } else {
        match run.resume(&hello) {
            Ok(resume) => Reply::Resume(resume),
            Err(reason) => {
                let _ = send(&mut writer, &Reply::Rejected(reason.clone()));
                shared.give_back(slot, run);
                return shared.reject(peer, Some(&hello.run), reason);
            }
        }
    };
    run.count_bytes(reader.bytes_read());
    let mut counted = reader.bytes_read();
    let _ = stream.set_read_timeout(None);
    let welcomed = send(&mut writer, &welcome);
    let how = match welcomed {
        Err(e) => Disconnect::Error(FrameError::Io(e)),
        Ok(()) => loop {
            let payload = match reader.next_payload() {
                Ok(Some(payload)) => payload,
                // After our shutdown a read ends in EOF or an error: either is ours.
                Ok(None) | Err(_) if shared.stopping() => break Disconnect::Stopped,
                Ok(None) => break Disconnect::Eof,
                Err(e) => break Disconnect::Error(e),
            };
            let was_finished = run.finished();
            // Guest input must never take the collector down: a panic in a
            // decoder is this run's protocol error.
            let applied = panic::catch_unwind(AssertUnwindSafe(|| run.on_payload(payload)));
            run.count_bytes(reader.bytes_read() - counted);
            counted = reader.bytes_read();
            // Relaxed: a monotonic count polled by the stall watch; it publishes nothing else.
            progress.store(run.received().ops, Ordering::Relaxed);
            let reply = match applied {
                Ok(Ok(reply)) => reply,
                Ok(Err(e)) => break Disconnect::Error(e),
                Err(_) => {
                    break Disconnect::Error(FrameError::Io(std::io::Error::other(
                        "the decoder panicked on this frame",
                    )))
                }
            };
            if let Some(reply) = reply {
                // A guest that does not read its Ack only hurts itself.
                let _ = send(&mut writer, &reply);
            }
            if run.finished() && !was_finished {
                shared.mark_finished(slot);
            }
        },
    };
    run.on_disconnect(how);
    shared.give_back(slot, run);
}

fn send(writer: &mut &TcpStream, reply: &Reply) -> std::io::Result<()> {
    let bytes = frames::encode(reply).map_err(std::io::Error::other)?;
    writer.write_all(&bytes)
}

fn check_run_id(run: &str) -> Result<(), CollectError> {
    let ok = !run.is_empty()
        && run.len() <= MAX_RUN_ID
        && !run.starts_with('.')
        && run
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(CollectError::BadRunId(run.into()))
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// 16 bytes from the kernel's random source.
fn new_token() -> std::io::Result<Token> {
    use std::io::Read;
    let mut bytes = [0u8; Token::LEN];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(Token::from_bytes(bytes))
}
