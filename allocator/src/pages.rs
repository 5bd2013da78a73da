//! A heap's pages: taking a fresh page for a class, the direct page and
//! its pin, spares, and retiring an empty page (its slot back to its
//! segment, its memory to the purge queue), down to releasing a segment
//! that no page uses any more.
//!
//! # Invariants
//!
//! - A page of the heap is in exactly one of: its class bin, the full list,
//!   the purge queue (free and dirty), or nowhere (free and purged).
//! - `direct[c]` is the empty page or a page of `bins[c]`, and only it is
//!   pinned (`used` counts one more).
//! - `spares[c]` is the number of pages of `bins[c]` flagged `spare` (empty,
//!   kept instead of retired).
//!
//! Owner only, like everything in `Owned`.

use core::ptr;

use crate::heap::{empty_page, Heap, Owned, MEDIUM_SPARES, SMALL_SPARES};
use crate::options;
use crate::page::Page;
use crate::segment::{self, Kind, Segment, SEGMENT_SIZE};
use crate::size_class::{self, CLASS_SIZE};

impl Owned {
    /// Takes a free page from a segment (mapping a new one if needed) and
    /// sets it up for `class`. Null when out of memory.
    pub(crate) unsafe fn new_page(&mut self, heap: *mut Heap, class: usize) -> *mut Page {
        let kind = Kind::of_class(class);
        // SAFETY: the segments of our set are ours and live.
        unsafe {
            // A free page whose memory is still resident first (no page
            // faults), then the lowest free slot of a segment with one.
            let dirty = self.purge().take_oldest(kind);
            let taken = if !dirty.is_null() {
                let seg = segment::segment_of_page(dirty);
                self.segments
                    .take_given_slot(seg, Segment::slot_of(seg, dirty))
            } else {
                let Some(taken) = self.segments.take_slot(heap.cast(), kind) else {
                    return ptr::null_mut();
                };
                taken
            };
            let (seg, slot) = (taken.segment, taken.slot);
            if taken.fresh {
                (*heap).account.segment(SEGMENT_SIZE, true);
                if (*seg).resident {
                    self.adopt_resident(seg, slot);
                }
            }
            let page = ptr::addr_of_mut!((*seg).pages[slot]);
            if !taken.fresh && page != dirty && (*page).dirty && !(*page).in_use {
                // Still waiting to be purged: reuse its memory instead (if
                // the background purger got to it first, it is clean now).
                self.purge().remove(page);
            }
            let start = Segment::page_start(seg, slot);
            let bytes = 1 << (*seg).page_shift;
            (*page).init(start, bytes, class, CLASS_SIZE[class] as usize);
            (*heap).account.page(bytes, true);
            debug_assert!((*seg).check());
            page
        }
    }

    /// A segment came from the cache with its memory (see
    /// `Segment::retire`): every free page but `taken` is queued for
    /// purging like a page just retired, so what this heap does not reuse
    /// within the purge delay is purged then.
    ///
    /// # Safety
    ///
    /// `seg` is ours, fresh from the cache; `taken` is the slot being set up.
    unsafe fn adopt_resident(&mut self, seg: *mut Segment, taken: usize) {
        let now = options::now_ms();
        // SAFETY: the segment and its free pages are ours.
        unsafe {
            (*seg).resident = false;
            // Slot 0 past the header is never used: a medium segment's is
            // large, and may hold the memory of its life as a small one.
            let used_from = seg.cast::<u8>().add(segment::HEADER_SIZE);
            let gap = Segment::page_start(seg, 1) as usize - used_from as usize;
            if (*seg).kind == Kind::Medium && gap > 0 {
                crate::os::purge(ptr::NonNull::new_unchecked(used_from), gap);
            }
            for slot in 1..(*seg).slots {
                let page = ptr::addr_of_mut!((*seg).pages[slot]);
                debug_assert!(!(*page).in_use);
                if slot != taken && (*page).dirty {
                    self.purge().push_and_purge(page, now);
                }
            }
        }
    }

    /// Keeps the emptied page `page` of `class` in its bin, as a spare,
    /// instead of retiring it, if the class is being allocated from (it has
    /// a direct page) and has fewer than its quota of spares: a class whose
    /// live set swings across page boundaries then takes back a warm page
    /// with its free list built, rather than retiring pages and setting up
    /// fresh ones a moment later (retiring every emptied page cost 10–15%
    /// on the single-thread `local` workload). A spare stops being one when
    /// it becomes the direct page again or is retired (`collect`, exit).
    /// `true` if kept.
    ///
    /// # Safety
    ///
    /// `page` is an empty, unpinned page of `class` in `bins[class]`.
    pub(crate) unsafe fn keep_as_spare(&mut self, class: usize, page: *mut Page) -> bool {
        let quota = if crate::size_class::is_small(class) {
            SMALL_SPARES
        } else {
            MEDIUM_SPARES
        };
        if self.direct[class] == empty_page() || self.spares[class] >= quota {
            return false;
        }
        self.spares[class] += 1;
        // SAFETY: the caller's page.
        unsafe { (*page).spare = true };
        true
    }

    /// `page` stops being a spare (it is allocated from again, or retired).
    ///
    /// # Safety
    ///
    /// `page` is a live page of ours.
    pub(crate) unsafe fn unspare(&mut self, page: *mut Page) {
        // SAFETY: the caller's page.
        unsafe {
            if (*page).spare {
                (*page).spare = false;
                self.spares[(*page).class as usize] -= 1;
            }
        }
    }

    /// Makes `page` the one `class` allocates from (the empty page: none),
    /// moving the pin (one count of `used`, see `page`) from the old direct
    /// page to the new one. An old direct page left with no block is
    /// retired.
    ///
    /// # Safety
    ///
    /// `page` is the empty page or an in-use page of ours of `class`.
    pub(crate) unsafe fn set_direct(&mut self, class: usize, page: *mut Page) {
        let old = self.direct[class];
        if old == page {
            return;
        }
        self.direct[class] = page;
        if class < size_class::DIRECT_CLASSES {
            for slot in size_class::slots_of_class(class) {
                self.by_size[slot] = page;
            }
        }
        // SAFETY: `page` and `old` are the empty page (never written) or
        // live pages of ours.
        unsafe {
            if page != empty_page() {
                debug_assert!((*page).in_use && !(*page).pinned);
                self.unspare(page);
                (*page).count_out(1);
                (*page).pinned = true;
            }
            if old != empty_page() {
                debug_assert!((*old).pinned);
                (*old).pinned = false;
                if (*old).unpin_empties() {
                    self.retire_page(old);
                }
            }
        }
    }

    /// Gives an unused page back to its segment; its memory waits on the
    /// purge queue (or is purged at once with a zero delay).
    pub(crate) unsafe fn retire_page(&mut self, page: *mut Page) {
        // SAFETY: the page is ours, in use, with `used == 0`.
        unsafe {
            debug_assert!((*page).is_unused() && (*page).in_use && !(*page).in_full);
            debug_assert!((*page).check(), "homing: page invariant broken");
            debug_assert!(!(*page).pinned && self.direct[(*page).class as usize] != page);
            self.unspare(page);
            let class = (*page).class as usize;
            self.bins[class].remove(page);
            (*page).in_use = false;
            (*page).free = ptr::null_mut();
            (*page).local_free = ptr::null_mut();
            (*page).block_size = 0;
            let seg = segment::segment_of_page(page);
            (*(*seg).heap.cast::<Heap>())
                .account
                .page(1 << (*seg).page_shift, false);
            let emptied = self.segments.give_slot(seg, Segment::slot_of(seg, page));
            if (*page).dirty {
                // Queued, and whatever waited long enough purged, under one
                // hold of the queue (all of it with a zero delay).
                self.purge().push_and_purge(page, options::now_ms());
            }
            if emptied {
                self.segment_emptied(seg);
            }
        }
    }

    /// A segment has no page in use: unmap it, unless we keep it as a spare.
    pub(crate) unsafe fn segment_emptied(&mut self, seg: *mut Segment) {
        // SAFETY: the segment is ours and holds no live block.
        unsafe {
            let spares = self.segments.other_empty(seg);
            if spares >= options::keep_segments() {
                self.release_segment(seg, true);
            }
        }
    }

    /// Gives back one of our small/medium segments, which holds no live
    /// block, to the segment cache (see `Segment::retire`; `warm`: its memory
    /// is purged after the delay rather than now).
    pub(crate) unsafe fn release_segment(&mut self, seg: *mut Segment, warm: bool) {
        // SAFETY: the segment is ours and unused.
        unsafe {
            for slot in 1..(*seg).slots {
                let page = ptr::addr_of_mut!((*seg).pages[slot]);
                if !(*page).in_use && (*page).dirty {
                    self.purge().remove(page);
                }
            }
            self.segments.unlink(seg);
            (*(*seg).heap.cast::<Heap>())
                .account
                .segment(SEGMENT_SIZE, false);
            Segment::retire(seg, warm);
        }
    }
}
