//! Uncontended lock + unlock: pvlock's ticket lock against the ticket lock Hermit
//! 0.11 had (crates.io hermit-sync's `RawTicketMutex`), measured in one run,
//! arms interleaved, median of rounds.
//!
//!   cargo run --release -p pvlock --example uncontended
//!
//! pv off and pv on share the uncontended path (the slow path only starts after
//! the spin threshold), so "pv on" differs from "pv off" only by the registered
//! platform table; both are measured anyway.

// Under `--cfg loom` the lock has no lock_api impl and nothing here applies.
#[cfg(loom)]
fn main() {}

#[cfg(not(loom))]
fn main() {
    bench::main();
}

#[cfg(not(loom))]
mod bench {
    use std::hint::black_box;
    use std::time::Instant;

    use lock_api::RawMutex;

    const OPS: u32 = 2_000_000;
    const ROUNDS: usize = 15;

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

    pub fn main() {
        let hermit = hermit_sync::RawTicketMutex::INIT;
        let pv = pvlock::RawPvTicketLock::new();
        let (mut base, mut off, mut on) = (Vec::new(), Vec::new(), Vec::new());
        pvlock::host::install();
        pvlock::host::bind_cpu(0);
        for _ in 0..ROUNDS {
            base.push(ns_per_op(&hermit));
            pvlock::set_enabled(false);
            off.push(ns_per_op(&pv));
            pvlock::set_enabled(true);
            on.push(ns_per_op(&pv));
        }
        let (base, off, on) = (median(base), median(off), median(on));
        println!("uncontended lock+unlock, median of {ROUNDS} rounds of {OPS} ops (ns/op):");
        println!("  hermit-sync 0.1 RawTicketMutex  {base:.2}  (baseline)");
        println!(
            "  pvlock, pv off                  {off:.2}  ({:+.1}%)",
            (off / base - 1.0) * 100.0
        );
        println!(
            "  pvlock, pv on                   {on:.2}  ({:+.1}%)",
            (on / base - 1.0) * 100.0
        );
    }
}
