//! `fork` while other threads hold homing's spin locks: the cache of huge
//! mappings' lock (taken on every huge allocation and free) and, with the
//! background purger on, the purge-queue locks and claims of its rounds.
//! Without the `pthread_atfork` handlers (`huge::cache::fork_guard`), a
//! child forked while another thread held one inherited it held and waited
//! forever at its first huge allocation (about one run in two of 40 forks
//! hung). Each child here allocates and frees huge and small blocks, and
//! exits; an alarm turns a hang into a failure.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

const FORKS: usize = 40;
/// Sizes above `MEDIUM_MAX`: huge blocks, through the cache's lock.
const HUGE: [usize; 3] = [200 << 10, 600 << 10, 1 << 20];

fn churn(round: usize) {
    let size = HUGE[round % HUGE.len()];
    let p = homing::alloc(size, 16);
    assert!(!p.is_null());
    // SAFETY: a live block of `size` bytes.
    unsafe { p.write_bytes(round as u8, size) };
    let q = homing::alloc(64 + round % 4000, 16);
    assert!(!q.is_null());
    // SAFETY: live blocks from homing, given up here.
    unsafe {
        homing::free(q);
        homing::free(p);
    }
}

/// What a child does: huge and small blocks, then exit (no unwinding, no
/// test harness). Exit status 0 if all went well; a hang dies of the alarm.
fn child() -> ! {
    // SAFETY: async-signal-safe calls; the child has one thread.
    unsafe { libc::alarm(10) };
    for round in 0..200 {
        churn(round);
    }
    // SAFETY: ends the child at once, running no destructors of the parent.
    unsafe { libc::_exit(0) }
}

#[test]
fn fork_while_other_threads_hold_the_locks() {
    homing::configure(homing::Setting::BackgroundPurge(true));
    homing::configure(homing::Setting::PurgeDelayMs(Some(1)));
    let stop = Arc::new(AtomicBool::new(false));
    let hammers: Vec<_> = (0..2)
        .map(|t| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut round = t;
                // Relaxed: a stop flag; nothing is read through it.
                while !stop.load(Ordering::Relaxed) {
                    churn(round);
                    round += 1;
                }
            })
        })
        .collect();
    let mut failed = Vec::new();
    for f in 0..FORKS {
        thread::sleep(std::time::Duration::from_millis(2));
        // SAFETY: the child only allocates, frees and `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            child();
        }
        let mut status = 0;
        // SAFETY: a child of ours; a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            failed.push((f, status));
        }
    }
    // Relaxed: see above.
    stop.store(true, Ordering::Relaxed);
    for h in hammers {
        h.join().unwrap();
    }
    assert!(
        failed.is_empty(),
        "children that hung or failed (fork, wait status): {failed:?}"
    );
}
