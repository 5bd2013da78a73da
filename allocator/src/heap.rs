//! Heaps: the allocator state one thread (or one first-class `Heap`) owns.
//!
//! # Glossary
//!
//! - `direct[class]`: the page the fast path pops from for each class (the
//!   static empty page when there is none, so the fast path needs no null
//!   check beyond "free list empty").
//! - `by_size[slot]`: the same pointers again for the small classes, per
//!   16 bytes of request up to `SMALL_MAX`: `malloc` indexes it with
//!   `(size + 15) / 16` and needs no class (see `pop_by_size`).
//! - `bins[class]`: every page of the class that is not known to be full.
//!   `full`: pages that had no free block when last looked at; a local free
//!   into one moves it back (the `in_full` flag sends that free to the cold
//!   path).
//! - `purge_queue`: free pages whose memory has not been purged yet, oldest
//!   first.
//! - `avail[kind]`: segments with a free page slot; `all`: every segment.
//! - `inbox`: blocks of this heap freed by other threads (`homing-deferred`).
//! - `state`: who owns the heap (see below).
//!
//! # Who touches what
//!
//! Everything but `inbox` and `state` belongs to the owner: the thread the
//! heap is bound to (`ACTIVE`), or a thread that holds a short claim on an
//! abandoned heap (`CLAIMED`). Ownership moves between threads only through
//! `state` (see `remote` and `thread`): a Release store when letting go, an
//! Acquire compare-exchange when taking over, so the new owner sees every
//! plain write of the old one.
//!
//! # Invariants
//!
//! - A page is in exactly one of: `bins[class]`, `full`, `purge_queue`
//!   (free and dirty), or nowhere (free and purged, or the header slot).
//! - `direct[c]` is the empty page or a page of `bins[c]`.
//! - `by_size[s] == direct[class_of_slot(s)]` for every entry.
//! - Per page: see `page` (`used` counts remote frees in flight).

use core::ptr::{self, NonNull};

use homing_deferred::{Inbox, Node};

use crate::account::Account;
use crate::options;
use crate::outbox::{open_run, Outbox};
use crate::page::{prefetch, Block, Page, PageQueue};
use crate::purge::PurgeQueue;
use crate::segment::{self, Kind, Segment};
use crate::segments::SegmentSet;
use crate::size_class::{self, CLASSES, DIRECT_SLOTS};
use crate::stats::HeapCounters;
use crate::sync::AtomicUsize;

/// Empty pages a small class keeps in its bin (not retired) while it is
/// being allocated from (see `Owned::keep_as_spare`).
pub(crate) const SMALL_SPARES: u8 = 2;
/// The same for a medium class (a medium page is 512 KiB).
pub(crate) const MEDIUM_SPARES: u8 = 1;

/// Bound to a thread (or, for a first-class heap, to its creator).
pub(crate) const ACTIVE: usize = 0;
/// Its thread exited; pages and inbox wait for a claim or an adoption.
pub(crate) const ABANDONED: usize = 1;
/// Abandoned and briefly claimed by a thread that frees into it.
pub(crate) const CLAIMED: usize = 2;
/// Holds nothing; may be reused for a new heap.
pub(crate) const FREE: usize = 3;

/// `UnsafeCell` that may live in a `static`: the statics below are never
/// written (the empty page and heap only ever send allocations to the slow
/// path), so sharing them is sound.
#[repr(transparent)]
pub(crate) struct StaticCell<T>(pub(crate) core::cell::UnsafeCell<T>);
// SAFETY: see the type's doc: the contents are never written.
unsafe impl<T> Sync for StaticCell<T> {}

/// The page every empty `direct` slot points to: `free` is null forever.
static EMPTY_PAGE: StaticCell<Page> = StaticCell(core::cell::UnsafeCell::new(Page::EMPTY));

/// Pointer to the shared empty page.
#[inline(always)]
pub(crate) fn empty_page() -> *mut Page {
    EMPTY_PAGE.0.get()
}

/// The heap a thread has before its first allocation: every class points
/// to the empty page, so the first allocation takes the slow path, which
/// gives the thread a real heap. Never written.
#[cfg(not(loom))]
pub(crate) static EMPTY_HEAP: StaticCell<Heap> =
    StaticCell(core::cell::UnsafeCell::new(Heap::new_empty()));

/// Pointer to the shared empty heap.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn empty_heap() -> *mut Heap {
    EMPTY_HEAP.0.get()
}

/// Under loom there are no thread heaps: no pointer is the empty heap.
#[cfg(loom)]
pub(crate) fn empty_heap() -> *mut Heap {
    ptr::null_mut()
}

/// The owner-only part of a heap.
#[repr(C)]
pub(crate) struct Owned {
    /// Fast path of sizes up to `SMALL_MAX`: `direct` of the class of each
    /// 16 bytes of request (kept equal by `set_direct`, its one writer).
    /// First, so `malloc` indexes it straight off the heap pointer.
    pub(crate) by_size: [*mut Page; DIRECT_SLOTS],
    /// Fast path: the page to pop from, per class.
    pub(crate) direct: [*mut Page; CLASSES],
    pub(crate) bins: [PageQueue; CLASSES],
    pub(crate) full: PageQueue,
    /// Empty pages kept in each class's bin (see `keep_as_spare`).
    pub(crate) spares: [u8; CLASSES],
    /// Counts the slow paths taken (an allocation's, a free that emptied a
    /// page or found it full, an inbox drain): the heap has changed in
    /// ways a trim cares about since `trimmed_at` (see `collect_and_trim`).
    pub(crate) slow_paths: u32,
    /// `slow_paths` when the heap was last collected and trimmed.
    pub(crate) trimmed_at: u32,
    /// Its segments (see `segments`).
    pub(crate) segments: SegmentSet,
    /// The heap's purge queue (`Heap::purge`, beside this part: the
    /// background purger shares it). Null only in the static empty heap,
    /// which never retires a page.
    purge: *const PurgeQueue,
}

/// The per-thread (or first-class) heap.
#[repr(C)]
pub(crate) struct Heap {
    /// Everything only the owner touches. First field, so the fast path
    /// indexes `owned.by_size` straight off the heap pointer. The owner borrows
    /// this part mutably, never the whole heap: other threads use `inbox`
    /// and `state` meanwhile.
    pub(crate) owned: Owned,
    /// Blocks of this heap freed by other threads.
    pub(crate) inbox: Inbox,
    /// Free pages waiting to be purged; shared with the background purger.
    pub(crate) purge: PurgeQueue,
    /// `ACTIVE`, `ABANDONED`, `CLAIMED` or `FREE`.
    pub(crate) state: AtomicUsize,
    /// `true` for a thread's heap, `false` for a first-class `Heap` (whose
    /// remote frees are posted one by one, see `remote`).
    pub(crate) is_thread_heap: bool,
    /// Next heap in the global registry; written once before the heap is
    /// published there.
    pub(crate) registry_next: *mut Heap,
    /// This thread's remote frees waiting to be posted (thread heaps only).
    pub(crate) outbox: Outbox,
    /// Posts `outbox` (the remote-free layer's `flush_outbox`, above this
    /// one, handed in by whoever makes the heap): the allocation slow path
    /// posts pending remote frees through it.
    pub(crate) post_outbox: unsafe fn(*mut Heap),
    /// Counters (owner-written).
    pub(crate) counters: HeapCounters,
    /// Hand-off word, limit and byte counts (see `account`).
    pub(crate) account: Account,
    /// Under loom: a cell standing for every owner-only field. Each owner
    /// operation writes it, so a hand-over of the heap between threads
    /// without a happens-before edge is reported as a data race.
    #[cfg(loom)]
    pub(crate) owner_token: loom::cell::UnsafeCell<usize>,
}

impl Heap {
    /// The empty heap's value: no pages, every class on the empty page.
    #[cfg(not(loom))]
    const fn new_empty() -> Heap {
        empty_heap_value!()
    }

    /// The empty heap's value (loom's atomics are not `const`).
    #[cfg(loom)]
    fn new_empty() -> Heap {
        empty_heap_value!()
    }
}

/// The empty heap's `post_outbox`: it never has anything to post.
///
/// # Safety
///
/// None: it does nothing.
unsafe fn no_outbox(_heap: *mut Heap) {}

/// The field values of an empty heap, shared by the `const` and the loom
/// constructor.
macro_rules! empty_heap_value {
    () => {
        Heap {
            owned: Owned::EMPTY,
            inbox: Inbox::new(),
            purge: PurgeQueue::new(),
            state: AtomicUsize::new(ACTIVE),
            is_thread_heap: true,
            registry_next: ptr::null_mut(),
            outbox: Outbox::new(),
            post_outbox: no_outbox,
            counters: HeapCounters::new(),
            account: Account::new(),
            #[cfg(loom)]
            owner_token: loom::cell::UnsafeCell::new(0),
        }
    };
}
use empty_heap_value;

impl Heap {
    /// Writes a fresh heap at `at` (memory the caller owns).
    ///
    /// # Safety
    ///
    /// `at` must be valid for writes of a `Heap` and unaliased.
    pub(crate) unsafe fn init_at(
        at: *mut Heap,
        is_thread_heap: bool,
        state: usize,
        post_outbox: unsafe fn(*mut Heap),
    ) {
        let mut heap = Heap::new_empty();
        heap.is_thread_heap = is_thread_heap;
        heap.post_outbox = post_outbox;
        heap.state = AtomicUsize::new(state);
        // SAFETY: forwarded from the caller; the heap never moves again.
        unsafe {
            at.write(heap);
            (*at).owned.purge = ptr::addr_of!((*at).purge);
        }
    }

    /// Resets a heap that holds no segment for reuse (keeps its registry
    /// link and state).
    ///
    /// # Safety
    ///
    /// The caller owns `heap`, which holds no segment and whose inbox is
    /// empty or discarded.
    pub(crate) unsafe fn reset(heap: *mut Heap, is_thread_heap: bool) {
        // SAFETY: the caller owns the heap.
        unsafe {
            debug_assert!((*heap).owned.segments.is_empty() && (*heap).purge.is_empty());
            (*heap).owned = Owned::EMPTY;
            (*heap).owned.purge = ptr::addr_of!((*heap).purge);
            (*heap).is_thread_heap = is_thread_heap;
        }
    }

    /// Marks an access to owner-only state (a loom-checked write under
    /// `cfg(loom)`, nothing otherwise).
    #[inline(always)]
    pub(crate) fn touch_owned(&self) {
        #[cfg(loom)]
        // SAFETY: only the owner calls this; loom reports it if two threads
        // do so without a happens-before edge between them.
        self.owner_token.with_mut(|t| unsafe { *t += 1 });
    }

    /// `true` if the heap holds no segment at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.owned.segments.is_empty()
    }

    // ----------------------------------------------------------------
    // Allocation
    // ----------------------------------------------------------------

    /// The fast path: pops a block of `class` from the direct page's free
    /// list, or returns null when it is empty. Works on the empty heap too
    /// (its direct pages are the empty page: always null, never written).
    ///
    /// # Safety
    ///
    /// The caller owns `heap` (or it is the empty heap).
    #[inline(always)]
    pub(crate) unsafe fn pop_direct(heap: *mut Heap, class: usize) -> *mut u8 {
        // SAFETY: the caller owns the heap; `direct` pages are live.
        unsafe {
            let page = (*heap).owned.direct[class];
            let block = (*page).free;
            if !block.is_null() {
                Self::hand_out(heap, class, page, block);
            }
            block.cast()
        }
    }

    /// [`Heap::pop_direct`] for a size of at most `SMALL_MAX`, by its
    /// by-size entry `slot` (`size_class::slot_of`): no class lookup before
    /// the page's load. The block is counted by `slot` (`stats` folds the
    /// entries into their classes).
    ///
    /// # Safety
    ///
    /// As for `pop_direct`; `slot < DIRECT_SLOTS`.
    #[inline(always)]
    pub(crate) unsafe fn pop_by_size(heap: *mut Heap, slot: usize) -> *mut u8 {
        // SAFETY: the caller owns the heap; `by_size` pages are live (each
        // is a `direct` page or the empty page).
        unsafe {
            let page = (*heap).owned.by_size[slot];
            let block = (*page).free;
            if !block.is_null() {
                Self::unlink_head(page, block);
                (*heap).counters.allocs_by_size[slot].add(1);
            }
            block.cast()
        }
    }

    /// Allocates a block of `class`: the direct page, then the slow path.
    ///
    /// # Safety
    ///
    /// The caller owns `heap`, a real heap (not the empty one).
    #[inline]
    pub(crate) unsafe fn alloc_class(heap: *mut Heap, class: usize) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe {
            let block = Self::pop_direct(heap, class);
            if !block.is_null() {
                return block;
            }
            Self::alloc_refill(heap, class)
        }
    }

    /// Counts one block of `class` handed out.
    ///
    /// # Safety
    ///
    /// The caller owns `heap`.
    #[inline(always)]
    pub(crate) unsafe fn count_alloc(heap: *mut Heap, class: usize) {
        // SAFETY: the heap is live; only the counters are borrowed (shared),
        // never the owner part a caller may hold.
        let counters = unsafe { &(*heap).counters };
        counters.allocs[class].add(1);
    }

    /// Adds the pages the owner part purged to the counters.
    ///
    /// # Safety
    ///
    /// The caller owns `heap` and holds no borrow of its owner part.
    pub(crate) unsafe fn count_purged(heap: *mut Heap) {
        // SAFETY: forwarded; two disjoint fields.
        unsafe {
            let n = (*heap).purge.take_purged();
            (*heap).counters.pages_purged.add(n);
        }
    }

    /// The direct page's free list is empty. The common case: its own
    /// frees (`local_free`) refill it and there is nothing else to do (no
    /// remote free waiting, no page to purge): swap them in, a few
    /// instructions with no call. Otherwise, the full slow path.
    ///
    /// # Safety
    ///
    /// As for `alloc_class`.
    #[inline(always)]
    pub(crate) unsafe fn alloc_refill(heap: *mut Heap, class: usize) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe {
            let block = Self::swap_local(heap, class);
            if !block.is_null() {
                return block;
            }
            Self::alloc_slow(heap, class)
        }
    }

    /// `alloc_refill`'s common case alone: swaps the direct page's
    /// `local_free` in and pops from it, or returns null (nothing to swap,
    /// or a remote free or a purge waits). Works on the empty heap too (its
    /// direct pages' lists are empty: null, nothing written).
    ///
    /// # Safety
    ///
    /// The caller owns `heap` (or it is the empty heap); `free` of the
    /// class's direct page is empty.
    #[inline(always)]
    pub(crate) unsafe fn swap_local(heap: *mut Heap, class: usize) -> *mut u8 {
        // SAFETY: the caller owns the heap; `direct` pages are live.
        unsafe {
            let page = (*heap).owned.direct[class];
            let block = (*page).local_free;
            if !block.is_null() && (*heap).inbox.is_empty() && (*heap).purge.is_empty() {
                (*heap).touch_owned();
                (*page).local_free = ptr::null_mut();
                Self::hand_out(heap, class, page, block);
                return block.cast();
            }
            ptr::null_mut()
        }
    }

    /// Hands out `block`, the head of the direct page's list being popped
    /// (`free`, or `local_free` just swapped in): the rest of the list
    /// becomes `free`, and the block is counted.
    ///
    /// The next allocation's block is often last written by another thread
    /// (a remote free spliced in whole) and so a cache miss: it is
    /// prefetched now, while the caller uses this one (C rptest, 2 threads,
    /// 20% faster; a null `next` is harmless). Right after the store: placed
    /// after the counters, it cost `malloc-simple` 20%.
    ///
    /// # Safety
    ///
    /// The caller owns `heap`; `block` is the head of a free list of `page`,
    /// `heap`'s direct page of `class`, already unlinked from `local_free`
    /// if it came from there.
    #[inline(always)]
    unsafe fn hand_out(heap: *mut Heap, class: usize, page: *mut Page, block: *mut Block) {
        // SAFETY: the caller's contract is `unlink_head`'s, and it owns
        // `heap`, as `count_alloc` needs.
        unsafe {
            Self::unlink_head(page, block);
            Self::count_alloc(heap, class);
        }
    }

    /// `hand_out` but for the count: unlinks `block`, the head of `free`,
    /// prefetches the next one and counts the block out of `page`.
    ///
    /// # Safety
    ///
    /// As for `hand_out`.
    #[inline(always)]
    unsafe fn unlink_head(page: *mut Page, block: *mut Block) {
        // SAFETY: the caller's contract: a free block's first word is its link.
        unsafe {
            let next = (*block).next;
            (*page).free = next;
            prefetch(next.cast());
            (*page).count_out(1);
        }
    }

    /// The full allocation slow path: drain the inbox, post the outbox,
    /// purge, find a page of the class with a free block, or take a new page.
    ///
    /// # Safety
    ///
    /// As for `alloc_class`.
    #[cold]
    #[inline(never)]
    unsafe fn alloc_slow(heap: *mut Heap, class: usize) -> *mut u8 {
        // SAFETY: the caller owns the heap; every page reached from it is live.
        unsafe {
            (*heap).touch_owned();
            (*heap).owned.slow_paths = (*heap).owned.slow_paths.wrapping_add(1);
            // Remote frees first: they may refill the direct page. (These go
            // through the raw pointer, before `h` below is made.)
            if !(*heap).inbox.is_empty() {
                Self::drain_inbox(heap);
            }
            if (*heap).is_thread_heap && (*heap).outbox.wants_post((*heap).owned.slow_paths) {
                ((*heap).post_outbox)(heap);
            }
            // Pages purged since the last slow path (stats lag by one).
            Self::count_purged(heap);
            if !(*heap).purge.is_empty() {
                (*heap).purge.purge_expired(false, options::now_ms());
            }
            let h = &mut (*heap).owned;
            // The direct page, then the rest of the class.
            let mut page = h.bins[class].first();
            while !page.is_null() {
                let next = PageQueue::next(page);
                let block = (*page).pop_refill();
                if !block.is_null() {
                    h.set_direct(class, page);
                    // Keep the page that serves at the front of its bin.
                    if h.bins[class].first() != page {
                        h.bins[class].remove(page);
                        h.bins[class].push_front(page);
                    }
                    Self::count_alloc(heap, class);
                    return block.cast();
                }
                // Nothing left: park it on the full list until a free.
                h.bins[class].remove(page);
                (*page).mark_full();
                h.full.push_back(page);
                page = next;
            }
            // A fresh page. (Pages nobody uses were retired when their last
            // block was freed, so their memory already serves other classes.)
            // The heap's limit (see `account`) is checked here only.
            let page_bytes = 1usize << Kind::of_class(class).page_shift();
            // The heap grows: sample its live bytes into the peak first
            // (a first-class heap's: only `Heap::stats` reports a peak).
            if !(*heap).is_thread_heap {
                crate::stats::sample_peak(&(*heap).counters, &(*heap).account);
            }
            let h = &mut (*heap).owned;
            let page = if (*heap).account.admit(page_bytes) {
                h.new_page(heap, class)
            } else {
                ptr::null_mut()
            };
            if page.is_null() {
                h.set_direct(class, empty_page());
                return ptr::null_mut();
            }
            h.bins[class].push_front(page);
            h.set_direct(class, page);
            let block = (*page).pop_refill();
            debug_assert!(!block.is_null());
            Self::count_alloc(heap, class);
            block.cast()
        }
    }

    /// As [`Heap::alloc_sized`], with the small classes' fast path inlined
    /// (a first-class heap's `alloc`: the by-size pop, as for the thread
    /// heap, where the general class search cost a pair 118 instructions).
    ///
    /// # Safety
    ///
    /// As for `alloc_class`.
    #[inline(always)]
    pub(crate) unsafe fn alloc_layout(heap: *mut Heap, size: usize, align: usize) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe {
            if size <= size_class::SMALL_MAX && align <= size_class::MIN_ALIGN {
                let block = Self::pop_by_size(heap, size_class::slot_of(size));
                if !block.is_null() {
                    return block;
                }
            }
            Self::alloc_sized(heap, size, align)
        }
    }

    /// Allocates `size` bytes at `align` from pages, or as a huge block.
    ///
    /// # Safety
    ///
    /// As for `alloc_class`.
    pub(crate) unsafe fn alloc_sized(heap: *mut Heap, size: usize, align: usize) -> *mut u8 {
        match size_class::class_for(size, align) {
            // SAFETY: forwarded.
            Some(class) => unsafe { Self::alloc_class(heap, class) },
            // SAFETY: forwarded.
            None => unsafe { Self::alloc_huge(heap, size, align) },
        }
    }

    // ----------------------------------------------------------------
    // Free
    // ----------------------------------------------------------------

    /// Frees a block of this heap on the owner's side (a local free, an
    /// inbox drain or a claimer's reclaim).
    ///
    /// # Safety
    ///
    /// The caller owns `heap`, and `p` is a live block whose segment's heap
    /// is `heap`.
    #[inline]
    pub(crate) unsafe fn free_owned(heap: *mut Heap, p: *mut u8) {
        // SAFETY: forwarded; `p`'s segment and page are live.
        unsafe {
            (*heap).touch_owned();
            let seg = segment::segment_of(p);
            debug_assert_eq!((*seg).heap, heap.cast());
            if (*seg).kind == Kind::Huge {
                return Self::free_huge(seg);
            }
            Self::free_local(heap, seg, p);
        }
    }

    /// The segment of `p` if its header names `heap`, else null: the free
    /// fast path's test (for `homing::free` and `Heap::dealloc`). A block
    /// at a segment base (a segment-aligned huge block, or null) gives null
    /// without a read: its header, if any, is a segment below.
    ///
    /// # Safety
    ///
    /// `p` is null or a live block of homing's.
    #[inline(always)]
    pub(crate) unsafe fn segment_if_owned(heap: *mut Heap, p: *mut u8) -> *mut Segment {
        if p as usize & segment::SEGMENT_MASK == 0 {
            return ptr::null_mut();
        }
        let seg = (p as usize & !segment::SEGMENT_MASK) as *mut Segment;
        // SAFETY: `p` is a live block not at a segment base, so its segment
        // header is live.
        if unsafe { (*seg).heap } == heap.cast() {
            seg
        } else {
            ptr::null_mut()
        }
    }

    /// The free fast path, the mirror of [`Heap::pop_direct`]: pushes `p`
    /// on its page's local free list (no atomic). The sign of the page's
    /// decremented use count sends two cases to [`Heap::free_page_slow`]:
    /// the free empties the page (the direct page is pinned, so this is
    /// another page: retire it), or the page is on the full list.
    ///
    /// # Safety
    ///
    /// The caller owns `heap`; `p` is a live small/medium block whose
    /// segment is `seg` and whose segment's heap is `heap`.
    #[inline(always)]
    pub(crate) unsafe fn free_local(heap: *mut Heap, seg: *mut Segment, p: *mut u8) {
        // SAFETY: forwarded; the page of a live block is live.
        unsafe {
            let p = segment::block_ptr(seg, p);
            let page = segment::page_of(seg, p);
            (*heap).counters.frees[(*page).class_index()].add(1);
            if (*page).push_local(p.cast()) {
                Self::free_page_slow(page, heap);
            }
        }
    }

    /// A free found its page on the full list (move it back to its class),
    /// or emptied it (`used == 0`: no live block, and not the direct page,
    /// which is pinned): retire it, so its memory serves other classes at
    /// once and is purged when its delay has passed, and purge the pages
    /// retired earlier whose delay has passed. A thread that frees a lot
    /// and then sleeps thus keeps resident only what it freed in its last
    /// `HOMING_PURGE_DELAY_MS` (see `purge` for the background purger).
    ///
    /// `extern "C"`, so it never unwinds: the C ABI's `free` reaches it by
    /// a tail jump, with no landing pad or stack frame on its fast path.
    ///
    /// # Safety
    ///
    /// The caller owns `heap` and `page` is one of its pages in use.
    #[cold]
    #[inline(never)]
    pub(crate) unsafe extern "C" fn free_page_slow(page: *mut Page, heap: *mut Heap) {
        // SAFETY: the caller owns the heap and its pages.
        unsafe {
            let h = &mut (*heap).owned;
            h.slow_paths = h.slow_paths.wrapping_add(1);
            let seg = segment::segment_of_page(page);
            if (*seg).kind == Kind::Huge {
                return Self::free_huge(seg);
            }
            let class = (*page).class as usize;
            if (*page).in_full {
                h.full.remove(page);
                (*page).unmark_full();
                h.bins[class].push_back(page);
            }
            if (*page).is_unused() {
                debug_assert!(!(*page).pinned);
                if h.keep_as_spare(class, page) {
                    return;
                }
                // Retiring queues the page and purges the pages whose delay
                // has passed.
                h.retire_page(page);
            }
        }
    }

    /// Drains the inbox: every run of blocks other threads freed goes back
    /// on its page's local free list whole. Returns how many blocks.
    ///
    /// # Safety
    ///
    /// The caller owns `heap`.
    pub(crate) unsafe fn drain_inbox(heap: *mut Heap) -> usize {
        let mut n = 0;
        // SAFETY: the caller owns the heap; every node in our inbox is a run
        // of blocks of ours that its freer no longer uses (Acquire in `take`
        // makes their writes visible).
        unsafe {
            for node in (*heap).inbox.take() {
                n += Self::free_run(heap, node);
            }
            (*heap).counters.remote_drained.add(n);
            (*heap).owned.slow_paths = (*heap).owned.slow_paths.wrapping_add(1);
        }
        n
    }

    /// Frees a run that came through the inbox (see `remote`): its blocks,
    /// all of one page, are spliced onto the page's local free list in one
    /// step, touching only the run's tail (never the blocks between), and
    /// the page's `used` drops by the run's length. Returns the length.
    ///
    /// # Safety
    ///
    /// The caller owns `heap`; `node` is a run of its blocks, out of its
    /// inbox or a batch posted to it (see `outbox::seal_run`).
    #[inline]
    pub(crate) unsafe fn free_run(heap: *mut Heap, node: NonNull<Node>) -> usize {
        // SAFETY: forwarded; the run's page is live while its blocks are.
        unsafe {
            let (head, tail, len, hint) = open_run(node);
            // The tail's line is in cache (we just read it); start on the
            // node the hint names, a few places down the chain.
            if !cfg!(any(loom, miri)) && hint != 0 {
                prefetch(hint as *const u8);
            }
            (*heap).touch_owned();
            let seg = segment::segment_of(tail);
            debug_assert_eq!((*seg).heap, heap.cast());
            if (*seg).kind == Kind::Huge {
                // A first-class heap's huge block, posted alone.
                debug_assert_eq!(len, 1);
                Self::free_huge(seg);
                return 1;
            }
            let page = segment::page_of(seg, tail);
            (*heap).counters.frees[(*page).class_index()].add(len);
            if (*page).push_local_run(head.cast(), tail.cast(), len) {
                Self::free_page_slow(page, heap);
            }
            len
        }
    }

    /// Checks the heap's invariants (O(pages · blocks): tests and debug).
    ///
    /// # Safety
    ///
    /// The caller owns `heap`.
    pub(crate) unsafe fn check(heap: *mut Heap) -> bool {
        // SAFETY: the caller owns the heap.
        unsafe {
            let h = &(*heap).owned;
            for slot in 0..DIRECT_SLOTS {
                if h.by_size[slot] != h.direct[size_class::class_of_slot(slot)] {
                    return false;
                }
            }
            for class in 0..CLASSES {
                let d = h.direct[class];
                if d != empty_page() && ((*d).class as usize != class || !(*d).pinned) {
                    return false;
                }
                if !h.bins[class].check() {
                    return false;
                }
                for page in h.bins[class].iter() {
                    if !(*page).check() || (*page).in_full || !(*page).in_use {
                        return false;
                    }
                }
            }
            h.full.check() && h.segments.check()
        }
    }

    // ----------------------------------------------------------------
    // Segment lists
    // ----------------------------------------------------------------
}

impl Owned {
    /// An empty heap's owner part: every class on the empty page.
    const EMPTY: Owned = Owned {
        by_size: [EMPTY_PAGE.0.get(); DIRECT_SLOTS],
        direct: [EMPTY_PAGE.0.get(); CLASSES],
        bins: [PageQueue::EMPTY; CLASSES],
        full: PageQueue::EMPTY,
        spares: [0; CLASSES],
        slow_paths: 0,
        trimmed_at: 0,
        segments: SegmentSet::EMPTY,
        purge: ptr::null(),
    };

    /// The heap's purge queue.
    pub(crate) fn purge(&self) -> &PurgeQueue {
        debug_assert!(!self.purge.is_null(), "the empty heap retires nothing");
        // SAFETY: set when the heap was made or reset; it points into the
        // same heap, which is never unmapped.
        unsafe { &*self.purge }
    }
}

/// Bytes usable in the live block that starts at `p`: its class size, or
/// its huge mapping's block. No division: every block homing hands out
/// starts a block (an aligned request takes a class whose size is a
/// multiple of the alignment), and an interior pointer is the caller's
/// bug, which the checked build reports before calling this.
///
/// # Safety
///
/// `p` is a live block of ours (its start).
pub(crate) unsafe fn usable_size(p: *mut u8) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe {
        let seg = segment::segment_of(p);
        if (*seg).kind == Kind::Huge {
            return (*seg).huge_size - (p as usize - (*seg).huge_block as usize);
        }
        let page = segment::page_of(seg, p);
        debug_assert_eq!((*page).block_start(p), p, "homing: not a block start");
        (*page).block_size as usize
    }
}
