//! Thread heaps: the thread-local, the registry of heaps, and thread exit.
//!
//! # The thread-local
//!
//! `HEAP` is a thread-local word with a constant initialiser and no
//! destructor (module `slot`: std's `thread_local!`, or, with feature
//! `initial-exec-tls` or `tls-descriptors`, a TLS symbol defined in
//! assembly and read in that TLS model), so
//! reading it is a thread-pointer-relative load, no call, and using it never
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

use core::ptr;

use crate::heap::{self, Heap, ABANDONED};
use crate::os;
use crate::registry::HEAPS;
use crate::stats::Stats;
use crate::sync::Ordering;

/// The two thread-local words: `HEAP`, the thread's heap (the empty heap
/// until it binds one), and `GONE`, non-null once homing's exit hook ran on
/// this thread: the heap it gave up (see the module doc; never reset).
///
/// Std's `thread_local!` (`const`, no destructor: one `fs:`-relative load
/// in an executable). In a shared library that is the general-dynamic
/// model, a call of `__tls_get_addr` per access, which is why the C
/// library turns on feature `initial-exec-tls` (or `tls-descriptors`).
#[cfg(not(all(
    any(feature = "initial-exec-tls", feature = "tls-descriptors"),
    target_arch = "x86_64",
    target_os = "linux",
    not(miri),
    not(loom)
)))]
mod slot {
    use super::*;
    use core::cell::Cell;

    std::thread_local! {
        static HEAP: Cell<*mut Heap> = const { Cell::new(heap::EMPTY_HEAP.0.get()) };
        static GONE: Cell<*mut Heap> = const { Cell::new(ptr::null_mut()) };
    }

    // `with` cannot fail for a const thread-local without a destructor.
    #[inline(always)]
    pub(super) fn heap() -> *mut Heap {
        HEAP.with(Cell::get)
    }
    #[inline(always)]
    pub(super) fn set_heap(heap: *mut Heap) {
        HEAP.with(|h| h.set(heap));
    }
    #[inline(always)]
    pub(super) fn gone() -> *mut Heap {
        GONE.with(Cell::get)
    }
    #[inline(always)]
    pub(super) fn set_gone(heap: *mut Heap) {
        GONE.with(|g| g.set(heap));
    }
}

/// The same two words as TLS symbols defined in assembly, in one of two TLS
/// models stable Rust cannot ask for (features `initial-exec-tls` and
/// `tls-descriptors`, x86-64 Linux; not under Miri or loom).
///
/// `HEAP` is in `.tdata`, initialised to the address of the empty heap (a
/// relocation the dynamic loader applies to the TLS image before any
/// thread's copy is made, also for the threads already running at a
/// `dlopen`); `GONE` is in `.tbss` (zero). The symbols are global but
/// hidden: visible to every object of the final link (the accessors are
/// inlined into other crates), exported by none.
///
/// - **Initial-exec** (`initial-exec-tls`): `mov reg, [rip + sym@GOTTPOFF]`
///   (the word's offset from the thread pointer, one GOT load) and one
///   `fs:`-relative access, no call. A shared library that does this is
///   marked `STATIC_TLS`: its TLS block must be in the static TLS area,
///   which holds every module loaded at start (linked or `LD_PRELOAD`) and,
///   for a later `dlopen`, the surplus glibc reserves; when that is used up
///   the `dlopen` fails (see the C library's README). In an executable the
///   linker turns the GOT load into an immediate.
/// - **TLS descriptors** (`tls-descriptors`, which wins when both are on):
///   `lea rax, [rip + sym@TLSDESC]; call [rax + sym@TLSCALL]` yields the
///   offset, then one `fs:`-relative access. The loader fills the
///   descriptor: for a block in static TLS (every module loaded at start,
///   and a `dlopen`ed one while the surplus lasts) the call is a two-
///   instruction function returning a constant; otherwise the block is
///   dynamic and the call finds (on a thread's first access, allocates)
///   it. Three instructions more per access than initial-exec, and it loads
///   anywhere. The resolver preserves every register but `rax` (the
///   TLSDESC convention), so only `rax` and the flags are clobbered; the
///   call needs the stack, so no `nostack`.
#[cfg(all(
    any(feature = "initial-exec-tls", feature = "tls-descriptors"),
    target_arch = "x86_64",
    target_os = "linux",
    not(miri),
    not(loom)
))]
mod slot {
    use super::*;
    use core::arch::{asm, global_asm};

    global_asm!(
        ".pushsection .tdata,\"awT\",@progbits",
        ".balign 8",
        ".globl homing_thread_heap_word",
        ".hidden homing_thread_heap_word",
        ".type homing_thread_heap_word,@object",
        ".size homing_thread_heap_word,8",
        "homing_thread_heap_word:",
        ".quad {empty}",
        ".popsection",
        ".pushsection .tbss,\"awT\",@nobits",
        ".balign 8",
        ".globl homing_thread_gone_word",
        ".hidden homing_thread_gone_word",
        ".type homing_thread_gone_word,@object",
        ".size homing_thread_gone_word,8",
        "homing_thread_gone_word:",
        ".zero 8",
        ".popsection",
        empty = sym heap::EMPTY_HEAP,
    );

    /// Reads the calling thread's copy of the TLS word `$sym`.
    macro_rules! read_word {
        ($sym:literal) => {{
            let value: *mut Heap;
            // SAFETY: reads the calling thread's copy of an 8-byte, 8-aligned
            // TLS word defined above (its thread-pointer offset from the GOT
            // or the descriptor, then an `fs:`-relative load). `pure,
            // readonly`: the result depends only on memory, which the
            // writers (not `readonly`) change.
            #[cfg(not(feature = "tls-descriptors"))]
            unsafe {
                asm!(
                    concat!("mov {v}, qword ptr [rip + ", $sym, "@GOTTPOFF]"),
                    "mov {v}, qword ptr fs:[{v}]",
                    v = out(reg) value,
                    options(nostack, preserves_flags, pure, readonly),
                );
            }
            // SAFETY: as above; the descriptor call clobbers `rax` only.
            #[cfg(feature = "tls-descriptors")]
            unsafe {
                asm!(
                    concat!("lea rax, [rip + ", $sym, "@TLSDESC]"),
                    concat!("call qword ptr [rax + ", $sym, "@TLSCALL]"),
                    "mov rax, qword ptr fs:[rax]",
                    out("rax") value,
                    options(pure, readonly),
                );
            }
            value
        }};
    }

    /// Writes `$value` to the calling thread's copy of the TLS word `$sym`.
    macro_rules! write_word {
        ($sym:literal, $value:expr) => {{
            let value: *mut Heap = $value;
            // SAFETY: writes the calling thread's copy of a TLS word above.
            #[cfg(not(feature = "tls-descriptors"))]
            unsafe {
                asm!(
                    concat!("mov {o}, qword ptr [rip + ", $sym, "@GOTTPOFF]"),
                    "mov qword ptr fs:[{o}], {v}",
                    o = out(reg) _,
                    v = in(reg) value,
                    options(nostack, preserves_flags),
                );
            }
            // SAFETY: as above; the descriptor call clobbers `rax` only.
            #[cfg(feature = "tls-descriptors")]
            unsafe {
                asm!(
                    concat!("lea rax, [rip + ", $sym, "@TLSDESC]"),
                    concat!("call qword ptr [rax + ", $sym, "@TLSCALL]"),
                    "mov qword ptr fs:[rax], {v}",
                    out("rax") _,
                    v = in(reg) value,
                );
            }
        }};
    }

    #[inline(always)]
    pub(super) fn heap() -> *mut Heap {
        read_word!("homing_thread_heap_word")
    }
    #[inline(always)]
    pub(super) fn set_heap(heap: *mut Heap) {
        write_word!("homing_thread_heap_word", heap);
    }
    #[inline(always)]
    pub(super) fn gone() -> *mut Heap {
        read_word!("homing_thread_gone_word")
    }
    #[inline(always)]
    pub(super) fn set_gone(heap: *mut Heap) {
        write_word!("homing_thread_gone_word", heap);
    }
}

/// The calling thread's heap (the empty heap if it has none yet).
#[inline(always)]
pub(crate) fn current() -> *mut Heap {
    slot::heap()
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
    bind_preferring(ptr::null_mut())
}

/// As [`bind`], adopting `prefer` if it is abandoned (see
/// [`Registry::acquire_preferring`]).
#[cold]
#[inline(never)]
pub(crate) fn bind_preferring(prefer: *mut Heap) -> *mut Heap {
    debug_assert!(!exited(), "homing: binding a heap to an exited thread");
    let Some(heap) = HEAPS.acquire_preferring(prefer, true) else {
        return ptr::null_mut();
    };
    slot::set_heap(heap);
    exit::watch(heap);
    #[cfg(not(miri))]
    crate::purge::background::ensure_started(background_sweep);
    heap
}

/// One round of the background purger (`HOMING_BACKGROUND_PURGE=1`): the
/// expired free pages of every heap are purged, busy or idle (a heap whose
/// owner holds its purge queue this instant waits for the next round), and
/// abandoned heaps are tidied under a short claim, the cache of huge
/// mappings is swept, and stranded outboxes are posted. It allocates
/// nothing.
#[cfg(not(miri))]
extern "C" fn background_sweep() {
    let now = crate::options::now_ms();
    crate::segment::cache::purge_expired(now);
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
    // Outboxes stranded by idle threads (see `remote`), on the same period
    // as the slow paths' scans.
    // SAFETY: the purger has no heap of its own.
    unsafe { crate::registry::scan_if_due(ptr::null_mut()) };
}

/// `true` once homing's exit hook has run on the calling thread.
#[inline]
pub(crate) fn exited() -> bool {
    !slot::gone().is_null()
}

/// Serves an allocation of a thread past its exit hook (see the module
/// doc): claims the heap the thread gave up, or takes one as a new thread
/// would, runs `alloc` on it, and lets the heap go again. Null if `alloc`
/// fails or no heap can be had.
#[cold]
#[inline(never)]
pub(crate) fn alloc_late(alloc: impl FnOnce(*mut Heap) -> *mut u8) -> *mut u8 {
    let gone = slot::gone();
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
        if slot::heap() == heap {
            slot::set_heap(heap::empty_heap());
        }
        slot::set_gone(heap);
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
    use core::cell::Cell;

    struct Watch(Cell<*mut Heap>);
    impl Drop for Watch {
        fn drop(&mut self) {
            let heap = self.0.get();
            if heap.is_null() {
                return;
            }
            slot::set_heap(heap::empty_heap());
            slot::set_gone(heap);
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
