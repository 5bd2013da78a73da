//! A server under load: worker threads allocate blocks of random sizes, pass
//! them to each other through a shared transfer array, free what they find
//! there, and are killed and replaced all the time, so most blocks are freed
//! by a thread other than the one that allocated them, often after that
//! thread has exited.
//!
//! Every block carries a cookie (see `common`) checked when it is freed,
//! and a serial whose liveness bit catches double frees and blocks handed
//! out twice. At the end the statistics balance and the peak RSS stayed
//! within a stated bound.
//!
//! One `#[test]` only: see `common` for why.

mod common;

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use common::{Liveness, Rng};

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

/// Worker threads alive at any time.
const THREADS: usize = 8;
/// Generations: every worker is replaced this many times (staggered: a
/// replacement starts as soon as one worker exits, while the others run).
const ROUNDS: usize = if cfg!(miri) { 2 } else { 12 };
/// Operations per worker.
const OPS: usize = if cfg!(miri) { 150 } else { 25_000 };
/// Transfer array slots (each holds at most one block).
const TRANSFER_SLOTS: usize = if cfg!(miri) { 64 } else { 4096 };
/// Blocks a worker keeps to itself (freed locally, or passed on at exit).
const LOCAL: usize = 32;
/// Every allocation gets a serial below this.
const MAX_SERIALS: u64 = (THREADS * ROUNDS * OPS * 2) as u64;

/// State shared by the workers.
struct Shared {
    slots: Vec<AtomicPtr<u8>>,
    live: Liveness,
    next_serial: AtomicU64,
    /// Requested bytes live now, and their peak (for the RSS bound).
    live_bytes: AtomicUsize,
    peak_live_bytes: AtomicUsize,
    /// Blocks freed so far (by any thread).
    frees: AtomicUsize,
}

/// A block a worker holds: pointer and alignment.
#[derive(Clone, Copy)]
struct Held {
    p: *mut u8,
    align: usize,
}

impl Shared {
    /// Picks a size: 90% 8 B – 1 KiB, 9% 1 – 64 KiB, 1% 64 KiB – 1 MiB
    /// (medium pages and huge blocks), each spread evenly over octaves.
    fn size(rng: &mut Rng) -> usize {
        let r = rng.below(1000);
        let big = if cfg!(miri) { 18 } else { 20 };
        if r < 900 {
            rng.log_size(3, 10)
        } else if r < 990 {
            rng.log_size(10, 16)
        } else {
            rng.log_size(16, big).min(1 << 20)
        }
    }

    /// Alignment: mostly the default 16, sometimes more (the aligned paths).
    fn align(rng: &mut Rng) -> usize {
        if rng.percent(95) {
            16
        } else {
            [32, 64, 256, 4096][rng.below(4)]
        }
    }

    fn alloc(&self, rng: &mut Rng) -> Held {
        let size = Self::size(rng);
        let align = Self::align(rng);
        let p = homing::alloc(size, align);
        assert!(!p.is_null(), "out of memory for {size} B");
        assert_eq!(
            p as usize % align,
            0,
            "{size} B block not aligned to {align}"
        );
        // SAFETY: a live block of at least `size` bytes.
        assert!(unsafe { homing::usable_size(p) } >= size);
        // Relaxed: a counter; uniqueness is all we need.
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        assert!(serial < MAX_SERIALS);
        self.live.born(serial);
        // SAFETY: `size` fresh bytes, 16-aligned at least.
        unsafe { common::write_cookie(p, size, serial) };
        // Relaxed: statistics of the test itself.
        let now = self.live_bytes.fetch_add(size, Ordering::Relaxed) + size;
        self.peak_live_bytes.fetch_max(now, Ordering::Relaxed);
        Held { p, align }
    }

    /// Checks a block's cookie and frees it. Null does nothing.
    fn free(&self, p: *mut u8) {
        if p.is_null() {
            return;
        }
        // SAFETY: every non-null pointer we hold is a live block with a
        // cookie; after this call nobody holds it.
        unsafe {
            let (size, serial) = common::check_cookie(p);
            self.live.dies(serial);
            common::poison_cookie(p, size);
            self.live_bytes.fetch_sub(size, Ordering::Relaxed);
            homing::free(p);
        }
        // Relaxed: a statistic.
        self.frees.fetch_add(1, Ordering::Relaxed);
    }

    /// Resizes a held block (always 16-aligned ones), checking that the
    /// header survived the move, then re-cookies it.
    fn realloc(&self, held: Held, rng: &mut Rng) -> Held {
        debug_assert_eq!(held.align, 16);
        let new_size = Self::size(rng);
        // SAFETY: a live block of ours with a cookie; `realloc` returns a
        // block of `new_size` bytes holding the old prefix (or null and
        // leaves the old one).
        unsafe {
            let (size, serial) = common::check_cookie(held.p);
            let header = held.p.cast::<u64>().read();
            let q = homing::realloc(held.p, size, 16, new_size);
            assert!(!q.is_null(), "realloc {size} -> {new_size} failed");
            assert_eq!(
                q.cast::<u64>().read(),
                header,
                "realloc {size} -> {new_size} lost the prefix"
            );
            common::write_cookie(q, new_size, serial);
            if new_size >= size {
                self.live_bytes
                    .fetch_add(new_size - size, Ordering::Relaxed);
            } else {
                self.live_bytes
                    .fetch_sub(size - new_size, Ordering::Relaxed);
            }
            Held { p: q, align: 16 }
        }
    }

    fn swap_slot(&self, i: usize, p: *mut u8) -> *mut u8 {
        // AcqRel: we publish our block's contents (the cookie) to whoever
        // takes it (Release) and take the previous owner's (Acquire).
        self.slots[i].swap(p, Ordering::AcqRel)
    }
}

/// One worker's life: `OPS` operations, then exit, leaving its local
/// blocks in the transfer array for strangers.
fn worker(shared: &Shared, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut local: Vec<Held> = Vec::with_capacity(LOCAL);
    let ops = rng.range(OPS / 2, OPS * 3 / 2);
    for _ in 0..ops {
        match rng.below(100) {
            // Replace a slot's block with a new one, free the old.
            0..=59 => {
                let h = shared.alloc(&mut rng);
                let old = shared.swap_slot(rng.below(TRANSFER_SLOTS), h.p);
                shared.free(old);
            }
            // Take a slot's block for ourselves.
            60..=69 => {
                let old = shared.swap_slot(rng.below(TRANSFER_SLOTS), ptr::null_mut());
                if !old.is_null() {
                    if local.len() < LOCAL {
                        // Alignment unknown: mark it as not resizable.
                        local.push(Held { p: old, align: 0 });
                    } else {
                        shared.free(old);
                    }
                }
            }
            // Allocate and keep, or free one we keep.
            70..=94 => {
                if local.len() < LOCAL && rng.percent(50) {
                    local.push(shared.alloc(&mut rng));
                } else if !local.is_empty() {
                    let h = local.swap_remove(rng.below(local.len()));
                    shared.free(h.p);
                }
            }
            // Resize one we keep.
            _ => {
                if !local.is_empty() {
                    let i = rng.below(local.len());
                    if local[i].align == 16 {
                        local[i] = shared.realloc(local[i], &mut rng);
                    }
                }
            }
        }
    }
    // Killed: our blocks go to the transfer array (or are freed).
    for h in local {
        let old = shared.swap_slot(rng.below(TRANSFER_SLOTS), h.p);
        shared.free(old);
    }
}

/// The RSS bound is `RSS_FACTOR × peak live + heaps × RSS_PER_HEAP +
/// RSS_FIXED`, where "peak live" is the peak of the bytes the workers asked
/// for (an overestimate of what they touch: a block above a page is touched
/// only where its cookie is). The factor covers class rounding (under 25%
/// above 64 B, 2× at 8 B, 12.5% above 128 B) and the pages kept resident by
/// a few live blocks each, or by the 10 ms purge delay after they empty.
const RSS_FACTOR: usize = 2;
/// Per heap that can exist at once (`THREADS` workers, the test thread,
/// the harness, and up to `THREADS` more briefly claimed while a worker
/// starts): the partly used direct page of each class it uses (a few OS
/// pages each, since pages are carved lazily), two header pages per segment
/// and a spare segment's not yet purged pages.
const RSS_PER_HEAP: usize = 2 << 20;
/// Fixed part: the test binary and its libraries, the workers' stacks
/// (touched only a few pages deep), the harness.
const RSS_FIXED: usize = 16 << 20;

#[test]
fn server_under_load_balances_and_bounds_rss() {
    common::warm_up();
    let rss_reset = common::reset_peak_rss();
    let rss_before = common::current_rss();
    // The baseline: nothing of ours allocated yet, our outbox posted.
    let base = common::settled();

    let shared = Arc::new(Shared {
        slots: (0..TRANSFER_SLOTS)
            .map(|_| AtomicPtr::new(ptr::null_mut()))
            .collect(),
        live: Liveness::new(MAX_SERIALS),
        next_serial: AtomicU64::new(0),
        live_bytes: AtomicUsize::new(0),
        peak_live_bytes: AtomicUsize::new(0),
        frees: AtomicUsize::new(0),
    });
    let (done_tx, done_rx) = mpsc::channel::<usize>();
    let spawn = |id: usize| {
        let shared = Arc::clone(&shared);
        let done = done_tx.clone();
        thread::spawn(move || {
            worker(&shared, id as u64 * 7919 + 1);
            done.send(id).unwrap();
        })
    };
    let total = THREADS * ROUNDS;
    let mut handles: Vec<Option<thread::JoinHandle<()>>> = Vec::with_capacity(total);
    for id in 0..THREADS {
        handles.push(Some(spawn(id)));
    }
    let mut max_heaps = 0;
    for finished in 0..total {
        let id = done_rx.recv().unwrap();
        handles[id].take().unwrap().join().unwrap();
        max_heaps = max_heaps.max(homing::stats().heaps);
        let next = THREADS + finished;
        if next < total {
            handles.push(Some(spawn(next)));
        }
    }
    drop(handles);
    drop(done_tx);
    drop(done_rx);

    // Survivors: freed by the main thread, a stranger to all of them.
    for slot in &shared.slots {
        shared.free(slot.swap(ptr::null_mut(), Ordering::AcqRel));
    }
    assert_eq!(shared.live.count_live(), 0, "a block was lost");
    assert_eq!(shared.live_bytes.load(Ordering::Relaxed), 0);
    let peak_live = shared.peak_live_bytes.load(Ordering::Relaxed);
    let allocated = shared.next_serial.load(Ordering::Relaxed);
    let frees = shared.frees.load(Ordering::Relaxed);
    drop(shared);

    let end = common::settled();
    common::assert_balanced(
        &base,
        &end,
        "after all workers exited and the main thread freed the rest",
    );
    assert_eq!(
        end.heaps_abandoned, base.heaps_abandoned,
        "abandoned heaps still hold memory though every block is free\n{end}"
    );
    // Heaps are adopted or reused: never more than the threads that can
    // hold one at once (`THREADS` workers) plus those briefly claimed by a
    // freeing thread when a new worker looks for one.
    assert!(
        end.heaps <= base.heaps + 2 * THREADS,
        "heaps grew from {} to {} with {THREADS} workers at a time\n{end}",
        base.heaps,
        end.heaps
    );
    // Everything freed: only the new heaps' headers stay mapped, beside
    // released segments kept (purged, no RSS) in homing's bounded segment
    // cache for reuse.
    let heap_header_allowance = (end.heaps - base.heaps) * (64 << 10);
    assert!(
        end.os_mapped - end.os_cached <= base.os_mapped - base.os_cached + heap_header_allowance,
        "{} MiB still mapped, {} MiB at the start\n{end}",
        common::mib(end.os_mapped),
        common::mib(base.os_mapped)
    );

    if let (Some(before), Some(peak)) = (rss_before, common::peak_rss()) {
        // Without a reset, VmHWM covers the whole process, which before this
        // test was no bigger than `before`.
        let grown = peak.saturating_sub(before);
        let heaps_at_once = THREADS + 2 + THREADS;
        let bound = RSS_FACTOR * peak_live + heaps_at_once * RSS_PER_HEAP + RSS_FIXED;
        eprintln!(
            "stress: {allocated} blocks, {frees} frees, peak live {:.1} MiB requested, \
             RSS grew {:.1} MiB (bound {:.1} MiB, VmHWM reset: {rss_reset}), \
             heaps {} (max during run {max_heaps})",
            common::mib(peak_live),
            common::mib(grown),
            common::mib(bound),
            end.heaps
        );
        assert!(
            grown <= bound,
            "peak RSS grew by {:.1} MiB, over the bound {:.1} MiB \
             ({RSS_FACTOR} x peak live {:.1} MiB + {heaps_at_once} heaps x {} MiB + {} MiB)",
            common::mib(grown),
            common::mib(bound),
            common::mib(peak_live),
            RSS_PER_HEAP >> 20,
            RSS_FIXED >> 20
        );
    }
    eprintln!("{end}");
}
