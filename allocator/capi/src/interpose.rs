//! The malloc family under its standard names (feature `malloc`, on by
//! default): `malloc`, `free`, `calloc`, `realloc`, `reallocarray`,
//! `posix_memalign`, `aligned_alloc`, `memalign`, `valloc`, `pvalloc`,
//! `malloc_usable_size`, `free_sized`, `free_aligned_sized`, plus
//! `malloc_trim` / `malloc_stats` and glibc's `__libc_*` aliases.
//!
//! # How it replaces the C library's allocator
//!
//! The dynamic linker resolves every reference to `malloc` (including glibc's
//! own internal ones, which go through its PLT so that malloc can be
//! replaced) to the first definition in the global scope. `LD_PRELOAD`
//! puts `libhoming.so` first; linking `libhoming.so` before libc does the
//! same; linking `libhoming.a` puts the definitions in the executable
//! itself, which comes before every library. glibc's manual lists what a
//! replacement must define ("Replacing malloc"): `malloc`, `free`, `calloc`,
//! `realloc`, and, for the functions programs may call, `aligned_alloc`,
//! `malloc_usable_size`, `memalign`, `posix_memalign`, `pvalloc`, `valloc`.
//! We define all of them, so no glibc allocator function ever sees one of
//! our blocks. `mallopt`, `mallinfo` and `malloc_info` stay glibc's: they
//! configure or describe glibc's own (then unused) arenas and are harmless.
//!
//! # Why nothing needs initialising
//!
//! homing's state is `static`s with constant initialisers and a
//! `const`-initialised thread-local, so the first `malloc` may come from
//! anywhere: the dynamic loader relocating libraries, an ELF constructor
//! that runs before ours, `dlsym`/`dlerror` (which allocate), or a thread
//! the C library creates. There is no constructor to wait for and no
//! recursion: nothing below `malloc` calls `malloc`.
//!
//! # The hard cases, and why each is fine
//!
//! - **Thread exit of plain C threads.** homing notices exit through a
//!   `pthread` key destructor registered on the thread's first allocation
//!   slow path. The destructor posts the outbox and abandons the heap; it
//!   allocates nothing. A later destructor (another library's key) that
//!   allocates binds a heap again and re-arms the key (glibc runs key
//!   destructors up to `PTHREAD_DESTRUCTOR_ITERATIONS` rounds); frees after
//!   ours ran take the heapless path.
//! - **Frees from threads that never allocated.** Such a thread binds a
//!   heap on its first remote free, for its outbox (so a pure consumer
//!   batches its frees like any thread), and abandons it at exit like any
//!   other. If no heap can be had, each block is posted alone to its
//!   owner's inbox (one compare-exchange), or, if the owner exited, freed
//!   straight into its pages under a short claim. Binding a heap may call
//!   `pthread_setspecific`, which may `calloc`: that nested call finds the
//!   heap already bound and is served from it.
//! - **`fork()` while other threads allocate.** homing takes no lock a
//!   forked child could inherit held: heaps, inboxes, the heap registry and
//!   the region chunk pool are all lock-free, and each thread touches only
//!   its own heap's pages. (The two spin locks, the huge-mapping cache's and
//!   the purge queues' shared with the background purger, are held across
//!   `fork` by `pthread_atfork` handlers: `homing::huge::cache::fork_guard`.) The child's only thread keeps the forking
//!   thread's heap and works normally. The heaps of the parent's other
//!   threads are `ACTIVE` in the child but have no thread: nothing touches
//!   their pages again, and frees into them from the child are posted to
//!   their inboxes and never drained. So the child cannot corrupt anything;
//!   it keeps (its copy of) those heaps' memory, bounded by what the parent
//!   had. No `pthread_atfork` handler touches heaps, on purpose: marking those
//!   heaps abandoned in the child would let a claimer walk page lists that a
//!   parent thread was halfway through updating when `fork` copied them, and
//!   making that safe would need a lock on the hot paths. (A heap that was
//!   `CLAIMED` by another thread at the instant of `fork` stays claimed in
//!   the child, with the same consequence: frees to it are kept, not
//!   reused.) The common `fork` + `exec` pattern loses nothing.
//! - **Foreign pointers.** `free` of a pointer homing did not hand out is
//!   undefined behaviour, as with any replacement allocator (homing finds a
//!   block's metadata by masking its address). Under `LD_PRELOAD` it does
//!   not arise in practice: homing is in place before the first relocation
//!   of the program's libraries; the dynamic loader's own early allocations
//!   (made with its internal minimal allocator before libc is relocated) are
//!   never handed to `free`; and glibc's `__libc_malloc` family, which a
//!   program could call directly, is defined here too. A program that
//!   obtains memory from another allocator by other means (a second copy of
//!   libc loaded with `dlmopen`, `mmap`) must not `free` it. A library
//!   built with the `checked` feature reports such a `free` (and interior
//!   pointers and double frees) and aborts.
//!
//! Under `cfg(test)` the functions keep their Rust names (no `no_mangle`), so
//! the crate's own unit tests do not replace their test runner's allocator.

use core::ffi::{c_int, c_void};
use core::ptr;
use homing_deferred::sync::plain::{AtomicUsize, Ordering};

use crate::errno::{self, EINVAL, ENOMEM};
use crate::family::{
    alloc_or_enomem, free_keeping_errno, homing_aligned_alloc, homing_calloc, homing_free,
    homing_malloc, homing_posix_memalign, homing_realloc, homing_reallocarray, homing_usable_size,
};

/// `malloc`: [`homing_malloc`].
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    alloc_or_enomem(size)
}

/// `free`: [`homing_free`].
///
/// # Safety
///
/// As for [`homing_free`].
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: forwarded.
    unsafe { free_keeping_errno(p) }
}

/// `calloc`: [`homing_calloc`].
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    homing_calloc(count, size)
}

/// `realloc`: [`homing_realloc`] (`realloc(p, 0)` frees `p` and returns
/// null, as glibc does).
///
/// # Safety
///
/// As for [`homing_realloc`].
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded.
    unsafe { homing_realloc(p, size) }
}

/// `reallocarray`: [`homing_reallocarray`].
///
/// # Safety
///
/// As for [`homing_realloc`].
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, count: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded.
    unsafe { homing_reallocarray(p, count, size) }
}

/// `posix_memalign`: [`homing_posix_memalign`].
///
/// # Safety
///
/// As for [`homing_posix_memalign`].
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn posix_memalign(
    out: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { homing_posix_memalign(out, alignment, size) }
}

/// C11 `aligned_alloc`: [`homing_aligned_alloc`] (`EINVAL` unless the
/// alignment is a power of two; any size). This is C17's and POSIX's rule,
/// and glibc's own from 2.38 on; older glibc let `aligned_alloc` round the
/// alignment up as `memalign` does. A program that relies on that rounding
/// should call `memalign`, which keeps it.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn aligned_alloc(alignment: usize, size: usize) -> *mut c_void {
    homing_aligned_alloc(alignment, size)
}

/// The obsolete `memalign`, as glibc defines it: an alignment up to
/// [`MALLOC_ALIGN`](crate::family::MALLOC_ALIGN) (0 included) is plain
/// `malloc`; any other is rounded up to the next power of two; only one
/// with no power of two above it (beyond `SIZE_MAX / 2 + 1`) fails, with
/// `EINVAL`. Real programs call `memalign(0, n)`.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn memalign(alignment: usize, size: usize) -> *mut c_void {
    match glibc_memalign_alignment(alignment) {
        Some(alignment) => homing_aligned_alloc(alignment, size),
        None => {
            errno::set(EINVAL);
            ptr::null_mut()
        }
    }
}

/// The alignment glibc's `memalign` uses for `alignment`, or `None` when it
/// refuses it.
fn glibc_memalign_alignment(alignment: usize) -> Option<usize> {
    alignment
        .max(crate::family::MALLOC_ALIGN)
        .checked_next_power_of_two()
}

/// The OS page size, asked once (`sysconf` neither allocates nor fails for
/// `_SC_PAGESIZE`); 0 until then.
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The OS page size, for `valloc` and `pvalloc`.
fn page_size() -> usize {
    // Relaxed: a constant of the system; racing first readers compute the
    // same value.
    let cached = PAGE_SIZE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: `sysconf` only reads a system constant.
    let asked = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = usize::try_from(asked).unwrap_or(allocator::os::OS_PAGE);
    PAGE_SIZE.store(page, Ordering::Relaxed);
    page
}

/// The obsolete `valloc`: `size` bytes aligned to the page size.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    homing_aligned_alloc(page_size(), size)
}

/// The obsolete `pvalloc`: `size` rounded up to whole pages (one page for
/// 0), page aligned; null with `ENOMEM` if the rounding overflows.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let page = page_size();
    match allocator::os::align_up(size.max(1), page) {
        Some(rounded) => homing_aligned_alloc(page, rounded),
        None => {
            errno::set(ENOMEM);
            ptr::null_mut()
        }
    }
}

/// `malloc_usable_size`: [`homing_usable_size`] (0 for null).
///
/// # Safety
///
/// As for [`homing_usable_size`].
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    // SAFETY: forwarded.
    unsafe { homing_usable_size(p) }
}

/// C23 `free_sized`: homing finds the size itself, so this is [`free`].
///
/// # Safety
///
/// As for [`homing_free`] (C23 also asks `size` to be the requested size;
/// homing does not rely on it).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn free_sized(p: *mut c_void, _size: usize) {
    // SAFETY: forwarded.
    unsafe { homing_free(p) }
}

/// C23 `free_aligned_sized`: [`free`].
///
/// # Safety
///
/// As for [`free_sized`].
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, _alignment: usize, _size: usize) {
    // SAFETY: forwarded.
    unsafe { homing_free(p) }
}

/// glibc's `malloc_trim`: gives back what the calling thread's heap does not
/// need ([`allocator::collect`]). Returns 1 if memory went back to the OS, 0
/// otherwise (as glibc does); the padding argument has no meaning here.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn malloc_trim(_pad: usize) -> c_int {
    let before = allocator::stats();
    errno::preserve(allocator::collect);
    let after = allocator::stats();
    c_int::from(after.os_purged > before.os_purged || after.os_mapped < before.os_mapped)
}

/// glibc's `malloc_stats`: homing's statistics on standard error.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn malloc_stats() {
    allocator::print_stats();
}

// glibc exports its allocator under these names too; a program (or a
// library such as a leak checker) may call them directly, and must then get
// homing's blocks, not glibc's.

/// glibc's alias of `malloc`.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn __libc_malloc(size: usize) -> *mut c_void {
    homing_malloc(size)
}

/// glibc's alias of `free`.
///
/// # Safety
///
/// As for [`homing_free`].
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_free(p: *mut c_void) {
    // SAFETY: forwarded.
    unsafe { homing_free(p) }
}

/// glibc's alias of `calloc`.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn __libc_calloc(count: usize, size: usize) -> *mut c_void {
    homing_calloc(count, size)
}

/// glibc's alias of `realloc`.
///
/// # Safety
///
/// As for [`homing_realloc`].
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded.
    unsafe { homing_realloc(p, size) }
}

/// glibc's alias of `memalign`.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn __libc_memalign(alignment: usize, size: usize) -> *mut c_void {
    memalign(alignment, size)
}

/// glibc's alias of `valloc`.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn __libc_valloc(size: usize) -> *mut c_void {
    valloc(size)
}

/// glibc's alias of `pvalloc`.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn __libc_pvalloc(size: usize) -> *mut c_void {
    pvalloc(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_aligned_calls() {
        let page = page_size();
        assert!(page.is_power_of_two());
        let v = valloc(10);
        let pv = pvalloc(0);
        assert_eq!(v as usize % page, 0);
        assert_eq!(pv as usize % page, 0);
        // SAFETY: live blocks of ours.
        unsafe {
            assert!(malloc_usable_size(pv) >= page);
            free(v);
            free_sized(pv, page);
        }
        errno::set(0);
        assert!(pvalloc(usize::MAX).is_null());
        assert_eq!(errno::get(), ENOMEM);
    }

    #[test]
    fn memalign_rounds_its_alignment_like_glibc() {
        for (asked, given) in [
            (0, 16),
            (1, 16),
            (24, 32),
            (48, 64),
            (256, 256),
            (4097, 8192),
        ] {
            assert_eq!(glibc_memalign_alignment(asked), Some(given), "{asked}");
            let p = memalign(asked, 10);
            assert!(!p.is_null());
            assert_eq!(p as usize % given, 0, "memalign({asked}, 10)");
            // SAFETY: a live block of ours.
            unsafe { free_aligned_sized(p, given, 10) };
        }
        errno::set(0);
        assert!(memalign(usize::MAX, 10).is_null());
        assert_eq!(errno::get(), EINVAL);
        errno::set(0);
        assert!(
            aligned_alloc(48, 10).is_null(),
            "aligned_alloc stays strict"
        );
        assert_eq!(errno::get(), EINVAL);
    }
}

// `dlopen` without `RTLD_DEEPBIND` (see the module's doc). Not under
// `cfg(test)`, like the names above.
#[cfg(all(not(test), target_os = "linux", target_arch = "x86_64"))]
mod deepbind;
