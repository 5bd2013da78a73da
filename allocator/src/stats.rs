//! Statistics: per-heap counters and a process-wide snapshot.
//!
//! Each heap's counters are written only by the thread that owns (or has
//! claimed) the heap, with a relaxed load and store — no read-modify-write,
//! so no atomic instruction on the fast path — and read by anyone taking a
//! snapshot. With the `stats` feature off every counter is a no-op.
//!
//! Live blocks and bytes are counted in class sizes (what the heap hands
//! out), not requested sizes. A block freed by another thread stays live in
//! its owner's counters until the owner drains it from its inbox.

use core::fmt;

use crate::size_class::{self, CLASSES, CLASS_SIZE, DIRECT_CLASSES, DIRECT_SLOTS};
use crate::sync::plain::{AtomicU32, AtomicUsize, Ordering};

/// One owner-written counter.
#[derive(Debug)]
pub(crate) struct Counter(AtomicUsize);

impl Counter {
    pub(crate) const fn new() -> Self {
        Counter(AtomicUsize::new(0))
    }

    /// Adds `n` (owner only).
    #[inline(always)]
    pub(crate) fn add(&self, n: usize) {
        #[cfg(feature = "stats")]
        {
            // Relaxed load and store: only the owner writes, so no update is
            // lost; readers only need an eventually consistent number.
            self.0.store(
                self.0.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        }
        #[cfg(not(feature = "stats"))]
        let _ = n;
    }

    pub(crate) fn get(&self) -> usize {
        // Relaxed: a statistic.
        self.0.load(Ordering::Relaxed)
    }
}

/// A per-class block counter: 32 bits, wrapping. Only differences are read
/// (allocations minus frees), and those are right modulo 2^32, so the count
/// is exact while a heap has fewer than 2^32 live blocks of one class (64
/// GiB of its smallest blocks); half the width keeps a heap's header small
/// (it holds two per class and one per 16 bytes
/// of small request).
///
/// A reader on another thread loads a class's two counters one after the
/// other while the owner keeps counting, so it must load the frees first
/// (acquire) and the allocations second: see [`HeapCounters::live`].
#[derive(Debug)]
pub(crate) struct ClassCounter(AtomicU32);

impl ClassCounter {
    pub(crate) const fn new() -> Self {
        ClassCounter(AtomicU32::new(0))
    }

    /// Adds `n` (owner only), wrapping.
    #[inline(always)]
    pub(crate) fn add(&self, n: usize) {
        #[cfg(feature = "stats")]
        {
            // Relaxed load: only the owner writes. Release store: a reader
            // that acquires a free count also sees the allocation counts
            // stored before it (see `HeapCounters::live`). On x86-64 a
            // release store is a plain store: the fast path's increment
            // stays one `inc` in memory.
            self.0.store(
                self.0.load(Ordering::Relaxed).wrapping_add(n as u32),
                Ordering::Release,
            );
        }
        #[cfg(not(feature = "stats"))]
        let _ = n;
    }

    pub(crate) fn get(&self) -> u32 {
        // Relaxed: a statistic (see `get_acquire` for the frees).
        self.0.load(Ordering::Relaxed)
    }

    /// The count, with every store of the owner's before it visible.
    pub(crate) fn get_acquire(&self) -> u32 {
        // Acquire: pairs with the release store in `add`.
        self.0.load(Ordering::Acquire)
    }
}

/// A heap's counters.
///
/// Blocks are counted per class, allocations and frees: the allocation
/// fast path holds the class in a register and the free path reads it from
/// the page it touches anyway, so each count is one increment, with no size
/// to look up. Bytes are the counts times the class sizes; readers sum the
/// classes (a few hundred loads, no page walk).
#[derive(Debug)]
pub(crate) struct HeapCounters {
    /// Blocks handed out per class, but for those the by-size fast path
    /// handed out (`allocs_by_size`, folded in by `allocs_of`).
    pub(crate) allocs: [ClassCounter; CLASSES],
    /// Blocks the by-size fast path handed out, per by-size entry: counted
    /// by the index it already holds, so it needs no class.
    pub(crate) allocs_by_size: [ClassCounter; DIRECT_SLOTS],
    pub(crate) frees: [ClassCounter; CLASSES],
    pub(crate) remote_posted: Counter,
    pub(crate) remote_drained: Counter,
    pub(crate) pages_purged: Counter,
}

impl HeapCounters {
    pub(crate) const fn new() -> Self {
        HeapCounters {
            allocs: [const { ClassCounter::new() }; CLASSES],
            allocs_by_size: [const { ClassCounter::new() }; DIRECT_SLOTS],
            frees: [const { ClassCounter::new() }; CLASSES],
            remote_posted: Counter::new(),
            remote_drained: Counter::new(),
            pages_purged: Counter::new(),
        }
    }

    /// Live blocks and bytes in pages (huge blocks are the account's).
    ///
    /// Per class, the frees are loaded first, with acquire, and the
    /// allocations second. Every block is counted out before it is counted
    /// back, and the owner stores each count with release, so the
    /// allocations read then are at least the frees read: the difference
    /// is never negative (and so never wraps to 2^32 - k), even while the
    /// owner allocates and frees. Loaded the other way round, the frees of
    /// blocks allocated between the two loads made it negative.
    pub(crate) fn live(&self) -> (usize, usize) {
        let (mut blocks, mut bytes) = (0usize, 0usize);
        for (c, f) in self.frees.iter().enumerate() {
            let freed = f.get_acquire();
            let n = self.allocs_of(c).wrapping_sub(freed) as usize;
            blocks = blocks.wrapping_add(n);
            bytes = bytes.wrapping_add(n.wrapping_mul(CLASS_SIZE[c] as usize));
        }
        (blocks, bytes)
    }

    /// Everything counted is freed (a destroyed heap): balances the frees.
    pub(crate) fn free_everything(&self) {
        for (c, f) in self.frees.iter().enumerate() {
            f.add(self.allocs_of(c).wrapping_sub(f.get()) as usize);
        }
    }

    /// Blocks of class `c` handed out, on either path (wrapping, as the
    /// counters do: only differences mean anything).
    fn allocs_of(&self, c: usize) -> u32 {
        let mut n = self.allocs[c].get();
        if c < DIRECT_CLASSES {
            for slot in size_class::slots_of_class(c) {
                n = n.wrapping_add(self.allocs_by_size[slot].get());
            }
        }
        n
    }
}

/// Process-wide counters updated with atomic read-modify-writes (slow paths
/// only: huge blocks, frees from threads without a heap).
pub(crate) struct GlobalCounters {
    pub(crate) huge_blocks: AtomicUsize,
    pub(crate) huge_bytes: AtomicUsize,
    pub(crate) remote_posted_heapless: AtomicUsize,
}

pub(crate) static GLOBAL: GlobalCounters = GlobalCounters {
    huge_blocks: AtomicUsize::new(0),
    huge_bytes: AtomicUsize::new(0),
    remote_posted_heapless: AtomicUsize::new(0),
};

impl GlobalCounters {
    /// A huge block's mapping grew from `old` to `new` bytes.
    pub(crate) fn huge_resized(&self, old: usize, new: usize) {
        // Relaxed: a statistic.
        self.huge_bytes.fetch_add(new - old, Ordering::Relaxed);
    }

    /// Counts a huge block in (`+`) or out.
    pub(crate) fn huge(&self, bytes: usize, allocated: bool) {
        // Relaxed: statistics; nothing is published through them.
        if allocated {
            self.huge_blocks.fetch_add(1, Ordering::Relaxed);
            self.huge_bytes.fetch_add(bytes, Ordering::Relaxed);
        } else {
            self.huge_blocks.fetch_sub(1, Ordering::Relaxed);
            self.huge_bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}

/// A snapshot of homing's counters (see [`crate::stats`]).
///
/// Read the fields, or print it: `Display` gives a small table. The struct
/// is `#[non_exhaustive]`: later versions may add counters, so it cannot be
/// built outside homing (start from `Stats::default()` in tests).
///
/// ```
/// let s: homing::Stats = homing::stats();
/// println!("{} blocks live, {} KiB mapped", s.live_blocks, s.os_mapped / 1024);
/// assert!(s.to_string().starts_with("homing statistics"));
/// ```
///
/// The table (`println!("{}", homing::stats())`) in a program with homing
/// as its global allocator, holding 1000 boxes of 100 bytes and an 8 MiB
/// vector, after 12 boxes made on another (since exited) thread were freed
/// on this one (posted home, not all drained by their heap yet):
///
/// ```text
/// homing statistics
///   live:                  1004 blocks         8317 KiB
///   huge:                     1 blocks (0 KiB cached; 0 reused, 1 mapped)
///   OS mapped:            20496 KiB (4096 KiB of it cached for reuse)
///   OS purged:             4344 KiB (4 pages)
///   remote frees:            15 posted            2 drained
///   heaps:                    2 (0 abandoned)
/// ```
///
/// Counters kept per heap (live blocks and bytes, remote frees, pages
/// purged) are zero when the `stats` feature is off; the OS, huge-block and
/// heap counts are always kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Blocks handed out and not yet freed back to their heap (including
    /// huge blocks, and remote frees not yet drained by their owner).
    pub live_blocks: usize,
    /// Bytes of those blocks (class sizes; huge blocks by mapping).
    pub live_bytes: usize,
    /// Huge blocks (each in a mapping of its own) live now.
    pub huge_blocks: usize,
    /// Bytes of released huge mappings kept for reuse (resident until the
    /// purge delay has passed, then purged; part of `os_cached`).
    pub huge_cached: usize,
    /// Huge blocks served from a cached mapping so far.
    pub huge_reused: usize,
    /// Huge mappings made from the OS so far.
    pub huge_mapped: usize,
    /// Bytes mapped from the OS now (address space).
    pub os_mapped: usize,
    /// Of `os_mapped`, bytes of released segments and huge mappings kept
    /// for reuse (both resident until the purge delay has passed, then
    /// address space only; see `huge_cached`).
    pub os_cached: usize,
    /// Bytes given back to the OS with `MADV_DONTNEED` so far.
    pub os_purged: usize,
    /// Remote frees posted to an owner's inbox so far.
    pub remote_posted: usize,
    /// Remote frees drained by their owners so far.
    pub remote_drained: usize,
    /// Pages purged so far.
    pub pages_purged: usize,
    /// Heaps ever created (thread heaps and first-class heaps).
    pub heaps: usize,
    /// Heaps abandoned by exited threads and not yet adopted.
    pub heaps_abandoned: usize,
}

impl Stats {
    /// Adds one heap's counters.
    pub(crate) fn add_heap(&mut self, c: &HeapCounters) {
        let (blocks, bytes) = c.live();
        self.live_blocks = self.live_blocks.wrapping_add(blocks);
        self.live_bytes = self.live_bytes.wrapping_add(bytes);
        self.remote_posted += c.remote_posted.get();
        self.remote_drained += c.remote_drained.get();
        self.pages_purged += c.pages_purged.get();
    }

    /// Adds the process-wide counters (`os_cached`: the bytes of the segment
    /// cache, which the caller reads from the layer that keeps it).
    pub(crate) fn add_global(&mut self, os_cached: usize) {
        // Relaxed: statistics.
        let huge_blocks = GLOBAL.huge_blocks.load(Ordering::Relaxed);
        self.huge_blocks = huge_blocks;
        self.live_blocks = self.live_blocks.wrapping_add(huge_blocks);
        self.live_bytes = self
            .live_bytes
            .wrapping_add(GLOBAL.huge_bytes.load(Ordering::Relaxed));
        self.remote_posted += GLOBAL.remote_posted_heapless.load(Ordering::Relaxed);
        let os = crate::os::counters();
        self.os_mapped = os.mapped;
        self.os_cached = os_cached;
        self.os_purged = os.purged;
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KIB: usize = 1024;
        writeln!(f, "homing statistics")?;
        writeln!(
            f,
            "  live:          {:>12} blocks {:>12} KiB",
            self.live_blocks,
            self.live_bytes / KIB
        )?;
        writeln!(
            f,
            "  huge:          {:>12} blocks ({} KiB cached; {} reused, {} mapped)",
            self.huge_blocks,
            self.huge_cached / KIB,
            self.huge_reused,
            self.huge_mapped
        )?;
        writeln!(
            f,
            "  OS mapped:     {:>12} KiB ({} KiB of it cached for reuse)",
            self.os_mapped / KIB,
            self.os_cached / KIB
        )?;
        writeln!(
            f,
            "  OS purged:     {:>12} KiB ({} pages)",
            self.os_purged / KIB,
            self.pages_purged
        )?;
        writeln!(
            f,
            "  remote frees:  {:>12} posted {:>12} drained",
            self.remote_posted, self.remote_drained
        )?;
        write!(
            f,
            "  heaps:         {:>12} ({} abandoned)",
            self.heaps, self.heaps_abandoned
        )
    }
}

/// Live bytes and blocks of one heap: its page blocks (class sizes) and,
/// for a first-class heap, its huge blocks (mapping sizes).
fn heap_live(c: &HeapCounters, a: &crate::account::Account) -> (usize, usize) {
    let (huge_bytes, huge_blocks) = a.huge_live();
    let (blocks, bytes) = c.live();
    (
        bytes.wrapping_add(huge_bytes),
        blocks.wrapping_add(huge_blocks),
    )
}

/// Samples a heap's live bytes into its peak (see `account`). Only the
/// heap's owner calls it (only the owner writes the peak).
#[inline]
pub(crate) fn sample_peak(c: &HeapCounters, a: &crate::account::Account) {
    a.note_peak(heap_live(c, a).0);
}

/// One first-class heap's numbers ([`crate::Heap::stats`]). Reading them
/// costs two loads per size class: no page is walked.
///
/// Live blocks and bytes are counted in class sizes (huge blocks by their
/// mapping), and need the `stats` feature (on by default; without it they,
/// the peak and `remote_frees` read 0). Blocks freed by other threads count
/// as live until the heap takes them back from its inbox (at its next
/// allocation slow path or [`crate::Heap::collect`]).
///
/// ```
/// let heap = homing::Heap::new();
/// let before = heap.stats();
/// let v = allocator_api2::vec::Vec::<u8, _>::with_capacity_in(10_000, &heap);
/// assert!(heap.stats().live_bytes >= before.live_bytes + 10_000);
/// drop(v);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Blocks handed out and not yet taken back.
    pub live_blocks: usize,
    /// Bytes of those blocks.
    pub live_bytes: usize,
    /// The highest `live_bytes` seen. Sampled whenever the heap grows (a
    /// fresh page or a huge block) and at each `stats()` call, not on the
    /// fast path, so it may miss a maximum reached between two samples by
    /// at most the free room of the heap's pages.
    pub peak_live_bytes: usize,
    /// Bytes of the pages and huge blocks the heap has in use (what the
    /// limit counts; at least `live_bytes`).
    pub in_use_bytes: usize,
    /// Bytes the heap holds from the OS: its segments (including pages
    /// already purged, and spare segments) and huge mappings.
    pub os_bytes: usize,
    /// Blocks other threads freed into the heap and that it took back.
    pub remote_frees: usize,
    /// The limit on `in_use_bytes` (`None`: no limit).
    pub limit: Option<usize>,
    /// Allocations the limit refused so far.
    pub limit_refusals: usize,
}

impl HeapStats {
    /// The numbers of a heap with counters `c` and accounting `a` now,
    /// sampling `live_bytes` into its peak if `owner` (only the heap's
    /// owner writes the peak).
    pub(crate) fn of(c: &HeapCounters, a: &crate::account::Account, owner: bool) -> HeapStats {
        let (live_bytes, live_blocks) = heap_live(c, a);
        if owner {
            a.note_peak(live_bytes);
        }
        let limit = a.limit();
        HeapStats {
            live_blocks,
            live_bytes,
            peak_live_bytes: a.peak().max(live_bytes),
            in_use_bytes: a.in_use(),
            os_bytes: a.os_bytes(),
            remote_frees: a.remote_since_restart(c.remote_drained.get()),
            limit: (limit != crate::account::NO_LIMIT).then_some(limit),
            limit_refusals: a.refusals(),
        }
    }
}
