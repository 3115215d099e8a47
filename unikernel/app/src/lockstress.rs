//! `mode=lockstress`: hammers the kernel's locks from many threads, then checks
//! that what they protect is intact.
//!
//! Each round a thread allocates and frees blocks of many sizes (the kernel
//! allocator sits behind an `InterruptTicketMutex`), updates a counter under a
//! `std::sync::Mutex` (futex waits: kernel wait queues behind ticket locks), and
//! every few rounds spawns and joins a helper thread (scheduler locks).

use std::sync::{Arc, Mutex};
use std::thread;

/// What the run did, for the summary line and the checks.
pub struct Summary {
    pub counter: u64,
    pub allocations: u64,
    pub spawned: u64,
}

struct Shared {
    counter: u64,
    /// XOR of every (thread, round) token added under the lock.
    tokens: u64,
}

pub fn run(threads: usize, rounds: usize) -> Result<Summary, String> {
    if threads == 0 || rounds == 0 {
        return Err("lockstress needs threads >= 1 and rounds >= 1".into());
    }
    let shared = Arc::new(Mutex::new(Shared { counter: 0, tokens: 0 }));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || worker(t as u64, rounds as u64, &shared))
        })
        .collect();
    let mut allocations = 0;
    let mut spawned = 0;
    for worker in workers {
        let (a, s) = worker.join().map_err(|_| "a lockstress thread panicked".to_string())??;
        allocations += a;
        spawned += s;
    }
    let shared = shared.lock().map_err(|_| "lockstress mutex poisoned".to_string())?;
    let expected_tokens = (0..threads as u64)
        .flat_map(|t| (0..rounds as u64).map(move |r| token(t, r)))
        .fold(0, |acc, x| acc ^ x);
    let expected_counter = (threads * rounds) as u64;
    if shared.counter != expected_counter || shared.tokens != expected_tokens {
        return Err(format!(
            "protected data damaged: counter {} (expected {expected_counter}), tokens {:#x} (expected {expected_tokens:#x})",
            shared.counter, shared.tokens
        ));
    }
    Ok(Summary { counter: shared.counter, allocations, spawned })
}

fn worker(t: u64, rounds: u64, shared: &Mutex<Shared>) -> Result<(u64, u64), String> {
    let mut allocations = 0;
    let mut spawned = 0;
    for round in 0..rounds {
        // Sizes from 16 B to 64 KiB, so every allocator size class is hit.
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        for i in 0..16u64 {
            let size = 16usize << ((t + round + i) % 13);
            let fill = (t * 31 + round * 7 + i) as u8;
            blocks.push(vec![fill; size]);
            allocations += 1;
        }
        for (i, block) in blocks.iter().enumerate() {
            let fill = (t * 31 + round * 7 + i as u64) as u8;
            if block.iter().any(|&b| b != fill) {
                return Err(format!("thread {t} round {round}: block {i} was overwritten"));
            }
        }
        drop(blocks);
        {
            let mut shared = shared.lock().map_err(|_| "lockstress mutex poisoned".to_string())?;
            shared.counter += 1;
            shared.tokens ^= token(t, round);
        }
        if round % 8 == 0 {
            let child = thread::spawn(move || (0..256u64).map(|x| x * t).sum::<u64>());
            child.join().map_err(|_| format!("thread {t}: child panicked"))?;
            spawned += 1;
        }
    }
    Ok((allocations, spawned))
}

/// A distinct value per (thread, round): the XOR over all of them is only right
/// if every update happened exactly once.
fn token(t: u64, round: u64) -> u64 {
    (t << 32 | round).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}
