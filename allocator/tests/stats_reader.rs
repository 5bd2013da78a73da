//! Statistics read by one thread while another allocates and frees: the
//! live counts must never read more than what could be live (a torn read of
//! a class's two counters, allocations before frees, once printed
//! `live: 4294967299 blocks`: the frees of the blocks allocated between the
//! two loads made the difference negative).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// More than this test ever holds live (a few blocks) plus whatever the
/// test harness allocates: far below the 2^32 a negative difference wraps to.
const BOUND: usize = 1 << 20;

#[test]
fn live_counts_never_wrap_while_another_thread_churns() {
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            // Relaxed: only a stop flag.
            while !stop.load(Ordering::Relaxed) {
                for size in [16usize, 64, 256, 1024] {
                    let p = homing::alloc(size, 8);
                    assert!(!p.is_null());
                    // SAFETY: a live block from homing, given up here.
                    unsafe { homing::free(p) };
                    n += 1;
                }
            }
            n
        })
    };
    let start = Instant::now();
    let mut reads = 0u64;
    let mut worst = 0usize;
    while start.elapsed() < Duration::from_millis(if cfg!(miri) { 50 } else { 400 }) {
        let s = homing::stats();
        worst = worst.max(s.live_blocks);
        assert!(
            s.live_blocks < BOUND && s.live_bytes < BOUND * 1024,
            "after {reads} reads: {s}"
        );
        reads += 1;
    }
    // Relaxed: only a stop flag.
    stop.store(true, Ordering::Relaxed);
    let pairs = churn.join().unwrap();
    assert!(pairs > 0 && reads > 0);
    println!("{reads} reads during {pairs} alloc/free pairs; at most {worst} live");
}
