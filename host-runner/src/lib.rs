//! pvbench's host side as a library: the `pvbench` binary dispatches into it and
//! the integration tests use it directly.
//!
//! Data flows one way: `build` makes the guest image, `guest` runs guests under
//! QEMU (`qemu`, `accel`), `collect` receives their metrics, `stats` and
//! `ministat` compare results, `gate` judges a run against the CI baseline,
//! `soak` counts guest failures over many overcommitted cells.

pub mod accel;
pub mod build;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod gate;
pub mod guest;
pub mod layout;
pub mod matrix;
pub mod ministat;
pub mod qemu;
pub mod report;
pub mod results;
pub mod soak;
pub mod stats;
pub mod toolchain;
