//! The Rust twin of `bench/mixed.c`: the same three workloads (same sizes,
//! same random sequence, same counts, same report), calling homing's Rust
//! API (`homing::alloc` / `homing::free`, inlined fast paths) instead of
//! the C `malloc` / `free` of `libhoming.so`. Comparing the two shows what
//! the C ABI costs (see `bench/README.md`).
//!
//! ```sh
//! cargo run --release -p homing-capi --example mixed [pairs|mixed|prodcons] [operations]
//! ```

use std::hint::black_box;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Instant;

/// Default operations of the one-thread pairs workload.
const PAIRS_OPS: u64 = 20_000_000;
/// Default operations per thread of the mixed workload.
const MIXED_OPS: u64 = 10_000_000;
/// Threads of the mixed workload.
const THREADS: u64 = 2;
/// Blocks each mixed thread keeps live.
const WORKING_SET: usize = 4096;
/// Largest random size (bytes).
const MAX_SIZE: u64 = 1024;
/// Default blocks the producer hands over.
const PRODCONS_OPS: u64 = 5_000_000;
/// Slots of the producer/consumer ring (a power of two).
const RING: usize = 1024;
/// The alignment C's malloc gives.
const ALIGN: usize = 16;
/// The seed `bench/mixed.c` uses.
const SEED: u64 = 88_172_645_463_325_252;
/// The producer's seed in `bench/mixed.c`.
const PRODUCER_SEED: u64 = 1_234_567;
/// Nanoseconds per second.
const NANOS: f64 = 1e9;

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

/// The calling thread's CPU time, in nanoseconds.
fn thread_cpu_ns() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer; the thread CPU clock always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * NANOS + ts.tv_nsec as f64
}

fn report(name: &str, wall: f64, cpu: f64, ops: u64) {
    println!(
        "{name:<9} {:6.1} ns/op wall {:6.1} ns/op cpu",
        wall / ops as f64,
        cpu / ops as f64
    );
}

fn pairs(ops: u64) {
    let mut s = SEED;
    let (w0, c0) = (Instant::now(), thread_cpu_ns());
    for _ in 0..ops {
        let p = allocator::alloc(16 + (xorshift(&mut s) & 63) as usize, ALIGN);
        black_box(p);
        // SAFETY: a live block of ours, freed once.
        unsafe { allocator::free(p) };
    }
    report(
        "pairs",
        w0.elapsed().as_nanos() as f64,
        thread_cpu_ns() - c0,
        ops,
    );
}

/// One mixed thread; returns its CPU time.
fn mixed_thread(seed: u64, ops: u64) -> f64 {
    let c0 = thread_cpu_ns();
    let mut s = SEED + seed;
    let mut slots = vec![ptr::null_mut::<u8>(); WORKING_SET];
    for _ in 0..ops {
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
    thread_cpu_ns() - c0
}

fn mixed(ops: u64) {
    let w0 = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|i| std::thread::spawn(move || mixed_thread(i, ops)))
        .collect();
    let cpu: f64 = threads
        .into_iter()
        .map(|t| t.join().expect("mixed thread"))
        .sum();
    // Wall per operation of one thread; CPU per operation of all.
    report(
        "mixed",
        w0.elapsed().as_nanos() as f64,
        cpu / THREADS as f64,
        ops,
    );
}

fn prodcons(ops: u64) {
    let ring: &'static [AtomicPtr<u8>] = Box::leak(
        (0..RING)
            .map(|_| AtomicPtr::new(ptr::null_mut()))
            .collect::<Box<[_]>>(),
    );
    let w0 = Instant::now();
    let producer = std::thread::spawn(move || {
        let c0 = thread_cpu_ns();
        let mut s = PRODUCER_SEED;
        for i in 0..ops as usize {
            let p = allocator::alloc(random_size(&mut s), ALIGN);
            let slot = &ring[i & (RING - 1)];
            // Acquire: the consumer's Release store of null hands the slot back.
            while !slot.load(Ordering::Acquire).is_null() {
                std::thread::yield_now();
            }
            // Release: publishes the block to the consumer.
            slot.store(p, Ordering::Release);
        }
        thread_cpu_ns() - c0
    });
    let consumer = std::thread::spawn(move || {
        let c0 = thread_cpu_ns();
        for i in 0..ops as usize {
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
        thread_cpu_ns() - c0
    });
    let cpu = producer.join().expect("producer") + consumer.join().expect("consumer");
    report("prodcons", w0.elapsed().as_nanos() as f64, cpu, ops);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let only = args.next().unwrap_or_default();
    let ops: Option<u64> = args.next().and_then(|n| n.parse().ok());
    if only.is_empty() || only == "pairs" {
        pairs(ops.unwrap_or(PAIRS_OPS));
    }
    if only.is_empty() || only == "mixed" {
        mixed(ops.unwrap_or(MIXED_OPS));
    }
    if only.is_empty() || only == "prodcons" {
        prodcons(ops.unwrap_or(PRODCONS_OPS));
    }
}
