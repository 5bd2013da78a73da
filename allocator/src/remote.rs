//! Deferred cross-thread free: outboxes, posting, and claims on abandoned
//! heaps.
//!
//! # The path of a remote free
//!
//! A thread that frees a block owned by another heap never touches that
//! heap's pages. It adds the block to its **outbox** slot for the owner
//! (plain stores; the block's first word becomes the link), grouped in
//! **runs**: the blocks of one page freed in a row (see `outbox` for how a
//! run is sealed into one node). When the outbox holds
//! `HOMING_OUTBOX_BUDGET` blocks, at this thread's allocation slow path
//! once a few are pending (`outbox::POST_AT`, or one slow path in
//! `outbox::POST_EVERY`), at `collect()`, at thread exit, and when another thread finds it idle (see
//! "Stranded outboxes"), each slot's runs are **posted**:
//! published to the owner's inbox with one compare-exchange
//! (`homing-deferred`). The owner takes them back in its own context when it
//! drains its inbox, splicing each run onto its page in one step
//! (`Heap::free_run`).
//!
//! Exceptions, each for a reason:
//! - A thread with no heap (it never allocated, or its heap was torn down)
//!   posts each block at once: it has nowhere to keep an outbox.
//! - A first-class `Heap`'s blocks are posted at once, one by one: a
//!   first-class heap can be destroyed, and a block waiting in some other
//!   thread's outbox would then point into unmapped memory.
//!
//! # Stranded outboxes
//!
//! A thread that frees other threads' blocks and then goes idle (blocks in
//! a wait, or stops allocating) would keep up to a budget of them in its
//! outbox, where their owner can neither reuse them nor empty their pages.
//! So other threads take such an outbox away from it for a moment and post
//! it (**steal** it, [`try_steal`]):
//! - **When.** One allocation slow path in `SCAN_EVERY` (64) reads the
//!   clock; if a purge delay (`HOMING_PURGE_DELAY_MS`) has passed since the
//!   process's last scan, it scans every heap ([`reclaim_stale`]; the
//!   schedule is `registry::scan_if_due`, a layer up, as a scan walks the
//!   registry), and so does each round of the background purger. An outbox with blocks
//!   pending whose `epoch` (bumped at every change) is where the previous
//!   scan saw it has not changed for a scan period: it is stolen. So
//!   stranded blocks are posted within about two delays, as long as some
//!   thread allocates (the owner does, if it needs them) or the purger runs.
//! - **How.** The owner marks each use of its outbox body with `busy`
//!   (store, compiler fence, then a load of `steal`: no atomic
//!   read-modify-write and no fence instruction on its path); a stealer
//!   sets `steal` (compare-exchange), runs `membarrier(PRIVATE_EXPEDITED)`,
//!   which makes every running thread of the process execute a full
//!   barrier, then reads `busy`. Between the two, at least one side sees
//!   the other's store (the store-buffering outcome is forbidden, as with
//!   two `SeqCst` fences): either the owner sees `steal` and posts its block
//!   alone, at once (a flush leaves the body to the stealer; thread exit
//!   waits for it), or the stealer sees `busy` and tries again next scan,
//!   or it sees neither and the owner's last use of the body, released by
//!   `busy = false`, happens before its flush. Without `membarrier` (old
//!   kernels) nobody steals. Loom has no `membarrier`: its model
//!   (`a_steal_races_the_owner_of_the_outbox`) runs both halves as `SeqCst`
//!   fences, which is the pair's meaning.
//!
//! # Abandoned heaps
//!
//! A heap whose thread exited is `ABANDONED`: nobody drains its inbox. A
//! poster that finds it so **claims** it (compare-exchange `ABANDONED →
//! CLAIMED`), frees its blocks straight into the heap's pages, gives empty
//! pages and segments back, and lets go. So frees into an abandoned heap are
//! never stranded, and its memory follows its live blocks down to zero, at
//! which point the heap becomes `FREE` for reuse.
//!
//! The one race: a poster publishes to the inbox just as the claimer (or the
//! exiting owner) lets go. Both sides write, then issue a `SeqCst` fence,
//! then read the other's word (poster: inbox then state; releaser: state
//! then inbox). With a sequentially consistent fence between each write and
//! read, at least one of them sees the other's write (the store-buffering
//! case is forbidden), so someone always claims and drains the late batch.

use core::ptr;

use homing_deferred::Batch;

use crate::heap::{self, Heap, ABANDONED, CLAIMED, FREE};
use crate::options;
use crate::outbox::{
    grow_run, open_way, seal_run, start_run, OutboxSync, Run, Slot, HINT_DISTANCE, OUTBOX_SLOTS,
    RUNS, RUN_WAYS,
};
use crate::segment::{self, HeapOwner};
use crate::stats::GLOBAL;
use crate::sync::{fence, Ordering};

/// The outbox slot for `owner`: a hash of the heap address (heaps are at
/// least OS-page aligned, so the low 12 bits carry nothing).
#[inline(always)]
fn slot_index(owner: *mut HeapOwner) -> usize {
    ((owner as usize) >> 12) % OUTBOX_SLOTS
}

/// The way of the outbox's run table for a block at `p` in a page of
/// `1 << shift` bytes: its page number, folded with its segment's.
#[inline(always)]
fn way_index(p: *mut u8, shift: usize) -> usize {
    let a = p as usize;
    ((a >> shift) ^ (a >> segment::SEGMENT_SHIFT)) % RUN_WAYS
}

/// Frees `p`, a block of `owner`'s, from a thread whose heap is `mine`
/// (possibly the empty heap).
///
/// # Safety
///
/// `p` is a live block of `owner` that the caller gives up (small/medium,
/// or a first-class heap's huge block); `mine` is the calling thread's heap.
pub(crate) unsafe fn free_remote(mine: *mut Heap, owner: *mut Heap, p: *mut u8) {
    let alone = Run {
        head: p,
        tail: p,
        len: 1,
    };
    // SAFETY: `owner` is live (heaps are never unmapped); `mine` is ours;
    // `p` is live, so its segment header is (its page size is all we read).
    // The outbox body is ours between `enter` and `leave`.
    unsafe {
        if mine == heap::empty_heap() || !(*owner).is_thread_heap || !enter(&(*mine).outbox.sync) {
            // No outbox, a first-class heap's block, or a stealer holds
            // our outbox this instant: the block travels alone, now.
            let mut batch = Batch::new();
            batch.push_front(seal_run(alone, ptr::null_mut()));
            if mine == heap::empty_heap() {
                // Relaxed: a statistic.
                GLOBAL
                    .remote_posted_heapless
                    .fetch_add(1, Ordering::Relaxed);
            } else {
                (*mine).counters.remote_posted.add(1);
            }
            return post(owner, &mut batch);
        }
        let outbox = &mut (*mine).outbox.body;
        outbox.touch();
        if RUNS {
            let shift = (*segment::segment_of(p)).page_shift;
            let index = way_index(p, shift);
            let head = outbox.heads[index];
            // Same page as the run open in this way (pages are aligned to
            // their size): the run grows at its head (the block's first
            // word links to the previous head). Same page, same owner.
            let grown = if !head.is_null() && (p as usize ^ head as usize) >> shift == 0 {
                grow_run(head, p)
            } else {
                ptr::null_mut()
            };
            if grown.is_null() {
                // Another page's run (or a full one) gives way: it closes.
                outbox.heads[index] = start_run(p);
                outbox.open |= 1 << index;
                if !head.is_null() {
                    close_run(&mut outbox.slots, open_way(head));
                }
            } else {
                outbox.heads[index] = grown;
            }
        } else {
            // Without runs (checked mode) the block travels alone at once.
            close_run(&mut outbox.slots, alone);
        }
        let sync = &(*mine).outbox.sync;
        // Relaxed (both): words of the body's holder (see `OutboxSync`),
        // published to a stealer by `leave`'s Release.
        let pending = sync.pending.load(Ordering::Relaxed) + 1;
        sync.pending.store(pending, Ordering::Relaxed);
        bump_epoch(sync);
        (*mine).counters.remote_posted.add(1);
        if pending >= options::outbox_budget() {
            flush_body(mine);
        }
        leave(sync);
    }
}

/// Seals `run` into the batch of its destination (the heap of its tail's
/// segment), posting the batch another heap had in that slot first.
///
/// # Safety
///
/// `run` is a non-empty run of the calling thread's outbox: dead blocks of
/// one page of a live heap.
#[inline]
unsafe fn close_run(slots: &mut [Slot; OUTBOX_SLOTS], run: Run) {
    // SAFETY: the run's blocks are live until posted, so their segment
    // header is, and its `heap` cannot change meanwhile.
    unsafe {
        let dest = (*segment::segment_of(run.tail)).heap;
        let slot = &mut slots[slot_index(dest)];
        if slot.heap != dest {
            if !slot.batch.is_empty() {
                post(slot.heap.cast(), &mut slot.batch);
            }
            slot.heap = dest;
        }
        let i = slot.batch.len() % HINT_DISTANCE;
        let hint = slot.recent[i];
        slot.recent[i] = run.tail;
        slot.batch.push_front(seal_run(run, hint));
    }
}

/// Posts every pending batch of `mine`'s outbox, open runs included —
/// unless a stealer holds it this instant (then the stealer posts them).
///
/// # Safety
///
/// `mine` is the calling thread's real heap.
#[cold]
pub(crate) unsafe fn flush_outbox(mine: *mut Heap) {
    // SAFETY: the body is ours between `enter` and `leave`.
    unsafe {
        let sync = &(*mine).outbox.sync;
        if enter(sync) {
            flush_body(mine);
            leave(sync);
        }
    }
}

/// As [`flush_outbox`], but waits out a stealer, so that everything this
/// thread freed is on its way when it returns (thread exit, `collect()`).
/// A stealer holds an outbox only to post it (bounded work, no waiting on
/// anyone), so this ends.
///
/// # Safety
///
/// As for [`flush_outbox`].
#[cold]
pub(crate) unsafe fn flush_outbox_now(mine: *mut Heap) {
    // SAFETY: as above.
    unsafe {
        let sync = &(*mine).outbox.sync;
        while !enter(sync) {
            crate::os::yield_now();
        }
        flush_body(mine);
        leave(sync);
    }
}

/// The body of a flush, by whoever holds the body (owner or stealer).
///
/// # Safety
///
/// The caller holds `heap`'s outbox body (`enter`, or a steal).
unsafe fn flush_body(heap: *mut Heap) {
    // SAFETY: its runs and batches hold dead blocks of live heaps.
    unsafe {
        let outbox = &mut (*heap).outbox.body;
        outbox.touch();
        let mut open = core::mem::take(&mut outbox.open);
        while open != 0 {
            let i = open.trailing_zeros() as usize;
            open &= open - 1;
            let head = core::mem::replace(&mut outbox.heads[i], ptr::null_mut());
            debug_assert!(!head.is_null());
            close_run(&mut outbox.slots, open_way(head));
        }
        debug_assert!(outbox.heads.iter().all(|h| h.is_null()));
        for slot in outbox.slots.iter_mut() {
            if !slot.batch.is_empty() {
                post(slot.heap.cast(), &mut slot.batch);
            }
        }
        let sync = &(*heap).outbox.sync;
        // Relaxed: as in `free_remote`.
        sync.pending.store(0, Ordering::Relaxed);
        bump_epoch(sync);
    }
}

/// Marks a change of the body (see `OutboxSync::epoch`).
#[inline(always)]
fn bump_epoch(sync: &OutboxSync) {
    // Relaxed: written by the body's holder only; scans read it as a hint.
    let e = sync.epoch.load(Ordering::Relaxed);
    sync.epoch.store(e.wrapping_add(1), Ordering::Relaxed);
}

// --------------------------------------------------------------------
// Stranded outboxes
// --------------------------------------------------------------------

/// The owner takes its outbox's body; `false` if a stealer holds it.
#[inline(always)]
fn enter(sync: &OutboxSync) -> bool {
    // Relaxed store, then the light fence, then the load: the owner's half
    // of the asymmetric pair (see the module doc); with the stealer's heavy
    // fence between its store of `steal` and its load of `busy`, at least
    // one of us sees the other's store.
    sync.busy.store(true, Ordering::Relaxed);
    light_fence();
    // Acquire: a steal that just ended (its Release store of `false`)
    // emptied the body; we see it so.
    if sync.steal.load(Ordering::Acquire) {
        // Relaxed: we wrote nothing of the body.
        sync.busy.store(false, Ordering::Relaxed);
        return false;
    }
    true
}

/// The owner gives the body back.
#[inline(always)]
fn leave(sync: &OutboxSync) {
    // Release: a stealer that reads `false` (Acquire) sees our writes to
    // the body.
    sync.busy.store(false, Ordering::Release);
}

/// The owner's half of the fence pair: a compiler fence (the stealer's
/// `membarrier` makes it a full barrier whenever it matters). Under loom
/// and Miri, which have no `membarrier`, both halves are full fences.
#[inline(always)]
fn light_fence() {
    #[cfg(not(any(loom, miri)))]
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    #[cfg(any(loom, miri))]
    fence(Ordering::SeqCst);
}

/// The stealer's half: `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, a
/// full barrier on every CPU running a thread of this process (those not
/// running passed one when they were switched out). `false` where the
/// kernel lacks it: then nobody steals.
fn heavy_fence() -> bool {
    #[cfg(any(loom, miri))]
    {
        fence(Ordering::SeqCst);
        true
    }
    #[cfg(not(any(loom, miri)))]
    {
        membarrier::registered() && membarrier::call(membarrier::CMD_PRIVATE_EXPEDITED)
    }
}

/// The process's registration for `membarrier(PRIVATE_EXPEDITED)`.
///
/// The kernel makes a registration wait for an RCU grace period once the
/// process has more than one thread (11 ms seen on this project's 2-core
/// VM), and a thread that registered from its allocation slow path on
/// its first steal stalled that long, holding up its own work: long enough
/// that pages it had queued for reuse aged past the purge delay and were
/// purged under it (`tests/warm_segments.rs` failed one run in three
/// whenever the main thread's outbox was stolen). So homing registers when
/// it is loaded, while a process normally has a single thread and the
/// kernel skips the wait; a library loaded later registers then, still off
/// any allocation. The steal's own registration is only the fallback for a
/// constructor that did not run.
#[cfg(not(any(loom, miri)))]
mod membarrier {
    use crate::sync::plain::{AtomicU8, Ordering};

    pub(super) const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    /// 0: not registered yet; 1: registered; 2: unavailable.
    static STATE: AtomicU8 = AtomicU8::new(0);

    /// Runs `membarrier(cmd, 0, 0)`; `true` on success.
    pub(super) fn call(cmd: libc::c_long) -> bool {
        // SAFETY: `membarrier` takes no pointer; `__errno_location` is the
        // calling thread's errno slot, given back as it was (a C program's
        // `malloc`/`free` must not change it).
        unsafe {
            let slot = libc::__errno_location();
            let saved = *slot;
            let ok = libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_long,
                0 as libc::c_long,
            ) == 0;
            *slot = saved;
            ok
        }
    }

    /// Whether the process is registered, registering it first if nobody
    /// has tried yet.
    pub(super) fn registered() -> bool {
        // Relaxed: a once-computed capability; racing registrations are
        // idempotent, and the kernel orders the registration before any
        // later `membarrier` call of the process.
        let mut state = STATE.load(Ordering::Relaxed);
        if state == 0 {
            state = if call(CMD_REGISTER_PRIVATE_EXPEDITED) {
                1
            } else {
                2
            };
            STATE.store(state, Ordering::Relaxed);
        }
        state == 1
    }

    /// Registers when the library is loaded (see the module doc).
    #[cfg(target_os = "linux")]
    #[used]
    #[link_section = ".init_array"]
    static REGISTER_AT_LOAD: extern "C" fn() = register_at_load;

    #[cfg(target_os = "linux")]
    extern "C" fn register_at_load() {
        registered();
    }
}

/// Takes `victim`'s outbox body away from its owner for a moment and posts
/// everything in it. `false` if someone else is stealing it, its owner is
/// using it this instant, or there is no `membarrier`.
///
/// # Safety
///
/// `victim` is a heap (heaps are never unmapped); the caller does not hold
/// its outbox body.
pub(crate) unsafe fn try_steal(victim: *mut Heap) -> bool {
    // SAFETY: heaps are never unmapped; the protocol gives us the body.
    unsafe {
        let sync = &(*victim).outbox.sync;
        // Acquire: the previous stealer's hand-back (Release) happens before
        // us. Relaxed on failure: we do nothing.
        if sync
            .steal
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // Acquire: the owner's `leave` (Release) happens before our use of
        // the body.
        let stolen = heavy_fence() && !sync.busy.load(Ordering::Acquire);
        if stolen {
            flush_body(victim);
        }
        // Release: an owner that reads `false` (Acquire) sees the body as
        // we leave it (empty).
        sync.steal.store(false, Ordering::Release);
        stolen
    }
}

/// One scan: posts the outbox of every heap in `heaps` (but `mine`) that
/// has blocks pending and has not changed since the previous scan (its
/// owner has neither freed a remote block nor flushed for a scan period).
/// Returns how many it stole.
///
/// # Safety
///
/// Every heap of `heaps` is a heap; `mine` is the calling thread's.
pub(crate) unsafe fn reclaim_stale(
    heaps: impl Iterator<Item = *mut Heap>,
    mine: *mut Heap,
) -> usize {
    let mut stolen = 0;
    for heap in heaps {
        if heap == mine {
            continue;
        }
        // SAFETY: heaps are never unmapped; we read shared words only,
        // until `try_steal`'s protocol gives us the body.
        unsafe {
            let sync = &(*heap).outbox.sync;
            // Relaxed (all three): hints; a wrong guess costs one steal
            // attempt (always safe) or a period's delay.
            if sync.pending.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let epoch = sync.epoch.load(Ordering::Relaxed);
            if sync.seen.load(Ordering::Relaxed) != epoch {
                sync.seen.store(epoch, Ordering::Relaxed);
                continue;
            }
            if try_steal(heap) {
                stolen += 1;
            }
        }
    }
    stolen
}

/// Hands `batch` to `owner`: into its inbox, or, if it is abandoned, straight
/// into its pages under a claim.
///
/// # Safety
///
/// The batch holds runs of dead blocks of `owner`.
unsafe fn post(owner: *mut Heap, batch: &mut Batch) {
    // SAFETY: heaps are never unmapped; blocks are `owner`'s.
    unsafe {
        let state = &(*owner).state;
        // Relaxed: a hint; the claim's Acquire is what orders our access.
        if state.load(Ordering::Relaxed) == ABANDONED && try_claim(owner) {
            for node in core::mem::take(batch).into_chain() {
                Heap::free_run(owner, node);
            }
            let_go(owner);
            return;
        }
        batch.publish(&(*owner).inbox);
        // See the module doc: publish, fence, then look at the state, so a
        // heap let go at the same moment is claimed by one of us.
        fence(Ordering::SeqCst);
        if state.load(Ordering::Relaxed) == ABANDONED && try_claim(owner) {
            let_go(owner);
        }
    }
}

/// Tries to take an abandoned heap for a moment.
pub(crate) fn try_claim(heap: *mut Heap) -> bool {
    // Acquire: we are about to touch the heap's pages, which the thread that
    // let it go wrote before its Release store of ABANDONED.
    // SAFETY: heaps are never unmapped.
    unsafe { &(*heap).state }
        .compare_exchange(ABANDONED, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
}

/// Lets go of a heap we own (a claim, or the heap of an exiting thread):
/// drains its inbox, gives back the pages its frees emptied (and the whole
/// heap's memory once no page is in use), then marks it
/// `ABANDONED` (or `FREE` if it holds nothing) — and repeats if a batch
/// arrived meanwhile (see the module doc).
///
/// # Safety
///
/// The caller owns `heap` (claimed, or its exiting thread) and has flushed
/// its own outbox if it had one.
pub(crate) unsafe fn let_go(heap: *mut Heap) {
    loop {
        // SAFETY: we own the heap until the store below.
        let empty = unsafe {
            Heap::tidy_abandoned(heap);
            (*heap).is_empty()
        };
        // SAFETY: heaps are never unmapped.
        let state = unsafe { &(*heap).state };
        if empty {
            // Release: the next owner (a new heap, via Acquire) sees the heap
            // as we leave it. Nothing can be in flight to a heap without
            // segments, so no inbox check is needed.
            state.store(FREE, Ordering::Release);
            return;
        }
        // Release: publishes our writes to the pages to the next claimer or
        // adopter, whose compare-exchange acquires.
        state.store(ABANDONED, Ordering::Release);
        fence(Ordering::SeqCst);
        // SAFETY: heaps are never unmapped.
        if unsafe { (*heap).inbox.is_empty() } || !try_claim(heap) {
            return;
        }
    }
}

/// The calling thread is exiting: post its outbox and abandon its heap.
///
/// # Safety
///
/// `heap` is the calling thread's real heap, no longer reachable from its
/// thread-local.
pub(crate) unsafe fn abandon(heap: *mut Heap) {
    // SAFETY: forwarded.
    unsafe {
        flush_outbox_now(heap);
        // Empty pages go back to their segments, but while blocks are still
        // live, memory is not purged nor spare segments unmapped here: a new
        // thread usually adopts this heap soon (thread pools, servers
        // replacing workers) and would fault it all in again. The purge delay
        // still applies: the threads that free the live blocks (claims) and
        // the adopter purge on schedule, and when the last block goes,
        // everything goes (`tidy_abandoned`).
        Heap::collect(heap, false);
        let_go(heap);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::outbox::RUN_MAX;
    use crate::registry::Registry;
    use core::ptr::NonNull;

    /// Unmaps a test heap that holds nothing (only a registry of the test's
    /// own knows it; the allocator itself never unmaps a heap).
    ///
    /// # Safety
    ///
    /// `heap` came from a test registry, holds no segment, and is used by
    /// nothing any more.
    unsafe fn forget(heap: *mut Heap) {
        let bytes = crate::os::align_up(core::mem::size_of::<Heap>(), crate::os::OS_PAGE).unwrap();
        // SAFETY: forwarded; the registry mapped exactly this.
        unsafe {
            crate::os::unmap(
                NonNull::new_unchecked(heap.cast()),
                bytes,
                crate::os::OS_PAGE,
            )
        };
    }

    /// The end of every test here: once collected, the owner holds nothing
    /// (every block came home), and both heaps are unmapped.
    ///
    /// # Safety
    ///
    /// As for [`forget`], for both heaps; the calling thread owns `owner`.
    unsafe fn end_empty(owner: *mut Heap, freer: *mut Heap) {
        // SAFETY: forwarded.
        unsafe {
            Heap::collect(owner, true);
            assert!((*owner).is_empty());
            forget(owner);
            forget(freer);
        }
    }

    /// Two thread heaps of a registry of the test's own (the test thread
    /// owns both, playing owner and freer in turn).
    fn two_heaps(registry: &Registry) -> (*mut Heap, *mut Heap) {
        (
            registry.acquire(true).expect("a heap"),
            registry.acquire(true).expect("a heap"),
        )
    }

    #[test]
    fn remote_frees_wait_in_the_outbox_then_reach_the_owners_inbox() {
        let registry = Registry::new();
        let (owner, freer) = two_heaps(&registry);
        // SAFETY: this thread owns both heaps; each block is freed once.
        unsafe {
            let blocks: std::vec::Vec<*mut u8> =
                (0..10).map(|_| Heap::alloc_sized(owner, 64, 16)).collect();
            for &p in &blocks {
                free_remote(freer, owner, p);
            }
            // Batched, below the budget: nothing posted yet.
            assert_eq!((*freer).outbox.pending(), blocks.len());
            assert!((*owner).inbox.is_empty());
            flush_outbox(freer);
            assert_eq!((*freer).outbox.pending(), 0);
            assert!(!(*owner).inbox.is_empty());
            assert_eq!(Heap::drain_inbox(owner), blocks.len());
            assert!(Heap::check(owner));
            // The blocks are the owner's again: their page counts none of
            // them (only the direct page's pin).
            let page = crate::segment::page_of(crate::segment::segment_of(blocks[0]), blocks[0]);
            assert_eq!(
                (*page).used_blocks() as usize - usize::from((*page).pinned),
                0
            );
            end_empty(owner, freer);
        }
    }

    #[test]
    fn the_slow_path_posts_once_a_few_are_pending_or_every_few_slow_paths() {
        use crate::outbox::{POST_AT, POST_EVERY, SCAN_EVERY};
        let registry = Registry::new();
        let (owner, freer) = two_heaps(&registry);
        // SAFETY: as above.
        unsafe {
            let blocks: std::vec::Vec<*mut u8> = (0..POST_AT)
                .map(|_| Heap::alloc_sized(owner, 48, 16))
                .collect();
            // (`wants` reads the outbox afresh each time: `free_remote`
            // writes it in between, so no reference to it is held.)
            let wants = |s: u32| (*freer).outbox.wants_post(s);
            // Nothing pending: only the scan's slow paths call the post.
            assert!(!wants(1));
            assert!(wants(SCAN_EVERY));
            free_remote(freer, owner, blocks[0]);
            // One pending: it waits for the POST_EVERY-th slow path.
            let posting: std::vec::Vec<u32> = (1..=2 * POST_EVERY).filter(|&s| wants(s)).collect();
            assert_eq!(posting, [POST_EVERY, 2 * POST_EVERY]);
            for &p in &blocks[1..] {
                free_remote(freer, owner, p);
            }
            // POST_AT pending: any slow path posts.
            assert_eq!((*freer).outbox.pending(), POST_AT);
            assert!(wants(1));
            flush_outbox(freer);
            assert_eq!(Heap::drain_inbox(owner), POST_AT);
            end_empty(owner, freer);
        }
    }

    #[test]
    fn an_abandoned_heap_becomes_free_when_its_last_block_comes_home() {
        use crate::heap::{ABANDONED, FREE};
        use crate::segment::{page_of, segment_of};
        let registry = Registry::new();
        let (owner, freer) = two_heaps(&registry);
        // SAFETY: this thread owns both heaps (playing the exiting owner,
        // then a freer that claims it); each block is freed once.
        unsafe {
            let page_of_block = |p: *mut u8| page_of(segment_of(p), p);
            // A full page of 64-byte blocks, and one block on the next page,
            // which is then the class's direct page.
            let mut full = std::vec::Vec::new();
            let mut first = Heap::alloc_sized(owner, 64, 16);
            let page = page_of_block(first);
            while page_of_block(first) == page {
                full.push(first);
                first = Heap::alloc_sized(owner, 64, 16);
            }
            let last = first;
            // The owner's thread exits. What it frees of its own is done;
            // then, between the collection and its letting go, the freer's
            // frees of the full page arrive in its inbox.
            Heap::collect(owner, false);
            for &p in &full {
                free_remote(freer, owner, p);
            }
            flush_outbox(freer);
            let_go(owner);
            // One live block: abandoned.
            assert_eq!((*owner).state.load(Ordering::Relaxed), ABANDONED);
            // Its last block comes home (the freer claims the heap): nothing
            // is left, so the heap is free and holds no memory. (The drain
            // while letting go had kept the emptied page as a spare of the
            // direct page's class, in use for ever: the heap stayed
            // abandoned with no block, holding that page and its segment.)
            free_remote(freer, owner, last);
            flush_outbox(freer);
            assert_eq!(
                (*owner).state.load(Ordering::Relaxed),
                FREE,
                "the heap holds no block but is not free"
            );
            assert!((*owner).is_empty());
            forget(owner);
            forget(freer);
        }
    }

    #[test]
    fn a_full_outbox_posts_by_itself() {
        let registry = Registry::new();
        let (owner, freer) = two_heaps(&registry);
        let budget = options::outbox_budget();
        // SAFETY: as above.
        unsafe {
            let blocks: std::vec::Vec<*mut u8> = (0..budget)
                .map(|_| Heap::alloc_sized(owner, 32, 16))
                .collect();
            for &p in &blocks {
                free_remote(freer, owner, p);
            }
            // The budget-th free posted everything.
            assert_eq!((*freer).outbox.pending(), 0);
            assert_eq!(Heap::drain_inbox(owner), budget);
            end_empty(owner, freer);
        }
    }

    #[test]
    fn a_scan_steals_an_outbox_unchanged_since_the_previous_scan() {
        let registry = Registry::new();
        let (owner, freer) = two_heaps(&registry);
        // SAFETY: this thread owns both heaps and plays the freer, the
        // scanner and the owner in turn (the protocol's atomics are real);
        // each block is freed once.
        unsafe {
            let blocks: std::vec::Vec<*mut u8> =
                (0..10).map(|_| Heap::alloc_sized(owner, 48, 16)).collect();
            for &p in &blocks[..5] {
                free_remote(freer, owner, p);
            }
            let heaps = [owner, freer];
            // The first scan only notes the freer's epoch.
            assert_eq!(reclaim_stale(heaps.iter().copied(), owner), 0);
            assert!((*owner).inbox.is_empty());
            // The freer frees again before the next scan: not stale.
            free_remote(freer, owner, blocks[5]);
            assert_eq!(reclaim_stale(heaps.iter().copied(), owner), 0);
            assert_eq!((*freer).outbox.pending(), 6);
            // Unchanged since: stolen and posted (a scanner skips its own
            // heap, and the owner's outbox is empty anyway).
            assert_eq!(reclaim_stale(heaps.iter().copied(), freer), 0);
            assert_eq!(reclaim_stale(heaps.iter().copied(), owner), 1);
            assert_eq!((*freer).outbox.pending(), 0);
            assert_eq!(Heap::drain_inbox(owner), 6);
            // Empty outboxes are left alone.
            assert_eq!(reclaim_stale(heaps.iter().copied(), owner), 0);
            // The freer goes on using its outbox as before.
            for &p in &blocks[6..] {
                free_remote(freer, owner, p);
            }
            assert_eq!((*freer).outbox.pending(), 4);
            flush_outbox(freer);
            assert_eq!(Heap::drain_inbox(owner), 4);
            assert!(Heap::check(owner));
            end_empty(owner, freer);
        }
    }

    #[test]
    fn a_steal_waits_for_a_busy_owner_and_an_owner_posts_around_a_steal() {
        let registry = Registry::new();
        let (owner, freer) = two_heaps(&registry);
        // SAFETY: as above; the flags are set by hand to put each side in
        // the other's way.
        unsafe {
            let blocks: std::vec::Vec<*mut u8> =
                (0..3).map(|_| Heap::alloc_sized(owner, 48, 16)).collect();
            free_remote(freer, owner, blocks[0]);
            let sync = &(*freer).outbox.sync;
            // The owner is inside its outbox: no steal.
            sync.busy.store(true, Ordering::Relaxed);
            assert!(!try_steal(freer));
            assert!(!sync.steal.load(Ordering::Relaxed));
            assert_eq!((*freer).outbox.pending(), 1);
            sync.busy.store(false, Ordering::Relaxed);
            // A stealer holds the outbox: the owner's free travels alone,
            // at once, and its flush leaves the body to the stealer.
            sync.steal.store(true, Ordering::Relaxed);
            free_remote(freer, owner, blocks[1]);
            flush_outbox(freer);
            assert_eq!((*freer).outbox.pending(), 1);
            assert_eq!(Heap::drain_inbox(owner), 1);
            // Someone is stealing already: a second stealer backs off.
            assert!(!try_steal(freer));
            sync.steal.store(false, Ordering::Relaxed);
            // Free again: a steal posts everything.
            assert!(try_steal(freer));
            assert_eq!((*freer).outbox.pending(), 0);
            free_remote(freer, owner, blocks[2]);
            flush_outbox_now(freer);
            assert_eq!(Heap::drain_inbox(owner), 2);
            end_empty(owner, freer);
        }
    }

    /// The lengths of the runs waiting in `owner`'s inbox, newest first;
    /// each run is then freed into the owner's pages.
    ///
    /// # Safety
    ///
    /// The calling thread owns `owner`.
    unsafe fn take_runs(owner: *mut Heap) -> std::vec::Vec<usize> {
        let mut lens = std::vec::Vec::new();
        // SAFETY: forwarded; the runs are the owner's.
        unsafe {
            for node in (*owner).inbox.take() {
                let (_, _, len, _) = crate::outbox::open_run(node);
                lens.push(len);
                assert_eq!(Heap::free_run(owner, node), len);
            }
        }
        lens
    }

    #[test]
    fn frees_of_one_page_travel_as_one_run_across_frees_of_other_pages() {
        let registry = Registry::new();
        let (owner, freer) = two_heaps(&registry);
        // SAFETY: this thread owns both heaps; each block is freed once.
        unsafe {
            // 300 blocks of 16 B share a page; a 1 KiB block is elsewhere.
            let small: std::vec::Vec<*mut u8> =
                (0..300).map(|_| Heap::alloc_sized(owner, 16, 16)).collect();
            let other = Heap::alloc_sized(owner, 1024, 16);
            let page = |p| crate::segment::page_of(crate::segment::segment_of(p), p);
            assert!(small.iter().all(|&p| page(p) == page(small[0])));
            for &p in &small[..3] {
                free_remote(freer, owner, p);
            }
            free_remote(freer, owner, other);
            // Below the outbox budget, so only our flush posts.
            let rest = (options::outbox_budget() - 5).min(small.len() - 3);
            for &p in &small[3..3 + rest] {
                free_remote(freer, owner, p);
            }
            flush_outbox(freer);
            let mut lens = take_runs(owner);
            lens.sort_unstable();
            if RUNS {
                // The page's blocks in one run, though a free of another
                // page came between; the other page's block alone.
                assert_eq!(lens, [1, rest + 3]);
            } else {
                assert_eq!(lens.len(), rest + 4);
            }
            for &p in &small[3 + rest..] {
                free_remote(freer, owner, p);
            }
            flush_outbox(freer);
            take_runs(owner);
            assert!(Heap::check(owner));
            // Every block is the owner's again, and comes out again.
            assert_eq!(
                (*page(small[0])).used_blocks() as usize - usize::from((*page(small[0])).pinned),
                0
            );
            let again: std::vec::Vec<*mut u8> =
                (0..300).map(|_| Heap::alloc_sized(owner, 16, 16)).collect();
            let mut sorted = again.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 300);
            for p in again {
                Heap::free_owned(owner, p);
            }
            end_empty(owner, freer);
        }
    }

    #[test]
    fn a_sealed_run_reads_back_with_its_hint() {
        if !RUNS {
            return;
        }
        let mut words = [0u64; 64];
        let base = words.as_mut_ptr().cast::<u8>();
        // SAFETY: every address lies in `words`; the "blocks" are ours.
        unsafe {
            let tail = base.add(256);
            for (head, hint, len) in [
                (base.add(256), base.add(0), 1),
                (base.add(32), base.add(480), 7),
                (base.add(496), core::ptr::null_mut(), RUN_MAX),
            ] {
                let run = Run { head, tail, len };
                let node = seal_run(run, hint);
                let (h, t, l, hinted) = crate::outbox::open_run(node);
                assert_eq!((h, t, l), (head, tail, len));
                let expected = if crate::outbox::HINTS {
                    hint as usize
                } else {
                    0
                };
                assert_eq!(hinted, expected);
            }
            // A hint too far to encode is dropped, never wrong.
            let far = tail.wrapping_add(1 << 45);
            let node = seal_run(
                Run {
                    head: tail,
                    tail,
                    len: 1,
                },
                far,
            );
            assert_eq!(crate::outbox::open_run(node).3, 0);
        }
    }
}
