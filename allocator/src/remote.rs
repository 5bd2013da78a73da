//! Deferred cross-thread free: outboxes, posting, and claims on abandoned
//! heaps.
//!
//! # The path of a remote free
//!
//! A thread that frees a block owned by another heap never touches that
//! heap's pages. It prepends the block to its **outbox** batch for the owner
//! (plain stores; the block's first word becomes the link). When the outbox
//! holds `HOMING_OUTBOX_BUDGET` blocks, at this thread's allocation slow path,
//! at `collect()` and at thread exit, each batch is **posted**: published to
//! the owner's inbox with one compare-exchange (`homing-deferred`). The owner
//! frees the blocks in its own context when it drains its inbox.
//!
//! Exceptions, each for a reason:
//! - A thread with no heap (it never allocated, or its heap was torn down)
//!   posts each block at once: it has nowhere to keep an outbox.
//! - A first-class `Heap`'s blocks are posted at once, one by one: a
//!   first-class heap can be destroyed, and a block waiting in some other
//!   thread's outbox would then point into unmapped memory.
//!
//! # Abandoned heaps
//!
//! A heap whose thread exited is `ABANDONED`: nobody drains its inbox. A
//! poster that finds it so **claims** it (compare-exchange `ABANDONED →
//! CLAIMED`), frees its blocks straight into the heap's pages, gives empty
//! pages and segments back, and lets go. So frees into an abandoned heap are
//! never stranded, and its memory follows its live blocks down to zero, at
//! which point the heap becomes `FREE` for reuse.
//!
//! The one race: a poster publishes to the inbox just as the claimer (or the
//! exiting owner) lets go. Both sides write, then issue a `SeqCst` fence,
//! then read the other's word (poster: inbox then state; releaser: state
//! then inbox). With a sequentially consistent fence between each write and
//! read, at least one of them sees the other's write (the store-buffering
//! case is forbidden), so someone always claims and drains the late batch.

use core::ptr::{self, NonNull};

use homing_deferred::{Batch, Node};

use crate::heap::{self, Heap, ABANDONED, CLAIMED, FREE};
use crate::options;
use crate::outbox::{HINTS, HINT_DISTANCE, OUTBOX_SLOTS};
use crate::segment::HeapOwner;
use crate::stats::GLOBAL;
use crate::sync::{fence, Ordering};

/// The outbox slot for `owner`: a hash of the heap address (heaps are at
/// least OS-page aligned, so the low 12 bits carry nothing).
#[inline(always)]
fn slot_index(owner: *mut HeapOwner) -> usize {
    ((owner as usize) >> 12) % OUTBOX_SLOTS
}

/// Frees `p`, a block of `owner`'s, from a thread whose heap is `mine`
/// (possibly the empty heap).
///
/// # Safety
///
/// `p` is a live small/medium block of `owner` that the caller gives up;
/// `mine` is the calling thread's heap.
pub(crate) unsafe fn free_remote(mine: *mut Heap, owner: *mut Heap, p: *mut u8) {
    // SAFETY: `p` is a dead block of at least 16 bytes: room for a node.
    let node = unsafe { Node::init(NonNull::new_unchecked(p)) };
    // SAFETY: `owner` is live (heaps are never unmapped); `mine` is ours.
    unsafe {
        if mine == heap::empty_heap() || !(*owner).is_thread_heap {
            if HINTS {
                // Every block that reaches an inbox carries an initialised
                // hint word, here a null one (the drain reads it).
                p.cast::<*mut u8>().add(1).write(ptr::null_mut());
            }
            let mut batch = Batch::new();
            batch.push_front(node);
            if mine == heap::empty_heap() {
                // Relaxed: a statistic.
                GLOBAL
                    .remote_posted_heapless
                    .fetch_add(1, Ordering::Relaxed);
            } else {
                (*mine).counters.remote_posted.add(1);
            }
            return post(owner, &mut batch);
        }
        let outbox = &mut (*mine).outbox;
        let dest = owner.cast::<HeapOwner>();
        let slot = &mut outbox.slots[slot_index(dest)];
        if slot.heap != dest {
            if !slot.batch.is_empty() {
                post(slot.heap.cast(), &mut slot.batch);
            }
            slot.heap = dest;
        }
        if HINTS {
            // The block is dead and at least 16 bytes: its second word is
            // free for the hint.
            let hint = slot.recent[slot.next_recent];
            p.cast::<*mut u8>().add(1).write(hint);
            slot.recent[slot.next_recent] = p;
            slot.next_recent = (slot.next_recent + 1) % HINT_DISTANCE;
        }
        slot.batch.push_front(node);
        outbox.pending += 1;
        (*mine).counters.remote_posted.add(1);
        if outbox.pending >= options::outbox_budget() {
            flush_outbox(mine);
        }
    }
}

/// Posts every pending batch of `mine`'s outbox.
///
/// # Safety
///
/// `mine` is the calling thread's real heap.
#[cold]
pub(crate) unsafe fn flush_outbox(mine: *mut Heap) {
    // SAFETY: the outbox is ours; its batches hold dead blocks of live heaps.
    unsafe {
        let outbox = &mut (*mine).outbox;
        for slot in outbox.slots.iter_mut() {
            if !slot.batch.is_empty() {
                post(slot.heap.cast(), &mut slot.batch);
            }
        }
        outbox.pending = 0;
    }
}

/// Hands `batch` to `owner`: into its inbox, or, if it is abandoned, straight
/// into its pages under a claim.
///
/// # Safety
///
/// The batch holds dead blocks of `owner`.
unsafe fn post(owner: *mut Heap, batch: &mut Batch) {
    // SAFETY: heaps are never unmapped; blocks are `owner`'s.
    unsafe {
        let state = &(*owner).state;
        // Relaxed: a hint; the claim's Acquire is what orders our access.
        if state.load(Ordering::Relaxed) == ABANDONED && try_claim(owner) {
            for node in core::mem::take(batch).into_chain() {
                Heap::free_owned(owner, node.as_ptr().cast());
            }
            let_go(owner);
            return;
        }
        batch.publish(&(*owner).inbox);
        // See the module doc: publish, fence, then look at the state, so a
        // heap let go at the same moment is claimed by one of us.
        fence(Ordering::SeqCst);
        if state.load(Ordering::Relaxed) == ABANDONED && try_claim(owner) {
            let_go(owner);
        }
    }
}

/// Tries to take an abandoned heap for a moment.
pub(crate) fn try_claim(heap: *mut Heap) -> bool {
    // Acquire: we are about to touch the heap's pages, which the thread that
    // let it go wrote before its Release store of ABANDONED.
    // SAFETY: heaps are never unmapped.
    unsafe { &(*heap).state }
        .compare_exchange(ABANDONED, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
}

/// Lets go of a heap we own (a claim, or the heap of an exiting thread):
/// drains its inbox, gives back the pages its frees emptied (and the whole
/// heap's memory once no page is in use), then marks it
/// `ABANDONED` (or `FREE` if it holds nothing) — and repeats if a batch
/// arrived meanwhile (see the module doc).
///
/// # Safety
///
/// The caller owns `heap` (claimed, or its exiting thread) and has flushed
/// its own outbox if it had one.
pub(crate) unsafe fn let_go(heap: *mut Heap) {
    loop {
        // SAFETY: we own the heap until the store below.
        let empty = unsafe {
            Heap::tidy_abandoned(heap);
            (*heap).is_empty()
        };
        // SAFETY: heaps are never unmapped.
        let state = unsafe { &(*heap).state };
        if empty {
            // Release: the next owner (a new heap, via Acquire) sees the heap
            // as we leave it. Nothing can be in flight to a heap without
            // segments, so no inbox check is needed.
            state.store(FREE, Ordering::Release);
            return;
        }
        // Release: publishes our writes to the pages to the next claimer or
        // adopter, whose compare-exchange acquires.
        state.store(ABANDONED, Ordering::Release);
        fence(Ordering::SeqCst);
        // SAFETY: heaps are never unmapped.
        if unsafe { (*heap).inbox.is_empty() } || !try_claim(heap) {
            return;
        }
    }
}

/// The calling thread is exiting: post its outbox and abandon its heap.
///
/// # Safety
///
/// `heap` is the calling thread's real heap, no longer reachable from its
/// thread-local.
pub(crate) unsafe fn abandon(heap: *mut Heap) {
    // SAFETY: forwarded.
    unsafe {
        flush_outbox(heap);
        // Empty pages go back to their segments, but while blocks are still
        // live, memory is not purged nor spare segments unmapped here: a new
        // thread usually adopts this heap soon (thread pools, servers
        // replacing workers) and would fault it all in again. The purge delay
        // still applies: the threads that free the live blocks (claims) and
        // the adopter purge on schedule, and when the last block goes,
        // everything goes (`tidy_abandoned`).
        Heap::collect(heap, false);
        let_go(heap);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::registry::Registry;

    /// Unmaps a test heap that holds nothing (only a registry of the test's
    /// own knows it; the allocator itself never unmaps a heap).
    ///
    /// # Safety
    ///
    /// `heap` came from a test registry, holds no segment, and is used by
    /// nothing any more.
    unsafe fn forget(heap: *mut Heap) {
        let bytes = crate::os::align_up(core::mem::size_of::<Heap>(), crate::os::OS_PAGE).unwrap();
        // SAFETY: forwarded; the registry mapped exactly this.
        unsafe {
            crate::os::unmap(
                NonNull::new_unchecked(heap.cast()),
                bytes,
                crate::os::OS_PAGE,
            )
        };
    }

    /// Two thread heaps of a registry of the test's own (the test thread
    /// owns both, playing owner and freer in turn).
    fn two_heaps(registry: &Registry) -> (*mut Heap, *mut Heap) {
        (
            registry.acquire(true).expect("a heap"),
            registry.acquire(true).expect("a heap"),
        )
    }

    #[test]
    fn remote_frees_wait_in_the_outbox_then_reach_the_owners_inbox() {
        let registry = Registry::new();
        let (owner, freer) = two_heaps(&registry);
        // SAFETY: this thread owns both heaps; each block is freed once.
        unsafe {
            let blocks: std::vec::Vec<*mut u8> =
                (0..10).map(|_| Heap::alloc_sized(owner, 64, 16)).collect();
            for &p in &blocks {
                free_remote(freer, owner, p);
            }
            // Batched, below the budget: nothing posted yet.
            assert_eq!((*freer).outbox.pending, blocks.len());
            assert!((*owner).inbox.is_empty());
            flush_outbox(freer);
            assert_eq!((*freer).outbox.pending, 0);
            assert!(!(*owner).inbox.is_empty());
            assert_eq!(Heap::drain_inbox(owner), blocks.len());
            assert!(Heap::check(owner));
            // The blocks are the owner's again: their page counts none of
            // them (only the direct page's pin).
            let page = crate::segment::page_of(crate::segment::segment_of(blocks[0]), blocks[0]);
            assert_eq!(
                (*page).used_blocks() as usize - usize::from((*page).pinned),
                0
            );
            Heap::collect(owner, true);
            assert!((*owner).is_empty());
            forget(owner);
            forget(freer);
        }
    }

    #[test]
    fn a_full_outbox_posts_by_itself() {
        let registry = Registry::new();
        let (owner, freer) = two_heaps(&registry);
        let budget = options::outbox_budget();
        // SAFETY: as above.
        unsafe {
            let blocks: std::vec::Vec<*mut u8> = (0..budget)
                .map(|_| Heap::alloc_sized(owner, 32, 16))
                .collect();
            for &p in &blocks {
                free_remote(freer, owner, p);
            }
            // The budget-th free posted everything.
            assert_eq!((*freer).outbox.pending, 0);
            assert_eq!(Heap::drain_inbox(owner), budget);
            Heap::collect(owner, true);
            assert!((*owner).is_empty());
            forget(owner);
            forget(freer);
        }
    }
}
