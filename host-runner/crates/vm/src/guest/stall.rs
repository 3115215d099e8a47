//! When a running guest counts as stalled.
//!
//! A guest whose every task is blocked for good (a lost wakeup in the guest
//! kernel) idles its vCPUs in `hlt` and never finishes; without a watch it
//! would idle to its cap and pass for a slow, censored run. What tells it from
//! a guest that is merely slow is what its QEMU's threads do with the host:
//! a stalled guest's vCPU threads sleep, a slow one's run or wait to run. So a
//! window's *busy* time is the QEMU's CPU time plus its threads' run delay
//! (time runnable but waiting for a host CPU, from
//! `/proc/PID/task/*/schedstat`: the host view of steal time).
//!
//! Measured under TCG on 2 cores, per 10 s window: a stalled guest (2 or 4
//! vCPUs, next to two hog guests) 0.02 s of CPU and 0.03-0.12 s of run delay;
//! a 4-vCPU pv guest at 3x that completed no build job for 20 s yet finished
//! (each job waits on lock handoffs behind the hogs) 1.5 s of CPU and 10.4 s
//! of run delay. CPU alone cannot tell these apart at a useful threshold:
//! the slow guest uses less CPU than a quarter of its fair share.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The watch over a running guest. Two rules, either suffices, each over a
/// whole `window`:
///
/// - **Idle:** the guest was busy (CPU plus run delay) less than `min_busy`.
///   A guest with work is far busier even at its least fair share (a 2-vCPU
///   guest at 3x on 2 cores gets ~0.4 s of CPU a second).
/// - **No progress** (with a [`ProgressRule`], and only where run delay is
///   known): the guest completed no operation *and* was busy less than the
///   rule's limit, a fraction of its fair share. A guest that is slow because
///   it is starved or spinning (a collapsing base run, a pv guest waiting for
///   kicked vCPUs to be scheduled) runs or waits to run and is not a stall;
///   one that is idle at several times the idle rule's rate (timer-driven
///   polling while its workload is blocked) is.
#[derive(Debug, Clone)]
pub struct StallWatch {
    /// How long each verdict looks back; windows do not overlap.
    pub window: Duration,
    /// The idle rule's limit: busy less than this in a window is a stall.
    pub min_busy: Duration,
    /// The no-progress rule, if operations are counted.
    pub progress: Option<ProgressRule>,
}

/// The no-progress rule of a [`StallWatch`].
#[derive(Debug, Clone)]
pub struct ProgressRule {
    /// Operations the guest has completed so far, as the host counts them (the
    /// metrics collector adds every received interval's operations).
    pub ops: Arc<AtomicU64>,
    /// Busy less than this in a window without progress: stalled.
    pub min_busy: Duration,
}

impl ProgressRule {
    /// Operations completed so far.
    pub fn ops(&self) -> u64 {
        // Relaxed: a monotonic counter read once per window; nothing is published with it.
        self.ops.load(Ordering::Relaxed)
    }
}

/// Which rule of a [`StallWatch`] fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallKind {
    /// Busy less than [`StallWatch::min_busy`].
    Idle,
    /// No operation completed, and busy less than [`ProgressRule::min_busy`].
    NoProgress,
}

/// What a stalled guest did after pvbench pressed its NMI button (QMP
/// `inject-nmi`: an NMI to every vCPU) just before killing it.
///
/// The guest's NMI handler counts it as a stray NMI and, like a kick, ends a
/// pv-lock halt (`pvbench_pvlock_halt`); a vCPU in the idle loop's `hlt` wakes
/// too and looks at its run queues again. So a guest that then runs again had
/// a halted vCPU with work to do: a lost wakeup (a lost kick, or a lost
/// scheduler wakeup), which the vCPU states taken before tell apart. One that
/// stays stalled waits for something no NMI changes: a task nobody wakes, or a
/// lock its holder never releases. The guest is killed either way: the probe
/// explains a failure, it does not undo one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NmiProbe {
    /// Whether the guest was no longer stalled over the probe, by the stall
    /// watch's own rules scaled to the probe's length.
    pub ran_again: bool,
    /// QEMU's CPU time over the probe.
    pub cpu_ms: u64,
    /// Operations completed over the probe, if counted.
    pub ops: Option<u64>,
    /// The probe's length.
    pub window_ms: u64,
}

impl std::fmt::Display for NmiProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ops = self.ops.map_or(String::new(), |n| format!(", {n} operations"));
        let window = self.window_ms as f64 / 1e3;
        let cpu = self.cpu_ms as f64 / 1e3;
        if self.ran_again {
            write!(
                f,
                "an injected NMI got it going again ({cpu:.2} s of CPU{ops} in {window:.0} s): \
                 a halted vCPU had work to do (a lost wakeup)"
            )
        } else {
            write!(
                f,
                "it stayed stalled after an injected NMI ({cpu:.2} s of CPU{ops} in {window:.0} s): \
                 not a lost wakeup of a halted vCPU"
            )
        }
    }
}

/// What a guest's QEMU did with the host in one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowUse {
    /// CPU time (user + system) of all its threads.
    pub cpu: Duration,
    /// Time its threads were runnable but not running; `None` where the host
    /// kernel does not report it.
    pub run_delay: Option<Duration>,
}

impl WindowUse {
    /// CPU plus run delay: the time the guest ran or wanted to.
    pub fn busy(&self) -> Duration {
        self.cpu + self.run_delay.unwrap_or_default()
    }
}

impl StallWatch {
    /// Below this share of one host core over a window, a guest is idle.
    pub const IDLE_SHARE: f64 = 0.05;
    /// Below this fraction of its fair share over a window without a completed
    /// operation, a guest is stalled.
    pub const NO_PROGRESS_FAIR_FRACTION: f64 = 0.25;

    /// Stalled after idling (below [`Self::IDLE_SHARE`]) through `window`.
    pub fn over(window: Duration) -> Self {
        Self {
            window,
            min_busy: window.mul_f64(Self::IDLE_SHARE),
            progress: None,
        }
    }

    /// Adds the no-progress rule: `ops` counts completed operations, and the
    /// guest's fair share is `fair_cores` host cores.
    pub fn with_progress(mut self, ops: Arc<AtomicU64>, fair_cores: f64) -> Self {
        let share = (fair_cores * Self::NO_PROGRESS_FAIR_FRACTION).max(Self::IDLE_SHARE);
        self.progress = Some(ProgressRule {
            ops,
            min_busy: self.window.mul_f64(share),
        });
        self
    }

    /// The verdict on one closed window: what the guest `used` and the
    /// operations it completed (`None` without a progress rule). Pure, so the
    /// rules are tested apart from QEMU.
    pub fn stalled(&self, used: WindowUse, ops: Option<u64>) -> Option<StallKind> {
        if used.busy() < self.min_busy {
            return Some(StallKind::Idle);
        }
        match (&self.progress, ops, used.run_delay) {
            // Without run delay a starved guest looks idle: no verdict.
            (Some(rule), Some(0), Some(_)) if used.busy() < rule.min_busy => Some(StallKind::NoProgress),
            _ => None,
        }
    }

    /// The same rules over a `window` of another length (limits in proportion).
    pub fn scaled(&self, window: Duration) -> Self {
        let factor = window.as_secs_f64() / self.window.as_secs_f64();
        Self {
            window,
            min_busy: self.min_busy.mul_f64(factor),
            progress: self.progress.as_ref().map(|rule| ProgressRule {
                ops: Arc::clone(&rule.ops),
                min_busy: rule.min_busy.mul_f64(factor),
            }),
        }
    }

    /// The busy-time limit of a rule.
    pub fn limit(&self, kind: StallKind) -> Duration {
        match kind {
            StallKind::Idle => self.min_busy,
            StallKind::NoProgress => self.progress.as_ref().map_or(Duration::ZERO, |p| p.min_busy),
        }
    }
}

/// A QEMU process's cumulative CPU time and run delay, summed over its threads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Usage {
    cpu: Duration,
    run_delay: Option<Duration>,
}

impl Usage {
    /// Reads `/proc/PID/task/*/schedstat` (CPU and run delay in nanoseconds);
    /// falls back to `/proc/PID/stat`'s CPU time without a run delay.
    pub(super) fn of(pid: u32) -> Self {
        match schedstat(pid) {
            Some((cpu, delay)) => Self {
                cpu,
                run_delay: Some(delay),
            },
            None => Self {
                cpu: super::process_cpu_seconds(pid).map_or(Duration::ZERO, Duration::from_secs_f64),
                run_delay: None,
            },
        }
    }

    /// What was used between `earlier` and `self`.
    pub(super) fn since(&self, earlier: &Usage) -> WindowUse {
        WindowUse {
            cpu: self.cpu.saturating_sub(earlier.cpu),
            run_delay: match (self.run_delay, earlier.run_delay) {
                (Some(now), Some(then)) => Some(now.saturating_sub(then)),
                _ => None,
            },
        }
    }
}

/// CPU time and run delay of every thread of `pid`, summed; `None` if the host
/// kernel does not report them.
fn schedstat(pid: u32) -> Option<(Duration, Duration)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let (mut cpu, mut delay, mut read) = (0u64, 0u64, false);
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        if let Some((c, d)) = parse_schedstat(&text) {
            cpu = cpu.saturating_add(c);
            delay = delay.saturating_add(d);
            read = true;
        }
    }
    read.then(|| (Duration::from_nanos(cpu), Duration::from_nanos(delay)))
}

/// `CPU_NS RUN_DELAY_NS TIMESLICES`.
pub(super) fn parse_schedstat(text: &str) -> Option<(u64, u64)> {
    let mut fields = text.split_whitespace();
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(cpu_ms: u64, delay_ms: Option<u64>) -> WindowUse {
        WindowUse {
            cpu: Duration::from_millis(cpu_ms),
            run_delay: delay_ms.map(Duration::from_millis),
        }
    }

    #[test]
    fn an_idle_guest_is_stalled_whatever_it_reports() {
        let watch = StallWatch::over(Duration::from_secs(10));
        assert_eq!(watch.min_busy, Duration::from_millis(500));
        assert_eq!(watch.stalled(used(20, Some(30)), None), Some(StallKind::Idle));
        assert_eq!(watch.stalled(used(499, None), Some(7)), Some(StallKind::Idle));
        // Waiting for a host CPU is not idling.
        assert_eq!(watch.stalled(used(300, Some(400)), None), None);
        // Without a progress rule, 6% of a core is not a stall.
        assert_eq!(watch.stalled(used(600, Some(50)), None), None);
    }

    #[test]
    fn no_progress_is_a_stall_only_below_a_quarter_of_the_fair_share() {
        let ops = Arc::new(AtomicU64::new(0));
        // A 4-vCPU guest at 3x on 2 cores: a fair share of 2/3 of a core.
        let watch = StallWatch::over(Duration::from_secs(10)).with_progress(ops, 2.0 / 3.0);
        assert_eq!(watch.limit(StallKind::NoProgress).as_millis(), 1666);
        // A stalled guest polling its timers at ~6% of a core, nothing completed.
        assert_eq!(
            watch.stalled(used(600, Some(100)), Some(0)),
            Some(StallKind::NoProgress)
        );
        // The same with work done: slow, not stalled.
        assert_eq!(watch.stalled(used(600, Some(100)), Some(1)), None);
        // The slow pv guest measured in the module docs: little CPU, much run
        // delay, no operation completed in the window. Not a stall.
        assert_eq!(watch.stalled(used(1500, Some(10_400)), Some(0)), None);
        // A collapsing base run spins at its share and completes nothing.
        assert_eq!(watch.stalled(used(6000, Some(3000)), Some(0)), None);
        // No run delay known: a starved guest would look the same, so no verdict.
        assert_eq!(watch.stalled(used(600, None), Some(0)), None);
    }

    #[test]
    fn the_no_progress_limit_never_drops_below_the_idle_limit() {
        let ops = Arc::new(AtomicU64::new(0));
        let watch = StallWatch::over(Duration::from_secs(10)).with_progress(ops, 0.01);
        assert_eq!(watch.limit(StallKind::NoProgress), watch.min_busy);
    }

    #[test]
    fn scaled_rules_keep_their_shares() {
        let ops = Arc::new(AtomicU64::new(0));
        let watch = StallWatch::over(Duration::from_secs(10)).with_progress(ops, 1.0);
        let short = watch.scaled(Duration::from_secs(2));
        assert_eq!(short.window, Duration::from_secs(2));
        assert_eq!(short.limit(StallKind::Idle), Duration::from_millis(100));
        assert_eq!(short.limit(StallKind::NoProgress), Duration::from_millis(500));
        // The same use in a fifth of the time is the same verdict.
        assert_eq!(short.stalled(used(90, Some(5)), Some(0)), Some(StallKind::Idle));
        assert_eq!(
            short.stalled(used(300, Some(100)), Some(0)),
            Some(StallKind::NoProgress)
        );
        assert_eq!(short.stalled(used(300, Some(100)), Some(3)), None);
    }

    #[test]
    fn an_nmi_probe_says_what_it_saw() {
        let woke = NmiProbe {
            ran_again: true,
            cpu_ms: 1850,
            ops: Some(412),
            window_ms: 3000,
        };
        assert_eq!(
            woke.to_string(),
            "an injected NMI got it going again (1.85 s of CPU, 412 operations in 3 s): \
             a halted vCPU had work to do (a lost wakeup)"
        );
        let still = NmiProbe {
            ran_again: false,
            cpu_ms: 10,
            ops: None,
            window_ms: 3000,
        };
        assert!(still
            .to_string()
            .starts_with("it stayed stalled after an injected NMI (0.01 s of CPU in 3 s)"));
    }

    #[test]
    fn schedstat_of_this_process_adds_up() {
        assert_eq!(
            parse_schedstat("1120114758 175900 45\n"),
            Some((1120114758, 175900))
        );
        assert_eq!(parse_schedstat("garbage"), None);
        let me = Usage::of(std::process::id());
        assert!(me.cpu > Duration::ZERO, "{me:?}");
        assert!(me.since(&me).busy().is_zero());
        assert_eq!(schedstat(u32::MAX), None);
    }
}
