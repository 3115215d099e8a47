//! The runner without QEMU: classification of every way a cell can end, the
//! plans' command lines, and the matrix loop (results, interruption, resume)
//! through a fake launcher.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use pvbench_wire::exit::GuestExit;
use pvbench_wire::frames::{
    Done, Figures, Frame, Hello, HistogramEncoder, KernelEvents, LockStats, QueuedStats, TasStats, Token,
};
use pvbench_workloads::params::{parse_args, WorkloadConfig};

use super::*;
use crate::collect::{RunResult, RunState};
use crate::results::{FailureKind, LockMode, Overcommit};
use crate::vm::guest::{Ended, Outcome, PanicWatch, StallKind};

fn outcome(ended: Ended, tail: &[&str]) -> Outcome {
    let mut watch = PanicWatch::default();
    tail.iter().for_each(|l| watch.feed(l));
    Outcome {
        ended,
        pid: 42,
        wall: Duration::from_secs(20),
        cpu_s: 1.0,
        first_app_line: Some(Duration::from_millis(300)),
        serial_tail: tail.iter().map(|l| l.to_string()).collect(),
        qemu_stderr: String::new(),
        panic: watch.panic().cloned(),
        vcpu_run_delays: Some(vec![Duration::from_millis(1500), Duration::from_millis(2500)]),
        migrations: None,
        vcpus_at_kill: None,
        nmi_probe: None,
        memory_dump: None,
    }
}

/// A metrics stream that ended with `Done` carrying these figures.
fn metrics(figures: Option<Figures>) -> RunResult {
    let mut state = RunState::new("cell");
    let hello = Hello {
        run: "cell".into(),
        token: Token::from_bytes([1; Token::LEN]),
        workload: "kernbench".into(),
        params: Vec::new(),
        vcpus: 2,
        lock_requested: LockMode::Pv,
        lock_effective: LockMode::Pv,
        kick_backend: "nmi".into(),
        build_id: "test".into(),
        resumed: 0,
    };
    state.start(hello, SystemTime::now());
    if let Some(figures) = figures {
        state.on_frame(Frame::Done(Done {
            ops: 0,
            samples: 0,
            intervals_sent: 0,
            intervals_dropped: 0,
            ops_dropped: 0,
            samples_dropped: 0,
            result: "checksum=0x1".into(),
            elapsed_ns: 1,
            figures,
            lock: LockStats {
                halted: 5,
                ..LockStats::default()
            },
            queued: QueuedStats {
                wait_head: 2,
                kick_unlock: 2,
                ..QueuedStats::default()
            },
            tas: TasStats {
                contended: 3,
                ..TasStats::default()
            },
            kick_wake_ns: kick_wake(&[1_000, 2_000, 3_000, 40_000]),
            kernel: KernelEvents::default(),
        }));
    }
    state.into_result(Vec::new())
}

/// A kick-to-wake histogram of `ns`, as the guest encodes it.
fn kick_wake(ns: &[u64]) -> Vec<u8> {
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1 << 40, 3).unwrap();
    ns.iter().for_each(|&v| h.record(v).unwrap());
    let mut bytes = Vec::new();
    HistogramEncoder::new().encode(&h, &mut bytes).unwrap();
    bytes
}

const FIGURES: Figures = Figures {
    elapsed_s: 2.5,
    ops: 17,
    tps: None,
    runs: Vec::new(),
};
const RAN: Duration = Duration::from_secs(16);

fn bench(started: bool, ended: Ended, tail: &[&str], figures: Option<Figures>) -> BenchRun {
    BenchRun {
        started,
        hogs_ready: Duration::from_millis(700),
        work_start: Duration::from_secs(4),
        outcome: outcome(ended, tail),
        cpu: spanned(&[(
            reading(4.0, 0.5, Some([500, 500]), 1.0, Some([0, 0])),
            reading(20.0, 1.0, Some([1500, 2500]), 10.0, Some([250, 500])),
        )]),
        metrics: Some(metrics(figures)),
        host: None,
    }
}

/// What the launcher reads of a bench guest and one hog at `at_s`; delays in ms.
fn reading(
    at_s: f64,
    cpu_s: f64,
    delays: Option<[u64; 2]>,
    hog_cpu_s: f64,
    hog_delays: Option<[u64; 2]>,
) -> Reading {
    let ms = |d: Option<[u64; 2]>| d.map(|d| d.iter().map(|&ms| Duration::from_millis(ms)).collect());
    Reading {
        at: Duration::from_secs_f64(at_s),
        bench_cpu_s: cpu_s,
        bench_delays: ms(delays),
        hog_cpu_s: vec![hog_cpu_s],
        hog_delays: vec![ms(hog_delays)],
    }
}

fn spanned(spans: &[(Reading, Reading)]) -> SpannedCpu {
    let mut cpu = SpannedCpu::default();
    spans.iter().for_each(|(begin, end)| cpu.add(begin, end));
    cpu
}

#[test]
fn cpu_is_summed_over_the_marked_spans_only() {
    // Two repetitions, with 1 s of unmarked work (its CPU and delays) between them.
    let cpu = spanned(&[
        (
            reading(1.0, 0.5, Some([100, 100]), 2.0, Some([0, 0])),
            reading(3.0, 4.5, Some([300, 200]), 4.0, Some([500, 0])),
        ),
        (
            reading(4.0, 6.5, Some([900, 900]), 5.0, Some([900, 900])),
            reading(5.5, 9.5, Some([1000, 1000]), 6.5, Some([1400, 1000])),
        ),
    ]);
    assert_eq!(cpu.spans, 2);
    assert!((cpu.wall_s - 3.5).abs() < 1e-9, "{cpu:?}");
    assert!((cpu.bench_cpu_s - 7.0).abs() < 1e-9, "{cpu:?}");
    assert_eq!(cpu.bench_delay_s, Some(vec![0.30000000000000004, 0.2]));
    assert!((cpu.hog_cpu_s[0] - 3.5).abs() < 1e-9, "{cpu:?}");
    assert_eq!(cpu.hog_delay_s, vec![Some(vec![1.0, 0.1])]);
    // One span's delays unknown: the sum is unknown, not the known spans'.
    let cpu = spanned(&[
        (
            reading(1.0, 0.5, Some([100, 100]), 2.0, None),
            reading(3.0, 4.5, Some([300, 200]), 4.0, None),
        ),
        (
            reading(4.0, 6.5, None, 5.0, Some([0, 0])),
            reading(5.5, 9.5, None, 6.5, Some([1, 1])),
        ),
    ]);
    assert_eq!((&cpu.bench_delay_s, &cpu.hog_delay_s), (&None, &vec![None]));
    assert!((cpu.hog_cpu_s[0] - 3.5).abs() < 1e-9, "{cpu:?}");
}

fn failure(v: &Verdict) -> Option<FailureKind> {
    match v {
        Verdict::Failed(status) => status.failure(),
        _ => None,
    }
}

fn reason(v: Verdict) -> String {
    match v {
        Verdict::Failed(CellStatus::Failed { reason, .. }) => reason,
        other => panic!("not a failure: {other:?}"),
    }
}

const EXIT_0: Ended = Ended::Exited(GuestExit::Status(0));

#[test]
fn a_finished_workload_is_completed_with_the_figures_of_its_last_frame() {
    let v = classify(&bench(true, EXIT_0, &[], Some(FIGURES)), RAN, Boot::single(15.0));
    assert_eq!(
        v,
        Verdict::Completed {
            elapsed_s: 2.5,
            ops: 17,
            tps: None,
            runs: None,
        }
    );
    // Status 0 without the last frame is no result.
    let none = classify(&bench(true, EXIT_0, &[], None), RAN, Boot::single(15.0));
    assert_eq!(failure(&none), Some(FailureKind::Other));
    assert!(reason(none).contains("last frame never arrived"));
    let nan = Figures {
        elapsed_s: f64::NAN,
        ..FIGURES
    };
    assert!(reason(classify(
        &bench(true, EXIT_0, &[], Some(nan)),
        RAN,
        Boot::single(15.0)
    ))
    .contains("not a duration"));
}

#[test]
fn a_boot_of_several_runs_is_worth_the_mean_of_its_measured_ones() {
    let boot = Boot {
        cap_s: 45.0,
        reps: 3,
        warmup: 1,
    };
    let figures = |runs: Vec<f64>| Figures { runs, ..FIGURES };
    // The warm-up (9 s, a cold boot's first build) is left out of the value.
    let v = classify(
        &bench(true, EXIT_0, &[], Some(figures(vec![9.0, 2.0, 3.0]))),
        RAN,
        boot,
    );
    let Verdict::Completed { elapsed_s, runs, .. } = v else {
        panic!("{v:?}")
    };
    assert_eq!(elapsed_s, 2.5);
    assert_eq!(runs.unwrap().measured(), &[2.0, 3.0]);
    // pgbench: the value is transactions per second, the mean of the runs.
    let tps = Figures {
        tps: Some(99.0),
        ..figures(vec![10.0, 20.0, 40.0])
    };
    let v = classify(&bench(true, EXIT_0, &[], Some(tps)), RAN, boot);
    assert!(
        matches!(v, Verdict::Completed { tps: Some(t), .. } if t == 30.0),
        "{v:?}"
    );
    // A guest that ran another number of repetitions broke the contract.
    let short = classify(
        &bench(true, EXIT_0, &[], Some(figures(vec![2.0, 3.0]))),
        RAN,
        boot,
    );
    assert!(reason(short).contains("2 repetitions, not the 3"));
    // Censored: at least the boot's cap over its repetitions, per repetition.
    let v = classify(
        &bench(true, Ended::TimedOut, &[], None),
        Duration::from_secs(48),
        boot,
    );
    assert_eq!(v, Verdict::Censored { elapsed_s: 16.0 });
}

#[test]
fn a_run_killed_at_its_cap_is_censored_at_no_less_than_the_cap() {
    let v = classify(&bench(true, Ended::TimedOut, &[], None), RAN, Boot::single(15.0));
    assert_eq!(v, Verdict::Censored { elapsed_s: 16.0 });
    let v = classify(
        &bench(true, Ended::TimedOut, &[], None),
        Duration::from_secs(14),
        Boot::single(15.0),
    );
    assert_eq!(v, Verdict::Censored { elapsed_s: 15.0 });
}

#[test]
fn a_stalled_run_fails_as_a_stall_and_is_never_censored() {
    let stalled = Ended::Stalled {
        kind: StallKind::NoProgress,
        cpu_ms: 600,
        delay_ms: Some(100),
        limit_ms: 1666,
        window_ms: 10_000,
    };
    let v = classify(&bench(true, stalled, &[], None), RAN, Boot::single(15.0));
    assert_eq!(failure(&v), Some(FailureKind::Stall));
    let text = reason(v);
    assert!(text.contains("completed no operation"), "{text}");
    assert!(!text.contains("vCPUs at the kill"), "{text}");
    // Where QEMU told where the vCPUs were, the reason says it.
    let mut run = bench(true, stalled, &[], None);
    run.outcome.vcpus_at_kill =
        Some("CPU#0\nRIP=0000000000497669 RFL=00001046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1".into());
    let text = reason(classify(&run, RAN, Boot::single(15.0)));
    assert!(
        text.ends_with("; vCPUs at the kill: cpu0 RIP=0000000000497669 RFL=00001046 HLT=1"),
        "{text}"
    );
    // And what an NMI injected before the kill did.
    run.outcome.nmi_probe = Some(guest::NmiProbe {
        ran_again: true,
        cpu_ms: 900,
        ops: Some(50),
        window_ms: 3000,
    });
    let text = reason(classify(&run, RAN, Boot::single(15.0)));
    assert!(
        text.contains("HLT=1; an injected NMI got it going again (0.90 s of CPU, 50 operations in 3 s)"),
        "{text}"
    );
}

#[test]
fn a_kernel_panic_is_named_with_its_location_and_message() {
    let tail = [
        "[1][PANIC] panicked at /w/hermit-kernel-0.11.0/src/scheduler/task.rs:690:9:",
        "internal error: entered unreachable code",
    ];
    let ended = Ended::Exited(GuestExit::KernelFailure);
    let v = classify(&bench(true, ended, &tail, None), RAN, Boot::single(15.0));
    assert_eq!(failure(&v), Some(FailureKind::KernelPanic));
    assert_eq!(
        reason(v),
        "guest kernel panic at scheduler/task.rs:690: internal error: entered unreachable code"
    );
    // The same panic before the workload started still names the panic.
    let early = classify(&bench(false, ended, &tail, None), RAN, Boot::single(15.0));
    assert_eq!(failure(&early), Some(FailureKind::KernelPanic));
    let app = ["thread 'main' panicked at app/src/main.rs:1:1:", "boom"];
    let v = classify(&bench(true, ended, &app, None), RAN, Boot::single(15.0));
    assert_eq!(failure(&v), Some(FailureKind::AppPanic));
}

fn spec() -> MatrixSpec {
    MatrixSpec::parse(
        r#"
locks = ["base", "pv"]
overcommit = ["1x", "3x"]
reps = 2
vcpus = 2
memory_mib = 512
spin_tcg = 256
bench_args = ["pvlock.kick=nmi"]
[kernbench]
scale = 1
cap_s = 15
"#,
        "test",
    )
    .unwrap()
}

const ENV: Env = Env {
    host_cores: 2,
    vcpus: 2,
    accel: Accel::Tcg,
    hardware_kvm: false,
};

#[test]
fn a_plan_gives_each_guest_the_words_it_parses() {
    let spec = spec();
    let key = spec
        .plan()
        .into_iter()
        .find(|k| k.overcommit == Overcommit::X3 && k.lock == LockMode::Base)
        .unwrap();
    let plan = plan::cell(&spec, &ENV, &key).unwrap();
    let bench = plan.bench.app_words();
    assert_eq!(&bench[..2], ["pvlock=base", "pvlock.spin=256"]);
    assert_eq!(bench.last().map(String::as_str), Some("pvlock.kick=nmi"));
    let workload = bench.iter().filter(|w| !w.starts_with("pvlock"));
    let Ok(WorkloadConfig::Kernbench(k)) = parse_args(workload) else {
        panic!("{bench:?}")
    };
    assert_eq!((k.scale, k.reps), (1, 1));
    assert_eq!(plan.hogs.len(), 2);
    assert!(matches!(
        parse_args(plan.hogs[0].app_words()),
        Ok(WorkloadConfig::Cpuhog(h)) if h.threads == 2
    ));
    assert_eq!(plan.cap, Duration::from_secs(15));
    assert!((plan.fair_cores - 2.0 / 3.0).abs() < 1e-9);
    // Under KVM no TCG spin threshold, and the host vouches for verified KVM.
    let kvm = Env {
        accel: Accel::Kvm,
        hardware_kvm: true,
        ..ENV
    };
    let plan = plan::cell(&spec, &kvm, &key).unwrap();
    assert_eq!(&plan.bench.app_words()[..2], ["pvlock=base", "pvlock.hwkvm=1"]);
}

#[test]
fn a_bench_word_that_repeats_the_hosts_fails_the_plan() {
    let mut spec = spec();
    spec.bench_args = Some(vec!["pvlock=pv".into()]);
    let key = spec.plan()[0];
    assert!(matches!(plan::cell(&spec, &ENV, &key), Err(RunError::Cmdline(_))));
}

/// Scripted cells: how each ends, by id; interrupts before a given cell;
/// with `spread`, completed runs' times vary by repetition.
/// With `core_to_core`, every cell gets host readings: a cell's attempts
/// read the listed round trips in turn (40 ns once the list is used up, or
/// for unlisted cells), and each attempt leaves a log naming its number.
#[derive(Default)]
struct Fake {
    ends: BTreeMap<String, Ended>,
    interrupt_at: Option<String>,
    /// Interrupt instead of running the cell of this call (from 0).
    interrupt_at_call: Option<usize>,
    ran: RefCell<Vec<String>>,
    spread: f64,
    core_to_core: Option<BTreeMap<String, Vec<f64>>>,
    /// What each wait for near CPUs ends with, in turn (near once used up);
    /// a wait that is not near took the whole patience.
    near_waits: Vec<bool>,
    awaited: usize,
}

impl Launcher for Fake {
    fn run_cell(&mut self, plan: &CellPlan, dir: &Path) -> Result<Option<CellRun>, RunError> {
        let id = plan.key.id();
        if self.interrupt_at.as_deref() == Some(id.as_str())
            || self.interrupt_at_call == Some(self.ran.borrow().len())
        {
            self.interrupt_at_call = None;
            return Ok(None);
        }
        let attempt = self.ran.borrow().iter().filter(|r| **r == id).count();
        self.ran.borrow_mut().push(id.clone());
        let ended = self.ends.get(&id).copied().unwrap_or(EXIT_0);
        let wobble = f64::from((plan.key.rep * 7 + plan.key.lock as u32) % 5) - 2.0;
        let figures = (ended == EXIT_0).then_some(Figures {
            elapsed_s: FIGURES.elapsed_s + self.spread * wobble,
            ..FIGURES
        });
        let mut run = bench(true, ended, &[], figures);
        if let Some(readings) = &self.core_to_core {
            let ns = readings
                .get(&id)
                .and_then(|r| r.get(attempt))
                .copied()
                .unwrap_or(40.0);
            run.host = Some(crate::results::HostNoise {
                steal_s: Some(0.0),
                reference_before_ms: 10.0,
                reference_after_ms: 10.0,
                core_to_core_before_ns: Some(ns),
                core_to_core_after_ns: Some(40.0),
                waited_near_s: None,
            });
            fs::create_dir_all(dir).unwrap();
            fs::write(dir.join("bench.serial.log"), format!("attempt {}\n", attempt + 1)).unwrap();
        }
        Ok(Some(CellRun::Bench(Box::new(run))))
    }

    fn await_near(&mut self, floor_ns: f64, patience: Duration) -> noise::NearWait {
        assert!(floor_ns > 0.0 && patience > Duration::ZERO);
        let near = self.near_waits.get(self.awaited).copied().unwrap_or(true);
        self.awaited += 1;
        noise::NearWait {
            waited: if near { Duration::ZERO } else { patience },
            near,
        }
    }
}

use crate::test_support::provenance;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pvbench-runner-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// The options of a whole-matrix run of `spec()` into `out`.
fn whole_run(out: &Path, resume: bool) -> RunOptions {
    RunOptions {
        spec: spec(),
        out: out.to_path_buf(),
        resume,
        quiet: true,
        target: None,
        shard: None,
        dump_on_stall: false,
    }
}

#[test]
fn every_cell_gets_its_result_and_an_interrupted_run_resumes() {
    let out = scratch("resume");
    let options = |resume| whole_run(&out, resume);
    let plan = spec().plan();
    let mut fake = Fake {
        interrupt_at: Some(plan[3].id()),
        ..Fake::default()
    };
    fake.ends.insert(plan[1].id(), Ended::TimedOut);
    let err = run_with(&mut fake, &ENV, provenance(), &options(false)).unwrap_err();
    assert!(
        matches!(
            err,
            RunError::Interrupted {
                done: 3,
                total: 8,
                ..
            }
        ),
        "{err}"
    );
    // Without --resume the directory is refused; with it only the rest runs.
    let refused = run_with(&mut Fake::default(), &ENV, provenance(), &options(false));
    assert!(matches!(refused, Err(RunError::OutExists(_))));
    let mut rest = Fake::default();
    rest.ends
        .insert(plan[5].id(), Ended::Exited(GuestExit::KernelFailure));
    let results = run_with(&mut rest, &ENV, provenance(), &options(true)).unwrap();
    assert_eq!(rest.ran.borrow().len(), 5, "finished cells are not run again");
    assert_eq!(results.cells.len(), 8);
    let status = |i: usize| &results.cells.iter().find(|c| c.key == plan[i]).unwrap().status;
    assert_eq!(*status(0), CellStatus::Completed);
    assert_eq!(*status(1), CellStatus::Censored);
    assert_eq!(status(5).failure(), Some(FailureKind::Other));
    // A different matrix in the same directory is never mixed in.
    let mut other = provenance();
    other.matrix_hash = "different".into();
    let mixed = run_with(&mut Fake::default(), &ENV, other, &options(true));
    assert!(matches!(mixed, Err(RunError::Mismatch { what: "matrix", .. })));
    let _ = fs::remove_dir_all(out);
}

#[test]
fn a_cell_keeps_every_lock_counter_the_kick_latency_and_each_guests_run_delay() {
    let spec = spec();
    let key = *spec
        .plan()
        .iter()
        .find(|k| k.overcommit == Overcommit::X3)
        .expect("a 3x cell");
    let plan = plan::cell(&spec, &ENV, &key).unwrap();
    let run = CellRun::Bench(Box::new(bench(true, EXIT_0, &[], Some(FIGURES))));
    let result = cell_result(&plan, &run);
    assert_eq!(result.status, CellStatus::Completed);
    assert_eq!(result.pvlock.map(|l| l.halted), Some(5));
    assert_eq!(result.queued.map(|q| (q.wait_head, q.kick_unlock)), Some((2, 2)));
    assert_eq!(result.tas.map(|t| t.contended), Some(3));
    let kick = result.kick_wake_ns.expect("kick-to-wake percentiles");
    assert_eq!(kick.count, 4);
    assert!((1_990..=2_010).contains(&kick.p50), "{kick:?}");
    assert!((39_900..=40_100).contains(&kick.max), "{kick:?}");
    // The bench guest's vCPUs waited 1.0 and 2.0 s after its start line; the
    // hog's, as the launcher measured them.
    let [bench_cpu, hog] = &result.guests[..] else {
        panic!("{:?}", result.guests)
    };
    assert_eq!(bench_cpu.vcpu_run_delay_s, [1.0, 2.0]);
    assert_eq!(bench_cpu.run_delay_s, Some(3.0));
    assert_eq!(hog.vcpu_run_delay_s, [0.25, 0.5]);
    assert_eq!(hog.run_delay_s, Some(0.75));
    // Unknown at the start line: unknown, not the whole life's.
    let mut b = bench(true, EXIT_0, &[], Some(FIGURES));
    b.cpu = spanned(&[(
        reading(4.0, 0.5, None, 1.0, None),
        reading(20.0, 1.0, Some([1500, 2500]), 10.0, Some([250, 500])),
    )]);
    let result = cell_result(&plan, &CellRun::Bench(Box::new(b)));
    assert!(result
        .guests
        .iter()
        .all(|g| g.run_delay_s.is_none() && g.vcpu_run_delay_s.is_empty()));
}

#[test]
fn a_censored_cell_keeps_where_its_vcpus_were_at_the_cap() {
    let spec = spec();
    let key = spec.plan()[0];
    let plan = plan::cell(&spec, &ENV, &key).unwrap();
    let mut b = bench(true, Ended::TimedOut, &[], None);
    // Two samples at the cap, one after the other, as the launcher takes them.
    let sample = "CPU#0\nRIP=00000000004f8ba2 RFL=00001046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0\n\
                  CPU#1\nRIP=00000000004f8ba2 RFL=00001046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0";
    b.outcome.vcpus_at_kill = Some(format!("{sample}\n{sample}"));
    let result = cell_result(&plan, &CellRun::Bench(Box::new(b)));
    assert_eq!(result.status, CellStatus::Censored);
    let states = result.vcpus_at_cap.expect("the vCPUs at the cap");
    let one = "cpu0 RIP=00000000004f8ba2 RFL=00001046 HLT=0, cpu1 RIP=00000000004f8ba2 RFL=00001046 HLT=0";
    assert_eq!(states, format!("{one}, {one}"));
    // A completed cell has no such line.
    let done = cell_result(
        &plan,
        &CellRun::Bench(Box::new(bench(true, EXIT_0, &[], Some(FIGURES)))),
    );
    assert_eq!(done.vcpus_at_cap, None);
}

#[test]
fn rows_above_the_target_mde_get_repetitions_until_they_reach_it_or_the_limit() {
    let out = scratch("target");
    let mut spec = spec();
    spec.overcommit = vec![Overcommit::X1];
    let options = |mde_pct, max_reps| RunOptions {
        spec: spec.clone(),
        out: out.clone(),
        resume: false,
        quiet: true,
        target: Some(TargetMde { mde_pct, max_reps }),
        shard: None,
        dump_on_stall: false,
    };
    // Times wobble by +/-0.2 s around 2.5 s: an MDE of tens of percent with 2
    // runs a side, a few percent with many.
    let mut fake = Fake {
        spread: 0.1,
        ..Fake::default()
    };
    let results = run_with(&mut fake, &ENV, provenance(), &options(1.0, 6)).unwrap();
    // Never reached at 1%: stopped at 6 repetitions, one of each lock at a time.
    assert_eq!(results.cells.len(), 12);
    assert_eq!(results.manifest.cells.len(), 12);
    assert_eq!(results.manifest.target_mde_pct, Some(1.0));
    let added: Vec<(u32, LockMode)> = results.manifest.cells[4..]
        .iter()
        .map(|k| (k.rep, k.lock))
        .collect();
    assert_eq!(
        &added[..4],
        [
            (3, LockMode::Base),
            (3, LockMode::Pv),
            (4, LockMode::Pv),
            (4, LockMode::Base)
        ]
    );
    let report = crate::report::render(&results, &crate::report::RenderOptions::default());
    let target = report.target.as_ref().unwrap();
    assert!(target.reached.is_empty() && target.missed[0].2 == 6, "{target:?}");
    assert!(
        report.text().contains("not reached by kernbench 1x (MDE"),
        "{}",
        report.text()
    );
    let _ = fs::remove_dir_all(&out);

    // A target the planned runs already meet adds nothing.
    let mut fake = Fake {
        spread: 0.1,
        ..Fake::default()
    };
    let results = run_with(&mut fake, &ENV, provenance(), &options(500.0, 6)).unwrap();
    assert_eq!(results.cells.len(), 4);
    let _ = fs::remove_dir_all(out);
}

#[test]
fn a_shard_runs_its_groups_records_its_plan_and_resumes_only_as_itself() {
    let dirs = [scratch("shard-1"), scratch("shard-2")];
    let out = |k: u32| dirs[k as usize - 1].clone();
    let options = |k: u32, resume| RunOptions {
        spec: spec(),
        out: out(k),
        resume,
        quiet: true,
        target: None,
        shard: Some(Shard { index: k, count: 2 }),
        dump_on_stall: false,
    };
    let mut all = Vec::new();
    for k in [1, 2] {
        let _ = fs::remove_dir_all(out(k));
        let mut fake = Fake::default();
        let results = run_with(&mut fake, &ENV, provenance(), &options(k, false)).unwrap();
        let Some(Sharding::Shard(record)) = &results.manifest.sharding else {
            panic!("{:?}", results.manifest.sharding)
        };
        assert_eq!(record.shard(), Shard { index: k, count: 2 });
        assert_eq!(record.expected_cost_s.len(), 2);
        let groups: Vec<_> = results.manifest.cells.iter().map(CellKey::group).collect();
        assert!(groups.iter().all(|g| record.groups.contains(g)), "{groups:?}");
        assert_eq!(fake.ran.borrow().len(), results.manifest.cells.len());
        all.extend(results.manifest.cells.clone());
    }
    all.sort();
    let mut plan = spec().plan();
    plan.sort();
    assert_eq!(all, plan, "the two shards run the plan's cells, each once");

    // An interrupted shard says how to resume it, as itself.
    let _ = fs::remove_dir_all(out(1));
    let first = options(1, false);
    let mut fake = Fake {
        interrupt_at: Some(
            results::shard::partition(&spec(), 2)
                .unwrap()
                .cells(&spec(), Shard { index: 1, count: 2 })[1]
                .id(),
        ),
        ..Fake::default()
    };
    let err = run_with(&mut fake, &ENV, provenance(), &first).unwrap_err();
    assert!(
        err.to_string().contains("--resume --out") && err.to_string().ends_with("--shard 1/2"),
        "{err}"
    );
    // Another shard, or no shard, in its directory is refused.
    let mut wrong = options(2, true);
    wrong.out = out(1);
    let err = run_with(&mut Fake::default(), &ENV, provenance(), &wrong).unwrap_err();
    assert!(matches!(err, RunError::Mismatch { what: "shard", .. }), "{err}");
    assert!(
        err.to_string().contains("shard 1/2 there, shard 2/2 now"),
        "{err}"
    );
    let mut whole = options(1, true);
    whole.shard = None;
    let err = run_with(&mut Fake::default(), &ENV, provenance(), &whole).unwrap_err();
    assert!(err.to_string().contains("(shard 1/2 there, no shard"), "{err}");
    // As itself it finishes, running only what was left.
    let mut rest = Fake::default();
    let results = run_with(&mut rest, &ENV, provenance(), &options(1, true)).unwrap();
    assert_eq!(rest.ran.borrow().len(), results.manifest.cells.len() - 1);
    assert_eq!(results.cells.len(), results.manifest.cells.len());
    for k in [1, 2] {
        let _ = fs::remove_dir_all(out(k));
    }
}

#[test]
fn cells_measured_with_the_cpus_apart_are_set_aside_and_measured_again_up_to_the_limit() {
    let out = scratch("apart");
    let plan = spec().plan();
    let options = |resume| whole_run(&out, resume);
    // Cell 2 is apart once (near on its rerun), cell 5 every time, cell 6
    // is apart and fails (never rerun), cell 7 reads 100 ns: slower than the
    // floor, but under 3x it.
    let readings = BTreeMap::from([
        (plan[2].id(), vec![400.0]),
        (plan[5].id(), vec![400.0, 390.0, 410.0]),
        (plan[6].id(), vec![400.0]),
        (plan[7].id(), vec![100.0]),
    ]);
    let mut fake = Fake {
        core_to_core: Some(readings.clone()),
        ..Fake::default()
    };
    fake.ends
        .insert(plan[6].id(), Ended::Exited(GuestExit::KernelFailure));
    let results = run_with(&mut fake, &ENV, provenance(), &options(false)).unwrap();
    let mut expected: Vec<String> = plan.iter().map(CellKey::id).collect();
    // Both reruns in plan order after the pass, then the one still apart.
    expected.extend([plan[2].id(), plan[5].id(), plan[5].id()]);
    assert_eq!(*fake.ran.borrow(), expected);
    let cell = |i: usize| results.cells.iter().find(|c| c.key == plan[i]).unwrap();
    assert_eq!(cell(2).reruns_apart, 1);
    assert_eq!(cell(2).host.unwrap().core_to_core_max_ns(), Some(40.0));
    // At the limit (2 reruns) the last attempt stands, still apart.
    assert_eq!(cell(5).reruns_apart, 2);
    assert_eq!(cell(5).host.unwrap().core_to_core_max_ns(), Some(410.0));
    assert_eq!(cell(6).reruns_apart, 0);
    assert!(cell(6).status.failure().is_some());
    assert_eq!(cell(7).reruns_apart, 0);
    // The attempts set aside keep their result and their logs.
    for (n, ns) in [(1, 400.0), (2, 390.0)] {
        let kept = results::set_aside_dir(&out, &plan[5], n);
        let earlier: CellResult = results::read_json(&kept.join(results::CELL_RESULT_FILE)).unwrap();
        assert_eq!(earlier.host.unwrap().core_to_core_max_ns(), Some(ns));
        assert_eq!(
            fs::read_to_string(kept.join("bench.serial.log")).unwrap(),
            format!("attempt {n}\n")
        );
    }
    let latest = results::cell_dir(&out, &plan[5]).join("bench.serial.log");
    assert_eq!(fs::read_to_string(latest).unwrap(), "attempt 3\n");
    assert_eq!(results::set_aside_count(&out, &plan[2]), 1);
    assert_eq!(results::set_aside_count(&out, &plan[7]), 0);

    // Interrupted while a rerun is under way: resumed, the set-aside cell
    // runs again and counts its earlier attempt.
    let _ = fs::remove_dir_all(&out);
    let mut fake = Fake {
        core_to_core: Some(readings.clone()),
        interrupt_at_call: Some(plan.len()),
        ..Fake::default()
    };
    fake.ends
        .insert(plan[6].id(), Ended::Exited(GuestExit::KernelFailure));
    let err = run_with(&mut fake, &ENV, provenance(), &options(false)).unwrap_err();
    // Counted over the whole plan: both cells to rerun were set aside.
    assert!(
        matches!(
            err,
            RunError::Interrupted {
                done: 6,
                total: 8,
                ..
            }
        ),
        "{err}"
    );
    let mut rest = Fake {
        core_to_core: Some(BTreeMap::new()),
        ..Fake::default()
    };
    let results = run_with(&mut rest, &ENV, provenance(), &options(true)).unwrap();
    assert_eq!(*rest.ran.borrow(), [plan[2].id(), plan[5].id()]);
    assert_eq!(results.cells.iter().map(|c| c.reruns_apart).sum::<u32>(), 2);

    // `apart_reruns = 0` keeps every first attempt.
    let _ = fs::remove_dir_all(&out);
    let mut fake = Fake {
        core_to_core: Some(readings),
        ..Fake::default()
    };
    let mut keep = options(false);
    keep.spec.apart_reruns = Some(0);
    run_with(&mut fake, &ENV, provenance(), &keep).unwrap();
    assert_eq!(fake.ran.borrow().len(), plan.len());
    let _ = fs::remove_dir_all(out);
}

#[test]
fn before_a_cell_the_runner_waits_for_near_cpus_and_stops_waiting_after_a_wait_runs_out() {
    let out = scratch("await");
    let plan = spec().plan();
    let options = whole_run(&out, false);
    // The wait before cell 2 runs out, cells 2 and 3 read apart: no waits
    // before cells 3 and 4; cell 4 reads near, so waits resume at cell 5.
    let mut fake = Fake {
        core_to_core: Some(BTreeMap::from([
            (plan[2].id(), vec![400.0]),
            (plan[3].id(), vec![400.0]),
        ])),
        near_waits: vec![true, false],
        ..Fake::default()
    };
    let results = run_with(&mut fake, &ENV, provenance(), &options).unwrap();
    let waited = |i: usize| {
        let cell = results.cells.iter().find(|c| c.key == plan[i]).unwrap();
        cell.host.unwrap().waited_near_s
    };
    // No floor before the first cell: nothing to wait for.
    assert_eq!(waited(0), None);
    assert_eq!(waited(1), Some(0.0));
    let first: CellResult =
        results::read_json(&results::set_aside_dir(&out, &plan[2], 1).join(results::CELL_RESULT_FILE))
            .unwrap();
    assert_eq!(
        first.host.unwrap().waited_near_s,
        Some(NEAR_PATIENCE.as_secs_f64())
    );
    assert_eq!(waited(4), None);
    assert_eq!(waited(5), Some(0.0));
    // Cells 1, 2, 5, 6, 7, then the reruns of 2 and 3 (a new pass waits again).
    assert_eq!(fake.awaited, 7);
    assert_eq!((waited(2), waited(3)), (Some(0.0), Some(0.0)));
    let _ = fs::remove_dir_all(&out);

    // A matrix without the rule never waits.
    let mut fake = Fake {
        core_to_core: Some(BTreeMap::new()),
        ..Fake::default()
    };
    let mut keep = options;
    keep.spec.apart_reruns = Some(0);
    let results = run_with(&mut fake, &ENV, provenance(), &keep).unwrap();
    assert_eq!(fake.awaited, 0);
    assert!(results
        .cells
        .iter()
        .all(|c| c.host.unwrap().waited_near_s.is_none()));
    let _ = fs::remove_dir_all(out);
}
