//! Thread heaps: the thread-local, the registry of heaps, and thread exit.
//!
//! # The thread-local
//!
//! `HEAP` is a `const`-initialised `Cell<*mut Heap>` with no destructor, so
//! reading it is one thread-pointer-relative load and using it never
//! registers anything. It starts as the shared empty heap; the first
//! allocation's slow path binds a real heap (adopting an abandoned one when
//! there is one, reusing a free one, or mapping a new one).
//!
//! # Thread exit
//!
//! Thread exit is detected with a `pthread` key whose destructor is
//! registered lazily, on the slow path that binds the heap — never through
//! Rust's TLS destructors, which may allocate. The destructor resets `HEAP`
//! to the empty heap, records the heap in `GONE`, then posts the outbox and
//! abandons the heap (see `remote`). Rust TLS destructors run before
//! `pthread` key destructors, so they still allocate from the thread's heap.
//!
//! A thread past its exit hook never owns a heap again. Code still runs on
//! it: other libraries' key destructors, and glibc's own clean-up
//! (`__libc_thread_freeres`, after every key destructor) frees the buffers
//! of `strerror`, `strsignal` and `dlerror`. Binding a heap there would bind
//! one that no destructor will ever release, and every block other threads
//! free into it would be stranded. So, once `GONE` is set:
//! - a free is posted at once, like a free from a thread without a heap
//!   (into the heap it gave up, that is a claim of an abandoned heap);
//! - an allocation claims the heap it gave up (or takes one as a new thread
//!   would), allocates from it and lets it go again at once ([`alloc_late`]).
//!
//! Heaps come from the registry (`registry`): adopted, reused or new.

use core::cell::Cell;
use core::ptr;

use crate::heap::{self, Heap, ABANDONED};
use crate::os;
use crate::registry::HEAPS;
use crate::stats::Stats;
use crate::sync::Ordering;

std::thread_local! {
    static HEAP: Cell<*mut Heap> = const { Cell::new(heap::EMPTY_HEAP.0.get()) };
    /// Non-null once homing's exit hook ran on this thread: the heap it
    /// gave up (see the module doc). Never reset.
    static GONE: Cell<*mut Heap> = const { Cell::new(ptr::null_mut()) };
}

/// The calling thread's heap (the empty heap if it has none yet).
#[inline(always)]
pub(crate) fn current() -> *mut Heap {
    // `with` cannot fail for a const thread-local without a destructor.
    HEAP.with(Cell::get)
}

/// Takes a heap for a new owner (see [`Registry::acquire`]).
pub(crate) fn acquire(is_thread_heap: bool) -> Option<*mut Heap> {
    HEAPS.acquire(is_thread_heap)
}

/// Every heap ever made.
fn registry() -> impl Iterator<Item = *mut Heap> {
    HEAPS.iter()
}

/// Gives the calling thread a real heap; null if there is no memory.
///
/// Never called on a thread that [`exited`]: the callers serve those
/// through [`alloc_late`] or post their frees at once.
#[cold]
#[inline(never)]
pub(crate) fn bind() -> *mut Heap {
    debug_assert!(!exited(), "homing: binding a heap to an exited thread");
    let Some(heap) = acquire(true) else {
        return ptr::null_mut();
    };
    HEAP.with(|h| h.set(heap));
    exit::watch(heap);
    #[cfg(not(miri))]
    crate::purge::background::ensure_started(background_sweep);
    heap
}

/// One round of the background purger (`HOMING_BACKGROUND_PURGE=1`): the
/// expired free pages of every heap are purged, busy or idle (a heap whose
/// owner holds its purge queue this instant waits for the next round), and
/// abandoned heaps are tidied under a short claim, and the cache of huge
/// mappings is swept. It allocates nothing.
#[cfg(not(miri))]
extern "C" fn background_sweep() {
    let now = crate::options::now_ms();
    for heap in registry() {
        // SAFETY: heaps are never unmapped; the purge queue is shared
        // under its own lock.
        unsafe { (*heap).purge.try_purge_expired(now) };
        if crate::remote::try_claim(heap) {
            // SAFETY: the claim makes us the owner until `let_go`; an
            // abandoned heap's outbox is empty.
            unsafe { crate::remote::let_go(heap) };
        }
    }
    // The cache of huge mappings: purge and unmap what waited long enough.
    crate::huge::cache::sweep();
}

/// `true` once homing's exit hook has run on the calling thread.
#[inline]
pub(crate) fn exited() -> bool {
    !GONE.with(Cell::get).is_null()
}

/// Serves an allocation of a thread past its exit hook (see the module
/// doc): claims the heap the thread gave up, or takes one as a new thread
/// would, runs `alloc` on it, and lets the heap go again. Null if `alloc`
/// fails or no heap can be had.
#[cold]
#[inline(never)]
pub(crate) fn alloc_late(alloc: impl FnOnce(*mut Heap) -> *mut u8) -> *mut u8 {
    let gone = GONE.with(Cell::get);
    debug_assert!(!gone.is_null());
    let heap = if crate::remote::try_claim(gone) {
        gone
    } else {
        match acquire(true) {
            Some(heap) => heap,
            None => return ptr::null_mut(),
        }
    };
    let p = alloc(heap);
    // SAFETY: we own `heap` (a claim, or taken by `acquire`) and it is
    // reachable from no thread-local; its outbox is empty (a late thread's
    // frees are posted at once, never batched).
    unsafe { crate::remote::let_go(heap) };
    p
}

/// The OS refused memory: gives back everything the process holds and
/// could use for something else, so that one more try may succeed (as with
/// glibc, freeing memory must make room for new allocations, of any size).
///
/// - `mine`, the calling thread's heap (if it has one): its pending remote
///   frees posted, its inbox drained, every empty page retired, all free
///   memory purged, spare segments released;
/// - every abandoned heap a short claim can take: the same;
/// - the cache of released segments: unmapped (purged segments still hold
///   address space and commit charge);
/// - the cache of released huge mappings: unmapped;
/// - what other layers registered with [`os::on_memory_pressure`] (the
///   regions' chunk pool).
///
/// Heaps of other live threads are theirs alone and are not touched.
///
/// # Safety
///
/// `mine` is the empty heap or a real heap the caller owns.
#[cold]
#[inline(never)]
pub(crate) unsafe fn release_held(mine: *mut Heap) {
    if mine != heap::empty_heap() {
        // SAFETY: the caller owns `mine`.
        unsafe {
            if (*mine).is_thread_heap {
                crate::remote::flush_outbox(mine);
            }
            Heap::collect(mine, true);
        }
    }
    for heap in registry() {
        if heap != mine && crate::remote::try_claim(heap) {
            // SAFETY: the claim makes us the owner until `let_go`; a
            // claimed heap's outbox is empty (its thread flushed it when it
            // exited).
            unsafe {
                Heap::collect(heap, true);
                crate::remote::let_go(heap);
            }
        }
    }
    crate::segment::cache::drain();
    crate::huge::cache::drain();
    os::relieve_pressure();
}

/// A snapshot of every heap's counters plus the global ones.
pub(crate) fn snapshot() -> Stats {
    let mut stats = Stats::default();
    for heap in registry() {
        // SAFETY: heaps are never unmapped; only the fields other threads
        // may read are borrowed (counters and state are atomics), never the
        // whole heap, which its owner is writing.
        let (counters, state) = unsafe {
            (
                &*ptr::addr_of!((*heap).counters),
                &*ptr::addr_of!((*heap).state),
            )
        };
        stats.add_heap(counters);
        // Relaxed: a statistic.
        if state.load(Ordering::Relaxed) == ABANDONED {
            stats.heaps_abandoned += 1;
        }
    }
    // Relaxed: a statistic.
    stats.heaps = HEAPS.created();
    stats.add_global(crate::segment::cache::cached_bytes());
    crate::huge::cache::add_stats(&mut stats);
    stats
}

#[cfg(not(miri))]
mod exit {
    //! The thread-exit key (`os::exit_key`) whose destructor abandons an
    //! exiting thread's heap.
    use super::*;

    unsafe extern "C" fn on_thread_exit(value: *mut core::ffi::c_void) {
        let heap = value.cast::<Heap>();
        HEAP.with(|h| {
            if h.get() == heap {
                h.set(heap::empty_heap());
            }
        });
        GONE.with(|g| g.set(heap));
        // SAFETY: `heap` was this thread's heap and no longer is.
        unsafe { crate::remote::abandon(heap) };
        // Threads that come and go also age the cache of huge mappings.
        crate::huge::cache::sweep();
    }

    /// Arranges for `heap` to be abandoned when the calling thread exits.
    pub(super) fn watch(heap: *mut Heap) {
        let _ = os::exit_key::watch(heap.cast(), on_thread_exit);
    }
}

#[cfg(miri)]
mod exit {
    //! Under Miri the same, through std's TLS destructor (Miri runs it at
    //! thread exit); Miri's own allocator is not homing, so the destructor's
    //! registration may allocate.
    use super::*;

    struct Watch(Cell<*mut Heap>);
    impl Drop for Watch {
        fn drop(&mut self) {
            let heap = self.0.get();
            if heap.is_null() {
                return;
            }
            HEAP.with(|h| h.set(heap::empty_heap()));
            GONE.with(|g| g.set(heap));
            // SAFETY: `heap` was this thread's heap and no longer is.
            unsafe { crate::remote::abandon(heap) };
        }
    }
    std::thread_local! {
        static WATCH: Watch = const { Watch(Cell::new(ptr::null_mut())) };
    }

    pub(super) fn watch(heap: *mut Heap) {
        let _ = WATCH.try_with(|w| w.0.set(heap));
    }
}
