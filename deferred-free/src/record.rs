//! Thread records: the per-thread side of `Shared` counting.
//!
//! Every thread that creates a [`Shared`](crate::Shared) takes one
//! [`Record`] the first time it does. A record holds:
//!
//! - the **biased list**: every live object still biased to the thread, an
//!   intrusive doubly-linked list through the objects' headers ([`Links`],
//!   the header's first field). Only the owner thread touches it.
//! - the **signal** (`pending`): set by a foreign thread whose drop took an
//!   object's shared count below zero (it may have released the last
//!   handle); the owner's next sweep takes it and merges every object of its
//!   list whose count is negative. Setting it touches only the record, never
//!   the object, so a foreign drop is one `fetch_sub` on the object.
//!
//! # Records are type-stable, and recycled
//!
//! A foreign thread may signal a record after the object it dropped is gone
//! and after the owner exited (it read the owner before its `fetch_sub`).
//! So a record's memory is never freed: records come from a static table of
//! [`TABLE`] entries (no heap), and beyond that from the heap, leaked; an
//! exiting thread hands its record back to a free list and a new thread
//! takes it. A late signal then lands on a record in use by another thread
//! (or on a free one) and only costs that thread a sweep that finds
//! nothing. Memory for records is bounded by the most threads that held one
//! at the same time, and a process whose threads come and go keeps using
//! the same few.
//!
//! # Who writes what
//!
//! | field | written by | read by |
//! |---|---|---|
//! | `pending` | foreign droppers (swap `true`, Release), the owner (swap `false`, Acquire) | the owner (Relaxed hint) |
//! | `head`, `len`, `since` | the owner | the owner |
//! | `next_free` | the pool, under its lock | the pool |

use core::cell::Cell;
use core::ptr::{self, NonNull};

use crate::sync::{AtomicBool, Ordering};

/// The links of one object on its owner's biased list. Only the owner
/// thread reads or writes them (and, once the owner has detached the
/// object, only the thread merging it).
pub(crate) struct Links {
    prev: Cell<*mut Links>,
    next: Cell<*mut Links>,
}

impl Links {
    /// Links not on any list.
    pub(crate) const fn new() -> Links {
        Links {
            prev: Cell::new(ptr::null_mut()),
            next: Cell::new(ptr::null_mut()),
        }
    }

    /// The next node (on the list, or on a detached chain).
    #[inline]
    pub(crate) fn next(&self) -> *mut Links {
        self.next.get()
    }

    /// Sets the next node of a detached chain.
    #[inline]
    pub(crate) fn set_next(&self, next: *mut Links) {
        self.next.set(next);
    }
}

/// Static records: the first threads to hold a record at the same time
/// take these, so they cost no heap memory.
#[cfg(not(loom))]
pub(crate) const TABLE: usize = 256;

/// One thread's biased list and signal; see the module doc. Aligned to a
/// cache line so that signalling one thread does not disturb its
/// neighbour's list.
#[repr(align(64))]
pub(crate) struct Record {
    pending: AtomicBool,
    /// The biased list's first node.
    head: Cell<*mut Links>,
    /// Nodes on the biased list.
    len: Cell<usize>,
    /// `Shared::new` calls since the last sweep (for the amortised sweep).
    since: Cell<usize>,
    /// The free list's link (under the pool's lock).
    #[cfg_attr(loom, allow(dead_code))]
    next_free: Cell<*mut Record>,
}

// SAFETY: `pending` is atomic; the `Cell`s are touched only by the thread
// holding the record (its owner) and by the pool under its lock, and a
// record changes hands only through that lock (which orders the old
// owner's last access before the new owner's first).
unsafe impl Sync for Record {}

impl Record {
    crate::const_fn_unless_loom! {
        /// A record with an empty list and no signal.
        fn new() -> Record {
            Record {
                pending: AtomicBool::new(false),
                head: Cell::new(ptr::null_mut()),
                len: Cell::new(0),
                since: Cell::new(0),
                next_free: Cell::new(ptr::null_mut()),
            }
        }
    }

    /// A record for the calling thread: a free one if there is one, else a
    /// fresh one. Records are never freed (module doc).
    pub(crate) fn acquire() -> NonNull<Record> {
        pool::acquire()
    }

    /// Hands the calling thread's record back for reuse. The caller has
    /// emptied its biased list (merged every object) and never touches the
    /// record again.
    ///
    /// # Safety
    ///
    /// `record` came from [`Record::acquire`] on this thread.
    pub(crate) unsafe fn release(record: NonNull<Record>) {
        // SAFETY: forwarded.
        debug_assert!(unsafe { record.as_ref() }.head.get().is_null());
        // SAFETY: forwarded.
        unsafe { pool::release(record) }
    }

    /// Tells the owner that an object of its list may have lost its last
    /// handle. Called by a foreign thread right after the `fetch_sub` that
    /// took the object's shared count below zero.
    #[cold]
    #[inline(never)]
    pub(crate) fn signal(&self) {
        // Release, and a read-modify-write (not a store): the owner's
        // Acquire swap that reads `true` must synchronise with *every*
        // signaller since its last swap, so that its sweep reads each one's
        // decrement. Each signaller's RMW continues the release sequence of
        // the ones before it; a plain store would cut it, and the owner
        // could see `true` yet read a stale (non-negative) count of an
        // earlier signaller's object, and never free it.
        self.pending.swap(true, Ordering::Release);
    }

    /// `true` if a signal is waiting (a hint: Relaxed).
    #[inline]
    pub(crate) fn has_pending(&self) -> bool {
        // Relaxed: only decides whether to call `take_signal`, whose
        // Acquire swap is what the sweep relies on.
        self.pending.load(Ordering::Relaxed)
    }

    /// Takes the signal (owner only). Returns `true` if one was set: then
    /// every `fetch_sub` of every signaller whose signal this swap reads
    /// (or that an earlier swap read) happens before the caller's next
    /// loads of the objects' counts.
    #[inline]
    pub(crate) fn take_signal(&self) -> bool {
        // Acquire: pairs with the signallers' Release swaps (see `signal`);
        // after it, the sweep's Relaxed loads of the counts see their
        // decrements (coherence). A signal set after this swap stays set
        // for the next sweep, so none is lost.
        self.pending.swap(false, Ordering::Acquire)
    }

    /// Puts `node` first on the biased list (owner only).
    ///
    /// # Safety
    ///
    /// The caller is the record's owner; `node` is the links of a live
    /// object biased to it, on no list.
    #[inline]
    pub(crate) unsafe fn link(&self, node: NonNull<Links>) {
        let head = self.head.get();
        // SAFETY: the caller's contract; `head` is on our list, so live.
        unsafe {
            let n = node.as_ref();
            n.prev.set(ptr::null_mut());
            n.next.set(head);
            if let Some(h) = head.as_ref() {
                h.prev.set(node.as_ptr());
            }
        }
        self.head.set(node.as_ptr());
        self.len.set(self.len.get() + 1);
    }

    /// Takes `node` off the biased list (owner only).
    ///
    /// # Safety
    ///
    /// The caller is the record's owner; `node` is on this record's list.
    #[inline]
    pub(crate) unsafe fn unlink(&self, node: NonNull<Links>) {
        // SAFETY: the caller's contract; neighbours on our list are live.
        unsafe {
            let n = node.as_ref();
            let (prev, next) = (n.prev.get(), n.next.get());
            match prev.as_ref() {
                Some(p) => p.next.set(next),
                None => self.head.set(next),
            }
            if let Some(x) = next.as_ref() {
                x.prev.set(prev);
            }
        }
        self.len.set(self.len.get() - 1);
    }

    /// The first node of the biased list (owner only).
    #[inline]
    pub(crate) fn first(&self) -> *mut Links {
        self.head.get()
    }

    /// Nodes on the biased list (owner only).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len.get()
    }

    /// Counts one `Shared::new`; returns `true` if a pending signal should
    /// be swept now: always for a short list, otherwise once the thread has
    /// made half as many objects as its list holds since the last sweep, so
    /// that sweeping stays O(1) per `new`, amortised (owner only).
    #[inline]
    pub(crate) fn sweep_due_on_new(&self) -> bool {
        let since = self.since.get() + 1;
        self.since.set(since);
        self.has_pending() && (self.len.get() <= 64 || since >= self.len.get() / 2)
    }

    /// Notes that a sweep ran (owner only).
    #[inline]
    pub(crate) fn swept(&self) {
        self.since.set(0);
    }
}

#[cfg(not(loom))]
mod pool {
    use core::ptr::{self, NonNull};

    use super::{Record, TABLE};

    /// The static records (module doc of `record`).
    static STATIC: [Record; TABLE] = [const { Record::new() }; TABLE];

    struct Free {
        /// Records handed back, linked through `next_free`.
        head: *mut Record,
        /// Static records not yet handed out.
        unused: usize,
    }

    // SAFETY: the raw pointers are records, which are `Sync` and never
    // freed; the value is only reached under the mutex.
    unsafe impl Send for Free {}

    static FREE: std::sync::Mutex<Free> = std::sync::Mutex::new(Free {
        head: ptr::null_mut(),
        unused: 0,
    });

    fn lock() -> std::sync::MutexGuard<'static, Free> {
        // A panic cannot happen while the lock is held (nothing below
        // panics), but do not turn one into a second panic.
        FREE.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn acquire() -> NonNull<Record> {
        let mut free = lock();
        if let Some(r) = NonNull::new(free.head) {
            // SAFETY: on the free list, so a record nobody owns; the lock
            // orders its last owner's accesses before ours.
            free.head = unsafe { r.as_ref() }.next_free.replace(ptr::null_mut());
            return r;
        }
        if free.unused < TABLE {
            let r = &STATIC[free.unused];
            free.unused += 1;
            return NonNull::from(r);
        }
        drop(free);
        // Beyond the table: a heap record, kept for life (module doc).
        NonNull::from(std::boxed::Box::leak(std::boxed::Box::new(Record::new())))
    }

    /// # Safety
    ///
    /// As [`Record::release`].
    pub(super) unsafe fn release(record: NonNull<Record>) {
        let mut free = lock();
        // SAFETY: the caller gives the record up; we hold the lock.
        let r = unsafe { record.as_ref() };
        r.since.set(0);
        r.next_free.set(free.head);
        free.head = record.as_ptr();
    }
}

#[cfg(loom)]
mod pool {
    use core::ptr::NonNull;

    use super::Record;

    /// Under loom (whose atomics cannot live in a `static`) each execution
    /// takes fresh records and leaks them; recycling is not modelled.
    pub(super) fn acquire() -> NonNull<Record> {
        NonNull::from(std::boxed::Box::leak(std::boxed::Box::new(Record::new())))
    }

    pub(super) unsafe fn release(_record: NonNull<Record>) {}
}
