//! The counting protocol of a `Shared` object (biased reference counting),
//! on its type-erased header.
//!
//! # Glossary
//!
//! - **Home**: the record of the thread that created the object; never
//!   changes. **Owner**: the home while the object is *biased*, null once it
//!   is *merged*.
//! - **Local count** (`local`): handles counted by the owner, with plain
//!   loads and stores; only the owner touches it (or, once the owner has
//!   exited, the one thread finishing the object).
//! - **Shared word** (`shared`): `count << 2 | MERGED | QUEUED`, an atomic.
//!   `count` (signed) counts what other threads did: +1 per clone there, −1
//!   per drop there, including drops of handles the owner counted, which is
//!   how it goes negative.
//! - **QUEUED**: the object is posted (or about to be) to its home's
//!   deferred queue; whoever set the flag is responsible for it until the
//!   drain clears the flag. Nobody frees a `QUEUED` object but the drain.
//! - **MERGED**: the local count has been folded into `count`; from then on
//!   every thread, the owner too, counts on the atomic, and `count` is the
//!   number of live handles.
//!
//! # Invariants
//!
//! - Between operations, `live handles == local + count` while biased, and
//!   `== count` once merged (`local == 0`).
//! - `count < 0` only while biased (then `local > 0`); a foreign drop that
//!   takes it below zero *may* have released the last handle (if the owner
//!   counted it and holds nothing), so it posts the object home unless it is
//!   already `QUEUED`.
//! - An object is freed exactly once, by the thread whose atomic operation
//!   made it `MERGED`, `count == 0` and not `QUEUED`: a foreign drop, the
//!   owner's drop of its last local handle, or the drain that merges it.
//! - After a thread's last atomic operation on `shared` that gives up its
//!   handle (or its `QUEUED` responsibility), it never touches the object
//!   again unless that operation made it the freer. So the decrement and the
//!   setting of `QUEUED` are one compare-exchange.

use core::ptr::NonNull;

use crate::inbox::Node;
use crate::record::Record;
use crate::sync::{fence, AtomicIsize, AtomicPtr, Ordering, UnsafeCell};

/// `count` is stored shifted by two, over the flags.
pub(crate) const UNIT: isize = 4;
/// Posted home (see the module doc).
pub(crate) const QUEUED: isize = 1;
/// Counted on the atomic only (see the module doc).
pub(crate) const MERGED: isize = 2;

/// Counts above this abort (as `Arc` does), so `count` never wraps.
const MAX_COUNT: isize = isize::MAX / UNIT / 2;

#[inline]
const fn count(word: isize) -> isize {
    word >> 2
}

/// The header at the start of every `Shared` allocation. `#[repr(C)]` with
/// the queue link first, so the header *is* the queue node.
#[repr(C)]
pub(crate) struct Header {
    node: Node,
    /// The creating thread's record, or `None` for an object born merged
    /// (created by a thread whose exit has already run).
    home: Option<NonNull<Record>>,
    /// The home while biased, null once merged. Written by the owner (or
    /// the finisher of an exited owner) only; read by every thread, which
    /// compares it with its own record.
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
    /// (biased to it, one local handle), or born merged with one shared
    /// handle if `me` is `None`.
    pub(crate) fn new(me: Option<NonNull<Record>>, free: unsafe fn(NonNull<Header>)) -> Self {
        let (owner, local, shared) = match me {
            Some(r) => (r.as_ptr(), 1, 0),
            None => (core::ptr::null_mut(), 0, UNIT | MERGED),
        };
        Header {
            node: Node::new(),
            home: me,
            owner: AtomicPtr::new(owner),
            local: UnsafeCell::new(local),
            shared: AtomicIsize::new(shared),
            free,
        }
    }

    /// `true` if `me` owns the object (so may count it with plain ops).
    #[inline(always)]
    pub(crate) fn is_owner(&self, me: *const Record) -> bool {
        // Relaxed: the only values this can read are the home (set before
        // the handle existed, and the handle reached us through whatever
        // synchronised its transfer) and null, stored by the owner itself
        // or by the finisher after the owner exited. The owner reads its own
        // latest store (coherence); any other thread compares with its own
        // record, which equals neither value, whatever it reads.
        self.owner.load(Ordering::Relaxed) == me.cast_mut()
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
    pub(crate) unsafe fn release_local(&self) -> bool {
        // SAFETY: only the owner touches `local`.
        let left = self.local.with_mut(|l| unsafe {
            *l -= 1;
            *l
        });
        if left != 0 {
            return false;
        }
        // SAFETY: forwarded (owner, local count now 0).
        unsafe { self.release_last_local() }
    }

    /// The owner dropped its last local handle: merge (the local count is 0
    /// now, so merging is setting `MERGED`) and free if nothing else holds
    /// the object.
    #[cold]
    #[inline(never)]
    unsafe fn release_last_local(&self) -> bool {
        // Relaxed: see `is_owner`; after this only the atomic counts.
        self.owner.store(core::ptr::null_mut(), Ordering::Relaxed);
        // AcqRel: Acquire so that, if we free, every other thread's use of
        // the value (ended by its Release decrement) happens before; Release
        // so that a foreign drop that later frees it sees our uses.
        let old = self.shared.fetch_or(MERGED, Ordering::AcqRel);
        // Free iff no foreign handle is left and no drain is responsible.
        count(old) == 0 && old & QUEUED == 0
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

    /// A drop on a thread that is not the owner.
    ///
    /// # Safety
    ///
    /// The caller gives up one handle; `this` is the header of a live object.
    #[inline(always)]
    pub(crate) unsafe fn release_shared(this: NonNull<Header>) {
        // SAFETY: our handle keeps the object alive until the exchange below.
        let h = unsafe { this.as_ref() };
        // Relaxed: a first guess for the compare-exchange, which validates
        // it; or, if it shows MERGED (never cleared, and QUEUED is never set
        // on a merged object), the choice of the plain decrement below.
        let mut old = h.shared.load(Ordering::Relaxed);
        if old & MERGED != 0 {
            // Merged: only the count matters, as for `Arc`. Release: our
            // uses of the value happen before whoever frees it.
            let new = h.shared.fetch_sub(UNIT, Ordering::Release) - UNIT;
            if count(new) == 0 && new & QUEUED == 0 {
                // Acquire fence: as below.
                fence(Ordering::Acquire);
                // SAFETY: the last handle is gone and no drain holds it.
                unsafe { (h.free)(this) };
            }
            return;
        }
        let new = loop {
            let mut new = old - UNIT;
            if new & (MERGED | QUEUED) == 0 && count(new) < 0 {
                // Maybe the last handle: claim the duty to post it home, in
                // the same operation that gives up our handle.
                new |= QUEUED;
            }
            // Release on success: our uses of the value happen before
            // whoever frees it (it acquires). Relaxed on failure: retry only.
            match h
                .shared
                .compare_exchange_weak(old, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break new,
                Err(now) => old = now,
            }
        };
        if new & QUEUED != 0 && old & QUEUED == 0 {
            // SAFETY: we set QUEUED, so the object stays alive and in no
            // queue until a drain takes it.
            unsafe { Self::post_home(this) };
        } else if new & MERGED != 0 && count(new) == 0 && new & QUEUED == 0 {
            // Acquire fence: pairs with the Release of every other handle's
            // last operation, so all uses of the value happen before the free.
            fence(Ordering::Acquire);
            // SAFETY: the last handle is gone and no drain holds the object.
            unsafe { (h.free)(this) };
        }
    }

    /// Posts a `QUEUED` object to its home, and finishes the home's queue
    /// if the owner has exited.
    ///
    /// # Safety
    ///
    /// The caller set `QUEUED` on this live object.
    #[cold]
    #[inline(never)]
    unsafe fn post_home(this: NonNull<Header>) {
        // SAFETY: the object is alive (QUEUED).
        let home = unsafe { this.as_ref() }.home;
        // A biased object always has a home (born-merged ones are never
        // queued: QUEUED is only set while not MERGED).
        let Some(home) = home else { return };
        // SAFETY: records are never freed.
        let home = unsafe { home.as_ref() };
        // SAFETY: the header is its own queue node; QUEUED is ours.
        if unsafe { home.post(this.cast()) } {
            // SAFETY: the owner has exited (read with Acquire in `post`).
            unsafe { finish_chain(home.take_orphans()) };
        }
    }

    /// Merges a `QUEUED` object taken from its home's queue: folds the local
    /// count into the shared word, clears `QUEUED`, and frees the object if
    /// no handle is left.
    ///
    /// # Safety
    ///
    /// `this` was taken from its home's queue by the owner, or by a thread
    /// that read `EXITED` on the home (so the owner's last write to `local`
    /// happens before this call).
    pub(crate) unsafe fn merge_queued(this: NonNull<Header>) {
        // SAFETY: a QUEUED object stays alive until this merge.
        let h = unsafe { this.as_ref() };
        // SAFETY: we are the owner or its successor (see the contract); no
        // other thread accesses `local`.
        let local = h
            .local
            .with_mut(|l| unsafe { core::mem::replace(&mut *l, 0) });
        // Relaxed: after this the object is merged and the owner (or, for an
        // exited owner, nobody) takes the atomic path; see `is_owner`.
        h.owner.store(core::ptr::null_mut(), Ordering::Relaxed);
        let add = (local as isize) * UNIT;
        let mut old = h.shared.load(Ordering::Relaxed);
        let new = loop {
            let new = ((old + add) | MERGED) & !QUEUED;
            // AcqRel on success: Acquire so that, if we free, every foreign
            // drop's uses happen before; Release so that if a later foreign
            // drop frees it, our (and the owner's) uses happen before.
            // Relaxed on failure: retry only.
            match h
                .shared
                .compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break new,
                Err(now) => old = now,
            }
        };
        debug_assert!(count(new) >= 0, "more handles dropped than made");
        if count(new) == 0 {
            // SAFETY: no handle is left and we just gave up QUEUED.
            unsafe { (h.free)(this) };
        }
    }
}

/// Merges every object of a chain taken from a record.
///
/// # Safety
///
/// As [`Header::merge_queued`], for every node of the chain.
pub(crate) unsafe fn finish_chain(chain: crate::inbox::Chain) {
    for node in chain {
        // SAFETY: nodes in a record's queue are `Shared` headers (the header
        // starts with its node); the contract is forwarded.
        unsafe { Header::merge_queued(node.cast()) };
    }
}
