//! The process allocator: [`Homing`] as `#[global_allocator]`, and the
//! malloc-style entry points the C ABI builds on.
//!
//! Fast paths (inlined): a small allocation pops the thread heap's direct
//! page; a free of a block owned by this thread's heap pushes it on its
//! page's local free list. Neither uses an atomic instruction or a lock.
//! Everything else goes through the `#[cold]` functions below.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;

use crate::heap::{self, Heap};
use crate::remote;
use crate::segment::{self, Kind};
use crate::size_class::{self, MEDIUM_MAX, MIN_ALIGN, SMALL_MAX};
use crate::thread;

/// homing as the process's allocator.
///
/// ```
/// #[global_allocator]
/// static GLOBAL: homing::Homing = homing::Homing;
///
/// let v: Vec<u32> = (0..1000).collect();
/// assert_eq!(v.iter().sum::<u32>(), 499_500);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Homing;

/// Allocates `size` bytes aligned to `align`. Null when out of memory, when
/// `align` is not a power of two, or when the size cannot be met.
///
/// Works whether or not [`Homing`] is the global allocator; free the block
/// with [`free`].
///
/// ```
/// let p = homing::alloc(100, 16);
/// assert!(!p.is_null());
/// assert_eq!(p as usize % 16, 0);
/// // SAFETY: `p` holds 100 bytes.
/// unsafe { p.write_bytes(7, 100) };
/// // SAFETY: a live block from homing, given up here.
/// unsafe { homing::free(p) };
///
/// assert!(homing::alloc(8, 3).is_null()); // not a power of two
/// ```
#[inline]
pub fn alloc(size: usize, align: usize) -> *mut u8 {
    alloc_reporting::<Quietly>(size, align)
}

/// What an allocation that fails does besides returning null: the C ABI
/// sets `errno` (see [`alloc_reporting`]). Called on the slow path only.
///
/// ```
/// /// Counts the failures of the allocations made through it.
/// struct Tally;
/// static FAILURES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// impl homing::OnFailure for Tally {
///     fn failed() {
///         FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///     }
/// }
/// assert!(homing::alloc_reporting::<Tally>(isize::MAX as usize, 16).is_null());
/// assert_eq!(FAILURES.load(std::sync::atomic::Ordering::Relaxed), 1);
/// ```
pub trait OnFailure {
    /// Called once, just before a failed allocation returns null.
    fn failed();
}

/// Nothing besides the null: [`alloc`]'s choice.
///
/// ```
/// // The same as `homing::alloc(64, 8)`.
/// let p = homing::alloc_reporting::<homing::Quietly>(64, 8);
/// assert!(!p.is_null());
/// // SAFETY: a live block from homing, given up here.
/// unsafe { homing::free(p) };
/// assert!(homing::alloc_reporting::<homing::Quietly>(64, 3).is_null());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Quietly;

impl OnFailure for Quietly {
    #[inline(always)]
    fn failed() {}
}

/// As [`alloc`], calling `F::failed()` before a null is returned (an
/// `align` that is not a power of two included).
///
/// The call sits in the slow paths, which end the allocation: the fast
/// path stays the same few instructions and reaches the slow path by a
/// tail jump, where a test of the result after the call would cost a test
/// and a stack frame. The C ABI's `malloc` is this with `errno = ENOMEM`.
///
/// ```
/// struct Count;
/// static FAILED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// impl homing::OnFailure for Count {
///     fn failed() {
///         FAILED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///     }
/// }
/// assert!(homing::alloc_reporting::<Count>(usize::MAX, 8).is_null());
/// assert!(homing::alloc_reporting::<Count>(8, 3).is_null());
/// assert_eq!(FAILED.load(std::sync::atomic::Ordering::Relaxed), 2);
/// let p = homing::alloc_reporting::<Count>(100, 8);
/// assert!(!p.is_null());
/// // SAFETY: a live block from homing, given up here.
/// unsafe { homing::free(p) };
/// ```
#[inline(always)]
pub fn alloc_reporting<F: OnFailure>(size: usize, align: usize) -> *mut u8 {
    if !align.is_power_of_two() {
        F::failed();
        return ptr::null_mut();
    }
    alloc_pow2::<F>(size, align)
}

/// [`alloc`] for an `align` known to be a power of two (as in a `Layout`).
#[inline(always)]
fn alloc_pow2<F: OnFailure>(size: usize, align: usize) -> *mut u8 {
    let heap = thread::current();
    if size <= SMALL_MAX && align <= MIN_ALIGN {
        let slot = size_class::slot_of(size);
        // SAFETY: the thread's heap (or the empty heap) is ours.
        let block = unsafe { Heap::pop_by_size(heap, slot) };
        if !block.is_null() {
            return checked_out(block);
        }
        return checked_out(alloc_class_slow::<F>(heap, size_class::class_of_slot(slot)));
    }
    checked_out(alloc_in_class::<F>(heap, size, align))
}

/// A block of a class that is not a small one at the default alignment: a
/// medium block (above `SMALL_MAX`, up to `MEDIUM_MAX`), or one aligned
/// above 16 bytes (`aligned_alloc`, or a Rust type such as a cache-padded
/// one). The small path's pop with the class computed instead of looked up,
/// out of line. Through `alloc_general` such a block paid 40–60
/// instructions more: two calls with their frames and checks.
/// Larger requests go on to `alloc_general`.
///
/// `#[cold]`, though medium blocks are common: it weights the small path's
/// test so that LLVM keeps it as two compares and branches (without it, it
/// combined them with `setb`s and cost the Rust pair 4 instructions).
#[cold]
#[inline(never)]
extern "C" fn alloc_in_class<F: OnFailure>(heap: *mut Heap, size: usize, align: usize) -> *mut u8 {
    if size > MEDIUM_MAX {
        return alloc_general::<F>(heap, size, align);
    }
    let class = if align <= MIN_ALIGN {
        // Not small (the caller's test), so medium.
        size_class::class_of_medium(size)
    } else {
        match size_class::class_for(size, align) {
            Some(class) => class,
            // An alignment no class gives: a huge block.
            None => return alloc_general::<F>(heap, size, align),
        }
    };
    // SAFETY: the thread's heap (or the empty heap) is ours.
    let block = unsafe { Heap::pop_direct(heap, class) };
    if !block.is_null() {
        return block;
    }
    // A class of few blocks a page (medium ones are carved one or two at a
    // time) often finds `free` empty and its frees in `local_free`: swap
    // them in here rather than through the slow path's calls.
    // SAFETY: as above; the direct page's `free` is empty.
    let block = unsafe { Heap::swap_local(heap, class) };
    if !block.is_null() {
        return block;
    }
    alloc_class_slow::<F>(heap, class)
}

/// `p`, after calling `F::failed()` if it is null.
#[inline(always)]
fn reported<F: OnFailure>(p: *mut u8) -> *mut u8 {
    if p.is_null() {
        F::failed();
    }
    p
}

/// In checked mode, clears the double-free mark of a block handed out.
#[inline(always)]
fn checked_out(p: *mut u8) -> *mut u8 {
    #[cfg(feature = "checked")]
    if !p.is_null() {
        // SAFETY: a fresh block of at least 16 bytes, ours.
        unsafe { crate::checked::clear_mark(p) };
    }
    p
}

/// The small-allocation slow path: bind a heap if the thread has none.
///
/// The slow paths are `extern "C"`: such a function never unwinds (a panic
/// in it aborts, and they do not panic), so a caller that must not unwind
/// either (the C ABI's `malloc` and `free`) needs no landing pad around the
/// call and can make it a tail jump.
#[cold]
#[inline(never)]
extern "C" fn alloc_class_slow<F: OnFailure>(heap: *mut Heap, class: usize) -> *mut u8 {
    reported::<F>(alloc_class_slow_inner(heap, class))
}

fn alloc_class_slow_inner(mut heap: *mut Heap, class: usize) -> *mut u8 {
    if heap == heap::empty_heap() {
        if thread::exited() {
            // SAFETY: `alloc_late` hands us a real heap it owns.
            return thread::alloc_late(|h| unsafe { Heap::alloc_class(h, class) });
        }
        heap = bind_or_release();
        if heap.is_null() {
            return ptr::null_mut();
        }
    }
    // SAFETY: a real heap bound to this thread. (A freshly bound heap's
    // direct page is the empty page, whose lists are empty: `alloc_refill`
    // handles it.)
    let p = unsafe { Heap::alloc_refill(heap, class) };
    if p.is_null() {
        // SAFETY: as above.
        return retry_after_release(heap, || unsafe { Heap::alloc_class(heap, class) });
    }
    p
}

/// Binds a heap to the calling thread; if the OS has no memory even for
/// that, gives back what the process holds and tries once more. Null if
/// that fails too.
fn bind_or_release() -> *mut Heap {
    let heap = thread::bind();
    if !heap.is_null() {
        return heap;
    }
    retry_after_release(heap::empty_heap(), thread::bind)
}

/// The OS refused memory: give back what the process holds
/// ([`thread::release_held`]) and try once more; null if that fails too.
/// Only reached when an allocation already failed, so it costs nothing
/// otherwise.
#[cold]
#[inline(never)]
fn retry_after_release<T>(heap: *mut Heap, again: impl FnOnce() -> *mut T) -> *mut T {
    // SAFETY: `heap` is the calling thread's heap (or the empty heap).
    unsafe { thread::release_held(heap) };
    again()
}

/// Larger or more aligned requests (`extern "C"`: see [`alloc_class_slow`]).
#[cold]
#[inline(never)]
extern "C" fn alloc_general<F: OnFailure>(heap: *mut Heap, size: usize, align: usize) -> *mut u8 {
    reported::<F>(alloc_general_inner(heap, size, align))
}

fn alloc_general_inner(mut heap: *mut Heap, size: usize, align: usize) -> *mut u8 {
    if size > isize::MAX as usize - (align - 1) {
        return ptr::null_mut();
    }
    if heap == heap::empty_heap() {
        if thread::exited() {
            // SAFETY: `alloc_late` hands us a real heap it owns.
            return thread::alloc_late(|h| unsafe { Heap::alloc_sized(h, size, align) });
        }
        heap = bind_or_release();
        if heap.is_null() {
            return ptr::null_mut();
        }
    }
    // SAFETY: a real heap bound to this thread.
    let p = unsafe { Heap::alloc_sized(heap, size, align) };
    if p.is_null() {
        // SAFETY: as above.
        return retry_after_release(heap, || unsafe { Heap::alloc_sized(heap, size, align) });
    }
    p
}

/// Frees a block from [`alloc`]. Null does nothing.
///
/// Any thread may free any block: a block of another thread's heap is sent
/// home to that heap (in batches) instead of being touched here.
///
/// ```
/// let p = homing::alloc(64, 8) as usize;
/// // Freed on another thread: posted back to this thread's heap.
/// std::thread::spawn(move || {
///     // SAFETY: a live block from homing, given up here.
///     unsafe { homing::free(p as *mut u8) }
/// })
/// .join()
/// .unwrap();
/// // SAFETY: null is allowed and does nothing.
/// unsafe { homing::free(std::ptr::null_mut()) };
/// ```
///
/// # Safety
///
/// `p` is null or a live block from this allocator that the caller gives up.
#[inline(always)]
pub unsafe fn free(p: *mut u8) {
    #[cfg(feature = "checked")]
    if !p.is_null() {
        // SAFETY: non-null; the check validates the rest.
        unsafe { crate::checked::check_free(p) };
    }
    let heap = thread::current();
    // SAFETY: `p` is null or a live block of ours; if its segment's header
    // names our heap, the page is ours.
    unsafe {
        let seg = Heap::segment_if_owned(heap, p);
        if !seg.is_null() {
            return Heap::free_local(heap, seg, p);
        }
        free_slow(p)
    }
}

/// Frees that are not local: null, huge blocks, other heaps' blocks
/// (`extern "C"`: see [`alloc_class_slow`]).
#[cold]
#[inline(never)]
unsafe extern "C" fn free_slow(p: *mut u8) {
    if p.is_null() {
        return;
    }
    // SAFETY: `p` is a live block of ours (caller contract).
    unsafe {
        let seg = segment::segment_of(p);
        let p = segment::block_ptr(seg, p);
        let owner = (*seg).heap.cast::<Heap>();
        let mut mine = thread::current();
        if (*seg).kind == Kind::Huge && owner.is_null() {
            return Heap::free_huge(seg);
        }
        if owner == mine {
            return Heap::free_owned(mine, p);
        }
        if mine == heap::empty_heap() && !thread::exited() {
            // A thread that frees before it ever allocated (a consumer) gets
            // a heap too, for its outbox: otherwise every one of its frees
            // would be posted alone. If even that fails, or the thread is
            // past its exit hook (it must never own a heap again),
            // `free_remote` posts the block alone.
            let bound = thread::bind_preferring(owner);
            if !bound.is_null() {
                mine = bound;
                if owner == mine {
                    // The binding adopted the block's own (abandoned) heap.
                    return Heap::free_owned(mine, p);
                }
            }
        }
        remote::free_remote(mine, owner, p);
    }
}

/// Bytes usable in the block that starts at `p` (at least what was asked).
///
/// ```
/// let p = homing::alloc(100, 8);
/// // SAFETY: `p` is a live block from homing.
/// let usable = unsafe { homing::usable_size(p) };
/// assert!(usable >= 100);
/// // SAFETY: all `usable` bytes are the caller's.
/// unsafe { p.write_bytes(0, usable) };
/// // SAFETY: a live block from homing, given up here.
/// unsafe { homing::free(p) };
/// ```
///
/// # Safety
///
/// `p` is a live block from this allocator.
pub unsafe fn usable_size(p: *mut u8) -> usize {
    // SAFETY: forwarded.
    unsafe { usable_size_for(p, "usable_size") }
}

/// [`usable_size`] on behalf of `call`: the checked build names `call` when
/// it reports a bad pointer (the C ABI passes `"realloc"` and
/// `"malloc_usable_size"`). Not a stable API.
///
/// # Safety
///
/// As for [`usable_size`].
#[doc(hidden)]
pub unsafe fn usable_size_for(p: *mut u8, call: &'static str) -> usize {
    #[cfg(feature = "checked")]
    // SAFETY: the check validates `p` before anything reads its header.
    unsafe {
        crate::checked::check_live(p, call)
    };
    #[cfg(not(feature = "checked"))]
    let _ = call;
    // SAFETY: forwarded.
    unsafe { heap::usable_size(p) }
}

/// Resizes: in place when the block's class still fits (and is not more
/// than twice too big), otherwise allocate, copy, free. Null on failure,
/// leaving `p` untouched.
///
/// ```
/// let p = homing::alloc(16, 8);
/// // SAFETY: `p` holds 16 bytes.
/// unsafe { p.write_bytes(0xab, 16) };
/// // SAFETY: `p` is a live 16-byte block aligned to 8.
/// let q = unsafe { homing::realloc(p, 16, 8, 4096) };
/// assert!(!q.is_null());
/// // The first 16 bytes moved with the block.
/// // SAFETY: `q` holds at least 4096 bytes, the first 16 written above.
/// assert!(unsafe { std::slice::from_raw_parts(q, 16) }.iter().all(|&b| b == 0xab));
/// // SAFETY: a live block from homing, given up here (`p` is gone).
/// unsafe { homing::free(q) };
/// ```
///
/// # Safety
///
/// `p` is a live block of at least `old_size` bytes from this allocator,
/// aligned to `align`.
pub unsafe fn realloc(p: *mut u8, old_size: usize, align: usize, new_size: usize) -> *mut u8 {
    if !align.is_power_of_two() {
        return ptr::null_mut();
    }
    // SAFETY: forwarded; the checked build validates `p` first.
    let usable = unsafe { usable_size_for(p, "realloc") };
    // SAFETY: forwarded; `usable` is `p`'s.
    unsafe { realloc_usable(p, usable, old_size.min(usable), align, new_size) }
}

/// [`realloc`] for a caller that already knows `usable`, `p`'s
/// [`usable_size`] (the C ABI's `realloc` asks for it first): the block's
/// header is not looked up twice. Not a stable API.
///
/// # Safety
///
/// As for [`realloc`]; `usable` is `usable_size(p)`, `old_size <= usable`,
/// and `align` is a power of two.
#[doc(hidden)]
pub unsafe fn realloc_usable(
    p: *mut u8,
    usable: usize,
    old_size: usize,
    align: usize,
    new_size: usize,
) -> *mut u8 {
    debug_assert!(align.is_power_of_two() && old_size <= usable);
    if new_size <= usable && new_size >= usable / 2 {
        return p;
    }
    let mut request = new_size;
    if new_size > usable && size_class::class_for(new_size, align).is_none() {
        // A huge block growing: extend its mapping where it lies, if the
        // address range after it is free...
        // SAFETY: `p` is live.
        if unsafe { Heap::grow_huge_in_place(p, new_size) } {
            return p;
        }
        // ... else move it with room to grow by half again, so a buffer
        // grown in small steps is copied O(log n) times, not O(n). The
        // headroom is address space: only what is written becomes RSS.
        request = new_size.max(usable.saturating_add(usable / 2));
        if request > isize::MAX as usize - (align - 1) {
            request = new_size;
        }
    }
    let q = alloc_pow2::<Quietly>(request, align);
    if !q.is_null() {
        // SAFETY: both blocks are live and distinct; we copy what both hold.
        unsafe {
            ptr::copy_nonoverlapping(p, q, old_size.min(new_size));
            free(p);
        }
    }
    q
}

/// Allocates zeroed memory. Huge blocks are written only where they may
/// hold old data (nowhere, if fresh from the OS; see `huge`).
///
/// ```
/// let p = homing::alloc_zeroed(1000, 8);
/// // SAFETY: `p` holds 1000 bytes, all zero.
/// assert!(unsafe { std::slice::from_raw_parts(p, 1000) }.iter().all(|&b| b == 0));
/// // SAFETY: a live block from homing, given up here.
/// unsafe { homing::free(p) };
/// ```
pub fn alloc_zeroed(size: usize, align: usize) -> *mut u8 {
    if !align.is_power_of_two() {
        return ptr::null_mut();
    }
    let p = alloc_pow2::<Quietly>(size, align);
    if !p.is_null() {
        if size_class::class_for(size, align).is_some() {
            // SAFETY: `p` holds at least `size` bytes.
            unsafe { p.write_bytes(0, size) };
        } else {
            // SAFETY: a huge block just allocated, of at least `size` bytes.
            unsafe { Heap::zero_huge(p, size) };
        }
    }
    p
}

// SAFETY: every method meets the GlobalAlloc contract: blocks are at least
// `layout.size()` bytes at `layout.align()`, failures return null without
// unwinding, and a block is reused only after its `dealloc`.
unsafe impl GlobalAlloc for Homing {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        alloc_pow2::<Quietly>(layout.size(), layout.align())
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, _layout: Layout) {
        // SAFETY: GlobalAlloc's contract: `p` is a live block of ours.
        unsafe { free(p) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        alloc_zeroed(layout.size(), layout.align())
    }

    #[inline]
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc's contract.
        unsafe { realloc(p, layout.size(), layout.align(), new_size) }
    }
}

/// Gives back what the calling thread's heap does not need right now: posts
/// its outbox, drains its inbox, returns empty pages, purges free memory
/// and, in the pages still in use, the OS pages that hold only free blocks.
/// A VM calls it at safe points; it is never needed for correctness.
///
/// ```
/// let blocks: Vec<usize> = (0..1000).map(|_| homing::alloc(256, 8) as usize).collect();
/// for p in blocks {
///     // SAFETY: live blocks from homing, given up here.
///     unsafe { homing::free(p as *mut u8) };
/// }
/// homing::collect(); // the now empty pages go back (and are purged later)
/// ```
pub fn collect() {
    let heap = thread::current();
    if heap == heap::empty_heap() {
        return;
    }
    // SAFETY: the thread's own, real heap.
    unsafe {
        remote::flush_outbox(heap);
        Heap::collect_and_trim(heap, false);
        debug_assert!(Heap::check(heap), "homing: heap invariant broken");
    }
    crate::huge::cache::sweep();
}

/// A snapshot of the process-wide statistics (all zeros in the counters
/// kept per heap when the `stats` feature is off).
///
/// ```
/// let p = homing::alloc(1 << 20, 8);
/// let s = homing::stats();
/// assert!(s.os_mapped >= 1 << 20); // counted with or without `stats`
/// println!("{s}"); // the table shown on [`Stats`]
/// // SAFETY: a live block from homing, given up here.
/// unsafe { homing::free(p) };
/// ```
pub fn stats() -> crate::Stats {
    thread::snapshot()
}

/// Prints [`stats`] to standard error (what `libhoming.so` prints at exit
/// under `HOMING_SHOW_STATS=1`).
///
/// ```
/// homing::print_stats();
/// ```
pub fn print_stats() {
    std::eprintln!("{}", stats());
}
