//! Per-heap accounting for embedders: who holds a first-class heap (the
//! hand-off word), its limit, and the byte counts behind `Heap::stats`.
//!
//! # What is counted, and when
//!
//! - `pages`: bytes of the small and medium pages the heap has in use (a
//!   page is counted from the slow path that takes it until the free or
//!   collect that retires it). Owner-written.
//! - `huge`: bytes of the heap's huge mappings (first-class heaps only; a
//!   thread heap's huge blocks belong to no heap). Changed with atomic
//!   read-modify-writes, since `homing::realloc` may grow a first-class
//!   heap's huge block in place from any thread; every such change maps or
//!   unmaps memory, so the atomic costs nothing in comparison.
//! - `segments`: bytes of the heap's small and medium segments (mapped,
//!   including purged pages and the segment headers). Owner-written.
//! - `peak`: the highest live byte count seen at a sample point (see
//!   [`Account::note_peak`]).
//!
//! The limit is checked against `pages + huge` ("bytes in use"), which only
//! grows on the allocation slow path (a fresh page or a huge block), never
//! on the fast path: so a heap without a limit pays one compare with
//! `usize::MAX` per fresh page, and the live bytes of a heap never exceed
//! its limit (they are at most its bytes in use).
//!
//! Owner-written counters use a relaxed load and store (no read-modify-
//! write): only the heap's owner (its holder, or a claimer of an abandoned
//! thread heap) writes them, and the moves of ownership are
//! happens-before edges (see `heap`). Readers on other threads only want a
//! recent value.

use crate::sync::plain::{AtomicUsize as Plain, Ordering as PlainOrdering};
use crate::sync::{AtomicUsize, Ordering};

/// No limit.
pub(crate) const NO_LIMIT: usize = usize::MAX;

/// An owner-written counter that is always on (unlike `stats::Counter`,
/// which the `stats` feature turns off): the limit depends on it.
#[derive(Debug)]
pub(crate) struct Tally(Plain);

impl Tally {
    pub(crate) const fn new(v: usize) -> Tally {
        Tally(Plain::new(v))
    }

    #[inline]
    pub(crate) fn get(&self) -> usize {
        // Relaxed: owner-written; see the module doc.
        self.0.load(PlainOrdering::Relaxed)
    }

    #[inline]
    pub(crate) fn set(&self, v: usize) {
        // Relaxed: owner-written; see the module doc.
        self.0.store(v, PlainOrdering::Relaxed)
    }

    #[inline]
    fn add(&self, n: usize) {
        self.set(self.get().wrapping_add(n));
    }

    #[inline]
    fn sub(&self, n: usize) {
        self.set(self.get().wrapping_sub(n));
    }
}

/// A heap's accounting (see the module doc).
#[derive(Debug)]
pub(crate) struct Account {
    /// The hand-off word of a first-class heap: the token of the thread
    /// that holds it (0: released, between two holders). Only the C API's
    /// `homing_heap_release` / `homing_heap_acquire` and the checked
    /// build's holder checks use it.
    pub(crate) holder: AtomicUsize,
    /// Checked build: a thread is inside one of the heap's calls (see
    /// [`Account::enter`]).
    #[cfg(feature = "checked")]
    busy: crate::sync::AtomicBool,
    limit: Tally,
    pages: Tally,
    segments: Tally,
    huge: Plain,
    huge_blocks: Plain,
    peak: Tally,
    refusals: Tally,
    /// The heap's `remote_drained` counter when it was last (re)started:
    /// the counters keep counting across reuses of a heap (the process-wide
    /// totals add them up), its own statistics start from zero.
    remote_base: Tally,
}

impl Account {
    homing_deferred::const_fn_unless_loom! {
        /// Nothing counted, no limit, held by nobody.
        pub(crate) fn new() -> Account {
            Account {
                holder: AtomicUsize::new(0),
                #[cfg(feature = "checked")]
                busy: crate::sync::AtomicBool::new(false),
                limit: Tally::new(NO_LIMIT),
                pages: Tally::new(0),
                segments: Tally::new(0),
                huge: Plain::new(0),
                huge_blocks: Plain::new(0),
                peak: Tally::new(0),
                refusals: Tally::new(0),
                remote_base: Tally::new(0),
            }
        }
    }

    // ------------------------------------------------------------------
    // The hand-off word
    // ------------------------------------------------------------------

    /// The calling thread (`me`, a non-zero token) takes the heap, which
    /// must be released. On failure, the holder's token.
    pub(crate) fn acquire(&self, me: usize) -> Result<(), usize> {
        debug_assert_ne!(me, 0);
        // Acquire on success: pairs with the Release in `release`, so the
        // new holder sees every write of the old one to the heap (its pages,
        // lists and owner-written counters). Relaxed on failure: nothing is
        // read through the value but a token to report.
        self.holder
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .map(|_| ())
    }

    /// The holder `me` lets the heap go. On failure (`me` does not hold
    /// it), the holder's token (0: nobody).
    pub(crate) fn release(&self, me: usize) -> Result<(), usize> {
        // Release on success: publishes the holder's writes to the next
        // `acquire`. Relaxed on failure: only a token to report.
        self.holder
            .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed)
            .map(|_| ())
    }

    /// Who holds the heap (0: nobody), for the checked build's reports.
    pub(crate) fn holder(&self) -> usize {
        // Relaxed: a check of the caller's own claim. If the caller holds
        // the heap, it wrote this value itself (program order); if it does
        // not, any value but its own token is a correct report.
        self.holder.load(Ordering::Relaxed)
    }

    /// Checked build: the calling thread enters one of the heap's calls.
    /// `false` if another thread is inside one at this moment (two threads
    /// using one heap at once: the caller reports it).
    #[cfg(feature = "checked")]
    pub(crate) fn enter(&self) -> bool {
        // Acquire: pairs with `leave`'s Release, so a correct sequence of
        // users (each leaving before the next enters) is ordered; the flag
        // is a check, the hand-off itself orders the heap's data.
        !self.busy.swap(true, Ordering::Acquire)
    }

    /// Checked build: the calling thread leaves the heap's call.
    #[cfg(feature = "checked")]
    pub(crate) fn leave(&self) {
        // Release: see `enter`.
        self.busy.store(false, Ordering::Release);
    }

    /// Sets the holder of a heap nobody else can see yet (a new heap).
    pub(crate) fn set_holder(&self, me: usize) {
        // Relaxed: the heap is not shared yet; whatever hands it to another
        // thread orders this store.
        self.holder.store(me, Ordering::Relaxed);
    }

    // ------------------------------------------------------------------
    // The limit
    // ------------------------------------------------------------------

    /// Sets the limit on bytes in use (`NO_LIMIT`: none). Owner only.
    pub(crate) fn set_limit(&self, limit: usize) {
        self.limit.set(limit);
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.get()
    }

    /// May the heap take `bytes` more (a fresh page or a huge mapping)?
    /// Counts a refusal. The one branch a heap without a limit pays on its
    /// slow path.
    #[inline(always)]
    pub(crate) fn admit(&self, bytes: usize) -> bool {
        let limit = self.limit.get();
        if limit == NO_LIMIT {
            return true;
        }
        self.admit_limited(limit, bytes)
    }

    #[cold]
    #[inline(never)]
    fn admit_limited(&self, limit: usize, bytes: usize) -> bool {
        let ok = self
            .in_use()
            .checked_add(bytes)
            .is_some_and(|total| total <= limit);
        if !ok {
            self.refusals.add(1);
        }
        ok
    }

    /// Allocations the limit refused so far.
    pub(crate) fn refusals(&self) -> usize {
        self.refusals.get()
    }

    // ------------------------------------------------------------------
    // Counts
    // ------------------------------------------------------------------

    /// Bytes in use: pages and huge mappings (what the limit counts).
    pub(crate) fn in_use(&self) -> usize {
        // Relaxed: a statistic (the owner's own reads see its own writes).
        self.pages
            .get()
            .wrapping_add(self.huge.load(PlainOrdering::Relaxed))
    }

    /// Bytes mapped from the OS: segments and huge mappings.
    pub(crate) fn os_bytes(&self) -> usize {
        // Relaxed: a statistic.
        self.segments
            .get()
            .wrapping_add(self.huge.load(PlainOrdering::Relaxed))
    }

    /// Huge bytes and blocks live now.
    pub(crate) fn huge_live(&self) -> (usize, usize) {
        // Relaxed: statistics.
        (
            self.huge.load(PlainOrdering::Relaxed),
            self.huge_blocks.load(PlainOrdering::Relaxed),
        )
    }

    /// A page of `bytes` was taken (`true`) or retired. Owner only.
    #[inline]
    pub(crate) fn page(&self, bytes: usize, taken: bool) {
        if taken {
            self.pages.add(bytes);
        } else {
            self.pages.sub(bytes);
        }
    }

    /// A small/medium segment of `bytes` was mapped (`true`) or released.
    /// Owner only.
    pub(crate) fn segment(&self, bytes: usize, mapped: bool) {
        if mapped {
            self.segments.add(bytes);
        } else {
            self.segments.sub(bytes);
        }
    }

    /// A huge mapping of `bytes` of this heap was made (`true`) or unmapped.
    pub(crate) fn huge(&self, bytes: usize, mapped: bool) {
        // Relaxed: statistics and the limit's estimate; nothing is published
        // through them.
        if mapped {
            self.huge.fetch_add(bytes, PlainOrdering::Relaxed);
            self.huge_blocks.fetch_add(1, PlainOrdering::Relaxed);
        } else {
            self.huge.fetch_sub(bytes, PlainOrdering::Relaxed);
            self.huge_blocks.fetch_sub(1, PlainOrdering::Relaxed);
        }
    }

    /// A huge mapping of this heap grew in place from `old` to `new` bytes.
    pub(crate) fn huge_resized(&self, old: usize, new: usize) {
        // Relaxed: as in `huge`.
        self.huge
            .fetch_add(new.wrapping_sub(old), PlainOrdering::Relaxed);
    }

    /// Raises the peak to `live` if it is higher. Owner only. Sampled when
    /// the heap grows (before a fresh page or a huge block) and whenever
    /// the owner reads its statistics, not on the fast path: the peak can
    /// miss a maximum reached between two samples by at most the free room
    /// of the heap's pages.
    #[inline]
    pub(crate) fn note_peak(&self, live: usize) {
        if live > self.peak.get() {
            self.peak.set(live);
        }
    }

    pub(crate) fn peak(&self) -> usize {
        self.peak.get()
    }

    /// The heap released every segment (`release_all`): nothing is in use.
    /// The limit, the peak and the refusals stay. Owner only.
    pub(crate) fn released_all(&self) {
        self.pages.set(0);
        self.segments.set(0);
        // Relaxed: see `huge`; the owner releases the heap's huge blocks
        // itself.
        self.huge.store(0, PlainOrdering::Relaxed);
        self.huge_blocks.store(0, PlainOrdering::Relaxed);
    }

    /// A fresh start for a reused heap: no limit, no peak, no refusals,
    /// remote frees counted from `remote_drained` (the heap's counter now).
    /// Owner only.
    pub(crate) fn restart(&self, remote_drained: usize) {
        self.limit.set(NO_LIMIT);
        self.peak.set(0);
        self.refusals.set(0);
        self.remote_base.set(remote_drained);
    }

    /// Remote frees taken back since the last restart, from the heap's
    /// `remote_drained` counter.
    pub(crate) fn remote_since_restart(&self, remote_drained: usize) -> usize {
        remote_drained.wrapping_sub(self.remote_base.get())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The embedder docs say a heap's header is three OS pages at most
    /// (one until the by-size page pointers and their counters).
    #[test]
    fn a_heap_header_fits_three_os_pages() {
        let size = core::mem::size_of::<crate::heap::Heap>();
        std::eprintln!("size_of::<Heap>() = {size}");
        assert!(size <= 3 * crate::os::OS_PAGE, "{size}");
    }

    #[test]
    fn hand_off_word() {
        let a = Account::new();
        a.set_holder(7);
        assert_eq!(a.acquire(8), Err(7));
        assert_eq!(a.release(8), Err(7));
        assert_eq!(a.release(7), Ok(()));
        assert_eq!(a.release(7), Err(0));
        assert_eq!(a.acquire(8), Ok(()));
        assert_eq!(a.holder(), 8);
    }

    #[test]
    fn admit_counts_pages_and_huge_against_the_limit() {
        let a = Account::new();
        assert!(a.admit(usize::MAX));
        a.set_limit(100);
        a.page(60, true);
        assert!(a.admit(40));
        assert!(!a.admit(41));
        a.huge(30, true);
        assert!(!a.admit(11));
        assert_eq!(a.refusals(), 2);
        a.huge(30, false);
        a.page(60, false);
        assert!(a.admit(100));
        assert_eq!((a.in_use(), a.os_bytes()), (0, 0));
    }
}
