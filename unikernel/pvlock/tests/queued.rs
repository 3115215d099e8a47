//! The queued locks' particular behaviours on the host, on the lock types
//! themselves (`tests/modes.rs` stresses every mode through `RawModalLock`):
//! `pvqspin`'s halted queue served in order with exactly one halt and one kick
//! per waiter, its unlock not touching a lock that the next owner freed, and
//! `qspin`'s claimed (not counted) nodes when many waiters share a CPU.
//!
//! Where a test needs other threads to reach a state it waits for that state
//! under a watchdog; sleeps appear nowhere.

// Real atomics and the lock_api impls: not under `--cfg loom`.
#![cfg(not(loom))]

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use pvlock::{host, stats, RawPvQSpinLock, RawQSpinLock};

/// The locks' and the backend's state is global: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

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

struct Workers {
    handles: Vec<JoinHandle<()>>,
    ended_tx: Sender<()>,
    ended_rx: Receiver<()>,
}

struct EndGuard(Sender<()>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

impl Workers {
    fn new() -> Self {
        let (ended_tx, ended_rx) = mpsc::channel();
        Self {
            handles: Vec::new(),
            ended_tx,
            ended_rx,
        }
    }

    fn spawn(&mut self, f: impl FnOnce() + Send + 'static) {
        let end = EndGuard(self.ended_tx.clone());
        self.handles.push(thread::spawn(move || {
            let _end = end;
            f()
        }));
    }

    fn any_ended(&self) -> bool {
        self.handles.iter().any(JoinHandle::is_finished)
    }

    fn join(self, diagnose: impl Fn() -> String) {
        let deadline = Instant::now() + WATCHDOG;
        for _ in 0..self.handles.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.ended_rx.recv_timeout(left).is_err() {
                panic!("threads stuck after {WATCHDOG:?}: {}", diagnose());
            }
        }
        for handle in self.handles {
            handle.join().expect("worker panicked");
        }
    }
}

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

fn diagnose(state: &dyn std::fmt::Debug) -> String {
    format!(
        "lock {state:?}, nodes in use {}, hashed {}, halted {:#x}, {:?}, {:?}",
        pvlock::queue_nodes_in_use(),
        pvlock::hashed_locks(),
        host::halted_cpus(),
        host::counters(),
        stats::queued_snapshot()
    )
}

/// Acquisition order, appended under the lock.
struct Ordered<L> {
    lock: L,
    order: UnsafeCell<Vec<u32>>,
}

// SAFETY: `order` is only accessed with `lock` held.
unsafe impl<L: Sync> Sync for Ordered<L> {}

#[test]
fn pvqspin_halted_queue_is_served_in_order() {
    const WAITERS: u32 = 5;
    // Threshold 0: each waiter halts at once, the first as queue head (hashed
    // by itself), the others as queued nodes.
    let _serial = setup(0);
    let shared = Arc::new(Ordered {
        lock: RawPvQSpinLock::new(),
        order: UnsafeCell::new(Vec::new()),
    });
    shared.lock.lock();
    let mut workers = Workers::new();
    for cpu in 0..WAITERS {
        let mine = Arc::clone(&shared);
        workers.spawn(move || {
            host::bind_cpu(cpu);
            host::set_irqs_enabled(cpu % 2 == 1);
            mine.lock.lock();
            // SAFETY: under the lock.
            unsafe { (*mine.order.get()).push(cpu) };
            // SAFETY: locked above.
            unsafe { mine.lock.unlock() };
            host::unbind_cpu();
        });
        // One at a time: this one halts before the next queues behind it.
        wait_until(
            &format!("waiter {cpu} halts"),
            || host::halted_cpus() & 1 << cpu != 0,
            || diagnose(&shared.lock),
        );
    }
    let state = shared.lock.state();
    assert_eq!(state.locked, 3, "the head marked the lock slow: {state:?}");
    assert_eq!(state.tail, Some((WAITERS - 1, 0)), "{state:?}");
    assert_eq!(pvlock::hashed_locks(), 1);
    assert_eq!(pvlock::queue_nodes_in_use(), WAITERS);
    // SAFETY: locked at the top.
    unsafe { shared.lock.unlock() };
    workers.join(|| diagnose(&shared.lock));
    // SAFETY: all threads joined.
    let order = unsafe { &*shared.order.get() };
    assert_eq!(*order, (0..WAITERS).collect::<Vec<_>>(), "not FIFO");
    let q = stats::queued_snapshot();
    let h = host::counters();
    let detail = diagnose(&shared.lock);
    assert!(shared.lock.state().is_idle(), "{detail}");
    assert_eq!(
        (pvlock::queue_nodes_in_use(), pvlock::hashed_locks()),
        (0, 0),
        "{detail}"
    );
    // Each waiter halted once and was kicked once, by the unlock before its
    // turn: the head by ours, the others after their predecessor's handover
    // hashed them (pv_kick_node) instead of waking them early.
    let n = u64::from(WAITERS);
    assert_eq!((q.halted, h.halts, h.kicks), (n, n, n), "{detail}");
    assert_eq!((q.wait_head, q.wait_node), (1, n - 1), "{detail}");
    assert_eq!((q.hashed, q.kick_unlock, q.kick_wake), (n, n, n), "{detail}");
    assert_eq!(
        (q.spurious_wakeups, q.pickups(), q.wait_again),
        (0, 0, 0),
        "{detail}"
    );
    assert_eq!(q.halted_irqs_disabled, u64::from(WAITERS.div_ceil(2)), "{detail}");
    assert_eq!(h.tokens_consumed, n, "{detail}");
}

#[test]
fn qspin_waiters_of_one_cpu_claim_nodes_then_spin() {
    // Seven waiters on one CPU (tasks that preempted each other, or nested
    // handlers): one spins on the pending bit, four get the CPU's nodes, in
    // whatever order they finish, and two find none and spin on the trylock.
    const WAITERS: u32 = 7;
    let _serial = setup(0);
    let lock = Arc::new(RawQSpinLock::new());
    let counter = Arc::new(AtomicBool::new(false));
    lock.lock();
    let mut workers = Workers::new();
    for _ in 0..WAITERS {
        let (lock, inside) = (Arc::clone(&lock), Arc::clone(&counter));
        workers.spawn(move || {
            // All play CPU 0: qspin never halts or kicks, so sharing the
            // backend's slot is harmless.
            host::bind_cpu(0);
            lock.lock();
            assert!(!inside.swap(true, Ordering::Relaxed), "two holders");
            inside.store(false, Ordering::Relaxed);
            // SAFETY: locked above.
            unsafe { lock.unlock() };
        });
    }
    wait_until(
        "four nodes claimed, two waiters without",
        || {
            let q = stats::queued_snapshot();
            (pvlock::queue_nodes_in_use(), q.no_node) == (4, 2) || workers.any_ended()
        },
        || diagnose(&lock.state()),
    );
    // SAFETY: locked above.
    unsafe { lock.unlock() };
    workers.join(|| diagnose(&lock.state()));
    let q = stats::queued_snapshot();
    let detail = diagnose(&lock.state());
    assert!(lock.state().is_idle(), "{detail}");
    assert_eq!(pvlock::queue_nodes_in_use(), 0, "{detail}");
    assert_eq!((q.pending, q.queued), (1, u64::from(WAITERS) - 1), "{detail}");
    assert_eq!((q.nested, q.no_node), (3, 2), "{detail}");
    assert_eq!(q.halted, 0, "{detail}");
}

/// Set once the lock in the freed-lock scenario has been freed.
static FREED: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// Kick hook: keeps the unlocker inside its kick until the next owner has
/// freed the lock it just released.
fn stall_until_freed(_cpu: u32) {
    let (freed, cond) = &FREED;
    let guard = freed.lock().unwrap_or_else(PoisonError::into_inner);
    let (guard, timeout) = cond
        .wait_timeout_while(guard, WATCHDOG, |freed| !*freed)
        .unwrap_or_else(PoisonError::into_inner);
    assert!(*guard && !timeout.timed_out(), "the lock was never freed");
}

/// A `RawPvQSpinLock` alone in a page that "freeing" makes inaccessible, so
/// that any later access, read or write, faults at once.
mod freeable {
    use std::io;
    use std::ptr;

    use libc::{
        mmap, mprotect, munmap, MAP_ANONYMOUS, MAP_FAILED, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE,
    };
    use pvlock::RawPvQSpinLock;

    const LEN: usize = 4096;

    pub fn alloc() -> *mut RawPvQSpinLock {
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
        let lock = page.cast::<RawPvQSpinLock>();
        // SAFETY: page-aligned, writable and ours.
        unsafe { lock.write(RawPvQSpinLock::new()) };
        lock
    }

    /// # Safety
    ///
    /// `lock` comes from [`alloc`], and the caller's own accesses are over.
    pub unsafe fn free(lock: *mut RawPvQSpinLock) {
        // SAFETY: the caller's contract; the page is the whole mapping.
        let ok = unsafe { mprotect(lock.cast(), LEN, PROT_NONE) } == 0;
        assert!(ok, "mprotect: {}", io::Error::last_os_error());
    }

    /// # Safety
    ///
    /// `lock` was freed with [`free`], and nobody will touch it again.
    pub unsafe fn release(lock: *mut RawPvQSpinLock) {
        // SAFETY: the caller's contract.
        unsafe { munmap(lock.cast(), LEN) };
    }
}

const FREED_LOCK_CHILD: &str = "PVLOCK_TEST_PVQSPIN_FREED_LOCK_CHILD";

/// `pvqspin`'s unlock of a slow lock unhashes, releases and kicks; the next
/// owner may free the lock as soon as it is released, so the kick must not
/// touch it. The next owner frees it while the unlocker is stalled in its kick;
/// a touch after that is a SIGSEGV, which kills the child running the
/// scenario and fails this test.
#[test]
fn pvqspin_unlock_never_touches_a_freed_lock() {
    if std::env::var_os(FREED_LOCK_CHILD).is_some() {
        freed_lock_scenario();
        return;
    }
    use std::os::unix::process::ExitStatusExt;
    const SIGSEGV: i32 = 11;
    let out = std::process::Command::new(std::env::current_exe().expect("own executable"))
        .args([
            "pvqspin_unlock_never_touches_a_freed_lock",
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
    assert!(
        stdout.contains("1 passed"),
        "the child did not run the scenario:\n{stdout}"
    );
}

fn freed_lock_scenario() {
    struct Owned(*mut RawPvQSpinLock);
    // SAFETY: the pointee is Sync and freed exactly once, by the receiver.
    unsafe impl Send for Owned {}
    let _serial = setup(0);
    *FREED.0.lock().unwrap_or_else(PoisonError::into_inner) = false;
    let lock = freeable::alloc();
    let owned = Owned(lock);
    // SAFETY: just allocated; freed only by the waiter below, after both
    // threads are done with it except for the unlocker's kick.
    unsafe { (*lock).lock() };
    let mut workers = Workers::new();
    workers.spawn(move || {
        host::bind_cpu(1);
        let owned = owned;
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
    // SAFETY: the lock is alive until our unlock below has released it.
    let diagnose_lock = || diagnose(unsafe { &(*lock).state() });
    wait_until(
        "the waiter halts as queue head",
        || host::halted_cpus() == 1 << 1,
        diagnose_lock,
    );
    // SAFETY: as above.
    assert_eq!(unsafe { (*lock).state() }.locked, 3, "not marked slow");
    host::set_kick_hook(Some(stall_until_freed));
    // SAFETY: locked above. The waiter frees the lock while this call is in
    // its kick; from then on any access to it faults.
    unsafe { (*lock).unlock() };
    host::set_kick_hook(None);
    workers.join(String::new);
    // SAFETY: freed by the waiter, which is gone; the unlock returned.
    unsafe { freeable::release(lock) };
    let q = stats::queued_snapshot();
    assert_eq!((q.halted, q.kick_unlock, q.hashed), (1, 1, 1), "{q:?}");
    assert_eq!(pvlock::hashed_locks(), 0);
}
