//! `fork()` while other threads are inside homing: the child has one
//! thread, and a spin lock that another thread of the parent held at the
//! moment of the fork would stay taken in the child forever. Two locks can
//! be taken by a thread other than the one calling `fork`:
//!
//! - the lock of the cache of huge mappings (`huge::cache`), which any
//!   thread takes briefly on a huge allocation or free;
//! - the purge-queue lock of the forking thread's own heap, which the
//!   background purger may hold for a moment. (The child never touches the
//!   purge queue of another thread's heap: those heaps stay bound to threads
//!   that do not exist in the child.)
//!
//! `pthread_atfork` handlers, registered when homing is loaded, take both
//! before the fork (waiting for a holder to finish) and let them go after
//! it, in the parent and in the child, so the child inherits them free and
//! consistent. Nothing here allocates.

#[cfg(all(target_os = "linux", not(any(miri, loom))))]
mod imp {
    use crate::heap::{empty_heap, Heap};
    use crate::huge::cache::CACHE;
    use crate::sync::{AtomicPtr, Ordering};

    /// The heap whose purge lock `prepare` took (null: none), for the two
    /// other handlers, which run on the same thread.
    static LOCKED: AtomicPtr<Heap> = AtomicPtr::new(core::ptr::null_mut());

    extern "C" fn prepare() {
        CACHE.lock();
        let heap = crate::thread::current();
        if heap != empty_heap() {
            // SAFETY: heaps are never unmapped; the purge queue is shared
            // under its own lock, which we take like the purger does.
            unsafe { (*heap).purge.lock() };
            // Relaxed: read back by this same thread after the fork.
            LOCKED.store(heap, Ordering::Relaxed);
        }
    }

    extern "C" fn resume() {
        // Relaxed: written by this same thread in `prepare`.
        let heap = LOCKED.swap(core::ptr::null_mut(), Ordering::Relaxed);
        if !heap.is_null() {
            // SAFETY: the heap whose lock `prepare` took; heaps are never
            // unmapped.
            unsafe { (*heap).purge.unlock() };
        }
        CACHE.unlock();
    }

    /// Registers the handlers when the library is loaded (`.init_array`),
    /// never from an allocation: `pthread_atfork` may take glibc's locks.
    #[used]
    #[link_section = ".init_array"]
    static REGISTER_AT_LOAD: extern "C" fn() = register;

    extern "C" fn register() {
        // SAFETY: plain function pointers that live as long as the process.
        // A failure (ENOMEM) leaves forks as unprotected as they were.
        unsafe { libc::pthread_atfork(Some(prepare), Some(resume), Some(resume)) };
    }
}
