//! The serial console: text for people, and one marker the host waits for.
//!
//! Everything the host needs from a run travels in the metrics frames; the
//! console carries human text and [`WORKLOAD_STARTED`] only. The host reads it
//! to start a run's clock (a hog guest prints it once it hogs), because the
//! start must be known even for a guest whose metrics stream never comes up.

/// Every line the guest application prints starts with this.
pub const APP_PREFIX: &str = "pvbench-guest:";

/// The line (followed by a space and the workload's name) a guest prints when
/// its measured work begins.
pub const WORKLOAD_STARTED: &str = "pvbench-guest: workload started";
