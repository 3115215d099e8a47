//! pvbench's command line and what sits on top of its crates: the `pvbench`
//! binary dispatches into this library, and the integration tests use it.
//!
//! Data flows one way: [`pvbench_build`] makes the guest image,
//! [`pvbench_vm`] runs guests under QEMU, [`pvbench_collect`] receives their
//! metrics, [`runner`] runs the matrix (or one shard of it) into a results
//! directory ([`pvbench_results`]), [`merge`] combines shards' directories,
//! [`report`], [`gate`], [`export`] and [`soak`] read it back
//! ([`pvbench_stats`] and [`ministat`] compare).

pub mod calibrate;
pub mod cli;
pub mod commands;
pub mod exit;
pub mod export;
pub mod gate;
pub mod merge;
pub mod ministat;
pub mod report;
pub mod runner;
pub mod soak;
#[cfg(test)]
mod test_support;

pub use pvbench_build as build;
pub use pvbench_collect as collect;
pub use pvbench_results as results;
pub use pvbench_stats as stats;
pub use pvbench_vm as vm;
