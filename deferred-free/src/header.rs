//! The counting protocol of a `Shared` object (biased reference counting),
//! on its type-erased header.
//!
//! # Glossary
//!
//! - **Owner**: the record of the thread that created the object while the
//!   object is *biased*; null once it is *merged*. A biased object is on
//!   its owner's biased list (`record`).
//! - **Local count** (`local`): handles counted by the owner, with plain
//!   loads and stores; only the owner touches it.
//! - **Shared word** (`shared`): `count << 1 | MERGED`, an atomic. `count`
//!   (signed) counts what other threads did: +1 per clone there, −1 per
//!   drop there, including drops of handles the owner counted, which is how
//!   it goes negative.
//! - **MERGED**: the local count has been folded into `count`; from then on
//!   every thread, the owner too, counts on the atomic, and `count` is the
//!   number of live handles.
//!
//! # Invariants
//!
//! - Between operations, `live handles == local + count` while biased, and
//!   `== count` once merged.
//! - While biased, `local >= 1` (the owner's drop that takes it to zero
//!   merges). So a biased object with no handle left has `count == -local
//!   < 0`, and a biased object with `count >= 0` is alive.
//! - A foreign drop is one `fetch_sub`. If it leaves a biased object's
//!   `count` negative, it *signals* the owner's record (touching the
//!   record only: records are never freed, so this is safe even if the
//!   object is gone by then); the owner's next sweep merges every object of
//!   its list whose count is negative, and frees those left at zero.
//! - An object is freed exactly once, by the thread whose read-modify-write
//!   of `shared` left it `MERGED` with `count == 0`: a foreign drop of a
//!   merged object, the owner's drop of its last local handle, or the
//!   owner's merge. While an object is biased no foreign operation frees
//!   it, and the owner merges only on its own thread; so a thread that has
//!   given up its handle never touches the object again, and needs no
//!   compare-exchange to give it up.
//!
//! A foreign drop signals the object's *home* (the creating thread's
//! record, which every handle carries, and which is the owner for as long
//! as the object is biased). Its `fetch_sub` saw the object biased, so the
//! home was still its owner then; if the owner merged it since, or exited,
//! the signal only costs the home's current holder a sweep that finds
//! nothing.

use core::ptr::NonNull;

use crate::record::{Links, Record};
use crate::sync::{fence, AtomicIsize, AtomicPtr, Ordering, UnsafeCell};

/// `count` is stored shifted by one, over the flag.
pub(crate) const UNIT: isize = 2;
/// Counted on the atomic only (see the module doc).
pub(crate) const MERGED: isize = 1;

/// Counts above this abort (as `Arc` does), so `count` never wraps.
const MAX_COUNT: isize = isize::MAX / UNIT / 2;

#[inline]
const fn count(word: isize) -> isize {
    word >> 1
}

/// The header at the start of every `Shared` allocation. `#[repr(C)]` with
/// the list links first, so a node of a biased list *is* a header.
#[repr(C)]
pub(crate) struct Header {
    links: Links,
    /// The creating thread's record while biased, null once merged. Written
    /// by the owner only; read by every thread, which compares it with its
    /// own record (and a foreign dropper signals it).
    owner: AtomicPtr<Record>,
    /// The local count (module doc). Only the owner accesses it.
    local: UnsafeCell<usize>,
    /// The shared word (module doc).
    shared: AtomicIsize,
    /// Drops the value and frees the allocation.
    free: unsafe fn(NonNull<Header>),
}

impl Header {
    /// A header for an object created by the thread whose record is `me`
    /// (biased to it, one local handle; the caller then links it on `me`'s
    /// list with [`Header::link`]), or born merged with one shared handle
    /// if `me` is `None`.
    pub(crate) fn new(me: Option<NonNull<Record>>, free: unsafe fn(NonNull<Header>)) -> Self {
        let (owner, local, shared) = match me {
            Some(r) => (r.as_ptr(), 1, 0),
            None => (core::ptr::null_mut(), 0, UNIT | MERGED),
        };
        Header {
            links: Links::new(),
            owner: AtomicPtr::new(owner),
            local: UnsafeCell::new(local),
            shared: AtomicIsize::new(shared),
            free,
        }
    }

    /// Puts a new biased object on its owner's list.
    ///
    /// # Safety
    ///
    /// `this` is a header just made by [`Header::new`] with `me`, at its
    /// final address, on the thread of `me`.
    pub(crate) unsafe fn link(this: NonNull<Header>, me: NonNull<Record>) {
        // SAFETY: the caller is the owner; the links are fresh.
        unsafe { me.as_ref().link(this.cast()) };
    }

    /// The object's owner as last seen (null once merged).
    #[inline(always)]
    pub(crate) fn owner(&self) -> *mut Record {
        // Relaxed: the only values this can read are the owner (set before
        // the handle existed, and the handle reached us through whatever
        // synchronised its transfer) and null, stored by the owner itself.
        // The owner reads its own latest store (coherence); any other
        // thread compares with its own record, which equals neither value,
        // whatever it reads. A record handed to a new thread was handed
        // back only after its old owner had stored null in every object of
        // its list, and the pool's lock orders those stores before the new
        // owner's loads, so a new owner never reads a stale old owner.
        self.owner.load(Ordering::Relaxed)
    }

    /// `true` if `me` owns the object (so may count it with plain ops).
    #[inline(always)]
    pub(crate) fn is_owner(&self, me: *const Record) -> bool {
        self.owner() == me.cast_mut()
    }

    /// The owner's clone: one more local handle.
    ///
    /// # Safety
    ///
    /// The caller is the owner (`is_owner` returned `true` on this thread).
    #[inline(always)]
    pub(crate) unsafe fn acquire_local(&self) {
        // SAFETY: only the owner touches `local`.
        self.local.with_mut(|l| unsafe {
            if *l >= MAX_COUNT as usize {
                std::process::abort();
            }
            *l += 1;
        });
    }

    /// The owner's drop of a handle. Returns `true` if the caller must free
    /// the object (it was the last handle).
    ///
    /// # Safety
    ///
    /// The caller is the owner and gives up one handle.
    #[inline(always)]
    pub(crate) unsafe fn release_local(this: NonNull<Header>) -> bool {
        // SAFETY: the handle keeps the object alive.
        let h = unsafe { this.as_ref() };
        // SAFETY: only the owner touches `local`.
        let left = h.local.with_mut(|l| unsafe {
            *l -= 1;
            *l
        });
        if left != 0 {
            return false;
        }
        // SAFETY: forwarded (owner, local count now 0).
        unsafe { Self::release_last_local(this) }
    }

    /// The owner dropped its last local handle: take the object off the
    /// list and merge (the local count is 0, so merging is setting
    /// `MERGED`); free if nothing else holds it.
    #[cold]
    #[inline(never)]
    unsafe fn release_last_local(this: NonNull<Header>) -> bool {
        // SAFETY: the handle we give up kept the object alive until now.
        let h = unsafe { this.as_ref() };
        // SAFETY: we are the owner, so the record is ours and the object is
        // on its list (biased objects are, until merged).
        unsafe { (*h.owner()).unlink(this.cast()) };
        // Relaxed: see `owner`; after this only the atomic counts.
        h.owner.store(core::ptr::null_mut(), Ordering::Relaxed);
        // AcqRel: Acquire so that, if we free, every other thread's use of
        // the value (ended by its Release decrement) happens before; Release
        // so that a foreign drop that later frees it sees our uses.
        let old = h.shared.fetch_or(MERGED, Ordering::AcqRel);
        // `local` was 0 before this, so `count(old)` is the live handles.
        count(old) == 0
    }

    /// A clone on a thread that is not the owner.
    #[inline(always)]
    pub(crate) fn acquire_shared(&self) {
        // Relaxed: as for `Arc`, a new handle is made from a live one, whose
        // existence already keeps the object alive; nothing is published.
        let old = self.shared.fetch_add(UNIT, Ordering::Relaxed);
        if count(old) > MAX_COUNT {
            std::process::abort();
        }
    }

    /// A drop on a thread that is not the owner; `home` is the object's
    /// home record (the owner while biased; null for an object born
    /// merged), as the handle carries it.
    ///
    /// # Safety
    ///
    /// The caller gives up one handle; `this` is the header of a live object.
    #[inline(always)]
    pub(crate) unsafe fn release_shared(this: NonNull<Header>, home: *mut Record) {
        // SAFETY: our handle keeps the object alive until the decrement.
        let h = unsafe { this.as_ref() };
        // Release: our uses of the value happen before whoever frees it (it
        // acquires: the fence below, a merge's AcqRel, or the owner's last
        // local drop's AcqRel), as for `Arc`.
        let old = h.shared.fetch_sub(UNIT, Ordering::Release);
        // Something is left to do only if this left a merged object at zero
        // (`old == UNIT | MERGED`) or a biased one below zero (`old <= 0`:
        // even, and `count(old) <= 0`). (`old == MERGED` cannot be: our
        // handle was counted.)
        if old > 0 && old != UNIT | MERGED {
            return;
        }
        // SAFETY: forwarded; `old` is what our decrement replaced.
        unsafe { Self::released_low(this, home, old) }
    }

    /// The rest of a foreign drop that left a merged object at zero (free
    /// it) or a biased one below zero (signal its owner).
    ///
    /// # Safety
    ///
    /// As [`Header::release_shared`], after its decrement, which replaced
    /// `old`.
    #[cold]
    #[inline(never)]
    unsafe fn released_low(this: NonNull<Header>, home: *mut Record, old: isize) {
        let new = old - UNIT;
        if old & MERGED != 0 {
            if new == MERGED {
                // Acquire fence: pairs with the Release of every other
                // handle's last operation, so all uses of the value happen
                // before the free (as `Arc`'s drop).
                fence(Ordering::Acquire);
                // SAFETY: the last handle is gone; merged, so no owner
                // counts it; nobody else frees it (their decrements left
                // more than zero).
                unsafe { (this.as_ref().free)(this) };
            }
        } else if count(new) < 0 && !home.is_null() {
            // Maybe the last handle: tell the owner (the home: our decrement
            // saw the object biased). From here on we touch only the
            // record, never the object (module doc).
            // SAFETY: records are never freed (see `record`).
            unsafe { (*home).signal() };
        }
    }

    /// Takes the object off its owner's list (and stores null as owner), so
    /// that it can be merged after the caller's walk of the list, on the
    /// chain the caller builds through the links. Drops of its handles on
    /// this thread from now on take the foreign path (which the merge
    /// counts).
    ///
    /// # Safety
    ///
    /// The caller is the owner, `this` is on the owner's list (so alive:
    /// nothing frees a biased object but its owner).
    pub(crate) unsafe fn detach(this: NonNull<Header>, record: &Record) {
        // SAFETY: the contract.
        unsafe { record.unlink(this.cast()) };
        // SAFETY: the object is alive (contract).
        let h = unsafe { this.as_ref() };
        // Relaxed: see `owner` and the module doc (null before the merge's
        // RMW).
        h.owner.store(core::ptr::null_mut(), Ordering::Relaxed);
    }

    /// `true` if the shared count of this object is negative (it may have
    /// lost its last handle), as the owner reads it in a sweep.
    ///
    /// # Safety
    ///
    /// The caller is the owner and `this` is on its list (so alive).
    pub(crate) unsafe fn maybe_dead(this: NonNull<Header>) -> bool {
        // Relaxed: the sweep runs after the owner's Acquire swap of the
        // signal (record::take_signal), which makes every signaller's
        // decrement happen before this load; by coherence it reads that
        // decrement or a later value. An object whose decrement came after
        // the swap has signalled again, for the next sweep.
        // SAFETY: the contract.
        count(unsafe { this.as_ref() }.shared.load(Ordering::Relaxed)) < 0
    }

    /// Merges a detached object: folds the local count into the shared
    /// word and sets `MERGED`; frees the object if no handle is left.
    ///
    /// # Safety
    ///
    /// The caller is the owner and detached `this` ([`Header::detach`]);
    /// nobody else merges it. The object is alive: it is not `MERGED`, so
    /// nothing else frees it.
    pub(crate) unsafe fn merge_detached(this: NonNull<Header>) {
        // SAFETY: alive (contract).
        let h = unsafe { this.as_ref() };
        // SAFETY: we are the owner (contract); no other thread accesses
        // `local`.
        let local = h
            .local
            .with_mut(|l| unsafe { core::mem::replace(&mut *l, 0) });
        let add = (local as isize) * UNIT + MERGED;
        // AcqRel: Acquire so that, if we free, every foreign drop's uses
        // happen before (every one is a Release RMW on this word, so this
        // RMW reads the end of their release sequences); Release so that if
        // a later foreign drop frees it, our (and our handles') uses happen
        // before.
        let old = h.shared.fetch_add(add, Ordering::AcqRel);
        let new = old + add;
        debug_assert!(count(new) >= 0, "more handles dropped than made");
        if count(new) == 0 {
            // SAFETY: no handle is left and we just merged it.
            unsafe { (h.free)(this) };
        }
    }
}
