//! `mstress`: rounds of short-lived threads that allocate, pass a share of
//! their blocks to later threads through a shared array, and exit.
//!
//! Modelled on mimalloc-bench's mstress: the run has [`ROUNDS`] rounds; each
//! starts `threads` threads and waits for them. A thread allocates blocks of
//! random size in `min_size..=max_size` (one in [`LARGE_ONE_IN`] is
//! [`LARGE_FACTOR`] times larger) and keeps them in a local list; after each
//! allocation it may free a random block of its own ([`FREE_PERCENT`]) or
//! swap one into a random slot of the shared transfer array
//! ([`TRANSFER_PERCENT`]), freeing whatever block was there, which another
//! thread, often one of an earlier round that has exited, allocated; past
//! [`LOCAL_MAX`] local blocks it also frees one. At exit it frees its
//! remaining local blocks. Blocks left in the transfer array
//! survive their thread; later threads free them, and the main thread frees
//! the last ones.
//!
//! Parameters: `threads` (per round), `min_size`/`max_size`, `work` =
//! allocations in total over all rounds and threads.
//! Checksum: the bytes requested.

use std::sync::Mutex;
use std::thread;

use super::{share, Block, Params, Workload, DEFAULT_SEED};
use crate::rng::Rng;

/// Rounds of threads per run: each round's threads start and exit, so the
/// allocator sees `ROUNDS × threads` thread lifetimes.
pub const ROUNDS: u64 = 20;

/// Slots of the shared transfer array: a few thousand blocks outlive their
/// threads at any time.
pub const TRANSFER_SLOTS: usize = 4_096;

/// Most blocks a thread keeps: past this, each allocation also frees a
/// random local block, so the live set stays bounded (about
/// `threads × LOCAL_MAX + TRANSFER_SLOTS` blocks) however long the run.
pub const LOCAL_MAX: usize = 2_000;

/// Chance, in percent, that an allocation is followed by freeing a random
/// local block.
pub const FREE_PERCENT: u64 = 40;

/// Chance, in percent, that an allocation is followed by moving a random
/// local block into the transfer array.
pub const TRANSFER_PERCENT: u64 = 25;

/// One allocation in this many is a large one.
pub const LARGE_ONE_IN: u64 = 100;

/// How much larger a large allocation is than the drawn size.
pub const LARGE_FACTOR: usize = 16;

/// The registry entry: name, summary and the defaults of a full run on a
/// 2-core machine.
pub const WORKLOAD: Workload = Workload {
    name: "mstress",
    summary: "rounds of short-lived threads pass blocks to later threads and exit",
    run,
    defaults: Params {
        threads: 2,
        min_size: 16,
        max_size: 1_024,
        work: 24_000_000,
        seed: DEFAULT_SEED,
    },
    oversubscribed: true,
};

/// Runs the workload; see the module documentation.
pub fn run(p: &Params) -> u64 {
    // One lock per slot: swaps on different slots never contend, and a
    // lock's fast path is one atomic, like the exchange mstress uses.
    let transfer: Vec<Mutex<Option<Block>>> =
        (0..TRANSFER_SLOTS).map(|_| Mutex::new(None)).collect();
    let per_round = share_rounds(p.work);
    let mut bytes = 0;
    for (round, &round_work) in per_round.iter().enumerate() {
        bytes += thread::scope(|s| {
            let workers: Vec<_> = (0..p.threads)
                .map(|t| {
                    let count = share(round_work, p.threads, t);
                    let index = (round * p.threads + t) as u64;
                    let transfer = &transfer;
                    s.spawn(move || worker(p, index, count, transfer))
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("mstress worker panicked"))
                .sum::<u64>()
        });
    }
    // The survivors are freed here, by the main thread, with `transfer`.
    drop(transfer);
    bytes
}

/// The work of each round: `work` split over [`ROUNDS`].
fn share_rounds(work: u64) -> Vec<u64> {
    (0..ROUNDS as usize)
        .map(|r| share(work, ROUNDS as usize, r))
        .collect()
}

/// One thread of one round; returns the bytes it requested.
fn worker(p: &Params, index: u64, count: u64, transfer: &[Mutex<Option<Block>>]) -> u64 {
    let mut rng = Rng::for_thread(p.seed, index);
    let mut local: Vec<Block> = Vec::new();
    let mut bytes = 0u64;
    for _ in 0..count {
        let mut size = rng.range_inclusive(p.min_size, p.max_size);
        if rng.below(LARGE_ONE_IN) == 0 {
            size *= LARGE_FACTOR;
        }
        bytes += size as u64;
        local.push(Block::new(size));
        let roll = rng.below(100);
        if roll < FREE_PERCENT {
            let victim = rng.index(local.len());
            drop(local.swap_remove(victim));
        } else if roll < FREE_PERCENT + TRANSFER_PERCENT {
            let moving = local.swap_remove(rng.index(local.len()));
            let slot = &transfer[rng.index(transfer.len())];
            let previous = slot
                .lock()
                .expect("no thread panics while holding a slot")
                .replace(moving);
            // Freed outside the lock: the block usually belongs to another
            // thread, often one that has exited.
            drop(previous);
        }
        if local.len() > LOCAL_MAX {
            let victim = rng.index(local.len());
            drop(local.swap_remove(victim));
        }
    }
    bytes
}
