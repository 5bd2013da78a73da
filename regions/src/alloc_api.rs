//! `allocator_api2::alloc::Allocator` for `Region` (and so, through
//! allocator-api2's blanket impl, for `&Region`).
//!
//! Collections that take an allocator (`allocator_api2::vec::Vec`,
//! `hashbrown::HashMap` with its `allocator-api2` feature) can keep their
//! memory in a region, two ways:
//!
//! - **borrowed**, `Vec::new_in(&region)`: any number of collections share
//!   the region; they are tied to the borrow, and since `Region` is not
//!   `Sync`, `&Region` (so the collection) is not `Send`;
//! - **owned**, `Vec::new_in(Region::new())`: the collection owns its region
//!   and drops it whole with itself; `Region` is `Send`, so the collection
//!   is `Send` when its elements are, and can live across an `.await` in a
//!   spawned task or move to another thread. One collection per region.
//!
//! bumpalo offers only the first (`&Bump`), and its collections cannot be
//! held across an `.await` in a multi-threaded executor for the same
//! reason; a `Sync` arena would need an atomic bump on every allocation.
//! Owning the region costs nothing at allocation time and keeps the
//! single-threaded bump; what it gives up is sharing one region between
//! several owned collections (build those inside an [`Iso`](crate::Iso)
//! instead, or borrow).
//!
//! - `allocate` bumps, like [`Region::alloc_layout`].
//! - `deallocate` frees nothing, except that the most recent allocation is
//!   taken back (the bump pointer rewinds over it).
//! - `grow` and `shrink` of the most recent allocation happen in place while
//!   the chunk has room; otherwise `grow` bumps a new block and copies, and
//!   the old block waits for the region.
//!
//! Memory stays valid until it is deallocated or the region is dropped or
//! reset; the borrow `&Region` keeps the region alive (and un-reset) for as
//! long as any collection holds it, and an owned region lives as long as
//! its collection (which reaches it only through `&`), as the `Allocator`
//! contract asks. Moving a `Region` moves its handle, not its chunks, so
//! blocks stay valid when the collection (and its allocator) moves.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use allocator_api2::alloc::{AllocError, Allocator};

use crate::Region;

// SAFETY: blocks come from `Region::try_alloc_layout`, so they are valid for
// their layout until the region is dropped or reset: dropping needs the
// region itself (the allocator instance is gone then), resetting needs
// `&mut Region`, which no holder of the allocator has while a block is live;
// moving the region moves only its handle (the chunks stay); `Region` is not
// `Clone`, and every `&Region` is the same allocator; `deallocate`/`grow`/
// `shrink` only move the bump pointer over the most recent block, which the
// caller no longer uses (or keeps, resized).
unsafe impl Allocator for Region {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let p = self.try_alloc_layout(layout)?;
        Ok(NonNull::slice_from_raw_parts(p, layout.size()))
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        self.rewind(ptr, layout.size());
    }

    #[inline]
    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        debug_assert!(new_layout.size() >= old_layout.size());
        if self.resize_in_place(ptr, old_layout.size(), new_layout) {
            return Ok(NonNull::slice_from_raw_parts(ptr, new_layout.size()));
        }
        let new = self.try_alloc_layout(new_layout)?;
        // SAFETY: the caller guarantees `ptr` is a live block of
        // `old_layout.size()` bytes; `new` is a fresh, larger block, so the
        // two do not overlap.
        unsafe { ptr::copy_nonoverlapping(ptr.as_ptr(), new.as_ptr(), old_layout.size()) };
        Ok(NonNull::slice_from_raw_parts(new, new_layout.size()))
    }

    #[inline]
    unsafe fn grow_zeroed(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        let block = unsafe { self.grow(ptr, old_layout, new_layout)? };
        let start = block.cast::<u8>().as_ptr();
        // SAFETY: the block has `new_layout.size()` bytes, of which the first
        // `old_layout.size()` hold the old contents.
        unsafe {
            start
                .add(old_layout.size())
                .write_bytes(0, new_layout.size() - old_layout.size())
        };
        Ok(block)
    }

    #[inline]
    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        debug_assert!(new_layout.size() <= old_layout.size());
        if ptr.as_ptr() as usize & (new_layout.align() - 1) == 0 {
            // The block stays where it is; if it is the most recent one the
            // region takes the tail back.
            let _ = self.resize_in_place(ptr, old_layout.size(), new_layout);
            return Ok(NonNull::slice_from_raw_parts(ptr, new_layout.size()));
        }
        let new = self.try_alloc_layout(new_layout)?;
        // SAFETY: `ptr` is live for `old_layout.size() >= new_layout.size()`
        // bytes; `new` is fresh, so they do not overlap.
        unsafe { ptr::copy_nonoverlapping(ptr.as_ptr(), new.as_ptr(), new_layout.size()) };
        Ok(NonNull::slice_from_raw_parts(new, new_layout.size()))
    }
}
