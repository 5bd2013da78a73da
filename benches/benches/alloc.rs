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

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

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

/// The allocators, each through its `GlobalAlloc` impl.
struct Peers {
    homing: homing::Homing,
    mimalloc: mimalloc::MiMalloc,
    jemalloc: tikv_jemallocator::Jemalloc,
    snmalloc: snmalloc_rs::SnMalloc,
    rpmalloc: rpmalloc::RpMalloc,
    system: System,
}

/// Runs `f` for every allocator, under `group`, in a rotating order: the
/// group index shifts who goes first, so no allocator always runs first
/// (or last) on a noisy machine.
macro_rules! each_peer {
    ($peers:expr, $rotate:expr, |$name:ident, $a:ident| $body:expr) => {{
        let p = &$peers;
        for k in 0..6 {
            match (k + $rotate) % 6 {
                0 => {
                    let ($name, $a) = ("homing", &p.homing);
                    $body
                }
                1 => {
                    let ($name, $a) = ("mimalloc", &p.mimalloc);
                    $body
                }
                2 => {
                    let ($name, $a) = ("jemalloc", &p.jemalloc);
                    $body
                }
                3 => {
                    let ($name, $a) = ("snmalloc", &p.snmalloc);
                    $body
                }
                4 => {
                    let ($name, $a) = ("rpmalloc", &p.rpmalloc);
                    $body
                }
                _ => {
                    let ($name, $a) = ("system", &p.system);
                    $body
                }
            }
        }
    }};
}

fn alloc(c: &mut Criterion) {
    let peers = Peers {
        homing: homing::Homing,
        mimalloc: mimalloc::MiMalloc,
        jemalloc: tikv_jemallocator::Jemalloc,
        snmalloc: snmalloc_rs::SnMalloc,
        rpmalloc: rpmalloc::RpMalloc,
        system: System,
    };
    for (rotate, size) in [16usize, 64, 256, 1024, 4096].into_iter().enumerate() {
        let mut group = c.benchmark_group(format!("pair/{size}"));
        group.throughput(Throughput::Elements(PAIRS as u64));
        let layout = Layout::from_size_align(size, 8).unwrap();
        each_peer!(peers, rotate, |name, a| {
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| pairs(a, layout))
            });
        });
        group.finish();
    }
    let mut group = c.benchmark_group("mixed");
    group.throughput(Throughput::Elements(PAIRS as u64));
    each_peer!(peers, 5, |name, a| {
        let mut window = vec![(std::ptr::null_mut(), Layout::new::<u8>()); WINDOW];
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| mixed(a, &mut window))
        });
        for (p, l) in window {
            if !p.is_null() {
                // SAFETY: live blocks of these layouts.
                unsafe { a.dealloc(p, l) };
            }
        }
    });
    group.finish();
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
