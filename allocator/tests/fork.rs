//! `fork()` while other threads hold homing's spin locks: the child must
//! not inherit a lock that nobody will ever let go.
//!
//! Two threads allocate and free huge blocks without pause (each goes
//! through the lock of the cache of huge mappings) and small ones (their
//! heaps' purge queues), while the main thread forks again and again. Each
//! child allocates and frees a huge block and small ones, then exits; an
//! alarm kills a child stuck on a lock, and the test fails on it. Without
//! the `pthread_atfork` handlers a few hundred forks found a stuck child.
//!
//! Its own test binary: forking a process with test-harness threads around
//! is exactly the case under test, and nothing else runs meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

const FORKS: usize = 300;

/// One huge block (above the 128 KiB of a medium class) and a few small ones.
fn churn(round: usize) {
    let huge = vec![round as u8; 300 * 1024 + (round % 7) * 4096];
    let small: Vec<Box<[u8; 48]>> = (0..8).map(|i| Box::new([i as u8; 48])).collect();
    assert_eq!(huge[huge.len() - 1], round as u8);
    drop(small);
    drop(huge);
}

#[test]
fn fork_while_other_threads_hold_homing_locks() {
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut round = 0;
                // Relaxed: a stop flag; nothing else is published through it.
                while !stop.load(Ordering::Relaxed) {
                    churn(round);
                    round += 1;
                }
            })
        })
        .collect();
    let mut stuck = 0;
    for round in 0..FORKS {
        // SAFETY: the child only allocates, frees and exits (homing is
        // what is under test; it must work in a forked child).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: the child: an alarm ends it if it gets stuck.
            unsafe { libc::alarm(5) };
            churn(round);
            homing::collect();
            churn(round + 1);
            // SAFETY: leave without running the parent's exit handlers.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: our child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            stuck += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(
        stuck, 0,
        "{stuck} of {FORKS} children did not exit cleanly (stuck on a lock?)"
    );
}
