//! The Rust twin of `bench/mixed.c`: the same three workloads (same sizes,
//! same random sequence, same counts), calling homing's Rust API
//! (`homing::alloc` / `homing::free`, inlined fast paths) instead of the C
//! `malloc` / `free` of `libhoming.so`. Comparing the two shows what the C
//! ABI costs (see `bench/README.md`).
//!
//! ```sh
//! cargo run --release -p homing-capi --example mixed [pairs|mixed|prodcons]
//! ```

use std::hint::black_box;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Instant;

/// Operations of the one-thread pairs workload.
const PAIRS_OPS: u64 = 20_000_000;
/// Operations per thread of the mixed workload.
const MIXED_OPS: u64 = 10_000_000;
/// Threads of the mixed workload.
const THREADS: usize = 2;
/// Blocks each mixed thread keeps live.
const WORKING_SET: usize = 4096;
/// Largest random size (bytes).
const MAX_SIZE: u64 = 1024;
/// Blocks the producer hands over.
const PRODCONS_OPS: u64 = 5_000_000;
/// Slots of the producer/consumer ring (a power of two).
const RING: usize = 1024;
/// The alignment C's malloc gives.
const ALIGN: usize = 16;
/// The seed `bench/mixed.c` uses.
const SEED: u64 = 88_172_645_463_325_252;
/// The producer's seed in `bench/mixed.c`.
const PRODUCER_SEED: u64 = 1_234_567;

fn xorshift(s: &mut u64) -> u64 {
    let mut x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    x
}

/// Mostly small sizes: three quarters below 128 bytes (as in the C code).
fn random_size(s: &mut u64) -> usize {
    let r = xorshift(s);
    (if r & 3 != 0 {
        1 + (r >> 8) % 128
    } else {
        1 + (r >> 8) % MAX_SIZE
    }) as usize
}

fn pairs() {
    let mut s = SEED;
    let t0 = Instant::now();
    for _ in 0..PAIRS_OPS {
        let p = allocator::alloc(16 + (xorshift(&mut s) & 63) as usize, ALIGN);
        black_box(p);
        // SAFETY: a live block of ours, freed once.
        unsafe { allocator::free(p) };
    }
    println!(
        "pairs     {:6.1} ns/op",
        t0.elapsed().as_nanos() as f64 / PAIRS_OPS as f64
    );
}

fn mixed_thread(seed: u64) {
    let mut s = SEED + seed;
    let mut slots = vec![ptr::null_mut::<u8>(); WORKING_SET];
    for _ in 0..MIXED_OPS {
        let k = (xorshift(&mut s) % WORKING_SET as u64) as usize;
        // SAFETY: null or a live block of ours, replaced at once.
        unsafe { allocator::free(slots[k]) };
        let n = random_size(&mut s);
        let p = allocator::alloc(n, ALIGN);
        // SAFETY: a fresh block of at least one byte.
        unsafe { p.write(n as u8) };
        slots[k] = p;
    }
    for p in slots {
        // SAFETY: live blocks of ours (or null), freed once.
        unsafe { allocator::free(p) };
    }
}

fn mixed() {
    let t0 = Instant::now();
    let threads: Vec<_> = (0..THREADS as u64)
        .map(|i| std::thread::spawn(move || mixed_thread(i)))
        .collect();
    for t in threads {
        t.join().expect("mixed thread");
    }
    println!(
        "mixed     {:6.1} ns/op ({THREADS} threads, per thread)",
        t0.elapsed().as_nanos() as f64 / MIXED_OPS as f64
    );
}

fn prodcons() {
    let ring: &'static [AtomicPtr<u8>] = Box::leak(
        (0..RING)
            .map(|_| AtomicPtr::new(ptr::null_mut()))
            .collect::<Box<[_]>>(),
    );
    let t0 = Instant::now();
    let producer = std::thread::spawn(move || {
        let mut s = PRODUCER_SEED;
        for i in 0..PRODCONS_OPS as usize {
            let p = allocator::alloc(random_size(&mut s), ALIGN);
            let slot = &ring[i & (RING - 1)];
            // Acquire: the consumer's Release store of null hands the slot back.
            while !slot.load(Ordering::Acquire).is_null() {
                std::thread::yield_now();
            }
            // Release: publishes the block to the consumer.
            slot.store(p, Ordering::Release);
        }
    });
    let consumer = std::thread::spawn(move || {
        for i in 0..PRODCONS_OPS as usize {
            let slot = &ring[i & (RING - 1)];
            let p = loop {
                // Acquire: pairs with the producer's Release store.
                let p = slot.load(Ordering::Acquire);
                if !p.is_null() {
                    break p;
                }
                std::thread::yield_now();
            };
            // Release: the producer may reuse the slot.
            slot.store(ptr::null_mut(), Ordering::Release);
            // SAFETY: the producer gave the block up.
            unsafe { allocator::free(p) };
        }
    });
    producer.join().expect("producer");
    consumer.join().expect("consumer");
    println!(
        "prodcons  {:6.1} ns/op (1 pair)",
        t0.elapsed().as_nanos() as f64 / PRODCONS_OPS as f64
    );
}

fn main() {
    let only = std::env::args().nth(1).unwrap_or_default();
    if only.is_empty() || only == "pairs" {
        pairs();
    }
    if only.is_empty() || only == "mixed" {
        mixed();
    }
    if only.is_empty() || only == "prodcons" {
        prodcons();
    }
}
