//! First-class heaps for embedding: [`Heap`].
//!
//! A `Heap` is a heap like a thread's, owned by the thread that created it
//! (it is neither `Send` nor `Sync`). Its blocks may be freed from any thread
//! with [`crate::free`] (or by the global allocator's `dealloc`): a free from
//! another thread is posted to the heap's inbox at once (not batched, so no
//! block of a heap can wait in some thread's outbox when the heap goes away)
//! and the owner takes it back in its own context: at its next allocation
//! slow path or [`Heap::collect`]. [`Heap::destroy`] (or drop) releases
//! every block the heap still holds at once, with no per-block work.

use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator};

use crate::heap::{self, FREE};
use crate::segment;
use crate::size_class;
use crate::sync::Ordering;
use crate::thread;

/// A first-class heap: allocate from it on its owner thread, free its blocks
/// from any thread, destroy it whole.
///
/// ```
/// use allocator_api2::vec::Vec;
///
/// let heap = homing::Heap::new();
/// let mut v = Vec::new_in(&heap);
/// v.extend(0..1000u64);
/// assert_eq!(v[999], 999);
/// drop(v);
/// heap.destroy(); // releases whatever is left at once
/// ```
pub struct Heap {
    raw: NonNull<heap::Heap>,
    /// Owner-thread only: not `Send`, not `Sync`.
    _owner: PhantomData<*mut ()>,
}

impl Heap {
    /// A new heap. Panics if the OS has no memory even for its header (use
    /// [`Heap::try_new`] to get `None` instead).
    ///
    /// ```
    /// use allocator_api2::boxed::Box;
    ///
    /// let heap = homing::Heap::new();
    /// let answer = Box::new_in(42u32, &heap); // `&Heap` is an `Allocator`
    /// assert_eq!(*answer, 42);
    /// ```
    pub fn new() -> Heap {
        Self::try_new().expect("homing: out of memory creating a heap")
    }

    /// A new heap, or `None` if the OS has no memory for it.
    ///
    /// ```
    /// let Some(heap) = homing::Heap::try_new() else {
    ///     return; // out of memory: carry on without a heap
    /// };
    /// heap.collect();
    /// ```
    pub fn try_new() -> Option<Heap> {
        let raw = thread::acquire(false)?;
        Some(Heap {
            raw: NonNull::new(raw)?,
            _owner: PhantomData,
        })
    }

    /// Allocates a block for `layout`, or `None` when out of memory.
    /// A zero-size layout gets a real (minimum-size) block.
    ///
    /// ```
    /// use std::alloc::Layout;
    ///
    /// let heap = homing::Heap::new();
    /// let p = heap.alloc(Layout::from_size_align(48, 16).unwrap()).unwrap();
    /// assert_eq!(p.as_ptr() as usize % 16, 0);
    /// // SAFETY: a live block of `heap`, given up here.
    /// unsafe { heap.dealloc(p) };
    /// ```
    pub fn alloc(&self, layout: Layout) -> Option<NonNull<u8>> {
        let raw = self.raw.as_ptr();
        // SAFETY: we own the heap (owner thread: `Heap` is !Send).
        let mut p = unsafe { heap::Heap::alloc_sized(raw, layout.size(), layout.align()) };
        if p.is_null() {
            // The OS refused memory: give back what this heap, the calling
            // thread's heap and the process hold, and try once more.
            // SAFETY: we own this heap, and the thread's heap is ours.
            unsafe {
                heap::Heap::collect(raw, true);
                thread::release_held(thread::current());
                p = heap::Heap::alloc_sized(raw, layout.size(), layout.align());
            }
        }
        let p = NonNull::new(p)?;
        #[cfg(feature = "checked")]
        // SAFETY: a fresh block of at least 16 bytes, ours.
        unsafe {
            crate::checked::clear_mark(p.as_ptr())
        };
        Some(p)
    }

    /// Like [`Heap::alloc`], zeroed.
    ///
    /// ```
    /// use std::alloc::Layout;
    ///
    /// let heap = homing::Heap::new();
    /// let p = heap.alloc_zeroed(Layout::array::<u64>(100).unwrap()).unwrap();
    /// // SAFETY: the block holds 100 zeroed `u64`s.
    /// let words = unsafe { std::slice::from_raw_parts(p.as_ptr().cast::<u64>(), 100) };
    /// assert!(words.iter().all(|&w| w == 0));
    /// heap.destroy(); // frees the block too
    /// ```
    pub fn alloc_zeroed(&self, layout: Layout) -> Option<NonNull<u8>> {
        let p = self.alloc(layout)?;
        if size_class::class_for(layout.size(), layout.align()).is_some() {
            // SAFETY: the block holds at least `layout.size()` bytes.
            unsafe { p.as_ptr().write_bytes(0, layout.size()) };
        }
        Some(p)
    }

    /// Frees a block of this heap on the owner thread (no atomic operation).
    /// Blocks of other heaps are passed to [`crate::free`].
    ///
    /// ```
    /// use std::alloc::Layout;
    ///
    /// let heap = homing::Heap::new();
    /// let mine = heap.alloc(Layout::new::<[u8; 32]>()).unwrap();
    /// let global = std::ptr::NonNull::new(homing::alloc(32, 8)).unwrap();
    /// // SAFETY: both are live homing blocks, given up here.
    /// unsafe {
    ///     heap.dealloc(mine); // this heap's: freed in place
    ///     heap.dealloc(global); // another heap's: goes to `homing::free`
    /// }
    /// ```
    ///
    /// # Safety
    ///
    /// `p` is a live block from homing that the caller gives up.
    pub unsafe fn dealloc(&self, p: NonNull<u8>) {
        // SAFETY: `p` is a live homing block, so its header is live.
        unsafe {
            let seg = segment::segment_of(p.as_ptr());
            if (*seg).heap == self.raw.as_ptr() {
                #[cfg(feature = "checked")]
                crate::checked::check_free(p.as_ptr());
                heap::Heap::free_owned(self.raw.as_ptr(), p.as_ptr());
            } else {
                crate::free(p.as_ptr());
            }
        }
    }

    /// Takes back blocks freed by other threads, returns empty pages and
    /// purges free memory.
    ///
    /// ```
    /// use std::alloc::Layout;
    ///
    /// let heap = homing::Heap::new();
    /// let p = heap.alloc(Layout::new::<u64>()).unwrap().as_ptr() as usize;
    /// // SAFETY (in the thread): a live homing block, given up there.
    /// std::thread::spawn(move || unsafe { homing::free(p as *mut u8) })
    ///     .join()
    ///     .unwrap();
    /// heap.collect(); // takes the block back from the heap's inbox
    /// ```
    pub fn collect(&self) {
        // SAFETY: we own the heap.
        unsafe { heap::Heap::collect(self.raw.as_ptr(), true) };
    }

    /// Releases every block the heap still holds, at once, and the heap
    /// itself. Equivalent to dropping it.
    ///
    /// ```
    /// use std::alloc::Layout;
    ///
    /// let heap = homing::Heap::new();
    /// for _ in 0..1000 {
    ///     heap.alloc(Layout::new::<[u8; 100]>()).unwrap(); // never freed one by one
    /// }
    /// heap.destroy(); // all 1000 blocks go at once
    /// ```
    pub fn destroy(self) {
        drop(self);
    }
}

impl Default for Heap {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        let raw = self.raw.as_ptr();
        // SAFETY: we own the heap; no borrow of it is alive (we are in its
        // drop), so no `Allocator`-made value still uses its blocks, and any
        // other outstanding block may not be used after the heap goes (the
        // `destroy` contract).
        unsafe {
            heap::Heap::release_all(raw);
            // Release: the next taker (Acquire in `acquire`) sees the heap reset.
            (*raw).state.store(FREE, Ordering::Release);
        }
    }
}

impl core::fmt::Debug for Heap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Heap").field("at", &self.raw).finish()
    }
}

// SAFETY: blocks are valid for their layout until deallocated or the heap
// is dropped, which a borrow `&Heap` prevents while values use them;
// `deallocate` accepts exactly the blocks `allocate` returned.
unsafe impl Allocator for &Heap {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let p = Heap::alloc(self, layout).ok_or(AllocError)?;
        // SAFETY: a live block of ours.
        let usable = unsafe { crate::usable_size(p.as_ptr()) };
        Ok(NonNull::slice_from_raw_parts(p, usable))
    }

    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let p = Heap::alloc_zeroed(self, layout).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(p, layout.size()))
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, _layout: Layout) {
        // SAFETY: the Allocator contract: `ptr` came from `allocate`.
        unsafe { Heap::dealloc(self, ptr) }
    }
}
