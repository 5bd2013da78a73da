//! `errno`: the OS layer gives it back as it found it.
//!
//! A C program's `free` must never change `errno` (POSIX), and homing's
//! frees make system calls only on their rare paths (unmapping a huge
//! block, purging pages, mapping a heap for a thread that only frees). So
//! instead of every C `free` saving and restoring `errno` around the whole
//! call (a call of `__errno_location` and two registers on the fast path),
//! each entry point of this layer that may reach the kernel does it around
//! its own calls. An allocation that fails still reports `ENOMEM`: the C
//! ABI sets it when the allocator returns null.

/// Runs `f`, which calls the C library, and puts the calling thread's
/// `errno` back as it was.
#[inline]
pub(crate) fn keeping_errno<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(not(any(miri, loom)))]
    {
        // SAFETY: `__errno_location` returns the calling thread's errno
        // slot, valid for as long as the thread runs and used by it alone.
        unsafe {
            let slot = libc::__errno_location();
            let saved = *slot;
            let r = f();
            *slot = saved;
            r
        }
    }
    // Miri and loom run no system call here (the system allocator stands
    // in for `mmap`; no thread key, no thread).
    #[cfg(any(miri, loom))]
    f()
}
