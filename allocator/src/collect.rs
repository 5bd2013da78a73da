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
            Self::drain_inbox(heap);
            let h = &mut (*heap).owned;
            // Nobody allocates from an abandoned heap: unpin every direct
            // page (an empty one is retired as its pin goes).
            for class in 0..CLASSES {
                h.set_direct(class, empty_page());
            }
            let pages_in_use: usize = h.segments.iter().map(|seg| (*seg).used_pages).sum();
            if pages_in_use == 0 {
                // Nothing live: everything goes back now (nobody may come to
                // purge later), spare segments too, and the heap becomes free.
                Self::collect(heap, true);
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
                    if (*page).used == 0 {
                        h.retire_page(page);
                    }
                    page = next;
                }
            }
            (*heap).purge.purge_expired(all, options::now_ms());
            if all {
                // Spare segments too.
                for seg in h.segments.iter() {
                    if (*seg).kind != Kind::Huge && (*seg).used_pages == 0 {
                        h.release_segment(seg);
                    }
                }
            }
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
                    Segment::retire(seg);
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
