//! The serial console: text for people, and the markers the host times by.
//!
//! Everything the host needs from a run travels in the metrics frames; the
//! console carries human text and three markers only. The host reads
//! [`WORKLOAD_STARTED`] to start a run's clock (a hog guest prints it once it
//! hogs), because the start must be known even for a guest whose metrics
//! stream never comes up. [`MEASURE_BEGINS`] and [`MEASURE_ENDS`] bracket each
//! repetition's timed work, so the host reads every guest's CPU over what was
//! measured, not over setup and teardown: they are timing signals, and a
//! console write reaches the host when the vCPU executes it, where frames wait
//! for the network stack.

/// Every line the guest application prints starts with this.
pub const APP_PREFIX: &str = "pvbench-guest:";

/// The line (followed by a space and the workload's name) a guest prints when
/// its measured work begins.
pub const WORKLOAD_STARTED: &str = "pvbench-guest: workload started";

/// The line (followed by ` rep=N`) a guest prints just before a repetition's
/// timed work begins.
pub const MEASURE_BEGINS: &str = "pvbench-guest: measure begins";

/// The line (followed by ` rep=N`) a guest prints as soon as a repetition's
/// timed work has ended.
pub const MEASURE_ENDS: &str = "pvbench-guest: measure ends";
