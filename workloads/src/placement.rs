//! Keeping every repetition's threads where the first one's were.
//!
//! Hermit places each new thread on the next core of one global round-robin
//! counter and never migrates it. A repetition that spawns a number of threads
//! that is not a multiple of the core count therefore starts the next one on a
//! different core, and the same build lands its threads differently: on 2
//! vCPUs the kernbench-like (8 job slots, 16 compile threads and the reporter:
//! 25 spawns) alternated 0.9 s and 1.4 s from one repetition to the next, in
//! every lock mode, while 24 or 22 spawns a repetition gave steady times.
//! Padding each repetition to a multiple of the core count with threads that do
//! nothing, before the next one, makes every repetition start where the first
//! did (the first is left as it was, so single-run cells keep their placement). Outside the timed
//! work; on a host that migrates threads (Linux) it changes nothing.

use std::thread;

/// Spawns and joins the threads that bring `spawns_per_rep` (the threads a
/// repetition spawned) up to a multiple of the available cores. Call it
/// between repetitions; returns how many it spawned.
pub fn align(spawns_per_rep: usize) -> usize {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let pad = padding(spawns_per_rep, cores);
    for _ in 0..pad {
        // A failed spawn only leaves the placement as it was.
        if let Ok(handle) = thread::Builder::new().stack_size(16 * 1024).spawn(|| {}) {
            let _ = handle.join();
        }
    }
    pad
}

/// Threads that bring `spawns` up to a multiple of `cores`.
fn padding(spawns: usize, cores: usize) -> usize {
    let cores = cores.max(1);
    (cores - spawns % cores) % cores
}

#[cfg(test)]
mod tests {
    use super::padding;

    #[test]
    fn pads_to_a_multiple_of_the_cores() {
        assert_eq!(padding(25, 2), 1);
        assert_eq!(padding(24, 2), 0);
        assert_eq!(padding(25, 4), 3);
        assert_eq!(padding(3, 1), 0);
        assert_eq!(padding(0, 4), 0);
        for spawns in 0..50 {
            for cores in 1..9 {
                assert_eq!((spawns + padding(spawns, cores)) % cores, 0);
                assert!(padding(spawns, cores) < cores);
            }
        }
    }
}
