//! Queued spinlocks after Linux's (`kernel/locking/qspinlock.c`, 4.2+):
//! [`RawQSpinLock`] (`qspin`) and its paravirtual flavour [`RawPvQSpinLock`]
//! (`pvqspin`, `qspinlock_paravirt.h`).
//!
//! # Lock word
//!
//! ```text
//!  31              18 17  16 15         9   8   7            0
//! +------------------+------+------------+---+---------------+
//! |   tail cpu + 1   | idx  |     0      | P |  locked byte  |
//! +------------------+------+------------+---+---------------+
//! ```
//!
//! The locked byte is 0, `LOCKED_VAL` (1) or, for `pvqspin`, `SLOW_VAL` (3:
//! held, and a halted queue head is in the hash table). P is the pending bit.
//! The tail names the last queued waiter's node: CPU + 1 (so 0 means no tail)
//! and the node index on that CPU. Unlocked and idle, the word is 0.
//!
//! Every access is a 32-bit atomic on the whole word (Linux writes the locked
//! byte and the tail halfword with narrower stores; Rust's memory model has no
//! mixed-size atomics), and every write is an RMW, so a release sequence headed
//! by any write runs through all later ones.
//!
//! # Queue nodes
//!
//! Each CPU has 4 nodes, as Linux has for task, softirq, hardirq and NMI. Linux
//! picks a node by a per-CPU nesting count, which assumes that the contexts
//! nest strictly. Hermit preempts tasks that wait for a `TicketMutex` with
//! interrupts enabled, so two tasks of one CPU may wait at once and finish in
//! any order: here a waiter claims a free node of its CPU's four with an atomic
//! bitmask and frees it once it owns the lock. A waiter that finds none free
//! spins on a trylock instead (Linux's `lock_no_node`). A waiter must stay on
//! its CPU until it owns the lock (Hermit does not migrate tasks): its node's
//! CPU is the one a `pvqspin` unlocker kicks.
//!
//! A node is two words: `next`, the successor's tail code, and `word`, the MCS
//! handover bit (`NODE_LOCKED`: "you are the queue head") together with the pv
//! state (`RUNNING`, `HALTED`, `HASHED`). Linux keeps the two apart and orders
//! them with full barriers (`smp_store_mb` in `pv_wait_node` against
//! `cmpxchg` in `pv_kick_node`); in one word the waiter's "I halt" and the
//! owner's "you are head" are RMWs on the same location, totally ordered, as
//! in the ticket lock's handshake: no store-then-load pattern, no SeqCst.
//!
//! # pvqspin handshake (queue head H on lock L, unlocker U)
//!
//! 1. H spins with the pending bit set (no stealing meanwhile), then clears
//!    it, inserts {L, H's node} in the hash table and sets L's locked byte to
//!    `SLOW_VAL` with a Release RMW. If the byte was 0, L is H's: it puts back
//!    `LOCKED_VAL`, removes the entry and goes on (a pickup).
//! 2. U's unlock is a Release compare-exchange `LOCKED_VAL` -> 0. It fails on
//!    `SLOW_VAL`: then an Acquire fence (pairs with H's RMW through the
//!    release sequence) makes the entry visible; U removes it while still
//!    holding L, releases L with a Release RMW, and kicks the CPU the tail code
//!    names, touching neither L nor the node again.
//! 3. H halts only if, with interrupts off, it still sees `SLOW_VAL`. Only U's
//!    release clears it, and U kicks after that: a kick that lands before the
//!    halt is kept (kicks are sticky), so none is lost.
//! 4. A queued waiter W behind H halts by RMW `RUNNING` -> `HALTED` on its node
//!    word, which fails if the handover bit is already set. The owner hands over
//!    with one RMW: it sets `NODE_LOCKED` and turns `HALTED` into `HASHED`; if
//!    it did, it marks L slow and hashes W's node itself (`pv_kick_node`), so
//!    that W sleeps on until L is released and U's kick wakes it as in 3.

use crate::kickwake;
use crate::pv::{self, PvOps};
use crate::pvhash;
use crate::stats::{self, queued as ev};
use crate::sync::{fence, spin_loop, AtomicU32, Ordering};
use crate::MAX_CPUS;

/// The locked byte.
pub(crate) const LOCKED_MASK: u32 = 0xff;
/// The locked byte of a held lock.
pub(crate) const LOCKED_VAL: u32 = 1;
/// `pvqspin`: the locked byte of a held lock whose queue head may be halted.
pub(crate) const SLOW_VAL: u32 = 3;
/// The pending bit.
pub(crate) const PENDING_VAL: u32 = 1 << 8;
/// The locked and pending bytes.
const LOCKED_PENDING_MASK: u32 = 0xffff;
const TAIL_IDX_SHIFT: u32 = 16;
const TAIL_CPU_SHIFT: u32 = 18;
/// The tail: CPU + 1 and node index.
const TAIL_MASK: u32 = !LOCKED_PENDING_MASK;

/// Queue nodes per CPU (the tail's index has 2 bits).
pub(crate) const NODES_PER_CPU: usize = 4;

const _: () = assert!((MAX_CPUS as u64) < 1 << (u32::BITS - TAIL_CPU_SHIFT));

/// Node word: the MCS handover, "you are the queue head".
const NODE_LOCKED: u32 = 1;
/// Node word, pv state: spinning (Linux's `vcpu_running`).
const RUNNING: u32 = 0;
/// Node word, pv state: halted in `pv_wait_node` (`vcpu_halted`).
const HALTED: u32 = 2;
/// Node word, pv state: halted and hashed (`vcpu_hashed`): the owner made it
/// the head while it slept and hashed it; the unlock will kick it.
const HASHED: u32 = 4;
const STATE_MASK: u32 = 6;

/// How often a queued waiter looks at its predecessor's state while spinning
/// (Linux's `PV_PREV_CHECK_MASK`).
const PREV_CHECK_MASK: u32 = 0xff;

const fn encode_tail(cpu: u32, idx: u32) -> u32 {
    ((cpu + 1) << TAIL_CPU_SHIFT) | (idx << TAIL_IDX_SHIFT)
}

/// The CPU of a (nonzero) tail code.
pub(crate) const fn tail_cpu(tail: u32) -> u32 {
    (tail >> TAIL_CPU_SHIFT) - 1
}

const fn tail_idx(tail: u32) -> usize {
    ((tail >> TAIL_IDX_SHIFT) & 3) as usize
}

/// One MCS queue node.
struct QNode {
    /// The successor's tail code, 0 until it links itself.
    next: AtomicU32,
    /// `NODE_LOCKED` | pv state.
    word: AtomicU32,
}

/// One CPU's nodes.
#[repr(align(64))] // Written by their CPU on every queued wait.
struct CpuNodes {
    /// Bit i: `nodes[i]` is claimed by a waiter.
    claimed: AtomicU32,
    nodes: [QNode; NODES_PER_CPU],
}

pub(crate) struct Nodes {
    cpus: [CpuNodes; MAX_CPUS],
}

impl QNode {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Self {
            next: AtomicU32::new(0),
            word: AtomicU32::new(RUNNING),
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        Self {
            next: AtomicU32::new(0),
            word: AtomicU32::new(RUNNING),
        }
    }
}

impl CpuNodes {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Self {
            claimed: AtomicU32::new(0),
            nodes: [const { QNode::new() }; NODES_PER_CPU],
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        Self {
            claimed: AtomicU32::new(0),
            nodes: core::array::from_fn(|_| QNode::new()),
        }
    }
}

impl Nodes {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Self {
            cpus: [const { CpuNodes::new() }; MAX_CPUS],
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        Self {
            cpus: core::array::from_fn(|_| CpuNodes::new()),
        }
    }

    /// The node a (nonzero) tail code names.
    fn node(&self, tail: u32) -> &QNode {
        &self.cpus[tail_cpu(tail) as usize].nodes[tail_idx(tail)]
    }

    /// Claims a free node of `cpu` (< MAX_CPUS): its tail code and the node.
    fn claim(&self, cpu: u32) -> Option<(u32, &QNode)> {
        let slot = &self.cpus[cpu as usize];
        // Relaxed: a guess, checked by the compare-exchange.
        let mut claimed = slot.claimed.load(Ordering::Relaxed);
        loop {
            let idx = (!claimed).trailing_zeros();
            if idx as usize >= NODES_PER_CPU {
                return None;
            }
            // Acquire: pairs with the Release in `release`; the node's last
            // use is over before we reinitialise it.
            match slot.claimed.compare_exchange(
                claimed,
                claimed | 1 << idx,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some((encode_tail(cpu, idx), &slot.nodes[idx as usize])),
                Err(now) => claimed = now,
            }
        }
    }

    /// Frees the node of tail code `tail`.
    fn release(&self, tail: u32) {
        // Release: see `claim`.
        self.cpus[tail_cpu(tail) as usize]
            .claimed
            .fetch_and(!(1 << tail_idx(tail)), Ordering::Release);
    }

    /// Claimed nodes (racy; for tests and diagnostics).
    fn in_use(&self) -> u32 {
        self.cpus
            .iter()
            // Relaxed: a diagnostic snapshot.
            .map(|cpu| cpu.claimed.load(Ordering::Relaxed).count_ones())
            .sum()
    }
}

#[cfg(not(loom))]
static NODES: Nodes = Nodes::new();

#[cfg(not(loom))]
#[inline(always)]
fn nodes() -> &'static Nodes {
    &NODES
}

// Loom atomics must be created inside each model execution.
#[cfg(loom)]
loom::lazy_static! {
    static ref NODES: Nodes = Nodes::new();
}

#[cfg(loom)]
fn nodes() -> &'static Nodes {
    &NODES
}

/// Queue nodes claimed by waiters now (racy; for tests and diagnostics).
pub fn queue_nodes_in_use() -> u32 {
    nodes().in_use()
}

/// Locks in the `pvqspin` hash table now (racy; for tests and diagnostics).
pub fn hashed_locks() -> usize {
    pvhash::table().in_use()
}

/// A racy view of a queued lock's word, for diagnostics and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuedLockState {
    /// The locked byte: 0 (free), 1 (held) or 3 (held, queue head halted).
    pub locked: u8,
    /// The pending bit.
    pub pending: bool,
    /// The last queued waiter, as (CPU, node index).
    pub tail: Option<(u32, u8)>,
}

impl QueuedLockState {
    fn of(word: u32) -> Self {
        let tail = word & TAIL_MASK;
        Self {
            locked: (word & LOCKED_MASK) as u8,
            pending: word & PENDING_VAL != 0,
            tail: (tail != 0).then(|| (tail_cpu(tail), tail_idx(tail) as u8)),
        }
    }

    /// Whether some context holds the lock.
    pub fn is_locked(&self) -> bool {
        self.locked != 0
    }

    /// Whether nothing at all is going on: the word is 0.
    pub fn is_idle(&self) -> bool {
        *self == Self::of(0)
    }
}

// ---------------------------------------------------------------------------
// Shared pieces.

/// The lock's address, its key in the hash table (compared, never
/// dereferenced).
#[inline(always)]
fn addr(word: &AtomicU32) -> usize {
    core::ptr::from_ref(word).addr()
}

/// The uncontended acquisition `0 -> LOCKED_VAL`; on failure, the word seen.
#[inline(always)]
pub(crate) fn fast_lock(word: &AtomicU32) -> Result<u32, u32> {
    // Acquire: pairs with the Release of the previous unlock.
    word.compare_exchange(0, LOCKED_VAL, Ordering::Acquire, Ordering::Relaxed)
}

/// Linux's `queued_spin_trylock`: only an idle word (no tail either).
#[inline]
pub(crate) fn trylock(word: &AtomicU32) -> bool {
    // Relaxed: a guess, checked by the compare-exchange.
    word.load(Ordering::Relaxed) == 0 && fast_lock(word).is_ok()
}

/// `pvqspin`'s trylock at slow-path entry (`pv_queued_spin_steal_lock`): takes
/// a lock that is neither held nor pending, even with waiters queued.
fn steal(word: &AtomicU32) -> bool {
    // Relaxed: a guess, checked by the compare-exchange.
    let mut val = word.load(Ordering::Relaxed);
    while val & LOCKED_PENDING_MASK == 0 {
        // Acquire: this RMW takes the lock; pairs with the releasing unlock.
        match word.compare_exchange(val, val | LOCKED_VAL, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => val = now,
        }
    }
    false
}

/// Puts `tail` in the word's tail and returns the word before (`p,*,* ->
/// n,*,*`).
fn xchg_tail(word: &AtomicU32, tail: u32) -> u32 {
    // Relaxed: a guess, checked by the compare-exchange.
    let mut val = word.load(Ordering::Relaxed);
    loop {
        let new = (val & LOCKED_PENDING_MASK) | tail;
        // Release: our node's initialisation is visible to the next waiter,
        // which learns our tail code from its own xchg_tail. Acquire: the
        // same for the predecessor whose code we get back, before we link to
        // its node and (pv) read its state.
        match word.compare_exchange(val, new, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return val,
            Err(now) => val = now,
        }
    }
}

/// No queue node (none free, or no CPU id): spin on the trylock, unfairly.
#[cold]
fn spin_without_node<const PV: bool>(word: &AtomicU32) {
    ev::NO_NODE.inc();
    while !(if PV { steal(word) } else { trylock(word) }) {
        spin_loop();
    }
}

/// The queue, for both flavours (`PV` is Linux's `pv_enabled()`); returns with
/// the lock held.
fn queue<const PV: bool>(word: &AtomicU32) {
    ev::QUEUED.inc();
    let nodes = nodes();
    let claimed = pv::ops()
        .map(|ops| (ops.cpu_id)())
        .filter(|&cpu| cpu < MAX_CPUS as u32)
        .and_then(|cpu| nodes.claim(cpu));
    let Some((tail, node)) = claimed else {
        spin_without_node::<PV>(word);
        return;
    };
    if tail_idx(tail) > 0 {
        ev::NESTED.inc();
    }
    // Relaxed (both): published to the other waiters by xchg_tail's Release.
    node.next.store(0, Ordering::Relaxed);
    node.word.store(RUNNING, Ordering::Relaxed);

    // One more try now that we touched a maybe cold node (pv: the one steal).
    if if PV { steal(word) } else { trylock(word) } {
        if PV {
            ev::STEALS.inc();
        }
        nodes.release(tail);
        return;
    }

    let old = xchg_tail(word, tail);
    let mut next = 0;
    if old & TAIL_MASK != 0 {
        let prev = nodes.node(old & TAIL_MASK);
        // Release: pairs with the Acquire load of `next` by the predecessor;
        // our node's initialisation is visible to it before it hands over.
        prev.next.store(tail, Ordering::Release);
        if PV {
            pv_wait_node(node, prev, tail_cpu(tail));
        }
        // Acquire: pairs with the Release RMW of the handover.
        while node.word.load(Ordering::Acquire) & NODE_LOCKED == 0 {
            spin_loop();
        }
        // Acquire: pairs with the successor's Release store linking itself;
        // its node is initialised. (An optimistic look; 0 is re-read below.)
        next = node.next.load(Ordering::Acquire);
    }

    // We are the queue head: wait for the owner and the pending waiter.
    let val = if PV {
        pv_wait_head_or_lock(word, tail, node)
    } else {
        loop {
            // Acquire: pairs with the Release of the unlock (or with the
            // pending waiter's acquisition, through the word's RMWs).
            let val = word.load(Ordering::Acquire);
            if val & LOCKED_PENDING_MASK == 0 {
                break val;
            }
            spin_loop();
        }
    };

    // Claim the lock: `n,0,0 -> 0,0,1` if we are also the tail, else
    // `*,*,0 -> *,*,1` (pv: already held, by pv_wait_head_or_lock).
    if val & TAIL_MASK == tail {
        // Relaxed: the lock was acquired by the Acquire load above (pv: by its
        // RMW); this only drops our tail, failing if anybody queued since.
        if word
            .compare_exchange(val, LOCKED_VAL, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            nodes.release(tail);
            return;
        }
    }
    // Somebody queued behind us, or (native) a would-be pending waiter set P,
    // will see our tail and queue: either way a successor will link itself.
    if !PV {
        // Relaxed: acquired by the Acquire load above; nobody else takes a lock
        // whose tail is set and whose locked and pending bytes are clear.
        word.fetch_or(LOCKED_VAL, Ordering::Relaxed);
    }
    while next == 0 {
        spin_loop();
        // Acquire: see the optimistic look above.
        next = node.next.load(Ordering::Acquire);
    }
    let succ = nodes.node(next);
    if PV {
        pv_handover(word, next, succ);
    } else {
        // Release: pairs with the successor's Acquire load of its node word;
        // the MCS handover.
        succ.word.fetch_or(NODE_LOCKED, Ordering::Release);
    }
    nodes.release(tail);
}

// ---------------------------------------------------------------------------
// qspin

/// The native slow path (`queued_spin_lock_slowpath` without pv): the pending
/// bit for the first waiter, the MCS queue for the rest.
#[cold]
#[inline(never)]
fn lock_slow_native(word: &AtomicU32, mut val: u32) {
    // Wait (boundedly, Linux's `_Q_PENDING_LOOPS` is 1 on x86) for an
    // in-progress pending -> locked handover: `0,1,0 -> 0,0,1`.
    if val == PENDING_VAL {
        spin_loop();
        // Relaxed: a guess for the decision below.
        val = word.load(Ordering::Relaxed);
    }
    // Any contention beyond the owner: queue.
    if val & !LOCKED_MASK == 0 {
        // Acquire: if the lock was free, this RMW starts our acquisition;
        // pairs with the Release of the previous unlock.
        val = word.fetch_or(PENDING_VAL, Ordering::Acquire);
        if val & !LOCKED_MASK == 0 {
            // We are pending: wait for the owner to go (`0,1,1 -> 0,1,0`).
            if val & LOCKED_MASK != 0 {
                // Acquire: pairs with the Release of the unlock.
                while word.load(Ordering::Acquire) & LOCKED_MASK != 0 {
                    spin_loop();
                }
            }
            // Take it and clear pending: `*,1,0 -> *,0,1`. Relaxed: acquired
            // above; the pending bit kept everybody else off.
            word.fetch_add(LOCKED_VAL.wrapping_sub(PENDING_VAL), Ordering::Relaxed);
            ev::PENDING.inc();
            return;
        }
        // Somebody else is pending or queued. Undo our pending bit if we set
        // it (a queue head may be waiting for it to go) and queue.
        if val & PENDING_VAL == 0 {
            // Relaxed: gives nothing away; the head re-reads with Acquire.
            word.fetch_and(!PENDING_VAL, Ordering::Relaxed);
        }
    }
    queue::<false>(word);
}

/// A native queued spinlock, after Linux's qspinlock (`qspin`).
///
/// Fast path `0 -> locked`: one compare-exchange; unlock: one RMW clearing
/// the locked byte. The first waiter spins on the pending bit, the others in
/// an MCS queue of per-CPU nodes, each on its own node; the queue head spins
/// on the lock word. Queueing needs the CPU id of the registered [`PvOps`]:
/// without them, waiters spin on a trylock. See the module documentation.
#[repr(transparent)] // `RawModalLock` views its word as this lock.
pub struct RawQSpinLock {
    word: AtomicU32,
}

impl RawQSpinLock {
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

    /// Acquires the lock, spinning while others hold it.
    #[inline]
    pub fn lock(&self) {
        if let Err(val) = fast_lock(&self.word) {
            lock_slow_native(&self.word, val);
        }
    }

    /// Acquires the lock if it is idle; never waits.
    #[inline]
    pub fn try_lock(&self) -> bool {
        trylock(&self.word)
    }

    /// Releases the lock.
    ///
    /// # Safety
    ///
    /// The calling context must hold the lock.
    #[inline]
    pub unsafe fn unlock(&self) {
        // Release: pairs with the Acquire by which the next owner takes the
        // lock; publishes our critical section. The locked byte is 1, so this
        // clears it and leaves pending and tail alone.
        self.word.fetch_sub(LOCKED_VAL, Ordering::Release);
    }

    /// Whether some context holds the lock (racy).
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.state().is_locked()
    }

    /// A racy view of the lock word.
    pub fn state(&self) -> QueuedLockState {
        // Relaxed: a snapshot for diagnostics.
        QueuedLockState::of(self.word.load(Ordering::Relaxed))
    }
}

// ---------------------------------------------------------------------------
// pvqspin

/// The pv slow path: straight to the queue (Linux: `if (pv_enabled()) goto
/// pv_queue`), whose trylock is the one steal.
#[cold]
#[inline(never)]
fn lock_slow_pv(word: &AtomicU32) {
    queue::<true>(word);
}

/// One halt of this CPU (`cpu`, from the node's tail code), with accounting.
/// Called with interrupts disabled (`irqs_were_enabled` from `irq_save`).
fn halt(ops: &PvOps, cpu: u32, irqs_were_enabled: bool) {
    ev::HALTED.inc();
    if !irqs_were_enabled {
        ev::HALTED_IRQS_DISABLED.inc();
    }
    let (blocked, kick_latency) = kickwake::halt(ops, cpu, irqs_were_enabled);
    stats::record_queued_blocked(blocked);
    if let Some(cycles) = kick_latency {
        stats::record_kick_latency(cycles);
    }
}

/// Kicks `cpu` and stamps the kick for the latency statistics.
fn kick(ops: &PvOps, cpu: u32) {
    kickwake::kick(ops, cpu);
}

/// A queued waiter behind `prev`: spin a bounded time for the handover, then
/// halt until the owner makes us head; return once `NODE_LOCKED` is set (the
/// caller re-reads it with Acquire). Linux's `pv_wait_node`.
fn pv_wait_node(node: &QNode, prev: &QNode, cpu: u32) {
    let mut halts = 0u64;
    loop {
        let mut budget = pv::spin_threshold();
        let mut early = false;
        loop {
            // Acquire: pairs with the Release RMW of the handover.
            if node.word.load(Ordering::Acquire) & NODE_LOCKED != 0 {
                return;
            }
            // Relaxed: a hint. A predecessor that is not running will not
            // hand over soon: halt now (Linux's `pv_wait_early`).
            if budget & PREV_CHECK_MASK == 0 && prev.word.load(Ordering::Relaxed) & STATE_MASK != RUNNING {
                early = true;
                break;
            }
            if budget == 0 {
                break;
            }
            budget -= 1;
            spin_loop();
        }
        let Some(ops) = pv::slow_path() else {
            spin_loop();
            continue;
        };
        let irqs_were_enabled = (ops.irq_save)();
        kickwake::arm(cpu);
        // The handshake with the owner's handover, on one word: either we see
        // NODE_LOCKED (and do not halt), or the owner sees HALTED and makes us
        // HASHED, to be kicked by its unlock.
        // Release: orders our spinning before the halt mark (nothing the owner
        // needs, but free). Acquire (failure): pairs with the handover's
        // Release RMW.
        if node
            .word
            .compare_exchange(RUNNING, HALTED, Ordering::Release, Ordering::Acquire)
            .is_err()
        {
            ev::PICKUPS_NODE.inc();
            (ops.irq_restore)(irqs_were_enabled);
            return;
        }
        // Linux's pv_wait(&state, vcpu_halted): halt only while still halted.
        // Relaxed: a HASHED we miss here is kicked by the unlock later anyway
        // (sticky), so this only saves a halt.
        if node.word.load(Ordering::Relaxed) == HALTED {
            ev::WAIT_NODE.inc();
            if halts > 0 {
                ev::WAIT_AGAIN.inc();
            }
            if early {
                ev::WAIT_EARLY.inc();
            }
            halts += 1;
            halt(ops, cpu, irqs_were_enabled);
        }
        (ops.irq_restore)(irqs_were_enabled);
        // Back to running unless the owner made us HASHED meanwhile, which we
        // keep so that pv_wait_head_or_lock does not hash us again.
        // Acquire (both): on failure the handover happened; pairs with its
        // Release RMW.
        match node
            .word
            .compare_exchange(HALTED, RUNNING, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => ev::SPURIOUS_WAKEUPS.inc(),
            Err(_) => return,
        }
    }
}

/// The owner hands the queue head to `succ` (tail code `succ_tail`): the MCS
/// handover and Linux's `pv_kick_node` in one RMW. If `succ` is halted it
/// becomes HASHED and stays asleep: we mark the lock slow and hash it, so
/// that our unlock kicks it, instead of waking it to spin on a held lock.
fn pv_handover(word: &AtomicU32, succ_tail: u32, succ: &QNode) {
    // Relaxed: a guess, checked by the compare-exchange.
    let mut cur = succ.word.load(Ordering::Relaxed);
    loop {
        let halted = cur & STATE_MASK == HALTED;
        let new = if halted {
            NODE_LOCKED | HASHED
        } else {
            cur | NODE_LOCKED
        };
        // Release: the handover; pairs with the successor's Acquire of
        // NODE_LOCKED.
        match succ
            .word
            .compare_exchange(cur, new, Ordering::Release, Ordering::Relaxed)
        {
            Ok(_) if halted => {
                // Relaxed: we hold the lock and are the one to unlock it, which
                // reads this in program order (LOCKED_VAL | SLOW_VAL == SLOW_VAL).
                word.fetch_or(SLOW_VAL, Ordering::Relaxed);
                pvhash::table().insert(addr(word), succ_tail);
                return;
            }
            Ok(_) => return,
            Err(now) => cur = now,
        }
    }
}

/// `pvqspin`'s trylock of the queue head: takes the lock if the locked byte is
/// clear and clears our pending bit in the same step. Returns the new word.
fn trylock_clear_pending(word: &AtomicU32) -> Option<u32> {
    // Relaxed: a guess, checked by the compare-exchange.
    let mut val = word.load(Ordering::Relaxed);
    while val & LOCKED_MASK == 0 {
        let new = (val & !PENDING_VAL) | LOCKED_VAL;
        // Acquire: this RMW takes the lock; pairs with the releasing unlock.
        match word.compare_exchange(val, new, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return Some(new),
            Err(now) => val = now,
        }
    }
    None
}

/// The queue head: spin (pending set, so nobody steals) a bounded time for
/// the lock, then hash ourselves, mark the lock slow and halt until the
/// unlocker kicks. Returns the word with the lock held by us. Linux's
/// `pv_wait_head_or_lock`, including its once-only hashing: after its first
/// wakeup a head spins (lock stealing may cost it the lock once more).
fn pv_wait_head_or_lock(word: &AtomicU32, tail: u32, node: &QNode) -> u32 {
    let cpu = tail_cpu(tail);
    // Relaxed: our own node; the HASHED a handover left was acquired with its
    // NODE_LOCKED.
    let mut hashed = node.word.load(Ordering::Relaxed) & STATE_MASK == HASHED;
    let mut halts = 0u64;
    loop {
        // Relaxed (state stores): hints for the next node's wait-early check;
        // nobody else writes a head's node word.
        node.word.store(NODE_LOCKED | RUNNING, Ordering::Relaxed);
        // Relaxed: keeps stealers off while we spin; orders nothing.
        word.fetch_or(PENDING_VAL, Ordering::Relaxed);
        let mut budget = pv::spin_threshold();
        loop {
            if let Some(val) = trylock_clear_pending(word) {
                return val;
            }
            if budget == 0 {
                break;
            }
            budget -= 1;
            spin_loop();
        }
        // Relaxed: lets stealers in again while we sleep.
        word.fetch_and(!PENDING_VAL, Ordering::Relaxed);
        let Some(ops) = pv::slow_path() else {
            spin_loop();
            continue;
        };
        if !hashed {
            // The kick for this wait comes after the hashing below, and only
            // once; later rounds keep the stamp.
            kickwake::arm(cpu);
            let entry = pvhash::table().insert(addr(word), tail);
            hashed = true;
            // Release: the hash entry is visible to the unlocker that sees
            // SLOW_VAL (its Acquire fence). Acquire: if the lock was free,
            // this RMW takes it; pairs with the releasing unlock.
            let old = word.fetch_or(SLOW_VAL, Ordering::AcqRel);
            if old & LOCKED_MASK == 0 {
                // The lock was free and is ours: back to LOCKED_VAL, unhash.
                // Relaxed: we hold the lock; nobody else writes its locked
                // byte meanwhile.
                let val = word.fetch_and(!(SLOW_VAL & !LOCKED_VAL), Ordering::Relaxed);
                pvhash::table().remove(entry);
                ev::PICKUPS_HEAD.inc();
                return val & !(SLOW_VAL & !LOCKED_VAL);
            }
        }
        node.word.store(NODE_LOCKED | HASHED, Ordering::Relaxed);
        let irqs_were_enabled = (ops.irq_save)();
        // Linux's pv_wait(&l->locked, _Q_SLOW_VAL). Relaxed: only the unlock
        // that kicks us clears SLOW_VAL, and kicks are sticky, so a stale
        // SLOW_VAL costs at most an immediate return from the halt.
        let slow = word.load(Ordering::Relaxed) & LOCKED_MASK == SLOW_VAL;
        if slow {
            ev::WAIT_HEAD.inc();
            if halts > 0 {
                ev::WAIT_AGAIN.inc();
            }
            halts += 1;
            halt(ops, cpu, irqs_were_enabled);
        }
        (ops.irq_restore)(irqs_were_enabled);
        if !slow {
            // Nothing to halt for (hashed once already, or the owner has not
            // marked the lock slow for us yet): spin on, with a pause even
            // when the spin threshold is 0.
            spin_loop();
        } else if word.load(Ordering::Relaxed) & LOCKED_MASK != 0 {
            // Relaxed: statistics; a stolen lock or a wakeup without release.
            ev::SPURIOUS_WAKEUPS.inc();
        }
    }
}

/// The unlock of a slow lock: unhash its queue head while we still hold the
/// lock, release it, kick the head's CPU. Touches the lock only with the
/// releasing RMW and its address only as a key.
#[cold]
#[inline(never)]
fn unlock_slow(word: &AtomicU32, val: u32) {
    debug_assert_eq!(val & LOCKED_MASK, SLOW_VAL, "pvqspin: unlock of a lock not held");
    if val & LOCKED_MASK != SLOW_VAL {
        // Not held: a caller broke unlock's contract (Linux WARNs). Leave it.
        return;
    }
    let lock = addr(word);
    // Acquire: pairs with the Release RMW that set SLOW_VAL (a head's, or our
    // own pv_handover's); our failed compare-exchange read it or a later RMW
    // in its release sequence. The hash entry is visible from here on.
    fence(Ordering::Acquire);
    let head = pvhash::table().take(lock);
    // Release: the unlock proper; pairs with the Acquire of the next owner.
    // The locked byte goes to 0 and nothing else changes.
    word.fetch_and(!LOCKED_MASK, Ordering::Release);
    // `word` may be freed from here on.
    ev::KICK_UNLOCK.inc();
    // SLOW_VAL is set only by a waiter that found the table registered, and it
    // is never unregistered.
    if let Some(ops) = pv::ops() {
        kick(ops, tail_cpu(head));
    }
}

/// A paravirtual queued spinlock, after Linux 4.2+'s pv qspinlock (`pvqspin`).
///
/// The lock word, fast path and queue of [`RawQSpinLock`], without the pending
/// path; queued waiters spin up to the spin threshold and then halt, the queue
/// head after hashing itself and marking the lock slow. Unlock is one
/// compare-exchange unless the lock is slow; then it unhashes the head and
/// kicks its CPU. Without registered [`PvOps`] (or with
/// [`crate::set_enabled`]`(false)`) nobody halts. See the module
/// documentation.
#[repr(transparent)] // `RawModalLock` views its word as this lock.
pub struct RawPvQSpinLock {
    word: AtomicU32,
}

impl RawPvQSpinLock {
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

    /// Acquires the lock, spinning and then halting while others hold it.
    #[inline]
    pub fn lock(&self) {
        if fast_lock(&self.word).is_err() {
            lock_slow_pv(&self.word);
        }
    }

    /// Acquires the lock if it is idle; never waits.
    #[inline]
    pub fn try_lock(&self) -> bool {
        trylock(&self.word)
    }

    /// Releases the lock and, if its queue head may be halted, kicks it.
    ///
    /// After the releasing RMW the lock is not accessed again: the kick uses
    /// the tail code taken from the hash table before the release.
    ///
    /// # Safety
    ///
    /// The calling context must hold the lock.
    #[inline]
    pub unsafe fn unlock(&self) {
        // Release: pairs with the Acquire by which the next owner takes the
        // lock. Guesses the idle word; a slow lock fails and goes out of line.
        let Err(mut val) = self
            .word
            .compare_exchange(LOCKED_VAL, 0, Ordering::Release, Ordering::Relaxed)
        else {
            return;
        };
        unlock_contended(&self.word, &mut val);
    }

    /// Whether some context holds the lock (racy).
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.state().is_locked()
    }

    /// A racy view of the lock word.
    pub fn state(&self) -> QueuedLockState {
        // Relaxed: a snapshot for diagnostics.
        QueuedLockState::of(self.word.load(Ordering::Relaxed))
    }
}

/// The unlock when the word was not just `LOCKED_VAL`: waiters changed the
/// pending or tail bits (retry keeping them), or the lock is slow.
#[cold]
#[inline(never)]
fn unlock_contended(word: &AtomicU32, val: &mut u32) {
    while *val & LOCKED_MASK == LOCKED_VAL {
        // Release: as in `unlock`.
        match word.compare_exchange(*val, *val & !LOCKED_MASK, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(now) => *val = now,
        }
    }
    unlock_slow(word, *val);
}

/// For [`crate::RawModalLock`]: the queued slow paths by mode.
pub(crate) fn lock_slow_qspin(word: &AtomicU32, val: u32) {
    lock_slow_native(word, val);
}

/// For [`crate::RawModalLock`].
pub(crate) fn lock_slow_pvqspin(word: &AtomicU32) {
    lock_slow_pv(word);
}

/// For [`crate::RawModalLock`]: `qspin`'s unlock.
#[inline(always)]
pub(crate) fn unlock_qspin(word: &AtomicU32) {
    // Release: as in `RawQSpinLock::unlock`.
    word.fetch_sub(LOCKED_VAL, Ordering::Release);
}

/// For [`crate::RawModalLock`]: `pvqspin`'s unlock.
#[inline(always)]
pub(crate) fn unlock_pvqspin(word: &AtomicU32) {
    // Release: as in `RawPvQSpinLock::unlock`.
    if let Err(mut val) = word.compare_exchange(LOCKED_VAL, 0, Ordering::Release, Ordering::Relaxed) {
        unlock_contended(word, &mut val);
    }
}

/// For [`crate::RawModalLock`]: whether a queued lock's word is held.
#[inline(always)]
pub(crate) fn word_is_locked(word: u32) -> bool {
    word & LOCKED_MASK != 0
}

/// For [`crate::RawModalLock`]: a view of a queued lock's word.
pub(crate) fn word_state(word: u32) -> QueuedLockState {
    QueuedLockState::of(word)
}

// Mutual exclusion: `lock` returns only once the locked byte was set by this
// context from 0 (or handed to it with the queue head), `unlock` clears it, so
// at most one context holds the lock.
raw_mutex!(RawQSpinLock, state);
raw_mutex!(RawPvQSpinLock, state);

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn tail_codes_round_trip_and_zero_means_none() {
        for cpu in [0, 1, MAX_CPUS as u32 - 1] {
            for idx in 0..NODES_PER_CPU as u32 {
                let tail = encode_tail(cpu, idx);
                assert_ne!(tail, 0);
                assert_eq!(tail & !TAIL_MASK, 0);
                assert_eq!((tail_cpu(tail), tail_idx(tail)), (cpu, idx as usize));
            }
        }
        assert!(QueuedLockState::of(0).is_idle());
    }

    #[test]
    fn clear_pending_set_locked_is_one_add() {
        let w = encode_tail(3, 1) | PENDING_VAL;
        assert_eq!(
            w.wrapping_add(LOCKED_VAL.wrapping_sub(PENDING_VAL)),
            encode_tail(3, 1) | LOCKED_VAL
        );
        assert_eq!(LOCKED_VAL | SLOW_VAL, SLOW_VAL);
        assert_eq!(SLOW_VAL & !(SLOW_VAL & !LOCKED_VAL), LOCKED_VAL);
    }

    // No PvOps are registered in this test binary: no CPU ids, so waiters
    // spin on the trylock (`no_node`); these check the lock words.
    #[test]
    fn uncontended_words() {
        let q = RawQSpinLock::new();
        q.lock();
        assert_eq!(q.state().locked, 1);
        assert!(!q.try_lock());
        // SAFETY: locked above.
        unsafe { q.unlock() };
        assert!(q.state().is_idle());
        let p = RawPvQSpinLock::new();
        assert!(p.try_lock());
        assert!(p.is_locked());
        // SAFETY: locked above.
        unsafe { p.unlock() };
        assert!(p.state().is_idle());
    }

    #[test]
    fn both_exclude_without_pv_ops() {
        const THREADS: usize = 3;
        const ROUNDS: u64 = if cfg!(miri) { 50 } else { 5_000 };
        static Q: lock_api::Mutex<RawQSpinLock, u64> = lock_api::Mutex::new(0);
        static P: lock_api::Mutex<RawPvQSpinLock, u64> = lock_api::Mutex::new(0);
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    for _ in 0..ROUNDS {
                        *Q.lock() += 1;
                        *P.lock() += 1;
                    }
                });
            }
        });
        assert_eq!(*Q.lock(), THREADS as u64 * ROUNDS);
        assert_eq!(*P.lock(), THREADS as u64 * ROUNDS);
    }
}
