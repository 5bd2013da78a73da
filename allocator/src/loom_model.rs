//! Under `cfg(loom)` only: handles on the real heap, page and remote-free
//! code for `tests/loom.rs`, without the thread-local or the registry
//! (which need `static` atomics loom cannot build). The OS layer is the
//! system allocator under loom (see `os`).
#![allow(missing_docs, clippy::missing_safety_doc)]

use core::mem::size_of;

use crate::heap::{Heap, ABANDONED, ACTIVE, CLAIMED, FREE};
use crate::os;
use crate::remote;
use crate::segment;
use crate::sync::Ordering;

/// A heap made for a model: owned by whichever thread the test says.
#[derive(Clone, Copy, Debug)]
pub struct ModelHeap(*mut Heap);

// SAFETY: a test handle; the models pass heaps between loom threads exactly
// as the allocator does (ownership moves through `state`).
unsafe impl Send for ModelHeap {}
// SAFETY: as above.
unsafe impl Sync for ModelHeap {}

/// The heap's state, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Active,
    Abandoned,
    Claimed,
    Free,
}

const BYTES: usize = (size_of::<Heap>() + os::OS_PAGE - 1) & !(os::OS_PAGE - 1);

impl ModelHeap {
    /// A new active thread heap.
    pub fn new() -> ModelHeap {
        let heap = os::map(BYTES, os::OS_PAGE)
            .expect("model heap")
            .cast::<Heap>()
            .as_ptr();
        // SAFETY: fresh memory, ours.
        unsafe { Heap::init_at(heap, true, ACTIVE, remote::flush_outbox) };
        ModelHeap(heap)
    }

    /// A new first-class heap (remote frees are posted one by one, straight
    /// to its inbox), held by the thread with token `holder`.
    pub fn new_first_class(holder: usize) -> ModelHeap {
        let heap = os::map(BYTES, os::OS_PAGE)
            .expect("model heap")
            .cast::<Heap>()
            .as_ptr();
        // SAFETY: fresh memory, ours.
        unsafe {
            Heap::init_at(heap, false, ACTIVE, remote::flush_outbox);
            (*heap).account.set_holder(holder);
        }
        ModelHeap(heap)
    }

    /// The holder `me` lets the heap go (`homing_heap_release`).
    pub fn release(self, me: usize) -> bool {
        // SAFETY: model heaps live until `destroy`; the word is atomic.
        unsafe { (*self.0).account.release(me).is_ok() }
    }

    /// Thread `me` takes the released heap (`homing_heap_acquire`).
    pub fn acquire(self, me: usize) -> bool {
        // SAFETY: as above.
        unsafe { (*self.0).account.acquire(me).is_ok() }
    }

    /// Live blocks of the heap by its counters (remote frees not yet
    /// taken back count as live).
    pub unsafe fn live_blocks(self) -> usize {
        // SAFETY: the caller owns the heap.
        unsafe {
            let c = &(*self.0).counters;
            c.live().0
        }
    }

    pub unsafe fn alloc(self, size: usize) -> *mut u8 {
        // SAFETY: the caller owns the heap.
        unsafe { Heap::alloc_sized(self.0, size, 16) }
    }

    pub unsafe fn free_local(self, p: *mut u8) {
        // SAFETY: the caller owns the heap and `p` is one of its blocks.
        unsafe { Heap::free_owned(self.0, p) }
    }

    /// Frees `owner`'s block `p` from the thread that owns `self`.
    pub unsafe fn free_remote(self, owner: ModelHeap, p: *mut u8) {
        // SAFETY: forwarded.
        unsafe { remote::free_remote(self.0, owner.0, p) }
    }

    pub unsafe fn flush(self) {
        // SAFETY: the caller owns the heap.
        unsafe { remote::flush_outbox(self.0) }
    }

    /// Posts the outbox, waiting out a stealer (as at thread exit).
    pub unsafe fn flush_now(self) {
        // SAFETY: the caller owns the heap.
        unsafe { remote::flush_outbox_now(self.0) }
    }

    /// Another thread steals this heap's outbox (what a scan does to an
    /// idle thread's); `true` if it posted it.
    pub unsafe fn steal(self) -> bool {
        // SAFETY: the caller does not hold this heap's outbox.
        unsafe { remote::try_steal(self.0) }
    }

    pub unsafe fn drain(self) -> usize {
        // SAFETY: the caller owns the heap.
        unsafe { Heap::drain_inbox(self.0) }
    }

    /// Returns everything unused (including spare segments).
    pub unsafe fn collect(self) {
        // SAFETY: the caller owns the heap.
        unsafe { Heap::collect(self.0, true) }
    }

    /// The owner thread exits.
    pub unsafe fn abandon(self) {
        // SAFETY: the caller owns the heap.
        unsafe { remote::abandon(self.0) }
    }

    /// A new thread takes over an abandoned heap, as `thread::acquire` does.
    pub fn adopt(self) -> bool {
        // SAFETY: model heaps live until `destroy`.
        unsafe { &(*self.0).state }
            .compare_exchange(ABANDONED, ACTIVE, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    pub fn state(self) -> State {
        // SAFETY: model heaps live until `destroy`.
        match unsafe { &(*self.0).state }.load(Ordering::Acquire) {
            ACTIVE => State::Active,
            ABANDONED => State::Abandoned,
            CLAIMED => State::Claimed,
            FREE => State::Free,
            other => panic!("bad heap state {other}"),
        }
    }

    pub fn inbox_is_empty(self) -> bool {
        // SAFETY: model heaps live until `destroy`.
        unsafe { (*self.0).inbox.is_empty() }
    }

    /// `true` if the heap holds no segment.
    pub unsafe fn holds_nothing(self) -> bool {
        // SAFETY: the caller owns the heap.
        unsafe { (*self.0).is_empty() }
    }

    /// Blocks in use on the page of `p` (including remote frees in flight).
    pub unsafe fn used_on_page_of(p: *mut u8) -> usize {
        // SAFETY: `p` is a live block; the caller owns its heap.
        unsafe {
            let page = segment::page_of(segment::segment_of(p), p);
            (*page).used_blocks() as usize - usize::from((*page).pinned)
        }
    }

    /// Unmaps everything the heap holds and the heap itself.
    pub unsafe fn destroy(self) {
        // SAFETY: the caller owns the heap and nothing uses it any more.
        unsafe {
            Heap::release_all(self.0);
            os::unmap(
                core::ptr::NonNull::new_unchecked(self.0.cast()),
                BYTES,
                os::OS_PAGE,
            );
        }
    }
}

impl ModelHeap {
    /// A first-class heap's `destroy`: everything released, the heap `FREE`
    /// for the registry to reuse (not unmapped).
    pub unsafe fn release_to_free(self) {
        // SAFETY: the caller owns the heap and nothing uses its blocks.
        unsafe {
            Heap::release_all(self.0);
            (*self.0).state.store(FREE, Ordering::Release);
        }
    }

    /// The claim a remote free takes on an abandoned heap, then the
    /// let-go that tidies it (and frees it when it holds nothing).
    pub fn claim_and_let_go(self) -> bool {
        if !remote::try_claim(self.0) {
            return false;
        }
        // SAFETY: the claim makes us the owner until `let_go`.
        unsafe { remote::let_go(self.0) };
        true
    }

    /// What the background purger does to this heap: purge its queued free
    /// pages if the owner does not hold the queue this instant (every page,
    /// as if their delay had passed). Any thread may call it.
    pub fn background_purge(self) {
        // SAFETY: model heaps live until `destroy`; the queue has its lock.
        unsafe { (*self.0).purge.try_purge(true, u64::MAX) }
    }

    /// Pages waiting on the purge queue (a hint).
    pub fn purge_pending(self) -> bool {
        // SAFETY: as above.
        unsafe { !(*self.0).purge.is_empty() }
    }

    /// The heap's address (to compare identities).
    pub fn addr(self) -> usize {
        self.0 as usize
    }
}

/// A registry of heaps of the model's own (the process's is a `static`).
pub struct ModelRegistry(crate::registry::Registry);

impl ModelRegistry {
    pub fn new() -> ModelRegistry {
        ModelRegistry(crate::registry::Registry::new())
    }

    /// What a thread binding its heap does: adopt, reuse, or make one.
    pub fn acquire_thread_heap(&self) -> ModelHeap {
        ModelHeap(self.0.acquire(true).expect("model heap"))
    }

    /// What `Heap::new` does: reuse a free heap, or make one.
    pub fn acquire_first_class(&self) -> ModelHeap {
        ModelHeap(self.0.acquire(false).expect("model heap"))
    }

    /// Heaps ever made.
    pub fn created(&self) -> usize {
        self.0.created()
    }

    /// Every heap, newest first.
    pub fn heaps(&self) -> std::vec::Vec<ModelHeap> {
        self.0.iter().map(ModelHeap).collect()
    }
}

impl Default for ModelRegistry {
    fn default() -> Self {
        Self::new()
    }
}

/// A segment cache of the model's own, with segments made for it.
pub struct ModelCache(segment::cache::SegmentCache);

/// A released (unowned) segment: a small one, as the segment cache holds
/// them, or a huge mapping (header at its base), as the huge cache does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelSegment(*mut segment::Segment);

// SAFETY: a test handle; ownership moves through the caches' entries.
unsafe impl Send for ModelSegment {}

/// A released huge mapping: the same handle as a segment.
pub type ModelMapping = ModelSegment;

impl ModelSegment {
    pub fn new() -> ModelSegment {
        let seg = segment::Segment::create(core::ptr::null_mut(), segment::Kind::Small)
            .expect("model segment");
        ModelSegment(seg.as_ptr())
    }

    /// A fresh unowned huge mapping with a block of `size` bytes.
    pub fn huge(size: usize) -> ModelSegment {
        let seg =
            segment::Segment::create_huge(core::ptr::null_mut(), size, 16).expect("model mapping");
        ModelSegment(seg.as_ptr())
    }

    /// The mapping's size (what the huge cache is told).
    pub fn size(self) -> usize {
        // SAFETY: a live header, written once before the mapping is shared.
        unsafe { (*self.0).map_size }
    }

    /// Writes the header as a releasing owner would (a loom-visible plain
    /// write the taker must see: the cache's Release/Acquire orders it).
    pub unsafe fn scribble(self, value: usize) {
        // SAFETY: the caller holds the segment; the cell is loom's witness.
        unsafe { (*self.0).model_cell.with_mut(|c| *c = value) };
    }

    pub unsafe fn scribbled(self) -> usize {
        // SAFETY: the caller holds the segment.
        unsafe { (*self.0).model_cell.with(|c| *c) }
    }

    pub unsafe fn destroy(self) {
        // SAFETY: the caller holds the segment and nothing uses it.
        unsafe { segment::Segment::destroy(self.0) }
    }
}

impl ModelCache {
    pub fn new() -> ModelCache {
        ModelCache(segment::cache::SegmentCache::new())
    }

    pub fn put(&self, seg: ModelSegment) -> bool {
        self.0.put(seg.0)
    }

    pub fn take(&self) -> Option<ModelSegment> {
        self.0.take().map(|s| ModelSegment(s.as_ptr()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for ModelCache {
    fn default() -> Self {
        Self::new()
    }
}

/// A cache of released huge mappings of the model's own
/// (`huge::cache::HugeCache`), with a count of the mappings it unmapped.
pub struct ModelHugeCache {
    cache: crate::huge::cache::HugeCache,
    released: crate::sync::AtomicUsize,
}

/// The times a model's put, take or sweep runs at (see `huge::cache::Clock`).
#[derive(Clone, Copy, Debug)]
pub struct ModelClock {
    pub now_ms: u64,
    pub purge_after_ms: u64,
    pub unmap_after_ms: u64,
}

impl ModelClock {
    fn clock(self) -> crate::huge::cache::Clock {
        crate::huge::cache::Clock {
            now_ms: self.now_ms,
            purge_after_ms: self.purge_after_ms,
            unmap_after_ms: self.unmap_after_ms,
        }
    }
}

impl ModelHugeCache {
    pub fn new() -> ModelHugeCache {
        ModelHugeCache {
            cache: crate::huge::cache::HugeCache::new(),
            released: crate::sync::AtomicUsize::new(0),
        }
    }

    fn release(&self) -> impl FnMut(*mut segment::Segment) + '_ {
        |seg| {
            // Relaxed: a count the test reads after joining the threads.
            self.released.fetch_add(1, Ordering::Relaxed);
            // SAFETY: the cache gave the mapping up: nobody holds it.
            unsafe { segment::Segment::destroy(seg) }
        }
    }

    pub fn put(&self, m: ModelMapping, clock: ModelClock) -> bool {
        self.cache.put(m.0, m.size(), clock.clock(), self.release())
    }

    /// A mapping of `need ..= most` bytes, and whether it was purged.
    pub fn take(
        &self,
        need: usize,
        most: usize,
        clock: ModelClock,
    ) -> Option<(ModelMapping, bool)> {
        self.cache
            .take(need, most, clock.clock(), self.release())
            .map(|(s, purged)| (ModelSegment(s.as_ptr()), purged))
    }

    pub fn sweep(&self, clock: ModelClock) {
        self.cache.sweep(clock.clock(), self.release());
    }

    /// Unmaps every cached mapping; how many.
    pub fn drain(&self) -> usize {
        self.cache.drain(self.release())
    }

    /// Mappings the cache unmapped so far.
    pub fn released(&self) -> usize {
        // Relaxed: read after the joins.
        self.released.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for ModelHugeCache {
    fn default() -> Self {
        Self::new()
    }
}
