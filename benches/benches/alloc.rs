//! Single-thread alloc + free pairs: homing against the peers.
//!
//! `cargo bench -p homing-bench --bench alloc`
//!
//! Every allocator is called through its `GlobalAlloc` impl directly (one
//! bench binary has one global allocator, but any `GlobalAlloc` can be
//! called), so all six run in the same process, in the same order of
//! sizes, each over the same pattern. Sizes: 16 B, 64 B, 256 B, 1 KiB,
//! 4 KiB, and a mixed pattern (a window of live blocks of varying sizes,
//! freed FIFO, so free lists are actually exercised).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Pairs per measured iteration.
const PAIRS: usize = 1000;
/// Live blocks in the mixed pattern's window.
const WINDOW: usize = 64;
/// The mixed pattern's sizes (cycled): small-object heavy, as in real programs.
const MIXED: [usize; 8] = [16, 24, 48, 64, 100, 256, 512, 1000];

fn pairs<A: GlobalAlloc>(a: &A, layout: Layout) {
    for _ in 0..PAIRS {
        // SAFETY: a valid non-zero layout; freed right away with it.
        unsafe {
            let p = a.alloc(black_box(layout));
            black_box(p);
            a.dealloc(p, layout);
        }
    }
}

fn mixed<A: GlobalAlloc>(a: &A, window: &mut [(*mut u8, Layout)]) {
    for i in 0..PAIRS {
        let layout = Layout::from_size_align(MIXED[i % MIXED.len()], 8).unwrap();
        let slot = &mut window[i % WINDOW];
        // SAFETY: each slot holds a live block of its layout (or null).
        unsafe {
            if !slot.0.is_null() {
                a.dealloc(slot.0, slot.1);
            }
            let p = a.alloc(layout);
            p.write(i as u8);
            *slot = (black_box(p), layout);
        }
    }
}

fn run<A: GlobalAlloc>(c: &mut Criterion, name: &str, a: &A) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(PAIRS as u64));
    for size in [16usize, 64, 256, 1024, 4096] {
        let layout = Layout::from_size_align(size, 8).unwrap();
        group.bench_with_input(BenchmarkId::new("pair", size), &layout, |b, &l| {
            b.iter(|| pairs(a, l))
        });
    }
    let mut window = vec![(std::ptr::null_mut(), Layout::new::<u8>()); WINDOW];
    group.bench_function("mixed", |b| b.iter(|| mixed(a, &mut window)));
    for (p, l) in window {
        if !p.is_null() {
            // SAFETY: live blocks of these layouts.
            unsafe { a.dealloc(p, l) };
        }
    }
    group.finish();
}

fn alloc(c: &mut Criterion) {
    run(c, "homing", &homing::Homing);
    run(c, "mimalloc", &mimalloc::MiMalloc);
    run(c, "jemalloc", &tikv_jemallocator::Jemalloc);
    run(c, "snmalloc", &snmalloc_rs::SnMalloc);
    run(c, "rpmalloc", &rpmalloc::RpMalloc);
    run(c, "system", &System);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1))
        .sample_size(20);
    targets = alloc
}
criterion_main!(benches);
