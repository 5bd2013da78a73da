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
//! # Reuse
//!
//! A freed huge block's mapping goes to a process-wide cache ([`cache`])
//! rather than straight back to the OS, whichever thread frees it; the next
//! huge allocation of about its size, on any thread and for any heap, takes
//! it back: no `mmap`, no `munmap`, and (within the purge delay) no page
//! faults. The cache purges what waited for the purge delay and unmaps
//! what waited longer, or whatever it must to stay within its bounds.
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
        let Some(seg) = Self::map_huge(owner, size, align) else {
            return ptr::null_mut();
        };
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

    /// A huge segment for a block of `size` bytes at `align`, owned by
    /// `owner` (or null): a cached mapping that fits, else a fresh one.
    fn map_huge(owner: *mut Heap, size: usize, align: usize) -> Option<*mut Segment> {
        let layout = Segment::huge_layout(size, align)?;
        if layout.header_off == 0 {
            // A first-class heap takes only a mapping of the exact size, so
            // its limit and its statistics see what a fresh one would give.
            let need = layout.map_size;
            let most = if owner.is_null() {
                need.saturating_mul(cache::FIT_FACTOR)
            } else {
                need
            };
            if let Some((seg, purged)) = cache::take(need, most) {
                let seg = seg.as_ptr();
                // SAFETY: the cache handed the mapping to us alone; it fits
                // (`take` returns at least `need` bytes) and its header is
                // at its base, as this layout's.
                unsafe { Segment::reuse_huge(seg, owner.cast(), size, align, purged) };
                return Some(seg);
            }
        }
        let seg = Segment::create_huge(owner.cast(), size, align)?;
        cache::note_mapped();
        Some(seg.as_ptr())
    }

    /// Zeroes the first `size` bytes of the fresh huge block `p`, writing
    /// only what may be non-zero (nothing, for a fresh mapping).
    ///
    /// # Safety
    ///
    /// `p` is a huge block just allocated, of at least `size` bytes.
    pub(crate) unsafe fn zero_huge(p: *mut u8, size: usize) {
        // SAFETY: forwarded from the caller: the header is live, and the
        // block holds at least `size` bytes.
        unsafe {
            let seg = segment::segment_of(p);
            debug_assert!((*seg).kind == Kind::Huge && (*seg).huge_block == p);
            let n = size.min((*seg).huge_dirty);
            if n > 0 {
                segment::block_ptr(seg, p).write_bytes(0, n);
            }
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

    /// Releases a huge block's segment: to the cache of huge mappings if
    /// it takes it, else to the OS.
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
            if (*seg).map_base == seg.cast() {
                // Nobody may free it now: checked mode forgets it while it
                // is cached (`reuse_huge` registers it again).
                #[cfg(feature = "checked")]
                crate::live_segments::unregister(seg as usize);
                // The header as `map_base`, the pointer the OS layer handed
                // out: the same address, with the provenance of the whole
                // mapping (`seg` was computed from an address), so the
                // cache holds a pointer that really owns the mapping (Miri
                // sees a cached mapping as reachable, not leaked).
                if cache::put((*seg).map_base.cast(), (*seg).map_size) {
                    return;
                }
            }
            Segment::destroy(seg);
        }
    }
}

/// The cache of released huge mappings: a huge block's free hands its
/// mapping here instead of unmapping it, and the next huge allocation that
/// fits it (within a bounded waste) takes it back, so a program that frees
/// and allocates large blocks again and again neither maps nor faults in
/// fresh pages each time.
///
/// # What it keeps, and for how long
///
/// Mappings whose header sits at their base (every huge block aligned to
/// at most a segment), of at most [`MAX_MAPPING`] bytes, in
/// [`SLOTS`] entries holding at most [`MAX_BYTES`] together; when full, the
/// oldest entries are unmapped first. At most [`MAX_RESIDENT`] of those
/// bytes are unpurged: past it, a put purges the oldest resident entries
/// (they stay cached). An entry stays resident for the
/// purge delay (`HOMING_PURGE_DELAY_MS`), then its page area is purged
/// (`MADV_DONTNEED`: no RSS, the address range kept), and [`DECAY_DELAYS`]
/// purge delays after its free (at least [`MIN_DECAY_MS`]) it is unmapped.
/// The cache checks its entries' times whenever a huge block is allocated
/// or freed, at `collect()`, when a thread exits and in each round of the
/// background purger; `release_held` (the OS refused memory) unmaps it
/// whole.
///
/// # Fit
///
/// A thread heap's request that needs `need` bytes of mapping takes a
/// cached mapping of `need` to [`FIT_FACTOR`] times `need` bytes, a
/// resident one if there is one (a purged one faults in again), the
/// smallest of those
/// (the rest of the mapping becomes the block's usable tail, as
/// `usable_size` reports); a first-class heap's takes only one of exactly `need` bytes,
/// so its limit and statistics count what a fresh mapping would. The block is
/// placed for the request's alignment, so reused blocks keep every
/// alignment guarantee of a fresh one.
///
/// # Who touches what
///
/// The cache is process-wide: any thread puts (the thread that frees the
/// block, whatever heap allocated it) and any thread takes. Its entries
/// live under `lock`, a spin lock held only while scanning the entries
/// (no system call, no allocation under it: purges and unmaps happen after
/// it is released), so nothing waits for long and no thread waits for
/// itself. A cached mapping belongs to nobody: its header is rewritten by
/// the taker.
pub(crate) mod cache {
    use core::mem::MaybeUninit;
    use core::ptr::{self, NonNull};

    #[cfg(not(loom))]
    use core::cell::UnsafeCell;
    #[cfg(loom)]
    use loom::cell::UnsafeCell;

    use crate::options;
    use crate::os;
    use crate::segment::{Segment, HEADER_SIZE};
    use crate::sync::{plain, AtomicBool, AtomicUsize, Ordering};

    /// Entries in the cache. mimalloc-bench's `mstress 8 50 25` frees
    /// blocks of 256 KiB to 5 MiB from 8 threads at once: with 64 entries
    /// (and a bound of 128 MiB) it still made 534–565 fresh huge mappings
    /// (3,410 reuses), with 128 about 100 (3,870), page faults 365–380 k →
    /// 250–320 k; 256 entries changed nothing more.
    pub(crate) const SLOTS: usize = 128;
    /// Bytes of mapping the cache holds at most, resident or purged (past
    /// it, the oldest entries are unmapped). Purged entries cost address
    /// space, not RSS: they save a `mmap` and a `munmap` (and its TLB
    /// shootdown) each.
    pub(crate) const MAX_BYTES: usize = 256 << 20;
    /// Bytes of unpurged mapping the cache holds at most: past it, a put
    /// purges the oldest resident entries, which stay cached. This is the
    /// bound on the RSS the cache holds. History: with a fit of a quarter
    /// more, one bound of 32 MiB on all bytes was best for the C `mstress`
    /// (2 threads: 66–68 MiB peak RSS with 32, 74–82 with 64, 79–82 with
    /// 128; tcmalloc 40–42): a narrow fit needs a mapping of nearly every
    /// size cached; with [`FIT_FACTOR`] 2 and 32 MiB, 57 MiB and 15–17 k
    /// page faults (24 MiB: 24–25 k faults; 16 MiB: 59 k). Re-measured
    /// in session 6 (128 [`SLOTS`], medians of 5 interleaved runs),
    /// mimalloc-bench's `mstress 8 50 25`, whose threads free and allocate
    /// huge blocks by turns, against 32 MiB of all bytes: resident bound
    /// 64 MiB: 1.32 → 1.04 s, faults 484 k → 282 k, peak RSS 138 → 145 MiB
    /// (tcmalloc 0.84 s, 141 MiB); 48 MiB: 1.16 s, 368 k; 32 MiB: 1.23 s,
    /// 476 k. The C `mstress` at 64 MiB: 2 threads 61.6 → 63.5 MiB, 17.5 k
    /// → 15.8 k faults; 8 threads 70 → 79 MiB, 29.6 k → 25.5 k faults,
    /// times within noise. A bound that follows the live huge bytes (at
    /// least 32 MiB) was tried: in `mstress` it never rose above its floor.
    pub(crate) const MAX_RESIDENT: usize = 64 << 20;
    /// Larger mappings are unmapped on free.
    pub(crate) const MAX_MAPPING: usize = 32 << 20;
    const _: () = assert!(
        MAX_MAPPING <= MAX_RESIDENT && MAX_RESIDENT <= MAX_BYTES,
        "a cacheable mapping fits the cache"
    );
    /// A cached mapping keeps its memory at least this long (unless the
    /// purge delay is 0): a huge block is costly to fault in again (the C
    /// `mstress`, 2 threads, faulted 72 k OS pages with 10 ms against 25 k
    /// with 50 ms or more, 0.28 s against 0.13 s), and the byte bound caps
    /// what waits, so peak RSS did not change (77–82 MiB either way).
    pub(crate) const MIN_PURGE_MS: u64 = 100;
    /// A cached mapping is unmapped this many purge delays after its free.
    pub(crate) const DECAY_DELAYS: u64 = 16;
    /// ... but never sooner than this (a zero purge delay purges at once
    /// and still keeps the address range for a while).
    pub(crate) const MIN_DECAY_MS: u64 = 100;
    /// A thread heap's request takes a cached mapping up to this many times
    /// the size it needs. Large block sizes vary (`mstress`: 256 KiB to
    /// 2.5 MiB), and a mapping the cache holds that fits no request is
    /// memory held for nothing; with a quarter more, the cache needed one
    /// of nearly every size (C `mstress`, 2 threads, 32 MiB bound: 63 MiB
    /// peak RSS, 55 k page faults; 2×: 57–59 MiB, 17–20 k; 3×: 57–59 MiB,
    /// 15–17 k; 8×: 58 MiB, 16 k). 2, not 3: a block then holds at most its
    /// own size again of mapping it does not use, resident if an earlier
    /// block wrote it.
    pub(crate) const FIT_FACTOR: usize = 2;
    /// Spins on a held lock before yielding the CPU.
    const SPINS_BEFORE_YIELD: usize = 64;

    /// One cached mapping.
    #[derive(Clone, Copy)]
    struct Entry {
        /// The mapping's header (at its base); null: an empty entry.
        seg: *mut Segment,
        /// Its `map_size`, copied here so a scan reads no header.
        size: usize,
        freed_at_ms: u64,
        /// Its page area was purged.
        purged: bool,
    }

    const EMPTY: Entry = Entry {
        seg: ptr::null_mut(),
        size: 0,
        freed_at_ms: 0,
        purged: false,
    };

    /// The entries; only under the lock.
    struct Inner {
        /// The first `len` are in use (a removal moves the last one into
        /// the gap), so a scan reads only those: the entries were scattered
        /// over all 128, and `take`'s scan for a fit read every one (in
        /// the C `mstress`, 2 threads, 600 instructions a take).
        entries: [Entry; SLOTS],
        /// Entries in use, and their bytes.
        len: usize,
        bytes: usize,
        /// Bytes of the entries not purged (at most [`MAX_RESIDENT`] after
        /// each put).
        resident: usize,
        /// Bytes of the entries taken out to be purged and not yet put
        /// back: still the cache's (they go back, or are unmapped), so the
        /// published statistic counts them (it read 0 for the length of a
        /// purge).
        purging: usize,
        /// At most the earliest `freed_at_ms` of the resident entries
        /// (`u64::MAX` when there is none): before that plus the purge
        /// delay none is due for its purge ...
        resident_since_ms: u64,
        /// ... and of the purged ones: before that plus the unmap delay
        /// none is due for its unmap. With both, `expire` returns without
        /// a scan until something is due. (One bound over all entries,
        /// judged by the purge delay, made every put and take scan every
        /// entry once a purged entry was older than the purge delay, as
        /// purged entries wait 16 times longer: 7.5% of the C `mstress`'s
        /// instructions under callgrind.)
        purged_since_ms: u64,
        /// Scans of every entry by `expire` (for the unit tests).
        #[cfg(test)]
        scans: usize,
    }

    /// The times a put, take or sweep judges entries by.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Clock {
        pub(crate) now_ms: u64,
        /// Purge an entry this long after its free (`u64::MAX`: never).
        pub(crate) purge_after_ms: u64,
        /// Unmap a purged entry this long after its free.
        pub(crate) unmap_after_ms: u64,
    }

    impl Clock {
        /// The clock of the options now.
        pub(crate) fn now() -> Clock {
            let delay = options::purge_delay_ms();
            let purge_after_ms = if delay == options::NEVER {
                u64::MAX
            } else if delay == 0 {
                0
            } else {
                (delay as u64).max(MIN_PURGE_MS)
            };
            Clock {
                now_ms: options::now_ms(),
                purge_after_ms,
                unmap_after_ms: purge_after_ms
                    .saturating_mul(DECAY_DELAYS)
                    .max(MIN_DECAY_MS),
            }
        }
    }

    /// What a hold of the lock found to do once it is released.
    ///
    /// The arrays are left uninitialised past their counts: every `take`
    /// and `put` makes one, and zeroing its 2.6 KB was most of a huge
    /// block's `malloc`+`free` (5,000 of 7,000 instructions).
    struct Chores {
        /// Entries to purge, then put back: the first `purges`.
        purge: [MaybeUninit<Entry>; SLOTS + 1],
        purges: usize,
        /// Mappings to unmap: the first `unmaps`.
        unmap: [MaybeUninit<*mut Segment>; SLOTS + 1],
        unmaps: usize,
    }

    impl Chores {
        fn none() -> Chores {
            Chores {
                purge: [const { MaybeUninit::uninit() }; SLOTS + 1],
                purges: 0,
                unmap: [const { MaybeUninit::uninit() }; SLOTS + 1],
                unmaps: 0,
            }
        }

        /// Adds an entry to purge (at most one per cache entry, plus the
        /// one being put: the arrays' length).
        fn add_purge(&mut self, e: Entry) {
            self.purge[self.purges].write(e);
            self.purges += 1;
        }

        /// Adds a mapping to unmap.
        fn add_unmap(&mut self, seg: *mut Segment) {
            self.unmap[self.unmaps].write(seg);
            self.unmaps += 1;
        }

        /// The entries to purge.
        fn purges(&self) -> &[Entry] {
            // SAFETY: the first `purges` elements were written by
            // `add_purge`; `MaybeUninit<T>` has `T`'s layout.
            unsafe { core::slice::from_raw_parts(self.purge.as_ptr().cast(), self.purges) }
        }

        /// The mappings to unmap.
        fn unmaps(&self) -> &[*mut Segment] {
            // SAFETY: as in `purges`, for `add_unmap`.
            unsafe { core::slice::from_raw_parts(self.unmap.as_ptr().cast(), self.unmaps) }
        }
    }

    /// A cache of released huge mappings (the process has one, [`CACHE`];
    /// the loom model and the unit tests make their own).
    pub(crate) struct HugeCache {
        /// `true` while someone holds the entries.
        lock: AtomicBool,
        /// Entries held: read without the lock as a hint (written at the
        /// end of each hold).
        len: AtomicUsize,
        /// Bytes held (a statistic, written likewise).
        bytes: AtomicUsize,
        inner: UnsafeCell<Inner>,
    }

    // SAFETY: `inner` is only reached under `lock` (see `with`); the
    // mappings it names belong to nobody while cached.
    unsafe impl Sync for HugeCache {}

    /// The process's cache.
    #[cfg(not(loom))]
    pub(crate) static CACHE: HugeCache = HugeCache::new();

    /// Huge blocks served from the cache so far (a statistic).
    static REUSED: plain::AtomicUsize = plain::AtomicUsize::new(0);
    /// Huge mappings made so far (a statistic).
    static MAPPED: plain::AtomicUsize = plain::AtomicUsize::new(0);

    /// Gives a cached mapping's page area back to the OS, keeping its
    /// header and address range.
    ///
    /// # Safety
    ///
    /// `e` is an entry taken out of a cache: its mapping is nobody's.
    unsafe fn purge(e: &Entry) {
        // Under loom, the purge writes the header's witness cell, so a purge
        // racing a take (no happens-before edge) fails the model.
        #[cfg(loom)]
        // SAFETY: as below: the mapping is ours while out of the cache.
        unsafe {
            (*e.seg).model_cell.with_mut(|c| c.write(c.read()));
        }
        if e.size > HEADER_SIZE {
            // SAFETY: the range lies inside the live mapping, past its
            // header, page-aligned (both sizes are OS-page multiples).
            unsafe {
                let area = e.seg.cast::<u8>().add(HEADER_SIZE);
                os::purge(NonNull::new_unchecked(area), e.size - HEADER_SIZE);
            }
        }
    }

    impl HugeCache {
        homing_deferred::const_fn_unless_loom! {
            /// An empty cache.
            pub(crate) fn new() -> HugeCache {
                HugeCache {
                    lock: AtomicBool::new(false),
                    len: AtomicUsize::new(0),
                    bytes: AtomicUsize::new(0),
                    inner: UnsafeCell::new(Inner {
                        entries: [EMPTY; SLOTS],
                        len: 0,
                        bytes: 0,
                        resident: 0,
                        purging: 0,
                        resident_since_ms: u64::MAX,
                        purged_since_ms: u64::MAX,
                        #[cfg(test)]
                        scans: 0,
                    }),
                }
            }
        }

        /// Runs `f` on the entries under the lock.
        fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
            self.lock();
            let publish = |inner: &mut Inner| {
                let r = f(inner);
                // Relaxed: hints and statistics for readers without the
                // lock; the lock orders every real access to the entries.
                self.len.store(inner.len, Ordering::Relaxed);
                self.bytes
                    .store(inner.bytes + inner.purging, Ordering::Relaxed);
                r
            };
            #[cfg(loom)]
            // SAFETY: we hold the lock: nobody else reaches `inner`.
            let r = self.inner.with_mut(|inner| publish(unsafe { &mut *inner }));
            #[cfg(not(loom))]
            // SAFETY: we hold the lock: nobody else reaches `inner`.
            let r = publish(unsafe { &mut *self.inner.get() });
            self.unlock();
            r
        }

        /// Waits for the lock and takes it (for `with`, and kept across a
        /// `fork` by [`fork_guard`]).
        fn lock(&self) {
            let mut spins = 0;
            // Acquire: we read what the previous holder wrote (the entries,
            // and the headers of the mappings they name, written by the
            // thread that cached them); Relaxed on failure: we read nothing.
            while self
                .lock
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                spins += 1;
                if cfg!(loom) || spins % SPINS_BEFORE_YIELD == 0 {
                    os::yield_now();
                } else {
                    core::hint::spin_loop();
                }
            }
        }

        /// Lets the lock go (after `with`, and in parent and child after a
        /// `fork`).
        fn unlock(&self) {
            // Release: the next holder sees our writes.
            self.lock.store(false, Ordering::Release);
        }

        /// Takes the entry at `i` (`< len`) out (under the lock); the last
        /// entry takes its place.
        fn remove(&self, inner: &mut Inner, i: usize) -> Entry {
            debug_assert!(i < inner.len);
            let last = inner.len - 1;
            let e = inner.entries[i];
            inner.entries[i] = inner.entries[last];
            inner.entries[last] = EMPTY;
            inner.bytes -= e.size;
            if !e.purged {
                inner.resident -= e.size;
            }
            inner.len = last;
            e
        }

        /// Puts `e` in an empty entry if there is one and the byte bound
        /// allows (under the lock). `false` if not.
        fn insert(&self, inner: &mut Inner, e: Entry) -> bool {
            if inner.bytes + e.size > MAX_BYTES {
                return false;
            }
            if inner.len == SLOTS {
                return false;
            }
            inner.entries[inner.len] = e;
            inner.len += 1;
            inner.bytes += e.size;
            if e.purged {
                inner.purged_since_ms = inner.purged_since_ms.min(e.freed_at_ms);
            } else {
                inner.resident += e.size;
                inner.resident_since_ms = inner.resident_since_ms.min(e.freed_at_ms);
            }
            true
        }

        /// Moves the entries whose time has come at `clock` out into
        /// `chores` (under the lock).
        fn expire(&self, inner: &mut Inner, clock: Clock, chores: &mut Chores) {
            if clock.now_ms < inner.resident_since_ms.saturating_add(clock.purge_after_ms)
                && clock.now_ms < inner.purged_since_ms.saturating_add(clock.unmap_after_ms)
            {
                return;
            }
            #[cfg(test)]
            {
                inner.scans += 1;
            }
            let (mut resident_since, mut purged_since) = (u64::MAX, u64::MAX);
            let mut i = 0;
            while i < inner.len {
                let e = inner.entries[i];
                debug_assert!(!e.seg.is_null());
                if e.purged {
                    if clock.now_ms >= e.freed_at_ms.saturating_add(clock.unmap_after_ms) {
                        // (The last entry moves to `i`: look at `i` again.)
                        chores.add_unmap(self.remove(inner, i).seg);
                        continue;
                    }
                    purged_since = purged_since.min(e.freed_at_ms);
                } else if clock.now_ms >= e.freed_at_ms.saturating_add(clock.purge_after_ms) {
                    let e = self.remove(inner, i);
                    inner.purging += e.size;
                    chores.add_purge(e);
                    continue;
                } else {
                    resident_since = resident_since.min(e.freed_at_ms);
                }
                i += 1;
            }
            inner.resident_since_ms = resident_since;
            inner.purged_since_ms = purged_since;
        }

        /// Does what a hold of the lock found to do: purges (and puts back
        /// as purged, or unmaps if the cache filled meanwhile) and unmaps.
        /// `release` unmaps a mapping (the process cache: `Segment::destroy`).
        fn finish(&self, chores: &mut Chores, release: &mut impl FnMut(*mut Segment)) {
            for e in chores.purges() {
                // SAFETY: taken out of the cache: nobody else holds it.
                unsafe { purge(e) };
            }
            if chores.purges > 0 {
                let mut full = Chores::none();
                self.with(|inner| {
                    for e in chores.purges() {
                        inner.purging -= e.size;
                        let back = Entry { purged: true, ..*e };
                        if !self.insert(inner, back) {
                            full.add_unmap(e.seg);
                        }
                    }
                });
                for &seg in full.unmaps() {
                    release(seg);
                }
            }
            for &seg in chores.unmaps() {
                release(seg);
            }
            chores.purges = 0;
            chores.unmaps = 0;
        }

        /// Takes the best cached mapping for a request that needs `need`
        /// bytes of mapping: the smallest of `need ..= most` bytes. Returns
        /// it and whether its page area was purged. Then handles the entries
        /// whose time has come at `clock`.
        pub(crate) fn take(
            &self,
            need: usize,
            most: usize,
            clock: Clock,
            mut release: impl FnMut(*mut Segment),
        ) -> Option<(NonNull<Segment>, bool)> {
            // Relaxed: a hint; a miss only means a fresh mapping.
            if self.len.load(Ordering::Relaxed) == 0 {
                return None;
            }
            let mut chores = Chores::none();
            let got = self.with(|inner| {
                let mut best: Option<usize> = None;
                for (i, e) in inner.entries[..inner.len].iter().enumerate() {
                    if e.size < need || e.size > most {
                        continue;
                    }
                    // A resident one over a purged one (a purged one
                    // faults its pages in again), then the smallest, then
                    // the one freed last (warmest).
                    let better = match best {
                        None => true,
                        Some(b) => {
                            let b = &inner.entries[b];
                            (e.purged, e.size, core::cmp::Reverse(e.freed_at_ms))
                                < (b.purged, b.size, core::cmp::Reverse(b.freed_at_ms))
                        }
                    };
                    if better {
                        best = Some(i);
                    }
                }
                let got = best.map(|i| self.remove(inner, i));
                self.expire(inner, clock, &mut chores);
                got
            });
            self.finish(&mut chores, &mut release);
            let e = got?;
            // SAFETY: a cached entry's header is not null.
            Some((unsafe { NonNull::new_unchecked(e.seg) }, e.purged))
        }

        /// Caches `seg`, a released huge mapping of `size` bytes whose
        /// header sits at its base, freed at `clock.now_ms`. Makes room by
        /// unmapping the oldest entries (with `release`) if the cache is
        /// full; `false` if the mapping is too large to cache (the caller
        /// unmaps it). Then handles the entries whose time has come (with
        /// a zero purge delay, this one too).
        pub(crate) fn put(
            &self,
            seg: *mut Segment,
            size: usize,
            clock: Clock,
            mut release: impl FnMut(*mut Segment),
        ) -> bool {
            if size > MAX_MAPPING {
                return false;
            }
            let mut chores = Chores::none();
            let entry = Entry {
                seg,
                size,
                freed_at_ms: clock.now_ms,
                purged: false,
            };
            self.with(|inner| {
                self.expire(inner, clock, &mut chores);
                while !self.insert(inner, entry) {
                    // Unmap the oldest entry to make room (there is one:
                    // `size <= MAX_MAPPING <= MAX_BYTES`).
                    let mut oldest: Option<usize> = None;
                    for (i, e) in inner.entries[..inner.len].iter().enumerate() {
                        if oldest.is_none_or(|o| e.freed_at_ms < inner.entries[o].freed_at_ms) {
                            oldest = Some(i);
                        }
                    }
                    let Some(o) = oldest else { break };
                    chores.add_unmap(self.remove(inner, o).seg);
                }
                // Too much resident: purge the oldest resident entries
                // (they stay cached, as after their delay).
                while inner.resident > MAX_RESIDENT {
                    let mut oldest: Option<usize> = None;
                    for (i, e) in inner.entries[..inner.len].iter().enumerate() {
                        if !e.purged
                            && oldest.is_none_or(|o| e.freed_at_ms < inner.entries[o].freed_at_ms)
                        {
                            oldest = Some(i);
                        }
                    }
                    let Some(o) = oldest else { break };
                    let e = self.remove(inner, o);
                    inner.purging += e.size;
                    chores.add_purge(e);
                }
                if clock.purge_after_ms == 0 {
                    self.expire(inner, clock, &mut chores);
                }
            });
            self.finish(&mut chores, &mut release);
            true
        }

        /// Handles the entries whose time has come at `clock`.
        pub(crate) fn sweep(&self, clock: Clock, mut release: impl FnMut(*mut Segment)) {
            // Relaxed: a hint; an entry cached meanwhile is handled by the
            // next put, take or sweep.
            if self.len.load(Ordering::Relaxed) == 0 {
                return;
            }
            let mut chores = Chores::none();
            self.with(|inner| self.expire(inner, clock, &mut chores));
            self.finish(&mut chores, &mut release);
        }

        /// Empties the cache, handing each mapping to `release`. Returns
        /// how many.
        pub(crate) fn drain(&self, mut release: impl FnMut(*mut Segment)) -> usize {
            let mut chores = Chores::none();
            self.with(|inner| {
                while inner.len > 0 {
                    chores.add_unmap(self.remove(inner, inner.len - 1).seg);
                }
            });
            let n = chores.unmaps;
            self.finish(&mut chores, &mut release);
            n
        }

        /// Mappings cached now (a hint; the loom model reads it).
        #[cfg_attr(not(loom), allow(dead_code))]
        pub(crate) fn len(&self) -> usize {
            // Relaxed: a statistic.
            self.len.load(Ordering::Relaxed)
        }

        /// Bytes cached now (a statistic).
        pub(crate) fn bytes(&self) -> usize {
            // Relaxed: a statistic.
            self.bytes.load(Ordering::Relaxed)
        }

        /// How many times `expire` has scanned the entries.
        #[cfg(test)]
        pub(crate) fn scans(&self) -> usize {
            self.with(|inner| inner.scans)
        }
    }

    /// `fork` while another thread holds a spin lock would leave it held
    /// in the child forever (the holder does not exist there): the child's
    /// first huge allocation or free, or its thread's purge, would wait for
    /// good. So homing registers `pthread_atfork` handlers when it is loaded:
    /// the forking thread first waits for the background purger to end its
    /// round and keeps it from starting another (a round holds purge-queue
    /// locks and claims heaps), then takes this cache's lock, forks, and
    /// releases both in parent and child. Nothing else a child could
    /// inherit held is a lock: heaps, inboxes, the registry and the segment
    /// cache are lock-free (`capi`'s interpose notes say what the child
    /// keeps). Order: the purger's round takes this lock inside a round,
    /// the handler in the same order, so they cannot wait for each other.
    #[cfg(all(target_os = "linux", not(any(miri, loom))))]
    pub(crate) mod fork_guard {
        use super::CACHE;

        extern "C" fn prepare() {
            crate::purge::background::hold_rounds();
            CACHE.lock();
        }

        extern "C" fn after() {
            CACHE.unlock();
            crate::purge::background::release_rounds();
        }

        extern "C" fn install() {
            // Nothing to do if it fails: forks then run without the guard,
            // as before.
            let _ = crate::os::at_fork(prepare, after, after);
        }

        /// Registers the handlers when the library is loaded (once per
        /// process; a child inherits them).
        #[used]
        #[link_section = ".init_array"]
        static INSTALL_AT_LOAD: extern "C" fn() = install;
    }

    /// Unmaps a mapping the cache gave up.
    fn unmap(seg: *mut Segment) {
        // SAFETY: a mapping out of the cache is nobody's and holds nothing.
        unsafe { Segment::destroy(seg) }
    }

    /// Takes a cached mapping of the process's cache for a request needing
    /// `need` bytes of mapping (see [`HugeCache::take`]).
    #[cfg(not(loom))]
    pub(super) fn take(need: usize, most: usize) -> Option<(NonNull<Segment>, bool)> {
        let got = CACHE.take(need, most, Clock::now(), unmap);
        if got.is_some() {
            // Relaxed: a statistic.
            REUSED.fetch_add(1, Ordering::Relaxed);
        }
        got
    }

    /// Caches a released huge mapping in the process's cache; `false`: the
    /// caller unmaps it.
    #[cfg(not(loom))]
    pub(super) fn put(seg: *mut Segment, size: usize) -> bool {
        CACHE.put(seg, size, Clock::now(), unmap)
    }

    /// Purges and unmaps what has waited long enough (`collect()`, thread
    /// exit, the background purger).
    pub(crate) fn sweep() {
        #[cfg(not(loom))]
        CACHE.sweep(Clock::now(), unmap);
    }

    /// Unmaps every cached mapping (the OS refused memory). Returns how
    /// many.
    pub(crate) fn drain() -> usize {
        #[cfg(not(loom))]
        return CACHE.drain(unmap);
        #[cfg(loom)]
        0
    }

    /// Under loom the allocator runs without a process cache (the model
    /// drives a [`HugeCache`] of its own).
    #[cfg(loom)]
    pub(super) fn take(_need: usize, _most: usize) -> Option<(NonNull<Segment>, bool)> {
        None
    }

    #[cfg(loom)]
    pub(super) fn put(_seg: *mut Segment, _size: usize) -> bool {
        false
    }

    /// Counts a fresh huge mapping (a statistic).
    pub(super) fn note_mapped() {
        // Relaxed: a statistic.
        MAPPED.fetch_add(1, Ordering::Relaxed);
    }

    /// The cache's numbers, into a statistics snapshot.
    #[cfg(not(loom))]
    pub(crate) fn add_stats(stats: &mut crate::Stats) {
        stats.huge_cached = CACHE.bytes();
        stats.os_cached += stats.huge_cached;
        // Relaxed: statistics.
        stats.huge_reused = REUSED.load(Ordering::Relaxed);
        stats.huge_mapped = MAPPED.load(Ordering::Relaxed);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::cache::{Clock, HugeCache, MAX_BYTES, MAX_MAPPING, MAX_RESIDENT, SLOTS};
    use crate::segment::Segment;
    use std::vec::Vec;

    const MIB: usize = 1 << 20;

    /// A fresh unowned huge mapping for a block of `size` bytes.
    fn mapping(size: usize) -> (*mut Segment, usize) {
        let seg = Segment::create_huge(core::ptr::null_mut(), size, 16)
            .unwrap()
            .as_ptr();
        // SAFETY: a fresh header.
        (seg, unsafe { (*seg).map_size })
    }

    fn clock(now_ms: u64) -> Clock {
        Clock {
            now_ms,
            purge_after_ms: 10,
            unmap_after_ms: 160,
        }
    }

    /// A clock at `now_ms` under which nothing ever expires.
    fn never(now_ms: u64) -> Clock {
        Clock {
            now_ms,
            purge_after_ms: u64::MAX,
            unmap_after_ms: u64::MAX,
        }
    }

    /// Unmaps what the cache gives up, and remembers it.
    fn releaser(out: &mut Vec<*mut Segment>) -> impl FnMut(*mut Segment) + '_ {
        |seg| {
            out.push(seg);
            // SAFETY: the cache gave it up: nobody holds it.
            unsafe { Segment::destroy(seg) }
        }
    }

    fn destroy(seg: *mut Segment) {
        // SAFETY: taken out of the cache: ours alone.
        unsafe { Segment::destroy(seg) }
    }

    #[test]
    fn takes_the_smallest_fit_within_the_waste_bound() {
        let cache = HugeCache::new();
        let mut gone = Vec::new();
        let (a, sa) = mapping(MIB);
        let (b, sb) = mapping(2 * MIB);
        assert!(cache.put(a, sa, clock(0), releaser(&mut gone)));
        assert!(cache.put(b, sb, clock(0), releaser(&mut gone)));
        assert_eq!(cache.bytes(), sa + sb);
        // Too small for anything cached but within a quarter of nothing.
        assert!(cache
            .take(sa / 2, sa / 2 + sa / 8, clock(1), releaser(&mut gone))
            .is_none());
        // Both fit `need = sa`, the bound admits only `a`.
        let (got, purged) = cache
            .take(sa, sa + sa / 4, clock(1), releaser(&mut gone))
            .unwrap();
        assert_eq!((got.as_ptr(), purged), (a, false));
        // `b` fits a request up to its size.
        let (got2, _) = cache
            .take(sb - 4096, sb, clock(1), releaser(&mut gone))
            .unwrap();
        assert_eq!(got2.as_ptr(), b);
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
        assert!(gone.is_empty());
        destroy(a);
        destroy(b);
    }

    #[test]
    fn purges_after_the_delay_and_unmaps_after_the_decay() {
        let cache = HugeCache::new();
        let mut gone = Vec::new();
        let (a, sa) = mapping(MIB);
        let (b, sb) = mapping(MIB);
        assert!(cache.put(a, sa, clock(0), releaser(&mut gone)));
        assert!(cache.put(b, sb, clock(0), releaser(&mut gone)));
        cache.sweep(clock(9), releaser(&mut gone));
        let (got, purged) = cache.take(sa, sa, clock(9), releaser(&mut gone)).unwrap();
        assert!(!purged, "purged before the delay");
        destroy(got.as_ptr());
        // After the delay: purged, still cached.
        cache.sweep(clock(10), releaser(&mut gone));
        assert_eq!(cache.len(), 1);
        assert!(gone.is_empty());
        let (got, purged) = cache.take(sb, sb, clock(11), releaser(&mut gone)).unwrap();
        assert!(purged, "not purged after the delay");
        // Put back at 20: unmapped at 180, not before.
        assert!(cache.put(got.as_ptr(), sb, clock(20), releaser(&mut gone)));
        cache.sweep(clock(179), releaser(&mut gone));
        assert_eq!(cache.len(), 1);
        assert!(gone.is_empty());
        cache.sweep(clock(180), releaser(&mut gone));
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
        assert_eq!(gone.len(), 1);
    }

    #[test]
    fn puts_and_takes_scan_the_entries_only_when_one_is_due() {
        let cache = HugeCache::new();
        let mut gone = Vec::new();
        let (a, sa) = mapping(MIB);
        let (b, sb) = mapping(2 * MIB);
        let (c, sc) = mapping(MIB);
        assert!(cache.put(a, sa, clock(0), releaser(&mut gone)));
        // `a` is purged at 10; it waits until 160 to be unmapped.
        cache.sweep(clock(10), releaser(&mut gone));
        let scans = cache.scans();
        assert_eq!(scans, 1);
        // `b` and `c`, resident, are due at 20 and 21: nothing is due in
        // between, and no put or take looks at every entry.
        assert!(cache.put(b, sb, clock(10), releaser(&mut gone)));
        assert!(cache.put(c, sc, clock(11), releaser(&mut gone)));
        for now in 12..20 {
            let (got, purged) = cache.take(sb, sb, clock(now), releaser(&mut gone)).unwrap();
            assert_eq!((got.as_ptr(), purged), (b, false));
            assert!(cache.put(b, sb, clock(10), releaser(&mut gone)));
            cache.sweep(clock(now), releaser(&mut gone));
        }
        assert_eq!(cache.scans(), scans, "scanned with nothing due");
        // At 20 `b` is due: purged, the others as they were.
        cache.sweep(clock(20), releaser(&mut gone));
        assert_eq!(cache.scans(), scans + 1);
        assert_eq!(cache.len(), 3);
        // A removal from the middle keeps the rest: `c` (resident) first,
        // then the purged ones.
        let (got, purged) = cache
            .take(sa, 2 * sb, clock(21), releaser(&mut gone))
            .unwrap();
        assert_eq!((got.as_ptr(), purged), (c, false));
        let (got, purged) = cache.take(sa, sa, clock(21), releaser(&mut gone)).unwrap();
        assert_eq!((got.as_ptr(), purged), (a, true));
        let (got, purged) = cache.take(sb, sb, clock(21), releaser(&mut gone)).unwrap();
        assert_eq!((got.as_ptr(), purged), (b, true));
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
        assert!(gone.is_empty());
        for seg in [a, b, c] {
            destroy(seg);
        }
    }

    #[test]
    fn takes_a_resident_fit_over_a_smaller_purged_one() {
        let cache = HugeCache::new();
        let mut gone = Vec::new();
        let (a, sa) = mapping(MIB);
        let (b, sb) = mapping(MIB + MIB / 2);
        assert!(cache.put(a, sa, clock(0), releaser(&mut gone)));
        cache.sweep(clock(10), releaser(&mut gone));
        assert!(cache.put(b, sb, clock(10), releaser(&mut gone)));
        // `a` is purged, `b` resident: both fit, `b` is taken.
        let (got, purged) = cache
            .take(sa, 2 * sa, clock(11), releaser(&mut gone))
            .unwrap();
        assert_eq!((got.as_ptr(), purged), (b, false));
        let (got2, purged) = cache
            .take(sa, 2 * sa, clock(11), releaser(&mut gone))
            .unwrap();
        assert_eq!((got2.as_ptr(), purged), (a, true));
        assert!(gone.is_empty());
        destroy(a);
        destroy(b);
    }

    // Not under Miri: it maps (and Miri's stand-in zeroes) 72 MiB.
    #[cfg(not(miri))]
    #[test]
    fn past_the_resident_bound_the_oldest_is_purged_and_kept() {
        let cache = HugeCache::new();
        let mut gone = Vec::new();
        let (first, size) = mapping(8 * MIB);
        let fit = MAX_RESIDENT / size;
        assert!(cache.put(first, size, never(0), releaser(&mut gone)));
        for i in 1..=fit {
            let (seg, s) = mapping(8 * MIB);
            assert!(cache.put(seg, s, never(i as u64), releaser(&mut gone)));
        }
        // One more than fits resident: the oldest was purged, not unmapped.
        assert!(gone.is_empty());
        assert_eq!(cache.len(), fit + 1);
        assert_eq!(cache.bytes(), (fit + 1) * size);
        let (got, purged) = cache
            .take(size, size, never(99), releaser(&mut gone))
            .unwrap();
        assert!(!purged, "a resident one is taken first");
        destroy(got.as_ptr());
        // The others are resident, `first` alone purged.
        for _ in 1..fit {
            let (got, purged) = cache
                .take(size, size, never(99), releaser(&mut gone))
                .unwrap();
            assert!(!purged);
            destroy(got.as_ptr());
        }
        let (got, purged) = cache
            .take(size, size, never(99), releaser(&mut gone))
            .unwrap();
        assert_eq!((got.as_ptr(), purged), (first, true));
        destroy(first);
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
    }

    // Not under Miri: it maps (and Miri's stand-in zeroes) 270 MiB.
    #[cfg(not(miri))]
    #[test]
    fn full_cache_unmaps_the_oldest_and_refuses_the_too_large() {
        let cache = HugeCache::new();
        let mut gone = Vec::new();
        // Entry bound: one more than the slots unmaps the oldest.
        let maps: Vec<_> = (0..=SLOTS).map(|_| mapping(200 << 10)).collect();
        for (i, &(seg, size)) in maps.iter().enumerate() {
            assert!(cache.put(seg, size, never(i as u64), releaser(&mut gone)));
        }
        assert_eq!(cache.len(), SLOTS);
        assert_eq!(gone, [maps[0].0]);
        assert_eq!(cache.drain(releaser(&mut gone)), SLOTS);
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
        gone.clear();
        // Byte bound: mappings of 30 MiB, at most MAX_BYTES together.
        let fit = MAX_BYTES / (30 * MIB + 64 * 1024);
        let big: Vec<_> = (0..=fit).map(|_| mapping(30 * MIB)).collect();
        for (i, &(seg, size)) in big.iter().enumerate() {
            assert!(cache.put(seg, size, never(i as u64), releaser(&mut gone)));
            assert!(cache.bytes() <= MAX_BYTES);
        }
        assert_eq!(gone, [big[0].0]);
        assert_eq!(cache.len(), fit);
        // Too large to cache: refused, left to the caller.
        let (huge, sh) = mapping(MAX_MAPPING);
        assert!(!cache.put(huge, sh, clock(0), releaser(&mut gone)));
        destroy(huge);
        assert_eq!(cache.drain(releaser(&mut gone)), fit);
    }
}
