//! What each cell runs: the guests' command lines, caps and timeouts,
//! decided from the matrix alone. Pure, so a test reads the words a guest
//! would get without booting one.

use std::time::Duration;

use pvbench_wire::cmdline::Cmdline;
use pvbench_wire::lock::{Kick, PvlockArgs};
use pvbench_workloads::params::WorkloadArgs;

use super::RunError;
use crate::results::{CellKey, MatrixSpec, MigrationMode, Workload};
use crate::vm::accel::Accel;

/// Default for `start_timeout_s`: booting a guest up to its workload's start line.
const BOOT_ALLOWANCE: Duration = Duration::from_secs(30);

/// What the host brings to every cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Env {
    /// Host cores (the fair share's denominator).
    pub host_cores: u32,
    /// vCPUs per guest.
    pub vcpus: u32,
    pub accel: Accel,
    /// The accelerator probe saw hardware KVM: the guest may use the hypercall kick.
    pub hardware_kvm: bool,
}

/// One cell, decided.
#[derive(Debug, Clone, PartialEq)]
pub struct CellPlan {
    pub key: CellKey,
    /// One command line per hog guest (none at 1x).
    pub hogs: Vec<Cmdline>,
    /// The bench guest's command line, without the metrics words (the
    /// launcher adds its collector's).
    pub bench: Cmdline,
    /// From QEMU's start to a guest's start line.
    pub start_timeout: Duration,
    /// From the bench guest's start line to its kill (a censored run): the
    /// matrix's cap per repetition times the repetitions of the boot.
    pub cap: Duration,
    /// Repetitions the boot runs, and how many of them are warm-up.
    pub boot_reps: u32,
    pub warmup: u32,
    /// The bench guest's fair share of the host, in cores (for the stall watch).
    pub fair_cores: f64,
    pub vcpus: u32,
    pub memory_mib: u32,
    /// How often and how the bench guest is migrated while it works (migrated
    /// cells only); no kind: the accelerator's default (the vm crate's
    /// `MigrationKind::default_for`).
    pub migrate: Option<(Duration, Option<MigrationMode>)>,
}

/// The plan of `key` under `spec` on `env`.
pub fn cell(spec: &MatrixSpec, env: &Env, key: &CellKey) -> Result<CellPlan, RunError> {
    let vcpus = env.vcpus as usize;
    let reps = spec.boot_reps();
    let (workload, cap_s) = workload(spec, env.vcpus, key);
    // Under TCG the measured spin threshold (README "Spin threshold"); under
    // KVM the kernel's default, Linux's 2^15.
    let pvlock = PvlockArgs {
        lock: key.lock,
        spin: (env.accel == Accel::Tcg).then_some(spec.spin_tcg),
        kick: Kick::Auto,
        hardware_kvm: env.hardware_kvm,
    };
    let mut bench = Cmdline::new();
    for (k, v) in pvlock.words() {
        bench.push(k, v)?;
    }
    for (k, v) in workload.words() {
        bench.push(k, v)?;
    }
    for word in spec.bench_args.iter().flatten() {
        bench.push_word(word)?;
    }
    let hog = WorkloadArgs::Cpuhog {
        threads: vcpus,
        vcpus,
    };
    let mut hog_line = Cmdline::new();
    for (k, v) in hog.words() {
        hog_line.push(k, v)?;
    }
    Ok(CellPlan {
        key: *key,
        hogs: vec![hog_line; key.overcommit.hog_guests()],
        bench,
        start_timeout: spec
            .start_timeout_s
            .map_or(BOOT_ALLOWANCE, Duration::from_secs_f64),
        cap: Duration::from_secs_f64(cap_s * f64::from(reps)),
        boot_reps: reps,
        warmup: spec.warmup(),
        fair_cores: f64::from(env.vcpus) * key.overcommit.fair_share_per_vcpu(env.host_cores, env.vcpus),
        vcpus: env.vcpus,
        memory_mib: spec.memory_mib,
        migrate: spec
            .migration
            .as_ref()
            .filter(|_| key.migrated)
            .map(|m| (Duration::from_secs_f64(m.every_s), m.kind)),
    })
}

/// The bench guest's workload in cell `key` for guests of `vcpus`, and its cap
/// per repetition in seconds: the same work whether a guest or the host
/// (`pvbench calibrate`'s native runs) does it.
pub fn workload(spec: &MatrixSpec, vcpus: u32, key: &CellKey) -> (WorkloadArgs, f64) {
    let vcpus = vcpus as usize;
    let reps = spec.boot_reps();
    match key.workload {
        Workload::Kernbench => {
            let k = spec.kernbench.as_ref().expect("kernbench cells need [kernbench]");
            (
                WorkloadArgs::Kernbench {
                    scale: k.scale,
                    reps,
                    vcpus,
                },
                k.cap_s,
            )
        }
        Workload::Pgbench => {
            let p = spec.pgbench.as_ref().expect("pgbench cells need [pgbench]");
            (
                WorkloadArgs::Pgbench {
                    scale: p.scale,
                    clients: key.clients.unwrap_or(1) as usize,
                    duration_s: p.duration_s,
                    reps,
                    vcpus,
                },
                p.cap_s,
            )
        }
    }
}
