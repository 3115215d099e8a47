//! The lock on the host: threads play CPUs through `pvlock::host` (halt =
//! park, kick = unpark). More threads than cores, holders that get
//! "preempted" on purpose, and checks of mutual exclusion, FIFO order, the
//! statistics and that nobody is left halted.
//!
//! Sleeps appear only as deliberate preemption of a lock holder. Where a test
//! needs another thread to reach a state, it waits for that state (an atomic,
//! the lock word, a channel) under a watchdog that fails with a diagnosis.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use pvlock::{host, stats, PvOps, RawPvTicketLock, MAX_CPUS};

/// The lock's and the backend's state is global: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Fails a test that has not finished after this long: a lost wakeup shows
/// up as a thread halted forever.
const WATCHDOG: Duration = Duration::from_secs(120);

fn setup(spin_threshold: u32) -> MutexGuard<'static, ()> {
    let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    host::install();
    pvlock::set_enabled(true);
    pvlock::set_spin_threshold(spin_threshold);
    host::set_kick_hook(None);
    host::clear_tokens();
    host::reset_counters();
    stats::reset();
    serial
}

/// A lock and the plain data it protects.
struct Protected {
    lock: RawPvTicketLock,
    /// Set while some thread is inside the critical section.
    inside: AtomicBool,
    /// Incremented non-atomically under the lock.
    counter: UnsafeCell<u64>,
    /// Acquisition order, appended under the lock.
    order: UnsafeCell<Vec<u32>>,
}

// SAFETY: `counter` and `order` are only accessed with `lock` held.
unsafe impl Sync for Protected {}

impl Protected {
    fn new() -> Self {
        Self {
            lock: RawPvTicketLock::new(),
            inside: AtomicBool::new(false),
            counter: UnsafeCell::new(0),
            order: UnsafeCell::new(Vec::new()),
        }
    }

    /// The critical section: a read-modify-write of `counter` with a window
    /// in which another holder would be noticed.
    fn critical(&self, cpu: u32, preempt: Option<Duration>) {
        assert!(!self.inside.swap(true, Ordering::Relaxed), "two holders at once");
        // SAFETY: the caller holds `lock`.
        let before = unsafe { *self.counter.get() };
        match preempt {
            Some(d) if d.is_zero() => thread::yield_now(),
            Some(d) => thread::sleep(d),
            None => {}
        }
        // SAFETY: the caller holds `lock`.
        unsafe {
            *self.counter.get() = before + 1;
            (*self.order.get()).push(cpu);
        }
        self.inside.store(false, Ordering::Relaxed);
    }
}

/// Threads playing CPUs. Each reports its end (return or panic) on a
/// channel, so that [`Workers::join`] waits for those events.
struct Workers<T> {
    handles: Vec<JoinHandle<T>>,
    ended_tx: Sender<()>,
    ended_rx: Receiver<()>,
}

/// Reports a worker's end when dropped, which a panic does too.
struct EndGuard(Sender<()>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

impl<T: Send + 'static> Workers<T> {
    fn new() -> Self {
        let (ended_tx, ended_rx) = mpsc::channel();
        Self {
            handles: Vec::new(),
            ended_tx,
            ended_rx,
        }
    }

    fn spawn(&mut self, f: impl FnOnce() -> T + Send + 'static) {
        let end = EndGuard(self.ended_tx.clone());
        self.handles.push(thread::spawn(move || {
            let _end = end;
            f()
        }));
    }

    /// Whether some worker has returned or panicked.
    fn any_ended(&self) -> bool {
        self.handles.iter().any(JoinHandle::is_finished)
    }

    /// Waits for every worker to end, failing with `diagnose()` if they take
    /// longer than [`WATCHDOG`].
    fn join(self, diagnose: impl Fn() -> String) -> Vec<T> {
        let deadline = Instant::now() + WATCHDOG;
        for _ in 0..self.handles.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.ended_rx.recv_timeout(left).is_err() {
                panic!("threads stuck after {WATCHDOG:?}: {}", diagnose());
            }
        }
        self.handles
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect()
    }
}

/// Spins (yielding) until `reached()`, failing after [`WATCHDOG`] with `what`
/// and `diagnose()`.
fn wait_until(what: &str, mut reached: impl FnMut() -> bool, diagnose: impl Fn() -> String) {
    let start = Instant::now();
    while !reached() {
        assert!(
            start.elapsed() < WATCHDOG,
            "{what}: not reached after {WATCHDOG:?}: {}",
            diagnose()
        );
        thread::yield_now();
    }
}

fn diagnose(lock: &RawPvTicketLock) -> String {
    format!(
        "lock {:?}, waiting set {:#x}, halted {:#x}, {:?}, {:?}",
        lock.state(),
        pvlock::waiting_cpus(),
        host::halted_cpus(),
        host::counters(),
        stats::snapshot()
    )
}

/// Checks that the lock's statistics agree with what the backend saw, and
/// that everything is quiescent.
fn check_consistent(lock: &RawPvTicketLock) -> stats::PvLockStats {
    let s = stats::snapshot();
    let h = host::counters();
    let detail = diagnose(lock);
    // Every slow-path entry either picked the lock up or halted.
    assert_eq!(s.taken_slow, s.taken_slow_pickup + s.halted, "{detail}");
    assert_eq!(s.halted, h.halts, "{detail}");
    assert_eq!(s.halted_irqs_disabled, h.halts_irqs_disabled, "{detail}");
    assert!(s.spurious_wakeups <= s.halted, "{detail}");
    // Every halt returned, and only by consuming a kick.
    assert_eq!(h.tokens_consumed, h.halts, "{detail}");
    // Every kick came from an unlock that saw the flag and found its waiter;
    // a kick that found its waiter already gone may still be pending.
    assert_eq!(s.released_slow_kicked, h.kicks, "{detail}");
    assert!(h.tokens_consumed + host::pending_tokens() <= h.kicks, "{detail}");
    // Every released_slow either kicked a waiter or found none.
    assert_eq!(
        s.released_slow,
        s.released_slow_kicked + s.released_slow_unkicked(),
        "{detail}"
    );
    assert_eq!(s.time_blocked_histogram.iter().sum::<u64>(), s.halted, "{detail}");
    // Nobody left halted or registered as waiting; no stale flag.
    assert_eq!(host::halted_cpus(), 0, "{detail}");
    assert_eq!(pvlock::waiting_cpus(), 0, "{detail}");
    let state = lock.state();
    assert!(!state.is_locked(), "{detail}");
    assert!(!state.slowpath, "flag left set: {detail}");
    s
}

#[test]
fn stress_halting_early() {
    // Under Miri's scheduler a spinning waiter rarely runs out of budget.
    stress(if cfg!(miri) { 0 } else { 100 });
}

#[test]
fn stress_spinning_longer() {
    // Waiters that often get the lock while spinning or just before halting
    // (pickups), and kicks that arrive late (spurious wakeups).
    stress(if cfg!(miri) { 10 } else { 5000 });
}

/// 8 threads on this 2-core machine, holders preempted now and then.
fn stress(spin_threshold: u32) {
    const THREADS: u32 = 8;
    // 8 * 5000 acquisitions: the 2^15 tickets wrap around under contention.
    const ROUNDS: u32 = if cfg!(miri) { 40 } else { 5000 };
    let _serial = setup(spin_threshold);
    let shared = Arc::new(Protected::new());
    let mut workers = Workers::new();
    for cpu in 0..THREADS {
        let shared = Arc::clone(&shared);
        workers.spawn(move || {
            host::bind_cpu(cpu);
            // Half the CPUs wait like InterruptTicketMutex users.
            host::set_irqs_enabled(cpu % 2 == 0);
            for round in 0..ROUNDS {
                if cpu == THREADS - 1 && round % 3 == 0 {
                    // A try_lock user: never queues.
                    while !shared.lock.try_lock() {
                        thread::yield_now();
                    }
                } else {
                    shared.lock.lock();
                }
                // Preempt the holder now and then: a yield, or a sleep
                // long enough for every waiter to halt.
                let preempt = match (round + cpu * 7) % 97 {
                    0 => Some(Duration::from_micros(300)),
                    1..=4 => Some(Duration::ZERO),
                    _ => None,
                };
                shared.critical(cpu, preempt);
                // SAFETY: locked above.
                unsafe { shared.lock.unlock() };
            }
            host::unbind_cpu();
        });
    }
    workers.join(|| diagnose(&shared.lock));
    // SAFETY: all threads joined.
    let counter = unsafe { *shared.counter.get() };
    assert_eq!(counter, u64::from(THREADS * ROUNDS));
    let s = check_consistent(&shared.lock);
    eprintln!(
        "stress (spin threshold {spin_threshold}): {s:?}, host {:?}",
        host::counters()
    );
    assert!(s.halted > 0, "the slow path was never taken: {s:?}");
    assert!(s.halted_irqs_disabled > 0, "{s:?}");
    assert!(s.released_slow_kicked > 0, "{s:?}");
    assert!(s.time_blocked > 0, "{s:?}");
}

#[test]
fn halted_waiters_are_served_in_ticket_order() {
    const WAITERS: u32 = 7;
    let _serial = setup(0);
    let shared = Arc::new(Protected::new());
    shared.lock.lock();
    let mut workers = Workers::new();
    for cpu in 0..WAITERS {
        let mine = Arc::clone(&shared);
        workers.spawn(move || {
            host::bind_cpu(cpu);
            host::set_irqs_enabled(cpu % 2 == 1);
            mine.lock.lock();
            mine.critical(cpu, None);
            // SAFETY: locked above.
            unsafe { mine.lock.unlock() };
            host::unbind_cpu();
        });
        // Let this one take its ticket before the next starts.
        wait_until(
            &format!("waiter {cpu} takes its ticket"),
            || shared.lock.state().tickets_out() == cpu as u16 + 2,
            || diagnose(&shared.lock),
        );
    }
    // Spin threshold 0: each of them halts.
    let all = (1u64 << WAITERS) - 1;
    wait_until(
        "all waiters halted",
        || host::halted_cpus() == all,
        || diagnose(&shared.lock),
    );
    assert_eq!(pvlock::waiting_cpus(), all);
    assert!(shared.lock.state().slowpath);
    // SAFETY: locked at the top.
    unsafe { shared.lock.unlock() };
    workers.join(|| diagnose(&shared.lock));
    // SAFETY: all threads joined.
    let order = unsafe { &*shared.order.get() };
    assert_eq!(*order, (0..WAITERS).collect::<Vec<_>>(), "not FIFO");
    let s = check_consistent(&shared.lock);
    // Each unlock woke exactly the next ticket, and nobody woke for nothing.
    assert_eq!(s.halted, u64::from(WAITERS), "{s:?}");
    assert_eq!(s.released_slow_kicked, u64::from(WAITERS), "{s:?}");
    assert_eq!(s.released_slow_unkicked(), 0, "{s:?}");
    assert_eq!(s.spurious_wakeups, 0, "{s:?}");
    assert_eq!(s.halted_irqs_disabled, u64::from(WAITERS.div_ceil(2)), "{s:?}");
}

#[test]
fn disabled_is_a_plain_ticket_lock() {
    const THREADS: u32 = 3;
    const ROUNDS: u32 = if cfg!(miri) { 20 } else { 2000 };
    let _serial = setup(0);
    pvlock::set_enabled(false);
    assert!(!pvlock::is_active());
    let shared = Arc::new(Protected::new());
    let mut workers = Workers::new();
    for cpu in 0..THREADS {
        let shared = Arc::clone(&shared);
        workers.spawn(move || {
            host::bind_cpu(cpu);
            for _ in 0..ROUNDS {
                shared.lock.lock();
                shared.critical(cpu, None);
                // SAFETY: locked above.
                unsafe { shared.lock.unlock() };
            }
            host::unbind_cpu();
        });
    }
    workers.join(|| diagnose(&shared.lock));
    pvlock::set_enabled(true);
    // SAFETY: all threads joined.
    assert_eq!(unsafe { *shared.counter.get() }, u64::from(THREADS * ROUNDS));
    let s = check_consistent(&shared.lock);
    assert_eq!(s, stats::PvLockStats::default());
}

/// Set once the lock in `unlock_never_touches_a_freed_lock` has been freed.
static FREED: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// Kick hook: keeps the unlocker inside its kick path until the lock it just
/// released has been freed by the next owner.
fn stall_until_freed(_cpu: u32) {
    let (freed, cond) = &FREED;
    let guard = freed.lock().unwrap_or_else(PoisonError::into_inner);
    let (guard, timeout) = cond
        .wait_timeout_while(guard, WATCHDOG, |freed| !*freed)
        .unwrap_or_else(PoisonError::into_inner);
    assert!(*guard && !timeout.timed_out(), "the lock was never freed");
}

/// Memory for the lock of `unlock_never_touches_a_freed_lock`. Freeing it
/// makes its page inaccessible instead of handing it back to an allocator:
/// any later access, a read as much as a write, then faults at once, where
/// reused heap memory would hide reads and maybe writes.
#[cfg(not(miri))]
mod freeable {
    use std::io;
    use std::ptr;

    use libc::{
        mmap, mprotect, munmap, MAP_ANONYMOUS, MAP_FAILED, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE,
    };
    use pvlock::RawPvTicketLock;

    const LEN: usize = 4096;

    /// An unlocked lock alone in a page.
    pub fn alloc() -> *mut RawPvTicketLock {
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let page = unsafe {
            mmap(
                ptr::null_mut(),
                LEN,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(page, MAP_FAILED, "mmap: {}", io::Error::last_os_error());
        let lock = page.cast::<RawPvTicketLock>();
        // SAFETY: page-aligned, writable and ours.
        unsafe { lock.write(RawPvTicketLock::new()) };
        lock
    }

    /// Frees the lock: its page stays reserved but every access faults.
    ///
    /// # Safety
    ///
    /// `lock` comes from [`alloc`], and the caller's own accesses are over.
    pub unsafe fn free(lock: *mut RawPvTicketLock) {
        // SAFETY: the caller's contract; the page is the whole mapping.
        let ok = unsafe { mprotect(lock.cast(), LEN, PROT_NONE) } == 0;
        assert!(ok, "mprotect: {}", io::Error::last_os_error());
    }

    /// Returns the page to the system.
    ///
    /// # Safety
    ///
    /// `lock` was freed with [`free`], and nobody will touch it again.
    pub unsafe fn release(lock: *mut RawPvTicketLock) {
        // SAFETY: the caller's contract.
        unsafe { munmap(lock.cast(), LEN) };
    }
}

/// Under Miri: a heap allocation, freed for real; Miri reports any access
/// after the free.
#[cfg(miri)]
mod freeable {
    use pvlock::RawPvTicketLock;

    pub fn alloc() -> *mut RawPvTicketLock {
        Box::into_raw(Box::new(RawPvTicketLock::new()))
    }

    /// # Safety
    ///
    /// `lock` comes from [`alloc`], and the caller's own accesses are over.
    pub unsafe fn free(lock: *mut RawPvTicketLock) {
        // SAFETY: the caller's contract.
        drop(unsafe { Box::from_raw(lock) });
    }

    /// # Safety
    ///
    /// None needed: [`free`] returned the memory.
    pub unsafe fn release(_lock: *mut RawPvTicketLock) {}
}

/// Set in the child process that runs the scenario of
/// `unlock_never_touches_a_freed_lock`.
const FREED_LOCK_CHILD: &str = "PVLOCK_TEST_FREED_LOCK_CHILD";

/// The use-after-free of the old tail-flag layout (fixed in Linux 4.0): the
/// next owner frees the lock while its unlocker is still in the kick path.
/// `unlock` must not touch the lock after its releasing RMW.
///
/// The next owner frees the lock by making its page inaccessible (see
/// `freeable`), so any access the unlocker makes from its kick on faults,
/// every time, without Miri (which CI does not run). Before the kick the only
/// next owner is halted and cannot free the lock, so that is the window
/// checked. A fault kills the process, so the scenario runs in a child (this
/// binary, filtered to this test) and its SIGSEGV becomes this test's failure.
/// Under Miri the scenario runs in-process on a heap lock.
#[test]
fn unlock_never_touches_a_freed_lock() {
    if cfg!(miri) || std::env::var_os(FREED_LOCK_CHILD).is_some() {
        freed_lock_scenario();
        return;
    }
    use std::os::unix::process::ExitStatusExt;
    const SIGSEGV: i32 = 11;
    let out = std::process::Command::new(std::env::current_exe().expect("own executable"))
        .args([
            "unlock_never_touches_a_freed_lock",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FREED_LOCK_CHILD, "1")
        .output()
        .expect("cannot run the test binary as a child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.signal() == Some(SIGSEGV) {
        panic!("unlock touched the lock after the next owner freed it (SIGSEGV on the freed page)\n{stderr}");
    }
    assert!(
        out.status.success(),
        "child failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // A filter that matched nothing would pass vacuously.
    assert!(
        stdout.contains("1 passed"),
        "the child did not run the scenario:\n{stdout}"
    );
}

fn freed_lock_scenario() {
    /// The lock's pointer, sent to the waiter that frees it.
    struct Owned(*mut RawPvTicketLock);
    // SAFETY: the pointee is Sync and freed exactly once, by the receiver.
    unsafe impl Send for Owned {}
    let _serial = setup(0);
    *FREED.0.lock().unwrap_or_else(PoisonError::into_inner) = false;
    let lock = freeable::alloc();
    let owned = Owned(lock);
    // SAFETY: just allocated; freed only by the waiter below, after both
    // threads are done with it except for the unlocker's kick path.
    unsafe { (*lock).lock() };
    let mut workers = Workers::new();
    workers.spawn(move || {
        host::bind_cpu(1);
        let owned = owned; // The whole struct, not just its field.
        let lock = owned.0;
        // SAFETY: alive until freed here, by this thread, after its last use.
        unsafe {
            (*lock).lock();
            (*lock).unlock();
            freeable::free(lock);
        }
        let (freed, cond) = &FREED;
        *freed.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cond.notify_all();
        host::unbind_cpu();
    });
    // The waiter cannot take the lock, let alone free it, before our unlock.
    // SAFETY: so the lock is alive while this may be called.
    let diagnose_lock = || diagnose(unsafe { &*lock });
    wait_until(
        "the waiter halts",
        || host::halted_cpus() == 1 << 1,
        diagnose_lock,
    );
    host::set_kick_hook(Some(stall_until_freed));
    // SAFETY: locked above. The waiter frees the lock while this call is in
    // its kick path; from then on any access to it faults.
    unsafe { (*lock).unlock() };
    host::set_kick_hook(None);
    workers.join(String::new);
    // SAFETY: freed by the waiter, which is gone; the unlock returned.
    unsafe { freeable::release(lock) };
    let s = stats::snapshot();
    assert_eq!((s.halted, s.released_slow_kicked), (1, 1), "{s:?}");
}

#[test]
fn spin_threshold_and_switches_round_trip() {
    let _serial = setup(1234);
    assert_eq!(pvlock::spin_threshold(), 1234);
    assert!(pvlock::is_active());
    pvlock::set_enabled(false);
    assert!(!pvlock::is_active());
    pvlock::set_enabled(true);
    assert!(pvlock::is_active());
    pvlock::set_spin_threshold(pvlock::DEFAULT_SPIN_THRESHOLD);
    assert_eq!(pvlock::spin_threshold(), pvlock::DEFAULT_SPIN_THRESHOLD);
}

/// The id every CPU of [`PROBE_OPS`] reports.
static PROBE_ID: AtomicU32 = AtomicU32::new(u32::MAX);
/// Calls of `cpu_id`: one per pass of a waiter through the slow-path entry.
static PROBE_CPU_ID_CALLS: AtomicUsize = AtomicUsize::new(0);
static PROBE_HALTS: AtomicUsize = AtomicUsize::new(0);
static PROBE_KICKS: AtomicUsize = AtomicUsize::new(0);

// SeqCst (the probe's counters): test bookkeeping, read by another thread.
fn probe_cpu_id() -> u32 {
    PROBE_CPU_ID_CALLS.fetch_add(1, Ordering::SeqCst);
    PROBE_ID.load(Ordering::SeqCst)
}

fn probe_irq_save() -> bool {
    true
}

fn probe_irq_restore(_irqs_were_enabled: bool) {}

/// Counts and returns: the lock takes it as a spurious wakeup and goes on.
fn probe_halt(_irqs_were_enabled: bool) {
    PROBE_HALTS.fetch_add(1, Ordering::SeqCst);
}

fn probe_kick(_cpu: u32) {
    PROBE_KICKS.fetch_add(1, Ordering::SeqCst);
}

fn probe_now() -> u64 {
    0
}

/// A platform that counts how often the slow path asks for the CPU id.
static PROBE_OPS: PvOps = PvOps {
    cpu_id: probe_cpu_id,
    irq_save: probe_irq_save,
    irq_restore: probe_irq_restore,
    halt: probe_halt,
    kick: probe_kick,
    now: probe_now,
};

/// A CPU with an id of at least MAX_CPUS (the host backend gives unbound
/// threads u32::MAX) has no wait record: its waiter reaches the slow-path
/// entry, finds it has no record, and spins on; it never halts. The test
/// waits until the waiter has been through that entry several times while the
/// lock is held, which the probe platform counts.
#[test]
fn cpus_without_a_wait_record_only_spin() {
    // Threshold 0: every spin round ends at the slow-path entry.
    let _serial = setup(0);
    pvlock::register_ops(&PROBE_OPS);
    for id in [MAX_CPUS as u32, u32::MAX] {
        PROBE_ID.store(id, Ordering::SeqCst);
        for counter in [&PROBE_CPU_ID_CALLS, &PROBE_HALTS, &PROBE_KICKS] {
            counter.store(0, Ordering::SeqCst);
        }
        stats::reset();
        let lock = Arc::new(RawPvTicketLock::new());
        let entered = Arc::new(AtomicBool::new(false));
        lock.lock();
        let mut workers = Workers::new();
        {
            let (lock, entered) = (Arc::clone(&lock), Arc::clone(&entered));
            workers.spawn(move || {
                lock.lock();
                entered.store(true, Ordering::SeqCst);
                // SAFETY: locked above.
                unsafe { lock.unlock() };
            });
        }
        // A waiter that panicked on the slow path (say, indexing the wait
        // records with this id) ends; the join below reports it.
        wait_until(
            &format!("cpu {id:#x}: waiter passes the slow-path entry 3 times"),
            || PROBE_CPU_ID_CALLS.load(Ordering::SeqCst) >= 3 || workers.any_ended(),
            || diagnose(&lock),
        );
        assert!(!entered.load(Ordering::SeqCst), "cpu {id:#x} entered a held lock");
        // SAFETY: locked above.
        unsafe { lock.unlock() };
        workers.join(|| diagnose(&lock));
        assert!(entered.load(Ordering::SeqCst));
        let (halts, kicks) = (
            PROBE_HALTS.load(Ordering::SeqCst),
            PROBE_KICKS.load(Ordering::SeqCst),
        );
        assert_eq!((halts, kicks), (0, 0), "cpu {id:#x} halted or was kicked");
        assert_eq!(stats::snapshot(), stats::PvLockStats::default(), "cpu {id:#x}");
        assert!(!lock.state().slowpath, "cpu {id:#x} set the slow-path flag");
    }
    host::install();
    pvlock::set_spin_threshold(pvlock::DEFAULT_SPIN_THRESHOLD);
}
