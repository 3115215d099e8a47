//! Guest modes that provoke the Hermit 0.11 races pvbench's kernel patch fixes,
//! for regression tests that boot real guests (under vCPU overcommit, where
//! the races are likely). Each either finishes with its data checked or, with
//! the race unfixed, stalls or panics the kernel.
//!
//! - `mode=fdstress`: threads doing file I/O on their own descriptors (object-map
//!   read lock) while others open, dup and close files (write lock). Hermit 0.11
//!   polled a fresh lock future per poll and dropped it, losing the contended
//!   waiter's wakeup: a thread blocked forever with the lock free.
//! - `mode=futexrace`: waiters in timed condition-variable waits (futex waits
//!   with a timeout) racing notifiers. When a wait times out just as a notifier
//!   pops it, Hermit 0.11 delivered the stale wakeup to a task no longer blocked:
//!   `unreachable!()` in `BlockedTaskQueue::custom_wakeup`.
//! - `mode=timedpoll`: `poll(2)` with a timeout on an idle listening socket.
//!   Hermit 0.11's `block_on` handed an absolute time to a relative futex wait,
//!   so the wait outlived its timeout by decades.
//! - `mode=sleeporder`: a short sleep, then a long one on the same core (run it
//!   with one vCPU). Hermit 0.11 armed the core's one-shot timer for the newest
//!   sleeper, so the short sleep lasted as long as the long one.
//! - `mode=allocalign`: many small allocations, kept alive. Hermit 0.11 raised
//!   every allocation to a 128-byte alignment, which made talc walk its free
//!   lists past every misaligned gap on each `malloc` (the kernbench-like spent
//!   81% of its time there); the patch keeps each request's own alignment, so
//!   8-byte boxes must not all land on multiples of 128.
//! - `mode=spawnwake`: threads spawning and joining empty threads, next to
//!   condition-variable ping-pong pairs (cross-core wakeups under the futex
//!   lock, interrupts off) and short timed waits (timer interrupts, each of
//!   which reschedules). Hermit 0.11's `spawn` took the scheduler-input table's plain
//!   spin lock with interrupts on: a timer interrupt there preempted the holder,
//!   and a same-core task waking a thread on the other core then spun on the
//!   lock with interrupts off for good, the other vCPU spinning behind it.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What a run did, for its summary line.
pub struct Summary {
    pub operations: u64,
}

/// `threads` threads, half doing I/O on long-lived files, half churning
/// descriptors, `rounds` rounds each.
pub fn fd_stress(threads: usize, rounds: usize) -> Result<Summary, String> {
    if threads < 2 || rounds == 0 {
        return Err("fdstress needs threads >= 2 and rounds >= 1".into());
    }
    let dir = "/tmp/pvbench-fdstress";
    let _ = fs::create_dir_all(dir);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            thread::spawn(move || {
                if t % 2 == 0 {
                    io_worker(dir, t, rounds)
                } else {
                    churn_worker(dir, t, rounds)
                }
            })
        })
        .collect();
    let mut operations = 0;
    for w in workers {
        operations += w.join().map_err(|_| "an fdstress thread panicked".to_string())??;
    }
    Ok(Summary { operations })
}

/// Writes a record, reads it back through a duplicate descriptor, checks it.
fn io_worker(dir: &str, t: usize, rounds: usize) -> Result<u64, String> {
    let path = format!("{dir}/io-{t}");
    let err = |what: &str, e: std::io::Error| format!("{path}: {what}: {e}");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| err("open", e))?;
    for round in 0..rounds {
        let record = record(t, round);
        file.seek(SeekFrom::Start(0)).map_err(|e| err("seek", e))?;
        file.write_all(&record).map_err(|e| err("write", e))?;
        // A dup (object-map write) and reads through it (object-map reads).
        let mut dup = dup(&file).map_err(|e| err("dup", e))?;
        dup.seek(SeekFrom::Start(0)).map_err(|e| err("seek", e))?;
        let mut back = vec![0; record.len()];
        dup.read_exact(&mut back).map_err(|e| err("read", e))?;
        if back != record {
            return Err(format!("{path}: round {round} read back other data"));
        }
    }
    Ok(rounds as u64 * 4)
}

/// Creates, writes, dups, closes, reads and removes a fresh file every round.
/// (A fresh name each round: Hermit 0.11's in-memory file system does not
/// truncate on `O_TRUNC`.)
fn churn_worker(dir: &str, t: usize, rounds: usize) -> Result<u64, String> {
    for round in 0..rounds {
        let path = format!("{dir}/churn-{t}-{round}");
        let err = |what: &str, e: std::io::Error| format!("{path}: {what}: {e}");
        let mut file = File::create(&path).map_err(|e| err("create", e))?;
        file.write_all(&record(t, round)).map_err(|e| err("write", e))?;
        let dup = dup(&file).map_err(|e| err("dup", e))?;
        drop(file);
        drop(dup);
        let back = fs::read(&path).map_err(|e| err("read", e))?;
        if back != record(t, round) {
            return Err(format!("{path}: round {round} read back other data"));
        }
        fs::remove_file(&path).map_err(|e| err("remove", e))?;
    }
    Ok(rounds as u64 * 6)
}

/// dup(2): std's `File::try_clone` is unsupported on Hermit.
fn dup(file: &File) -> std::io::Result<File> {
    use std::os::hermit::io::{AsRawFd, FromRawFd};
    // SAFETY: dup only reads the descriptor number.
    let fd = unsafe { hermit_abi::dup(file.as_raw_fd()) };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn record(t: usize, round: usize) -> Vec<u8> {
    format!("thread {t} round {round} {}", "x".repeat((t * 7 + round) % 64)).into_bytes()
}

/// `pairs` (waiter, notifier) pairs; each notifier signals `rounds` times, its
/// waiter waits for every signal with short timed waits.
pub fn futex_race(pairs: usize, rounds: usize) -> Result<Summary, String> {
    if pairs == 0 || rounds == 0 {
        return Err("futexrace needs threads >= 1 and rounds >= 1".into());
    }
    let mut handles = Vec::new();
    for p in 0..pairs {
        let shared = Arc::new((Mutex::new(0u64), Condvar::new()));
        let notifier = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || notify(&shared, p, rounds))
        };
        let waiter = thread::spawn(move || wait_all(&shared, p, rounds));
        handles.push((notifier, waiter));
    }
    let mut operations = 0;
    for (notifier, waiter) in handles {
        notifier.join().map_err(|_| "a notifier panicked".to_string())?;
        operations += waiter.join().map_err(|_| "a waiter panicked".to_string())??;
    }
    Ok(Summary { operations })
}

fn notify(shared: &(Mutex<u64>, Condvar), p: usize, rounds: usize) {
    let (count, signal) = shared;
    for round in 0..rounds {
        *count.lock().unwrap() += 1;
        signal.notify_one();
        // Vary the gap so notifications land on waits of every age, timed-out
        // ones included.
        let spins = ((p * 131 + round * 17) % 97) * 50;
        for _ in 0..spins {
            std::hint::spin_loop();
        }
        if round % 8 == 0 {
            thread::yield_now();
        }
    }
}

/// Waits until the counter reaches `rounds`; returns the waits it made.
fn wait_all(shared: &(Mutex<u64>, Condvar), p: usize, rounds: usize) -> Result<u64, String> {
    let (count, signal) = shared;
    let mut waits = 0u64;
    let mut seen = count.lock().unwrap();
    while *seen < rounds as u64 {
        // 50 us .. 1 ms: as long as a notifier's gap, so timeouts and wakes race.
        let timeout = Duration::from_micros(50 + ((p as u64 * 37 + waits * 13) % 950));
        seen = signal.wait_timeout(seen, timeout).map_err(|_| "poisoned".to_string())?.0;
        waits += 1;
    }
    Ok(waits)
}

/// The long sleeper of `sleep_order`.
const LONG_SLEEP: Duration = Duration::from_secs(5);

/// Sleeps `short`, after another thread on this core began sleeping
/// [`LONG_SLEEP`]: the short sleep must end before the long sleeper's deadline.
pub fn sleep_order(short: Duration) -> Result<Summary, String> {
    let started = Instant::now();
    let (asleep_tx, asleep) = std::sync::mpsc::channel();
    // On one vCPU this thread runs when the main thread blocks below, so its
    // sleep is queued after the main thread's.
    thread::spawn(move || {
        let _ = asleep_tx.send(());
        thread::sleep(LONG_SLEEP);
    });
    thread::sleep(short);
    let woke = started.elapsed();
    // An event order, not a speed: the long sleeper's deadline had not come.
    if woke >= LONG_SLEEP {
        return Err(format!(
            "a {short:?} sleep ended after {woke:?}, at or past the {LONG_SLEEP:?} deadline of a sleeper queued after it"
        ));
    }
    if asleep.try_recv().is_err() {
        return Err("the long sleeper never ran: run this mode with one vCPU".into());
    }
    Ok(Summary { operations: 1 })
}

/// `poll(2)` with a `ms` timeout on a listening socket nobody connects to,
/// `rounds` times: each must return 0 (timed out) after at least `ms`.
pub fn timed_poll(ms: u16, rounds: usize) -> Result<Summary, String> {
    use std::os::hermit::io::AsRawFd;
    let listener = std::net::TcpListener::bind("0.0.0.0:9977").map_err(|e| format!("bind: {e}"))?;
    for round in 0..rounds {
        let mut fds = [hermit_abi::pollfd {
            fd: listener.as_raw_fd(),
            events: hermit_abi::POLLIN,
            revents: 0,
        }];
        let started = Instant::now();
        // SAFETY: one valid pollfd, borrowed for the call.
        let ready = unsafe { hermit_abi::poll(fds.as_mut_ptr(), 1, i32::from(ms)) };
        let took = started.elapsed();
        if ready != 0 {
            return Err(format!("round {round}: poll returned {ready}, expected a timeout (0)"));
        }
        if took < Duration::from_millis(u64::from(ms)) {
            return Err(format!("round {round}: poll timed out after {took:?}, before its {ms} ms"));
        }
    }
    Ok(Summary {
        operations: rounds as u64,
    })
}

/// Allocates `count` 8-byte boxes, all alive at once, and counts those at a
/// multiple of 128 bytes: with allocations over-aligned to a cache line that is
/// every one of them (an error); with their own alignment about one in 16.
pub fn alloc_align(count: usize) -> Result<Summary, String> {
    let boxes: Vec<Box<u64>> = (0..count as u64).map(Box::new).collect();
    let aligned = boxes.iter().filter(|b| (&***b as *const u64).addr() % 128 == 0).count();
    // The values are checked so the boxes are really allocated and used.
    if boxes.iter().enumerate().any(|(i, b)| **b != i as u64) {
        return Err("a box lost its value".into());
    }
    println!("pvbench-guest: allocalign boxes={count} aligned_128={aligned}");
    if count >= 16 && aligned == count {
        return Err(format!("every one of {count} 8-byte boxes sits at a multiple of 128: allocations are over-aligned"));
    }
    Ok(Summary { operations: aligned as u64 })
}

/// `threads` spawners, each spawning and joining `rounds` empty threads, while
/// `threads` condition-variable pairs ping-pong and `threads` tickers wait out
/// 100 us timeouts; all stop when the spawners are done. Returns the spawns,
/// checked against the rounds asked for.
pub fn spawn_wake(threads: usize, rounds: usize) -> Result<Summary, String> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    if threads == 0 || rounds == 0 {
        return Err("spawnwake needs threads >= 1 and rounds >= 1".into());
    }
    let done = Arc::new(AtomicBool::new(false));
    let pings = Arc::new(AtomicU64::new(0));
    let mut helpers = Vec::new();
    for _ in 0..threads {
        // Hermit places threads round-robin, so the two ends of a pair land on
        // different cores on 2 vCPUs: each notify is a cross-core wakeup.
        let shared = Arc::new((Mutex::new(false), Condvar::new()));
        for side in [false, true] {
            let (shared, done, pings) = (Arc::clone(&shared), Arc::clone(&done), Arc::clone(&pings));
            helpers.push(thread::spawn(move || {
                let (turn, signal) = &*shared;
                // Relaxed: the flag only ends the loop; nothing is published with it.
                while !done.load(Ordering::Relaxed) {
                    let mut t = turn.lock().unwrap();
                    if *t == side {
                        *t = !side;
                        // Relaxed: a count read after the joins.
                        pings.fetch_add(1, Ordering::Relaxed);
                        signal.notify_one();
                    }
                    // Timed, so the loop sees `done` even if its partner left.
                    let _ = signal.wait_timeout(t, Duration::from_millis(1)).unwrap();
                }
            }));
        }
        let done = Arc::clone(&done);
        helpers.push(thread::spawn(move || {
            // A timed futex wait nobody ends: the core's timer interrupt every
            // 100 us (Hermit busy-waits shorter sleeps than 10 ms instead).
            let (lock, never) = (Mutex::new(()), Condvar::new());
            let mut guard = lock.lock().unwrap();
            // Relaxed: as above.
            while !done.load(Ordering::Relaxed) {
                guard = never.wait_timeout(guard, Duration::from_micros(100)).unwrap().0;
            }
        }));
    }
    let spawners: Vec<_> = (0..threads)
        .map(|_| {
            thread::spawn(move || {
                let mut spawned = 0u64;
                for _ in 0..rounds {
                    let child = thread::Builder::new().stack_size(16 * 1024).spawn(|| {});
                    child.map_err(|e| format!("spawn: {e}"))?.join().map_err(|_| "an empty thread panicked")?;
                    spawned += 1;
                }
                Ok::<u64, String>(spawned)
            })
        })
        .collect();
    let mut operations = 0;
    let mut first_err = None;
    for s in spawners {
        match s.join().map_err(|_| "a spawner panicked".to_string()).and_then(|r| r) {
            Ok(n) => operations += n,
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    // Relaxed: the helpers only poll it; the joins below order everything else.
    done.store(true, Ordering::Relaxed);
    for h in helpers {
        h.join().map_err(|_| "a helper panicked".to_string())?;
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    if operations != (threads * rounds) as u64 {
        return Err(format!("{operations} spawns, expected {}", threads * rounds));
    }
    println!("pvbench-guest: spawnwake pings={}", pings.load(Ordering::Relaxed));
    Ok(Summary { operations })
}
