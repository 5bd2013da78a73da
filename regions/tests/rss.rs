//! RSS follows the live set: creating and dropping 1 GiB worth of regions
//! on two threads leaves the process within [`BOUND`] of where it started.
//!
//! Alone in its own test binary so no other test moves the RSS meanwhile.
//! Skipped under Miri (no `/proc`, and far too slow).

use homing_regions::Region;

/// Total bytes of regions made and dropped, over both threads.
const TOTAL: usize = 1 << 30;
/// Threads doing it at once.
const THREADS: usize = 2;
/// Bytes touched in each region: three quarters in small objects (so each
/// region takes dozens of pooled chunks, and two of them at once overflow
/// the pool's hot limit), a quarter in one huge object.
const REGION_BYTES: usize = 32 << 20;
/// Allowed growth of RSS from start to end: the pool's hot limit (32 MiB)
/// plus the threads' caches (a few MiB each) fit inside it.
const BOUND: usize = 64 << 20;

/// Resident set size in bytes, from `/proc/self/statm` (second field, in
/// pages).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * homing::os::OS_PAGE
}

#[test]
#[cfg_attr(miri, ignore = "no /proc under Miri, and too slow")]
fn rss_returns_after_a_gibibyte_of_regions() {
    let start = rss();
    let mut peak = start;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut peak = 0;
                for round in 0..TOTAL / THREADS / REGION_BYTES {
                    let region = Region::new();
                    // Small objects, with `Drop` every so often, then one huge.
                    let mut touched = 0;
                    while touched < REGION_BYTES / 4 * 3 {
                        let s = region.alloc_slice_fill_with(1000, |i| (t + round + i) as u64);
                        touched += std::mem::size_of_val(s);
                        region.alloc(vec![round as u8; 64]);
                    }
                    let big = region.alloc_slice_fill_with(REGION_BYTES / 4, |i| i as u8);
                    assert_eq!(big[1000], (1000 % 256) as u8);
                    peak = peak.max(rss());
                    drop(region);
                }
                peak
            })
        })
        .collect();
    for h in handles {
        peak = peak.max(h.join().unwrap());
    }
    let pool = homing_regions::pool::ChunkPool::global().stats();
    eprintln!("{pool:?} {:?}", homing::os::counters());
    let end = rss();
    eprintln!(
        "rss: start {} MiB, peak {} MiB, end {} MiB",
        start >> 20,
        peak >> 20,
        end >> 20
    );
    assert!(
        peak > start + REGION_BYTES,
        "the test did not touch its memory"
    );
    assert!(
        pool.purged_chunks > 0,
        "the pool's purge path was not exercised"
    );
    assert!(
        end <= start + BOUND,
        "RSS grew from {} MiB to {} MiB (bound {} MiB)",
        start >> 20,
        end >> 20,
        BOUND >> 20
    );
}
