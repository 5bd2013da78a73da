//! The global chunk pool: where region memory lives between regions.
//!
//! Region memory never belongs to a thread heap. A region takes chunks from
//! here (through its thread's small cache, see `cache`) and gives them back
//! when it is dropped or reset, on whatever thread that happens: no message
//! to any other thread is ever needed.
//!
//! # Structure
//!
//! For each class, two lock-free tagged Treiber stacks (`stack`):
//!
//! - **hot**: chunks whose pages are still resident, reused first;
//! - **cold**: chunks whose body was purged (`MADV_DONTNEED`): they keep
//!   their address range and one resident OS page (the header's), and fault
//!   their pages back in when reused.
//!
//! A chunk given back goes to the hot stack while the hot stacks hold less
//! than the pool's hot limit ([`HOT_LIMIT`] for the global pool), to the cold
//! stack, purged, past it. So the RSS the pool holds is bounded by the limit
//! plus one OS page per cold chunk, whatever the regions did.
//!
//! Chunks are never unmapped while the pool is alive (a losing popper may
//! still read a popped chunk's header; see `stack`). The address space the
//! pool keeps is therefore the peak of region memory that was live at once.
//!
//! # Invariants
//!
//! - `hot_bytes >= bytes of the chunks in the hot stacks` (it is raised before
//!   a push and lowered after a pop), and `hot_bytes` exceeds the limit by at
//!   most one chunk per concurrent `give`.
//! - Huge chunks never enter the pool.

use crate::chunk::{class_size, Chunk, CLASSES};
use crate::stack::TaggedStack;
use crate::sync::{AtomicUsize, Ordering};

/// Resident bytes the global pool keeps ready for reuse: 32 MiB. Enough that
/// building and dropping a million-node tree (about 24 MiB of chunks) in a
/// loop never purges, so the next build finds warm pages; small enough that
/// a process that drops all its regions returns to within a few tens of MiB
/// of where it started.
pub const HOT_LIMIT: usize = 32 * 1024 * 1024;

/// A snapshot of a pool's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Bytes of resident chunks in the hot stacks (an upper bound while
    /// other threads are pushing or popping).
    pub hot_bytes: usize,
    /// Chunks mapped from the OS so far.
    pub mapped_chunks: usize,
    /// Chunks purged so far.
    pub purged_chunks: usize,
}

/// A lock-free pool of chunks, by class.
///
/// Use [`ChunkPool::global`] (regions do); separate pools exist for tests and
/// models.
///
/// ```
/// use homing_regions::pool::ChunkPool;
///
/// let pool = ChunkPool::global();
/// let chunk = pool.take(0).expect("out of memory");
/// assert!(chunk.payload() > 60 * 1024);
/// pool.give(chunk);
/// ```
pub struct ChunkPool {
    hot: [TaggedStack; CLASSES],
    cold: [TaggedStack; CLASSES],
    /// See the module's invariants.
    hot_bytes: AtomicUsize,
    hot_limit: usize,
    mapped_chunks: AtomicUsize,
    purged_chunks: AtomicUsize,
}

macro_rules! stacks {
    () => {
        [
            TaggedStack::new(class_size(0)),
            TaggedStack::new(class_size(1)),
            TaggedStack::new(class_size(2)),
            TaggedStack::new(class_size(3)),
            TaggedStack::new(class_size(4)),
        ]
    };
}
const _: () = assert!(CLASSES == 5, "update `stacks!` with the class count");

#[cfg(not(loom))]
static GLOBAL: ChunkPool = ChunkPool::new(HOT_LIMIT);

/// Registers the global pool's [`ChunkPool::purge_hot`] with homing's
/// memory-pressure hooks, once (a relaxed flag: registering twice is
/// harmless, `on_memory_pressure` keeps one copy).
fn register_pressure_hook() {
    #[cfg(not(loom))]
    {
        static REGISTERED: AtomicUsize = AtomicUsize::new(0);
        // Relaxed: a once-flag guarding an idempotent call.
        if REGISTERED.load(Ordering::Relaxed) == 0 {
            REGISTERED.store(1, Ordering::Relaxed);
            homing::os::on_memory_pressure(purge_global_hot);
        }
    }
}

/// The pressure hook: purges the global pool's hot chunks.
#[cfg(not(loom))]
fn purge_global_hot() {
    let _ = GLOBAL.purge_hot();
}

#[cfg(loom)]
loom::lazy_static! {
    static ref GLOBAL: ChunkPool = ChunkPool::new(HOT_LIMIT);
}

impl ChunkPool {
    homing_deferred::const_fn_unless_loom! {
        /// An empty pool that keeps at most about `hot_limit` resident bytes.
        pub fn new(hot_limit: usize) -> Self {
            Self {
                hot: stacks!(),
                cold: stacks!(),
                hot_bytes: AtomicUsize::new(0),
                hot_limit,
                mapped_chunks: AtomicUsize::new(0),
                purged_chunks: AtomicUsize::new(0),
            }
        }
    }

    /// The process-wide pool that regions use.
    pub fn global() -> &'static ChunkPool {
        &GLOBAL
    }

    /// A chunk of class `class` (`0..CLASSES`): a hot one if there is one,
    /// else a cold one, else a fresh mapping. `None` only if the OS refuses.
    ///
    /// # Panics
    ///
    /// If `class >= CLASSES`.
    pub fn take(&self, class: usize) -> Option<Chunk> {
        register_pressure_hook();
        if let Some(chunk) = self.hot[class].pop() {
            // Relaxed: a heuristic counter; lowered after the pop so it never
            // underflows (see the invariants).
            self.hot_bytes.fetch_sub(chunk.size(), Ordering::Relaxed);
            return Some(chunk);
        }
        if let Some(chunk) = self.cold[class].pop() {
            return Some(chunk);
        }
        let chunk = Chunk::map_class(class)?;
        // Relaxed: a statistic.
        self.mapped_chunks.fetch_add(1, Ordering::Relaxed);
        Some(chunk)
    }

    /// Takes `chunk` back. A huge chunk is unmapped at once, a small one
    /// freed to the global allocator.
    pub fn give(&self, mut chunk: Chunk) {
        let Some(class) = chunk.class() else {
            // SAFETY: we own the huge or small chunk and it never was in a
            // pool.
            unsafe { chunk.unmap() };
            return;
        };
        let size = chunk.size();
        // Relaxed: a heuristic bound, raised before the push so that it
        // stays an upper bound; the chunk itself is published by the push.
        let before = self.hot_bytes.fetch_add(size, Ordering::Relaxed);
        if before + size <= self.hot_limit {
            self.hot[class].push(chunk);
        } else {
            // Relaxed: undoes our own raise above.
            self.hot_bytes.fetch_sub(size, Ordering::Relaxed);
            chunk.purge_body();
            // Relaxed: a statistic.
            self.purged_chunks.fetch_add(1, Ordering::Relaxed);
            self.cold[class].push(chunk);
        }
    }

    /// Purges every hot chunk and moves it to the cold stacks: their
    /// physical memory goes back to the OS at once. Safe while other
    /// threads take and give chunks: a chunk is purged only by the thread
    /// that popped it, and stays mapped (a chunk is never unmapped while
    /// other threads may still read its header in a pop). Returns the
    /// bytes purged.
    ///
    /// homing calls it on the global pool when the OS refuses memory (see
    /// `homing::os::on_memory_pressure`); it gives back RSS, not address
    /// space.
    ///
    /// ```
    /// use homing_regions::pool::ChunkPool;
    ///
    /// let pool = ChunkPool::new(1 << 30);
    /// pool.give(pool.take(0).unwrap());
    /// assert!(pool.stats().hot_bytes > 0);
    /// assert!(pool.purge_hot() > 0);
    /// assert_eq!(pool.stats().hot_bytes, 0);
    /// ```
    pub fn purge_hot(&self) -> usize {
        let mut purged = 0;
        for class in 0..CLASSES {
            while let Some(mut chunk) = self.hot[class].pop() {
                // Relaxed: a heuristic counter, lowered after the pop (see
                // `take`).
                self.hot_bytes.fetch_sub(chunk.size(), Ordering::Relaxed);
                purged += chunk.size();
                chunk.purge_body();
                // Relaxed: a statistic.
                self.purged_chunks.fetch_add(1, Ordering::Relaxed);
                self.cold[class].push(chunk);
            }
        }
        purged
    }

    /// The pool's counters.
    pub fn stats(&self) -> PoolStats {
        // Relaxed: statistics; no memory is read through them.
        PoolStats {
            hot_bytes: self.hot_bytes.load(Ordering::Relaxed),
            mapped_chunks: self.mapped_chunks.load(Ordering::Relaxed),
            purged_chunks: self.purged_chunks.load(Ordering::Relaxed),
        }
    }
}

impl Drop for ChunkPool {
    fn drop(&mut self) {
        // `&mut self`: no thread can be popping any more, so unmapping is safe.
        for stack in self.hot.iter().chain(self.cold.iter()) {
            while let Some(chunk) = stack.pop() {
                // SAFETY: the chunk is ours and no popper can read its header
                // any more (we hold the pool exclusively).
                unsafe { chunk.unmap() };
            }
        }
    }
}

impl core::fmt::Debug for ChunkPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChunkPool")
            .field("hot_limit", &self.hot_limit)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use homing::os::OS_PAGE;

    use super::*;
    use crate::chunk::MAX_CHUNK;

    #[test]
    fn hot_until_the_limit_then_purged() {
        let pool = ChunkPool::new(class_size(1));
        let a = pool.take(1).unwrap();
        let b = pool.take(1).unwrap();
        assert_eq!(pool.stats().mapped_chunks, 2);
        // SAFETY: (test) the payload is ours; write a mark to see the purge.
        unsafe {
            a.base().as_ptr().write(0xAA);
            b.base().as_ptr().write(0xBB);
        }
        pool.give(a);
        pool.give(b); // over the limit: purged, cold
        let s = pool.stats();
        assert_eq!((s.hot_bytes, s.purged_chunks), (class_size(1), 1));
        // Hot first (contents kept), then cold (reads as zero).
        let hot = pool.take(1).unwrap();
        let cold = pool.take(1).unwrap();
        // SAFETY: (test) payloads of chunks we hold.
        unsafe {
            assert_eq!(*hot.base().as_ptr(), 0xAA);
            assert_eq!(*cold.base().as_ptr(), 0);
            // The header page survived the purge.
            assert_eq!(cold.size(), class_size(1));
            assert!(cold.payload() > class_size(1) - OS_PAGE);
        }
        assert_eq!(pool.stats().mapped_chunks, 2, "reused, not mapped");
        pool.give(hot);
        pool.give(cold);
    }

    #[test]
    fn huge_chunks_are_unmapped_not_pooled() {
        let pool = ChunkPool::new(usize::MAX);
        let huge = Chunk::map_huge(3 * MAX_CHUNK, 8).unwrap();
        assert_eq!(huge.class(), None);
        pool.give(huge);
        assert_eq!(pool.stats().hot_bytes, 0);
    }
}
