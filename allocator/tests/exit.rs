//! Thread exit and threads that do not allocate:
//!
//! - a thread-local's destructor allocates and frees while its thread exits
//!   (before homing's own exit hook runs), and one allocates for the first
//!   time there;
//! - a `pthread` key destructor allocates after homing's exit hook has
//!   abandoned the thread's heap (homing binds a heap again and abandons it
//!   on glibc's next destructor pass);
//! - a thread that never allocated (a raw `pthread`, so not even std's
//!   thread start-up allocates on it) frees blocks of the main thread, of
//!   an exited thread and huge blocks;
//! - a thread that only frees, fed for many rounds by the main thread and by
//!   short-lived threads, does not make memory grow;
//! - glibc frees a thread's `strerror`, `strsignal` and `dlerror` buffers
//!   after every key destructor ran (homing's included): those late frees
//!   must not tie a heap to the dead thread, or every block other threads
//!   free into that heap is stranded.
//!
//! One `#[test]` runs the scenarios in turn (see `common` for why).

mod common;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use common::Rng;

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

// ---------------------------------------------------------------------
// Thread-local destructors
// ---------------------------------------------------------------------

/// Destructors that ran to the end.
static TLS_DTORS: AtomicUsize = AtomicUsize::new(0);

/// Blocks allocated inside destructors, freed later by the main thread.
/// Its capacity is reserved up front so pushing never allocates.
static EXPORTED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// What an exiting thread's thread-local owns.
struct Guard {
    /// Allocated by this thread while it ran.
    own: Option<Box<[u64]>>,
    /// Allocated by the main thread.
    foreign: usize,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Enough to run out of a fresh page and take slow paths.
        let v: Vec<u64> = (0..5_000).collect();
        assert_eq!(v.iter().sum::<u64>(), 5_000 * 4_999 / 2);
        let s: Vec<String> = (0..100).map(|i| format!("block {i}")).collect();
        assert_eq!(s[99], "block 99");
        drop((v, s));
        let own = self.own.take().unwrap();
        assert!(own.iter().enumerate().all(|(i, &x)| x == i as u64));
        drop(own);
        if self.foreign != 0 {
            // SAFETY: the main thread gave us this live block.
            unsafe { common::free_cookie_block(self.foreign) };
        }
        EXPORTED.lock().unwrap().push(common::cookie_block(1000, 1));
        TLS_DTORS.fetch_add(1, Ordering::SeqCst);
    }
}

std::thread_local! {
    static GUARD: RefCell<Option<Guard>> = const { RefCell::new(None) };
}

/// Allocates for the first time in a thread-local destructor (its thread
/// does nothing else that we know allocates).
struct LateGuard;

impl Drop for LateGuard {
    fn drop(&mut self) {
        let b = Box::new([3u8; 300]);
        let v = vec![b; 20];
        assert!(v.iter().all(|b| b[299] == 3));
        drop(v);
        EXPORTED.lock().unwrap().push(common::cookie_block(48, 2));
        TLS_DTORS.fetch_add(1, Ordering::SeqCst);
    }
}

std::thread_local! {
    static LATE: LateGuard = const { LateGuard };
}

fn thread_local_destructors_allocate_and_free() {
    let sequential = if cfg!(miri) { 2 } else { 32 };
    let concurrent = if cfg!(miri) { 2 } else { 8 };
    let total = 2 * sequential + concurrent;
    EXPORTED.lock().unwrap().reserve(total);
    let base = common::settled();
    TLS_DTORS.store(0, Ordering::SeqCst);

    let run = |i: usize| {
        let foreign = common::cookie_block(64 + i, i as u64);
        thread::spawn(move || {
            let own: Box<[u64]> = (0..1000).collect();
            GUARD.with(|g| {
                *g.borrow_mut() = Some(Guard {
                    own: Some(own),
                    foreign,
                })
            });
        })
    };
    for i in 0..sequential {
        run(i).join().unwrap();
    }
    let handles: Vec<_> = (0..concurrent).map(run).collect();
    for h in handles {
        h.join().unwrap();
    }
    for _ in 0..sequential {
        thread::spawn(|| LATE.with(|_| ())).join().unwrap();
    }
    assert_eq!(
        TLS_DTORS.load(Ordering::SeqCst),
        total,
        "a destructor did not finish"
    );

    let exported: Vec<usize> = EXPORTED.lock().unwrap().drain(..).collect();
    assert_eq!(exported.len(), total);
    for addr in exported {
        // SAFETY: blocks the destructors made and gave to us.
        unsafe { common::free_cookie_block(addr) };
    }
    let end = common::settled();
    common::assert_balanced(&base, &end, "thread-local destructors");
    assert_eq!(end.heaps_abandoned, base.heaps_abandoned, "{end}");
    assert!(
        end.heaps <= base.heaps + concurrent + 2,
        "heaps grew from {} to {} over {total} exiting threads",
        base.heaps,
        end.heaps
    );
}

// ---------------------------------------------------------------------
// A pthread key destructor that runs after homing's
// ---------------------------------------------------------------------

static KEY_DTORS: AtomicUsize = AtomicUsize::new(0);

/// Runs after homing's exit hook (our key was created later, and glibc runs
/// key destructors in key order): the thread has no heap any more.
unsafe extern "C" fn late_key_destructor(_value: *mut libc::c_void) {
    let v: Vec<u64> = (0..2_000).collect();
    assert_eq!(v[1999], 1999);
    drop(v);
    EXPORTED.lock().unwrap().push(common::cookie_block(200, 3));
    KEY_DTORS.fetch_add(1, Ordering::SeqCst);
}

fn pthread_key_destructor_allocates_after_homing_let_go() {
    if cfg!(miri) {
        return;
    }
    let threads = 50;
    EXPORTED.lock().unwrap().reserve(threads);
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: a valid out-pointer and an `extern "C"` destructor.
    let rc = unsafe { libc::pthread_key_create(&mut key, Some(late_key_destructor)) };
    assert_eq!(rc, 0);
    let base = common::settled();
    KEY_DTORS.store(0, Ordering::SeqCst);
    for i in 0..threads {
        thread::spawn(move || {
            // The thread allocates, so homing's key is set too.
            let b = Box::new([i; 16]);
            assert_eq!(b[15], i);
            // SAFETY: a live key; the value only has to be non-null.
            unsafe {
                libc::pthread_setspecific(key, std::ptr::NonNull::<u8>::dangling().as_ptr().cast())
            };
        })
        .join()
        .unwrap();
    }
    assert_eq!(KEY_DTORS.load(Ordering::SeqCst), threads);
    let exported: Vec<usize> = EXPORTED.lock().unwrap().drain(..).collect();
    for addr in exported {
        // SAFETY: blocks the destructors made and gave to us.
        unsafe { common::free_cookie_block(addr) };
    }
    let end = common::settled();
    // SAFETY: a key we created; no thread uses it any more.
    unsafe { libc::pthread_key_delete(key) };
    common::assert_balanced(&base, &end, "pthread key destructors");
    assert_eq!(end.heaps_abandoned, base.heaps_abandoned, "{end}");
    // One thread at a time: its heap, and the one its late allocation binds
    // (the same one, adopted again, or a free one).
    assert!(
        end.heaps <= base.heaps + 2,
        "heaps grew from {} to {} over {threads} threads",
        base.heaps,
        end.heaps
    );
}

// ---------------------------------------------------------------------
// A thread that never allocated
// ---------------------------------------------------------------------

/// Work for a raw `pthread`: blocks to free, then a hand-shake.
struct Job {
    blocks: *const usize,
    len: usize,
    /// 0: freeing; 1: done freeing, waiting; 2: may exit.
    phase: AtomicUsize,
}

/// The raw thread's body: frees, reports, waits, exits. It calls nothing
/// that allocates: no std thread start-up, no thread-locals of std's.
extern "C" fn never_allocating_freer(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: `arg` is the `Job` the main thread keeps alive until it has
    // joined us.
    let job = unsafe { &*arg.cast::<Job>() };
    for i in 0..job.len {
        // SAFETY: `blocks[..len]` are live cookie blocks given to us.
        unsafe { common::free_cookie_block(*job.blocks.add(i)) };
    }
    // The first free gave this thread a heap for its outbox; a collect (a
    // safe point, in a VM) posts what it holds back to the owners.
    homing::collect();
    // Release: our frees (posted to their owners) happen before the main
    // thread looks at the statistics.
    job.phase.store(1, Ordering::Release);
    // Acquire: pairs with the main thread's Release store of 2.
    while job.phase.load(Ordering::Acquire) != 2 {
        // SAFETY: no preconditions.
        unsafe { libc::sched_yield() };
    }
    std::ptr::null_mut()
}

fn thread_that_never_allocated_frees() {
    if cfg!(miri) {
        return;
    }
    let mut rng = Rng::new(5);
    let base = common::settled();
    // Blocks of the main thread (some huge) ...
    let mut blocks: Vec<usize> = (0..300)
        .map(|i| {
            common::cookie_block(
                if i % 50 == 0 {
                    300_000
                } else {
                    rng.log_size(3, 14)
                },
                i,
            )
        })
        .collect();
    // ... and of a thread that exits (its heap is abandoned with them).
    let seed = rng.next_u64();
    let exited: Vec<usize> = thread::spawn(move || {
        let mut rng = Rng::new(seed);
        (0..300)
            .map(|i| common::cookie_block(rng.log_size(3, 14), i))
            .collect()
    })
    .join()
    .unwrap();
    blocks.extend_from_slice(&exited);
    drop(exited);
    let loaded = common::settled();
    assert_eq!(
        loaded.heaps_abandoned,
        base.heaps_abandoned + 1,
        "the exited thread's heap\n{loaded}"
    );

    let job = Job {
        blocks: blocks.as_ptr(),
        len: blocks.len(),
        phase: AtomicUsize::new(0),
    };
    let mut tid: libc::pthread_t = 0;
    // SAFETY: valid out-pointer, default attributes, an `extern "C"` body,
    // and `job` outlives the thread (joined below).
    let rc = unsafe {
        libc::pthread_create(
            &mut tid,
            std::ptr::null(),
            never_allocating_freer,
            std::ptr::addr_of!(job) as *mut _,
        )
    };
    assert_eq!(rc, 0);
    // Acquire: pairs with the thread's Release store of 1.
    while job.phase.load(Ordering::Acquire) != 1 {
        thread::yield_now();
    }
    // The freer is alive and has collected, so it kept nothing back: the
    // main thread's blocks are in our inbox, the exited thread's were freed
    // into its heap under a claim.
    let during = common::settled();
    let bookkeeping = 1; // `blocks` itself
    assert_eq!(
        (during.live_blocks, during.huge_blocks),
        (base.live_blocks + bookkeeping, base.huge_blocks),
        "frees of a thread that never allocated are not all home after its collect\nbefore: {base}\nnow: {during}"
    );
    assert_eq!(
        during.heaps_abandoned, base.heaps_abandoned,
        "the exited thread's heap still abandoned\n{during}"
    );
    // Release: see the thread's Acquire load.
    job.phase.store(2, Ordering::Release);
    // SAFETY: a joinable thread we created, joined once.
    assert_eq!(unsafe { libc::pthread_join(tid, std::ptr::null_mut()) }, 0);
    drop(blocks);
    let end = common::settled();
    common::assert_balanced(&base, &end, "a thread that never allocated freed");
    assert!(
        end.heaps <= base.heaps + 1,
        "heaps grew by more than the freeing thread's own\n{end}"
    );
}

// ---------------------------------------------------------------------
// A thread that only frees
// ---------------------------------------------------------------------

/// Blocks per hand-off.
const BATCH: usize = if cfg!(miri) { 20 } else { 500 };

/// The hand-off between producers and the consumer. Both vectors have
/// capacity `BATCH` from the start and are swapped, never grown, so the
/// consumer allocates nothing.
struct Handoff {
    state: Mutex<HandoffState>,
    changed: Condvar,
}

struct HandoffState {
    /// Blocks waiting for the consumer.
    full: Vec<usize>,
    /// Batches the consumer has freed.
    done: usize,
    quit: bool,
}

impl Handoff {
    /// Hands a batch over (moving its addresses into the shared vector).
    fn give(&self, batch: &mut Vec<usize>) {
        let mut st = self.state.lock().unwrap();
        while !st.full.is_empty() {
            st = self.changed.wait(st).unwrap();
        }
        assert!(batch.len() <= st.full.capacity());
        st.full.append(batch);
        self.changed.notify_all();
    }

    fn wait_done(&self, n: usize) {
        let mut st = self.state.lock().unwrap();
        while st.done < n {
            st = self.changed.wait(st).unwrap();
        }
    }

    /// The consumer's loop: swap the batch out, free it, report.
    fn consume(&self) {
        // Empty: no allocation. It takes each full vector by swapping and
        // gives an empty one of full capacity back.
        let mut mine: Vec<usize> = Vec::new();
        loop {
            {
                let mut st = self.state.lock().unwrap();
                while st.full.is_empty() && !st.quit {
                    st = self.changed.wait(st).unwrap();
                }
                if st.full.is_empty() {
                    return;
                }
                std::mem::swap(&mut mine, &mut st.full);
            }
            for &addr in &mine {
                // SAFETY: live cookie blocks handed to us; freed once.
                unsafe { common::free_cookie_block(addr) };
            }
            mine.clear();
            let mut st = self.state.lock().unwrap();
            // Give our (empty, full-capacity) vector back for the next batch.
            if st.full.capacity() < BATCH {
                std::mem::swap(&mut mine, &mut st.full);
            }
            st.done += 1;
            self.changed.notify_all();
        }
    }
}

/// A batch: mostly 16 B – 16 KiB, 1% huge (200 KiB).
fn make_batch(rng: &mut Rng, round: usize) -> Vec<usize> {
    (0..BATCH)
        .map(|i| {
            let size = if rng.percent(1) {
                200_000
            } else {
                rng.log_size(4, 14)
            };
            common::cookie_block(size, (round * BATCH + i) as u64)
        })
        .collect()
}

fn consumer_only_thread_stays_bounded() {
    let rounds = if cfg!(miri) { 4 } else { 400 };
    let base = common::settled();
    let handoff = Arc::new(Handoff {
        state: Mutex::new(HandoffState {
            full: Vec::with_capacity(BATCH),
            done: 0,
            quit: false,
        }),
        changed: Condvar::new(),
    });
    let mut samples: Vec<(usize, usize, usize, usize)> = Vec::with_capacity(rounds);
    let consumer = {
        let handoff = Arc::clone(&handoff);
        thread::spawn(move || handoff.consume())
    };
    let mut rng = Rng::new(6);
    for r in 0..rounds {
        if r % 2 == 0 {
            // The main thread produces (and never calls `collect`).
            let mut batch = make_batch(&mut rng, r);
            handoff.give(&mut batch);
        } else {
            // A short-lived thread produces and exits; its heap is abandoned
            // with the blocks the consumer has yet to free.
            let handoff = Arc::clone(&handoff);
            let seed = rng.next_u64();
            thread::spawn(move || {
                let mut batch = make_batch(&mut Rng::new(seed), r);
                handoff.give(&mut batch);
            })
            .join()
            .unwrap();
        }
        handoff.wait_done(r + 1);
        let s = homing::stats();
        samples.push((
            common::in_use(&s),
            s.live_bytes,
            s.heaps,
            common::current_rss().unwrap_or(0),
        ));
    }
    handoff.state.lock().unwrap().quit = true;
    handoff.changed.notify_all();
    consumer.join().unwrap();

    // After a warm-up, nothing may keep growing: compare the maxima of the
    // second half with those of the first tenth.
    let warm = &samples[..rounds / 10 + 1];
    let late = &samples[rounds / 2..];
    let max = |s: &[(usize, usize, usize, usize)],
               f: fn(&(usize, usize, usize, usize)) -> usize| {
        s.iter().map(f).max().unwrap()
    };
    // Slack: a batch is at most ~8 MiB requested (500 × 16 KiB); timing
    // decides whether one more batch is in flight at a sample.
    const SLACK: usize = 16 << 20;
    let (warm_mapped, late_mapped) = (max(warm, |s| s.0), max(late, |s| s.0));
    assert!(
        late_mapped <= warm_mapped + SLACK,
        "memory in use (mapped, not cached) grows: {:.1} MiB early, {:.1} MiB late",
        common::mib(warm_mapped),
        common::mib(late_mapped)
    );
    let (warm_live, late_live) = (max(warm, |s| s.1), max(late, |s| s.1));
    assert!(
        late_live <= warm_live + SLACK,
        "live bytes grow: {:.1} MiB early, {:.1} MiB late",
        common::mib(warm_live),
        common::mib(late_live)
    );
    let (warm_rss, late_rss) = (max(warm, |s| s.3), max(late, |s| s.3));
    assert!(
        late_rss <= warm_rss + SLACK,
        "RSS grows: {:.1} MiB early, {:.1} MiB late",
        common::mib(warm_rss),
        common::mib(late_rss)
    );
    let heaps = max(&samples, |s| s.2);
    // The consumer, one producer thread at a time, one heap momentarily
    // claimed by the consumer when a producer starts.
    assert!(
        heaps <= base.heaps + 3,
        "heaps grew from {} to {heaps}",
        base.heaps
    );
    drop(samples);
    drop(handoff);
    let end = common::settled();
    common::assert_balanced(&base, &end, "consumer-only thread");
    assert_eq!(end.heaps_abandoned, base.heaps_abandoned, "{end}");
}

// ---------------------------------------------------------------------
// Frees after every destructor (glibc's own per-thread buffers)
// ---------------------------------------------------------------------

/// Blocks each late-freeing thread hands to the main thread.
const LATE_BLOCKS: usize = 4_000;
/// Bytes of each of those blocks: 4 MB a thread.
const LATE_BLOCK_SIZE: usize = 1_000;

/// glibc runs `pthread` key destructors for at most this many rounds
/// (`PTHREAD_DESTRUCTOR_ITERATIONS`), then its own clean-up.
const DESTRUCTOR_ROUNDS: usize = 4;

std::thread_local! {
    /// A buffer the thread frees only at the very end of its exit, as
    /// glibc frees its `strerror` buffer (const, no destructor: readable
    /// from a key destructor).
    static LATE_BUFFER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A key destructor that keeps its key alive until glibc's last round,
/// then frees the thread's late buffer and allocates (and exports) one more
/// block: what `__libc_thread_freeres` does after every key destructor, and
/// what libraries that re-arm their keys do. Homing's own exit hook ran in
/// the first round.
unsafe extern "C" fn last_round_destructor(value: *mut libc::c_void) {
    let round = value as usize;
    if round < DESTRUCTOR_ROUNDS {
        // SAFETY: the key is live (the test deletes it only after joining).
        unsafe {
            libc::pthread_setspecific(LAST_ROUND_KEY.load(Ordering::SeqCst) as _, (round + 1) as _)
        };
        return;
    }
    let buffer = LATE_BUFFER.with(|b| b.replace(0));
    // SAFETY: the thread's own live block, freed once.
    unsafe { common::free_cookie_block(buffer) };
    EXPORTED.lock().unwrap().push(common::cookie_block(300, 7));
    KEY_DTORS.fetch_add(1, Ordering::SeqCst);
}

/// The key of [`last_round_destructor`].
static LAST_ROUND_KEY: AtomicUsize = AtomicUsize::new(0);

/// Makes glibc allocate the per-thread buffers it frees in
/// `__libc_thread_freeres` (with glibc's malloc here: this test binary
/// replaces only Rust's allocator; the C ABI's test `exit_late.c` checks
/// the same under `LD_PRELOAD`).
fn make_glibc_thread_buffers(serial: usize) {
    // SAFETY: `strerror` and `strsignal` return a pointer into a buffer of
    // this thread's; `dlsym` of a missing symbol fails and leaves a
    // `dlerror` message.
    unsafe {
        assert!(!libc::strerror(100_000 + serial as i32).is_null());
        assert!(!libc::strsignal(1_000 + serial as i32).is_null());
        let missing = c"homing_test_no_such_symbol";
        assert!(libc::dlsym(libc::RTLD_DEFAULT, missing.as_ptr()).is_null());
    }
}

fn frees_after_every_destructor_are_not_stranded() {
    // Not under ThreadSanitizer (`.ci/tsan`): TSan finishes a thread's
    // state in its own key destructor in glibc's last round, and our key
    // (created later) runs after it in that round, so instrumented code
    // there crashes inside TSan (SEGV in `TraceSwitchPart`).
    if cfg!(miri) || cfg!(homing_tsan) {
        return;
    }
    let threads = 12;
    EXPORTED.lock().unwrap().reserve(threads);
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: a valid out-pointer and an `extern "C"` destructor.
    let rc = unsafe { libc::pthread_key_create(&mut key, Some(last_round_destructor)) };
    assert_eq!(rc, 0);
    LAST_ROUND_KEY.store(key as usize, Ordering::SeqCst);
    KEY_DTORS.store(0, Ordering::SeqCst);
    let base = common::settled();
    let rss_before = common::current_rss();
    for t in 0..threads {
        let blocks = thread::spawn(move || {
            let blocks: Vec<usize> = (0..LATE_BLOCKS)
                .map(|i| common::cookie_block(LATE_BLOCK_SIZE, (t * LATE_BLOCKS + i) as u64))
                .collect();
            LATE_BUFFER.with(|b| b.set(common::cookie_block(100, t as u64)));
            make_glibc_thread_buffers(t);
            // SAFETY: a live key; the value counts destructor rounds.
            unsafe { libc::pthread_setspecific(key, 1 as _) };
            blocks
        })
        .join()
        .unwrap();
        // The thread is gone (joined: glibc's clean-up has run); its blocks
        // are freed by this thread, into the heap it abandoned.
        for addr in blocks {
            // SAFETY: live cookie blocks the thread gave us.
            unsafe { common::free_cookie_block(addr) };
        }
    }
    assert_eq!(KEY_DTORS.load(Ordering::SeqCst), threads);
    let exported: Vec<usize> = EXPORTED.lock().unwrap().drain(..).collect();
    for addr in exported {
        // SAFETY: blocks the destructors made and gave to us.
        unsafe { common::free_cookie_block(addr) };
    }
    // SAFETY: a key we created; no thread uses it any more.
    unsafe { libc::pthread_key_delete(key) };
    let end = common::settled();
    common::assert_balanced(&base, &end, "frees after the last destructor round");
    assert_eq!(
        end.heaps_abandoned, base.heaps_abandoned,
        "a heap of an exited thread holds memory: {end}"
    );
    assert!(
        end.heaps <= base.heaps + 2,
        "heaps grew from {} to {} over {threads} threads: late frees bound new heaps",
        base.heaps,
        end.heaps
    );
    let held = common::in_use(&end).saturating_sub(common::in_use(&base));
    assert!(
        held <= 16 << 20,
        "{:.1} MiB of address space still held after {threads} threads x {} MB: {end}",
        common::mib(held),
        LATE_BLOCKS * LATE_BLOCK_SIZE / 1_000_000
    );
    if let (Some(before), Some(after)) = (rss_before, common::current_rss()) {
        assert!(
            after <= before + (24 << 20),
            "RSS grew from {:.1} to {:.1} MiB",
            common::mib(before),
            common::mib(after)
        );
    }
}

#[test]
fn thread_exit_and_threads_that_do_not_allocate() {
    common::warm_up();
    thread_local_destructors_allocate_and_free();
    pthread_key_destructor_allocates_after_homing_let_go();
    thread_that_never_allocated_frees();
    consumer_only_thread_stays_bounded();
    frees_after_every_destructor_are_not_stranded();
}
