//! `Shared<T>` (biased reference counting) against `std::sync::Arc`:
//! clone + drop pairs on the owner thread, and on a foreign thread.
//!
//! `cargo bench -p homing-bench --bench shared`
//!
//! Owner: the bench thread made the object, so a `Shared` clone and drop
//! are plain increments; `Arc` pays two atomic read-modify-writes. Foreign:
//! the object was made by a helper thread (alive, parked) and the bench
//! thread counts on the shared atomic, as `Arc` always does. Each measured
//! iteration is [`PAIRS`] clone + drop pairs; the two contenders alternate
//! within each group.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::mpsc;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use homing_deferred::Shared;

/// Clone + drop pairs per measured iteration.
const PAIRS: u64 = 1000;

fn shared_pairs<T>(s: &Shared<T>) {
    for _ in 0..PAIRS {
        let c = black_box(s.clone());
        drop(c);
    }
}

fn arc_pairs<T>(a: &Arc<T>) {
    for _ in 0..PAIRS {
        let c = black_box(Arc::clone(a));
        drop(c);
    }
}

fn owner(c: &mut Criterion) {
    let mut group = c.benchmark_group("shared/owner");
    group.throughput(Throughput::Elements(PAIRS));
    let s = Shared::new(vec![1u64, 2, 3]);
    let a = Arc::new(vec![1u64, 2, 3]);
    assert!(Shared::is_biased_here(&s));
    for round in 0..2 {
        group.bench_function(format!("Shared/{round}"), |b| b.iter(|| shared_pairs(&s)));
        group.bench_function(format!("Arc/{round}"), |b| b.iter(|| arc_pairs(&a)));
    }
    group.finish();
}

fn foreign(c: &mut Criterion) {
    let mut group = c.benchmark_group("shared/foreign");
    group.throughput(Throughput::Elements(PAIRS));
    // The owner lives on a helper thread that stays alive (parked on a
    // channel) for the whole group.
    let (give, take) = mpsc::channel();
    let (done, wait) = mpsc::channel::<()>();
    let owner = std::thread::spawn(move || {
        let s = Shared::new(vec![1u64, 2, 3]);
        give.send(s.clone()).unwrap();
        let _ = wait.recv();
        drop(s);
        homing_deferred::collect();
    });
    let s: Shared<Vec<u64>> = take.recv().unwrap();
    let a = Arc::new(vec![1u64, 2, 3]);
    assert!(!Shared::is_biased_here(&s));
    for round in 0..2 {
        group.bench_function(format!("Shared/{round}"), |b| b.iter(|| shared_pairs(&s)));
        group.bench_function(format!("Arc/{round}"), |b| b.iter(|| arc_pairs(&a)));
    }
    group.finish();
    drop(s);
    done.send(()).unwrap();
    owner.join().unwrap();
}

/// A foreign thread's clone + drop of an object whose counts are merged
/// (after a foreign thread dropped a handle its owner counted): every
/// thread counts on the atomic then, and a drop is a plain `fetch_sub`.
fn foreign_merged(c: &mut Criterion) {
    let mut group = c.benchmark_group("shared/foreign-merged");
    group.throughput(Throughput::Elements(PAIRS));
    let (give, take) = mpsc::channel();
    let (merge, merged) = mpsc::channel::<()>();
    let (ready, is_ready) = mpsc::channel::<()>();
    let (done, wait) = mpsc::channel::<()>();
    let owner = std::thread::spawn(move || {
        let s = Shared::new(vec![1u64, 2, 3]);
        give.send((s.clone(), s.clone())).unwrap();
        merged.recv().unwrap();
        homing_deferred::collect(); // merges: the counts are one now
        ready.send(()).unwrap();
        let _ = wait.recv();
        drop(s);
    });
    let (g1, g2): (Shared<Vec<u64>>, Shared<Vec<u64>>) = take.recv().unwrap();
    drop(g1); // an owner-counted handle dropped here: posted to the owner
    merge.send(()).unwrap();
    is_ready.recv().unwrap();
    let a = Arc::new(vec![1u64, 2, 3]);
    for round in 0..2 {
        group.bench_function(format!("Shared/{round}"), |b| b.iter(|| shared_pairs(&g2)));
        group.bench_function(format!("Arc/{round}"), |b| b.iter(|| arc_pairs(&a)));
    }
    group.finish();
    drop(g2);
    done.send(()).unwrap();
    owner.join().unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(std::time::Duration::from_secs(1))
        .warm_up_time(std::time::Duration::from_millis(300))
        .sample_size(20);
    targets = owner, foreign, foreign_merged
}
criterion_main!(benches);
