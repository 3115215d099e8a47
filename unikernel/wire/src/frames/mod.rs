//! Metrics frames: what a guest streams to the host while its workload runs.
//!
//! One TCP connection per guest run. Every message is a frame:
//!
//! ```text
//! u32 LE   payload length (version + body), at most MAX_FRAME_LEN
//! u16 LE   protocol version (VERSION)
//! ...      postcard body: a Frame (guest -> host) or a Reply (host -> guest)
//! ```
//!
//! The version sits outside the postcard body so that a peer speaking another
//! version is told so instead of failing on a body it cannot parse.
//!
//! The guest sends [`Frame::Hello`] (run id and token), waits for
//! [`Reply::Welcome`], then streams [`Frame::Interval`]s numbered from 0 and
//! ends with [`Frame::Done`] (or [`Frame::Error`]); the host answers `Done`
//! with [`Reply::Ack`] so the guest knows its data arrived before it powers off
//! (Hermit 0.11's `shutdown()` does nothing, so the host cannot wait for EOF).
//!
//! A connection can break under a running guest: migrated to another QEMU, the
//! guest keeps its TCP state but QEMU's user-mode network does not carry the
//! host side of it over, so the next segment meets a reset. The guest then
//! connects again with `Hello { resumed: n, .. }` (n: earlier connections of
//! the run); the host answers [`Reply::Resume`] with the first sequence number
//! it has not received (and its Ack if `Done` already arrived), and the guest
//! resends from there out of the frames it keeps, so nothing is lost or
//! counted twice.

mod codec;
mod histogram;
mod target;
mod token;

use std::string::String;
use std::vec::Vec;

use serde::{Deserialize, Serialize};

pub use codec::{decode, encode, encode_into, FrameError, FrameReader};
pub use histogram::{counts_len, decode_histogram, HistogramEncoder, HistogramError, HistogramView};
pub use target::{Target, TargetError};
pub use token::{Token, TokenError};

pub use crate::lock::LockMode;

/// Protocol version; bump on any change to the frame layout or the types below.
/// 2: `Done` carries the workload's figures, the pv-lock totals and the kernel's
/// event counters; `LockStats` has every counter; `Hello` names its lock modes
/// without an unknown.
/// 3: `Figures` carries every repetition's figure (`runs`).
/// 4: five lock modes; `Interval` and `Done` carry the queued and
/// test-and-set locks' counters, `Done` the kick-to-wake latency histogram.
/// 5: resumed connections (`Hello::resumed`, `Reply::Resume`).
pub const VERSION: u16 = 5;

/// Bytes of the length prefix.
pub const LEN_PREFIX_BYTES: usize = 4;

/// Bytes of the version that starts every payload.
pub const VERSION_BYTES: usize = 2;

/// Largest payload (version + body). An interval's histogram serializes to at
/// most ~9 bytes per counter of a workload histogram (24,576 counters), so this
/// leaves room for the worst case while bounding what a peer can make us buffer.
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// Most counters a histogram in a frame may need (8 MiB of `u64`s). Checked
/// before the histogram is allocated, so a 40-byte header cannot ask for gigabytes.
pub const MAX_HISTOGRAM_COUNTS: usize = 1 << 20;

/// Most samples one histogram in a frame may hold (~2.8e14: no interval comes
/// near it). Bounding counts keeps every sum over them, even across thousands of
/// merged intervals, far from overflowing a u64.
pub const MAX_HISTOGRAM_SAMPLES: u64 = 1 << 48;

/// Guest -> host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Frame {
    Hello(Hello),
    Interval(Interval),
    Done(Done),
    /// A guest-side failure (workload error, sink error); ends the run.
    Error(GuestFailure),
}

/// Host -> guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// The Hello was accepted: stream.
    Welcome,
    /// The Hello was refused (unknown run, wrong token, run already connected);
    /// the host closes the connection.
    Rejected(String),
    /// Answer to `Done`: what the host counted, so the guest can say whether it matches.
    Ack(Ack),
    /// Answer to a resumed Hello: go on.
    Resume(Resume),
}

/// Where a resumed connection picks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The first interval sequence number the host has not received: the guest
    /// sends from here.
    pub next_seq: u64,
    /// `Done` arrived on an earlier connection: its Ack, which the guest missed.
    pub ack: Option<Ack>,
}

/// First frame of a connection: who the guest is and what it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub run: String,
    pub token: Token,
    pub workload: String,
    /// The run's `key=value` parameters, in command-line order.
    pub params: Vec<Param>,
    pub vcpus: u32,
    pub lock_requested: LockMode,
    pub lock_effective: LockMode,
    /// How a pv-lock waiter is woken (`unknown` until the kernel integration reports it).
    pub kick_backend: String,
    /// Identifies the guest image (kernel version and image id).
    pub build_id: String,
    /// Earlier connections of this run (0 on the first); see the module's comment.
    pub resumed: u32,
}

/// One `key=value` parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub key: String,
    pub value: String,
}

/// One reporting interval of the workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Numbered from 0 over the whole connection, dropped intervals included,
    /// so the host can tell which ones it did not get.
    pub seq: u64,
    /// The workload's repetition (from 1; 0 if it has none).
    pub rep: u32,
    /// Guest monotonic clock (TSC-based on Hermit), nanoseconds since the guest's
    /// sink started.
    pub start_ns: u64,
    pub end_ns: u64,
    /// Operations completed in the interval.
    pub ops: u64,
    /// `ops` per recording thread.
    pub per_thread_ops: Vec<u64>,
    /// The interval's latency histogram, HdrHistogram V2 serialization
    /// (uncompressed; see [`decode_histogram`]).
    pub histogram: Vec<u8>,
    /// Lock statistics accumulated during the interval.
    pub lock: LockStats,
    /// The queued locks' events during the interval.
    pub queued: QueuedStats,
    /// The test-and-set lock's counters during the interval.
    pub tas: TasStats,
}

/// A struct of `u64` event counters with the arithmetic every counter set
/// needs: its fields by name in report order, and saturating deltas and sums.
macro_rules! counters {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* $field:ident,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: u64,)*
        }

        impl $name {
            /// Every counter with its name, in report order.
            pub fn fields(&self) -> [(&'static str, u64); [$(stringify!($field)),*].len()] {
                [$((stringify!($field), self.$field)),*]
            }

            fn zip(&self, other: &Self, f: impl Fn(u64, u64) -> u64) -> Self {
                Self { $($field: f(self.$field, other.$field),)* }
            }

            /// What happened between `earlier` and `self` (two snapshots of
            /// cumulative counters). Saturates: a counter reset in between
            /// yields 0, not a wrap.
            pub fn since(&self, earlier: &Self) -> Self {
                self.zip(earlier, u64::saturating_sub)
            }

            /// Adds `other` (saturating).
            pub fn accumulate(&mut self, other: &Self) {
                *self = self.zip(other, u64::saturating_add);
            }

            /// Whether every counter is 0.
            pub fn is_zero(&self) -> bool {
                *self == Self::default()
            }
        }
    };
}

counters! {
    /// The pv-ticketlock's slow-path counters (the seed's debugfs statistics):
    /// deltas in an [`Interval`], totals since the lock was configured in
    /// [`Done`]. The one shape of these counters, on the wire, in results and in
    /// reports.
    pub struct LockStats {
        /// Acquisitions that left the fast path (spun past the first try).
        taken_slow,
        /// Of those, acquisitions made while spinning, without halting.
        taken_slow_pickup,
        /// Times a waiter halted.
        halted,
        /// Of those, halts with interrupts disabled (only a kick can end them).
        halted_irqs_disabled,
        /// Halts that ended without the lock being theirs.
        spurious_wakeups,
        /// Releases that saw the slow flag.
        released_slow,
        /// Of those, releases that kicked a halted waiter.
        released_slow_kicked,
        /// TSC cycles waiters spent halted.
        time_blocked_cycles,
    }
}

counters! {
    /// The queued locks' events (`qspin`, `pvqspin`), after Linux's lock
    /// events (`lock_events_list.h`); the `pv` ones stay 0 under `qspin`.
    pub struct QueuedStats {
        /// Acquisitions through the pending bit (one waiter, no queue).
        pending,
        /// Acquisitions through the MCS queue.
        queued,
        /// Of those, with a nested (interrupt-context) queue node.
        nested,
        /// Waiters that found no free node and spun on a trylock.
        no_node,
        /// Locks taken by a waiter that was not the queue head (`pvqspin`'s steals).
        steals,
        /// Queued waiters that halted behind another (`pv_wait_node`).
        wait_node,
        /// Queue heads that halted waiting for the lock (`pv_wait_head`).
        wait_head,
        /// Queue heads that halted again after a wakeup that did not give them the lock.
        wait_again,
        /// Queue nodes woken before their turn.
        wait_early,
        /// Halts, all kinds.
        halted,
        /// Of those, with interrupts disabled.
        halted_irqs_disabled,
        /// Halts that ended without the lock or the node being theirs.
        spurious_wakeups,
        /// Node waiters that got the lock while spinning, without halting.
        pickups_node,
        /// Queue heads that got the lock while spinning, without halting.
        pickups_head,
        /// Locks the head hashed (lock -> node) before halting.
        hashed,
        /// Extra probes in the hash table (`hash_hops`).
        hash_hops,
        /// Unlocks that found the lock slow and kicked the head (`pv_kick_unlock`).
        kick_unlock,
        /// Halts that ended after a kick (`pv_kick_wake`).
        kick_wake,
        /// TSC cycles queued waiters spent halted.
        time_blocked_cycles,
        /// TSC cycles from kicks to their waiters' resumption, summed.
        kick_latency_cycles,
    }
}

counters! {
    /// The test-and-set lock's counters (`tas`).
    pub struct TasStats {
        /// Acquisitions that did not get the lock on the first try.
        contended,
        /// Compare-exchanges that lost to another CPU.
        failed_cas,
        /// `pause`s spent backing off.
        backoff_spins,
    }
}

/// Kernel events around the locks, counted since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KernelEvents {
    /// NMIs that were not pv-lock kicks.
    pub stray_nmis: u64,
    /// Wakeups dropped because their wait had already ended (its timeout won).
    pub stale_wakeups: u64,
}

/// The workload's own figures, as it measured them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Seconds the measured work took (kernbench: the mean build; pgbench: the
    /// timed runs summed).
    pub elapsed_s: f64,
    /// Jobs (kernbench) or transactions (pgbench) completed.
    pub ops: u64,
    /// pgbench only: transactions per second.
    pub tps: Option<f64>,
    /// Each repetition's figure in the order the guest ran them (kernbench: the
    /// build's seconds; pgbench: transactions per second), so the host can leave
    /// warm-up runs out and see the spread within one boot.
    pub runs: Vec<f64>,
}

/// Last frame of a successful run: the guest's own totals, which the host checks
/// against what it received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    /// Operations over all intervals the workload reported (sent or dropped).
    pub ops: u64,
    /// Latency samples over all intervals (sent or dropped).
    pub samples: u64,
    /// Intervals queued for sending (all of them written before this frame).
    pub intervals_sent: u64,
    /// Intervals the guest dropped because its send queue was full.
    pub intervals_dropped: u64,
    /// Of `ops` and `samples`, those in dropped intervals.
    pub ops_dropped: u64,
    pub samples_dropped: u64,
    /// The workload's own verdict: checksum or invariant line.
    pub result: String,
    /// Guest time from the sink's start to this frame.
    pub elapsed_ns: u64,
    /// The workload's figures.
    pub figures: Figures,
    /// pv-lock counters since the lock was configured, read after the workload.
    pub lock: LockStats,
    /// Queued-lock events since the lock was configured.
    pub queued: QueuedStats,
    /// Test-and-set counters since the lock was configured.
    pub tas: TasStats,
    /// Kick-to-wake latency in nanoseconds since the lock was configured: each
    /// kick stamped by the unlocker and matched to its waiter's resumption
    /// (`pv`, `pvqspin`; empty for modes that never halt). HdrHistogram V2
    /// serialization, like an interval's histogram.
    pub kick_wake_ns: Vec<u8>,
    /// The kernel's event counters at the end.
    pub kernel: KernelEvents,
}

/// A failure on the guest side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestFailure {
    pub message: String,
}

/// What the host received, in answer to `Done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub intervals: u64,
    pub ops: u64,
    pub samples: u64,
}

#[cfg(test)]
mod tests;
