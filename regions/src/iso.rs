//! `Iso`: a region with a root object, owned, moved and dropped as one.
//!
//! # Structure
//!
//! The `Region` itself, a reference count (used once the `Iso` is frozen,
//! see `frozen`) and the root value live in a **block** allocated in the
//! region's own first chunk:
//!
//! ```text
//! Iso ──► Block { region: Region, count, root: F::Of<'_> }   (inside the region)
//!            └─ region owns every chunk, the block's included
//! ```
//!
//! So an `Iso` is one pointer, and moving it to another thread moves one
//! pointer. The root's type is given by a [`Family`]: `F::Of<'r>` is the
//! root type whose references into the region carry the lifetime `'r`.
//!
//! # The brand
//!
//! [`Iso::new`] and [`Iso::with`] call a closure that must work for *every*
//! lifetime `'r` (`for<'r> FnOnce(&'r Region, …)`). Inside, `'r` is a fresh,
//! unnameable lifetime: references into the region can be stored in the
//! root (whose type mentions `'r`) but cannot be returned, stored outside,
//! or mixed with another `Iso`'s `'r`, because no outside type can name it.
//! The root is passed as `&'r mut F::Of<'r>`, which is invariant in `'r`.
//!
//! # Invariants
//!
//! - `block.region` owns the chunk holding `block`; `block.root` is
//!   initialised while an `Iso` or `Frozen` points at the block.
//! - Every reference inside the root points into `block.region` (or is
//!   `'static`): the brand makes sure of it.
//! - The root is dropped before the region, and the region is moved out of
//!   the block before being dropped (it frees the block's own memory).

use core::alloc::Layout;
use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};

use crate::sync::AtomicUsize;
use crate::Region;

/// Names a root type that borrows from its region: `Of<'r>` is the root as
/// seen while the region is borrowed for `'r`.
///
/// Implement it on a marker type, one line:
///
/// ```
/// use homing_regions::Family;
///
/// struct List<'r> { head: Option<&'r Cons<'r>> }
/// struct Cons<'r> { value: u64, tail: Option<&'r Cons<'r>> }
///
/// struct ListF;
/// impl Family for ListF { type Of<'r> = List<'r>; }
/// ```
///
/// The root must be `Send` (an [`Iso`] moves it between threads), and so must
/// every value in the region (the region's methods ask for it).
pub trait Family: 'static {
    /// The root type for a region borrowed for `'r`.
    type Of<'r>: Send;
}

/// The block an `Iso` or `Frozen` points at (see the module doc).
#[repr(C)]
pub(crate) struct Block<F: Family> {
    pub(crate) region: Region,
    /// Handles of a frozen region; 1 while it is an `Iso`.
    pub(crate) count: AtomicUsize,
    root: F::Of<'static>,
}

/// The root of `block` at a lifetime of the caller's choosing.
///
/// # Safety
///
/// `block` is live with an initialised root; the caller picks `'r` no longer
/// than the block lives and hands it only to branded (`for<'r>`) closures,
/// and respects aliasing for the `&mut`.
pub(crate) unsafe fn root_mut<'r, F: Family>(block: *mut Block<F>) -> &'r mut F::Of<'r> {
    // SAFETY: forwarded from the caller; `Of<'static>` and `Of<'r>` differ
    // only in a lifetime, so they have the same layout.
    unsafe { &mut *ptr::addr_of_mut!((*block).root).cast::<F::Of<'r>>() }
}

/// The root of `block`, shared, at a lifetime of the caller's choosing.
///
/// # Safety
///
/// As for [`root_mut`], for a shared reference.
pub(crate) unsafe fn root_ref<'r, F: Family>(block: *const Block<F>) -> &'r F::Of<'r> {
    // SAFETY: as in `root_mut`.
    unsafe { &*ptr::addr_of!((*block).root).cast::<F::Of<'r>>() }
}

/// Drops the root, then the region (which frees the block itself).
///
/// # Safety
///
/// `block` is live with an initialised root, and is never used again.
pub(crate) unsafe fn destroy<F: Family>(block: *mut Block<F>) {
    /// Drops the region even if the root's destructor unwinds.
    struct Teardown(*mut Region);
    impl Drop for Teardown {
        fn drop(&mut self) {
            // SAFETY: the region is initialised and read out exactly once; it
            // must leave the block before it frees the block's chunk.
            drop(unsafe { self.0.read() });
        }
    }
    // SAFETY: the block is live (caller); the root is dropped exactly once,
    // while the region (which it may borrow from) is still in place.
    unsafe {
        let _teardown = Teardown(ptr::addr_of_mut!((*block).region));
        ptr::drop_in_place(ptr::addr_of_mut!((*block).root));
    }
}

/// A region and its root object, owned as one: build a graph in the region,
/// then move it to another thread (one pointer), open it there, merge it
/// into another `Iso`, freeze it for sharing, or drop it whole.
///
/// # `Drop`
///
/// Dropping an `Iso` drops the root first, then the region (its drop list,
/// then its chunks); see [`Region`] for which values that drops.
///
/// # `Send`, not `Sync`
///
/// An `Iso` is `Send`: the root is `Send` ([`Family`] requires it) and so is
/// every value in the region. It is not `Sync`: opening it hands out the
/// region, which is not `Sync`.
///
/// ```
/// use homing_regions::{Family, Iso};
///
/// struct Stack<'r> { top: Option<&'r mut Node<'r>> }
/// struct Node<'r> { value: u64, below: Option<&'r mut Node<'r>> }
/// struct StackF;
/// impl Family for StackF { type Of<'r> = Stack<'r>; }
///
/// let mut iso = Iso::<StackF>::new(|region| Stack {
///     top: Some(region.alloc_no_drop(Node { value: 1, below: None })),
/// });
/// // Move it to another thread and push a node there.
/// let mut iso = std::thread::spawn(move || {
///     iso.with(|region, stack| {
///         let below = stack.top.take();
///         stack.top = Some(region.alloc_no_drop(Node { value: 2, below }));
///     });
///     iso
/// })
/// .join()
/// .unwrap();
/// assert_eq!(iso.with(|_, s| s.top.as_ref().unwrap().value), 2);
/// ```
///
/// A reference into the region cannot leave the closure:
///
/// ```compile_fail
/// use homing_regions::{Family, Iso};
/// struct RootF;
/// impl Family for RootF { type Of<'r> = &'r mut u64; }
///
/// let mut iso = Iso::<RootF>::new(|region| region.alloc_no_drop(5u64));
/// let escaped: &u64 = iso.with(|_region, root| &**root);
/// drop(iso);
/// println!("{escaped}");
/// ```
///
/// nor move from one `Iso` into another (brands do not mix; use
/// [`Iso::merge`]):
///
/// ```compile_fail
/// use homing_regions::{Family, Iso};
/// struct RootF;
/// impl Family for RootF { type Of<'r> = Option<&'r u64>; }
///
/// let mut a = Iso::<RootF>::new(|region| Some(&*region.alloc_no_drop(5u64)));
/// let mut b = Iso::<RootF>::new(|_| None);
/// a.with(|_, ra| b.with(|_, rb| *rb = *ra));
/// drop(a);
/// ```
pub struct Iso<F: Family> {
    block: NonNull<Block<F>>,
    _owns: PhantomData<F::Of<'static>>,
}

// SAFETY: the `Iso` owns its region and root exclusively; the root is `Send`
// (`Family`), every value in the region is `Send` (the region's methods),
// and every reference in the root points into the region, which moves along.
unsafe impl<F: Family> Send for Iso<F> {}

impl<F: Family> Iso<F> {
    /// Makes a region and builds its root in it with `build`.
    ///
    /// ```
    /// use homing_regions::{Family, Iso};
    /// struct WordsF;
    /// impl Family for WordsF { type Of<'r> = Vec<&'r str>; }
    ///
    /// let mut iso = Iso::<WordsF>::new(|region| vec![region.alloc_str("hi"), region.alloc_str("there")]);
    /// assert_eq!(iso.with(|_, words| words.join(" ")), "hi there");
    /// ```
    pub fn new(build: impl for<'r> FnOnce(&'r Region) -> F::Of<'r>) -> Self {
        let region = Region::new();
        let block = region
            .alloc_layout(Layout::new::<Block<F>>())
            .cast::<Block<F>>();
        let b = block.as_ptr();
        // SAFETY: fresh memory for a block, in the region's first chunk.
        // The region is moved in before `build` sees it, so every `&Region`
        // it captures points at the region's final address.
        unsafe {
            ptr::addr_of_mut!((*b).region).write(region);
            ptr::addr_of_mut!((*b).count).write(AtomicUsize::new(1));
        }

        /// Frees the region if `build` unwinds.
        struct Abandon(*mut Region);
        impl Drop for Abandon {
            fn drop(&mut self) {
                // SAFETY: the region is initialised and read out once; no
                // root exists yet.
                drop(unsafe { self.0.read() });
            }
        }
        // SAFETY: the block's region is initialised above.
        let abandon = Abandon(unsafe { ptr::addr_of_mut!((*b).region) });
        // SAFETY: the region is initialised and lives until the block is
        // destroyed; `build` is branded, so the borrow cannot escape it.
        let root = build(unsafe { &(*b).region });
        // SAFETY: the root slot is in the block; `Of<'r>` and `Of<'static>`
        // have the same layout.
        unsafe { ptr::addr_of_mut!((*b).root).cast::<F::Of<'_>>().write(root) };
        core::mem::forget(abandon);
        Iso {
            block,
            _owns: PhantomData,
        }
    }

    /// Opens the `Iso`: calls `f` with the region and the root, under a brand
    /// `'r` that cannot leave the closure. `f` may allocate in the region and
    /// link new values into the root.
    ///
    /// ```
    /// use homing_regions::{Family, Iso};
    /// struct CounterF;
    /// impl Family for CounterF { type Of<'r> = &'r mut u64; }
    ///
    /// let mut iso = Iso::<CounterF>::new(|region| region.alloc(0u64));
    /// iso.with(|_, n| **n += 1);
    /// assert_eq!(iso.with(|_, n| **n), 1);
    /// ```
    pub fn with<R>(&mut self, f: impl for<'r> FnOnce(&'r Region, &'r mut F::Of<'r>) -> R) -> R {
        let b = self.block.as_ptr();
        // SAFETY: the block is live with an initialised root; `&mut self`
        // makes this the only access; region and root are disjoint fields;
        // `f` is branded, so neither borrow outlives this call.
        unsafe { f(&(*b).region, root_mut::<F>(b)) }
    }

    /// Moves `other`'s region into this one (O(1), nothing is copied) and
    /// calls `f` with this region, this root, and `other`'s root by value,
    /// under one brand, so `f` can link the two graphs.
    ///
    /// ```
    /// use homing_regions::{Family, Iso};
    /// struct ListF;
    /// impl Family for ListF { type Of<'r> = Vec<&'r str>; }
    ///
    /// let mut a = Iso::<ListF>::new(|r| vec![r.alloc_str("a")]);
    /// let b = Iso::<ListF>::new(|r| vec![r.alloc_str("b")]);
    /// a.merge(b, |_, root, other| root.extend(other));
    /// assert_eq!(a.with(|_, root| root.concat()), "ab");
    /// ```
    pub fn merge<G: Family, R>(
        &mut self,
        other: Iso<G>,
        f: impl for<'r> FnOnce(&'r Region, &'r mut F::Of<'r>, G::Of<'r>) -> R,
    ) -> R {
        let ob = ManuallyDrop::new(other).block.as_ptr();
        let b = self.block.as_ptr();
        // SAFETY: (1) `other` is consumed and not dropped, so its root is
        // moved out exactly once. (2) Its region's chunks, the one holding
        // its block included, then move into ours: every reference in its
        // root keeps pointing at live memory, now ours. What is left of the
        // other block is an empty `Region` that owns nothing (and could
        // gain nothing, since a root is `Send` and `&Region` is not), so it
        // needs no drop. (3) As in `with`, `f` is branded.
        unsafe {
            let other_root = ptr::addr_of_mut!((*ob).root).cast::<G::Of<'_>>().read();
            let region = &(*b).region;
            region.steal(&(*ob).region);
            f(region, root_mut::<F>(b), other_root)
        }
    }

    /// Gives up the handle without dropping the region: the caller takes
    /// over its block (see `frozen`).
    pub(crate) fn into_block(self) -> NonNull<Block<F>> {
        ManuallyDrop::new(self).block
    }

    /// Builds an `Iso` back from the block of a `Frozen` that was the last
    /// handle.
    ///
    /// # Safety
    ///
    /// The caller owns `block` exclusively (count 1, no other handle).
    pub(crate) unsafe fn from_block(block: NonNull<Block<F>>) -> Self {
        Iso {
            block,
            _owns: PhantomData,
        }
    }
}

impl<F: Family> Drop for Iso<F> {
    fn drop(&mut self) {
        // SAFETY: we own the block, its root is initialised, and `self` is
        // gone after this.
        unsafe { destroy(self.block.as_ptr()) }
    }
}

impl<F: Family> fmt::Debug for Iso<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iso")
            .field("block", &self.block)
            .finish_non_exhaustive()
    }
}
