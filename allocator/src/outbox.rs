//! The outbox: a thread's remote frees waiting to be posted, grouped by
//! destination heap and, within it, into runs of one page (see `remote` for
//! how they travel). A plain owner-only
//! structure that lives in the thread's heap; it names its destinations
//! opaquely (`HeapOwner`), so the heap layer can hold one without knowing
//! the remote-free layer above it.

use core::ptr::{self, NonNull};

use homing_deferred::{Batch, Node};

use crate::segment::HeapOwner;

/// Destination slots of an outbox: a thread rarely frees into more than a
/// few heaps at once; a collision just posts the older batch early.
pub(crate) const OUTBOX_SLOTS: usize = 8;

/// How far ahead the owner prefetches when it drains blocks that travel
/// alone (see [`seal_run`]): each carries the address of the node posted
/// this many nodes earlier, which lies that far down the chain, so the
/// owner has that many cache misses in flight.
pub(crate) const HINT_DISTANCE: usize = 4;

/// Whether nodes carry prefetch hints: not under loom (plain memory there)
/// nor in checked mode (no runs, and the second word is the double-free
/// mark).
pub(crate) const HINTS: bool = RUNS && !cfg!(loom);

/// Whether remote frees travel as per-page runs (see `remote`). Not in
/// checked mode: a run's tail keeps its length in its second word, which
/// checked mode needs for the double-free mark of blocks in flight; there
/// every block travels alone.
pub(crate) const RUNS: bool = !cfg!(feature = "checked");

/// Where a run's tail keeps the run's head and length: right after the
/// inbox node (its first word, except under loom, where a node is a larger
/// loom cell and the model's blocks are large enough).
pub(crate) const RUN_WORD: usize = {
    let node = core::mem::size_of::<homing_deferred::Node>();
    let word = core::mem::size_of::<usize>();
    node.div_ceil(word) * word
};

/// Open runs an outbox keeps at once, one per page (direct-mapped by page
/// address): a thread freeing blocks of mixed sizes (so of several pages in
/// turn) still groups each page's blocks.
pub(crate) const RUN_WAYS: usize = 16;

/// An open run: blocks of one page, newest first, linked through their
/// first words from `head` down to `tail`, the oldest. Its page and
/// destination heap are those of its tail.
#[derive(Clone, Copy)]
pub(crate) struct Run {
    pub(crate) head: *mut u8,
    pub(crate) tail: *mut u8,
    pub(crate) len: usize,
}

impl Run {
    /// No open run.
    pub(crate) const NONE: Run = Run {
        head: ptr::null_mut(),
        tail: ptr::null_mut(),
        len: 0,
    };
}

/// One destination's closed runs, in a batch (each run as its tail's
/// node), waiting to be posted.
pub(crate) struct Slot {
    /// The destination heap (opaque here; `remote` casts it).
    pub(crate) heap: *mut HeapOwner,
    pub(crate) batch: Batch,
    /// The last nodes sealed into `batch`, for the hints (a ring indexed by
    /// the batch's length; a stale entry is harmless: a hint is only ever
    /// prefetched, never dereferenced).
    pub(crate) recent: [*mut u8; HINT_DISTANCE],
}

/// A thread's remote frees: open runs by page, closed runs by destination
/// heap (owner only).
pub(crate) struct Outbox {
    pub(crate) runs: [Run; RUN_WAYS],
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
        };
        Outbox {
            runs: [Run::NONE; RUN_WAYS],
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

/// The longest run: its length must fit the byte [`seal_run`] gives it.
pub(crate) const RUN_MAX: usize = 255;

/// Closes `run` and returns its tail as the node that carries it through
/// the inbox. The tail's word at [`RUN_WORD`] tells the owner what it
/// carries (read back by [`open_run`]), in 16-byte units (every block is
/// 16-byte aligned):
/// - bits 0..8: the run's length (1 to [`RUN_MAX`]);
/// - bits 8..24: the head's offset from the tail (within one page, so it
///   fits; an offset rather than an address keeps the pointer's
///   provenance, as the head is rebuilt from the tail);
/// - bits 24..64: `hint`'s offset from the tail, or 0: the node sealed
///   [`HINT_DISTANCE`] nodes earlier, which lies that far down the chain,
///   for the owner to prefetch (a drain is a chain of dependent cache
///   misses, one per node; the hints overlap them). A hint too far away to
///   encode is dropped: it is only ever prefetched.
///
/// # Safety
///
/// `run` is a non-empty run of dead blocks of one page (or one huge block),
/// linked from `head` to `tail` and owned by the calling thread; each block
/// has room for [`RUN_WORD`] + 8 bytes.
#[inline]
pub(crate) unsafe fn seal_run(run: Run, hint: *mut u8) -> NonNull<Node> {
    debug_assert!(run.len > 0 && run.len <= RUN_MAX);
    debug_assert!(RUNS || run.len == 1);
    // SAFETY: the caller hands us the tail, dead and large enough.
    unsafe {
        let node = Node::init(NonNull::new_unchecked(run.tail));
        if RUNS {
            let units = |p: *mut u8| (p as isize - run.tail as isize) >> 4;
            let head = units(run.head);
            debug_assert!(i16::try_from(head).is_ok());
            let mut word = run.len as u64 | (head as u16 as u64) << 8;
            if HINTS && !hint.is_null() {
                let far = units(hint);
                if (-(1 << 39)..1 << 39).contains(&far) {
                    word |= (far as u64) << 24;
                }
            }
            run.tail.add(RUN_WORD).cast::<u64>().write(word);
        }
        node
    }
}

/// The run a node from the inbox carries: `(head, tail, len)`, and the
/// freer's prefetch hint (0 if none). Without runs (checked mode), every
/// node is one block.
///
/// # Safety
///
/// `node` came out of an inbox, posted by [`seal_run`].
#[inline]
pub(crate) unsafe fn open_run(node: NonNull<Node>) -> (*mut u8, *mut u8, usize, usize) {
    let tail = node.as_ptr().cast::<u8>();
    if !RUNS {
        return (tail, tail, 1, 0);
    }
    // SAFETY: `seal_run` wrote this word, and the inbox's Acquire made it
    // visible; a run's head lies in the same page as its tail.
    unsafe {
        let word = tail.add(RUN_WORD).cast::<u64>().read();
        let len = (word & 0xff) as usize;
        let head = tail.offset(((word >> 8) as u16 as i16 as isize) << 4);
        let far = (word as i64 >> 24) << 4;
        let hint = if far == 0 {
            0
        } else {
            (tail as usize).wrapping_add(far as usize)
        };
        (head, tail, len, hint)
    }
}
