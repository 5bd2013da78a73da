//! The OS layer: the only module that asks the operating system for memory.
//!
//! # Contract
//!
//! - Sizes are multiples of [`OS_PAGE`] and non-zero; alignments are powers
//!   of two, at least [`OS_PAGE`]. Callers check; this module asserts in
//!   debug builds only.
//! - [`map`] returns read-write memory that reads as zero. On Linux the
//!   kernel backs it lazily, so mapping costs address space, not RSS, until
//!   the memory is touched: there is no separate commit step. It is *not*
//!   mapped with `MAP_NORESERVE`: the kernel's overcommit policy
//!   (`vm.overcommit_memory`) judges every mapping as it judges glibc's, so
//!   a size the machine cannot back (`malloc(1 << 40)` on a 24 GiB machine)
//!   is refused here, with `None`, instead of succeeding and killing the
//!   program when it touches the memory.
//! - [`purge`] hands the physical memory of a sub-range back (RSS drops) and
//!   keeps the address range; the range reads as zero afterwards.
//! - [`unmap`] returns a whole mapping made by [`map`], by its exact base and
//!   size.
//! - Nothing here allocates, locks or panics: failures are `None`.
//!
//! Reservations go through `memmap2` (`MmapOptions::map_anon`); `memmap2`
//! cannot place a mapping at an alignment,
//! release part of one or purge a sub-range, so those three calls are made
//! here with `libc`. Under Miri and loom, where `mmap` is not available, the
//! same contract is met by the system allocator (`cfg(any(miri, loom))`).

use core::ptr::NonNull;

use crate::sync::plain::{AtomicPtr, AtomicUsize, Ordering};

/// The operating system's page: the unit of mapping and purging (4 KiB on
/// the x86_64 and aarch64 Linux targets this crate is built for).
pub const OS_PAGE: usize = 4096;

/// Bytes currently mapped from the OS by this process's homing (address
/// space, not RSS).
static MAPPED: AtomicUsize = AtomicUsize::new(0);
/// Bytes purged so far (cumulative).
static PURGED: AtomicUsize = AtomicUsize::new(0);

/// Counters of the OS layer, for statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OsCounters {
    /// Bytes mapped now (address space reserved from the OS).
    pub mapped: usize,
    /// Bytes given back with [`purge`] since the process started.
    pub purged: usize,
}

/// A snapshot of the OS layer's counters.
pub fn counters() -> OsCounters {
    // Relaxed: statistics only; no memory is read through these values.
    OsCounters {
        mapped: MAPPED.load(Ordering::Relaxed),
        purged: PURGED.load(Ordering::Relaxed),
    }
}

/// Most functions that may be registered with [`on_memory_pressure`].
const PRESSURE_HOOKS: usize = 4;

/// Registered pressure hooks (`fn()` as a pointer; null: an empty slot).
static HOOKS: [AtomicPtr<()>; PRESSURE_HOOKS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; PRESSURE_HOOKS];

/// Registers `release`, a function that gives memory its layer keeps back
/// to the OS (the regions' chunk pool registers one). When the OS refuses
/// homing memory, homing gives back what it holds itself, calls every
/// registered function, and tries once more. Registering the same function
/// twice registers it once; `false` if every slot is taken.
///
/// `release` runs on whatever thread ran out of memory, inside an
/// allocation: it must not allocate, lock what an allocation may hold, or
/// panic.
pub fn on_memory_pressure(release: fn()) -> bool {
    let f = release as *mut ();
    for hook in &HOOKS {
        // AcqRel/Acquire: the hook is a plain function pointer, but a
        // reader (Acquire in `relieve_pressure`) must see it whole; on
        // failure we only compare.
        match hook.compare_exchange(
            core::ptr::null_mut(),
            f,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return true,
            Err(theirs) if theirs == f => return true,
            Err(_) => {}
        }
    }
    false
}

/// Calls every function registered with [`on_memory_pressure`].
pub fn relieve_pressure() {
    for hook in &HOOKS {
        // Acquire: pairs with the registering compare-exchange.
        let f = hook.load(Ordering::Acquire);
        if !f.is_null() {
            // SAFETY: only `fn()` pointers are ever stored (see
            // `on_memory_pressure`).
            let release: fn() = unsafe { core::mem::transmute::<*mut (), fn()>(f) };
            release();
        }
    }
}

/// Rounds `n` up to a multiple of the power of two `align`, or `None` on
/// overflow.
#[inline]
pub const fn align_up(n: usize, align: usize) -> Option<usize> {
    match n.checked_add(align - 1) {
        Some(m) => Some(m & !(align - 1)),
        None => None,
    }
}

/// Maps `size` bytes of zeroed read-write memory whose base is a multiple of
/// `align`. `None` if the OS refuses (out of memory or address space).
pub fn map(size: usize, align: usize) -> Option<NonNull<u8>> {
    debug_assert!(size > 0 && size.is_multiple_of(OS_PAGE));
    debug_assert!(align.is_power_of_two() && align >= OS_PAGE);
    let ptr = imp::map(size, align)?;
    // Relaxed: a statistic.
    MAPPED.fetch_add(size, Ordering::Relaxed);
    Some(ptr)
}

/// Returns a mapping to the OS.
///
/// # Safety
///
/// `ptr` and `size` must be exactly a base and size returned together by
/// [`map`] (with its `align`), not yet unmapped, and nothing may use the
/// memory afterwards.
pub unsafe fn unmap(ptr: NonNull<u8>, size: usize, align: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { imp::unmap(ptr, size, align) };
    // Relaxed: a statistic.
    MAPPED.fetch_sub(size, Ordering::Relaxed);
}

/// Tries to grow the mapping at `ptr` from `old_size` to `new_size` bytes
/// without moving it (the address range after it must be free). `true` on
/// success; on failure the mapping is unchanged.
///
/// # Safety
///
/// `ptr` and `old_size` are a live mapping from [`map`] (its exact base and
/// current size); sizes are multiples of [`OS_PAGE`], `new_size > old_size`.
pub unsafe fn grow_in_place(ptr: NonNull<u8>, old_size: usize, new_size: usize) -> bool {
    debug_assert!(new_size > old_size && new_size.is_multiple_of(OS_PAGE));
    // SAFETY: forwarded from the caller.
    let grown = unsafe { imp::grow_in_place(ptr, old_size, new_size) };
    if grown {
        // Relaxed: a statistic.
        MAPPED.fetch_add(new_size - old_size, Ordering::Relaxed);
    }
    grown
}

/// Gives the physical memory behind `[ptr, ptr + size)` back to the OS; the
/// range stays mapped and reads as zero afterwards.
///
/// # Safety
///
/// The range must lie inside one live mapping from [`map`], be
/// [`OS_PAGE`]-aligned in base and size, and hold nothing anyone still needs.
pub unsafe fn purge(ptr: NonNull<u8>, size: usize) {
    debug_assert!((ptr.as_ptr() as usize).is_multiple_of(OS_PAGE) && size.is_multiple_of(OS_PAGE));
    if size == 0 {
        return;
    }
    // SAFETY: forwarded from the caller.
    unsafe { imp::purge(ptr, size) };
    // Relaxed: a statistic.
    PURGED.fetch_add(size, Ordering::Relaxed);
}

/// Writes `homing: <parts...> (<what> 0x<addr>)` to standard error and
/// aborts: the checked build's report of misuse (`what` names the address:
/// `pointer`, `heap`). Allocates nothing: a stack buffer and `write(2)`.
#[cold]
pub fn fatal(parts: &[&str], what: &str, addr: usize) -> ! {
    let mut buf = [0u8; 256];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        for &b in bytes {
            if n < buf.len() {
                buf[n] = b;
                n += 1;
            }
        }
    };
    put(b"homing: ");
    for part in parts {
        put(part.as_bytes());
    }
    put(b" (");
    put(what.as_bytes());
    put(b" 0x");
    for shift in (0..16).rev() {
        put(&[b"0123456789abcdef"[(addr >> (shift * 4)) & 0xF]]);
    }
    put(b")\n");
    #[cfg(not(any(miri, loom)))]
    // SAFETY: writing our own stack buffer to fd 2, then aborting.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), n);
        libc::abort()
    }
    #[cfg(any(miri, loom))]
    {
        let _ = n;
        std::process::abort()
    }
}

/// The value of the environment variable `name` (NUL-terminated), as
/// bytes; `None` if it is not set (and always under Miri and loom). The
/// bytes live as long as the environment entry: read them at once.
pub(crate) fn getenv(name: &[u8]) -> Option<&'static [u8]> {
    debug_assert_eq!(name.last(), Some(&0));
    #[cfg(any(miri, loom))]
    {
        let _ = name;
        None
    }
    #[cfg(not(any(miri, loom)))]
    // SAFETY: `name` is NUL-terminated; getenv returns null or a
    // NUL-terminated string that stays valid until the environment entry
    // changes (the callers read it at once, during start-up).
    unsafe {
        let value = libc::getenv(name.as_ptr().cast());
        if value.is_null() {
            return None;
        }
        Some(core::ffi::CStr::from_ptr(value).to_bytes())
    }
}

/// Monotonic milliseconds (0 under Miri and loom, where time stands still).
#[inline]
pub(crate) fn monotonic_ms() -> u64 {
    #[cfg(any(miri, loom))]
    {
        0
    }
    #[cfg(not(any(miri, loom)))]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC always exists
        // on Linux (served from the vDSO, no system call).
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
    }
}

/// A token of the calling thread, never 0 and unique among live threads
/// (its `pthread_t`).
pub(crate) fn thread_token() -> usize {
    #[cfg(not(any(miri, loom)))]
    // SAFETY: `pthread_self` has no precondition.
    let t = unsafe { libc::pthread_self() } as usize;
    #[cfg(any(miri, loom))]
    let t = {
        std::thread_local! { static TOKEN: u8 = const { 0 }; }
        TOKEN.with(|t| t as *const u8 as usize)
    };
    t.max(1)
}

/// The thread-exit key: a `pthread` key whose destructor glibc runs when a
/// thread that set a value exits (never Rust's TLS destructors, which may
/// allocate). Created on first use; racing creators each make one and the
/// loser deletes its own.
#[cfg(not(any(miri, loom)))]
pub(crate) mod exit_key {
    use crate::sync::plain::{AtomicUsize, Ordering};

    /// The key plus one (0: not created yet).
    static KEY: AtomicUsize = AtomicUsize::new(0);

    /// Arranges for `destructor(value)` to run when the calling thread
    /// exits. All callers pass the same destructor (the first one wins).
    /// `false` if no key could be created.
    pub(crate) fn watch(
        value: *mut u8,
        destructor: unsafe extern "C" fn(*mut core::ffi::c_void),
    ) -> bool {
        let Some(key) = key(destructor) else {
            return false;
        };
        // SAFETY: a valid key; the value is only handed back to us.
        unsafe { libc::pthread_setspecific(key, value.cast()) == 0 }
    }

    fn key(
        destructor: unsafe extern "C" fn(*mut core::ffi::c_void),
    ) -> Option<libc::pthread_key_t> {
        // Acquire: pairs with the Release publish below (the key value is
        // all that travels, but it must be a created key).
        let k = KEY.load(Ordering::Acquire);
        if k != 0 {
            return Some((k - 1) as libc::pthread_key_t);
        }
        let mut new: libc::pthread_key_t = 0;
        // SAFETY: valid out-pointer and an `extern "C"` destructor.
        if unsafe { libc::pthread_key_create(&mut new, Some(destructor)) } != 0 {
            return None;
        }
        // Release/Acquire: publish the created key; on failure read the
        // winner's.
        match KEY.compare_exchange(0, new as usize + 1, Ordering::Release, Ordering::Acquire) {
            Ok(_) => Some(new),
            Err(theirs) => {
                // SAFETY: our key was never used.
                unsafe { libc::pthread_key_delete(new) };
                Some((theirs - 1) as libc::pthread_key_t)
            }
        }
    }
}

/// Gives the CPU to another thread (a spinning waiter's back-off).
pub fn yield_now() {
    #[cfg(not(any(miri, loom)))]
    // SAFETY: no preconditions.
    unsafe {
        libc::sched_yield();
    }
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// The calling process's id (to notice a `fork`).
#[cfg(not(any(miri, loom)))]
pub(crate) fn process_id() -> usize {
    // SAFETY: no preconditions; never fails.
    unsafe { libc::getpid() as usize }
}

/// Starts a detached thread that, forever, sleeps `every_ms` milliseconds
/// and calls `f`. The thread is a plain `pthread`: it allocates nothing
/// itself (its stack is mapped by the C library). `false` if it could not
/// be started.
#[cfg(not(any(miri, loom)))]
pub(crate) fn spawn_periodic(every_ms: usize, f: extern "C" fn()) -> bool {
    /// What the thread runs: the period and the function, packed in the
    /// thread argument (no allocation to carry them).
    static PERIODIC: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
    static PERIOD_MS: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn run(_: *mut libc::c_void) -> *mut libc::c_void {
        // Acquire: pairs with the Release stores before the thread started.
        let f = PERIODIC.load(Ordering::Acquire);
        let every = PERIOD_MS.load(Ordering::Acquire).max(1);
        // SAFETY: only an `extern "C" fn()` is stored in PERIODIC.
        let f: extern "C" fn() = unsafe { core::mem::transmute::<*mut (), extern "C" fn()>(f) };
        let pause = libc::timespec {
            tv_sec: (every / 1000) as libc::time_t,
            tv_nsec: ((every % 1000) * 1_000_000) as libc::c_long,
        };
        loop {
            // SAFETY: a valid timespec; an interrupted sleep just ends early.
            unsafe { libc::nanosleep(&pause, core::ptr::null_mut()) };
            f();
        }
    }

    // Release: the thread's Acquire loads see both.
    PERIOD_MS.store(every_ms, Ordering::Release);
    PERIODIC.store(f as *mut (), Ordering::Release);
    // SAFETY: `attr` is initialised before use and destroyed after; the
    // thread runs `run`, which needs no argument.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        if libc::pthread_attr_init(&mut attr) != 0 {
            return false;
        }
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        let mut thread: libc::pthread_t = 0;
        let rc = libc::pthread_create(&mut thread, &attr, run, core::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        rc == 0
    }
}

#[cfg(not(any(miri, loom)))]
mod imp {
    use core::ptr::NonNull;

    use memmap2::MmapOptions;

    pub(super) fn map(size: usize, align: usize) -> Option<NonNull<u8>> {
        // Over-reserve by `align - OS_PAGE` so an aligned base fits, then give
        // the slack at both ends back.
        let slack = align - super::OS_PAGE;
        let total = size.checked_add(slack)?;
        // No `no_reserve_swap()` (MAP_NORESERVE): see the module doc.
        let mapping = MmapOptions::new().len(total).map_anon().ok()?;
        let base = mapping.as_ptr() as usize;
        // We manage the mapping by address from now on; memmap2 would unmap
        // the whole of it on drop.
        core::mem::forget(mapping);
        let aligned = (base + align - 1) & !(align - 1);
        let head = aligned - base;
        let tail = total - head - size;
        // SAFETY: both ranges are page-aligned parts of the mapping we just
        // made and that nobody else knows about.
        unsafe {
            if head > 0 {
                libc::munmap(base as *mut libc::c_void, head);
            }
            if tail > 0 {
                libc::munmap((aligned + size) as *mut libc::c_void, tail);
            }
        }
        NonNull::new(aligned as *mut u8)
    }

    pub(super) unsafe fn unmap(ptr: NonNull<u8>, size: usize, _align: usize) {
        // SAFETY: the caller passes a live mapping of exactly this size.
        let rc = unsafe { libc::munmap(ptr.as_ptr().cast(), size) };
        debug_assert_eq!(rc, 0, "munmap of a homing mapping failed");
    }

    pub(super) unsafe fn grow_in_place(ptr: NonNull<u8>, old_size: usize, new_size: usize) -> bool {
        // Flags 0 (no MREMAP_MAYMOVE): the kernel extends the mapping where
        // it is or fails; the base, and so its alignment, never changes.
        // SAFETY: the caller passes a live mapping of exactly `old_size`.
        let p = unsafe { libc::mremap(ptr.as_ptr().cast(), old_size, new_size, 0) };
        p != libc::MAP_FAILED
    }

    pub(super) unsafe fn purge(ptr: NonNull<u8>, size: usize) {
        // MADV_DONTNEED on a private anonymous mapping drops the pages at once
        // and makes them read as zero: exactly the contract. (MADV_FREE would
        // be cheaper but keeps RSS until memory pressure and does not zero.)
        // SAFETY: the caller passes a page-aligned range of a live mapping.
        let rc = unsafe { libc::madvise(ptr.as_ptr().cast(), size, libc::MADV_DONTNEED) };
        debug_assert_eq!(rc, 0, "madvise(MADV_DONTNEED) failed");
    }
}

#[cfg(any(miri, loom))]
mod imp {
    //! Miri and loom cannot run `mmap`; the system allocator (never the
    //! global allocator, which may be homing itself) stands in for it.
    use core::alloc::{GlobalAlloc, Layout};
    use core::ptr::NonNull;

    extern crate std;
    use std::alloc::System;

    pub(super) fn map(size: usize, align: usize) -> Option<NonNull<u8>> {
        let layout = Layout::from_size_align(size, align).ok()?;
        // SAFETY: the layout has a non-zero size.
        NonNull::new(unsafe { System.alloc_zeroed(layout) })
    }

    pub(super) unsafe fn unmap(ptr: NonNull<u8>, size: usize, align: usize) {
        // SAFETY: `map` made this block with this very layout.
        unsafe { System.dealloc(ptr.as_ptr(), Layout::from_size_align_unchecked(size, align)) }
    }

    pub(super) unsafe fn grow_in_place(_ptr: NonNull<u8>, _old: usize, _new: usize) -> bool {
        false
    }

    pub(super) unsafe fn purge(ptr: NonNull<u8>, size: usize) {
        // SAFETY: the caller passes a range of a live block; zeroing keeps the
        // "reads as zero afterwards" promise.
        unsafe { ptr.as_ptr().write_bytes(0, size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_is_aligned_zeroed_and_writable() {
        for &align in &[OS_PAGE, 64 * 1024, 4 << 20] {
            let size = 3 * OS_PAGE;
            let p = map(size, align).expect("map");
            assert_eq!(p.as_ptr() as usize % align, 0);
            let base = p.as_ptr();
            // SAFETY: freshly mapped, `size` bytes; every access below goes
            // through the raw pointer and stays inside the mapping.
            unsafe {
                assert!((0..size).all(|i| *base.add(i) == 0));
                base.write_bytes(0xAB, size);
                purge(NonNull::new_unchecked(base.add(OS_PAGE)), OS_PAGE);
                assert_eq!(*base, 0xAB);
                assert_eq!(*base.add(OS_PAGE), 0);
                assert_eq!(*base.add(2 * OS_PAGE), 0xAB);
                unmap(p, size, align);
            }
        }
    }

    #[test]
    fn impossible_sizes_fail_cleanly() {
        assert!(map(usize::MAX & !(OS_PAGE - 1), OS_PAGE).is_none());
        assert_eq!(align_up(usize::MAX, 16), None);
    }
}
