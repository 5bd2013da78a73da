//! Huge blocks: requests no size class serves (above `MEDIUM_MAX`, or more
//! aligned than a page can give) get a mapping of their own, a *huge
//! segment* whose header describes the one block (see `segment`).
//!
//! # Who owns them
//!
//! A thread heap leaves its huge blocks unowned (`heap` null in the
//! header): whichever thread frees one unmaps it, with no message to the
//! allocating thread. A first-class heap owns its huge blocks (they are on
//! its segment list, so `destroy` releases them too) and counts them
//! against its limit.
//!
//! # Growing
//!
//! `realloc` first tries to extend the mapping where it lies (`mremap`
//! without moving, so the base and its alignment never change); if the
//! address range after it is taken, `global::realloc` moves the block with
//! half again of headroom, so growth in small steps copies O(log n) times.

use core::ptr::{self, NonNull};

use crate::heap::Heap;
use crate::os;
use crate::segment::{self, Kind, Segment};
use crate::stats::GLOBAL;

impl Heap {
    /// Maps a huge block. Thread heaps leave it unowned (any thread unmaps
    /// it on free); a first-class heap keeps it on its segment list so
    /// `destroy` releases it too.
    ///
    /// # Safety
    ///
    /// As for `alloc_class`.
    pub(crate) unsafe fn alloc_huge(heap: *mut Heap, size: usize, align: usize) -> *mut u8 {
        // SAFETY: the caller owns `heap`.
        let owned = unsafe { !(*heap).is_thread_heap };
        let owner = if owned { heap } else { ptr::null_mut() };
        // SAFETY: the caller owns `heap`. (A first-class heap's limit: the
        // request is a lower bound of the mapping.)
        if owned && unsafe { !(*heap).account.admit(size) } {
            return ptr::null_mut();
        }
        let Some(seg) = Segment::create_huge(owner.cast(), size, align) else {
            return ptr::null_mut();
        };
        let seg = seg.as_ptr();
        // SAFETY: fresh segment; the heap is ours.
        unsafe {
            if owned {
                (*heap).owned.segments.link_huge(seg);
                crate::stats::sample_peak(&(*heap).counters, &(*heap).account);
                (*heap).account.huge((*seg).map_size, true);
            }
            GLOBAL.huge((*seg).map_size, true);
            (*seg).huge_block
        }
    }

    /// Grows the huge block `p` to at least `new_size` bytes without moving
    /// it, if its mapping can be extended in place. Blocks whose header sits
    /// a segment below them (alignment of a segment or more) are not grown.
    ///
    /// # Safety
    ///
    /// `p` is a live huge block.
    pub(crate) unsafe fn grow_huge_in_place(p: *mut u8, new_size: usize) -> bool {
        // SAFETY: `p` is live, so its header is.
        unsafe {
            let seg = segment::segment_of(p);
            if (*seg).kind != Kind::Huge || (*seg).map_base != seg.cast() {
                return false;
            }
            let offset = p as usize - (*seg).map_base as usize;
            let Some(total) = offset.checked_add(new_size) else {
                return false;
            };
            let Some(new_map) = os::align_up(total, os::OS_PAGE) else {
                return false;
            };
            let old_map = (*seg).map_size;
            let owner = (*seg).heap.cast::<Heap>();
            if !owner.is_null() && !(*owner).account.admit(new_map.saturating_sub(old_map)) {
                return false;
            }
            if new_map > isize::MAX as usize
                || !os::grow_in_place(NonNull::new_unchecked((*seg).map_base), old_map, new_map)
            {
                return false;
            }
            (*seg).map_size = new_map;
            (*seg).huge_size = new_map - offset;
            GLOBAL.huge_resized(old_map, new_map);
            if !owner.is_null() {
                (*owner).account.huge_resized(old_map, new_map);
            }
            true
        }
    }

    /// Releases a huge block's segment.
    ///
    /// # Safety
    ///
    /// `seg` is a live huge segment whose block nobody uses any more; if it
    /// is owned, the caller owns its heap.
    pub(crate) unsafe fn free_huge(seg: *mut Segment) {
        // SAFETY: forwarded from the caller.
        unsafe {
            let owner = (*seg).heap.cast::<Heap>();
            if !owner.is_null() {
                (*owner).owned.segments.unlink(seg);
                (*owner).account.huge((*seg).map_size, false);
            }
            GLOBAL.huge((*seg).map_size, false);
            Segment::destroy(seg);
        }
    }
}
