//! One lock type for every mode: [`RawModalLock`] dispatches on a global
//! [`LockMode`] fixed once at boot ([`set_mode`]), so that a kernel can make all
//! its ticket mutexes this type and let the command line choose the algorithm.
//!
//! # Fixing the mode
//!
//! The lock word is one `u32` whose meaning depends on the mode: tickets for
//! `base` and `pv` (unlocked: head == tail, anything once used), the queued
//! word for `qspin`, `pvqspin` and `tas` (unlocked and idle: 0). A lock used as
//! a ticket lock cannot be read as a queued one afterwards, nor the other way
//! round, and nobody can find and convert every lock in a kernel. So:
//!
//! - The mode starts *unset*. The first of [`set_mode`] and the first
//!   `lock`/`try_lock` of any `RawModalLock` fixes it: `set_mode` to its
//!   argument, a lock operation to `base` (so a kernel that never calls
//!   `set_mode` keeps plain ticket locks).
//! - Once fixed, `set_mode` succeeds only for the mode in force or for a switch
//!   between `base` and `pv`, which share the lock word and the unlock (an
//!   unlock kicks a halted waiter whatever the mode, as with
//!   [`crate::set_enabled`]). Anything else returns [`ModeError`] and leaves
//!   the mode as it was: a kernel reports requested and effective mode.
//! - The check is one compare-exchange on the mode, shared by `set_mode` and
//!   the first lock operation: if both race, one wins and the other sees its
//!   result. After that the mode never leaves its family, so every lock
//!   operation anywhere, whichever value it reads, uses the same lock word
//!   layout. A kernel calls `set_mode` on its boot CPU before the first
//!   ticket mutex is touched (before the first console output), or lives with
//!   `base`.
//!
//! # Cost of the dispatch
//!
//! Linux patches the pv hooks at boot (static keys, `alternatives`), so its
//! fast path has no branch on the mode at all. There is no sound equivalent
//! here: patching the kernel's text needs writable text, a table of patch
//! sites from `asm goto` (unstable) and a stop-the-world point, and the crate
//! also runs on the host. Function pointers would cost an indirect call and
//! lose inlining. What remains is a Relaxed load of a byte that is written once
//! at boot and lives alone in its cache line (never invalidated, always in L1),
//! and a branch that always goes the same way (predicted after the first
//! time). The queued modes share one fast path (`0 -> LOCKED_VAL`), so lock
//! branches only on ticket vs queued; unlock, whose releases differ, on the
//! mode. `examples/uncontended.rs` measures the cost against the plain locks.

use core::fmt;
use core::str::FromStr;
use core::sync::atomic::AtomicU8;

use crate::lock::{LockState, RawPvTicketLock};
use crate::queued::{self, QueuedLockState};
use crate::sync::{AtomicU32, Ordering};
use crate::tas;

/// The lock algorithm of every [`RawModalLock`]; see [`set_mode`].
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockMode {
    /// Hermit's plain ticket lock: [`RawPvTicketLock`] whose waiters never
    /// halt.
    Base = BASE,
    /// The pv-ticketlock ([`RawPvTicketLock`]): waiters halt after the spin
    /// threshold while the slow path is enabled and registered.
    Pv = PV,
    /// The native queued spinlock ([`crate::RawQSpinLock`]).
    Qspin = QSPIN,
    /// The paravirtual queued spinlock ([`crate::RawPvQSpinLock`]).
    PvQspin = PVQSPIN,
    /// The unfair test-and-set lock ([`crate::RawTasLock`]).
    Tas = TAS,
}

const UNSET: u8 = 0;
const BASE: u8 = 1;
const PV: u8 = 2;
const QSPIN: u8 = 3;
const PVQSPIN: u8 = 4;
const TAS: u8 = 5;

impl LockMode {
    /// Every mode, `base` first.
    pub const ALL: [LockMode; 5] = [
        LockMode::Base,
        LockMode::Pv,
        LockMode::Qspin,
        LockMode::PvQspin,
        LockMode::Tas,
    ];

    /// The mode's name, as on the command line and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            LockMode::Base => "base",
            LockMode::Pv => "pv",
            LockMode::Qspin => "qspin",
            LockMode::PvQspin => "pvqspin",
            LockMode::Tas => "tas",
        }
    }

    /// The mode named `name` (exactly, as [`LockMode::name`] spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.name() == name)
    }

    /// The mode a `pvlock=` value selects: a name, or `on` (`pv`) and `off`
    /// (`base`), the words of the first edition.
    pub fn from_word(word: &str) -> Option<Self> {
        match word {
            "on" => Some(LockMode::Pv),
            "off" => Some(LockMode::Base),
            _ => Self::from_name(word),
        }
    }

    /// Whether the mode uses the ticket lock word (`base`, `pv`).
    pub const fn is_ticket(self) -> bool {
        matches!(self, LockMode::Base | LockMode::Pv)
    }

    /// Whether waiters may halt in this mode (`pv`, `pvqspin`).
    pub const fn is_paravirt(self) -> bool {
        matches!(self, LockMode::Pv | LockMode::PvQspin)
    }

    /// The mode whose `as u8` is `raw` (how it crosses C-layout interfaces).
    pub const fn from_u8(raw: u8) -> Option<Self> {
        Self::from_raw(raw)
    }

    const fn from_raw(raw: u8) -> Option<Self> {
        match raw {
            BASE => Some(LockMode::Base),
            PV => Some(LockMode::Pv),
            QSPIN => Some(LockMode::Qspin),
            PVQSPIN => Some(LockMode::PvQspin),
            TAS => Some(LockMode::Tas),
            _ => None,
        }
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A word that names no [`LockMode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownMode;

impl fmt::Display for UnknownMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown lock mode; the modes are")?;
        for mode in LockMode::ALL {
            write!(f, " {mode}")?;
        }
        Ok(())
    }
}

impl FromStr for LockMode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, UnknownMode> {
        Self::from_name(s).ok_or(UnknownMode)
    }
}

/// [`set_mode`] refused: the mode was already fixed to `current`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeError {
    /// What was asked for.
    pub requested: LockMode,
    /// What stays in force.
    pub current: LockMode,
}

impl fmt::Display for ModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lock mode {} requested, but locks already run as {} (the mode is fixed by the first lock)",
            self.requested, self.current
        )
    }
}

/// The mode, alone in its cache line: written once at boot, read by every
/// lock operation. A `core` atomic: configuration, not part of any loom model.
#[repr(align(64))]
struct ModeCell(AtomicU8);

static MODE: ModeCell = ModeCell(AtomicU8::new(UNSET));

/// Fixes the mode of every [`RawModalLock`]. See the module documentation for
/// the rule: before any lock operation, any mode; afterwards only the same
/// mode or `base` <-> `pv`.
pub fn set_mode(mode: LockMode) -> Result<(), ModeError> {
    let want = mode as u8;
    // Relaxed (all): the mode is the only datum; its single move out of UNSET
    // is decided by the compare-exchange below or in `fix_mode`, and every
    // value that follows is of the same family.
    let mut current = MODE.0.load(Ordering::Relaxed);
    loop {
        let allowed = match LockMode::from_raw(current) {
            None => true,
            Some(now) => now == mode || (now.is_ticket() && mode.is_ticket()),
        };
        if !allowed {
            return Err(ModeError {
                requested: mode,
                current: LockMode::from_raw(current).unwrap_or(LockMode::Base),
            });
        }
        if current == want {
            return Ok(());
        }
        match MODE
            .0
            .compare_exchange(current, want, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => return Ok(()),
            Err(now) => current = now,
        }
    }
}

/// The mode in force (`base` while nothing has fixed it, which is how locks
/// behave then).
pub fn mode() -> LockMode {
    // Relaxed: see `set_mode`.
    LockMode::from_raw(MODE.0.load(Ordering::Relaxed)).unwrap_or(LockMode::Base)
}

/// Whether the mode is fixed (by [`set_mode`] or by a lock operation).
pub fn mode_is_fixed() -> bool {
    // Relaxed: see `set_mode`.
    MODE.0.load(Ordering::Relaxed) != UNSET
}

/// The first lock operation while the mode is unset: fix `base`, unless a
/// racing `set_mode` fixed something else first.
#[cold]
#[inline(never)]
fn fix_mode() {
    // Relaxed: see `set_mode`. The loser of the race reads the winner's value
    // on its next load (the compare-exchange read the latest value).
    let _ = MODE
        .0
        .compare_exchange(UNSET, BASE, Ordering::Relaxed, Ordering::Relaxed);
}

/// A raw lock whose algorithm is the global [`LockMode`]. One `u32`; see the
/// module documentation for the mode rule and the cost of the dispatch.
#[repr(transparent)]
pub struct RawModalLock {
    word: AtomicU32,
}

/// A racy view of a [`RawModalLock`]'s word, as its mode reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModalLockState {
    /// `base`, `pv`.
    Ticket(LockState),
    /// `qspin`, `pvqspin`, `tas`.
    Queued(QueuedLockState),
}

impl RawModalLock {
    /// An unlocked lock (the word is 0 in every mode).
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            word: AtomicU32::new(0),
        }
    }

    /// An unlocked lock (loom's atomics cannot be built in a const fn).
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            word: AtomicU32::new(0),
        }
    }

    /// The word as a ticket lock.
    #[inline(always)]
    fn ticket(&self) -> &RawPvTicketLock {
        // SAFETY: both types are `repr(transparent)` over one `AtomicU32`, so
        // the cast keeps address, layout, validity and lifetime; the mode rule
        // keeps ticket and queued operations off the same word.
        unsafe { &*core::ptr::from_ref(&self.word).cast::<RawPvTicketLock>() }
    }

    /// Acquires the lock.
    #[inline]
    pub fn lock(&self) {
        // Relaxed: see `set_mode`.
        let mode = MODE.0.load(Ordering::Relaxed);
        if mode >= QSPIN {
            if let Err(val) = queued::fast_lock(&self.word) {
                self.lock_queued_slow(mode, val);
            }
        } else if mode != UNSET {
            self.ticket().lock_with(mode == PV);
        } else {
            self.lock_unset();
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_unset(&self) {
        fix_mode();
        self.lock();
    }

    #[cold]
    #[inline(never)]
    fn lock_queued_slow(&self, mode: u8, val: u32) {
        match mode {
            QSPIN => queued::lock_slow_qspin(&self.word, val),
            PVQSPIN => queued::lock_slow_pvqspin(&self.word),
            _ => tas::lock_slow(&self.word),
        }
    }

    /// Acquires the lock if nobody holds it (queued modes: if it is idle);
    /// never waits.
    #[inline]
    pub fn try_lock(&self) -> bool {
        // Relaxed: see `set_mode`.
        let mode = MODE.0.load(Ordering::Relaxed);
        if mode >= QSPIN {
            queued::trylock(&self.word)
        } else if mode != UNSET {
            self.ticket().try_lock()
        } else {
            fix_mode();
            self.try_lock()
        }
    }

    /// Releases the lock (kicking a halted waiter in `pv` and `pvqspin`).
    ///
    /// # Safety
    ///
    /// The calling context must hold the lock.
    #[inline]
    pub unsafe fn unlock(&self) {
        // Relaxed: see `set_mode`. The holder's own lock operation fixed the
        // mode, so this reads a value of the same family.
        match MODE.0.load(Ordering::Relaxed) {
            QSPIN => queued::unlock_qspin(&self.word),
            PVQSPIN => queued::unlock_pvqspin(&self.word),
            TAS => tas::unlock(&self.word),
            // SAFETY: the caller holds the lock, taken as a ticket lock.
            _ => unsafe { self.ticket().unlock() },
        }
    }

    /// Whether some context holds the lock (racy).
    #[inline]
    pub fn is_locked(&self) -> bool {
        // Relaxed: see `set_mode`.
        if MODE.0.load(Ordering::Relaxed) >= QSPIN {
            // Relaxed: a snapshot.
            queued::word_is_locked(self.word.load(Ordering::Relaxed))
        } else {
            self.ticket().is_locked()
        }
    }

    /// A racy view of the lock word, decoded for the mode in force.
    pub fn state(&self) -> ModalLockState {
        if mode().is_ticket() {
            ModalLockState::Ticket(self.ticket().state())
        } else {
            // Relaxed: a snapshot for diagnostics.
            ModalLockState::Queued(queued::word_state(self.word.load(Ordering::Relaxed)))
        }
    }
}

// Mutual exclusion: the mode never leaves its family once a lock operation
// ran, so every operation on a lock uses one algorithm, each of which is a
// mutex (see their own invocations).
raw_mutex!(RawModalLock, state);

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    // The mode itself is process-wide: its rules are tested in child
    // processes (tests/modes.rs). These only check the names.
    #[test]
    fn names_round_trip() {
        for mode in LockMode::ALL {
            assert_eq!(mode.name().parse::<LockMode>(), Ok(mode));
            assert_eq!(LockMode::from_raw(mode as u8), Some(mode));
        }
        assert_eq!("PV".parse::<LockMode>(), Err(UnknownMode));
        assert_eq!(LockMode::from_raw(UNSET), None);
        let err = std::format!("{UnknownMode}");
        assert!(err.ends_with("base pv qspin pvqspin tas"), "{err}");
    }
}
