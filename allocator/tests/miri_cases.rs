//! Small cases for Miri, one per pattern it has rejected in homing, kept
//! as regression cases (they pass natively; run each alone under Miri,
//! since Miri stops at the first undefined behaviour it finds):
//!
//! ```text
//! cargo +nightly miri test -p homing --test miri_cases -- <name>
//! ```
//!
//! - `first_allocation`: the very first allocation takes a new page
//!   (`Heap::new_page` holds a `&mut Segment` while reading the segment
//!   through the raw pointer, and derives the page pointer from it).
//! - `narrow_boxes_freed_here_and_there`: blocks whose `Box` covers fewer
//!   bytes than the free list / inbox link (and the outbox hint) writes.
//! - `slow_path_with_pending_outbox`: the allocation slow path posts the
//!   outbox through the raw heap pointer while it holds `&mut Heap`.
//! - `first_class_heap_fed_by_another_thread`: another thread posts into a
//!   heap's inbox while its owner holds `&mut Heap`.
//! - `stats_while_another_thread_allocates`: `stats()` reads every heap
//!   while owners write theirs.
//! - `impossible_size_is_null`: the Miri stand-in for `mmap` must say no,
//!   not exhaust Miri.
//!
//! No statistics are checked here, so the tests may run in parallel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

/// Allocations a slow path needs at least (more than a page's first
/// carving of 16-byte blocks).
const FILL: usize = if cfg!(miri) { 300 } else { 3_000 };

#[test]
fn first_allocation() {
    let b = Box::new(7u64);
    assert_eq!(*b, 7);
}

#[test]
fn narrow_boxes_freed_here_and_there() {
    // Freed here: the local free list link is 8 bytes.
    for i in 0..FILL {
        let b = Box::new(i as u8);
        assert_eq!(*b, i as u8);
    }
    // Freed by another thread: the inbox link is 8 bytes, the outbox hint
    // another 8.
    let boxes: Vec<Box<u8>> = (0..FILL).map(|i| Box::new(i as u8)).collect();
    thread::spawn(move || {
        for (i, b) in boxes.into_iter().enumerate() {
            assert_eq!(*b, i as u8);
        }
    })
    .join()
    .unwrap();
    homing::collect();
}

#[test]
fn slow_path_with_pending_outbox() {
    // Blocks of another thread, freed here: they wait in our outbox (fewer
    // than the budget) ...
    let theirs: Vec<Box<[u64; 4]>> =
        thread::spawn(|| (0..10u64).map(|i| Box::new([i; 4])).collect())
            .join()
            .unwrap();
    drop(theirs);
    // ... when our allocations run out of their page.
    let ours: Vec<Box<[u64; 2]>> = (0..FILL as u64).map(|i| Box::new([i; 2])).collect();
    assert!(ours.iter().enumerate().all(|(i, b)| b[1] == i as u64));
    drop(ours);
    homing::collect();
}

#[test]
fn first_class_heap_fed_by_another_thread() {
    let heap = homing::Heap::new();
    let (tx, rx) = mpsc::channel::<usize>();
    let freer = thread::spawn(move || {
        for addr in rx {
            // SAFETY: blocks of the heap, handed to us, freed once.
            unsafe { homing::free(addr as *mut u8) };
        }
    });
    let layout = std::alloc::Layout::from_size_align(48, 16).unwrap();
    for _ in 0..FILL {
        let p = heap.alloc(layout).unwrap();
        tx.send(p.as_ptr() as usize).unwrap();
    }
    drop(tx);
    freer.join().unwrap();
    heap.collect();
    heap.destroy();
}

#[test]
fn stats_while_another_thread_allocates() {
    static STOP: AtomicBool = AtomicBool::new(false);
    let worker = thread::spawn(|| {
        let mut v = Vec::new();
        for i in 0..FILL {
            v.push(Box::new(i));
            if v.len() > 50 {
                v.clear();
            }
        }
        STOP.store(true, Ordering::Release);
    });
    loop {
        let s = homing::stats();
        assert!(s.heaps >= 1);
        if STOP.load(Ordering::Acquire) {
            break;
        }
        thread::yield_now();
    }
    worker.join().unwrap();
}

#[test]
fn impossible_size_is_null() {
    assert!(homing::alloc(isize::MAX as usize / 2, 16).is_null());
}
