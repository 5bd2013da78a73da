//! Edge cases of thread and process life, one `#[test]` each:
//!
//! - thread-local destructors that allocate (small, medium and huge
//!   blocks), free blocks of a thread still running, and bring a second
//!   thread-local to life while their thread is being torn down;
//! - allocation after `main` returns: an `atexit` handler and a static
//!   destructor (`.fini_array`) allocate, free, and free blocks made while
//!   `main` ran, while another thread is still allocating;
//! - a thread whose first homing operation is a remote free (and which
//!   exits without ever allocating);
//! - 1,000 threads created and destroyed while other threads free into
//!   their heaps: the live set returns to its baseline, no heap stays
//!   abandoned and heaps are reused, not piled up;
//! - a thread that never allocated frees the blocks of many exited threads:
//!   their heaps become free and their memory goes back.
//!
//! Every case runs in a child process (this binary re-executed with
//! `HOMING_EDGE_CASE` naming the case, one test on the main thread), so
//! that its statistics are its own (see `common`) and so that a case that
//! crashes, or must run at process exit, is seen from outside: the parent
//! checks the exit status and a line the child prints when the case (and,
//! for the exit case, its handlers) completed.
//!
//! Not under Miri, which runs no child processes (nor `atexit` handlers or
//! raw `pthread`s).
#![cfg(not(miri))]

mod common;

use std::cell::RefCell;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Barrier, Mutex};
use std::thread;

use common::Rng;

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

/// Names the case a child process runs.
const CASE: &str = "HOMING_EDGE_CASE";

/// Runs `body` in a child process and checks it passed; in the child
/// itself, runs `body`. Returns the child's standard output (empty in the
/// child).
fn in_child(name: &str, body: fn()) -> String {
    match std::env::var(CASE) {
        Ok(case) if case == name => {
            common::warm_up();
            harness_asleep();
            body();
            println!("edge case {name}: passed");
            return String::new();
        }
        // The child of another case (`--exact` keeps us from running).
        Ok(_) => return String::new(),
        Err(_) => {}
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "case {name}: the child failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(&format!("edge case {name}: passed")),
        "case {name}: the child did not run the case\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    print!("{stdout}");
    stdout
}

/// Waits until the test harness's main thread sleeps in its wait for our
/// test: it allocates on its way there (the first blocking receive of a
/// thread caches a wake-up context, and the main thread's handle), which
/// would otherwise land in a case's measuring window.
fn harness_asleep() {
    // The main thread's id is the process id.
    let stat = format!("/proc/self/task/{}/stat", std::process::id());
    for _ in 0..2000 {
        let s = std::fs::read_to_string(&stat).unwrap();
        // The state follows the parenthesised command name.
        let state = s.rsplit(')').next().unwrap().trim_start().chars().next();
        if state == Some('S') {
            return;
        }
        thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("the harness's main thread never went to sleep");
}

/// Sizes: mostly small, some medium, 1 in 40 huge (above 128 KiB).
fn mixed_size(rng: &mut Rng) -> usize {
    match rng.below(40) {
        0 => rng.range(130 << 10, 600 << 10),
        1..=6 => rng.log_size(13, 17),
        _ => rng.log_size(3, 13),
    }
}

/// Work for a raw `pthread` that must not allocate: blocks to free, then a
/// hand-shake.
struct Job {
    blocks: *const usize,
    len: usize,
    /// Call `homing::collect` after the frees.
    collect: bool,
    /// 0: freeing; 1: done, waiting; 2: may exit.
    phase: AtomicUsize,
    /// Wait for phase 2 before exiting.
    wait: bool,
}

/// The raw thread's body: its first homing operation is a free of a block
/// it did not allocate. It calls nothing that allocates.
extern "C" fn raw_freer(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: `arg` is a `Job` its creator keeps alive until it has joined
    // us.
    let job = unsafe { &*arg.cast::<Job>() };
    for i in 0..job.len {
        // SAFETY: `blocks[..len]` are live cookie blocks given to us.
        unsafe { common::free_cookie_block(*job.blocks.add(i)) };
    }
    if job.collect {
        homing::collect();
    }
    // Release: our frees happen before the creator reads the statistics.
    job.phase.store(1, Ordering::Release);
    if job.wait {
        // Acquire: pairs with the creator's Release store of 2.
        while job.phase.load(Ordering::Acquire) != 2 {
            // SAFETY: no preconditions.
            unsafe { libc::sched_yield() };
        }
    }
    std::ptr::null_mut()
}

/// Starts a raw `pthread` running [`raw_freer`] on `job`.
///
/// # Safety
///
/// `job` outlives the thread (the caller joins it).
unsafe fn spawn_raw(job: &Job) -> libc::pthread_t {
    let mut tid: libc::pthread_t = 0;
    // SAFETY: valid out-pointer, default attributes, an `extern "C"` body;
    // `job` outlives the thread (caller).
    let rc = unsafe {
        libc::pthread_create(
            &mut tid,
            std::ptr::null(),
            raw_freer,
            job as *const Job as *mut libc::c_void,
        )
    };
    assert_eq!(rc, 0, "pthread_create");
    tid
}

fn join_raw(tid: libc::pthread_t) {
    // SAFETY: a joinable thread we created, joined once.
    assert_eq!(unsafe { libc::pthread_join(tid, std::ptr::null_mut()) }, 0);
}

// ---------------------------------------------------------------------
// Thread-local destructors
// ---------------------------------------------------------------------

/// Blocks the destructors made for the main thread to free. Capacity is
/// reserved up front so the destructors' pushes do not allocate.
static EXPORTED: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// Destructors of `Outer` and of `Inner` that ran to their end.
static OUTER_DONE: AtomicUsize = AtomicUsize::new(0);
static INNER_DONE: AtomicUsize = AtomicUsize::new(0);

/// Held in a thread-local: a block of the main thread to free, and its
/// thread's own blocks.
struct Outer {
    foreign: usize,
    own: Vec<usize>,
    seed: u64,
}

impl Drop for Outer {
    fn drop(&mut self) {
        let mut rng = Rng::new(self.seed);
        // Enough allocation to run out of pages of several classes, with
        // medium and huge blocks among them.
        let mut made: Vec<usize> = (0..400)
            .map(|i| common::cookie_block(mixed_size(&mut rng).max(8), i))
            .collect();
        made.push(common::cookie_block(1 << 20, 400));
        for b in made.drain(..).chain(self.own.drain(..)) {
            // SAFETY: live cookie blocks of this thread.
            unsafe { common::free_cookie_block(b) };
        }
        // A remote free, into the heap of a thread that is still running.
        // SAFETY: the main thread gave us this live block.
        unsafe { common::free_cookie_block(self.foreign) };
        // A second thread-local comes to life during teardown; its own
        // destructor allocates too (std runs it after this one).
        INNER.with(|i| i.borrow_mut().push(common::cookie_block(3000, 1)));
        EXPORTED.lock().unwrap().push(common::cookie_block(700, 2));
        OUTER_DONE.fetch_add(1, Ordering::SeqCst);
    }
}

struct Inner(Vec<usize>);

impl Inner {
    fn push(&mut self, b: usize) {
        self.0.push(b);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for b in self.0.drain(..) {
            // SAFETY: live cookie blocks of this thread.
            unsafe { common::free_cookie_block(b) };
        }
        let v: Vec<String> = (0..200).map(|i| format!("late {i}")).collect();
        assert_eq!(v[199], "late 199");
        EXPORTED
            .lock()
            .unwrap()
            .push(common::cookie_block(200_000, 3));
        INNER_DONE.fetch_add(1, Ordering::SeqCst);
    }
}

std::thread_local! {
    static OUTER: RefCell<Option<Outer>> = const { RefCell::new(None) };
    static INNER: RefCell<Inner> = const { RefCell::new(Inner(Vec::new())) };
}

fn tls_destructors_body() {
    let (sequential, concurrent) = (24, 8);
    let total = sequential + concurrent;
    EXPORTED.lock().unwrap().reserve(2 * total);
    let base = common::settled();
    let run = |i: usize| {
        let foreign = common::cookie_block(100 + i, 1000 + i as u64);
        thread::spawn(move || {
            let mut rng = Rng::new(i as u64);
            let own = (0..100)
                .map(|k| common::cookie_block(mixed_size(&mut rng).max(8), k))
                .collect();
            OUTER.with(|o| {
                *o.borrow_mut() = Some(Outer {
                    foreign,
                    own,
                    seed: rng.next_u64(),
                })
            });
        })
    };
    for i in 0..sequential {
        run(i).join().unwrap();
    }
    let hs: Vec<_> = (sequential..total).map(run).collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(
        OUTER_DONE.load(Ordering::SeqCst),
        total,
        "outer destructors"
    );
    assert_eq!(
        INNER_DONE.load(Ordering::SeqCst),
        total,
        "inner destructors"
    );
    let exported: Vec<usize> = EXPORTED.lock().unwrap().drain(..).collect();
    assert_eq!(exported.len(), 2 * total);
    for b in exported {
        // SAFETY: live cookie blocks the destructors gave us.
        unsafe { common::free_cookie_block(b) };
    }
    let end = common::settled();
    common::assert_balanced(&base, &end, "thread-local destructors");
    assert_eq!(end.heaps_abandoned, base.heaps_abandoned, "{end}");
    assert!(
        end.heaps <= base.heaps + concurrent + 2,
        "heaps grew from {} to {} over {total} threads",
        base.heaps,
        end.heaps
    );
}

#[test]
fn tls_destructors_allocate_free_and_register() {
    in_child(
        "tls_destructors_allocate_free_and_register",
        tls_destructors_body,
    );
}

// ---------------------------------------------------------------------
// After main returns
// ---------------------------------------------------------------------

/// Armed by the exit case only: the static destructor below is in every
/// process of this binary.
static AT_EXIT_ARMED: AtomicBool = AtomicBool::new(false);
/// A block made by the main thread while `main` ran, and one made by a
/// thread that has exited; both freed after `main` returns.
static KEPT_MAIN: AtomicUsize = AtomicUsize::new(0);
static KEPT_EXITED: AtomicUsize = AtomicUsize::new(0);
/// Blocks for the static destructor to free.
static KEPT_FINI: AtomicUsize = AtomicUsize::new(0);
/// Set to stop the background allocator (never, in practice: it runs into
/// the exit).
static CHURN_ERRORS: AtomicUsize = AtomicUsize::new(0);

/// Writes `msg` to standard output with `write(2)` (nothing of std's that
/// may already be torn down).
fn raw_print(msg: &[u8]) {
    // SAFETY: a valid buffer of `msg.len()` bytes.
    let n = unsafe { libc::write(1, msg.as_ptr().cast(), msg.len()) };
    assert_eq!(n, msg.len() as isize);
}

/// Allocates and frees a mix of blocks, checking them; returns how many.
fn exercise(seed: u64) -> usize {
    let mut rng = Rng::new(seed);
    let blocks: Vec<usize> = (0..500)
        .map(|i| common::cookie_block(mixed_size(&mut rng).max(8), i))
        .collect();
    let s = format!("{} blocks", blocks.len());
    assert_eq!(s, "500 blocks");
    let n = blocks.len();
    for b in blocks {
        // SAFETY: live cookie blocks of ours.
        unsafe { common::free_cookie_block(b) };
    }
    n
}

extern "C" fn at_exit_handler() {
    let n = exercise(11);
    for kept in [&KEPT_MAIN, &KEPT_EXITED] {
        // SAFETY: live cookie blocks stored by the case.
        unsafe { common::free_cookie_block(kept.swap(0, Ordering::SeqCst)) };
    }
    homing::collect();
    KEPT_FINI.store(common::cookie_block(5000, 7), Ordering::SeqCst);
    raw_print(format!("atexit handler: {n} blocks, kept blocks freed\n").as_bytes());
}

/// A static destructor: glibc runs `.fini_array` after the `atexit`
/// handlers registered after it (the dynamic loader's, which runs it, was
/// registered before `main`).
extern "C" fn static_destructor() {
    if !AT_EXIT_ARMED.load(Ordering::SeqCst) {
        return;
    }
    let n = exercise(12);
    // SAFETY: a live cookie block the `atexit` handler made.
    unsafe { common::free_cookie_block(KEPT_FINI.swap(0, Ordering::SeqCst)) };
    let errors = CHURN_ERRORS.load(Ordering::SeqCst);
    raw_print(format!("static destructor: {n} blocks, churn errors {errors}\n").as_bytes());
}

#[used]
#[link_section = ".fini_array"]
static STATIC_DESTRUCTOR: extern "C" fn() = static_destructor;

/// Allocates and frees for ever (until the process exits), counting any
/// block that does not read back what was written.
fn churn() {
    let mut rng = Rng::new(99);
    let mut serial = 0u64;
    loop {
        let blocks: Vec<usize> = (0..64)
            .map(|_| {
                serial += 1;
                common::cookie_block(mixed_size(&mut rng).max(8), serial)
            })
            .collect();
        for b in blocks {
            // A panic here would end only this thread: count instead.
            let p = b as *mut u8;
            // SAFETY: a live cookie block of ours.
            let ok = std::panic::catch_unwind(|| unsafe { common::check_cookie(p) }).is_ok();
            if !ok {
                CHURN_ERRORS.fetch_add(1, Ordering::SeqCst);
            }
            // SAFETY: a live block, freed once.
            unsafe { homing::free(p) };
        }
    }
}

fn after_main_body() {
    AT_EXIT_ARMED.store(true, Ordering::SeqCst);
    KEPT_MAIN.store(common::cookie_block(300, 1), Ordering::SeqCst);
    let exited = thread::spawn(|| common::cookie_block(40_000, 2))
        .join()
        .unwrap();
    KEPT_EXITED.store(exited, Ordering::SeqCst);
    // SAFETY: an `extern "C"` handler that stays valid (a static function).
    assert_eq!(unsafe { libc::atexit(at_exit_handler) }, 0);
    // Still allocating while the process exits.
    thread::spawn(churn);
    assert_eq!(exercise(10), 500);
}

#[test]
fn allocation_after_main_returns() {
    let out = in_child("allocation_after_main_returns", after_main_body);
    if std::env::var(CASE).is_ok() {
        return;
    }
    let handler = out.find("atexit handler: 500 blocks, kept blocks freed");
    let dtor = out.find("static destructor: 500 blocks, churn errors 0");
    assert!(
        handler.is_some() && dtor.is_some() && handler < dtor,
        "the exit handlers did not both run to the end, in order:\n{out}"
    );
}

// ---------------------------------------------------------------------
// A thread whose first operation is a remote free
// ---------------------------------------------------------------------

fn first_op_remote_free_body() {
    let mut rng = Rng::new(3);
    // (1) Blocks of the main thread (small, medium, huge), freed by a raw
    // thread that then exits at once, without collecting: its exit must
    // post what its outbox holds.
    let base = common::settled();
    let blocks: Vec<usize> = (0..300)
        .map(|i| common::cookie_block(mixed_size(&mut rng).max(8), i))
        .collect();
    let job = Job {
        blocks: blocks.as_ptr(),
        len: blocks.len(),
        collect: false,
        phase: AtomicUsize::new(0),
        wait: false,
    };
    // SAFETY: `job` outlives the thread: joined below.
    join_raw(unsafe { spawn_raw(&job) });
    drop(blocks);
    let end = common::settled();
    common::assert_balanced(&base, &end, "remote frees of a thread that exited at once");
    assert!(end.heaps <= base.heaps + 1, "{end}");

    // (2) Blocks of a thread that has exited (its heap abandoned), freed
    // by raw threads at once (two or eight), each starting with that free;
    // many rounds, since how the frees interleave decides who lets the heap
    // go last. After each round the heap must be free again.
    for round in 0..FIRST_FREE_ROUNDS {
        let freers = if round % 2 == 0 { 2 } else { 8 };
        let base = common::settled();
        let seed = rng.next_u64();
        let exited: Vec<usize> = thread::spawn(move || {
            let mut rng = Rng::new(seed);
            (0..800)
                .map(|i| common::cookie_block(mixed_size(&mut rng).max(8), i))
                .collect()
        })
        .join()
        .unwrap();
        let loaded = common::settled();
        assert_eq!(loaded.heaps_abandoned, base.heaps_abandoned + 1, "{loaded}");
        let jobs: Vec<Job> = exited
            .chunks(exited.len() / freers)
            .map(|c| Job {
                blocks: c.as_ptr(),
                len: c.len(),
                collect: false,
                phase: AtomicUsize::new(0),
                wait: false,
            })
            .collect();
        // SAFETY: every job outlives its thread: all joined below.
        let tids: Vec<_> = jobs.iter().map(|j| unsafe { spawn_raw(j) }).collect();
        tids.into_iter().for_each(join_raw);
        drop(jobs);
        drop(exited);
        let end = common::settled();
        let what = format!(
            "round {round}: first-op remote frees by {freers} threads into an abandoned heap"
        );
        common::assert_balanced(&base, &end, &what);
        assert_eq!(
            end.heaps_abandoned,
            base.heaps_abandoned,
            "{what}: the exited thread's heap is still abandoned after all its blocks \
             were freed, holding {:.1} MiB (before: {:.1} MiB)\n{end}",
            common::mib(common::in_use(&end)),
            common::mib(common::in_use(&base))
        );
        assert!(end.heaps <= base.heaps + 9, "{what}\n{end}");
    }
}

/// Rounds of the abandoned-heap part of `first_operation_is_a_remote_free`.
const FIRST_FREE_ROUNDS: usize = 300;

#[test]
fn first_operation_is_a_remote_free() {
    in_child(
        "first_operation_is_a_remote_free",
        first_op_remote_free_body,
    );
}

// ---------------------------------------------------------------------
// 1,000 threads
// ---------------------------------------------------------------------

/// Threads created (and destroyed) in all.
const CHURN_THREADS: usize = 1000;
/// Of them alive at once.
const WAVE: usize = 8;
/// Threads that free what the others allocate.
const FREERS: usize = 2;
/// Blocks a freer holds before freeing the oldest, so some blocks outlive
/// the thread that made them.
const HOLD: usize = 64;

fn freer(rx: mpsc::Receiver<usize>) -> usize {
    let mut held = std::collections::VecDeque::with_capacity(HOLD + 1);
    let mut freed = 0;
    for b in rx {
        held.push_back(b);
        if held.len() > HOLD {
            // SAFETY: live cookie blocks sent to us, freed once.
            unsafe { common::free_cookie_block(held.pop_front().unwrap()) };
            freed += 1;
        }
    }
    for b in held {
        // SAFETY: as above.
        unsafe { common::free_cookie_block(b) };
        freed += 1;
    }
    freed
}

fn thousand_threads_body() {
    let base = common::settled();
    let (txs, freers): (Vec<_>, Vec<_>) = (0..FREERS)
        .map(|_| {
            let (tx, rx) = mpsc::channel::<usize>();
            (tx, thread::spawn(move || freer(rx)))
        })
        .unzip();
    let sent = AtomicUsize::new(0);
    let mut max_heaps = 0;
    let mut max_abandoned = 0;
    for wave in 0..CHURN_THREADS / WAVE {
        // Joined explicitly: a scope waits only for the closures, not for
        // the threads' exit (thread-locals, homing's exit hook).
        thread::scope(|s| {
            let mut wave_threads = Vec::with_capacity(WAVE);
            for k in 0..WAVE {
                let id = wave * WAVE + k;
                let tx = txs[id % FREERS].clone();
                let sent = &sent;
                wave_threads.push(s.spawn(move || {
                    let mut rng = Rng::new(id as u64);
                    let mut mine = Vec::with_capacity(64);
                    for i in 0..200u64 {
                        let b = common::cookie_block(mixed_size(&mut rng).max(8), i);
                        if rng.percent(60) {
                            // Freed by a freer, into this heap, while this
                            // thread runs or after it exited.
                            tx.send(b).unwrap();
                            sent.fetch_add(1, Ordering::Relaxed);
                        } else {
                            mine.push(b);
                        }
                        if mine.len() == 64 {
                            for b in mine.drain(..32) {
                                // SAFETY: our own live cookie blocks.
                                unsafe { common::free_cookie_block(b) };
                            }
                        }
                    }
                    for b in mine {
                        // SAFETY: as above.
                        unsafe { common::free_cookie_block(b) };
                    }
                }));
            }
            for t in wave_threads {
                t.join().unwrap();
            }
        });
        let s = homing::stats();
        max_heaps = max_heaps.max(s.heaps);
        max_abandoned = max_abandoned.max(s.heaps_abandoned);
    }
    drop(txs);
    let freed: usize = freers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(
        freed,
        sent.load(Ordering::Relaxed),
        "blocks lost on the way"
    );
    let end = common::settled();
    common::assert_balanced(&base, &end, "1,000 threads");
    assert_eq!(
        end.heaps_abandoned, base.heaps_abandoned,
        "heaps still abandoned once every block was freed\n{end}"
    );
    // A wave's threads, the freers, and heaps abandoned with blocks the
    // freers still hold (adopted by the next wave): bounded by a few
    // waves, nowhere near one heap per thread.
    let bound = base.heaps + 3 * WAVE + FREERS;
    assert!(
        max_heaps.max(end.heaps) <= bound,
        "heaps grew from {} to {} (max {max_heaps}) over {CHURN_THREADS} threads; bound {bound}",
        base.heaps,
        end.heaps
    );
    assert!(
        max_abandoned <= base.heaps_abandoned + 2 * WAVE,
        "up to {max_abandoned} heaps abandoned at once"
    );
    println!(
        "1,000 threads: heaps {} -> {} (max {max_heaps}), abandoned at most {max_abandoned}, {freed} remote frees",
        base.heaps, end.heaps
    );
}

#[test]
fn thousand_threads_while_others_free_into_their_heaps() {
    in_child(
        "thousand_threads_while_others_free_into_their_heaps",
        thousand_threads_body,
    );
}

// ---------------------------------------------------------------------
// A thread that never allocated frees the blocks of exited threads
// ---------------------------------------------------------------------

/// Threads that allocate and exit.
const EXITED: usize = 16;

fn exited_blocks_body() {
    let base = common::settled();
    let mut blocks: Vec<usize> = Vec::with_capacity(EXITED * 500);
    // All alive at once, so each has a heap of its own (a thread started
    // after another exited would adopt that one's heap).
    let all_bound = Barrier::new(EXITED);
    let parts: Vec<Vec<usize>> = thread::scope(|s| {
        let hs: Vec<_> = (0..EXITED)
            .map(|t| {
                let all_bound = &all_bound;
                s.spawn(move || {
                    let mut rng = Rng::new(100 + t as u64);
                    let part = (0..500u64)
                        .map(|i| common::cookie_block(mixed_size(&mut rng).max(8), i))
                        .collect::<Vec<usize>>();
                    all_bound.wait();
                    part
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for part in parts {
        blocks.extend_from_slice(&part);
    }
    let loaded = common::settled();
    assert_eq!(
        loaded.heaps_abandoned,
        base.heaps_abandoned + EXITED,
        "each exited thread's heap is abandoned with its blocks\n{loaded}"
    );
    let job = Job {
        blocks: blocks.as_ptr(),
        len: blocks.len(),
        collect: true,
        phase: AtomicUsize::new(0),
        wait: true,
    };
    // SAFETY: `job` outlives the thread: joined below.
    let tid = unsafe { spawn_raw(&job) };
    // Acquire: pairs with the thread's Release store of 1.
    while job.phase.load(Ordering::Acquire) != 1 {
        thread::yield_now();
    }
    // The freer is alive and has collected: every block is home, freed
    // into its abandoned heap under a claim, and those heaps are free.
    let during = common::settled();
    let bookkeeping = 1; // `blocks`
    assert_eq!(
        (during.live_blocks, during.huge_blocks),
        (base.live_blocks + bookkeeping, base.huge_blocks),
        "blocks of exited threads are not all freed\nbefore: {base}\nnow: {during}"
    );
    assert_eq!(
        during.heaps_abandoned, base.heaps_abandoned,
        "heaps of exited threads still abandoned after their last block was freed\n{during}"
    );
    // Their memory went back: what heaps hold (mapped, not in the segment
    // cache) is what it was before the threads ran, give or take the
    // segments a heap keeps (`HOMING_KEEP_SEGMENTS`, 1 per page kind; two
    // 4 MiB segments for the freer's heap and the main thread's).
    let slack = 2 * 2 * (4 << 20);
    assert!(
        common::in_use(&during) <= common::in_use(&base) + slack,
        "memory of freed heaps not returned: {:.1} MiB in use, {:.1} MiB before\nbefore: {base}\nnow: {during}",
        common::mib(common::in_use(&during)),
        common::mib(common::in_use(&base))
    );
    println!(
        "exited threads: {:.1} MiB in use before, {:.1} MiB loaded, {:.1} MiB after the frees",
        common::mib(common::in_use(&base)),
        common::mib(common::in_use(&loaded)),
        common::mib(common::in_use(&during))
    );
    // Release: see the thread's Acquire load.
    job.phase.store(2, Ordering::Release);
    join_raw(tid);
    drop(blocks);
    let end = common::settled();
    common::assert_balanced(&base, &end, "blocks of exited threads");
    assert!(
        end.heaps <= base.heaps + EXITED + 1,
        "heaps: {} -> {}",
        base.heaps,
        end.heaps
    );
}

#[test]
fn never_allocating_thread_frees_blocks_of_exited_threads() {
    in_child(
        "never_allocating_thread_frees_blocks_of_exited_threads",
        exited_blocks_body,
    );
}
