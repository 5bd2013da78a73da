//! Memory from the OS: the contract is in the module doc of `os`.

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
    let ptr = super::errno::keeping_errno(|| imp::map(size, align))?;
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
    super::errno::keeping_errno(|| unsafe { imp::unmap(ptr, size, align) });
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
    let grown =
        super::errno::keeping_errno(|| unsafe { imp::grow_in_place(ptr, old_size, new_size) });
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
    super::errno::keeping_errno(|| unsafe { imp::purge(ptr, size) });
    // Relaxed: a statistic.
    PURGED.fetch_add(size, Ordering::Relaxed);
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
