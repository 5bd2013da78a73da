//! `larson`: a server whose worker threads keep replacing objects and are
//! themselves replaced by new threads that inherit the objects.
//!
//! Modelled on Larson and Krishnan's server benchmark: each of `threads`
//! lineages owns [`SLOTS_PER_THREAD`] slots, filled by the main thread
//! before the lineages start (so the first frees are remote). A thread of a
//! lineage replaces [`REPLACEMENTS_PER_LIFE`] random slots with new blocks of
//! random size in `min_size..=max_size`, freeing the old block, and then
//! starts its successor, hands it the slots and exits. Successors free
//! blocks their dead predecessors allocated, so the allocator has to deal
//! with memory of exited threads. The last thread of each lineage frees its
//! slots.
//!
//! Parameters: `threads` (concurrent lineages), `min_size`/`max_size`,
//! `work` = replacements in total (rounded up to whole thread lives).
//! Checksum: the bytes requested, including the initial fill.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, Scope};

use super::{Block, Params, Workload, DEFAULT_SEED};
use crate::rng::Rng;

/// Live blocks per lineage: with the default sizes about 0.5 MB per thread,
/// more than a thread cache but far less than memory.
pub const SLOTS_PER_THREAD: usize = 1_000;

/// Replacements one thread makes before it hands over to its successor: ten
/// times its slot count, so most of a thread's life is steady state, and
/// short enough that threads come and go many times per run.
pub const REPLACEMENTS_PER_LIFE: u64 = 10_000;

/// The registry entry: name, summary and the defaults of a full run on a
/// 2-core machine.
pub const WORKLOAD: Workload = Workload {
    name: "larson",
    summary: "server threads replace random objects, then hand them to a successor thread",
    run,
    defaults: Params {
        threads: 2,
        min_size: 8,
        max_size: 1_000,
        work: 18_000_000,
        seed: DEFAULT_SEED,
    },
    oversubscribed: true,
};

/// What a lineage passes from one thread to the next.
struct Lineage {
    slots: Vec<Block>,
    rng: Rng,
}

/// Runs the workload; see the module documentation.
pub fn run(p: &Params) -> u64 {
    let lives_per_lineage = p
        .work
        .div_ceil(p.threads as u64 * REPLACEMENTS_PER_LIFE)
        .max(1);
    let bytes = AtomicU64::new(0);
    let lineages: Vec<Lineage> = (0..p.threads)
        .map(|i| {
            let mut rng = Rng::for_thread(p.seed, i as u64);
            let slots = (0..SLOTS_PER_THREAD)
                .map(|_| {
                    let size = rng.range_inclusive(p.min_size, p.max_size);
                    bytes.fetch_add(size as u64, Ordering::Relaxed);
                    Block::new(size)
                })
                .collect();
            Lineage { slots, rng }
        })
        .collect();
    thread::scope(|s| {
        for lineage in lineages {
            let bytes = &bytes;
            s.spawn(move || live(s, p, lineage, lives_per_lineage, bytes));
        }
    });
    // Relaxed: `thread::scope` joined every thread, which orders all their
    // additions before this load.
    bytes.load(Ordering::Relaxed)
}

/// One thread's life: replaces slots, then starts the successor (if
/// `lives_left > 1`) with the slots, or frees them.
fn live<'scope>(
    s: &'scope Scope<'scope, '_>,
    p: &'scope Params,
    mut lineage: Lineage,
    lives_left: u64,
    bytes: &'scope AtomicU64,
) {
    let mut mine = 0u64;
    for _ in 0..REPLACEMENTS_PER_LIFE {
        let slot = lineage.rng.index(lineage.slots.len());
        let size = lineage.rng.range_inclusive(p.min_size, p.max_size);
        mine += size as u64;
        // The assignment drops (frees) the old block after the new one is
        // allocated, as a server replacing an object would.
        lineage.slots[slot] = Block::new(size);
    }
    // Relaxed: a plain counter, read after the scope joins every thread.
    bytes.fetch_add(mine, Ordering::Relaxed);
    if lives_left > 1 {
        s.spawn(move || live(s, p, lineage, lives_left - 1, bytes));
    }
}
