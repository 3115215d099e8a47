//! Each vCPU thread's run delay: the time it was runnable but waiting for a
//! host CPU (`/proc/PID/task/TID/schedstat`, second field), the host's view
//! of the guest's steal time. QEMU names its vCPU threads `CPU N/TCG` or
//! `CPU N/KVM` (with `-name ...,debug-threads=on`, which `qemu::common_args`
//! passes), so a thread's name says which vCPU it runs.

use std::time::Duration;

use super::stall::parse_schedstat;

/// A QEMU process's vCPU threads, found once and then read by thread id.
#[derive(Debug, Clone)]
pub(super) struct VcpuThreads {
    pid: u32,
    /// Thread id of vCPU `i`, once all of them were found.
    tids: Option<Vec<u32>>,
    vcpus: usize,
}

impl VcpuThreads {
    /// The vCPU threads of `pid`, a guest of `vcpus` vCPUs (looked up on the
    /// first read: QEMU creates them after it starts).
    pub(super) fn new(pid: u32, vcpus: u32) -> Self {
        Self {
            pid,
            tids: None,
            vcpus: vcpus as usize,
        }
    }

    /// Each vCPU's run delay so far, by vCPU index; `None` until every vCPU
    /// thread exists, once the process is gone, or where the host kernel
    /// keeps no schedstats.
    pub(super) fn run_delays(&mut self) -> Option<Vec<Duration>> {
        if self.tids.is_none() {
            self.tids = find(self.pid, self.vcpus);
        }
        let tids = self.tids.as_ref()?;
        tids.iter()
            .map(|tid| {
                let text =
                    std::fs::read_to_string(format!("/proc/{}/task/{tid}/schedstat", self.pid)).ok()?;
                parse_schedstat(&text).map(|(_, delay)| Duration::from_nanos(delay))
            })
            .collect()
    }
}

/// The thread id of each of `vcpus` vCPU threads of `pid`, by index; `None`
/// unless every one is found.
fn find(pid: u32, vcpus: usize) -> Option<Vec<u32>> {
    let mut tids = vec![None; vcpus];
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let Ok(comm) = std::fs::read_to_string(task.path().join("comm")) else {
            continue;
        };
        let tid = task.file_name().to_str().and_then(|t| t.parse::<u32>().ok());
        if let (Some(index), Some(tid)) = (vcpu_index(&comm), tid) {
            if let Some(slot) = tids.get_mut(index) {
                *slot = Some(tid);
            }
        }
    }
    tids.into_iter().collect()
}

/// The vCPU a QEMU thread named `comm` runs: `CPU 3/TCG` -> 3.
fn vcpu_index(comm: &str) -> Option<usize> {
    let rest = comm.trim_end().strip_prefix("CPU ")?;
    let (index, accel) = rest.split_once('/')?;
    (!accel.is_empty()).then_some(())?;
    index.parse().ok()
}

/// What each vCPU waited between two readings of the same guest, in seconds
/// (`None` if either is missing or they disagree on the vCPU count).
pub fn delay_between(then: Option<&[Duration]>, now: Option<&[Duration]>) -> Option<Vec<f64>> {
    let (then, now) = (then?, now?);
    (then.len() == now.len()).then(|| {
        now.iter()
            .zip(then)
            .map(|(n, t)| n.saturating_sub(*t).as_secs_f64())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcpu_threads_are_known_by_their_names() {
        assert_eq!(vcpu_index("CPU 0/TCG\n"), Some(0));
        assert_eq!(vcpu_index("CPU 12/KVM"), Some(12));
        assert_eq!(vcpu_index("qemu-system-x86"), None);
        assert_eq!(vcpu_index("CPU x/TCG"), None);
        assert_eq!(vcpu_index("CPU 1/"), None);
        assert_eq!(vcpu_index("CPU 1"), None);
    }

    #[test]
    fn delays_are_differences_per_vcpu() {
        let ms = |v: &[u64]| v.iter().map(|&m| Duration::from_millis(m)).collect::<Vec<_>>();
        let (then, now) = (ms(&[100, 0]), ms(&[350, 1000]));
        assert_eq!(delay_between(Some(&then), Some(&now)), Some(vec![0.25, 1.0]));
        // A counter that went back (a thread replaced) counts nothing, not a wrap.
        assert_eq!(delay_between(Some(&now), Some(&then)), Some(vec![0.0, 0.0]));
        assert_eq!(delay_between(None, Some(&now)), None);
        assert_eq!(delay_between(Some(&then), Some(&now[..1])), None);
    }

    #[test]
    fn a_thread_named_like_a_vcpu_is_found_and_read() {
        let (stop, wait) = std::sync::mpsc::channel::<()>();
        let (ready, started) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("CPU 0/TCG".into())
            .spawn(move || {
                ready.send(()).unwrap();
                let _ = wait.recv();
            })
            .unwrap();
        started.recv().unwrap();
        let mut threads = VcpuThreads::new(std::process::id(), 1);
        let delays = threads.run_delays();
        stop.send(()).unwrap();
        thread.join().unwrap();
        // schedstat exists on every kernel this runs on (the stall watch needs it).
        assert_eq!(delays.map(|d| d.len()), Some(1));
        // The thread is gone: no reading rather than a stale one.
        assert_eq!(threads.run_delays(), None);
    }

    #[test]
    fn a_process_without_vcpu_threads_has_no_delays() {
        // This test process has threads, but none named like a vCPU.
        let mut threads = VcpuThreads::new(std::process::id(), 1);
        assert_eq!(threads.run_delays(), None);
        // No vCPUs asked for: nothing to find, nothing to read.
        let mut none = VcpuThreads::new(std::process::id(), 0);
        assert_eq!(none.run_delays(), Some(Vec::new()));
        assert_eq!(VcpuThreads::new(u32::MAX, 2).run_delays(), None);
    }
}
