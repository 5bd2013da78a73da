//! Remote frees held in an idle thread's outbox reach their owner: a thread
//! frees another thread's blocks (fewer than the outbox budget, so nothing
//! is posted by itself) and then blocks on a channel, alive and idle. The
//! owner keeps allocating; within a few purge delays (10 ms) a scan on its
//! slow path finds the idle outbox unchanged, takes it with the steal
//! protocol (see `remote`, "Stranded outboxes") and posts it, and the owner
//! allocates the very same blocks again. Before, they stayed in the idle
//! thread's outbox until it ran again, and their page could never empty.
#![cfg(not(miri))]

use std::collections::HashSet;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

/// Blocks the idle thread frees: well under the outbox budget (256).
const STRANDED: usize = 100;
/// Their size: a class the test uses for nothing else.
const SIZE: usize = 720;
/// How long the owner waits for them: many purge delays. They come back
/// within two or three; without the fix they never do.
const PATIENCE: Duration = Duration::from_secs(5);

fn layout(size: usize) -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(size, 16).unwrap()
}

/// Allocates and frees medium blocks: each page of them serves a few, so
/// the owner takes allocation slow paths (where the scans run).
fn churn() {
    let blocks: Vec<*mut u8> = (0..64)
        // SAFETY: a non-zero size.
        .map(|_| unsafe { std::alloc::alloc(layout(64 << 10)) })
        .collect();
    for p in blocks {
        assert!(!p.is_null());
        // SAFETY: allocated above with this layout.
        unsafe { std::alloc::dealloc(black_box(p), layout(64 << 10)) };
    }
}

#[test]
fn an_idle_threads_remote_frees_reach_their_owner() {
    // The owner's blocks; the freer takes them all.
    let blocks: Vec<usize> = (0..STRANDED)
        // SAFETY: a non-zero size.
        .map(|_| unsafe { std::alloc::alloc(layout(SIZE)) } as usize)
        .collect();
    assert!(blocks.iter().all(|&p| p != 0));
    let stranded: HashSet<usize> = blocks.iter().copied().collect();
    // Signals without a channel: the idle thread must not allocate once it
    // has freed (its allocation slow path would post its outbox itself).
    let done = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(AtomicBool::new(false));
    let freer = {
        let (done, wake) = (done.clone(), wake.clone());
        thread::spawn(move || {
            for p in blocks {
                // SAFETY: the owner gave these up; each is freed once.
                unsafe { std::alloc::dealloc(p as *mut u8, layout(SIZE)) };
            }
            // Release/Acquire: only a signal; nothing else is shared.
            done.store(true, Ordering::Release);
            // Idle: parked (a futex wait) until the test ends.
            while !wake.load(Ordering::Acquire) {
                thread::park();
            }
        })
    };
    while !done.load(Ordering::Acquire) {
        thread::yield_now();
    }
    let start = Instant::now();
    let mut back = false;
    let mut held = Vec::new();
    while start.elapsed() < PATIENCE {
        churn();
        // Blocks of the stranded blocks' class: once the outbox is posted
        // and drained, these are the stranded blocks themselves.
        for _ in 0..STRANDED {
            // SAFETY: a non-zero size.
            let p = unsafe { std::alloc::alloc(layout(SIZE)) };
            assert!(!p.is_null());
            held.push(p);
            back |= stranded.contains(&(p as usize));
        }
        if back {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    let waited = start.elapsed();
    wake.store(true, Ordering::Release);
    freer.thread().unpark();
    freer.join().unwrap();
    for p in held {
        // SAFETY: allocated above with this layout.
        unsafe { std::alloc::dealloc(p, layout(SIZE)) };
    }
    assert!(
        back,
        "none of the {STRANDED} blocks freed by the idle thread came back in {waited:?}"
    );
    eprintln!("the stranded blocks came back after {waited:?}");
}
