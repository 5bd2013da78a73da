//! Segments a heap gives back keep their memory for the purge delay, as
//! free pages do (`Segment::retire`): a thread that takes over the work of
//! one that just exited reuses its memory without faulting it in again,
//! and once the delay has passed the memory is purged.
//!
//! One test in its own binary: it counts the process's page faults and
//! reads its RSS.
#![cfg(not(miri))]

mod common;

use std::thread;
use std::time::Duration;

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

/// What each thread allocates and frees: three segments' worth of 1 KiB
/// blocks.
const BYTES: usize = 12 << 20;
const BLOCK: usize = 1024;
const OS_PAGES: usize = BYTES / 4096;

/// Minor page faults of the whole process so far.
fn minor_faults() -> usize {
    // SAFETY: a valid out-pointer.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    usage.ru_minflt as usize
}

/// A thread that allocates `BYTES` in blocks, writes them, frees them all
/// and exits (its heap, empty, gives its segments back).
fn churn_and_exit() {
    thread::spawn(|| {
        let blocks = common::filled_blocks(BYTES / BLOCK, BLOCK);
        for p in blocks {
            // SAFETY: a live block, freed once.
            unsafe { homing::free(p as *mut u8) };
        }
    })
    .join()
    .unwrap();
}

#[test]
fn a_successor_thread_reuses_released_segments_then_they_are_purged() {
    // Warm-up: the first thread's segments come fresh from the OS.
    churn_and_exit();
    // The next thread, well within the purge delay, reuses them. (Not
    // every page: it may take the cached segments in another order than
    // its predecessor filled them, and fault in the part of the last one
    // its predecessor never touched; 1010 of 3072 here, against 3098 when
    // released segments were purged at once.)
    let before = minor_faults();
    churn_and_exit();
    let faults = minor_faults() - before;
    assert!(
        faults < OS_PAGES / 2,
        "a successor faulted {faults} OS pages in for {OS_PAGES} pages' worth of blocks: \
         the segments it reused had been purged"
    );
    // Past the delay, the next release purges what waited in the cache.
    let Some(resident) = common::current_rss() else {
        return; // RSS cannot be read here: the fault count is the test.
    };
    thread::sleep(Duration::from_millis(100));
    thread::spawn(|| {
        // A segment released now: the cache purges the expired ones.
        let p = homing::alloc(BLOCK, 16);
        // SAFETY: a live block, freed once.
        unsafe { homing::free(p) };
    })
    .join()
    .unwrap();
    let after = common::current_rss().unwrap();
    assert!(
        after + BYTES / 2 < resident,
        "RSS {after} B after the delay, {resident} B before: the released segments were not purged"
    );
}
