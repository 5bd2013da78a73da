//! The outbox: a thread's remote frees waiting to be posted, grouped by
//! destination heap (see `remote` for how they travel). A plain owner-only
//! structure that lives in the thread's heap; it names its destinations
//! opaquely (`HeapOwner`), so the heap layer can hold one without knowing
//! the remote-free layer above it.

use core::ptr;

use homing_deferred::Batch;

use crate::segment::HeapOwner;

/// Destination slots of an outbox: a thread rarely frees into more than a
/// few heaps at once; a collision just posts the older batch early.
pub(crate) const OUTBOX_SLOTS: usize = 8;

/// How far ahead the owner prefetches when it drains its inbox. A drain
/// walks a chain linked through cold blocks, one dependent cache miss per
/// block; each block carries, in its second word, the address of the block
/// this many places further down the chain (the one its freer pushed this
/// many frees earlier), so the owner has that many misses in flight.
pub(crate) const HINT_DISTANCE: usize = 4;

/// Whether blocks carry prefetch hints: not under loom (a node is a larger
/// loom cell there) nor in checked mode (the second word is the
/// double-free mark). When on, every path that posts a block writes its
/// hint word, so the owner's drain never reads a word we did not write.
pub(crate) const HINTS: bool = !cfg!(any(loom, feature = "checked"));

/// One destination's pending batch.
pub(crate) struct Slot {
    /// The destination heap (opaque here; `remote` casts it).
    pub(crate) heap: *mut HeapOwner,
    pub(crate) batch: Batch,
    /// The last blocks pushed, for the hints (a ring; any stale entry is
    /// harmless: a hint is only ever prefetched, never dereferenced).
    pub(crate) recent: [*mut u8; HINT_DISTANCE],
    pub(crate) next_recent: usize,
}

/// A thread's remote frees, grouped by destination heap (owner only).
pub(crate) struct Outbox {
    pub(crate) slots: [Slot; OUTBOX_SLOTS],
    pub(crate) pending: usize,
}

impl Outbox {
    /// An empty outbox.
    pub(crate) const fn new() -> Outbox {
        const EMPTY: Slot = Slot {
            heap: ptr::null_mut(),
            batch: Batch::new(),
            recent: [ptr::null_mut(); HINT_DISTANCE],
            next_recent: 0,
        };
        Outbox {
            slots: [EMPTY; OUTBOX_SLOTS],
            pending: 0,
        }
    }

    /// Blocks waiting to be posted.
    #[inline]
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }
}
