//! Regions against bump allocators and per-object allocation.
//!
//! - `bump/*`: bump allocation of 16–256 B values, `Region` vs `bumpalo`.
//! - `tree_build/*`, `tree_drop/*`: build a complete binary tree of about a
//!   million nodes, then drop it: in a region (dropped whole) vs one
//!   allocation per node through the system allocator, mimalloc and homing (called
//!   directly through `GlobalAlloc`, since a binary has one global allocator)
//!   and freed one by one.
//! - `tree_handoff/*`: hand a built tree to another thread, which drops it:
//!   an `Iso` (one pointer moves) vs a tree of `Box`es sent whole.
//!
//! Run with `cargo bench -p homing-bench --bench regions`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::ptr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use homing_regions::{Family, Iso, Region};
use mimalloc::MiMalloc;

/// Values bump-allocated per iteration of `bump/*`: enough to cross several
/// chunks, few enough that one iteration stays in the caches' reach.
const BUMP_VALUES: usize = 10_000;

/// Depth of the benchmark trees: 2^20 - 1 = 1 048 575 nodes.
const TREE_DEPTH: u32 = 20;

/// A node of the region tree: children are references into the region.
struct Node<'r> {
    value: u64,
    left: Option<&'r Node<'r>>,
    right: Option<&'r Node<'r>>,
}

fn build_in<'r>(region: &'r Region, depth: u32, value: u64) -> &'r Node<'r> {
    let (left, right) = if depth > 1 {
        (
            Some(build_in(region, depth - 1, 2 * value)),
            Some(build_in(region, depth - 1, 2 * value + 1)),
        )
    } else {
        (None, None)
    };
    region.alloc_no_drop(Node { value, left, right })
}

fn sum(node: &Node<'_>) -> u64 {
    node.value + node.left.map_or(0, sum) + node.right.map_or(0, sum)
}

struct TreeF;
impl Family for TreeF {
    type Of<'r> = &'r Node<'r>;
}

/// A node allocated on its own through a `GlobalAlloc`.
struct RawNode {
    value: u64,
    left: *mut RawNode,
    right: *mut RawNode,
}

fn build_raw<A: GlobalAlloc>(a: &A, depth: u32, value: u64) -> *mut RawNode {
    let (left, right) = if depth > 1 {
        (
            build_raw(a, depth - 1, 2 * value),
            build_raw(a, depth - 1, 2 * value + 1),
        )
    } else {
        (ptr::null_mut(), ptr::null_mut())
    };
    // SAFETY: a non-zero-sized layout.
    let p = unsafe { a.alloc(Layout::new::<RawNode>()) }.cast::<RawNode>();
    assert!(!p.is_null(), "out of memory");
    // SAFETY: fresh memory for one node.
    unsafe { p.write(RawNode { value, left, right }) };
    p
}

/// Frees a tree made by `build_raw` with the same allocator.
///
/// # Safety
///
/// `node` is null or the root of a tree from `build_raw(a, ..)`, used by
/// nobody afterwards.
unsafe fn free_raw<A: GlobalAlloc>(a: &A, node: *mut RawNode) {
    if node.is_null() {
        return;
    }
    // SAFETY: the caller's tree; each node is freed once, after its children.
    unsafe {
        free_raw(a, (*node).left);
        free_raw(a, (*node).right);
        a.dealloc(node.cast(), Layout::new::<RawNode>());
    }
}

/// A tree of `Box`es for the hand-off benchmark.
struct BoxNode {
    value: u64,
    left: Option<Box<BoxNode>>,
    right: Option<Box<BoxNode>>,
}

fn build_box(depth: u32, value: u64) -> Box<BoxNode> {
    let (left, right) = if depth > 1 {
        (
            Some(build_box(depth - 1, 2 * value)),
            Some(build_box(depth - 1, 2 * value + 1)),
        )
    } else {
        (None, None)
    };
    Box::new(BoxNode { value, left, right })
}

macro_rules! bump_sizes {
    ($c:expr, $($bytes:literal),*) => {{
        let mut group = $c.benchmark_group("bump");
        group.throughput(Throughput::Elements(BUMP_VALUES as u64));
        $(
            group.bench_function(BenchmarkId::new("region", $bytes), |b| {
                let mut region = Region::new();
                b.iter(|| {
                    for i in 0..BUMP_VALUES {
                        black_box(region.alloc([i as u8; $bytes]));
                    }
                    region.reset();
                });
            });
            group.bench_function(BenchmarkId::new("bumpalo", $bytes), |b| {
                let mut bump = bumpalo::Bump::new();
                b.iter(|| {
                    for i in 0..BUMP_VALUES {
                        black_box(bump.alloc([i as u8; $bytes]));
                    }
                    bump.reset();
                });
            });
        )*
        group.finish();
    }};
}

fn bump(c: &mut Criterion) {
    bump_sizes!(c, 16, 32, 64, 128, 256);
}

/// Times `build` and `drop` of a tree separately: `f(iters)` returns the
/// total time of the phase being measured.
fn tree(c: &mut Criterion) {
    let nodes = (1u64 << TREE_DEPTH) - 1;
    let expected = nodes * (nodes + 1) / 2;
    for phase in ["tree_build", "tree_drop"] {
        let building = phase == "tree_build";
        let mut group = c.benchmark_group(phase);
        group.sample_size(10);
        group.throughput(Throughput::Elements(nodes));
        group.bench_function("region", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let region = Region::new();
                    let root = build_in(&region, TREE_DEPTH, 1);
                    if building {
                        total += t.elapsed();
                    }
                    assert_eq!(sum(root), expected);
                    let t = Instant::now();
                    drop(region);
                    if !building {
                        total += t.elapsed();
                    }
                }
                total
            });
        });
        raw_tree(&mut group, "system", &System, building, expected);
        raw_tree(&mut group, "mimalloc", &MiMalloc, building, expected);
        raw_tree(&mut group, "homing", &homing::Homing, building, expected);
        group.finish();
    }
}

fn raw_sum(node: *mut RawNode) -> u64 {
    if node.is_null() {
        return 0;
    }
    // SAFETY: a live node of a tree being measured.
    unsafe { (*node).value + raw_sum((*node).left) + raw_sum((*node).right) }
}

fn raw_tree<A: GlobalAlloc>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    a: &A,
    building: bool,
    expected: u64,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let root = build_raw(a, TREE_DEPTH, 1);
                if building {
                    total += t.elapsed();
                }
                assert_eq!(raw_sum(root), expected);
                let t = Instant::now();
                // SAFETY: the tree was built with `a` just above.
                unsafe { free_raw(a, root) };
                if !building {
                    total += t.elapsed();
                }
            }
            total
        });
    });
}

/// Build a tree here (untimed); time sending it to a worker thread that
/// drops it and says so.
fn handoff(c: &mut Criterion) {
    let nodes = (1u64 << TREE_DEPTH) - 1;
    let mut group = c.benchmark_group("tree_handoff");
    group.sample_size(10);
    group.throughput(Throughput::Elements(nodes));

    group.bench_function("iso", |b| {
        let (to_worker, work) = mpsc::channel::<Iso<TreeF>>();
        let (to_main, done) = mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            for iso in work {
                drop(iso);
                to_main.send(()).unwrap();
            }
        });
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let iso = Iso::<TreeF>::new(|region| build_in(region, TREE_DEPTH, 1));
                let t = Instant::now();
                to_worker.send(iso).unwrap();
                done.recv().unwrap();
                total += t.elapsed();
            }
            total
        });
        drop(to_worker);
        worker.join().unwrap();
    });

    group.bench_function("box", |b| {
        let (to_worker, work) = mpsc::channel::<Box<BoxNode>>();
        let (to_main, done) = mpsc::channel::<u64>();
        let worker = std::thread::spawn(move || {
            for tree in work {
                let v = tree.value;
                drop(tree);
                to_main.send(v).unwrap();
            }
        });
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let tree = build_box(TREE_DEPTH, 1);
                assert_eq!(tree.left.as_ref().map(|l| l.value), Some(2));
                assert_eq!(tree.right.as_ref().map(|r| r.value), Some(3));
                let t = Instant::now();
                to_worker.send(tree).unwrap();
                done.recv().unwrap();
                total += t.elapsed();
            }
            total
        });
        drop(to_worker);
        worker.join().unwrap();
    });
    group.finish();
}

criterion_group!(benches, bump, tree, handoff);
criterion_main!(benches);
