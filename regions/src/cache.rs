//! Each thread's small cache of chunks, in front of the global pool.
//!
//! A region that is created and dropped in a loop on one thread takes and
//! gives back the same few chunks; the cache serves them without an atomic
//! instruction. It is a const-initialised `thread_local!` that allocates
//! nothing; its destructor (run at thread exit) gives every cached chunk back
//! to the global pool, so an exited thread keeps nothing.
//!
//! When the thread-local is already destroyed (a region dropped by another
//! thread-local's destructor late in thread exit), chunks go straight to the
//! global pool.
//!
//! Under `cfg(loom)` there is no cache: loom models the pool itself.
//!
//! # Invariants
//!
//! - `count[c]` is the length of the list at `head[c]`, linked through the
//!   chunks' `pool_next`, and at most [`CACHE_PER_CLASS`].
//! - Only the owning thread touches the lists (they are `Cell`s in a
//!   thread-local).

use crate::chunk::Chunk;
use crate::pool::ChunkPool;

/// How many chunks of each class a thread keeps: two, so that a region that
/// grows to a class and is dropped and rebuilt finds its chunks here, while a
/// thread never parks more than about 4 MiB.
#[cfg_attr(loom, allow(dead_code))] // no cache under loom
pub(crate) const CACHE_PER_CLASS: usize = 2;

/// A chunk for a region on this thread.
#[inline]
pub(crate) fn take(class: usize) -> Option<Chunk> {
    imp::take(class).or_else(|| ChunkPool::global().take(class))
}

/// Gives a region's chunk back (huge chunks are unmapped).
#[inline]
pub(crate) fn give(chunk: Chunk) {
    if let Some(chunk) = imp::give(chunk) {
        ChunkPool::global().give(chunk);
    }
}

#[cfg(not(loom))]
mod imp {
    use core::cell::Cell;
    use core::ptr::{self, NonNull};

    use super::CACHE_PER_CLASS;
    use crate::chunk::{header_of, Chunk, CLASSES};
    use crate::pool::ChunkPool;

    struct ThreadCache {
        /// Header of the first cached chunk of each class (null if none).
        head: [Cell<*mut crate::chunk::Header>; CLASSES],
        count: [Cell<usize>; CLASSES],
    }

    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY_HEAD: Cell<*mut crate::chunk::Header> = Cell::new(ptr::null_mut());
    #[allow(clippy::declare_interior_mutable_const)]
    const ZERO: Cell<usize> = Cell::new(0);

    impl ThreadCache {
        const fn new() -> Self {
            Self {
                head: [EMPTY_HEAD; CLASSES],
                count: [ZERO; CLASSES],
            }
        }

        fn pop(&self, class: usize) -> Option<Chunk> {
            let hdr = NonNull::new(self.head[class].get())?;
            // SAFETY: the list holds chunks this thread owns (invariants).
            let chunk = unsafe { Chunk::from_raw(hdr) };
            let next = chunk.pool_next_relaxed();
            let next_hdr = if next.is_null() {
                ptr::null_mut()
            } else {
                header_of(next, chunk.size())
            };
            self.head[class].set(next_hdr);
            self.count[class].set(self.count[class].get() - 1);
            Some(chunk)
        }

        /// Keeps `chunk` if there is room, else hands it back.
        fn push(&self, chunk: Chunk) -> Option<Chunk> {
            let Some(class) = chunk.class() else {
                return Some(chunk); // huge: the pool unmaps it
            };
            if self.count[class].get() >= CACHE_PER_CLASS {
                return Some(chunk);
            }
            let next_base = NonNull::new(self.head[class].get()).map_or(ptr::null_mut(), |h| {
                // SAFETY: `h` heads our own list; we borrow the handle only to
                // read its base and give it straight back.
                let next = unsafe { Chunk::from_raw(h) };
                let base = next.base().as_ptr();
                let _ = next.into_raw();
                base
            });
            chunk.set_pool_next_relaxed(next_base);
            self.head[class].set(chunk.into_raw().as_ptr());
            self.count[class].set(self.count[class].get() + 1);
            None
        }
    }

    impl Drop for ThreadCache {
        fn drop(&mut self) {
            for class in 0..CLASSES {
                while let Some(chunk) = self.pop(class) {
                    ChunkPool::global().give(chunk);
                }
            }
        }
    }

    std::thread_local! {
        static CACHE: ThreadCache = const { ThreadCache::new() };
    }

    #[inline]
    pub(super) fn take(class: usize) -> Option<Chunk> {
        CACHE.try_with(|cache| cache.pop(class)).ok().flatten()
    }

    #[inline]
    pub(super) fn give(chunk: Chunk) -> Option<Chunk> {
        let hdr = chunk.into_raw();
        let kept = CACHE.try_with(|cache| {
            // SAFETY: `hdr` is the chunk we were given, owned by no one else.
            cache.push(unsafe { Chunk::from_raw(hdr) }).is_none()
        });
        match kept {
            Ok(true) => None,
            // SAFETY: the cache did not keep it (full, huge, or the
            // thread-local is gone), so it is still ours.
            _ => Some(unsafe { Chunk::from_raw(hdr) }),
        }
    }
}

#[cfg(loom)]
mod imp {
    use crate::chunk::Chunk;

    #[inline]
    pub(super) fn take(_class: usize) -> Option<Chunk> {
        None
    }

    #[inline]
    pub(super) fn give(chunk: Chunk) -> Option<Chunk> {
        Some(chunk)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_thread_reuses_its_chunks_and_returns_them_at_exit() {
        std::thread::spawn(|| {
            let a = take(0).unwrap();
            let base = a.base();
            give(a);
            let again = take(0).unwrap();
            assert_eq!(again.base(), base, "served by the thread's cache");
            // Fill this thread's cache; the global pool gets them at exit.
            let extra: Vec<_> = (0..CACHE_PER_CLASS).map(|_| take(2).unwrap()).collect();
            give(again);
            for c in extra {
                give(c);
            }
        })
        .join()
        .unwrap();
        // The exited thread's class-2 chunks are in the global pool now.
        let c = ChunkPool::global().take(2).unwrap();
        ChunkPool::global().give(c);
    }
}
