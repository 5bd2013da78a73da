//! The registry of heaps: every heap ever made, on a push-only list.
//!
//! Heaps are never unmapped, so a pointer to one stays valid forever and a
//! heap's address is a stable identity for remote frees. A heap's `state`
//! says whether it may be taken: a new owner takes an `ABANDONED` heap
//! (adoption: pages and all) or a `FREE` one (reuse) with one
//! compare-exchange, or maps a new heap and pushes it.
//!
//! # Who touches what
//!
//! `head` and `created` are shared (atomics). A heap's `registry_next` is
//! written once, before the push that publishes the heap, and only read
//! afterwards.

use core::mem::size_of;
use core::ptr;

use crate::heap::{Heap, ABANDONED, ACTIVE, FREE};
use crate::os;
use crate::sync::{AtomicPtr, AtomicUsize, Ordering};

/// A push-only list of heaps.
pub(crate) struct Registry {
    /// Newest heap.
    head: AtomicPtr<Heap>,
    /// Heaps ever created (a statistic).
    created: AtomicUsize,
}

/// The process's registry.
#[cfg(not(loom))]
pub(crate) static HEAPS: Registry = Registry::new();

impl Registry {
    homing_deferred::const_fn_unless_loom! {
        /// An empty registry.
        pub(crate) fn new() -> Registry {
            Registry {
                head: AtomicPtr::new(ptr::null_mut()),
                created: AtomicUsize::new(0),
            }
        }
    }

    /// Heaps ever created.
    pub(crate) fn created(&self) -> usize {
        // Relaxed: a statistic.
        self.created.load(Ordering::Relaxed)
    }

    /// Iterates over every heap ever made, newest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = *mut Heap> {
        // Acquire: pairs with the Release push in `acquire`, so each heap's
        // initialisation and `registry_next` are visible.
        let mut cur = self.head.load(Ordering::Acquire);
        core::iter::from_fn(move || {
            if cur.is_null() {
                return None;
            }
            let heap = cur;
            // SAFETY: heaps are never unmapped; `registry_next` is immutable
            // after the push that published it.
            cur = unsafe { (*heap).registry_next };
            Some(heap)
        })
    }

    /// Takes a heap for a new owner: for a thread heap, an abandoned heap
    /// with its pages first (adoption); then a free heap; then a new one.
    /// `None` when the OS has no memory for a new heap.
    pub(crate) fn acquire(&self, is_thread_heap: bool) -> Option<*mut Heap> {
        self.acquire_preferring(core::ptr::null_mut(), is_thread_heap)
    }

    /// As [`Registry::acquire`], but a thread heap adopts `prefer` first if
    /// it is abandoned: the heap that owns the block a new thread frees
    /// before it ever allocated. A thread that takes over an exited
    /// thread's work (a server replacing a worker, a pool's next job) then
    /// takes over its memory too, so its frees are local and its
    /// allocations reuse the pages it frees, instead of draining one heap
    /// into another page by page.
    pub(crate) fn acquire_preferring(
        &self,
        prefer: *mut Heap,
        is_thread_heap: bool,
    ) -> Option<*mut Heap> {
        if is_thread_heap && !prefer.is_null() {
            // SAFETY: heaps are never unmapped.
            let state = unsafe { &(*prefer).state };
            // Relaxed read: a hint; Acquire on success, as below.
            if state.load(Ordering::Relaxed) == ABANDONED
                && state
                    .compare_exchange(ABANDONED, ACTIVE, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return Some(prefer);
            }
        }
        for wanted in [ABANDONED, FREE] {
            if wanted == ABANDONED && !is_thread_heap {
                continue;
            }
            for heap in self.iter() {
                // SAFETY: heaps are never unmapped.
                let state = unsafe { &(*heap).state };
                // Relaxed read: a hint; Acquire on the successful exchange
                // makes the previous owner's writes to the heap visible.
                if state.load(Ordering::Relaxed) == wanted
                    && state
                        .compare_exchange(wanted, ACTIVE, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                {
                    if wanted == FREE {
                        // SAFETY: a free heap holds nothing and is ours now.
                        unsafe { Heap::reset(heap, is_thread_heap) };
                    }
                    return Some(heap);
                }
            }
        }
        let bytes = os::align_up(size_of::<Heap>(), os::OS_PAGE)?;
        let heap = os::map(bytes, os::OS_PAGE)?.cast::<Heap>().as_ptr();
        // SAFETY: fresh memory, exclusively ours until published.
        unsafe { Heap::init_at(heap, is_thread_heap, ACTIVE, on_slow_path) };
        // Relaxed: a statistic.
        self.created.fetch_add(1, Ordering::Relaxed);
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: not yet published; only we see it.
            unsafe { (*heap).registry_next = head };
            // Release: publishes the heap's initialisation and
            // `registry_next` to readers (Acquire in `iter`). Relaxed on
            // failure: we only retry with the new head.
            match self
                .head
                .compare_exchange_weak(head, heap, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return Some(heap),
                Err(now) => head = now,
            }
        }
    }
}

/// What the allocation slow path calls (a thread heap's `post_outbox`,
/// when [`Outbox::wants_post`](crate::outbox::Outbox::wants_post)): posts
/// the outbox, and on one slow path in `SCAN_EVERY`, if a purge delay has
/// passed since the process's last scan, scans every heap for stranded
/// outboxes (see "Stranded outboxes" in `remote`). It lives here, above
/// `remote`, because a scan walks every heap of the registry.
///
/// # Safety
///
/// `mine` is the calling thread's real heap.
#[cold]
pub(crate) unsafe fn on_slow_path(mine: *mut Heap) {
    // SAFETY: forwarded.
    unsafe {
        if (*mine).outbox.pending() > 0 {
            crate::remote::flush_outbox(mine);
        }
        if (*mine).owned.slow_paths & (crate::outbox::SCAN_EVERY - 1) == 0 {
            scan_if_due(mine);
        }
    }
}

/// The process's last scan for stranded outboxes (ms of `options::now_ms`).
#[cfg(not(loom))]
static LAST_SCAN: crate::sync::plain::AtomicUsize = crate::sync::plain::AtomicUsize::new(0);

/// Scans for stranded outboxes if a purge delay has passed since the
/// process's last scan (one scanner at a time wins the exchange).
///
/// # Safety
///
/// `mine` is the calling thread's heap (possibly the empty heap).
pub(crate) unsafe fn scan_if_due(mine: *mut Heap) {
    #[cfg(not(loom))]
    {
        use crate::sync::plain::Ordering as O;
        let delay = crate::options::purge_delay_ms();
        if delay == crate::options::NEVER {
            return;
        }
        let now = crate::options::now_ms() as usize;
        // Relaxed: a rate limit; the exchange picks one scanner per period.
        let last = LAST_SCAN.load(O::Relaxed);
        if now.saturating_sub(last) < delay.max(1)
            || LAST_SCAN
                .compare_exchange(last, now, O::Relaxed, O::Relaxed)
                .is_err()
        {
            return;
        }
        // SAFETY: forwarded.
        unsafe { crate::remote::reclaim_stale(HEAPS.iter(), mine) };
    }
    #[cfg(loom)]
    let _ = mine;
}
