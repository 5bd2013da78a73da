//! loom models of the allocator's cross-thread protocols, on the real heap,
//! page and remote-free code (the OS layer is the system allocator under
//! loom). Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release -p homing --test loom`.
//!
//! Every owner operation writes a loom cell in the heap (`touch_owned`), and
//! every block travelling home carries its link in a loom cell, so handing a
//! heap or a block between threads without a happens-before edge fails the
//! model as a data race.
#![cfg(loom)]

use homing::loom_model::{ModelHeap, State};
use loom::thread;

/// Blocks big enough for a loom node (loom's cells are larger than a word).
const SIZE: usize = 256;

/// Wraps raw block pointers so they can move into loom threads.
#[derive(Clone, Copy)]
struct Ptr(*mut u8);
// SAFETY: the models hand each block to exactly one thread.
unsafe impl Send for Ptr {}

/// A heap of the calling thread with three of its blocks: two to hand to
/// another thread (`a`, `b`) and one it keeps, so its page stays in use.
fn owner_with_three_blocks() -> (ModelHeap, Ptr, Ptr, *mut u8) {
    let owner = ModelHeap::new();
    // SAFETY: the calling thread owns `owner` throughout.
    let (a, b, keep) = unsafe {
        (
            Ptr(owner.alloc(SIZE)),
            Ptr(owner.alloc(SIZE)),
            owner.alloc(SIZE),
        )
    };
    (owner, a, b, keep)
}

/// The end of the models that start from [`owner_with_three_blocks`]: both
/// handed blocks came home, only the kept one is live on its page, and once
/// it is freed and collected the heap holds nothing.
///
/// # Safety
///
/// The calling thread owns `owner`; `keep` is its live block.
unsafe fn end_with_two_drained(owner: ModelHeap, drained: usize, keep: *mut u8) {
    assert_eq!(drained, 2);
    // SAFETY: the caller's contract.
    unsafe {
        assert_eq!(ModelHeap::used_on_page_of(keep), 1);
        owner.free_local(keep);
        owner.collect();
        assert!(owner.holds_nothing());
        owner.destroy();
    }
}

#[test]
fn outbox_to_inbox_hand_off() {
    loom::model(|| {
        let (owner, a, b, keep) = owner_with_three_blocks();
        let freer = thread::spawn(move || {
            let mine = ModelHeap::new();
            // SAFETY: `mine` is this thread's; `a` and `b` are the owner's
            // blocks, given up here.
            unsafe {
                mine.free_remote(owner, a.0);
                mine.free_remote(owner, b.0);
                mine.flush();
                mine.destroy();
            }
        });
        // The owner drains while the freer posts.
        // SAFETY: the main thread owns `owner`.
        let mut drained = unsafe { owner.drain() };
        freer.join().unwrap();
        // SAFETY: as above.
        unsafe {
            drained += owner.drain();
            end_with_two_drained(owner, drained, keep);
        }
    });
}

/// A scan steals an outbox (`remote::try_steal`) while its owner frees
/// into it: the body is never written by both (loom checks the body's
/// token), and every block reaches its owner exactly once, through the
/// owner's own posts, the blocks it sent alone while the steal held the
/// outbox, or the steal. Loom has no `membarrier`: the owner's light fence
/// and the stealer's heavy one are both `SeqCst` fences here, which is what
/// `membarrier` makes of the pair.
#[test]
fn a_steal_races_the_owner_of_the_outbox() {
    loom::model(|| {
        let (owner, a, b, keep) = owner_with_three_blocks();
        let freer = ModelHeap::new();
        let freeing = thread::spawn(move || {
            // SAFETY: the freer's heap is this thread's until the join;
            // `a` and `b` are the owner's blocks, given up here.
            unsafe {
                freer.free_remote(owner, a.0);
                freer.free_remote(owner, b.0);
            }
        });
        // SAFETY: a scan's thread never holds the freer's outbox.
        let stealing = thread::spawn(move || unsafe { freer.steal() });
        // The owner drains while both run.
        // SAFETY: the main thread owns `owner`.
        let mut drained = unsafe { owner.drain() };
        freeing.join().unwrap();
        stealing.join().unwrap();
        // SAFETY: the join makes the main thread the freer's owner (its
        // exit flush), and `owner`'s as before.
        unsafe {
            freer.flush_now();
            drained += owner.drain();
            end_with_two_drained(owner, drained, keep);
            freer.destroy();
        }
    });
}

#[test]
fn runs_of_two_pages_are_spliced_whole_while_the_owner_allocates() {
    // The freer's frees of one page travel as one run (only the run's tail
    // is a node; the blocks between are linked with plain stores made before
    // the tail's node is written, so the node's publish/take edge covers
    // them too); the owner splices each run while it keeps allocating.
    loom::model(|| {
        let owner = ModelHeap::new();
        // SAFETY: the main thread owns `owner` throughout. Two classes, so
        // two pages; a block kept on each, so neither page empties.
        let (a1, a2, b, keep_a, keep_b) = unsafe {
            (
                Ptr(owner.alloc(SIZE)),
                Ptr(owner.alloc(SIZE)),
                Ptr(owner.alloc(2 * SIZE)),
                owner.alloc(SIZE),
                owner.alloc(2 * SIZE),
            )
        };
        let freer = thread::spawn(move || {
            let mine = ModelHeap::new();
            // SAFETY: the owner's blocks, given up here.
            unsafe {
                mine.free_remote(owner, a1.0);
                mine.free_remote(owner, a2.0);
                mine.free_remote(owner, b.0);
                mine.flush();
                mine.destroy();
            }
        });
        // SAFETY: the main thread owns `owner`.
        let (mut drained, c) = unsafe { (owner.drain(), owner.alloc(SIZE)) };
        freer.join().unwrap();
        // SAFETY: as above.
        unsafe {
            drained += owner.drain();
            assert_eq!(drained, 3);
            // The pages count only what is still live: the kept blocks and `c`.
            assert_eq!(ModelHeap::used_on_page_of(keep_a), 2);
            assert_eq!(ModelHeap::used_on_page_of(keep_b), 1);
            owner.free_local(c);
            owner.free_local(keep_a);
            owner.free_local(keep_b);
            owner.collect();
            assert!(owner.holds_nothing());
            owner.destroy();
        }
    });
}

#[test]
fn frees_into_an_exiting_heap_are_not_stranded() {
    loom::model(|| {
        let owner = ModelHeap::new();
        // SAFETY: the main thread owns `owner` until it abandons it.
        let (a, b) = unsafe { (Ptr(owner.alloc(SIZE)), Ptr(owner.alloc(SIZE))) };
        let freer = thread::spawn(move || {
            let mine = ModelHeap::new();
            // SAFETY: `a`, `b` are the owner's blocks, given up here.
            unsafe {
                mine.free_remote(owner, a.0);
                mine.free_remote(owner, b.0);
                mine.flush();
                mine.destroy();
            }
        });
        // The owner thread exits meanwhile.
        // SAFETY: the main thread owns `owner` until this call.
        unsafe { owner.abandon() };
        freer.join().unwrap();
        // Whoever came last (the exiting owner or the freer's claim) took
        // the batch: nothing is left in the inbox, and with no live block the
        // heap is free for reuse.
        assert!(owner.inbox_is_empty());
        assert_eq!(owner.state(), State::Free);
        // SAFETY: a free heap is nobody's; the model ends here.
        unsafe { owner.destroy() };
    });
}

#[test]
fn adoption_races_a_claiming_free() {
    loom::model(|| {
        let heap = ModelHeap::new();
        // SAFETY: the main thread owns `heap` until it abandons it.
        let (a, b) = unsafe { (Ptr(heap.alloc(SIZE)), Ptr(heap.alloc(SIZE))) };
        // SAFETY: as above.
        unsafe { heap.abandon() };
        assert_eq!(heap.state(), State::Abandoned);
        let freer = thread::spawn(move || {
            let mine = ModelHeap::new();
            // SAFETY: `a` is the heap's block, given up here.
            unsafe {
                mine.free_remote(heap, a.0);
                mine.flush();
                mine.destroy();
            }
        });
        // A new thread starts and adopts the abandoned heap, then frees its
        // other block locally and allocates from it.
        let adopter = thread::spawn(move || {
            if heap.adopt() {
                // SAFETY: adopted: this thread owns the heap now.
                unsafe {
                    heap.free_local(b.0);
                    let c = heap.alloc(SIZE);
                    heap.free_local(c);
                    heap.abandon();
                }
                true
            } else {
                false
            }
        });
        freer.join().unwrap();
        let adopted = adopter.join().unwrap();
        if !adopted {
            // The freer held its claim when the adopter looked: take the heap
            // now and free the other block, as a later thread would.
            assert!(heap.adopt());
            // SAFETY: adopted by the main thread.
            unsafe {
                heap.free_local(b.0);
                heap.abandon();
            }
        }
        assert!(heap.inbox_is_empty());
        assert_eq!(heap.state(), State::Free);
        // SAFETY: a free heap is nobody's; the model ends here.
        unsafe { heap.destroy() };
    });
}

/// A first-class heap handed from one thread to another (release, acquire)
/// while a third thread frees its blocks, then destroyed by its new holder:
/// the only edge between the two holders is the hand-off word, blocks
/// posted while the heap is between holders wait in the inbox for the next
/// one, and the destroy (after the freer's frees returned, as the contract
/// asks) discards whatever is still there.
#[test]
fn hand_off_races_remote_frees_and_a_destroy() {
    use loom::sync::atomic::{AtomicBool, Ordering};
    use loom::sync::Arc;
    const OLD: usize = 1;
    const NEW: usize = 2;
    loom::model(|| {
        let heap = ModelHeap::new_first_class(OLD);
        // SAFETY: thread OLD (main) holds the heap.
        let (a, b, c) = unsafe {
            (
                Ptr(heap.alloc(SIZE)),
                Ptr(heap.alloc(SIZE)),
                Ptr(heap.alloc(SIZE)),
            )
        };
        let frees_done = Arc::new(AtomicBool::new(false));
        let done = frees_done.clone();
        let freer = thread::spawn(move || {
            let mine = ModelHeap::new();
            // SAFETY: `a` and `b` are the heap's blocks, given up here.
            unsafe {
                mine.free_remote(heap, a.0);
                mine.free_remote(heap, b.0);
                mine.destroy();
            }
            // Release: the frees returned before the holder destroys (the
            // contract of destroy; the program's own synchronisation).
            done.store(true, Ordering::Release);
        });
        let new_holder = thread::spawn(move || {
            while !heap.acquire(NEW) {
                thread::yield_now();
            }
            // SAFETY: NEW holds the heap now.
            unsafe {
                let mut drained = heap.drain();
                heap.free_local(c.0);
                let d = heap.alloc(SIZE);
                heap.free_local(d);
                // Acquire: pairs with the freer's Release.
                while !frees_done.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                drained += heap.drain();
                assert_eq!(drained, 2, "every remote free reached the inbox");
                assert_eq!(heap.live_blocks(), 0);
                heap.collect();
                assert!(heap.holds_nothing());
                heap.destroy();
            }
        });
        // The old holder's last owner operation, then the hand-off; a second
        // release by a thread that no longer holds it fails.
        // SAFETY: OLD still holds the heap.
        unsafe {
            let e = heap.alloc(SIZE);
            heap.free_local(e);
        }
        assert!(heap.release(OLD));
        assert!(!heap.release(OLD));
        freer.join().unwrap();
        new_holder.join().unwrap();
    });
}

/// The heap registry: a thread that exits (abandons its heap) races a new
/// thread binding a heap. The new thread adopts the abandoned heap or makes
/// its own, never shares one with a live owner (the heap's owner cell
/// would report the race), and a block of the exited thread freed later
/// brings its heap down to `FREE`.
#[test]
fn registry_adoption_races_an_exit() {
    loom::model(|| {
        let registry = std::sync::Arc::new(homing::loom_model::ModelRegistry::new());
        let r1 = registry.clone();
        let exiting = thread::spawn(move || {
            let heap = r1.acquire_thread_heap();
            // SAFETY: this thread owns `heap` until it abandons it.
            unsafe {
                let kept = heap.alloc(SIZE);
                let scratch = heap.alloc(SIZE);
                heap.free_local(scratch);
                heap.abandon();
                (heap, Ptr(kept))
            }
        });
        let r2 = registry.clone();
        let binding = thread::spawn(move || {
            let heap = r2.acquire_thread_heap();
            // SAFETY: this thread owns `heap` (adopted or new).
            unsafe {
                let p = heap.alloc(SIZE);
                heap.free_local(p);
                heap.abandon();
            }
            heap
        });
        let (first, kept) = exiting.join().unwrap();
        let second = binding.join().unwrap();
        assert!(registry.created() <= 2);
        if registry.created() == 1 {
            assert_eq!(first.addr(), second.addr(), "one heap, adopted");
        }
        // The exited thread's block, freed from a thread with a heap of its
        // own (a claim: `first` is abandoned or was re-abandoned).
        // (A thread heap outside the registry, so it adopts nothing.)
        let freer = ModelHeap::new();
        // SAFETY: `kept` is `first`'s live block, given up here; `freer`
        // is ours.
        unsafe {
            freer.free_remote(first, kept.0);
            freer.flush();
            freer.destroy();
        }
        for heap in registry.heaps() {
            if heap.state() == State::Abandoned {
                assert!(heap.claim_and_let_go());
            }
        }
        for heap in registry.heaps() {
            assert_eq!(
                heap.state(),
                State::Free,
                "a heap still holds memory (first {:x}, second {:x}, this {:x}, holds nothing: {})",
                first.addr(),
                second.addr(),
                heap.addr(),
                // SAFETY: read only after every thread let go.
                unsafe { heap.holds_nothing() }
            );
        }
    });
}

/// A first-class heap destroyed on one thread (`FREE`) and a heap created
/// on another: the second reuses the first only after its release, and
/// sees it reset.
#[test]
fn registry_reuses_a_free_heap() {
    loom::model(|| {
        let registry = std::sync::Arc::new(homing::loom_model::ModelRegistry::new());
        let first = registry.acquire_first_class();
        // SAFETY: the main thread owns `first` until it moves below.
        let block = Ptr(unsafe { first.alloc(SIZE) });
        let r = registry.clone();
        let destroyer = thread::spawn(move || {
            let _ = block;
            // SAFETY: ownership of `first` moved here with the spawn; its
            // block dies with it.
            unsafe { first.release_to_free() };
        });
        let r2 = r.clone();
        let creator = thread::spawn(move || {
            let heap = r2.acquire_first_class();
            // SAFETY: ours, reused or new.
            unsafe {
                let p = heap.alloc(SIZE);
                heap.free_local(p);
                heap.release_to_free();
            }
        });
        destroyer.join().unwrap();
        creator.join().unwrap();
        assert!(registry.created() <= 2);
        for heap in registry.heaps() {
            assert_eq!(heap.state(), State::Free);
        }
    });
}

/// The segment cache: two threads each release a segment into it and take
/// one back. Each segment comes out exactly once, and whoever takes one
/// sees the header its releaser wrote (Release put, Acquire take).
#[test]
fn segment_cache_hands_each_segment_out_once() {
    loom::model(|| {
        let cache = std::sync::Arc::new(homing::loom_model::ModelCache::new());
        let workers: Vec<_> = (0..2)
            .map(|i| {
                let cache = cache.clone();
                thread::spawn(move || {
                    let seg = homing::loom_model::ModelSegment::new();
                    // SAFETY: ours until it is put.
                    unsafe { seg.scribble(100 + i) };
                    assert!(cache.put(seg));
                    // A take may miss a segment (its first look at each
                    // slot is a relaxed hint): the allocator then maps a new
                    // one, which is harmless. It never hands one out twice.
                    let got = cache.take()?;
                    // SAFETY: the take made it ours.
                    let mark = unsafe { got.scribbled() };
                    assert!(mark == 100 || mark == 101, "a stale header");
                    Some(got)
                })
            })
            .collect();
        let mut taken: Vec<_> = workers
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        // After the joins nothing is stale: the rest is in the cache.
        while let Some(seg) = cache.take() {
            taken.push(seg);
        }
        assert_eq!(taken.len(), 2, "a segment lost");
        assert_ne!(taken[0], taken[1], "one segment handed out twice");
        assert!(cache.is_empty());
        for seg in taken {
            // SAFETY: ours, and nothing else holds it.
            unsafe { seg.destroy() };
        }
    });
}

/// The purge queue, shared by a heap's owner and the background purger:
/// the owner retires pages (queueing them) and takes pages again (reusing a
/// queued one) while the purger purges whatever is queued. The queue lives
/// in a loom cell, so any access outside the lock fails the model.
#[test]
fn purge_queue_shared_with_the_background_purger() {
    loom::model(|| {
        let owner = ModelHeap::new();
        // Blocks of a medium class, 4 to a page: the first four fill one
        // page, the fifth opens a second (the direct page, pinned).
        const BIG: usize = 100_000;
        // SAFETY: the main thread owns `owner` throughout.
        let blocks: Vec<Ptr> = (0..5).map(|_| Ptr(unsafe { owner.alloc(BIG) })).collect();
        let purger = thread::spawn(move || owner.background_purge());
        // SAFETY: as above; the blocks are live and freed once.
        unsafe {
            // The first page empties: retired and queued, racing the purger.
            for b in &blocks[..4] {
                owner.free_local(b.0);
            }
            // Enough to need a page again: the queued one is reused (taken
            // off the queue) or, if the purger got it first, clean.
            let again: Vec<*mut u8> = (0..4).map(|_| owner.alloc(BIG)).collect();
            for &p in &again {
                p.write_bytes(7, 64);
            }
            for p in again {
                owner.free_local(p);
            }
            owner.free_local(blocks[4].0);
        }
        purger.join().unwrap();
        owner.background_purge();
        // SAFETY: as above.
        unsafe {
            owner.collect();
            assert!(owner.holds_nothing());
            owner.destroy();
        }
    });
}

/// The cache of released huge mappings, shared by every thread under a
/// spin lock: two threads each cache a mapping and take one back. One
/// thread's clock purges at once (its put takes the entry out, purges it
/// outside the lock and puts it back, racing the other thread's put and
/// take), the other's never. Each mapping comes out exactly once (taken, or
/// unmapped by the cache), and a taker sees the header its releaser (or the
/// purger) wrote: a hand-over without a happens-before edge fails the model
/// (the purge writes the header's witness cell too).
#[test]
fn huge_cache_hands_each_mapping_out_once() {
    use homing::loom_model::{ModelClock, ModelHugeCache, ModelMapping};
    const BLOCK: usize = 64 << 10;
    loom::model(|| {
        let cache = std::sync::Arc::new(ModelHugeCache::new());
        let purge_now = ModelClock {
            now_ms: 0,
            purge_after_ms: 0,
            unmap_after_ms: 100,
        };
        let never = ModelClock {
            now_ms: 0,
            purge_after_ms: u64::MAX,
            unmap_after_ms: u64::MAX,
        };
        let other = {
            let cache = cache.clone();
            thread::spawn(move || {
                let m = ModelMapping::huge(BLOCK);
                // SAFETY: ours until it is put.
                unsafe { m.scribble(101) };
                let size = m.size();
                assert!(cache.put(m, never));
                // A take may find nothing (the other mapping may be out
                // being purged): the allocator then maps a fresh one.
                let (got, _purged) = cache.take(size, size, never)?;
                // SAFETY: the take made it ours.
                let mark = unsafe { got.scribbled() };
                assert!(mark == 100 || mark == 101, "a stale header");
                Some(got)
            })
        };
        let m = ModelMapping::huge(BLOCK);
        // SAFETY: ours until it is put.
        unsafe { m.scribble(100) };
        let size = m.size();
        assert!(cache.put(m, purge_now));
        let mut taken: Vec<ModelMapping> = Vec::new();
        if let Some((got, _purged)) = cache.take(size, size, purge_now) {
            // SAFETY: the take made it ours.
            let mark = unsafe { got.scribbled() };
            assert!(mark == 100 || mark == 101, "a stale header");
            taken.push(got);
        }
        taken.extend(other.join().unwrap());
        if taken.len() == 2 {
            assert_ne!(taken[0], taken[1], "one mapping handed out twice");
        }
        // The rest is in the cache; `released` counts what it unmapped,
        // the drain included.
        cache.drain();
        assert!(cache.is_empty());
        assert_eq!(
            taken.len() + cache.released(),
            2,
            "a mapping lost or handed out twice"
        );
        for m in taken {
            // SAFETY: ours, and nothing else holds it.
            unsafe { m.destroy() };
        }
    });
}
