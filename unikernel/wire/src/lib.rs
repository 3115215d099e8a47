//! The contract between pvbench guests and the host runner.
//!
//! Everything both sides must agree on lives here and nowhere else: how a guest
//! reports its exit status through QEMU, the words of the guest command line, and
//! (with the `std` feature) the metrics frames. The core is `no_std` so that the
//! multiboot loader can use it too.
#![no_std]

#[cfg(feature = "std")]
extern crate std;

pub mod cmdline;
pub mod console;
pub mod exit;
#[cfg(feature = "std")]
pub mod frames;
pub mod lock;

pub use lock::LockMode;
