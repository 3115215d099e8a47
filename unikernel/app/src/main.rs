//! The pvbench guest: runs on the Hermit kernel and reports to the host.
//!
//! Its arguments are the words after `--` on the kernel command line.
//! `mode=hello` (the default) prints the hello line; `mode=exit status=N` ends
//! with status N; `workload=kernbench|pgbench|cpuhog ...` runs a workload (its
//! keys are the workloads crate's); `mode=lockstress threads=N rounds=M` hammers the kernel's
//! locks and checks their data and the pv-lock counters; `mode=panic` and
//! `mode=hang` exist for the host's failure tests, as does `mode=lostkick` (a
//! vCPU halted as if its kick were lost, until an NMI); `mode=selftest` streams
//! metrics to the host (see `selftest.rs` and `metrics.rs`); `mode=fdstress|futexrace|timedpoll|sleeporder|allocalign|spawnwake`
//! provoke the kernel races pvbench's patch fixes (see `races.rs`).
//! `pvlock=on|off` and friends configure the kernel's pv-ticketlocks first
//! (see `pvlock.rs`).

mod lockstress;
mod metrics;
mod pvlock;
mod races;
mod selftest;

use std::process::ExitCode;

use pvbench_wire::cmdline;
use pvbench_wire::console::{MEASURE_BEGINS, MEASURE_ENDS, WORKLOAD_STARTED};
use pvbench_wire::exit::{DEBUG_EXIT_PORT, Status, port_value};
use pvbench_wire::frames::Figures;
use pvbench_workloads as workloads;
use workloads::{MeasureEdge, Observer};

// std on Hermit calls the C math functions; this crate defines them.
use pvbench_cmath as _;

const KERNEL_VERSION: &str = match option_env!("PVBENCH_KERNEL_VERSION") {
    Some(version) => version,
    None => "unknown",
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let line = args.join(" ");
    let vcpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("pvbench-guest: hello vcpus={vcpus} kernel=hermit-{KERNEL_VERSION} args={args:?}");

    let pv_config = match pvlock::parse(&line) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("pvbench-guest: {message}");
            exit(Status::Usage.code())
        }
    };
    match pvlock::configure(&pv_config) {
        Ok(report) => println!("pvbench-guest: {}", pvlock::describe(&report)),
        Err(report) => {
            eprintln!("pvbench-guest: pv-lock configuration refused: {}", pvlock::describe(&report));
            exit(Status::Usage.code())
        }
    }

    let default_mode = if cmdline::find(&line, workloads::params::keys::WORKLOAD).is_some() {
        "workload"
    } else {
        "hello"
    };
    let status = match cmdline::find(&line, cmdline::MODE).unwrap_or(default_mode) {
        "hello" => Status::Success.code(),
        "workload" => workload(&args, &line, &pv_config),
        "lockstress" => lockstress(&line, &pv_config),
        "fdstress" | "futexrace" | "timedpoll" | "sleeporder" | "allocalign" | "spawnwake" => race(&line),
        "selftest" => selftest::selftest(&line),
        "exit" => match cmdline::find(&line, cmdline::STATUS).map(str::parse::<u8>) {
            Some(Ok(status)) => status,
            _ => {
                eprintln!("pvbench-guest: mode=exit needs status=0..=125");
                Status::Usage.code()
            }
        },
        "panic" => panic!("mode=panic asked for a panic"),
        "hang" => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        "lostkick" => lost_kick(),
        other => {
            eprintln!(
                "pvbench-guest: unknown mode={other} (expected hello, workload, lockstress, fdstress, \
                 futexrace, timedpoll, sleeporder, allocalign, spawnwake, selftest, exit, panic, hang, lostkick)"
            );
            Status::Usage.code()
        }
    };
    println!("pvbench-guest: {}", pvlock::stats_line(&pvlock::report(&pv_config)));
    exit(status)
}

/// Runs the workload the `workload=` words describe (other words are ours),
/// streaming its intervals to the host when `metrics=` is given. Prints
/// `pvbench-guest: workload started` when the measured work begins and a
/// `pvbench-result: {json}` line at the end (the host's matrix reads both).
fn workload(args: &[String], line: &str, pv_config: &::pvlock::report::Config) -> u8 {
    let words = args.iter().filter(|word| {
        word.split_once('=').is_some_and(|(key, _)| workloads::params::key_spec(key).is_some())
    });
    let config = match workloads::parse_args(words) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("pvbench-guest: {e}");
            return Status::Usage.code();
        }
    };
    let kind = cmdline::find(line, workloads::params::keys::WORKLOAD).unwrap_or("?");
    let mut sink = match metrics::Target::parse(line) {
        Err(e) => {
            eprintln!("pvbench-guest: {e}");
            return Status::Usage.code();
        }
        Ok(None) => None,
        Ok(Some(target)) => match metrics::Sink::connect(target, run_info(kind, line, pv_config)) {
            Ok(sink) => {
                // The cost of this layer, seen from the guest (was ~4.4 s on SMP
                // guests until the kernel polled its NIC from every core).
                println!("pvbench-guest: metrics connected connect_ms={:.1}", sink.connected_after().as_secs_f64() * 1e3);
                Some(sink)
            }
            Err(e) => {
                eprintln!("pvbench-guest: cannot stream metrics: {e}");
                return Status::MetricsIncomplete.code();
            }
        },
    };
    println!("{WORKLOAD_STARTED} {kind}");
    if cmdline::find(line, cmdline::INJECT) == Some("stall") {
        inject_stall();
    }
    let result = match sink.as_mut() {
        Some(sink) => workloads::run(&config, &mut Marked(sink)),
        None => workloads::run(&config, &mut Marked(&mut workloads::NullObserver)),
    };
    let (status, outcome) = match &result {
        Ok(summary) => {
            println!("pvbench-guest: {}", summary.line());
            (Status::Success, Ok(ending(summary, pv_config)))
        }
        Err(e) => {
            eprintln!("pvbench-guest: workload FAILED: {e}");
            (Status::Failed, Err(e.to_string()))
        }
    };
    if let Some(sink) = sink {
        match sink.finish(outcome) {
            Err(e) => {
                eprintln!("pvbench-guest: metrics stream incomplete: {e}");
                let status = if status == Status::Success { Status::MetricsIncomplete } else { status };
                return status.code();
            }
            // A migrated guest's stream goes on over new connections.
            Ok(f) if f.sender.resumes > 0 => println!(
                "pvbench-guest: metrics connection resumed {} times, {} kept frames resent",
                f.sender.resumes, f.sender.resent
            ),
            Ok(_) => {}
        }
    }
    status.code()
}

/// Marks each repetition's timed work on the console for the host (see
/// `pvbench_wire::console`) and passes everything else on.
struct Marked<'a, O: Observer>(&'a mut O);

impl<O: Observer> Observer for Marked<'_, O> {
    fn interval(&mut self, report: workloads::IntervalReport) {
        self.0.interval(report);
    }

    fn done(&mut self, summary: &workloads::RunSummary) {
        self.0.done(summary);
    }

    fn should_stop(&mut self) -> bool {
        self.0.should_stop()
    }

    fn measure(&mut self, edge: MeasureEdge, rep: u32) {
        let marker = match edge {
            MeasureEdge::Begins => MEASURE_BEGINS,
            MeasureEdge::Ends => MEASURE_ENDS,
        };
        println!("{marker} rep={rep}");
        self.0.measure(edge, rep);
    }
}

/// `mode=lostkick`: the stall a lost kick leaves, on purpose. This vCPU halts
/// as a pv-lock waiter with interrupts off; nothing kicks it, so the guest idles
/// until the host injects an NMI, and then runs (spins) until it is killed: a
/// guest that an NMI gets going again, for the host's stall diagnosis test.
fn lost_kick() -> ! {
    println!("pvbench-guest: lostkick: halting with interrupts off, no kick will come");
    let stray = pvlock::halt_unkicked();
    println!("pvbench-guest: lostkick: woken by an NMI that was not a kick ({stray} such NMIs so far)");
    loop {
        std::hint::spin_loop();
    }
}

/// `inject=stall`: the failure the host's stall watch exists for, on purpose.
/// The workload never runs (no operation completes) while one thread stays
/// awake about a tenth of the time, so the guest uses more CPU than an idle one
/// (a stalled guest polling its timers and NIC) but makes no progress.
fn inject_stall() -> ! {
    eprintln!("pvbench-guest: inject=stall: the workload will never progress");
    loop {
        let busy = std::time::Instant::now();
        while busy.elapsed() < std::time::Duration::from_micros(1500) {
            std::hint::spin_loop();
        }
        std::thread::sleep(std::time::Duration::from_millis(12));
    }
}

/// Runs one of the race modes (see `races.rs`); 0 if it finished with its data
/// intact, 3 if it found damage, 2 for bad words.
fn race(line: &str) -> u8 {
    let number = |key: &str, default: usize| match cmdline::find(line, key) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().map_err(|_| format!("{key}={v}: expected a number")),
    };
    let words = (number(cmdline::THREADS, 8), number(cmdline::ROUNDS, 200), number(cmdline::TIMEOUT_MS, 300));
    let (threads, rounds, timeout_ms) = match words {
        (Ok(t), Ok(r), Ok(ms)) => (t, r, ms),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("pvbench-guest: {e}");
            return Status::Usage.code();
        }
    };
    let mode = cmdline::find(line, cmdline::MODE).unwrap_or("?");
    let started = std::time::Instant::now();
    let result = match mode {
        "fdstress" => races::fd_stress(threads, rounds),
        "futexrace" => races::futex_race(threads, rounds),
        "sleeporder" => races::sleep_order(std::time::Duration::from_millis(timeout_ms as u64)),
        "allocalign" => races::alloc_align(rounds),
        "spawnwake" => races::spawn_wake(threads, rounds),
        _ => races::timed_poll(u16::try_from(timeout_ms).unwrap_or(u16::MAX), rounds),
    };
    match result {
        Ok(summary) => {
            let size = match mode {
                "timedpoll" | "sleeporder" => format!("timeout_ms={timeout_ms}"),
                "allocalign" => "single-threaded".to_string(),
                _ => format!("threads={threads}"),
            };
            println!(
                "pvbench-guest: {mode} {size} rounds={rounds} operations={} elapsed_s={:.3}",
                summary.operations,
                started.elapsed().as_secs_f64()
            );
            Status::Success.code()
        }
        Err(e) => {
            eprintln!("pvbench-guest: {mode} FAILED: {e}");
            Status::Failed.code()
        }
    }
}

/// What Hello tells the host about the run, lock counters included.
fn run_info(kind: &str, line: &str, pv_config: &::pvlock::report::Config) -> metrics::RunInfo {
    let mut info = metrics::RunInfo::new(kind, line);
    let report = pvlock::report(pv_config);
    info.lock_requested = pvlock::requested(&report.requested);
    info.lock_effective = pvlock::effective(&report);
    info.kick_backend = report.backend.name().into();
    let config = *pv_config;
    info.lock_stats = Some(Box::new(move || pvlock::counters(&pvlock::report(&config))));
    info
}

/// The last frame's figures and counters: everything the host reads of a run.
fn ending(summary: &workloads::RunSummary, pv_config: &::pvlock::report::Config) -> metrics::Ending {
    let figures = match summary {
        workloads::RunSummary::Kernbench(k) => Figures {
            elapsed_s: k.elapsed_s.mean,
            ops: k.jobs_done,
            tps: None,
            runs: k.reps.iter().map(|r| r.elapsed_s).collect(),
        },
        workloads::RunSummary::Pgbench(p) => Figures {
            elapsed_s: p.reps.iter().map(|r| r.elapsed_s).sum(),
            ops: p.transactions,
            tps: Some(p.tps.mean),
            runs: p.reps.iter().map(|r| r.tps).collect(),
        },
        workloads::RunSummary::Cpuhog(c) => Figures {
            elapsed_s: c.elapsed_s,
            ops: c.iterations,
            tps: None,
            runs: Vec::new(),
        },
    };
    let report = pvlock::report(pv_config);
    let kick_wake_ns = pvlock::kick_wake_ns(&report).unwrap_or_else(|e| {
        // Not worth failing the run over: the host shows no latencies.
        eprintln!("pvbench-guest: kick-to-wake histogram not sent: {e}");
        Vec::new()
    });
    metrics::Ending {
        line: summary.line(),
        figures,
        counters: pvlock::counters(&report),
        kick_wake_ns,
        kernel: pvlock::kernel_events(&report),
    }
}

/// Runs the lock stress test and checks the pv-lock counters afterwards.
fn lockstress(line: &str, pv_config: &::pvlock::report::Config) -> u8 {
    let number = |key: &str, default: usize| match cmdline::find(line, key) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().map_err(|_| format!("{key}={v}: expected a number")),
    };
    let (threads, rounds) = match (number(cmdline::THREADS, 8), number(cmdline::ROUNDS, 200)) {
        (Ok(t), Ok(r)) => (t, r),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("pvbench-guest: {e}");
            return Status::Usage.code();
        }
    };
    let started = std::time::Instant::now();
    let summary = match lockstress::run(threads, rounds) {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("pvbench-guest: lockstress FAILED: {e}");
            return Status::Failed.code();
        }
    };
    // The kernel keeps taking locks after the threads are done (idle loops,
    // wakeup IPIs), so one snapshot may catch a CPU mid-wait: only what persists
    // for 200 ms is a fault (a leaked waiter never leaves the waiting set).
    let mut problems = lockstress_problems(&pvlock::report(pv_config));
    for _ in 0..100 {
        if problems.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        problems = lockstress_problems(&pvlock::report(pv_config));
    }
    println!(
        "pvbench-guest: lockstress threads={threads} rounds={rounds} counter={} allocations={} spawned={} elapsed_s={:.3}",
        summary.counter,
        summary.allocations,
        summary.spawned,
        started.elapsed().as_secs_f64()
    );
    if problems.is_empty() {
        Status::Success.code()
    } else {
        eprintln!("pvbench-guest: lockstress counters inconsistent: {}", problems.join("; "));
        Status::Failed.code()
    }
}

/// What is wrong with the lock counters after a lock stress run: the mode in
/// force must be the one asked for, no CPU may be left waiting, the mode's own
/// counters must add up, and the other modes' counters must be untouched.
fn lockstress_problems(report: &::pvlock::report::Report) -> Vec<String> {
    use pvbench_wire::LockMode;
    let c = pvlock::counters(report);
    let (s, q, t) = (&c.lock, &c.queued, &c.tas);
    let mode = pvlock::effective(report);
    let kick_wakes: u64 = report.kick_wake.iter().sum();
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: &str| {
        if !ok {
            problems.push(format!("{mode}: {what}"));
        }
    };
    check(mode == pvlock::requested(&report.requested), "not the mode asked for");
    check(report.waiting_cpus == 0, &format!("CPUs still in the waiting set: {:#x}", report.waiting_cpus));
    check(
        report.active == mode.is_paravirt(),
        "halting is on in a mode that never halts, or off in one that does",
    );
    check(s.released_slow_kicked <= s.released_slow, "more kicks than slow releases");
    check(
        s.spurious_wakeups <= s.halted && s.halted <= s.taken_slow,
        "ticket wakeups, halts and slow entries do not add up",
    );
    check(q.halted == q.wait_node + q.wait_head, "queued halts are not wait_node + wait_head");
    check(q.kick_wake <= q.halted && q.spurious_wakeups <= q.halted, "queued wakeups exceed halts");
    check(q.kick_unlock <= q.hashed, "more kicking unlocks than hashed locks");
    check(kick_wakes <= s.halted + q.halted, "more kick-to-wake latencies than halts");
    let untouched = |ticket: bool, queued: bool, tas: bool| {
        (ticket || s.is_zero()) && (queued || q.is_zero()) && (tas || t.is_zero())
    };
    match mode {
        LockMode::Base => check(untouched(false, false, false), "slow-path activity in a plain ticket lock"),
        LockMode::Pv => check(untouched(true, false, false), "queued or test-and-set activity"),
        LockMode::Qspin => {
            check(untouched(false, true, false), "ticket or test-and-set activity");
            check(q.halted == 0 && q.hashed == 0, "the native queued lock halted or hashed");
        }
        LockMode::Pvqspin => {
            check(untouched(false, true, false), "ticket or test-and-set activity");
            check(q.pending == 0, "pvqspin took the pending path");
        }
        LockMode::Tas => check(untouched(false, false, true), "ticket or queued activity"),
    }
    problems
}

/// Ends the VM with the exact status (see `pvbench_wire::exit`); Hermit's own
/// shutdown would only tell success from failure.
fn exit(status: u8) -> ! {
    println!("pvbench-guest: exit status={status}");
    // SAFETY: Hermit runs the application in ring 0; writing isa-debug-exit stops
    // QEMU, and without the device the write is ignored and we fall through.
    unsafe {
        std::arch::asm!("out dx, eax", in("dx") DEBUG_EXIT_PORT, in("eax") port_value(status), options(nomem, nostack));
    }
    std::process::exit(i32::from(status))
}
