//! The lock on the host: threads play CPUs through `pvlock::host` (halt =
//! park, kick = unpark). More threads than cores, holders that get
//! "preempted" on purpose, and checks of mutual exclusion, FIFO order, the
//! statistics and that nobody is left halted.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use pvlock::{host, stats, RawPvTicketLock};

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

/// Joins `handles`, failing with `diagnose()` if they take longer than
/// [`WATCHDOG`].
fn join_all<T>(handles: Vec<JoinHandle<T>>, diagnose: impl Fn() -> String) -> Vec<T> {
    let start = Instant::now();
    while !handles.iter().all(JoinHandle::is_finished) {
        assert!(
            start.elapsed() < WATCHDOG,
            "threads stuck after {WATCHDOG:?}: {}",
            diagnose()
        );
        thread::sleep(Duration::from_millis(5));
    }
    handles
        .into_iter()
        .map(|h| h.join().expect("worker panicked"))
        .collect()
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
    let handles = (0..THREADS)
        .map(|cpu| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
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
            })
        })
        .collect();
    join_all(handles, || diagnose(&shared.lock));
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
    let mut handles = Vec::new();
    for cpu in 0..WAITERS {
        let mine = Arc::clone(&shared);
        handles.push(thread::spawn(move || {
            host::bind_cpu(cpu);
            host::set_irqs_enabled(cpu % 2 == 1);
            mine.lock.lock();
            mine.critical(cpu, None);
            // SAFETY: locked above.
            unsafe { mine.lock.unlock() };
            host::unbind_cpu();
        }));
        // Let this one take its ticket before the next starts.
        let start = Instant::now();
        while shared.lock.state().tickets_out() != cpu as u16 + 2 {
            assert!(start.elapsed() < WATCHDOG, "{}", diagnose(&shared.lock));
            thread::yield_now();
        }
    }
    // Wait until all of them halted (spin threshold 0).
    let all = (1u64 << WAITERS) - 1;
    let start = Instant::now();
    while host::halted_cpus() != all {
        assert!(start.elapsed() < WATCHDOG, "{}", diagnose(&shared.lock));
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(pvlock::waiting_cpus(), all);
    assert!(shared.lock.state().slowpath);
    // SAFETY: locked at the top.
    unsafe { shared.lock.unlock() };
    join_all(handles, || diagnose(&shared.lock));
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
    let handles = (0..THREADS)
        .map(|cpu| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                host::bind_cpu(cpu);
                for _ in 0..ROUNDS {
                    shared.lock.lock();
                    shared.critical(cpu, None);
                    // SAFETY: locked above.
                    unsafe { shared.lock.unlock() };
                }
                host::unbind_cpu();
            })
        })
        .collect();
    join_all(handles, || diagnose(&shared.lock));
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

/// The use-after-free of the old tail-flag layout (fixed in Linux 4.0): the
/// next owner frees the lock while its unlocker is still in the kick path.
/// `unlock` must not touch the lock after its releasing RMW. A write would
/// show in the sentinel that reuses the memory; a read is invisible here but
/// caught by Miri: `cargo +nightly miri test -p pvlock --test host`.
#[test]
fn unlock_never_touches_a_freed_lock() {
    let _serial = setup(0);
    *FREED.0.lock().unwrap_or_else(PoisonError::into_inner) = false;
    /// The lock's pointer, sent to the waiter that frees it.
    struct Owned(*mut RawPvTicketLock);
    // SAFETY: the pointee is Sync and freed exactly once, by the receiver.
    unsafe impl Send for Owned {}
    let lock = Box::into_raw(Box::new(RawPvTicketLock::new()));
    let lock_addr = lock as usize;
    let owned = Owned(lock);
    // SAFETY: just allocated; freed only by the waiter below, after both
    // threads are done with it except for the unlocker's kick path.
    unsafe { (*lock).lock() };
    let waiter = thread::spawn(move || {
        host::bind_cpu(1);
        let owned = owned; // The whole struct, not just its field.
        let lock = owned.0;
        // SAFETY: alive until freed below, by this thread.
        unsafe {
            (*lock).lock();
            (*lock).unlock();
            drop(Box::from_raw(lock));
        }
        // Likely to land on the freed memory.
        let sentinel = Box::new(RawPvTicketLock::new());
        sentinel.lock();
        let before = sentinel.state();
        let (freed, cond) = &FREED;
        *freed.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cond.notify_all();
        host::unbind_cpu();
        (sentinel, before)
    });
    let start = Instant::now();
    while host::halted_cpus() != 1 << 1 {
        assert!(start.elapsed() < WATCHDOG, "waiter never halted");
        thread::sleep(Duration::from_millis(1));
    }
    host::set_kick_hook(Some(stall_until_freed));
    // SAFETY: locked above. The waiter frees the lock while this call is in
    // its kick path.
    unsafe { (*lock).unlock() };
    host::set_kick_hook(None);
    let (sentinel, before) = join_all(vec![waiter], String::new).remove(0);
    assert_eq!(sentinel.state(), before, "unlock wrote to freed memory");
    eprintln!(
        "freed lock at {lock_addr:#x}, sentinel at {:#x}",
        std::ptr::from_ref(&*sentinel) as usize
    );
    // SAFETY: locked by the waiter thread, which is gone.
    unsafe { sentinel.unlock() };
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
    pvlock::set_spin_threshold(pvlock::DEFAULT_SPIN_THRESHOLD);
    // An unbound thread has no CPU id and only spins.
    let counter = Arc::new(AtomicUsize::new(0));
    let lock = Arc::new(RawPvTicketLock::new());
    lock.lock();
    let t = {
        let (lock, counter) = (Arc::clone(&lock), Arc::clone(&counter));
        thread::spawn(move || {
            lock.lock();
            counter.fetch_add(1, Ordering::Relaxed);
            // SAFETY: locked above.
            unsafe { lock.unlock() };
        })
    };
    thread::sleep(Duration::from_millis(20));
    assert_eq!(counter.load(Ordering::Relaxed), 0);
    // SAFETY: locked above.
    unsafe { lock.unlock() };
    join_all(vec![t], String::new);
    assert_eq!(counter.load(Ordering::Relaxed), 1);
    assert_eq!(stats::snapshot().taken_slow, 0);
}
