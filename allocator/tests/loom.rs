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

use homing::model::{ModelHeap, State};
use loom::thread;

/// Blocks big enough for a loom node (loom's cells are larger than a word).
const SIZE: usize = 256;

/// Wraps raw block pointers so they can move into loom threads.
#[derive(Clone, Copy)]
struct Ptr(*mut u8);
// SAFETY: the models hand each block to exactly one thread.
unsafe impl Send for Ptr {}

#[test]
fn outbox_to_inbox_hand_off() {
    loom::model(|| {
        let owner = ModelHeap::new();
        // SAFETY: the main thread owns `owner` throughout.
        let (a, b, keep) = unsafe {
            (
                Ptr(owner.alloc(SIZE)),
                Ptr(owner.alloc(SIZE)),
                owner.alloc(SIZE),
            )
        };
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
            assert_eq!(drained, 2);
            assert_eq!(ModelHeap::used_on_page_of(keep), 1);
            owner.free_local(keep);
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
