//! `local`: one thread allocating, freeing and growing, no sharing at all.
//!
//! The fast paths alone: a single thread keeps a window of [`WINDOW`] live
//! blocks and replaces a random one with a new block of random size in
//! `min_size..=max_size` at each step; every [`GROW_EVERY`]-th step instead
//! grows a vector to a random length up to [`GROW_MAX_BYTES`], alternately
//! element by element (`Vec<u64>::push`, amortised doubling through
//! `realloc`) and in small exact steps (`reserve_exact`, one `realloc` per
//! step, like a string builder), and drops it.
//!
//! Parameters: `threads` is ignored (always one thread), `min_size`/
//! `max_size`, `work` = steps. Checksum: the bytes requested plus the final
//! lengths of the grown vectors.

use super::{Block, Params, Workload, DEFAULT_SEED};
use crate::rng::Rng;

/// Live blocks kept by the thread: several pages' worth in each small size
/// class, so frees land in pages other than the current one.
pub const WINDOW: usize = 1_024;

/// One step in this many grows a vector instead of replacing a block.
pub const GROW_EVERY: u64 = 256;

/// Largest grown vector, in bytes: big enough to leave the small size
/// classes, small enough that growing stays a minor share of the run.
pub const GROW_MAX_BYTES: usize = 32 * 1024;

/// Largest step of an exact-growth vector, in bytes: about a hundred
/// `realloc`s per exact growth on average.
pub const GROW_MAX_STEP: usize = 512;

/// The registry entry: name, summary and the defaults of a full run on a
/// 2-core machine.
pub const WORKLOAD: Workload = Workload {
    name: "local",
    summary: "one thread: mixed-size alloc/free and Vec growth through realloc",
    run,
    defaults: Params {
        threads: 1,
        min_size: 16,
        max_size: 4_096,
        work: 30_000_000,
        seed: DEFAULT_SEED,
    },
    oversubscribed: false,
};

/// Runs the workload; see the module documentation.
pub fn run(p: &Params) -> u64 {
    let mut rng = Rng::for_thread(p.seed, 0);
    let mut window: Vec<Option<Block>> = (0..WINDOW).map(|_| None).collect();
    let mut checksum = 0u64;
    for step in 0..p.work {
        if step % GROW_EVERY == GROW_EVERY - 1 {
            let target = rng.range_inclusive(1, GROW_MAX_BYTES);
            checksum += if (step / GROW_EVERY).is_multiple_of(2) {
                grow_by_push(target / std::mem::size_of::<u64>()) as u64
            } else {
                grow_exact(&mut rng, target) as u64
            };
        } else {
            let size = rng.range_inclusive(p.min_size, p.max_size);
            checksum += size as u64;
            let slot = rng.index(WINDOW);
            window[slot] = Some(Block::new(size));
        }
    }
    checksum
}

/// Pushes `len` words one by one; returns the length reached.
fn grow_by_push(len: usize) -> usize {
    let mut v: Vec<u64> = Vec::new();
    for i in 0..len {
        v.push(i as u64);
    }
    std::hint::black_box(&v);
    v.len()
}

/// Grows a byte vector to `target` bytes in random exact steps; returns the
/// length reached.
fn grow_exact(rng: &mut Rng, target: usize) -> usize {
    let mut v: Vec<u8> = Vec::new();
    while v.len() < target {
        let step = rng.range_inclusive(1, GROW_MAX_STEP).min(target - v.len());
        v.reserve_exact(step);
        v.resize(v.len() + step, step as u8);
    }
    std::hint::black_box(&v);
    v.len()
}
