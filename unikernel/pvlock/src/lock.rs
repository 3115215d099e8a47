//! The paravirtual ticket lock.

use crate::kickwake;
use crate::pv::{self, PvOps};
use crate::stats;
use crate::sync::{fence, spin_loop, AtomicU32, Ordering};
use crate::waiters::waiters;
use crate::word::{
    head, next, owner, pack, slowpath, tail, Ticket, SLOWPATH, TAIL_INC, TICKET_INC, WRAP_CARRY,
};
use crate::MAX_CPUS;

/// A raw ticket spinlock whose waiters halt their CPU after spinning for a
/// while, and whose unlocker kicks the next waiter if one halted.
///
/// FIFO like a plain ticket lock: tickets are served in the order they were
/// taken. The uncontended `lock` and `unlock` are one atomic RMW each;
/// everything else is out of line.
///
/// See the crate documentation for the lock word and the handshake.
// Transparent: `RawModalLock` views its word as this lock in the ticket modes.
#[repr(transparent)]
pub struct RawPvTicketLock {
    /// See [`crate::word`]: tail in the high half, head and the slow-path
    /// flag in the low half.
    word: AtomicU32,
}

/// A racy view of a lock's word, for diagnostics and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockState {
    /// The ticket that owns the lock, or is next to take it if unlocked.
    pub owner: u16,
    /// The next ticket to be handed out.
    pub next_ticket: u16,
    /// The slow-path flag: some waiter may be halted.
    pub slowpath: bool,
}

impl LockState {
    /// Whether some ticket holds the lock.
    pub fn is_locked(&self) -> bool {
        self.owner != self.next_ticket
    }

    /// CPUs holding a ticket, the owner included.
    pub fn tickets_out(&self) -> u16 {
        self.next_ticket.wrapping_sub(self.owner) / TICKET_INC
    }
}

impl RawPvTicketLock {
    /// An unlocked lock.
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

    /// The address that names this lock in wait records (never dereferenced).
    #[inline(always)]
    fn addr(&self) -> usize {
        core::ptr::from_ref(self).addr()
    }

    /// Acquires the lock, spinning and then halting while others hold it.
    #[inline]
    pub fn lock(&self) {
        self.lock_with(true);
    }

    /// Acquires the lock; a waiter may halt only if `may_halt` (and the slow
    /// path is active). `false` is the `base` mode of [`crate::RawModalLock`]:
    /// a plain ticket lock whatever [`crate::set_enabled`] says. Unlocking is
    /// the same either way, so waiters that halted earlier are still kicked.
    #[inline]
    pub(crate) fn lock_with(&self, may_halt: bool) {
        // Acquire: if the head we get back is our ticket (and the flag is
        // clear) this RMW is the acquisition; pairs with the Release RMW in
        // `unlock` that made the head ours.
        let old = self.word.fetch_add(TAIL_INC, Ordering::Acquire);
        let me = tail(old);
        if head(old) != me {
            self.lock_contended(me, may_halt);
        } else if old & WRAP_CARRY != 0 {
            self.clear_wrap_carry();
        }
    }

    /// Drops the carry the head's last wrap left in the tail half (see
    /// `WRAP_CARRY`). Called by the first owner after the wrap, while it holds
    /// the lock, so the unlocker that wrapped never touches the lock again, and
    /// the next wrap (2^15 tickets later) finds the bit clear.
    #[cold]
    fn clear_wrap_carry(&self) {
        // Relaxed: the bit carries no synchronisation; the RMW only keeps the
        // concurrent ticket and flag updates intact.
        self.word.fetch_and(!WRAP_CARRY, Ordering::Relaxed);
    }

    /// Waits for ticket `me`: spin up to the threshold, then halt until
    /// kicked; a wakeup is only a hint, so go round again.
    #[cold]
    #[inline(never)]
    fn lock_contended(&self, me: Ticket, may_halt: bool) {
        loop {
            let mut budget = pv::spin_threshold();
            loop {
                // Acquire: pairs with the Release RMW in `unlock` that made
                // the head ours.
                let seen = self.word.load(Ordering::Acquire);
                if owner(seen) == me {
                    self.clear_slowpath(me, seen);
                    return;
                }
                if budget == 0 {
                    break;
                }
                budget -= 1;
                spin_loop();
            }
            if let Some(ops) = pv::slow_path().filter(|_| may_halt) {
                if let Some(seen) = self.halt_until_kicked(ops, me) {
                    self.clear_slowpath(me, seen);
                    return;
                }
            }
        }
    }

    /// One round of the slow path. Returns the lock word that made the lock
    /// ours, or `None` if we should spin again (spurious wakeup, or a CPU
    /// that cannot halt).
    fn halt_until_kicked(&self, ops: &PvOps, want: Ticket) -> Option<u32> {
        let waiters = waiters();
        // Interrupts stay off from publishing the record to halting: a
        // handler that waited for another lock in between would overwrite
        // the record, and our kick would go nowhere.
        let irqs_were_enabled = (ops.irq_save)();
        let cpu = (ops.cpu_id)();
        if cpu >= MAX_CPUS as u32 {
            (ops.irq_restore)(irqs_were_enabled);
            return None;
        }
        stats::TAKEN_SLOW.inc();
        kickwake::arm(cpu);
        waiters.publish(cpu, self.addr(), want);
        // The handshake with the unlocker. Flag and head share one word, so
        // this RMW and the unlocker's releasing RMW are totally ordered:
        // either we see our ticket in the head (pickup), or the unlocker sees
        // the flag and kicks us.
        // Release: pairs with the Acquire fence in `kick_next`; the record
        // and waiting bit published above are visible to that unlocker.
        // Acquire: on pickup this RMW is the acquisition; pairs with the
        // Release RMW in `unlock`.
        let seen = self.word.fetch_or(u32::from(SLOWPATH), Ordering::AcqRel);
        let picked_up = owner(seen) == want;
        if picked_up {
            stats::TAKEN_SLOW_PICKUP.inc();
        } else {
            stats::HALTED.inc();
            if !irqs_were_enabled {
                stats::HALTED_IRQS_DISABLED.inc();
            }
            let (blocked, _) = kickwake::halt(ops, cpu, irqs_were_enabled);
            stats::record_blocked(blocked);
        }
        waiters.retract(cpu);
        (ops.irq_restore)(irqs_were_enabled);
        if picked_up {
            // Our own flag is set in the word now, whatever `seen` says.
            return Some(seen | u32::from(SLOWPATH));
        }
        // Acquire: pairs with the Release RMW in `unlock` that made the head
        // ours.
        let seen = self.word.load(Ordering::Acquire);
        if owner(seen) == want {
            Some(seen)
        } else {
            stats::SPURIOUS_WAKEUPS.inc();
            None
        }
    }

    /// Called by the new owner `me` with the word it acquired the lock
    /// with: drops a slow-path flag nobody needs any more, i.e. when no other
    /// ticket is out (Linux 4.0's `__ticket_check_and_clear_slowpath`).
    #[inline]
    fn clear_slowpath(&self, me: Ticket, seen: u32) {
        let seen = if seen & WRAP_CARRY != 0 {
            self.clear_wrap_carry();
            seen & !WRAP_CARRY
        } else {
            seen
        };
        // The tail only grows while we hold the lock: if another ticket was
        // out when we acquired, it still is, and its holder may be halted.
        if !slowpath(seen) || tail(seen) != next(me) {
            return;
        }
        let flagged = pack(me | SLOWPATH, next(me));
        // Relaxed: we own the lock already; this only drops a hint bit, and
        // the compare fails if anybody took a ticket since we looked, so a
        // flag a queued waiter set is never lost (its ticket moved the tail).
        let _ = self
            .word
            .compare_exchange(flagged, pack(me, next(me)), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Acquires the lock if nobody holds it; never waits.
    #[inline]
    pub fn try_lock(&self) -> bool {
        // Relaxed: only a guess that the compare-exchange below verifies.
        let seen = self.word.load(Ordering::Relaxed);
        let me = owner(seen);
        if tail(seen) != me {
            return false;
        }
        // Nobody holds a ticket, so a stale slow-path flag (and a wrap carry)
        // can go too: the new word is rebuilt from the tickets alone.
        // Acquire: pairs with the Release RMW of the previous `unlock`.
        self.word
            .compare_exchange(seen, pack(me, next(me)), Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Releases the lock and kicks the next waiter if it may be halted.
    ///
    /// After the releasing RMW, `unlock` does not access the lock again: the
    /// next owner may free it at once (the use-after-free of the older
    /// tail-flag layout, fixed in Linux 4.0). The kick uses only the value
    /// that RMW returned and the lock's address, compared but never
    /// dereferenced, in `kick_next`, which takes no reference to the lock.
    ///
    /// # Safety
    ///
    /// The calling context must hold the lock (have acquired it with `lock`
    /// or a successful `try_lock` and not released it since).
    #[inline]
    pub unsafe fn unlock(&self) {
        let addr = self.addr();
        // Release: pairs with the Acquire of the next owner's RMW or load;
        // publishes our critical section. When the head wraps, the carry lands
        // in WRAP_CARRY, never in the tail.
        let old = self.word.fetch_add(u32::from(TICKET_INC), Ordering::Release);
        // `self` may be dangling from here on.
        if slowpath(old) {
            kick_next(addr, next(owner(old)));
        }
    }

    /// Whether some CPU holds the lock (racy).
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.state().is_locked()
    }

    /// Whether a CPU other than the owner holds a ticket (racy).
    #[inline]
    pub fn is_contended(&self) -> bool {
        self.state().tickets_out() > 1
    }

    /// A racy view of the lock word.
    pub fn state(&self) -> LockState {
        // Relaxed: a snapshot for diagnostics; nothing is acquired.
        let word = self.word.load(Ordering::Relaxed);
        LockState {
            owner: owner(word),
            next_ticket: tail(word),
            slowpath: slowpath(word),
        }
    }
}

// Mutual exclusion: `lock` returns only once this CPU's ticket owns the lock
// and `unlock` passes it to the next ticket, so at most one context holds it.
raw_mutex!(RawPvTicketLock, state);

/// The unlocker's slow path: kicks the CPU halted for ticket `next` of the
/// lock at `lock_addr`, if any.
///
/// Takes the address as a plain integer, not a reference: the lock may have
/// been freed by now, and this function cannot touch it. It takes no lock.
#[cold]
#[inline(never)]
fn kick_next(lock_addr: usize, next: Ticket) {
    // Acquire: pairs with the Release fetch_or by which a waiter set the
    // flag our RMW saw (every later RMW on the word continues its release
    // sequence): that waiter's record and waiting bit are visible below.
    fence(Ordering::Acquire);
    stats::RELEASED_SLOW.inc();
    // The flag is set only by a waiter that found the table registered, and
    // it is never unregistered.
    let Some(ops) = pv::ops() else {
        return;
    };
    if let Some(cpu) = waiters().find(lock_addr, next) {
        stats::RELEASED_SLOW_KICKED.inc();
        kickwake::kick(ops, cpu);
    }
}

#[cfg(not(loom))]
// SAFETY: as for `RawMutex`; `unlock` already hands the lock to the next
// ticket in FIFO order.
unsafe impl lock_api::RawMutexFair for RawPvTicketLock {
    #[inline]
    unsafe fn unlock_fair(&self) {
        // SAFETY: the caller holds the lock (lock_api's contract).
        unsafe { RawPvTicketLock::unlock(self) }
    }

    #[inline]
    unsafe fn bump(&self) {
        if self.is_contended() {
            // SAFETY: the caller holds the lock (lock_api's contract).
            unsafe { RawPvTicketLock::unlock(self) };
            RawPvTicketLock::lock(self);
        }
    }
}
