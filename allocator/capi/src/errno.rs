//! The calling thread's C `errno`.
//!
//! `errno` lives in the C library's thread-local storage; `libc`'s
//! `__errno_location` gives its address (always valid for the calling
//! thread, never allocating). The C contract this crate keeps:
//!
//! - an allocation that fails sets `errno` to `ENOMEM` (or `EINVAL` for an
//!   alignment that is not a power of two);
//! - `free` and its relatives never change `errno` (POSIX.1-2024: "The
//!   free() function shall not modify errno"). The malloc family's calls
//!   save nothing: below homing's allocation and free paths only the OS
//!   layer makes system calls, and it gives `errno` back as it found it
//!   around each of them (`homing::os`, module `errno`), so `free`'s fast
//!   path does no `errno` work at all. The colder calls that do more (the
//!   heap and region API, statistics printed to standard error) save and
//!   restore it with [`preserve`].

use core::ffi::c_int;

/// `ENOMEM`: out of memory, or a size no allocation can have.
pub(crate) const ENOMEM: c_int = libc::ENOMEM;
/// `EINVAL`: an alignment that is not a power of two (or, for
/// `posix_memalign`, not a multiple of `sizeof(void *)`).
pub(crate) const EINVAL: c_int = libc::EINVAL;

/// The calling thread's `errno` (the unit tests read it; the C functions
/// only set or preserve it).
#[cfg(test)]
pub(crate) fn get() -> c_int {
    // SAFETY: `__errno_location` returns the calling thread's errno slot,
    // valid for as long as the thread runs.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's `errno` to `value`.
#[inline]
pub(crate) fn set(value: c_int) {
    // SAFETY: as in `get`; the slot belongs to this thread only.
    unsafe { *libc::__errno_location() = value }
}

/// Runs `f` and puts `errno` back as it was before: for the colder calls
/// that must not change it. (One call of `__errno_location`: the slot's
/// address is fixed for the thread.)
#[inline(always)]
pub(crate) fn preserve<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: as in `get`.
    let slot = unsafe { libc::__errno_location() };
    // SAFETY: the calling thread's errno slot, valid while it runs.
    let saved = unsafe { *slot };
    let r = f();
    // SAFETY: as above.
    unsafe { *slot = saved };
    r
}
