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
//!
//! Both tables also time a second copy of hermit-sync's loop (a newtype, so a
//! separate instance of the same code at another address): the A/A spread of
//! this benchmark. A difference between locks no larger than it is code
//! placement, not the lock.

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

    /// hermit-sync's lock again, as its own type: `ns_per_op` gets a second
    /// instance of the same loop, placed elsewhere in the binary.
    struct HermitAgain(hermit_sync::RawTicketMutex);

    // SAFETY: delegates every call to a RawMutex, whose contract it keeps.
    unsafe impl RawMutex for HermitAgain {
        #[allow(clippy::declare_interior_mutable_const)]
        const INIT: Self = HermitAgain(hermit_sync::RawTicketMutex::INIT);
        type GuardMarker = <hermit_sync::RawTicketMutex as RawMutex>::GuardMarker;

        #[inline(always)]
        fn lock(&self) {
            self.0.lock();
        }

        #[inline(always)]
        fn try_lock(&self) -> bool {
            self.0.try_lock()
        }

        #[inline(always)]
        unsafe fn unlock(&self) {
            // SAFETY: the caller holds the lock, as RawMutex::unlock requires.
            unsafe { self.0.unlock() }
        }
    }

    /// A lock alone at the start of its own page: every arm's lock word has
    /// the same placement, so no arm shares a line with other data or lands
    /// at a luckier offset than another.
    #[repr(C, align(4096))]
    struct Page<T>(T);

    impl<T> Page<T> {
        fn new(lock: T) -> Box<Self> {
            Box::new(Page(lock))
        }
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
        let hermit = Page::new(hermit_sync::RawTicketMutex::INIT);
        let ticket = Page::new(pvlock::RawPvTicketLock::new());
        let qspin = Page::new(pvlock::RawQSpinLock::new());
        let pvqspin = Page::new(pvlock::RawPvQSpinLock::new());
        let tas = Page::new(pvlock::RawTasLock::new());
        let again = Page::new(HermitAgain::INIT);
        let mut arms: [Vec<f64>; 7] = Default::default();
        for round in 0..ROUNDS {
            // Rotate the order so that drift hits every arm alike.
            for i in 0..arms.len() {
                let arm = (round + i) % arms.len();
                let ns = match arm {
                    0 => ns_per_op(&hermit.0),
                    1 => {
                        pvlock::set_enabled(false);
                        let ns = ns_per_op(&ticket.0);
                        pvlock::set_enabled(true);
                        ns
                    }
                    2 => ns_per_op(&ticket.0),
                    3 => ns_per_op(&qspin.0),
                    4 => ns_per_op(&pvqspin.0),
                    5 => ns_per_op(&tas.0),
                    _ => ns_per_op(&again.0),
                };
                arms[arm].push(ns);
            }
        }
        let [hermit, off, on, qspin, pvqspin, tas, again] = arms.map(median);
        println!("uncontended lock+unlock, median of {ROUNDS} rounds of {OPS} ops (ns/op)");
        println!("the algorithms alone (one process, arms interleaved):");
        println!("  hermit-sync 0.1 RawTicketMutex  {hermit:.2}  (baseline)");
        for (name, ns) in [
            ("pvlock ticket, pv off (base)", off),
            ("pvlock ticket, pv on (pv)", on),
            ("RawQSpinLock (qspin)", qspin),
            ("RawPvQSpinLock (pvqspin)", pvqspin),
            ("RawTasLock (tas)", tas),
            ("hermit-sync again (A/A)", again),
        ] {
            println!("  {name:<31} {ns:.2}  ({})", percent(ns, hermit));
        }
    }

    /// The child arms: every mode, then `a/a` (hermit-sync against its
    /// second copy, the benchmark's own spread between two equal locks).
    const CHILD_ARMS: [&str; 6] = ["base", "pv", "qspin", "pvqspin", "tas", "a/a"];

    fn modal(exe: &str) {
        let mut per_arm: [(Vec<f64>, Vec<f64>, Vec<f64>); CHILD_ARMS.len()] = Default::default();
        for round in 0..ROUNDS {
            for i in 0..CHILD_ARMS.len() {
                let index = (round + i) % CHILD_ARMS.len();
                let arm = CHILD_ARMS[index];
                let out = Command::new(exe)
                    .args(["--child", arm])
                    .output()
                    .expect("cannot run the example as a child");
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(out.status.success(), "child {arm} failed: {stdout}");
                let fields: Vec<f64> = stdout
                    .split_whitespace()
                    .map(|f| f.parse().expect("child output: two numbers"))
                    .collect();
                let [hermit, lock] = fields[..] else {
                    panic!("child output: {stdout}");
                };
                let (h, m, r) = &mut per_arm[index];
                h.push(hermit);
                m.push(lock);
                r.push(lock / hermit);
            }
        }
        println!("RawModalLock per mode (a process each, timed against hermit-sync in that process;");
        println!("  median of {ROUNDS} processes, then the range of the per-process ratios):");
        for (arm, (hermit, lock, ratio)) in CHILD_ARMS.into_iter().zip(per_arm) {
            let lo = ratio.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = ratio.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let (hermit, lock, ratio) = (median(hermit), median(lock), median(ratio));
            let name = if arm == "a/a" {
                "hermit-sync again (A/A)"
            } else {
                arm
            };
            println!(
                "  {name:<23} {lock:.2}  hermit-sync {hermit:.2}  ({:+.1}%, processes {:+.1}..{:+.1}%)",
                (ratio - 1.0) * 100.0,
                (lo - 1.0) * 100.0,
                (hi - 1.0) * 100.0
            );
        }
    }

    /// One measurement of `arm` (a mode, or `a/a`): prints hermit-sync's and
    /// the other lock's ns/op, each the median of [`CHILD_ROUNDS`]
    /// alternations.
    fn child(arm: &str) {
        // The mode is fixed before anything could take a lock (see set_mode).
        let mode = (arm != "a/a").then(|| arm.parse::<LockMode>().unwrap_or_else(|e| panic!("{e}")));
        if let Some(mode) = mode {
            pvlock::set_mode(mode).expect("a fresh process");
        }
        pvlock::host::install();
        pvlock::host::bind_cpu(0);
        let hermit = Page::new(hermit_sync::RawTicketMutex::INIT);
        match mode {
            Some(_) => alternate(&hermit.0, &Page::new(pvlock::RawModalLock::new()).0),
            None => alternate(&hermit.0, &Page::new(HermitAgain::INIT).0),
        }
    }

    /// Times `a` and `b` alternately and prints both medians.
    fn alternate<A: RawMutex, B: RawMutex>(a: &A, b: &B) {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..CHILD_ROUNDS {
            if i % 2 == 0 {
                x.push(ns_per_op(a));
                y.push(ns_per_op(b));
            } else {
                y.push(ns_per_op(b));
                x.push(ns_per_op(a));
            }
        }
        println!("{} {}", median(x), median(y));
    }
}
