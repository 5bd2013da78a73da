//! The outbox: a thread's remote frees waiting to be posted, grouped by
//! destination heap and, within it, into runs of one page (see `remote` for
//! how they travel). A plain owner-only
//! structure that lives in the thread's heap; it names its destinations
//! opaquely (`HeapOwner`), so the heap layer can hold one without knowing
//! the remote-free layer above it.

use core::ptr::{self, NonNull};

use homing_deferred::{Batch, Node};

use crate::segment::HeapOwner;
use crate::sync::{AtomicBool, AtomicUsize, Ordering};

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
/// turn) still groups each page's blocks. Enough ways that the pages a
/// thread frees into between two posts rarely collide: a producer of mixed
/// sizes (xmalloc, 16..512 B) fills some 25 classes' pages at once; with 16
/// ways its runs averaged 2.6 blocks, with 32 (or 64) they average 10.5,
/// and the owner pays one cache miss per run, so this is what its drain
/// costs. At most 64: [`Outbox::open`] is a `u64`.
pub(crate) const RUN_WAYS: usize = 32;
const _: () = assert!(RUN_WAYS <= 64 && RUN_WAYS.is_power_of_two());

/// A run: blocks of one page, newest first, linked through their first
/// words from `head` down to `tail`, the oldest. Its page and destination
/// heap are those of its tail.
#[derive(Clone, Copy)]
pub(crate) struct Run {
    pub(crate) head: *mut u8,
    pub(crate) tail: *mut u8,
    pub(crate) len: usize,
}

/// Starts an open run at `p`, alone, and returns its way entry (see
/// [`Outbox::heads`]): the run's length and tail live in its head block,
/// in the word at [`RUN_WORD`], as `len | (tail - head) / 16 << 8` (the
/// offset in 16-byte units, as an `i16`: a run lies in one page). An open
/// run thus takes one word of the outbox, which keeps the heap header in
/// one OS page with 32 ways.
///
/// # Safety
///
/// `p` is a dead block owned by the calling thread, with room for
/// [`RUN_WORD`] + 8 bytes; runs are on (`RUNS`).
#[inline(always)]
pub(crate) unsafe fn start_run(p: *mut u8) -> *mut u8 {
    // SAFETY: as the caller promises.
    unsafe { p.add(RUN_WORD).cast::<u64>().write(1) };
    p
}

/// Adds `p` at the head of the open run whose head is `head` (same page)
/// and returns the new head, or null if the run is full ([`RUN_MAX`]).
///
/// # Safety
///
/// `head` is the head of an open run made by [`start_run`]/[`grow_run`];
/// `p` is a dead block of the same page owned by the calling thread, not in
/// any run.
#[inline(always)]
pub(crate) unsafe fn grow_run(head: *mut u8, p: *mut u8) -> *mut u8 {
    // SAFETY: both blocks are ours and large enough; the word was written
    // by `start_run` or `grow_run`.
    unsafe {
        let word = head.add(RUN_WORD).cast::<u64>().read();
        let len = word & 0xff;
        if len as usize >= RUN_MAX {
            return ptr::null_mut();
        }
        // The tail's offset from `head`, moved to be from `p`.
        let from_head = (word >> 8) as u16 as i16 as isize;
        let from_p = from_head + ((head as isize - p as isize) >> 4);
        debug_assert!(i16::try_from(from_p).is_ok());
        p.cast::<*mut u8>().write(head);
        p.add(RUN_WORD)
            .cast::<u64>()
            .write((len + 1) | (from_p as u16 as u64) << 8);
        p
    }
}

/// The open run whose head is `head`, read back from its head block.
///
/// # Safety
///
/// As for [`grow_run`]'s `head`.
#[inline(always)]
pub(crate) unsafe fn open_way(head: *mut u8) -> Run {
    // SAFETY: as the caller promises; the tail lies in the head's page.
    unsafe {
        let word = head.add(RUN_WORD).cast::<u64>().read();
        Run {
            head,
            tail: head.offset(((word >> 8) as u16 as i16 as isize) << 4),
            len: (word & 0xff) as usize,
        }
    }
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
/// heap. The `body` is the owner's, except while a stealer holds the
/// outbox (see `remote`, "Stranded outboxes"); `sync` is shared.
pub(crate) struct Outbox {
    pub(crate) sync: OutboxSync,
    pub(crate) body: OutboxBody,
}

/// The words an outbox's owner and a stealer share (see `remote`).
pub(crate) struct OutboxSync {
    /// `true` while the owner uses the body (its half of the asymmetric
    /// fence pair).
    pub(crate) busy: AtomicBool,
    /// `true` while a stealer holds the body.
    pub(crate) steal: AtomicBool,
    /// Blocks waiting to be posted (written by whoever holds the body; read
    /// by anyone as a hint).
    pub(crate) pending: AtomicUsize,
    /// Bumped by whoever holds the body at each change: a scan that finds
    /// it where the previous scan left it (`seen`) and blocks pending
    /// knows the owner has not freed a remote block nor flushed since.
    pub(crate) epoch: AtomicUsize,
    /// `epoch` as the last scan saw it (written by scans only).
    pub(crate) seen: AtomicUsize,
}

/// An outbox's runs and batches.
pub(crate) struct OutboxBody {
    /// The head of each way's open run (see [`start_run`]), or null.
    pub(crate) heads: [*mut u8; RUN_WAYS],
    /// Which ways hold an open run (bit `i` for `heads[i]`), so a flush
    /// visits only those: threads that free a few blocks between
    /// allocation slow paths flush often.
    pub(crate) open: u64,
    pub(crate) slots: [Slot; OUTBOX_SLOTS],
    /// Under loom: touched by whoever writes the body, so that loom reports
    /// an owner and a stealer that do so without a happens-before edge.
    #[cfg(loom)]
    pub(crate) token: loom::cell::UnsafeCell<usize>,
}

impl Outbox {
    homing_deferred::const_fn_unless_loom! {
        /// An empty outbox.
        pub(crate) fn new() -> Outbox {
            const EMPTY: Slot = Slot {
                heap: ptr::null_mut(),
                batch: Batch::new(),
                recent: [ptr::null_mut(); HINT_DISTANCE],
            };
            Outbox {
                sync: OutboxSync {
                    busy: AtomicBool::new(false),
                    steal: AtomicBool::new(false),
                    pending: AtomicUsize::new(0),
                    epoch: AtomicUsize::new(0),
                    seen: AtomicUsize::new(usize::MAX),
                },
                body: OutboxBody {
                    heads: [ptr::null_mut(); RUN_WAYS],
                    open: 0,
                    slots: [EMPTY; OUTBOX_SLOTS],
                    #[cfg(loom)]
                    token: loom::cell::UnsafeCell::new(0),
                },
            }
        }
    }

    /// Blocks waiting to be posted (a hint when read by another thread).
    #[inline]
    pub(crate) fn pending(&self) -> usize {
        // Relaxed: a count, read by the owner (who wrote it, or a stealer
        // whose hand-back it acquired) or as a hint.
        self.sync.pending.load(Ordering::Relaxed)
    }

    /// Whether the allocation slow path should call the heap's
    /// `post_outbox` (`registry::on_slow_path`): [`POST_AT`] blocks are
    /// pending, or any are and this slow path (the `slow_paths`-th) is one
    /// in [`POST_EVERY`], or it is one that looks for other threads'
    /// stranded outboxes.
    #[inline]
    pub(crate) fn wants_post(&self, slow_paths: u32) -> bool {
        let pending = self.pending();
        pending >= POST_AT
            || (pending > 0 && slow_paths & (POST_EVERY - 1) == 0)
            || slow_paths & (SCAN_EVERY - 1) == 0
    }
}

/// Remote frees pending that make the next allocation slow path post the
/// outbox. Posting at every slow path with anything pending sent batches
/// of a few blocks: in the Rust `mstress` (8 threads) 624 k drains of 3.8
/// nodes each for 2.5 M blocks, every post a compare-exchange on a line the
/// owner also writes and every drain too short for the prefetch hints
/// ([`HINT_DISTANCE`]) to overlap its misses. Waiting for 16 (or
/// [`POST_EVERY`] slow paths) made it 256 k drains of 8.9 nodes
/// (`drain_inbox` 13% → 4% of the samples, `post` 5% → 1%) and cut that
/// run's time and CPU time by 12–15% (5 interleaved runs) and its page
/// faults by 10–16%; `larson` (8 threads) −16%, the other rows within
/// noise. 64 measured the same; 16 keeps fewer blocks away from their
/// owners.
pub(crate) const POST_AT: usize = 16;

/// ... and one allocation slow path in this many posts whatever is
/// pending, so a thread that frees a few remote blocks now and then still
/// sends them home within a few slow paths (an idle one's are posted by
/// other threads' scans, see `remote`; an exiting one's at exit).
pub(crate) const POST_EVERY: u32 = 8;
const _: () = assert!(POST_EVERY.is_power_of_two());

/// One allocation slow path in this many looks at the clock to see whether
/// a scan for stranded outboxes is due (see `remote`).
pub(crate) const SCAN_EVERY: u32 = 64;
const _: () = assert!(SCAN_EVERY.is_power_of_two());

impl OutboxBody {
    /// Marks a write of the body (loom-checked under `cfg(loom)`).
    #[inline(always)]
    pub(crate) fn touch(&mut self) {
        #[cfg(loom)]
        // SAFETY: only the holder of the body calls this; loom reports two
        // holders without a happens-before edge between them.
        self.token.with_mut(|t| unsafe { *t += 1 });
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
