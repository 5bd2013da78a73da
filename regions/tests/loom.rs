//! Loom models of the chunk pool: the tagged Treiber stacks and the hot /
//! cold split, explored over every interleaving (up to the preemption bound).
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release -p homing-regions --test loom`.
//!
//! Each thread that takes a chunk writes and reads its `owner_word` (a loom
//! `UnsafeCell`): if two threads ever held the same chunk without a
//! happens-before edge between them, loom reports the race; if the stack
//! lost or duplicated a chunk, the final census fails.
//!
//! The models are known to bite: with the tag removed from the stack's head,
//! `aba_is_caught_by_the_tag` fails its census; with the push's `Release`
//! weakened to `Relaxed`, all three report a causality violation on the
//! chunk's header.
#![cfg(loom)]

use homing_regions::chunk::Chunk;
use homing_regions::pool::ChunkPool;
use loom::sync::Arc;
use loom::thread;

/// Marks `chunk` as held by `who` and checks nobody else marked it meanwhile.
fn hold(chunk: &mut Chunk, who: usize) {
    chunk.set_owner_word(who as *mut u8);
    assert_eq!(chunk.owner_word() as usize, who);
}

/// Checks that every chunk the pool ever mapped is in it exactly once: all
/// of them can be taken without mapping, they are distinct, and the next take
/// maps a fresh one (a chunk left twice in the stack, or a cycle, would come
/// out again instead). On failure the pool is leaked, not dropped: dropping a
/// stack with a cycle would never end.
fn census(pool: Arc<ChunkPool>) {
    let mapped = pool.stats().mapped_chunks;
    let mut held = Vec::new();
    for _ in 0..mapped {
        held.push(pool.take(0).expect("map"));
    }
    held.push(pool.take(0).expect("map"));
    let mut bases: Vec<usize> = held.iter().map(|c| c.base().as_ptr() as usize).collect();
    bases.sort_unstable();
    bases.dedup();
    let ok = pool.stats().mapped_chunks == mapped + 1 && bases.len() == mapped + 1;
    if !ok {
        std::mem::forget(pool);
        panic!("the pool lost or duplicated a chunk");
    }
    for c in held {
        pool.give(c);
    }
}

/// Seeds a pool with `n` chunks of class 0.
fn seeded(hot_limit: usize, n: usize) -> Arc<ChunkPool> {
    let pool = Arc::new(ChunkPool::new(hot_limit));
    let chunks: Vec<_> = (0..n).map(|_| pool.take(0).expect("map")).collect();
    for c in chunks {
        pool.give(c);
    }
    pool
}

#[test]
fn concurrent_take_and_give() {
    loom::model(|| {
        let pool = seeded(usize::MAX, 2);
        let p = pool.clone();
        let t = thread::spawn(move || {
            let mut c = p.take(0).unwrap();
            hold(&mut c, 1);
            p.give(c);
        });
        let mut c = pool.take(0).unwrap();
        hold(&mut c, 2);
        pool.give(c);
        t.join().unwrap();
        census(pool);
    });
}

/// The ABA interleaving: while one thread pops (it has read `head = A` and
/// `A.next = B`), the other pops `A` and `B` and pushes `A` back, keeping
/// `B`. Without the tag the first thread's CAS would succeed and install `B`,
/// which the second thread holds.
#[test]
fn aba_is_caught_by_the_tag() {
    loom::model(|| {
        let pool = seeded(usize::MAX, 2);
        let p = pool.clone();
        let t = thread::spawn(move || {
            let mut a = p.take(0).unwrap();
            let mut b = p.take(0).unwrap();
            hold(&mut a, 1);
            p.give(a);
            hold(&mut b, 1);
            p.give(b);
        });
        let mut x = pool.take(0).unwrap();
        let mut y = pool.take(0).unwrap();
        hold(&mut x, 2);
        hold(&mut y, 2);
        pool.give(x);
        pool.give(y);
        t.join().unwrap();
        census(pool);
    });
}

/// With a hot limit of one chunk, concurrent gives split between the hot and
/// the purged (cold) stacks, and takes find chunks in both.
#[test]
fn hot_and_cold_stacks() {
    loom::model(|| {
        let one = homing_regions::chunk::class_size(0);
        let pool = seeded(one, 2);
        let p = pool.clone();
        let t = thread::spawn(move || {
            let mut c = p.take(0).unwrap();
            hold(&mut c, 1);
            p.give(c);
        });
        let mut c = pool.take(0).unwrap();
        hold(&mut c, 2);
        pool.give(c);
        t.join().unwrap();
        assert!(pool.stats().hot_bytes <= one);
        census(pool);
    });
}
