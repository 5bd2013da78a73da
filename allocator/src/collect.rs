//! Giving memory back: what a heap does at a safe point (`collect`), what a
//! claimer or an exiting thread does before letting a heap go
//! (`tidy_abandoned`), and a first-class heap's `destroy` (`release_all`).
//! See `purge` for when purged memory returns, and `segments` for released
//! segments.
//!
//! Owner only (the heap's owner, a claimer, or the destroying holder).

use crate::heap::{empty_page, Heap};
use crate::options;
use crate::page::PageQueue;
use crate::segment::{Kind, Segment};
use crate::size_class::CLASSES;
use crate::stats::GLOBAL;

impl Heap {
    /// What a claimer does before letting an abandoned heap go: take the
    /// inbox, retire the pages each class was allocating from if they are
    /// empty (nobody allocates from an abandoned heap), purge what has
    /// waited long enough, and once no page is in use give back every
    /// segment. Cheap when there is little to do: no full sweep of the bins.
    ///
    /// # Safety
    ///
    /// The caller owns `heap` (a claim or an exiting thread).
    pub(crate) unsafe fn tidy_abandoned(heap: *mut Heap) {
        // SAFETY: the caller owns the heap and its pages.
        unsafe {
            (*heap).touch_owned();
            // Nobody allocates from an abandoned heap: unpin every direct
            // page (an empty one is retired as its pin goes) before the
            // drain. A page the drain empties is then retired: with a direct
            // page still set, it was kept as a spare of that class, in use
            // for ever, and the heap could never become free (`stress`'s
            // server test found one such heap in about 50 runs).
            let h = &mut (*heap).owned;
            for class in 0..CLASSES {
                h.set_direct(class, empty_page());
            }
            Self::drain_inbox(heap);
            let h = &mut (*heap).owned;
            debug_assert!(
                h.spares.iter().all(|&n| n == 0),
                "an abandoned heap keeps spares"
            );
            let pages_in_use: usize = h.segments.iter().map(|seg| (*seg).used_pages).sum();
            if pages_in_use == 0 {
                // Nothing live: every segment goes back, spare ones too, and
                // the heap becomes free. Their memory goes to the segment
                // cache still resident (nobody may come to purge this heap
                // later; the cache purges it when the delay has passed): the
                // next heap to grow, often a new thread taking over this
                // one's work, reuses it without faulting it in again.
                Self::collect_with(heap, true, true);
            } else {
                (*heap).purge.purge_expired(false, options::now_ms());
            }
            Self::count_purged(heap);
        }
    }

    /// Gives back what the heap does not need: drains the inbox, retires
    /// every empty page and purges free pages (all of them if `all`).
    ///
    /// # Safety
    ///
    /// The caller owns `heap`.
    pub(crate) unsafe fn collect(heap: *mut Heap, all: bool) {
        // SAFETY: forwarded.
        unsafe { Self::collect_with(heap, all, false) }
    }

    /// What a heap does when it stops allocating for a while (a safe point:
    /// `homing::collect`, `Heap::collect`, `homing_heap_release`, memory
    /// pressure): [`Heap::collect`] of everything, then every page still in
    /// use gives back the OS pages that only its free blocks touch
    /// ([`Page::trim`](crate::page::Page::trim)). What stays resident is then
    /// close to what the heap's live blocks touch: many idle heaps (a VM's
    /// states, each on its own heap) keep no more than their live data and
    /// the pages it sits on. Bytes trimmed.
    ///
    /// With `if_changed` (a hand-off), nothing is done if the heap took no
    /// slow path since it was last collected and trimmed: releasing an idle
    /// heap is then O(1). (Frees on the fast path alone empty no page; they
    /// only leave free blocks that the next trim finds.)
    ///
    /// # Safety
    ///
    /// The caller owns `heap`.
    pub(crate) unsafe fn collect_and_trim(heap: *mut Heap, if_changed: bool) -> usize {
        // SAFETY: the caller owns the heap and every page on its lists.
        unsafe {
            let changed = (*heap).owned.slow_paths != (*heap).owned.trimmed_at;
            if if_changed && !changed && (*heap).inbox.is_empty() {
                return 0;
            }
            Self::collect_with(heap, true, false);
            let h = &mut (*heap).owned;
            let mut trimmed = 0;
            // Pages on the full list have no free block on a list.
            for class in 0..CLASSES {
                let mut page = h.bins[class].first();
                while !page.is_null() {
                    let seg = crate::segment::segment_of_page(page);
                    trimmed += (*page).trim((*seg).page_shift);
                    page = PageQueue::next(page);
                }
            }
            h.trimmed_at = h.slow_paths;
            trimmed
        }
    }

    /// As [`Heap::collect`]; with `warm`, the segments released keep their
    /// memory for the purge delay (in the segment cache) instead of being
    /// purged first.
    ///
    /// # Safety
    ///
    /// The caller owns `heap`.
    unsafe fn collect_with(heap: *mut Heap, all: bool, warm: bool) {
        // SAFETY: the caller owns the heap and every page on its lists.
        unsafe {
            (*heap).touch_owned();
            Self::drain_inbox(heap);
            let h = &mut (*heap).owned;
            for class in 0..CLASSES {
                if all {
                    // Unpinned, an empty direct page is retired too.
                    h.set_direct(class, empty_page());
                }
                let mut page = h.bins[class].first();
                while !page.is_null() {
                    let next = PageQueue::next(page);
                    if (*page).is_unused() {
                        h.retire_page(page);
                    }
                    page = next;
                }
            }
            if all {
                // Spare segments too (before the purge, so that `warm`
                // segments take their queued pages with them unpurged).
                for seg in h.segments.iter() {
                    if (*seg).kind != Kind::Huge && (*seg).used_pages == 0 {
                        h.release_segment(seg, warm);
                    }
                }
            }
            (*heap).purge.purge_expired(all, options::now_ms());
            Self::count_purged(heap);
        }
    }

    /// Unmaps every segment of the heap, live blocks and all (first-class
    /// heap `destroy`), discarding the inbox.
    ///
    /// # Safety
    ///
    /// The caller owns `heap` and nobody uses its blocks any more.
    pub(crate) unsafe fn release_all(heap: *mut Heap) {
        // SAFETY: forwarded from the caller.
        unsafe {
            // Blocks in the inbox, and queued free pages, lie in the
            // segments we are about to unmap.
            let _ = (*heap).inbox.take();
            (*heap).purge.clear();
            let _ = (*heap).purge.take_purged();
            let h = &mut (*heap).owned;
            for seg in h.segments.iter() {
                if (*seg).kind == Kind::Huge {
                    GLOBAL.huge((*seg).map_size, false);
                    Segment::destroy(seg);
                } else {
                    Segment::retire(seg, false);
                }
            }
            h.segments.clear();
            (*heap).account.released_all();
            // Everything handed out is gone: balance the counters.
            let c = &(*heap).counters;
            c.free_everything();
            Self::reset(heap, (*heap).is_thread_heap);
        }
    }
}
