//! Regions for C: `homing_region_t` and `homing_region_*`.
//!
//! A `homing_region_t *` is a homing block holding one
//! [`homing_regions::Region`]: a bump arena whose memory belongs to the
//! region, not to a thread. One thread at a time uses a region, but the
//! handle may be passed to another thread (a region is `Send`): allocate on
//! one thread, hand the pointer over (through a queue, a message, a join),
//! allocate more or free it there. Freeing a region releases all its memory
//! at once; there is no per-object free.
//!
//! Failures set `errno` as the malloc family does (`ENOMEM`, `EINVAL`).

use core::alloc::Layout;
use core::ffi::c_void;
use core::mem::{align_of, size_of};
use core::ptr;

use homing_regions::Region;

use crate::errno::{self, EINVAL, ENOMEM};
use crate::family::MALLOC_ALIGN;

/// The C handle of a region (`homing_region_t` in `homing.h`). Opaque to C;
/// one thread at a time, movable between threads.
pub struct HomingRegion {
    region: Region,
}

/// Creates an empty region (it takes no chunk until the first allocation);
/// null with `errno = ENOMEM` if there is no memory for the handle.
///
/// ```c
/// homing_region_t *r = homing_region_new();
/// ```
#[no_mangle]
pub extern "C" fn homing_region_new() -> *mut HomingRegion {
    let handle = allocator::alloc(size_of::<HomingRegion>(), align_of::<HomingRegion>())
        .cast::<HomingRegion>();
    if handle.is_null() {
        errno::set(ENOMEM);
        return ptr::null_mut();
    }
    // SAFETY: a fresh block sized and aligned for a `HomingRegion`.
    unsafe {
        handle.write(HomingRegion {
            region: Region::new(),
        })
    };
    handle
}

/// Allocates `size` bytes aligned to `alignment` (a power of two) in
/// `region`; null with `errno = EINVAL` for a bad alignment, `ENOMEM` when
/// memory runs out. The memory lives until the region is freed or reset.
///
/// # Safety
///
/// `region` is a live handle that no other thread is using.
///
/// ```c
/// double *m = homing_region_aligned_alloc(r, 64, rows * cols * sizeof *m);
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_region_aligned_alloc(
    region: *mut HomingRegion,
    alignment: usize,
    size: usize,
) -> *mut c_void {
    if !alignment.is_power_of_two() {
        errno::set(EINVAL);
        return ptr::null_mut();
    }
    let Ok(layout) = Layout::from_size_align(size, alignment) else {
        errno::set(ENOMEM);
        return ptr::null_mut();
    };
    // SAFETY: a live handle, used by this thread only (caller contract).
    match unsafe { &(*region).region }.try_alloc_layout(layout) {
        Ok(p) => p.as_ptr().cast(),
        Err(_) => {
            errno::set(ENOMEM);
            ptr::null_mut()
        }
    }
}

/// Allocates `size` bytes aligned to 16 (like `malloc`) in `region`; null
/// with `errno = ENOMEM` when memory runs out.
///
/// # Safety
///
/// As for [`homing_region_aligned_alloc`].
///
/// ```c
/// struct node *n = homing_region_alloc(r, sizeof *n);
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_region_alloc(
    region: *mut HomingRegion,
    size: usize,
) -> *mut c_void {
    // SAFETY: forwarded.
    unsafe { homing_region_aligned_alloc(region, MALLOC_ALIGN, size) }
}

/// Moves everything `from` holds into `into` in O(1) and frees the `from`
/// handle: its memory now lives as long as `into`'s. Either may have been
/// filled on another thread.
///
/// # Safety
///
/// Both are live, distinct handles that no other thread is using; `from`
/// is not used afterwards.
///
/// ```c
/// homing_region_merge(actor_region, message_region); /* message_region is gone */
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_region_merge(into: *mut HomingRegion, from: *mut HomingRegion) {
    debug_assert!(into != from, "homing_region_merge of a region into itself");
    // SAFETY: live, distinct handles (caller contract); `from` is moved out
    // of its block, which is then freed and never read again.
    unsafe {
        let HomingRegion { region } = from.read();
        (*into).region.merge(region);
        allocator::free(from.cast());
    }
}

/// Releases every allocation of `region` at once but keeps its largest
/// chunk for reuse: for a region rebuilt in a loop.
///
/// # Safety
///
/// `region` is a live handle that no other thread is using; nothing uses
/// its allocations afterwards.
///
/// ```c
/// homing_region_reset(scratch);
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_region_reset(region: *mut HomingRegion) {
    // SAFETY: the caller's contract.
    unsafe { (*region).region.reset() };
}

/// Bytes of memory the region holds (its chunks), for accounting.
///
/// # Safety
///
/// `region` is a live handle that no other thread is using.
///
/// ```c
/// size_t held = homing_region_capacity(r);
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_region_capacity(region: *const HomingRegion) -> usize {
    // SAFETY: the caller's contract.
    unsafe { (*region).region.capacity() }
}

/// Frees `region` and every allocation in it, on whichever thread calls it.
/// Null does nothing; `errno` is not changed.
///
/// # Safety
///
/// `region` is null or a live handle that no other thread is using;
/// nothing uses its allocations afterwards.
///
/// ```c
/// homing_region_free(r);
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_region_free(region: *mut HomingRegion) {
    if region.is_null() {
        return;
    }
    errno::preserve(|| {
        // SAFETY: a live handle (caller contract), moved out of its block,
        // dropped, and the block freed.
        unsafe {
            drop(region.read());
            allocator::free(region.cast());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_made_here_is_merged_and_freed_there() {
        let r = homing_region_new();
        let s = homing_region_new();
        // SAFETY: live handles, used by one thread at a time (the handles
        // travel to the other thread as integers and come back only through
        // the join).
        unsafe {
            let p = homing_region_alloc(r, 100).cast::<u8>();
            assert_eq!(p as usize % MALLOC_ALIGN, 0);
            p.write_bytes(7, 100);
            let q = homing_region_aligned_alloc(s, 4096, 10);
            assert_eq!(q as usize % 4096, 0);
            assert!(homing_region_aligned_alloc(s, 12, 10).is_null());
            assert!(homing_region_capacity(r) >= 100);
            let (r_addr, s_addr, p_addr) = (r as usize, s as usize, p as usize);
            std::thread::spawn(move || {
                let r = r_addr as *mut HomingRegion;
                homing_region_merge(r, s_addr as *mut HomingRegion);
                let p = p_addr as *const u8;
                assert!((0..100).all(|i| *p.add(i) == 7));
                for _ in 0..10_000 {
                    assert!(!homing_region_alloc(r, 48).is_null());
                }
                homing_region_free(r);
            })
            .join()
            .unwrap();
            homing_region_free(ptr::null_mut());
        }
    }
}
