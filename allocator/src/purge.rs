//! Purging: giving the memory of free pages back to the OS once they have
//! been free for `HOMING_PURGE_DELAY_MS`.
//!
//! # When memory goes back
//!
//! A page whose last block is freed is retired at once (see `page`: the
//! free that takes `used` to zero) and, if its memory was touched, queued
//! here with the time. Its memory is purged (`MADV_DONTNEED`) when the
//! delay has passed, by the first of:
//! - the heap's owner, on its allocation slow path, on the free that
//!   retires another page, at `collect()`, or when it exits or lets go of
//!   a claim;
//! - the background purger (`HOMING_BACKGROUND_PURGE=1`), a thread that
//!   wakes every delay and purges the expired pages of every heap, busy or
//!   idle.
//!
//! Without the background purger, a thread that frees a lot and then
//! neither allocates nor frees (it sleeps, or waits on a lock) keeps
//! resident what it freed during its last delay, until it runs again.
//! A page taken again before its delay has passed is reused as it is (no
//! purge, no page fault), and a heap that needs a new page takes one of
//! these first, before a purged or untouched slot (`Owned::new_page`).
//!
//! # Who touches what
//!
//! The queue, and the `dirty` and `freed_at_ms` fields of the pages on it,
//! are shared by the heap's owner and the background purger, under `lock`,
//! a spin lock neither holds for longer than a few `madvise` calls. The
//! owner takes it only on slow paths (retiring a page, reusing a dirty free
//! page, releasing a segment, purging); the purger only tries it, and
//! skips a heap whose owner holds it. Nothing that holds the lock
//! allocates, so no thread ever waits for itself.
//!
//! # Invariant
//!
//! A page is on the queue exactly when it is free (`!in_use`) and `dirty`;
//! `pending` is the queue's length. The queue is two lists, small pages
//! and medium pages, each oldest first, so that a heap that needs a page of
//! one kind takes the oldest resident one in O(1) (`take_oldest`).

use core::ptr::NonNull;

// Under loom the queue lives in a loom cell, so an access outside the lock
// is reported as a data race.
#[cfg(not(loom))]
use core::cell::UnsafeCell;
#[cfg(loom)]
use loom::cell::UnsafeCell;

use crate::options;
use crate::os;
use crate::page::{Page, PageQueue};
use crate::segment::{self, Kind, Segment};
use crate::sync::{AtomicBool, AtomicUsize, Ordering};

/// The queue (small or medium) of a queued page.
///
/// # Safety
///
/// `page` is a page of a live small or medium segment.
unsafe fn kind_of(page: *mut Page) -> usize {
    // SAFETY: forwarded: the header of a live segment.
    let kind = unsafe { (*segment::segment_of_page(page)).kind };
    debug_assert!(kind != Kind::Huge);
    kind as usize
}

/// The pages of one heap waiting to be purged, oldest first.
pub(crate) struct PurgeQueue {
    /// `true` while someone holds the queue.
    lock: AtomicBool,
    /// Pages on the queue: read without the lock as a hint.
    pending: AtomicUsize,
    /// The queue and the purge count since the owner last took it; only
    /// under `lock`.
    inner: UnsafeCell<Inner>,
}

struct Inner {
    /// Small pages, then medium pages (indexed by `Kind`), each oldest
    /// first.
    queues: [PageQueue; 2],
    /// Pages purged since the owner last added them to its counters.
    purged: usize,
}

// SAFETY: `inner` is only reached under `lock` (see `with`).
unsafe impl Sync for PurgeQueue {}

/// Spins this many times on a held lock before yielding the CPU.
const SPINS_BEFORE_YIELD: usize = 64;

impl PurgeQueue {
    homing_deferred::const_fn_unless_loom! {
        /// An empty queue.
        pub(crate) fn new() -> PurgeQueue {
            PurgeQueue {
                lock: AtomicBool::new(false),
                pending: AtomicUsize::new(0),
                inner: UnsafeCell::new(Inner {
                    queues: [PageQueue::EMPTY, PageQueue::EMPTY],
                    purged: 0,
                }),
            }
        }
    }

    fn try_lock(&self) -> bool {
        // Acquire: we read what the previous holder wrote (the queue, the
        // pages' `dirty`); Relaxed on failure: we read nothing.
        self.lock
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    fn unlock(&self) {
        // Release: the next holder sees our writes.
        self.lock.store(false, Ordering::Release);
    }

    /// Runs `f` on the queue under the lock, waiting for it if the other
    /// side holds it (briefly: see the module doc).
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut spins = 0;
        while !self.try_lock() {
            spins += 1;
            if spins % SPINS_BEFORE_YIELD == 0 {
                os::yield_now();
            } else {
                core::hint::spin_loop();
            }
        }
        // SAFETY: we hold the lock: nobody else reaches `inner`.
        let r = unsafe { self.inner_mut(f) };
        self.unlock();
        r
    }

    /// Runs `f` on the queue itself.
    ///
    /// # Safety
    ///
    /// The caller holds the lock.
    unsafe fn inner_mut<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        #[cfg(loom)]
        // SAFETY: forwarded: the lock makes the access exclusive.
        return self.inner.with_mut(|inner| f(unsafe { &mut *inner }));
        #[cfg(not(loom))]
        // SAFETY: forwarded: the lock makes the access exclusive.
        f(unsafe { &mut *self.inner.get() })
    }

    /// `true` if no page waits (a hint: the other side may be changing it).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        // Relaxed: a hint; the lock orders every real access.
        self.pending.load(Ordering::Relaxed) == 0
    }

    /// Queues the free, dirty page `page`, freed at `now_ms`, then purges
    /// the queued pages whose delay has passed (every one with a zero
    /// delay), under one hold of the lock.
    ///
    /// # Safety
    ///
    /// `page` belongs to the caller's heap (which owns this queue), is free
    /// and dirty, and is on no list.
    pub(crate) unsafe fn push_and_purge(&self, page: *mut Page, now_ms: u64) {
        let delay = options::purge_delay_ms();
        self.with(|inner| {
            // SAFETY: the caller's page, on no list.
            unsafe {
                (*page).freed_at_ms = now_ms;
                inner.queues[kind_of(page)].push_back(page);
            }
            // Relaxed: a hint (see `is_empty`).
            self.pending.fetch_add(1, Ordering::Relaxed);
            if delay != options::NEVER {
                self.purge_locked(inner, delay == 0, delay, now_ms);
            }
        });
    }

    /// Takes the free page `page` off the queue if it is on it (still
    /// dirty: not purged yet). Returns whether it was.
    ///
    /// # Safety
    ///
    /// `page` is a free page of the caller's heap.
    pub(crate) unsafe fn remove(&self, page: *mut Page) -> bool {
        self.with(|inner| {
            // SAFETY: under the lock, `dirty` of a free page says whether it
            // is queued (module invariant).
            unsafe {
                if !(*page).dirty {
                    return false;
                }
                inner.queues[kind_of(page)].remove(page);
            }
            // Relaxed: a hint.
            self.pending.fetch_sub(1, Ordering::Relaxed);
            true
        })
    }

    /// Takes the oldest queued page of a segment of `kind` off the queue,
    /// or null if none waits: the heap reuses a page whose memory is still
    /// resident before it takes a purged or untouched one (which faults in
    /// as it is used), and the oldest is the one the next purge would give
    /// back.
    pub(crate) fn take_oldest(&self, kind: Kind) -> *mut Page {
        if self.is_empty() {
            return core::ptr::null_mut();
        }
        self.with(|inner| {
            let queue = &mut inner.queues[kind as usize];
            let page = queue.first();
            if !page.is_null() {
                // SAFETY: a queued page is a free page of a live segment of
                // the queue's heap (see `purge_locked`).
                unsafe { queue.remove(page) };
                // Relaxed: a hint.
                self.pending.fetch_sub(1, Ordering::Relaxed);
            }
            page
        })
    }

    /// Purges the queued pages whose delay has passed at `now_ms` (all of
    /// them if `all`), waiting for the lock. The heap's owner calls it.
    pub(crate) fn purge_expired(&self, all: bool, now_ms: u64) {
        let delay = options::purge_delay_ms();
        if (delay == options::NEVER && !all) || self.is_empty() {
            return;
        }
        self.with(|inner| self.purge_locked(inner, all, delay, now_ms));
    }

    /// The background purger's call: as `purge_expired(false, now)`, but
    /// skips the heap if its owner holds the queue.
    #[cfg_attr(miri, allow(dead_code))] // the purger thread is not built under Miri
    pub(crate) fn try_purge_expired(&self, now_ms: u64) {
        self.try_purge(false, now_ms);
    }

    /// As `try_purge_expired`, or every queued page if `all`.
    #[cfg_attr(miri, allow(dead_code))]
    pub(crate) fn try_purge(&self, all: bool, now_ms: u64) {
        let delay = options::purge_delay_ms();
        if (delay == options::NEVER && !all) || self.is_empty() || !self.try_lock() {
            return;
        }
        // SAFETY: we hold the lock.
        unsafe { self.inner_mut(|inner| self.purge_locked(inner, all, delay, now_ms)) };
        self.unlock();
    }

    fn purge_locked(&self, inner: &mut Inner, all: bool, delay: usize, now_ms: u64) {
        for k in 0..inner.queues.len() {
            loop {
                let page = inner.queues[k].first();
                if page.is_null() {
                    break;
                }
                // SAFETY: queued pages are free pages of live segments of the
                // queue's heap; a segment is released only after its pages
                // are taken off the queue, under this lock.
                unsafe {
                    if !all && now_ms < (*page).freed_at_ms.saturating_add(delay as u64) {
                        break;
                    }
                    inner.queues[k].remove(page);
                    let seg = segment::segment_of_page(page);
                    let slot = Segment::slot_of(seg, page);
                    let start = Segment::page_start(seg, slot);
                    os::purge(NonNull::new_unchecked(start), 1 << (*seg).page_shift);
                    (*page).dirty = false;
                }
                inner.purged += 1;
                // Relaxed: a hint.
                self.pending.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Pages purged since the last call (for the owner's counters).
    pub(crate) fn take_purged(&self) -> usize {
        self.with(|inner| core::mem::take(&mut inner.purged))
    }

    /// Forgets every queued page (their segments are being released whole).
    pub(crate) fn clear(&self) {
        self.with(|inner| {
            for queue in &mut inner.queues {
                let mut page = queue.first();
                while !page.is_null() {
                    // SAFETY: queued pages are live until their segment
                    // goes, which happens after this call.
                    unsafe {
                        let next = PageQueue::next(page);
                        queue.remove(page);
                        page = next;
                    }
                }
            }
            // Relaxed: a hint.
            self.pending.store(0, Ordering::Relaxed);
        });
    }
}

/// The background purger (`HOMING_BACKGROUND_PURGE=1`): a thread started on
/// the first heap binding that, every purge delay, purges the expired free
/// pages of every heap, and tidies abandoned heaps (see `thread`).
#[cfg(not(any(loom, miri)))]
pub(crate) mod background {
    use crate::sync::plain::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

    /// The process that started the purger (0: none yet). A forked child
    /// has no purger thread: it starts its own.
    static STARTED_IN: AtomicUsize = AtomicUsize::new(0);

    /// `true` while the purger runs a round, or while a `fork` is under
    /// way (see [`hold_rounds`]).
    static ROUND: AtomicBool = AtomicBool::new(false);
    /// The round the purger runs (`ensure_started`'s `sweep`).
    static SWEEP: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

    /// Takes [`ROUND`], waiting for a round under way to end.
    fn lock_round() {
        // Acquire: what the previous holder wrote (a round's purges and
        // claims) happens before what we do; Relaxed on failure: nothing read.
        while ROUND
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            crate::os::yield_now();
        }
    }

    /// Releases [`ROUND`].
    fn unlock_round() {
        // Release: our writes happen before the next holder's.
        ROUND.store(false, Ordering::Release);
    }

    /// What the purger thread runs each period: one round, under [`ROUND`].
    extern "C" fn round() {
        // Relaxed: written before the thread was started (the start
        // orders it).
        let sweep = SWEEP.load(Ordering::Relaxed);
        if sweep.is_null() {
            return;
        }
        // SAFETY: `SWEEP` only ever holds an `extern "C" fn()` (stored by
        // `ensure_started`).
        let sweep: extern "C" fn() = unsafe { core::mem::transmute(sweep) };
        lock_round();
        sweep();
        unlock_round();
    }

    /// Waits until the purger is between rounds and keeps it there until
    /// [`release_rounds`]: a `fork`'s prepare handler, so that the child
    /// does not inherit a purge-queue lock, or a claim on a heap, that the
    /// purger held at the instant of the fork (the child has no purger
    /// thread to release them, and its thread would wait forever).
    pub(crate) fn hold_rounds() {
        lock_round();
    }

    /// Lets the purger run rounds again (after `fork`, in parent and child).
    pub(crate) fn release_rounds() {
        unlock_round();
    }

    /// Starts the purger if the option asks for it and this process has
    /// none. `sweep` is one round over every heap.
    pub(crate) fn ensure_started(sweep: extern "C" fn()) {
        let delay = crate::options::purge_delay_ms();
        if !crate::options::background_purge() || delay == crate::options::NEVER {
            return;
        }
        let pid = crate::os::process_id();
        // Relaxed: a once-per-process flag; racing starters are resolved by
        // the exchange, and the thread needs nothing from us.
        let seen = STARTED_IN.load(Ordering::Relaxed);
        if seen == pid
            || STARTED_IN
                .compare_exchange(seen, pid, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        // Relaxed: the thread start below orders it before `round` reads it.
        SWEEP.store(sweep as *mut (), Ordering::Relaxed);
        if !crate::os::spawn_periodic(delay.max(1), round) {
            // Relaxed: as above; a later binding tries again.
            STARTED_IN.store(0, Ordering::Relaxed);
        }
    }
}
