//! A host backend: threads play CPUs.
//!
//! A thread becomes CPU `n` with [`bind_cpu`]; `halt` parks it until a kick
//! arrives, `kick` leaves a token and unparks it (sticky, as [`PvOps::halt`]
//! requires). Interrupts are simulated by a per-thread flag
//! ([`set_irqs_enabled`]), so that the `irqs_were_enabled` plumbing can be
//! checked. [`install`] registers the table. Unbound threads have no CPU id
//! and just spin.
//!
//! The counters in [`HostCounters`] let tests check the lock's statistics
//! against what the platform saw.

use core::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::{self, Thread};
use std::time::Instant;

use crate::{PvOps, MAX_CPUS};

/// What the backend saw; see [`counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostCounters {
    /// Calls of `halt`.
    pub halts: u64,
    /// Calls of `halt` with `irqs_were_enabled == false`.
    pub halts_irqs_disabled: u64,
    /// Calls of `kick`.
    pub kicks: u64,
    /// Kick tokens consumed by a returning `halt` (each halt consumes one).
    pub tokens_consumed: u64,
}

/// One simulated CPU.
struct Slot {
    /// The thread bound to this CPU, to unpark.
    thread: Mutex<Option<Thread>>,
    /// A kick not yet consumed by `halt`.
    token: AtomicBool,
    /// The bound thread is inside `halt`.
    halted: AtomicBool,
}

static SLOTS: [Slot; MAX_CPUS] = [const {
    Slot {
        thread: Mutex::new(None),
        token: AtomicBool::new(false),
        halted: AtomicBool::new(false),
    }
}; MAX_CPUS];

static HALTS: AtomicU64 = AtomicU64::new(0);
static HALTS_IRQS_DISABLED: AtomicU64 = AtomicU64::new(0);
static KICKS: AtomicU64 = AtomicU64::new(0);
static TOKENS_CONSUMED: AtomicU64 = AtomicU64::new(0);

/// Run by `kick` after it unparked the target (tests use it to stall the
/// unlocker inside its kick path).
static KICK_HOOK: Mutex<Option<fn(u32)>> = Mutex::new(None);

std::thread_local! {
    static CPU: Cell<u32> = const { Cell::new(u32::MAX) };
    static IRQS_ENABLED: Cell<bool> = const { Cell::new(true) };
}

static OPS: PvOps = PvOps {
    cpu_id,
    irq_save,
    irq_restore,
    halt,
    kick,
    now,
};

/// Registers this backend's [`PvOps`].
pub fn install() {
    crate::register_ops(&OPS);
}

/// Makes the calling thread CPU `cpu` (< [`MAX_CPUS`]). One thread per CPU.
pub fn bind_cpu(cpu: u32) {
    let slot = &SLOTS[cpu as usize];
    *slot.thread.lock().unwrap_or_else(PoisonError::into_inner) = Some(thread::current());
    // Relaxed: a stale kick from a previous binding must not wake this one.
    slot.token.store(false, Ordering::Relaxed);
    CPU.set(cpu);
}

/// Undoes [`bind_cpu`] for the calling thread.
pub fn unbind_cpu() {
    let cpu = CPU.replace(u32::MAX);
    if let Some(slot) = SLOTS.get(cpu as usize) {
        *slot.thread.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// Sets the calling thread's simulated interrupt flag.
pub fn set_irqs_enabled(enabled: bool) {
    IRQS_ENABLED.set(enabled);
}

/// Installs (or with `None` removes) a function `kick` runs after waking
/// its target.
pub fn set_kick_hook(hook: Option<fn(u32)>) {
    *KICK_HOOK.lock().unwrap_or_else(PoisonError::into_inner) = hook;
}

/// The CPUs whose thread is inside `halt` now, as a bitmask. Seeing a CPU
/// here orders the caller after that CPU's publication of its wait record.
pub fn halted_cpus() -> u64 {
    SLOTS
        .iter()
        .enumerate()
        // Acquire: pairs with the Release store in `halt`.
        .filter(|(_, slot)| slot.halted.load(Ordering::Acquire))
        .fold(0, |mask, (cpu, _)| mask | 1 << cpu)
}

/// Kick tokens left unconsumed (kicks that arrived after their target had
/// stopped waiting), as a count.
pub fn pending_tokens() -> u64 {
    SLOTS
        .iter()
        // Relaxed: a diagnostic snapshot.
        .filter(|slot| slot.token.load(Ordering::Relaxed))
        .count() as u64
}

/// Drops all pending kick tokens.
pub fn clear_tokens() {
    for slot in &SLOTS {
        // Relaxed: only for quiescent tests.
        slot.token.store(false, Ordering::Relaxed);
    }
}

/// Reads the backend counters.
pub fn counters() -> HostCounters {
    // Relaxed (all): statistics.
    HostCounters {
        halts: HALTS.load(Ordering::Relaxed),
        halts_irqs_disabled: HALTS_IRQS_DISABLED.load(Ordering::Relaxed),
        kicks: KICKS.load(Ordering::Relaxed),
        tokens_consumed: TOKENS_CONSUMED.load(Ordering::Relaxed),
    }
}

/// Zeroes the backend counters.
pub fn reset_counters() {
    for counter in [&HALTS, &HALTS_IRQS_DISABLED, &KICKS, &TOKENS_CONSUMED] {
        // Relaxed: statistics.
        counter.store(0, Ordering::Relaxed);
    }
}

fn cpu_id() -> u32 {
    CPU.get()
}

fn irq_save() -> bool {
    IRQS_ENABLED.replace(false)
}

fn irq_restore(irqs_were_enabled: bool) {
    IRQS_ENABLED.set(irqs_were_enabled);
}

fn halt(irqs_were_enabled: bool) {
    let slot = &SLOTS[CPU.get() as usize];
    // Relaxed (counters): statistics.
    HALTS.fetch_add(1, Ordering::Relaxed);
    if !irqs_were_enabled {
        HALTS_IRQS_DISABLED.fetch_add(1, Ordering::Relaxed);
    }
    // Release: pairs with the Acquire in `halted_cpus`; whoever sees this
    // CPU halted also sees its wait record and waiting bit.
    slot.halted.store(true, Ordering::Release);
    // Acquire: pairs with the Release store in `kick` (the kicker's writes
    // before the kick are visible after the halt, as with a real IPI).
    while !slot.token.swap(false, Ordering::Acquire) {
        // An unpark between the swap and this park makes it return at once.
        thread::park();
    }
    slot.halted.store(false, Ordering::Relaxed);
    TOKENS_CONSUMED.fetch_add(1, Ordering::Relaxed);
}

fn kick(cpu: u32) {
    let slot = &SLOTS[cpu as usize];
    KICKS.fetch_add(1, Ordering::Relaxed);
    // Release: pairs with the Acquire swap in `halt`.
    slot.token.store(true, Ordering::Release);
    if let Some(thread) = &*slot.thread.lock().unwrap_or_else(PoisonError::into_inner) {
        thread.unpark();
    }
    let hook = *KICK_HOOK.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(hook) = hook {
        hook(cpu);
    }
}

fn now() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let nanos = EPOCH.get_or_init(Instant::now).elapsed().as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX)
}
