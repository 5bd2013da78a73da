//! A thread whose first act is to free an exited thread's blocks (a server
//! replacing a worker and inheriting its objects) adopts that thread's heap,
//! not just any abandoned heap: its frees are then local, and its
//! allocations reuse the memory it frees.
//!
//! Eight threads allocate and exit together, the one whose blocks are
//! inherited first (so its heap is the oldest, the last an arbitrary
//! adoption would pick). A raw `pthread`, which allocates nothing before
//! it frees, then frees them all: not one free may travel as a remote free.
//!
//! Its own test binary, with one test: the statistics are process-wide.

use std::sync::{mpsc, Arc, Barrier};
use std::thread;

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

const BLOCKS: usize = 2_000;

struct Job {
    blocks: Vec<usize>,
    remote: usize,
}

/// The inheritor: frees the blocks it is handed and counts the remote
/// frees the process made meanwhile.
extern "C" fn inheritor(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: `arg` is the `Job` the test passes, alive until joined.
    let job = unsafe { &mut *arg.cast::<Job>() };
    let before = homing::stats().remote_posted;
    for &p in &job.blocks {
        // SAFETY: a live block of the exited thread, given up here once.
        unsafe { homing::free(p as *mut u8) };
    }
    job.remote = homing::stats().remote_posted - before;
    std::ptr::null_mut()
}

/// A thread that allocates `BLOCKS` blocks, hands them to `keep` (or keeps
/// them live for ever), and exits once all eight have allocated.
fn allocator_thread(
    barrier: Arc<Barrier>,
    keep: Option<mpsc::Sender<Vec<usize>>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let blocks: Vec<usize> = (0..BLOCKS)
            .map(|_| homing::alloc(48, 16) as usize)
            .collect();
        match keep {
            Some(tx) => tx.send(blocks).unwrap(),
            // Live blocks keep the heap abandoned (not free).
            None => std::mem::forget(blocks),
        }
        // All alive at once: eight heaps, none adopting another's.
        barrier.wait();
    })
}

#[test]
fn the_thread_that_inherits_blocks_adopts_their_heap() {
    let barrier = Arc::new(Barrier::new(8));
    let (tx, rx) = mpsc::channel();
    let mut threads = vec![allocator_thread(Arc::clone(&barrier), Some(tx))];
    // Its heap exists once its blocks arrive: the oldest of the eight.
    let blocks = rx.recv().unwrap();
    threads.extend((1..8).map(|_| allocator_thread(Arc::clone(&barrier), None)));
    for t in threads {
        t.join().unwrap();
    }
    let mut job = Job { blocks, remote: 0 };
    let mut tid: libc::pthread_t = 0;
    // SAFETY: valid out-pointer, default attributes, an `extern "C"` body,
    // and `job` outlives the thread (joined below).
    let rc = unsafe {
        libc::pthread_create(
            &mut tid,
            std::ptr::null(),
            inheritor,
            std::ptr::addr_of_mut!(job).cast(),
        )
    };
    assert_eq!(rc, 0);
    // SAFETY: a joinable thread we created.
    assert_eq!(unsafe { libc::pthread_join(tid, std::ptr::null_mut()) }, 0);
    assert_eq!(
        job.remote, 0,
        "the inheriting thread freed {} of {BLOCKS} blocks remotely: it adopted another heap",
        job.remote
    );
}
