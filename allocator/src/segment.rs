//! Segments: aligned runs of OS memory holding pages and their metadata.
//!
//! # Layout
//!
//! A segment is [`SEGMENT_SIZE`] (4 MiB) of address space aligned to its
//! size, so `ptr & !SEGMENT_MASK` finds the segment of any pointer inside it
//! in one instruction, with no lock and no global map. Its first page slot
//! holds this header (the `Segment` struct, ~6 KiB, i.e. two OS pages of RSS;
//! the rest of the slot is never touched). The remaining slots are pages:
//!
//! | kind | page size | pages | classes |
//! |---|---|---|---|
//! | small  | 64 KiB  | 63 | up to `SMALL_MAX` (8 KiB) |
//! | medium | 512 KiB | 7  | up to `MEDIUM_MAX` (128 KiB) |
//! | huge   | the block | 1 | one block of any size and alignment |
//!
//! The page of a pointer is `pages[(ptr - segment) >> page_shift]`.
//!
//! A huge segment is one mapping per block (reused for another block after
//! a free, through `huge::cache`). Its block starts right after the
//! header, unless the block's alignment is at least `SEGMENT_SIZE`: then the
//! block is segment-aligned (masking would find the block itself) and the
//! header sits exactly `SEGMENT_SIZE` below it. So a segment-aligned pointer
//! always means "huge, header one segment below": no small or medium block
//! starts at a segment's base, since the header is there.
//!
//! # Who touches what
//!
//! `heap`, `kind`, `page_shift` and the mapping fields are written once,
//! before any block of the segment exists, and only read afterwards: any
//! thread holding a block pointer received it through some synchronisation
//! that happened after those writes, so plain reads are enough. (A cached
//! huge mapping's header is rewritten by the thread that takes it, before
//! its new block exists; the cache's lock orders that after the last
//! free.) Everything
//! else (`free_slots`, `used_pages`, links, the pages) belongs to the owner
//! heap.
//!
//! # Invariant
//!
//! `used_pages + popcount(free_slots) == slots - 1` (slot 0 is the header).

use core::mem::size_of;
use core::ptr::{self, NonNull};

use crate::list::Links;
use crate::os;
use crate::page::Page;

/// log2 of the segment size.
pub const SEGMENT_SHIFT: usize = 22;
/// Size and alignment of a segment: large enough that header overhead is
/// small (2 OS pages per 4 MiB), small enough that one heap's first segment
/// does not reserve much address space.
pub const SEGMENT_SIZE: usize = 1 << SEGMENT_SHIFT;
/// Low bits of an address inside its segment.
pub const SEGMENT_MASK: usize = SEGMENT_SIZE - 1;
// The page sizes are the size classes' (a class lives in pages of one
// size); `size_class` defines them, below this layer.
pub use crate::size_class::{
    MEDIUM_PAGE_SHIFT, MEDIUM_PAGE_SIZE, SMALL_PAGE_SHIFT, SMALL_PAGE_SIZE,
};
/// Page slots of a small segment (the first is the header).
pub const PAGE_SLOTS: usize = SEGMENT_SIZE / SMALL_PAGE_SIZE;
/// A huge segment's `page_shift`: every offset maps to page 0.
const HUGE_PAGE_SHIFT: usize = usize::BITS as usize - 1;

/// The heap that owns a segment, as the segment sees it: an opaque type
/// (the heap layer, above this one, casts it to its `Heap`), so this module
/// depends on nothing above it.
pub(crate) enum HeapOwner {}

/// What a segment holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum Kind {
    /// 64 KiB pages.
    Small = 0,
    /// 512 KiB pages.
    Medium = 1,
    /// One huge block.
    Huge = 2,
}

/// The header at the start of every segment.
#[repr(C)]
pub(crate) struct Segment {
    /// Owner heap; null for a huge block that any thread may release.
    pub(crate) heap: *mut HeapOwner,
    /// log2 of the page size (a huge segment: everything is page 0).
    pub(crate) page_shift: usize,
    /// Small, medium or huge.
    pub(crate) kind: Kind,
    /// Page slots including the header slot.
    pub(crate) slots: usize,
    /// Pages in use (owner only).
    pub(crate) used_pages: usize,
    /// Bit `i` set: slot `i` is a free page (owner only).
    pub(crate) free_slots: u64,
    /// Links in the heap's list of segments with a free slot (owner only;
    /// see `segments`).
    pub(crate) avail_links: Links<Segment>,
    /// `true` while on that list.
    pub(crate) in_avail: bool,
    /// Links in the heap's list of all its segments (owner only).
    pub(crate) all_links: Links<Segment>,
    /// The mapping to give back: base, size, alignment.
    pub(crate) map_base: *mut u8,
    pub(crate) map_size: usize,
    pub(crate) map_align: usize,
    /// A huge segment's block and its usable size.
    pub(crate) huge_block: *mut u8,
    pub(crate) huge_size: usize,
    /// Bytes at the start of a huge block that may be non-zero when it is
    /// handed out (0: a fresh mapping; see `reuse_huge`).
    pub(crate) huge_dirty: usize,
    /// `true` while the page area may hold memory no page accounts for: the
    /// segment was cached without being purged (see [`Segment::retire`]).
    /// The heap that takes it queues its free pages for purging
    /// (`Owned::new_page`) and clears the flag.
    pub(crate) resident: bool,
    /// When it was cached (resident), for its purge delay.
    pub(crate) cached_at_ms: u64,
    /// Page metadata, indexed by slot.
    pub(crate) pages: [Page; PAGE_SLOTS],
    /// Under loom: a cell standing for the header's plain fields, written
    /// by whoever holds the segment, so a hand-over through the segment
    /// cache without a happens-before edge is reported as a data race.
    #[cfg(loom)]
    pub(crate) model_cell: loom::cell::UnsafeCell<usize>,
}

/// Where a huge block sits in its mapping (see [`Segment::huge_layout`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HugeLayout {
    /// Alignment of the mapping's base.
    pub(crate) map_align: usize,
    /// The header's offset in the mapping (0 unless the block is
    /// segment-aligned).
    pub(crate) header_off: usize,
    /// The block's offset in the mapping.
    pub(crate) block_off: usize,
    /// Bytes to map.
    pub(crate) map_size: usize,
}

/// Bytes of a segment header, rounded to whole OS pages.
pub(crate) const HEADER_SIZE: usize = (size_of::<Segment>() + os::OS_PAGE - 1) & !(os::OS_PAGE - 1);
const _: () = assert!(HEADER_SIZE <= SMALL_PAGE_SIZE, "the header must fit slot 0");
const _: () = assert!(
    crate::size_class::MEDIUM_MAX * 4 <= MEDIUM_PAGE_SIZE,
    "a medium page holds at least 4 blocks of the largest class"
);

impl Kind {
    /// The kind of segment whose pages serve `class`.
    #[inline]
    pub(crate) fn of_class(class: usize) -> Kind {
        if crate::size_class::is_small(class) {
            Kind::Small
        } else {
            Kind::Medium
        }
    }

    /// log2 of this kind's page size.
    pub(crate) fn page_shift(self) -> usize {
        match self {
            Kind::Small => SMALL_PAGE_SHIFT,
            Kind::Medium => MEDIUM_PAGE_SHIFT,
            Kind::Huge => HUGE_PAGE_SHIFT,
        }
    }
}

/// The segment header of a block pointer (small, medium or huge).
///
/// # Safety
///
/// `p` must point into a live block handed out by homing.
#[inline(always)]
pub(crate) unsafe fn segment_of(p: *mut u8) -> *mut Segment {
    let addr = p as usize;
    if addr & SEGMENT_MASK == 0 {
        // Only huge blocks with segment alignment start at a segment base.
        (addr - SEGMENT_SIZE) as *mut Segment
    } else {
        (addr & !SEGMENT_MASK) as *mut Segment
    }
}

/// `p` re-derived from its segment header's pointer: the same address,
/// with the provenance of the whole segment mapping (which `create` and
/// `create_huge` expose) rather than that of the caller's pointer, which a
/// Rust caller may have narrowed to its value's size. The free paths write
/// a freed block's first two words through this pointer.
///
/// # Safety
///
/// `seg` is `segment_of(p)`.
#[inline(always)]
pub(crate) unsafe fn block_ptr(seg: *mut Segment, p: *mut u8) -> *mut u8 {
    seg.cast::<u8>().wrapping_add(p as usize - seg as usize)
}

/// The page that holds `p`, in segment `seg`.
///
/// # Safety
///
/// `p` must lie inside `seg`'s page area.
#[inline(always)]
pub(crate) unsafe fn page_of(seg: *mut Segment, p: *mut u8) -> *mut Page {
    // SAFETY: `seg` is a live header; the index is below `slots` because `p`
    // lies inside the segment (a huge segment's shift maps everything to 0).
    unsafe {
        let idx = (p as usize - seg as usize) >> (*seg).page_shift;
        ptr::addr_of_mut!((*seg).pages).cast::<Page>().add(idx)
    }
}

impl Segment {
    /// A segment of `kind` (small or medium) for `heap`, every page slot
    /// but the header's free: from the cache of released segments when it
    /// has one, else freshly mapped. `None` when the OS says no.
    pub(crate) fn create(heap: *mut HeapOwner, kind: Kind) -> Option<NonNull<Segment>> {
        debug_assert!(kind != Kind::Huge);
        let shift = kind.page_shift();
        let slots = SEGMENT_SIZE >> shift;
        let seg = match cache::take() {
            Some(cached) => {
                // SAFETY: a cached segment is nobody's. Reset its page
                // metadata; a resident one keeps, per page, whether its
                // memory may still be resident (`dirty`), so the taker
                // queues for purging only those (`Owned::adopt_resident`).
                // Taken as the other kind, its slots do not match the old
                // ones: every page may be.
                unsafe {
                    let s = cached.as_ptr();
                    let resident = (*s).resident;
                    let same_kind = (*s).kind == kind;
                    let pages = ptr::addr_of_mut!((*s).pages).cast::<Page>();
                    for i in 0..PAGE_SLOTS {
                        let page = pages.add(i);
                        let dirty = resident && i > 0 && i < slots && (!same_kind || (*page).dirty);
                        page.write(Page::EMPTY);
                        (*page).dirty = dirty;
                    }
                }
                cached
            }
            None => os::map(SEGMENT_SIZE, SEGMENT_SIZE)?.cast::<Segment>(),
        };
        // SAFETY: zeroed or reset memory, exclusively ours; a zeroed `Page`
        // is a valid free page (all pointers null, flags false), so only the
        // header fields need writing.
        unsafe {
            let s = seg.as_ptr();
            (*s).heap = heap;
            (*s).page_shift = shift;
            (*s).kind = kind;
            (*s).slots = slots;
            (*s).used_pages = 0;
            // Slots 1..slots are free; slot 0 is the header.
            (*s).free_slots = (u64::MAX >> (64 - slots)) & !1;
            (*s).avail_links = Links::NONE;
            (*s).in_avail = false;
            (*s).all_links = Links::NONE;
            (*s).map_base = seg.as_ptr().cast();
            (*s).map_size = SEGMENT_SIZE;
            (*s).map_align = SEGMENT_SIZE;
            #[cfg(loom)]
            ptr::addr_of_mut!((*s).model_cell).write(loom::cell::UnsafeCell::new(0));
        }
        // Free paths find the segment by address (`segment_of`) and reach
        // its blocks through it: expose the mapping's provenance.
        let _ = seg.as_ptr().expose_provenance();
        #[cfg(feature = "checked")]
        crate::live_segments::register(seg.as_ptr() as usize);
        Some(seg)
    }

    /// Gives back a small or medium segment that no block uses any more: it
    /// goes to the cache of released segments, or back to the OS when the
    /// cache is full. Threads that come and go (and heaps that empty and
    /// refill) thus reuse address space without `mmap`/`munmap` and their
    /// TLB shootdowns.
    ///
    /// With `warm`, its memory follows the purge delay, as a free page's
    /// does (otherwise it is purged now, for `collect` and `destroy`): cached
    /// resident, it is purged (one `madvise`) once `HOMING_PURGE_DELAY_MS`
    /// has passed, by the next retire, the background purger or memory
    /// pressure. A heap that takes it before then reuses its memory without
    /// page faults: threads that hand their live sets on as they are
    /// replaced (a server's workers) otherwise faulted every page of every
    /// generation in again.
    ///
    /// # Safety
    ///
    /// `seg` is live, unlinked from its heap, and nothing uses its memory.
    pub(crate) unsafe fn retire(seg: *mut Segment, warm: bool) {
        let delay = if warm {
            crate::options::purge_delay_ms()
        } else {
            0
        };
        let now = crate::options::now_ms();
        // SAFETY: forwarded from the caller; the purged range lies inside
        // the segment, past its header.
        unsafe {
            debug_assert!((*seg).kind != Kind::Huge);
            if delay == 0 {
                Segment::purge_area(seg);
            } else {
                (*seg).resident = true;
                (*seg).cached_at_ms = now;
            }
            #[cfg(feature = "checked")]
            crate::live_segments::unregister(seg as usize);
            if !cache::put(seg) {
                #[cfg(feature = "checked")]
                crate::live_segments::register(seg as usize);
                Segment::destroy(seg);
            }
        }
        cache::purge_expired(now);
    }

    /// Purges a segment's page area and clears `resident`.
    ///
    /// # Safety
    ///
    /// The caller holds `seg` (nobody else uses it) and no block lives in it.
    pub(crate) unsafe fn purge_area(seg: *mut Segment) {
        // SAFETY: forwarded; the range lies inside the segment, past its
        // header.
        unsafe {
            let area = seg.cast::<u8>().add(HEADER_SIZE);
            os::purge(NonNull::new_unchecked(area), SEGMENT_SIZE - HEADER_SIZE);
            (*seg).resident = false;
        }
    }

    /// Where a huge block of `size` bytes aligned to `align` sits in its
    /// mapping (and so how much to map). `None` if
    /// the sizes overflow or pass `isize::MAX`.
    pub(crate) fn huge_layout(size: usize, align: usize) -> Option<HugeLayout> {
        let align = align.max(crate::size_class::MIN_ALIGN);
        // Every block holds at least two words (checked mode writes its
        // mark in the second): a zero-byte segment-aligned block would
        // otherwise start exactly at its mapping's end.
        let size = size.max(crate::size_class::MIN_ALIGN);
        let (map_align, header_off, block_off) = if align >= SEGMENT_SIZE {
            // Block at `base + align`, header one segment below it.
            (align, align - SEGMENT_SIZE, align)
        } else {
            (SEGMENT_SIZE, 0, os::align_up(size_of::<Segment>(), align)?)
        };
        let map_size = os::align_up(block_off.checked_add(size)?, os::OS_PAGE)?;
        if map_size > isize::MAX as usize {
            return None;
        }
        Some(HugeLayout {
            map_align,
            header_off,
            block_off,
            map_size,
        })
    }

    /// Maps a huge block of `size` bytes aligned to `align` (a power of two),
    /// owned by `heap` (null: released by whoever frees it). Returns the
    /// segment; its block is `huge_block`. Fresh memory: the block reads as
    /// zero (`huge_dirty == 0`).
    pub(crate) fn create_huge(
        heap: *mut HeapOwner,
        size: usize,
        align: usize,
    ) -> Option<NonNull<Segment>> {
        let layout = Segment::huge_layout(size, align)?;
        let base = os::map(layout.map_size, layout.map_align)?;
        // As in `create`: blocks are reached through the header's address.
        let _ = base.as_ptr().expose_provenance();
        // SAFETY: the header offset lies inside the fresh mapping we own.
        let s = unsafe { base.as_ptr().add(layout.header_off).cast::<Segment>() };
        // SAFETY: a fresh mapping of `layout.map_size` bytes, ours.
        unsafe {
            (*s).map_base = base.as_ptr();
            (*s).map_size = layout.map_size;
            (*s).map_align = layout.map_align;
            #[cfg(loom)]
            ptr::addr_of_mut!((*s).model_cell).write(loom::cell::UnsafeCell::new(0));
            Segment::init_huge(s, heap, layout.block_off, 0);
        }
        #[cfg(feature = "checked")]
        crate::live_segments::register(s as usize);
        // SAFETY: inside a live mapping, so not null.
        Some(unsafe { NonNull::new_unchecked(s) })
    }

    /// Serves a huge block from `seg`, a released huge segment whose header
    /// sits at its mapping's base (`map_align == SEGMENT_SIZE`): the block
    /// is placed for `align` and the header rewritten for `heap`. The block
    /// is not zeroed: `huge_dirty` says how many of its first bytes may
    /// hold old data (all of them if `!purged`; if its page area was
    /// purged, those before the end of the header's last OS page).
    ///
    /// # Safety
    ///
    /// `seg` is a released huge segment nobody else holds, and
    /// `huge_layout(size, align)` has `header_off == 0` and a `map_size` of
    /// at most `seg`'s.
    pub(crate) unsafe fn reuse_huge(
        seg: *mut Segment,
        heap: *mut HeapOwner,
        size: usize,
        align: usize,
        purged: bool,
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            debug_assert!((*seg).kind == Kind::Huge && (*seg).map_base == seg.cast());
            let align = align.max(crate::size_class::MIN_ALIGN);
            let block_off = (size_of::<Segment>() + align - 1) & !(align - 1);
            debug_assert!(block_off + size.max(crate::size_class::MIN_ALIGN) <= (*seg).map_size);
            let usable = (*seg).map_size - block_off;
            let dirty = if purged {
                HEADER_SIZE.saturating_sub(block_off).min(usable)
            } else {
                usable
            };
            Segment::init_huge(seg, heap, block_off, dirty);
        }
        #[cfg(feature = "checked")]
        crate::live_segments::register(seg as usize);
    }

    /// Writes a huge segment's header: everything but the mapping fields,
    /// which the caller has set.
    ///
    /// # Safety
    ///
    /// `s` is the header of a huge mapping the caller holds alone.
    unsafe fn init_huge(s: *mut Segment, heap: *mut HeapOwner, block_off: usize, dirty: usize) {
        // SAFETY: forwarded from the caller; the block lies in the mapping.
        unsafe {
            let base = (*s).map_base;
            (*s).heap = heap;
            (*s).page_shift = HUGE_PAGE_SHIFT;
            (*s).kind = Kind::Huge;
            (*s).slots = 1;
            (*s).used_pages = 1;
            (*s).free_slots = 0;
            (*s).avail_links = Links::NONE;
            (*s).in_avail = false;
            (*s).all_links = Links::NONE;
            (*s).huge_block = base.add(block_off);
            (*s).huge_size = (*s).map_size - block_off;
            (*s).huge_dirty = dirty;
            // Page 0 makes the owner's local free path fall to its slow path:
            // one block in use, flagged like a full page. (A reused header's
            // page 0 may hold whatever the last free left in it: start over.)
            let page = ptr::addr_of_mut!((*s).pages).cast::<Page>();
            page.write(Page::EMPTY);
            let page = &mut *page;
            page.set_used(1);
            page.mark_full();
            page.in_use = true;
            page.capacity = 1;
            page.reserved = 1;
            page.start = (*s).huge_block;
        }
    }

    /// Gives the whole segment back to the OS.
    ///
    /// # Safety
    ///
    /// `seg` must be live and nothing may use its memory afterwards.
    pub(crate) unsafe fn destroy(seg: *mut Segment) {
        #[cfg(feature = "checked")]
        crate::live_segments::unregister(seg as usize);
        // SAFETY: the header is live until the unmap below; the mapping
        // fields are exactly what `os::map` returned.
        unsafe {
            let (base, size, align) = ((*seg).map_base, (*seg).map_size, (*seg).map_align);
            os::unmap(NonNull::new_unchecked(base), size, align);
        }
    }

    /// Start of page slot `slot`.
    pub(crate) fn page_start(seg: *mut Segment, slot: usize) -> *mut u8 {
        // SAFETY: the header is live; the slot lies inside the segment.
        unsafe { seg.cast::<u8>().add(slot << (*seg).page_shift) }
    }

    /// Slot index of `page` in `seg`.
    pub(crate) fn slot_of(seg: *mut Segment, page: *mut Page) -> usize {
        // SAFETY: `page` points into `seg`'s page array.
        unsafe { page.offset_from(ptr::addr_of_mut!((*seg).pages).cast::<Page>()) as usize }
    }

    /// Checks the slot invariant.
    pub(crate) fn check(&self) -> bool {
        self.kind == Kind::Huge
            || self.used_pages + self.free_slots.count_ones() as usize == self.slots - 1
    }
}

/// The segment a page's metadata lives in.
#[inline]
pub(crate) fn segment_of_page(page: *mut Page) -> *mut Segment {
    // Page metadata lives in the header, inside the segment's first slot.
    ((page as usize) & !SEGMENT_MASK) as *mut Segment
}

/// The cache of released segments: a few slots, each a pointer swapped in
/// and out with one compare-exchange (no ABA hazard: a slot that held the
/// same segment twice still holds a valid cached segment).
pub(crate) mod cache {
    use core::ptr::{self, NonNull};

    use super::Segment;
    use crate::sync::{AtomicPtr, AtomicUsize, Ordering};

    /// Segments kept: 16 × 4 MiB of address space (RSS only for the purge
    /// delay, see `Segment::retire`).
    pub(crate) const CACHE_SLOTS: usize = 16;

    /// A cache of released segments (the process has one, [`CACHE`]; the
    /// loom model makes its own).
    pub(crate) struct SegmentCache {
        slots: [AtomicPtr<Segment>; CACHE_SLOTS],
        /// Segments in the cache now (a statistic).
        cached: AtomicUsize,
    }

    /// A slot's segment without its tag bit.
    fn untag(seg: *mut Segment) -> *mut Segment {
        seg.map_addr(|a| a & !1)
    }

    /// The process's cache.
    #[cfg(not(loom))]
    pub(crate) static CACHE: SegmentCache = SegmentCache {
        slots: [const { AtomicPtr::new(ptr::null_mut()) }; CACHE_SLOTS],
        cached: AtomicUsize::new(0),
    };

    impl SegmentCache {
        /// An empty cache (loom's atomics are not `const`).
        #[cfg(loom)]
        pub(crate) fn new() -> SegmentCache {
            SegmentCache {
                slots: core::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
                cached: AtomicUsize::new(0),
            }
        }

        /// Caches `seg`; `false` if the cache is full. A resident segment's
        /// slot carries a tag bit (segments are aligned), so `take` can
        /// prefer it without reading headers it does not hold.
        pub(crate) fn put(&self, seg: *mut Segment) -> bool {
            // SAFETY: the caller holds `seg` until the exchange below.
            let tagged = seg.map_addr(|a| a | usize::from(unsafe { (*seg).resident }));
            for slot in &self.slots {
                // Relaxed load: a hint. Release on success: the taker
                // (Acquire) sees the segment's header as we left it.
                if slot.load(Ordering::Relaxed).is_null()
                    && slot
                        .compare_exchange(
                            ptr::null_mut(),
                            tagged,
                            Ordering::Release,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                {
                    // Relaxed: a statistic.
                    self.cached.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
            }
            false
        }

        /// Takes a cached segment, if any: a resident one (warm memory, no
        /// page faults) if there is one.
        pub(crate) fn take(&self) -> Option<NonNull<Segment>> {
            for want_warm in [true, false] {
                for slot in &self.slots {
                    let seg = slot.load(Ordering::Relaxed);
                    // Acquire: pairs with `put`'s Release.
                    if !seg.is_null()
                        && (!want_warm || seg.addr() & 1 == 1)
                        && slot
                            .compare_exchange(
                                seg,
                                ptr::null_mut(),
                                Ordering::Acquire,
                                Ordering::Relaxed,
                            )
                            .is_ok()
                    {
                        // Relaxed: a statistic.
                        self.cached.fetch_sub(1, Ordering::Relaxed);
                        return NonNull::new(untag(seg));
                    }
                }
            }
            None
        }

        /// Empties the cache, handing each segment to `release`. Returns
        /// how many.
        pub(crate) fn drain(&self, mut release: impl FnMut(*mut Segment)) -> usize {
            let mut n = 0;
            for slot in &self.slots {
                // Acquire: pairs with `put`'s Release, as in `take`.
                let seg = untag(slot.swap(ptr::null_mut(), Ordering::Acquire));
                if !seg.is_null() {
                    // Relaxed: a statistic.
                    self.cached.fetch_sub(1, Ordering::Relaxed);
                    release(seg);
                    n += 1;
                }
            }
            n
        }

        /// As [`purge_expired`] on this cache, with purge delay `delay`.
        pub(crate) fn purge_expired(&self, now_ms: u64, delay: usize) {
            if delay == crate::options::NEVER || self.len() == 0 {
                return;
            }
            for slot in &self.slots {
                let seg = slot.load(Ordering::Relaxed);
                // Acquire: pairs with `put`'s Release, as in `take`.
                if seg.is_null()
                    || slot
                        .compare_exchange(
                            seg,
                            ptr::null_mut(),
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        )
                        .is_err()
                {
                    continue;
                }
                let seg = untag(seg);
                // SAFETY: taken out of the cache: ours until put back; a
                // cached segment holds no block.
                unsafe {
                    if (*seg).resident && now_ms >= (*seg).cached_at_ms.saturating_add(delay as u64)
                    {
                        Segment::purge_area(seg);
                    }
                }
                // Release (both): the next taker sees the header as we left
                // it. The slot may have been filled meanwhile: another one
                // will do, and with none free the segment goes back to the OS.
                // SAFETY: still ours.
                let tagged = seg.map_addr(|a| a | usize::from(unsafe { (*seg).resident }));
                if slot
                    .compare_exchange(
                        ptr::null_mut(),
                        tagged,
                        Ordering::Release,
                        Ordering::Relaxed,
                    )
                    .is_err()
                    && !self.put_back(seg)
                {
                    // Relaxed: a statistic.
                    self.cached.fetch_sub(1, Ordering::Relaxed);
                    // SAFETY: ours, holding nothing.
                    unsafe { Segment::destroy(seg) };
                }
            }
        }

        /// `put` without counting (the segment was counted when cached).
        fn put_back(&self, seg: *mut Segment) -> bool {
            let ok = self.put(seg);
            if ok {
                // Relaxed: a statistic; `put` counted it again.
                self.cached.fetch_sub(1, Ordering::Relaxed);
            }
            ok
        }

        /// Segments cached now.
        pub(crate) fn len(&self) -> usize {
            // Relaxed: a statistic.
            self.cached.load(Ordering::Relaxed)
        }
    }

    /// Caches `seg` in the process's cache; `false` if it is full.
    #[cfg(not(loom))]
    pub(super) fn put(seg: *mut Segment) -> bool {
        CACHE.put(seg)
    }

    /// Takes a segment from the process's cache.
    #[cfg(not(loom))]
    pub(super) fn take() -> Option<NonNull<Segment>> {
        CACHE.take()
    }

    /// Purges the cached segments that have kept their memory for their
    /// purge delay at `now_ms` (see [`Segment::retire`]). Each is taken out
    /// of the cache while it is looked at (only a holder may read a header),
    /// then put back.
    pub(crate) fn purge_expired(now_ms: u64) {
        #[cfg(not(loom))]
        CACHE.purge_expired(now_ms, crate::options::purge_delay_ms());
        #[cfg(loom)]
        let _ = now_ms;
    }

    /// Unmaps every cached segment (the OS refused memory: cached segments
    /// hold address space and commit charge). Returns how many.
    #[cfg(not(loom))]
    pub(crate) fn drain() -> usize {
        // SAFETY: a cached segment is nobody's and holds nothing.
        CACHE.drain(|seg| unsafe { Segment::destroy(seg) })
    }

    /// Under loom the allocator runs without a process cache (the model
    /// drives a [`SegmentCache`] of its own).
    #[cfg(loom)]
    pub(super) fn put(_seg: *mut Segment) -> bool {
        false
    }

    #[cfg(loom)]
    pub(super) fn take() -> Option<NonNull<Segment>> {
        None
    }

    /// Bytes of address space held by the cache (resident only until each
    /// segment's purge delay has passed).
    pub(crate) fn cached_bytes() -> usize {
        #[cfg(not(loom))]
        {
            CACHE.len() * super::SEGMENT_SIZE
        }
        #[cfg(loom)]
        0
    }
}
