//! `Frozen`: a region turned read-only and shared by counted handles.
//!
//! One atomic count, in the region's block (see `iso`), counts the handles
//! for the whole region: cloning or dropping a handle touches that one word,
//! never a per-object count. The last handle to go, on whatever thread,
//! drops the root and the region.
//!
//! # Why the root must be `Sync` (and `Send`)
//!
//! Handles on several threads read the root through `&F::Of<'r>` at once:
//! that is exactly what `Sync` allows, so [`Iso::freeze`] requires
//! `F::Of<'r>: Sync` for every `'r`. Everything the readers can reach is
//! reached through the root, so the root's `Sync` covers it (`&'r Node` is
//! `Sync` only if `Node` is). Values in the region that the root does not
//! reach are never read while frozen; they are dropped by the last handle on
//! its thread, which their `Send` allows; the root is dropped there too,
//! which its `Send` ([`Family`]) allows. The region itself is never handed
//! out while frozen: nothing can allocate in it any more.
//!
//! # Invariants
//!
//! - `count` = number of live `Frozen` handles for the block, `>= 1`.
//! - The block is destroyed exactly once, by the handle that moved the count
//!   from 1 to 0.

use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

use crate::iso::{destroy, root_ref, Block, Family, Iso};
use crate::sync::{fence, Ordering};

/// Handles beyond this many abort the process, as `Arc` does: a count that
/// wrapped would free the region under live handles.
const MAX_HANDLES: usize = isize::MAX as usize;

/// A frozen, shared, read-only region with its root (made by
/// [`Iso::freeze`]).
///
/// `Frozen<F>` is `Send + Sync + Clone`: clones are handles to the same
/// region, counted by one atomic for the whole region. The root and region
/// are dropped when the last handle is dropped, on that handle's thread.
///
/// ```
/// use homing_regions::{Family, Iso};
/// struct NameF;
/// impl Family for NameF { type Of<'r> = &'r str; }
///
/// let frozen = Iso::<NameF>::new(|r| &*r.alloc_str("shared")).freeze();
/// let handles: Vec<_> = (0..4)
///     .map(|_| {
///         let f = frozen.clone();
///         std::thread::spawn(move || f.with(|s| s.len()))
///     })
///     .collect();
/// for h in handles {
///     assert_eq!(h.join().unwrap(), 6);
/// }
/// ```
///
/// A root that is not `Sync` cannot be frozen:
///
/// ```compile_fail
/// use homing_regions::{Family, Iso};
/// use std::cell::Cell;
/// struct CellF;
/// impl Family for CellF { type Of<'r> = Cell<u32>; }
///
/// let frozen = Iso::<CellF>::new(|_| Cell::new(1)).freeze();
/// ```
pub struct Frozen<F: Family> {
    block: NonNull<Block<F>>,
    _owns: PhantomData<F::Of<'static>>,
}

// SAFETY: a `Frozen` can only be made by `Iso::freeze`, which requires the
// root to be `Sync` for every `'r`; the root is `Send` (`Family`) and so is
// every value in the region; readers get only `&root`. See the module doc.
unsafe impl<F: Family> Send for Frozen<F> {}
// SAFETY: as for `Send`: `&Frozen` only allows `with` (shared reads of a
// `Sync` root) and `clone` (an atomic increment).
unsafe impl<F: Family> Sync for Frozen<F> {}

impl<F: Family> Frozen<F> {
    /// Takes over an `Iso`'s block as the first handle.
    ///
    /// # Safety
    ///
    /// `block` is live, its root initialised and `Sync` for every `'r`, its
    /// count 1, and the caller gives up its ownership.
    pub(crate) unsafe fn from_block(block: NonNull<Block<F>>) -> Self {
        Frozen {
            block,
            _owns: PhantomData,
        }
    }

    fn block(&self) -> &Block<F> {
        // SAFETY: the block lives while any handle does (count >= 1).
        unsafe { self.block.as_ref() }
    }

    /// Reads the root under a brand `'r` that cannot leave the closure.
    ///
    /// ```
    /// use homing_regions::{Family, Iso};
    /// struct NumF;
    /// impl Family for NumF { type Of<'r> = &'r u64; }
    ///
    /// let frozen = Iso::<NumF>::new(|r| &*r.alloc(7u64)).freeze();
    /// assert_eq!(frozen.with(|n| **n), 7);
    /// ```
    pub fn with<R>(&self, f: impl for<'r> FnOnce(&'r F::Of<'r>) -> R) -> R {
        // SAFETY: the block lives while `self` does; only shared references
        // to the root exist while frozen (no handle gives out `&mut`); `f`
        // is branded, so the borrow ends with the call.
        f(unsafe { root_ref::<F>(self.block.as_ptr()) })
    }

    /// Number of handles to this region now (other threads may change it
    /// at any time).
    ///
    /// ```
    /// use homing_regions::{Family, Iso};
    /// struct UnitF;
    /// impl Family for UnitF { type Of<'r> = (); }
    ///
    /// let a = Iso::<UnitF>::new(|_| ()).freeze();
    /// let b = a.clone();
    /// assert_eq!(a.handles(), 2);
    /// drop(b);
    /// assert_eq!(a.handles(), 1);
    /// ```
    pub fn handles(&self) -> usize {
        // Relaxed: a snapshot for statistics; nothing is read through it.
        self.block().count.load(Ordering::Relaxed)
    }

    /// Gets the `Iso` back if this is the only handle, so the region can be
    /// changed again; otherwise gives the handle back.
    ///
    /// ```
    /// use homing_regions::{Family, Iso};
    /// struct NumF;
    /// impl Family for NumF { type Of<'r> = &'r mut u64; }
    ///
    /// let frozen = Iso::<NumF>::new(|r| r.alloc(1u64)).freeze();
    /// let mut iso = frozen.try_thaw().expect("only handle");
    /// iso.with(|_, n| **n += 1);
    /// ```
    pub fn try_thaw(self) -> Result<Iso<F>, Self> {
        // Acquire: if the count is 1, every other handle has been dropped
        // (with a Release decrement); this pairs with those so that their
        // reads of the root happen before our writes through the `Iso`.
        if self.block().count.load(Ordering::Acquire) == 1 {
            let block = ManuallyDrop::new(self).block;
            // SAFETY: count 1 and we hold the one handle, so nobody else can
            // reach the block (a clone would need our handle).
            Ok(unsafe { Iso::from_block(block) })
        } else {
            Err(self)
        }
    }
}

impl<F: Family> Clone for Frozen<F> {
    fn clone(&self) -> Self {
        // Relaxed: a new handle is made from a live one, so the block cannot
        // be freed meanwhile; the handle reaches another thread through some
        // synchronising hand-off (spawn, a channel), which publishes it.
        let old = self.block().count.fetch_add(1, Ordering::Relaxed);
        if old > MAX_HANDLES {
            std::process::abort();
        }
        Frozen {
            block: self.block,
            _owns: PhantomData,
        }
    }
}

impl<F: Family> Drop for Frozen<F> {
    fn drop(&mut self) {
        // Release: our reads of the root happen before the decrement, so
        // before the teardown by whichever handle goes last.
        if self.block().count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Acquire: pairs with every other handle's Release decrement, so
        // all their reads happen before we drop the root and region.
        fence(Ordering::Acquire);
        // SAFETY: the count went from 1 to 0: we are the last handle and the
        // block is live with its root; nobody uses it after this.
        unsafe { destroy(self.block.as_ptr()) }
    }
}

impl<F: Family> fmt::Debug for Frozen<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frozen")
            .field("handles", &self.handles())
            .finish_non_exhaustive()
    }
}

impl<F: Family> Iso<F> {
    /// Turns the region read-only and shareable: see [`Frozen`]. The root
    /// must be `Sync`, because every handle can read it at once.
    ///
    /// ```
    /// use homing_regions::{Family, Iso};
    /// struct NumsF;
    /// impl Family for NumsF { type Of<'r> = &'r [u32]; }
    ///
    /// let frozen = Iso::<NumsF>::new(|r| &*r.alloc_slice_copy(&[1, 2, 3])).freeze();
    /// let other = frozen.clone();
    /// let sum = std::thread::spawn(move || other.with(|n| n.iter().sum::<u32>())).join().unwrap();
    /// assert_eq!(sum, 6);
    /// ```
    pub fn freeze(self) -> Frozen<F>
    where
        for<'r> F::Of<'r>: Sync,
    {
        let block = self.into_block();
        // SAFETY: the block is live with an initialised root, its count is 1
        // (set by `new`, never changed by an `Iso`), and ownership passes to
        // the one `Frozen` handle; the bound above is what `Frozen` needs.
        unsafe { Frozen::from_block(block) }
    }
}
