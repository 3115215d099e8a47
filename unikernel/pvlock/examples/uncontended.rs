//! Uncontended lock + unlock: pvlock's locks against the ticket lock Hermit 0.11
//! had (crates.io hermit-sync's `RawTicketMutex`), measured in one run, arms
//! interleaved, median of rounds.
//!
//!   cargo run --release -p pvlock --example uncontended
//!
//! Two tables:
//! - the algorithms alone, each its own type, all in this process: the
//!   pv-ticketlock with pv off and on (they share the uncontended path; the
//!   slow path only starts after the spin threshold), `qspin`, `pvqspin`,
//!   `tas`;
//! - `RawModalLock` in every mode, i.e. with the dispatch a kernel would pay.
//!   The mode is fixed once per process, so each measurement is a child
//!   process (this example with `--child MODE`) that times hermit-sync's lock
//!   and the modal lock alternately; rounds rotate the order of the modes. The
//!   percentage is the median of the per-process ratios.

// Under `--cfg loom` the locks have no lock_api impls and nothing here applies.
#[cfg(loom)]
fn main() {}

#[cfg(not(loom))]
fn main() {
    bench::main();
}

#[cfg(not(loom))]
mod bench {
    use std::hint::black_box;
    use std::process::Command;
    use std::time::Instant;

    use lock_api::RawMutex;
    use pvlock::LockMode;

    const OPS: u32 = 2_000_000;
    const ROUNDS: usize = 15;
    /// Alternations of the two arms inside one child process.
    const CHILD_ROUNDS: usize = 3;

    fn ns_per_op<M: RawMutex>(lock: &M) -> f64 {
        let start = Instant::now();
        for _ in 0..OPS {
            lock.lock();
            // SAFETY: locked on the line above, by this thread.
            unsafe { lock.unlock() };
            black_box(lock);
        }
        start.elapsed().as_nanos() as f64 / f64::from(OPS)
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    fn percent(x: f64, base: f64) -> String {
        format!("{:+.1}%", (x / base - 1.0) * 100.0)
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().collect();
        if let [_, flag, mode] = args.as_slice() {
            if flag == "--child" {
                child(mode);
                return;
            }
        }
        pvlock::host::install();
        pvlock::host::bind_cpu(0);
        alone();
        modal(&args[0]);
    }

    fn alone() {
        let hermit = hermit_sync::RawTicketMutex::INIT;
        let ticket = pvlock::RawPvTicketLock::new();
        let qspin = pvlock::RawQSpinLock::new();
        let pvqspin = pvlock::RawPvQSpinLock::new();
        let tas = pvlock::RawTasLock::new();
        let mut arms: [Vec<f64>; 6] = Default::default();
        for round in 0..ROUNDS {
            // Rotate the order so that drift hits every arm alike.
            for i in 0..arms.len() {
                let arm = (round + i) % arms.len();
                let ns = match arm {
                    0 => ns_per_op(&hermit),
                    1 => {
                        pvlock::set_enabled(false);
                        let ns = ns_per_op(&ticket);
                        pvlock::set_enabled(true);
                        ns
                    }
                    2 => ns_per_op(&ticket),
                    3 => ns_per_op(&qspin),
                    4 => ns_per_op(&pvqspin),
                    _ => ns_per_op(&tas),
                };
                arms[arm].push(ns);
            }
        }
        let [hermit, off, on, qspin, pvqspin, tas] = arms.map(median);
        println!("uncontended lock+unlock, median of {ROUNDS} rounds of {OPS} ops (ns/op)");
        println!("the algorithms alone (one process, arms interleaved):");
        println!("  hermit-sync 0.1 RawTicketMutex  {hermit:.2}  (baseline)");
        for (name, ns) in [
            ("pvlock ticket, pv off (base)", off),
            ("pvlock ticket, pv on (pv)", on),
            ("RawQSpinLock (qspin)", qspin),
            ("RawPvQSpinLock (pvqspin)", pvqspin),
            ("RawTasLock (tas)", tas),
        ] {
            println!("  {name:<31} {ns:.2}  ({})", percent(ns, hermit));
        }
    }

    fn modal(exe: &str) {
        let mut per_mode: [(Vec<f64>, Vec<f64>, Vec<f64>); 5] = Default::default();
        for round in 0..ROUNDS {
            for i in 0..LockMode::ALL.len() {
                let index = (round + i) % LockMode::ALL.len();
                let mode = LockMode::ALL[index];
                let out = Command::new(exe)
                    .args(["--child", mode.name()])
                    .output()
                    .expect("cannot run the example as a child");
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(out.status.success(), "child {mode} failed: {stdout}");
                let fields: Vec<f64> = stdout
                    .split_whitespace()
                    .map(|f| f.parse().expect("child output: two numbers"))
                    .collect();
                let [hermit, lock] = fields[..] else {
                    panic!("child output: {stdout}");
                };
                let (h, m, r) = &mut per_mode[index];
                h.push(hermit);
                m.push(lock);
                r.push(lock / hermit);
            }
        }
        println!("RawModalLock per mode (a process each, timed against hermit-sync in that process):");
        for (mode, (hermit, lock, ratio)) in LockMode::ALL.into_iter().zip(per_mode) {
            let (hermit, lock, ratio) = (median(hermit), median(lock), median(ratio));
            println!(
                "  {:<8} {lock:.2}  hermit-sync {hermit:.2}  ({:+.1}%)",
                mode.name(),
                (ratio - 1.0) * 100.0
            );
        }
    }

    /// One measurement of `mode`: prints hermit-sync's and the modal lock's
    /// ns/op, each the median of [`CHILD_ROUNDS`] alternations.
    fn child(mode: &str) {
        let mode: LockMode = mode.parse().unwrap_or_else(|e| panic!("{e}"));
        pvlock::set_mode(mode).expect("a fresh process");
        pvlock::host::install();
        pvlock::host::bind_cpu(0);
        let hermit = hermit_sync::RawTicketMutex::INIT;
        let lock = pvlock::RawModalLock::new();
        let (mut h, mut m) = (Vec::new(), Vec::new());
        for i in 0..CHILD_ROUNDS {
            if i % 2 == 0 {
                h.push(ns_per_op(&hermit));
                m.push(ns_per_op(&lock));
            } else {
                m.push(ns_per_op(&lock));
                h.push(ns_per_op(&hermit));
            }
        }
        println!("{} {}", median(h), median(m));
    }
}
