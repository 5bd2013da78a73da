//! The C allocation contract on top of homing: `homing_malloc`,
//! `homing_calloc`, `homing_realloc`, `homing_reallocarray`, `homing_free`,
//! `homing_aligned_alloc`, `homing_posix_memalign`, `homing_usable_size`.
//!
//! These are always exported (with or without the `malloc` feature), so a
//! program can use homing next to the C library's allocator. The standard
//! names in [`crate::interpose`] are one call of these.
//!
//! # The contract, case by case
//!
//! | call | result |
//! |---|---|
//! | any allocation | aligned to [`MALLOC_ALIGN`] (16, `alignof(max_align_t)`) or more |
//! | size 0 | a unique, freeable block (of the smallest class) |
//! | out of memory, or a size above `PTRDIFF_MAX` | null, `errno = ENOMEM` |
//! | `calloc` / `reallocarray` whose product overflows | null, `errno = ENOMEM` |
//! | alignment not a power of two (`aligned_alloc`) | null, `errno = EINVAL` |
//! | `memalign(0 or not a power of two, n)` | as glibc: `malloc` for 0 and small alignments, others rounded up to a power of two |
//! | `posix_memalign`: bad alignment / no memory | returns `EINVAL` / `ENOMEM`, `*out` and `errno` untouched |
//! | `realloc(NULL, n)` | `malloc(n)` |
//! | `realloc(p, 0)` | frees `p`, returns null, `errno` untouched (glibc's policy) |
//! | `realloc` failure | null, `errno = ENOMEM`, `p` untouched and still live |
//! | `free(NULL)` | nothing |
//! | `free(p)` | never changes `errno` |
//!
//! `realloc(p, 0)` follows glibc (the allocator a preloaded homing
//! replaces), so programs written against glibc that use `realloc(p, 0)` as
//! a free neither leak nor double-free. C23 makes the call undefined; new
//! code should not rely on either policy.

use core::ffi::{c_int, c_void};
use core::mem::{align_of, size_of};
use core::ptr;

use crate::errno::{self, EINVAL, ENOMEM};

/// The alignment of every block `homing_malloc` (and `malloc`) returns:
/// `alignof(max_align_t)` on x86-64 and AArch64 Linux. homing's classes are
/// all multiples of it, so asking for it costs nothing.
pub const MALLOC_ALIGN: usize = allocator::size_class::MIN_ALIGN;
const _: () = assert!(MALLOC_ALIGN >= align_of::<libc::max_align_t>());

/// The smallest alignment `posix_memalign` accepts: `sizeof(void *)`.
const POINTER_SIZE: usize = size_of::<*mut c_void>();

/// Allocates `size` bytes aligned to [`MALLOC_ALIGN`]; null with
/// `errno = ENOMEM` on failure. `size == 0` gives a unique block.
///
/// ```c
/// char *s = homing_malloc(64);
/// if (s == NULL) perror("homing_malloc");
/// ```
#[no_mangle]
pub extern "C" fn homing_malloc(size: usize) -> *mut c_void {
    alloc_or_enomem(size)
}

/// The body of `homing_malloc` and `malloc`, inlined into both (an exported
/// function is not inlined across the export).
#[inline(always)]
pub(crate) fn alloc_or_enomem(size: usize) -> *mut c_void {
    allocator::alloc_reporting::<SetEnomem>(size, MALLOC_ALIGN).cast()
}

/// A failed allocation sets `errno` to `ENOMEM` (on homing's slow path,
/// so `malloc`'s fast path tests nothing more than the Rust one).
pub(crate) struct SetEnomem;

impl allocator::OnFailure for SetEnomem {
    #[inline(always)]
    fn failed() {
        errno::set(ENOMEM);
    }
}

/// Allocates `count * size` zeroed bytes; null with `errno = ENOMEM` when the
/// product overflows or memory runs out.
///
/// ```c
/// int *v = homing_calloc(1000, sizeof *v); /* all zero */
/// ```
#[no_mangle]
pub extern "C" fn homing_calloc(count: usize, size: usize) -> *mut c_void {
    let Some(total) = count.checked_mul(size) else {
        errno::set(ENOMEM);
        return ptr::null_mut();
    };
    let p = allocator::alloc_zeroed(total, MALLOC_ALIGN);
    if p.is_null() {
        errno::set(ENOMEM);
    }
    p.cast()
}

/// Frees a block from any `homing_*` allocation call or the malloc family,
/// on any thread. Null does nothing; `errno` is never changed.
///
/// # Safety
///
/// `p` is null or a live block of homing's (not yet freed), and nothing
/// uses it afterwards.
///
/// ```c
/// homing_free(homing_malloc(10));
/// homing_free(NULL); /* nothing */
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_free(p: *mut c_void) {
    // SAFETY: forwarded.
    unsafe { free_keeping_errno(p) }
}

/// The body of `homing_free` and `free`, inlined into both: homing's free,
/// which never changes `errno`.
///
/// homing's free makes a system call only on its slow paths (unmapping a
/// huge block, purging pages, mapping a heap for a thread that only frees),
/// and homing's OS layer gives `errno` back as it found it around each of
/// them, so the fast path does nothing about `errno` at all (saving and
/// restoring it here cost a call of `__errno_location` and two registers
/// per `free`).
///
/// # Safety
///
/// As for [`homing_free`].
#[inline(always)]
pub(crate) unsafe fn free_keeping_errno(p: *mut c_void) {
    // SAFETY: the caller's contract.
    unsafe { allocator::free(p.cast()) }
}

/// Resizes `p` to `size` bytes, keeping the first `min(old, size)` bytes.
/// See the module doc for the null, zero and failure cases.
///
/// # Safety
///
/// `p` is null or a live block of homing's; on success the caller uses the
/// returned block instead of `p`.
///
/// ```c
/// char *buf = homing_malloc(16);
/// char *bigger = homing_realloc(buf, 4096);
/// if (bigger != NULL) buf = bigger; /* else buf is still valid */
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        return homing_malloc(size);
    }
    if size == 0 {
        // SAFETY: `p` is a live block of ours (caller contract).
        unsafe { homing_free(p) };
        return ptr::null_mut();
    }
    // SAFETY: `p` is a live block of ours; the block really holds
    // `usable_size(p)` bytes, so copying that many is in bounds, and
    // `MALLOC_ALIGN` is the alignment every such block has.
    let q = unsafe {
        let old = allocator::usable_size_for(p.cast(), "realloc");
        let mut q = ptr::null_mut();
        if let Some(roomy) = huge_growth(old, size) {
            // A failure here is not the caller's; homing leaves errno alone
            // (its OS layer gives it back), so the exact try starts clean.
            q = allocator::realloc_usable(p.cast(), old, old, MALLOC_ALIGN, roomy);
        }
        if q.is_null() {
            q = allocator::realloc_usable(p.cast(), old, old, MALLOC_ALIGN, size);
        }
        q
    };
    if q.is_null() {
        errno::set(ENOMEM);
    }
    q.cast()
}

/// How much a moving huge block grows at least: by half its size.
const HUGE_GROWTH_DIVISOR: usize = 2;

/// The size to ask for when a block of `usable` bytes must grow to `size`
/// and the result is huge (above `MEDIUM_MAX`, straight from the OS), or
/// `None` when `size` itself is the right request.
///
/// homing rounds huge blocks to whole OS pages only and has no in-place
/// growth (no `mremap`), so a C buffer grown by `realloc` in small steps
/// (`buf = realloc(buf, len + n)`, a very common pattern) would be copied
/// every few steps: quadratic time (16 MiB in 1000-byte steps took 39 s
/// instead of glibc's 0.03 s). Growing to at least 1.5 times the old size
/// makes the copies geometric, so the total copied stays below three times
/// the final size. The extra room costs address space, not memory: a fresh
/// huge mapping is only backed where it is written. Small and medium
/// blocks need nothing: their classes already grow geometrically.
#[inline]
pub(crate) fn huge_growth(usable: usize, size: usize) -> Option<usize> {
    if size <= usable || size <= allocator::size_class::MEDIUM_MAX {
        return None;
    }
    let roomy = usable.saturating_add(usable / HUGE_GROWTH_DIVISOR);
    (roomy > size).then_some(roomy)
}

/// `homing_realloc(p, count * size)`, or null with `errno = ENOMEM` (and
/// `p` untouched) when the product overflows.
///
/// # Safety
///
/// As for [`homing_realloc`].
///
/// ```c
/// struct item *items = homing_reallocarray(NULL, n, sizeof *items);
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_reallocarray(
    p: *mut c_void,
    count: usize,
    size: usize,
) -> *mut c_void {
    let Some(total) = count.checked_mul(size) else {
        errno::set(ENOMEM);
        return ptr::null_mut();
    };
    // SAFETY: forwarded.
    unsafe { homing_realloc(p, total) }
}

/// Allocates `size` bytes aligned to `alignment` (any power of two; smaller
/// than [`MALLOC_ALIGN`] gives `MALLOC_ALIGN`). Null with `errno = EINVAL`
/// if `alignment` is not a power of two (0 included), `ENOMEM` if memory
/// runs out. `size` need not be a multiple of `alignment`.
///
/// ```c
/// void *page = homing_aligned_alloc(4096, 4096);
/// ```
#[no_mangle]
pub extern "C" fn homing_aligned_alloc(alignment: usize, size: usize) -> *mut c_void {
    if !alignment.is_power_of_two() {
        errno::set(EINVAL);
        return ptr::null_mut();
    }
    let p = allocator::alloc(size, alignment.max(MALLOC_ALIGN));
    if p.is_null() {
        errno::set(ENOMEM);
    }
    p.cast()
}

/// POSIX `posix_memalign`: stores a block of `size` bytes aligned to
/// `alignment` in `*out` and returns 0; returns `EINVAL` if `alignment` is
/// not a power of two multiple of `sizeof(void *)`, `ENOMEM` if memory runs
/// out. On failure `*out` is not written. `errno` is never changed.
///
/// # Safety
///
/// `out` is valid for writing one pointer.
///
/// ```c
/// void *p;
/// int rc = homing_posix_memalign(&p, 64, 1000);
/// if (rc != 0) fprintf(stderr, "posix_memalign: %s\n", strerror(rc));
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_posix_memalign(
    out: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    if !alignment.is_power_of_two() || !alignment.is_multiple_of(POINTER_SIZE) {
        return EINVAL;
    }
    // homing never changes errno (its OS layer gives it back around a
    // failing mmap), and posix_memalign reports through its result.
    let p = allocator::alloc(size, alignment.max(MALLOC_ALIGN));
    if p.is_null() {
        return ENOMEM;
    }
    // SAFETY: the caller passes a writable out-pointer.
    unsafe { out.write(p.cast()) };
    0
}

/// Bytes usable in the block `p` (at least what was asked for; writing all
/// of them is allowed). 0 for null.
///
/// # Safety
///
/// `p` is null or a live block of homing's.
///
/// ```c
/// char *p = homing_malloc(100);
/// size_t n = homing_usable_size(p); /* >= 100 */
/// memset(p, 0, n);
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_usable_size(p: *mut c_void) -> usize {
    if p.is_null() {
        return 0;
    }
    // SAFETY: a live block of ours (caller contract).
    unsafe { allocator::usable_size_for(p.cast(), "malloc_usable_size") }
}

#[cfg(test)]
mod tests {
    //! The contract, called as Rust functions (the test binary keeps the
    //! system allocator: nothing is interposed under `cfg(test)`).
    use super::*;

    #[test]
    fn malloc_is_aligned_and_usable() {
        for size in [0, 1, 15, 16, 17, 100, 4096, 100_000, 1 << 20, 5 << 20] {
            let p = homing_malloc(size);
            assert!(!p.is_null());
            assert_eq!(p as usize % MALLOC_ALIGN, 0, "size {size}");
            // SAFETY: a live block of ours, `usable` bytes long.
            unsafe {
                let usable = homing_usable_size(p);
                assert!(usable >= size.max(1));
                p.cast::<u8>().write_bytes(0xA5, usable);
                homing_free(p);
            }
        }
    }

    #[test]
    fn errno_cases() {
        errno::set(0);
        assert!(homing_malloc(usize::MAX).is_null());
        assert_eq!(errno::get(), ENOMEM);
        errno::set(0);
        assert!(homing_calloc(usize::MAX / 2, 3).is_null());
        assert_eq!(errno::get(), ENOMEM);
        errno::set(0);
        assert!(homing_aligned_alloc(24, 16).is_null());
        assert_eq!(errno::get(), EINVAL);
        errno::set(0);
        assert!(homing_aligned_alloc(0, 16).is_null());
        assert_eq!(errno::get(), EINVAL);

        let mut out = core::ptr::dangling_mut::<c_void>();
        errno::set(0);
        // SAFETY: `out` is a valid out-pointer.
        unsafe {
            assert_eq!(homing_posix_memalign(&mut out, 4, 16), EINVAL);
            assert_eq!(homing_posix_memalign(&mut out, 48, 16), EINVAL);
            assert_eq!(homing_posix_memalign(&mut out, 64, usize::MAX), ENOMEM);
        }
        assert_eq!(out as usize, 1);
        assert_eq!(errno::get(), 0);

        errno::set(42);
        // SAFETY: null and a fresh block are valid arguments to free.
        unsafe {
            homing_free(ptr::null_mut());
            homing_free(homing_malloc(8 << 20));
        }
        assert_eq!(errno::get(), 42);
    }

    #[test]
    fn realloc_keeps_the_prefix_and_follows_the_policies() {
        // SAFETY: every pointer passed is null or live, and replaced by the
        // returned one on success.
        unsafe {
            let mut p = homing_realloc(ptr::null_mut(), 10).cast::<u8>();
            assert!(!p.is_null());
            for i in 0..10 {
                *p.add(i) = i as u8;
            }
            let mut size = 10;
            for new in [100, 5000, 200_000, 3 << 20, 70, 12] {
                p = homing_realloc(p.cast(), new).cast();
                assert!(!p.is_null());
                for i in 0..size.min(new).min(10) {
                    assert_eq!(*p.add(i), i as u8, "after resize to {new}");
                }
                size = new;
            }
            errno::set(0);
            assert!(homing_realloc(p.cast(), usize::MAX).is_null());
            assert_eq!(errno::get(), ENOMEM);
            assert_eq!(*p.add(9), 9, "a failed realloc leaves the block alone");
            assert!(homing_reallocarray(p.cast(), usize::MAX, 2).is_null());
            errno::set(7);
            assert!(homing_realloc(p.cast(), 0).is_null(), "realloc(p, 0) frees");
            assert_eq!(errno::get(), 7);
        }
    }

    #[test]
    fn huge_blocks_grow_geometrically() {
        let medium = allocator::size_class::MEDIUM_MAX;
        assert_eq!(
            huge_growth(100, 200),
            None,
            "small blocks use their classes"
        );
        assert_eq!(huge_growth(4 * medium, 3 * medium), None, "shrinking");
        assert_eq!(huge_growth(2 * medium, 2 * medium + 1), Some(3 * medium));
        assert_eq!(
            huge_growth(2 * medium, 5 * medium),
            None,
            "a big jump is asked as is"
        );
        assert_eq!(huge_growth(usize::MAX - 1, usize::MAX), None);
        // Growing in small steps copies a logarithmic number of times.
        // SAFETY: each block is live until the realloc that replaces it.
        unsafe {
            let mut p = homing_malloc(1);
            let (mut moves, mut size) = (0, 1);
            while size < 16 << 20 {
                size += 1000;
                let q = homing_realloc(p, size);
                assert!(!q.is_null());
                moves += usize::from(q != p);
                p = q;
            }
            assert!(moves < 100, "{moves} moves");
            homing_free(p);
        }
    }

    #[test]
    fn aligned_allocations() {
        let mut align = 1;
        while align <= 1 << 24 {
            let p = homing_aligned_alloc(align, 24);
            assert!(!p.is_null());
            assert_eq!(p as usize % align.max(MALLOC_ALIGN), 0, "align {align}");
            let mut q = ptr::null_mut();
            if align >= POINTER_SIZE {
                // SAFETY: a valid out-pointer.
                assert_eq!(unsafe { homing_posix_memalign(&mut q, align, 3) }, 0);
                assert_eq!(q as usize % align, 0);
            }
            // SAFETY: live blocks (or null).
            unsafe {
                homing_free(p);
                homing_free(q);
            }
            align *= 2;
        }
    }

    #[test]
    fn calloc_zeroes_reused_memory() {
        for size in [16, 1000, 10_000, 200_000] {
            let p = homing_malloc(size).cast::<u8>();
            // SAFETY: live blocks of at least `size` bytes.
            unsafe {
                p.write_bytes(0xFF, size);
                homing_free(p.cast());
                let z = homing_calloc(1, size).cast::<u8>();
                assert!((0..size).all(|i| *z.add(i) == 0), "size {size}");
                homing_free(z.cast());
            }
        }
    }
}
