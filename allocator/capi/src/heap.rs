//! First-class heaps for C: `homing_heap_t` and `homing_heap_*`.
//!
//! A `homing_heap_t *` is a block of the creating thread's heap holding one
//! [`allocator::Heap`]. The heap is held by one thread at a time (its
//! **holder**, at first the thread that created it): only the holder
//! allocates from it, calls `homing_heap_free`/`homing_heap_collect`/
//! `homing_heap_set_limit` on it and destroys it. The holder hands it to
//! another thread with `homing_heap_release`, and that thread takes it with
//! `homing_heap_acquire` (a release/acquire pair on the heap's hand-off
//! word, so the new holder sees every write of the old one even if the two
//! threads synchronise no other way). Any thread may free one of its blocks
//! with `homing_free` (or `free`) at any moment, also between a release and
//! an acquire: the block is posted to the heap's inbox at once, and the
//! holder takes it back at its next allocation slow path or
//! `homing_heap_collect`.
//!
//! The checked build (feature `checked`) verifies the holder on every call
//! and aborts with a message naming the call: a heap used by a thread that
//! does not hold it, or acquired while another thread holds it (two threads
//! using one heap at once).
//!
//! `homing_heap_destroy` releases every block the heap still holds at once
//! (no per-block work): a VM thread's whole heap goes away in O(pages).
//! Frees from other threads must have returned before it is called.
//!
//! Failures set `errno` as the malloc family does (`ENOMEM`, `EINVAL`).

use core::alloc::Layout;
use core::ffi::c_void;
use core::mem::{align_of, size_of};
use core::ptr::{self, NonNull};

use core::ffi::c_int;

use crate::errno::{self, EINVAL, ENOMEM};
use crate::family::{huge_growth, MALLOC_ALIGN};
use libc::EPERM;

/// The C handle of a first-class heap (`homing_heap_t` in `homing.h`).
/// Opaque to C; owner-thread only.
pub struct HomingHeap {
    heap: allocator::Heap,
}

/// Checked build: aborts with a clear message unless the calling thread
/// holds `heap`. `call` names the C function.
#[cfg(feature = "checked")]
fn check_holder(heap: &HomingHeap, call: &str) {
    if let Err(holder) = heap.heap.hold_check() {
        let what = match holder {
            allocator::Holder::Nobody => {
                "of a heap the calling thread does not hold (it was released and not acquired: call homing_heap_acquire first)"
            }
            allocator::Holder::Other => {
                "of a heap the calling thread does not hold (another thread holds it: two threads using one heap at once)"
            }
        };
        misuse(call, what, heap as *const HomingHeap as usize);
    }
}

#[cfg(not(feature = "checked"))]
#[inline(always)]
fn check_holder(_heap: &HomingHeap, _call: &str) {}

/// Writes "homing: <call> <what> (heap 0x...)" to standard error and aborts
/// (checked build). Allocates nothing.
#[cfg(feature = "checked")]
#[cold]
fn misuse(call: &str, what: &str, heap: usize) -> ! {
    allocator::os::fatal(&[call, " ", what], "heap", heap)
}

/// Creates a heap owned by the calling thread; null with `errno = ENOMEM`
/// if there is no memory for it.
///
/// ```c
/// homing_heap_t *heap = homing_heap_new();
/// ```
#[no_mangle]
pub extern "C" fn homing_heap_new() -> *mut HomingHeap {
    let Some(heap) = allocator::Heap::try_new() else {
        errno::set(ENOMEM);
        return ptr::null_mut();
    };
    let handle =
        allocator::alloc(size_of::<HomingHeap>(), align_of::<HomingHeap>()).cast::<HomingHeap>();
    if handle.is_null() {
        errno::set(ENOMEM);
        return ptr::null_mut();
    }
    // SAFETY: a fresh block sized and aligned for a `HomingHeap`.
    unsafe { handle.write(HomingHeap { heap }) };
    handle
}

/// The layout for `size` bytes at `alignment`, or null's `errno`.
fn layout(size: usize, alignment: usize) -> Option<Layout> {
    if !alignment.is_power_of_two() {
        errno::set(EINVAL);
        return None;
    }
    let layout = Layout::from_size_align(size, alignment.max(MALLOC_ALIGN)).ok();
    if layout.is_none() {
        errno::set(ENOMEM);
    }
    layout
}

/// Allocates from `heap` with the given layout, setting `errno` on failure.
fn heap_alloc(heap: &HomingHeap, layout: Layout, zeroed: bool, call: &str) -> *mut c_void {
    check_holder(heap, call);
    let p = if zeroed {
        heap.heap.alloc_zeroed(layout)
    } else {
        heap.heap.alloc(layout)
    };
    match p {
        Some(p) => p.as_ptr().cast(),
        None => {
            errno::set(ENOMEM);
            ptr::null_mut()
        }
    }
}

/// Allocates `size` bytes (16-byte aligned) from `heap`; null with
/// `errno = ENOMEM` on failure.
///
/// # Safety
///
/// `heap` is a live handle from [`homing_heap_new`], and the calling thread
/// is its owner.
///
/// ```c
/// struct object *o = homing_heap_malloc(heap, sizeof *o);
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_heap_malloc(heap: *mut HomingHeap, size: usize) -> *mut c_void {
    let Some(layout) = layout(size, MALLOC_ALIGN) else {
        return ptr::null_mut();
    };
    // SAFETY: a live handle, used by its owner (caller contract).
    heap_alloc(unsafe { &*heap }, layout, false, "homing_heap_malloc")
}

/// Allocates `count * size` zeroed bytes from `heap`; null with
/// `errno = ENOMEM` on overflow or failure.
///
/// # Safety
///
/// As for [`homing_heap_malloc`].
///
/// ```c
/// uint64_t *slots = homing_heap_calloc(heap, 64, sizeof *slots);
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_heap_calloc(
    heap: *mut HomingHeap,
    count: usize,
    size: usize,
) -> *mut c_void {
    let Some(total) = count.checked_mul(size) else {
        errno::set(ENOMEM);
        return ptr::null_mut();
    };
    let Some(layout) = layout(total, MALLOC_ALIGN) else {
        return ptr::null_mut();
    };
    // SAFETY: a live handle, used by its owner (caller contract).
    heap_alloc(unsafe { &*heap }, layout, true, "homing_heap_calloc")
}

/// Allocates `size` bytes aligned to `alignment` (a power of two) from
/// `heap`; null with `errno = EINVAL` for a bad alignment, `ENOMEM` on
/// failure.
///
/// # Safety
///
/// As for [`homing_heap_malloc`].
///
/// ```c
/// void *line = homing_heap_aligned_alloc(heap, 64, 64);
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_heap_aligned_alloc(
    heap: *mut HomingHeap,
    alignment: usize,
    size: usize,
) -> *mut c_void {
    let Some(layout) = layout(size, alignment) else {
        return ptr::null_mut();
    };
    // SAFETY: a live handle, used by its owner (caller contract).
    heap_alloc(
        unsafe { &*heap },
        layout,
        false,
        "homing_heap_aligned_alloc",
    )
}

/// Resizes `p` (a block of any homing heap, or null) into a block of `heap`,
/// keeping the prefix; the same policies as `homing_realloc` (null `p`:
/// allocate; size 0: free and return null; failure: null with
/// `errno = ENOMEM`, `p` untouched).
///
/// # Safety
///
/// As for [`homing_heap_malloc`], and `p` is null or a live homing block.
///
/// ```c
/// vec = homing_heap_realloc(heap, vec, 2 * cap * sizeof *vec);
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_heap_realloc(
    heap: *mut HomingHeap,
    p: *mut c_void,
    size: usize,
) -> *mut c_void {
    // SAFETY: the caller's contract covers every call below.
    unsafe {
        check_holder(&*heap, "homing_heap_realloc");
        if p.is_null() {
            return homing_heap_malloc(heap, size);
        }
        if size == 0 {
            homing_heap_free(heap, p);
            return ptr::null_mut();
        }
        let usable = allocator::usable_size_for(p.cast(), "homing_heap_realloc");
        if size <= usable && size >= usable / 2 {
            return p;
        }
        // Huge blocks grow geometrically, as in `homing_realloc`.
        let mut q = ptr::null_mut();
        if let Some(roomy) = huge_growth(usable, size) {
            q = errno::preserve(|| homing_heap_malloc(heap, roomy));
        }
        if q.is_null() {
            q = homing_heap_malloc(heap, size);
        }
        if !q.is_null() {
            ptr::copy_nonoverlapping(p.cast::<u8>(), q.cast::<u8>(), usable.min(size));
            homing_heap_free(heap, p);
        }
        q
    }
}

/// Frees `p` on the owner thread of `heap`: a block of `heap` goes back
/// with no atomic operation; any other homing block is passed to
/// `homing_free`. Null does nothing; `errno` is not changed. (On any other
/// thread, use `homing_free`.)
///
/// # Safety
///
/// `heap` is a live handle and the calling thread its owner; `p` is null or
/// a live homing block that nothing uses afterwards.
///
/// ```c
/// homing_heap_free(heap, o);
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_heap_free(heap: *mut HomingHeap, p: *mut c_void) {
    let Some(p) = NonNull::new(p.cast::<u8>()) else {
        return;
    };
    // SAFETY: the caller's contract. (`errno` is left as it was: homing's
    // OS layer gives it back around its own system calls, the only place
    // a free can change it, as in `free`.)
    unsafe {
        check_holder(&*heap, "homing_heap_free");
        (*heap).heap.dealloc(p)
    }
}

/// Takes back the blocks other threads freed into `heap`, returns its empty
/// pages and purges free memory, also the OS pages of pages in use that
/// only free blocks touch. Call it at safe points.
///
/// # Safety
///
/// `heap` is a live handle and the calling thread its owner.
///
/// ```c
/// homing_heap_collect(heap);
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_heap_collect(heap: *mut HomingHeap) {
    // SAFETY: the caller's contract.
    errno::preserve(|| unsafe {
        check_holder(&*heap, "homing_heap_collect");
        (*heap).heap.collect()
    });
}

/// The calling thread, which holds `heap`, lets it go so that another
/// thread can `homing_heap_acquire` it (e.g. at the end of a job, before
/// the VM state goes back to the scheduler). The heap first gives back what
/// it does not use, as `homing_heap_collect` does (empty pages, and the OS
/// pages of pages in use that only free blocks touch): an idle heap keeps
/// resident little more than its live blocks. Returns 0, or `EPERM` if the
/// calling thread does not hold the heap (nothing changes; the checked
/// build aborts with a message instead).
///
/// # Safety
///
/// `heap` is a live handle.
///
/// ```c
/// homing_heap_release(state->heap); /* then hand the state over */
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_heap_release(heap: *mut HomingHeap) -> c_int {
    // SAFETY: a live handle (caller contract); the hand-off word is atomic.
    match unsafe { (*heap).heap.hold_release() } {
        Ok(()) => 0,
        Err(_holder) => {
            #[cfg(feature = "checked")]
            // SAFETY: as above.
            check_holder(unsafe { &*heap }, "homing_heap_release");
            EPERM
        }
    }
}

/// The calling thread takes `heap`, released by its previous holder, and
/// sees every write that holder made. Returns 0 (also if the calling thread
/// holds it already), or `EBUSY` if another thread holds it (nothing
/// changes; the checked build aborts with a message instead).
///
/// # Safety
///
/// `heap` is a live handle.
///
/// ```c
/// homing_heap_acquire(state->heap); /* a worker picked the state up */
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_heap_acquire(heap: *mut HomingHeap) -> c_int {
    // SAFETY: a live handle (caller contract); the hand-off word is atomic.
    match unsafe { (*heap).heap.hold_acquire() } {
        Ok(()) => 0,
        Err(_) => {
            #[cfg(feature = "checked")]
            misuse(
                "homing_heap_acquire",
                "of a heap another thread holds (two threads using one heap at once: the holder must call homing_heap_release first)",
                heap as usize,
            );
            #[cfg(not(feature = "checked"))]
            libc::EBUSY
        }
    }
}

/// One heap's numbers, as `homing_heap_stats_t` in `homing.h` (see
/// `allocator::HeapStats` for each meaning).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HomingHeapStats {
    /// Blocks handed out and not yet taken back.
    pub live_blocks: usize,
    /// Bytes of those blocks (class sizes).
    pub live_bytes: usize,
    /// The highest `live_bytes` seen (sampled on the slow path).
    pub peak_live_bytes: usize,
    /// Bytes of pages and huge blocks in use (what the limit counts).
    pub in_use_bytes: usize,
    /// Bytes held from the OS (segments and huge mappings).
    pub os_bytes: usize,
    /// Blocks other threads freed into the heap, taken back.
    pub remote_frees: usize,
    /// The limit (`HOMING_HEAP_NO_LIMIT`: none).
    pub limit: usize,
    /// Allocations the limit refused.
    pub limit_refusals: usize,
}

/// Writes `heap`'s numbers to `*out`: a few loads, no walk of pages (cheap
/// at every GC safe point). Holder only.
///
/// # Safety
///
/// `heap` is a live handle held by the calling thread; `out` is valid for
/// writing one `homing_heap_stats_t`.
///
/// ```c
/// homing_heap_stats_t s;
/// homing_heap_stats(heap, &s);
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_heap_stats(heap: *mut HomingHeap, out: *mut HomingHeapStats) {
    // SAFETY: the caller's contract.
    unsafe {
        check_holder(&*heap, "homing_heap_stats");
        let s = (*heap).heap.stats();
        out.write(HomingHeapStats {
            live_blocks: s.live_blocks,
            live_bytes: s.live_bytes,
            peak_live_bytes: s.peak_live_bytes,
            in_use_bytes: s.in_use_bytes,
            os_bytes: s.os_bytes,
            remote_frees: s.remote_frees,
            limit: s.limit.unwrap_or(usize::MAX),
            limit_refusals: s.limit_refusals,
        });
    }
}

/// Caps the bytes of pages and huge blocks `heap` has in use at `limit`
/// (`HOMING_HEAP_NO_LIMIT`, that is `SIZE_MAX`: no limit). An allocation
/// that would go over it returns NULL with `errno = ENOMEM` and the heap
/// stays usable. Counted in whole pages (64 KiB small, 512 KiB medium,
/// huge blocks by size), checked when the heap takes a fresh page. Holder
/// only.
///
/// # Safety
///
/// `heap` is a live handle held by the calling thread.
///
/// ```c
/// homing_heap_set_limit(heap, 128u << 20); /* like PHP's memory_limit */
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_heap_set_limit(heap: *mut HomingHeap, limit: usize) {
    // SAFETY: the caller's contract.
    unsafe {
        check_holder(&*heap, "homing_heap_set_limit");
        (*heap)
            .heap
            .set_limit((limit != usize::MAX).then_some(limit));
    }
}

/// Destroys `heap`: every block it still holds is released at once, and
/// the handle is freed. Null does nothing.
///
/// # Safety
///
/// `heap` is null or a live handle and the calling thread its owner;
/// nothing uses the heap's blocks afterwards, and no other thread is still
/// freeing one of them.
///
/// ```c
/// homing_heap_destroy(heap);
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_heap_destroy(heap: *mut HomingHeap) {
    if heap.is_null() {
        return;
    }
    // SAFETY: a live handle (caller contract).
    check_holder(unsafe { &*heap }, "homing_heap_destroy");
    errno::preserve(|| {
        // SAFETY: a live handle (caller contract); we move the heap out and
        // destroy it, then free the handle's block, which no one uses now.
        unsafe {
            let HomingHeap { heap: inner } = heap.read();
            inner.destroy();
            allocator::free(heap.cast());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_lifecycle_with_a_remote_free() {
        let heap = homing_heap_new();
        assert!(!heap.is_null());
        // SAFETY: the handle is live and this thread owns it; blocks are
        // freed once.
        unsafe {
            let mut blocks: [*mut c_void; 64] = [ptr::null_mut(); 64];
            for (i, b) in blocks.iter_mut().enumerate() {
                *b = homing_heap_malloc(heap, 8 + i * 100);
                assert!(!b.is_null());
                assert_eq!(*b as usize % MALLOC_ALIGN, 0);
            }
            let z = homing_heap_calloc(heap, 100, 8).cast::<u8>();
            assert!((0..800).all(|i| *z.add(i) == 0));
            let a = homing_heap_aligned_alloc(heap, 4096, 10);
            assert_eq!(a as usize % 4096, 0);
            assert!(homing_heap_aligned_alloc(heap, 3, 10).is_null());
            let r = homing_heap_realloc(heap, blocks[0], 10_000);
            assert!(!r.is_null());
            blocks[0] = r;
            let far = blocks[1] as usize;
            // A live block that the other thread gives up.
            std::thread::spawn(move || crate::family::homing_free(far as *mut c_void))
                .join()
                .unwrap();
            homing_heap_collect(heap);
            for b in &blocks[2..32] {
                homing_heap_free(heap, *b);
            }
            homing_heap_free(heap, ptr::null_mut());
            homing_heap_destroy(heap); // the rest at once
            homing_heap_destroy(ptr::null_mut());
        }
    }
}
