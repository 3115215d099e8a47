//! The atomics the lock protocol is made of, behind one name so that
//! `--cfg loom` swaps in loom's model-checked versions.
//!
//! Only the protocol lives here (the lock word, the per-CPU wait records and
//! the waiting set). Configuration and statistics are not part of the
//! handshake and use `core` atomics directly, so that loom does not explore
//! their interleavings.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU64, AtomicUsize};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU64, AtomicUsize};

pub(crate) use core::sync::atomic::Ordering;

/// One iteration of a busy-wait loop (`pause` on x86; a yield under loom, so
/// that the model checker schedules the thread we are waiting for).
#[inline(always)]
pub(crate) fn spin_loop() {
    #[cfg(loom)]
    loom::hint::spin_loop();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}
