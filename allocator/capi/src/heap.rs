//! First-class heaps for C: `homing_heap_t` and `homing_heap_*`.
//!
//! A `homing_heap_t *` is a block of the creating thread's heap holding one
//! [`allocator::Heap`]. The heap belongs to the thread that created it (the
//! **owner**): only the owner allocates from it, calls
//! `homing_heap_free`/`homing_heap_collect` on it and destroys it. Any
//! thread may free one of its blocks with `homing_free` (or `free`): the
//! block is posted to the heap's inbox at once, and the owner takes it back
//! at its next allocation slow path or `homing_heap_collect`.
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

use crate::errno::{self, EINVAL, ENOMEM};
use crate::family::{huge_growth, MALLOC_ALIGN};

/// The C handle of a first-class heap (`homing_heap_t` in `homing.h`).
/// Opaque to C; owner-thread only.
pub struct HomingHeap {
    heap: allocator::Heap,
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
fn heap_alloc(heap: &HomingHeap, layout: Layout, zeroed: bool) -> *mut c_void {
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
    heap_alloc(unsafe { &*heap }, layout, false)
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
    heap_alloc(unsafe { &*heap }, layout, true)
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
    heap_alloc(unsafe { &*heap }, layout, false)
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
    // SAFETY: the caller's contract.
    errno::preserve(|| unsafe { (*heap).heap.dealloc(p) });
}

/// Takes back the blocks other threads freed into `heap`, returns its empty
/// pages and purges free memory. Call it at safe points.
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
    errno::preserve(|| unsafe { (*heap).heap.collect() });
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
