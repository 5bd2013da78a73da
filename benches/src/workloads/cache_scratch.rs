//! `cache-scratch`: passive false sharing.
//!
//! Modelled on Hoard's cache-scratch test: the main thread allocates one
//! small block per worker, back to back, so they likely share a cache line,
//! and hands one to each of `threads` workers. Each worker frees the block it
//! was given, then repeatedly allocates a block of the same size, writes
//! every byte of it [`WRITES_PER_BLOCK`] times, and frees it. An allocator
//! that hands the freed block (or its cache-line neighbours) to the worker
//! that freed it makes the workers write to one cache line from different
//! cores, and the line bounces between them; one that sends a freed block
//! home to its owning heap does not.
//!
//! Parameters: `threads`, `min_size`/`max_size` (each worker uses one size
//! drawn from the range; the defaults pin it to 8 bytes), `work` =
//! allocate-write-free cycles in total.
//! Checksum: the bytes written.

use std::thread;

use super::{share, Block, Params, Workload, DEFAULT_SEED};
use crate::rng::Rng;

/// Passes of writes over each block before it is freed: the writes, not the
/// allocator calls, dominate, which is what exposes false sharing.
pub const WRITES_PER_BLOCK: u64 = 50;

/// The registry entry: name, summary and the defaults of a full run on a
/// 2-core machine.
pub const WORKLOAD: Workload = Workload {
    name: "cache-scratch",
    summary: "workers free a main-thread block, then allocate and write their own (false sharing)",
    run,
    defaults: Params {
        threads: 2,
        min_size: 8,
        max_size: 8,
        work: 12_000_000,
        seed: DEFAULT_SEED,
    },
    oversubscribed: false,
};

/// Runs the workload; see the module documentation.
pub fn run(p: &Params) -> u64 {
    let mut rng = Rng::for_thread(p.seed, 0);
    let size = rng.range_inclusive(p.min_size, p.max_size);
    let given: Vec<Block> = (0..p.threads).map(|_| Block::new(size)).collect();
    thread::scope(|s| {
        let workers: Vec<_> = given
            .into_iter()
            .enumerate()
            .map(|(i, block)| {
                let cycles = share(p.work, p.threads, i);
                s.spawn(move || scratch(block, cycles))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("cache-scratch worker panicked"))
            .sum()
    })
}

/// One worker: frees the block it was given, then `cycles` times allocates a
/// block of the same size, writes it and frees it; returns bytes written.
fn scratch(given: Block, cycles: u64) -> u64 {
    let size = given.size();
    drop(given);
    for _ in 0..cycles {
        let mut block = Block::new(size);
        for pass in 0..WRITES_PER_BLOCK {
            block.scribble(pass as u8);
        }
    }
    cycles * WRITES_PER_BLOCK * size as u64
}
