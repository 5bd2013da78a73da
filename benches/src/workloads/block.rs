//! [`Block`]: one heap allocation made by a workload, freed on drop.
//!
//! Workloads allocate through the global allocator with `std::alloc` (so the
//! `#[global_allocator]` of the running `wl-*` binary serves every request),
//! and they move blocks between threads. A `Block` keeps its size beside the
//! pointer, so whichever thread drops it can rebuild the layout, and it
//! touches its first and last byte when made, so the allocator's memory is
//! really used (and counted in the peak RSS).

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Alignment of every workload block: one machine word, what C's `malloc`
/// callers and most Rust types need.
pub const BLOCK_ALIGN: usize = std::mem::align_of::<usize>();

/// The byte written into a new block's first and last byte.
const STAMP: u8 = 0xA5;

/// One live allocation of `size` bytes; dropping it frees it (on whichever
/// thread drops it).
///
/// ```
/// use homing_bench::workloads::Block;
///
/// let mut block = Block::new(48);
/// assert_eq!(block.size(), 48);
/// block.scribble(7);
/// let moved = std::thread::spawn(move || block.size()).join().unwrap();
/// assert_eq!(moved, 48);
/// ```
#[derive(Debug)]
pub struct Block {
    ptr: NonNull<u8>,
    size: usize,
}

// SAFETY: a `Block` is the only handle to its memory, and the global
// allocator accepts a free from any thread; moving the handle moves
// ownership.
unsafe impl Send for Block {}

impl Block {
    /// Allocates `size` bytes (at least one) through the global allocator and
    /// stamps the first and last byte. Aborts through
    /// [`alloc::handle_alloc_error`] if the allocator fails.
    #[inline]
    pub fn new(size: usize) -> Self {
        let size = size.max(1);
        let layout = Self::layout(size);
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        // SAFETY: the allocation is `size >= 1` bytes long and ours; both
        // offsets are inside it.
        unsafe {
            ptr.as_ptr().write(STAMP);
            ptr.as_ptr().add(size - 1).write(STAMP);
        }
        Self { ptr, size }
    }

    /// The block's size in bytes.
    #[inline]
    pub fn size(&self) -> usize {
        self.size
    }

    /// Writes `value` into every byte of the block with volatile stores (so
    /// the compiler keeps every write, as a real program's would land).
    #[inline]
    pub fn scribble(&mut self, value: u8) {
        for i in 0..self.size {
            // SAFETY: `i < size`, inside our live allocation.
            unsafe { self.ptr.as_ptr().add(i).write_volatile(value) };
        }
    }

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, BLOCK_ALIGN).expect("workload sizes are far below isize::MAX")
    }
}

impl Drop for Block {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `ptr` was allocated by the global allocator with exactly
        // this layout, and this handle is its only owner.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.size)) };
    }
}
