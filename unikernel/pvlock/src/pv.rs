//! The platform interface and the runtime switches.
//!
//! The crate knows nothing about the kernel it runs in: the kernel fills a
//! [`PvOps`] table with its own functions and hands it to [`register_ops`]
//! once at boot. Until then, and while [`set_enabled`]`(false)` is in force
//! (Linux's `nopvspin`), every lock is a plain spinning ticket lock.

use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};

/// Spin iterations before a waiter halts, unless changed with
/// [`set_spin_threshold`]. Linux's `SPIN_THRESHOLD` (2^15 `pause`s).
pub const DEFAULT_SPIN_THRESHOLD: u32 = 1 << 15;

/// What the kernel provides to the lock slow path.
///
/// All functions may be called from any CPU, with or without interrupts
/// enabled, while the caller waits for or releases a spinlock: they must not
/// take a spinlock themselves and must not block except as described.
#[derive(Clone, Copy, Debug)]
pub struct PvOps {
    /// Index of the calling CPU. Ids at or above [`MAX_CPUS`](crate::MAX_CPUS) never take the
    /// slow path (they spin). The ticket lock calls it with interrupts
    /// disabled; the id must not change until the matching `irq_restore` (no
    /// migration in `halt`). The queued locks also call it with interrupts
    /// enabled, to pick a queue node, and need the waiter to stay on that CPU
    /// until it owns the lock (its node's CPU is the one that gets kicked).
    pub cpu_id: fn() -> u32,
    /// Disables interrupts on this CPU and returns whether they were enabled.
    /// The slow path keeps them off from publishing its wait record to
    /// halting, so that a handler cannot overwrite the record in between.
    pub irq_save: fn() -> bool,
    /// Restores the interrupt state returned by `irq_save`.
    pub irq_restore: fn(irqs_were_enabled: bool),
    /// Halts this CPU until it is kicked. Called with interrupts disabled.
    ///
    /// Must return if `kick(this cpu)` is called at any point after the
    /// caller's `irq_save`, *including before the halt instruction is
    /// reached*: a kick must be sticky (like a park/unpark token, or KVM's
    /// `pv_unhalt`), or it can be lost. It may return spuriously; the lock
    /// re-checks and halts again.
    ///
    /// `irqs_were_enabled == false` (an `InterruptTicketMutex` waiter): halt
    /// with interrupts still disabled (`hlt`); only the kick may wake it.
    /// `true`: the CPU may serve interrupts while halted (`sti; hlt`), which
    /// also bounds a lost-kick bug by the next timer tick. Either way it must
    /// return with interrupts disabled again.
    pub halt: fn(irqs_were_enabled: bool),
    /// Wakes `cpu` out of (or ahead of) `halt`. Called by an unlocker with
    /// interrupts in whatever state its caller had; never the current CPU.
    pub kick: fn(cpu: u32),
    /// A cycle counter (the TSC) for the time-blocked statistics.
    pub now: fn() -> u64,
}

/// The registered table; null until [`register_ops`].
static OPS: AtomicPtr<PvOps> = AtomicPtr::new(ptr::null_mut());

/// Whether waiters may enter the slow path (halt). Kicks are sent regardless.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Spin iterations before a waiter halts.
static SPIN_THRESHOLD: AtomicU32 = AtomicU32::new(DEFAULT_SPIN_THRESHOLD);

/// Installs the platform functions; from now on waiters may halt.
///
/// Meant to be called once at boot. Calling it again replaces the table
/// (host tests do); the old table must then still be callable, which the
/// `'static` bound ensures.
pub fn register_ops(ops: &'static PvOps) {
    // Release: pairs with the Acquire in `ops()`; a CPU that sees the
    // pointer sees the table's fields.
    OPS.store(ptr::from_ref(ops).cast_mut(), Ordering::Release);
}

/// Enables or disables the slow path at run time (`false` is Linux's
/// `nopvspin`: a plain ticket lock). Waiters already halted are still kicked.
pub fn set_enabled(enabled: bool) {
    // Relaxed: a hint read once per spin round; no data depends on it.
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether the slow path is enabled and a [`PvOps`] table is registered.
pub fn is_active() -> bool {
    ENABLED.load(Ordering::Relaxed) && ops().is_some()
}

/// Sets the number of spin iterations before a waiter halts (0: halt after
/// one look at the lock).
pub fn set_spin_threshold(iterations: u32) {
    // Relaxed: a tuning knob read once per spin round.
    SPIN_THRESHOLD.store(iterations, Ordering::Relaxed);
}

/// The current spin threshold.
pub fn spin_threshold() -> u32 {
    // Relaxed: see `set_spin_threshold`.
    SPIN_THRESHOLD.load(Ordering::Relaxed)
}

/// The registered table, if any.
pub(crate) fn ops() -> Option<&'static PvOps> {
    // Acquire: pairs with the Release in `register_ops`.
    let ops = OPS.load(Ordering::Acquire);
    // SAFETY: OPS is only ever null or a pointer made from a `&'static PvOps`
    // in `register_ops`, and nothing writes through it.
    unsafe { ops.as_ref() }
}

/// The table, if waiters may halt (registered and enabled).
#[inline]
pub(crate) fn slow_path() -> Option<&'static PvOps> {
    // Relaxed: see `set_enabled`.
    if ENABLED.load(Ordering::Relaxed) {
        ops()
    } else {
        None
    }
}
