//! Thread records: where a `Shared` object's owner receives the releases it
//! has to finish.
//!
//! Every thread that creates a [`Shared`](crate::Shared) gets one
//! [`Record`] the first time it does. The record holds the thread's
//! **deferred queue** (an [`Inbox`] whose nodes are the headers of `Shared`
//! objects: the link is the header's first word, so posting allocates
//! nothing) and its **state**, `ALIVE` until the thread's exit has run,
//! then `EXITED`.
//!
//! Records are never freed: objects keep a pointer to their home record for
//! life, and a foreign thread may post to a record long after its thread
//! exited. Each one is 3 words; they are linked on a global list (so that
//! tools see them reachable, and so that a later change can recycle the
//! records of exited threads whose objects are all gone).
//!
//! # Who writes what
//!
//! | field | written by | read by |
//! |---|---|---|
//! | `queue` | posters (push), the owner or a finisher (take) | everyone |
//! | `state` | the owner, once, at exit (Release) | posters (after a SeqCst fence) |
//! | `next` | the registering thread, before publishing | nobody yet |
//!
//! # The exit race
//!
//! A poster pushes, then (SeqCst fence) reads `state`; the exiting owner
//! stores `EXITED`, then (SeqCst fence) takes its queue. The two fences are
//! totally ordered, so at least one side sees the other: either the owner's
//! take finds the post, or the poster reads `EXITED` and takes the queue
//! itself. Both may happen; `take` hands each node to exactly one taker.

use core::ptr::{self, NonNull};

use crate::inbox::{Chain, Inbox, Node};
use crate::sync::{fence, AtomicUsize, Ordering};

const ALIVE: usize = 0;
const EXITED: usize = 1;

/// One thread's deferred queue and liveness; see the module doc.
pub(crate) struct Record {
    queue: Inbox,
    state: AtomicUsize,
    #[cfg_attr(loom, allow(dead_code))]
    next: *mut Record,
}

impl Record {
    /// A fresh record for the calling thread, linked on the global list and
    /// never freed.
    pub(crate) fn register() -> NonNull<Record> {
        let record = std::boxed::Box::new(Record {
            queue: Inbox::new(),
            state: AtomicUsize::new(ALIVE),
            next: ptr::null_mut(),
        });
        let record = std::boxed::Box::into_raw(record);
        list::link(record);
        // SAFETY: from `Box::into_raw`, so not null.
        unsafe { NonNull::new_unchecked(record) }
    }

    /// Posts `node` (the header of an object whose release this record's
    /// thread must finish). Returns `true` if the owner has exited, in which
    /// case the caller must finish the queue itself ([`Record::take_orphans`]).
    ///
    /// # Safety
    ///
    /// `node` must be the header of a live object whose `QUEUED` flag the
    /// caller has just set (so it is in no queue, and nobody frees it until
    /// it is taken).
    #[inline]
    pub(crate) unsafe fn post(&self, node: NonNull<Node>) -> bool {
        // SAFETY: forwarded from the caller; the queue's push is Release, so
        // the taker sees everything we did to the object.
        unsafe { self.queue.push(node) };
        // SeqCst fence: orders our push before the read of `state` against
        // the owner's store of `EXITED` and its take (see the module doc);
        // without it both could miss each other and the object would never
        // be finished.
        fence(Ordering::SeqCst);
        // Acquire: if we read `EXITED`, we will read the owner's plain
        // counts (`local`) of the objects we take; the owner's Release store
        // of `EXITED` came after its last write to any of them.
        self.state.load(Ordering::Acquire) == EXITED
    }

    /// Takes everything posted to this record (the owner's drain).
    #[inline]
    pub(crate) fn take(&self) -> Chain {
        self.queue.take()
    }

    /// Takes everything posted to an exited owner's record, for a finisher
    /// that read `EXITED` in [`Record::post`]; disjoint from what the owner
    /// itself (or another finisher) takes.
    #[inline]
    pub(crate) fn take_orphans(&self) -> Chain {
        self.queue.take()
    }

    /// `true` if something is waiting to be finished (a hint, Relaxed).
    #[inline]
    pub(crate) fn has_pending(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Marks the owner as exited. The caller then takes the queue once more
    /// and finishes what it finds; later posters finish their own.
    ///
    /// Must be called by the owner, once, after its last plain write to the
    /// count of any object whose home is this record.
    pub(crate) fn mark_exited(&self) {
        // Release: publishes the owner's plain counts to the finishers that
        // read `EXITED` with Acquire in `post`.
        self.state.store(EXITED, Ordering::Release);
        // SeqCst fence: the other half of the exit race (module doc): after
        // it, the owner's take sees every post whose poster read `ALIVE`.
        fence(Ordering::SeqCst);
    }
}

#[cfg(not(loom))]
mod list {
    use super::Record;
    use crate::sync::plain::{AtomicPtr, Ordering};

    /// Every record ever registered (never unlinked).
    static ALL: AtomicPtr<Record> = AtomicPtr::new(core::ptr::null_mut());

    pub(super) fn link(record: *mut Record) {
        // Relaxed: nobody reads records through the list yet; the link only
        // keeps them reachable.
        let mut head = ALL.load(Ordering::Relaxed);
        loop {
            // SAFETY: `record` is fresh and not yet published.
            unsafe { (*record).next = head };
            // Release: a future reader walking the list (recycling) must see
            // the record initialised. Relaxed on failure: we only retry.
            match ALL.compare_exchange_weak(head, record, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }
}

#[cfg(loom)]
mod list {
    use super::Record;

    /// Under loom each execution leaks its few records; there is no global
    /// list to keep across executions.
    pub(super) fn link(_record: *mut Record) {}
}
