//! A small run of the whole allocator for Miri
//! (`cargo +nightly miri test -p homing --test miri`): homing is the global
//! allocator; blocks are allocated, written, freed here and on other threads
//! (outbox, inbox drain, abandoned heaps), reallocated across classes and
//! into huge blocks, and a first-class heap is used and destroyed. Counts
//! are small so Miri finishes in a minute or two; the same code runs
//! natively as an ordinary test.

use std::alloc::Layout;
use std::sync::mpsc;

use allocator_api2::vec::Vec as HeapVec;

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

#[test]
fn local_remote_realloc_and_heaps() {
    // Local alloc/free across a few classes.
    let mut v: Vec<Box<[u8]>> = (0..200)
        .map(|i| vec![i as u8; 1 + i * 7].into_boxed_slice())
        .collect();
    v.truncate(50);

    // Blocks made here, freed on another thread that then exits (its outbox
    // is posted at exit; we drain it on our next slow path or collect).
    let (tx, rx) = mpsc::channel::<Vec<u32>>();
    let consumer = std::thread::spawn(move || {
        let mut n = 0;
        for block in rx {
            n += block.len();
        }
        n
    });
    for i in 0..if cfg!(miri) { 30 } else { 100 } {
        tx.send(vec![i; 1 + (i as usize % 40)]).unwrap();
    }
    drop(tx);
    assert!(consumer.join().unwrap() > 30);

    // Blocks made on a thread that exits, freed here (its heap is
    // abandoned; our frees claim it).
    let orphans =
        std::thread::spawn(|| (0..100).map(|i| vec![i as u8; 24 + i]).collect::<Vec<_>>())
            .join()
            .unwrap();
    for (i, o) in orphans.iter().enumerate() {
        assert!(o.iter().all(|&b| b == i as u8));
    }
    drop(orphans);

    // realloc through small, medium and huge.
    let mut grow: Vec<u8> = Vec::new();
    // Doubling growth from 1 B to past 256 KiB: every class kind, then huge.
    while grow.len() < 300_000 {
        let len = grow.len();
        grow.resize(len * 2 + 1, len as u8);
    }
    assert!(grow.len() >= 300_000);
    drop(grow);

    // A first-class heap, with one block freed from another thread.
    let heap = homing::Heap::new();
    let mut hv = HeapVec::new_in(&heap);
    hv.extend(0..100u64);
    assert_eq!(hv[99], 99);
    let p = heap
        .alloc(Layout::from_size_align(64, 16).unwrap())
        .unwrap();
    let addr = p.as_ptr() as usize;
    // SAFETY: a live block of the heap, given up on the other thread.
    std::thread::spawn(move || unsafe { homing::free(addr as *mut u8) })
        .join()
        .unwrap();
    heap.collect();
    drop(hv);
    heap.destroy();

    drop(v);
    homing::collect();
}
