//! When the OS refuses homing memory, homing calls the hooks other layers
//! registered (`homing::os::on_memory_pressure`); the global chunk pool's
//! hook purges its hot chunks. Alone in this test binary: the global pool
//! is shared by every test of a process.

use homing_regions::pool::ChunkPool;

#[test]
fn memory_pressure_purges_the_global_pools_hot_chunks() {
    let pool = ChunkPool::global();
    let chunks: Vec<_> = (0..4).map(|_| pool.take(0).expect("a chunk")).collect();
    for chunk in chunks {
        pool.give(chunk);
    }
    let before = pool.stats();
    assert!(before.hot_bytes > 0, "{before:?}");
    // What homing does after an allocation failed, before it retries.
    homing::os::relieve_pressure();
    let after = pool.stats();
    assert_eq!(after.hot_bytes, 0, "{after:?}");
    assert!(after.purged_chunks >= before.purged_chunks + 4);
    // The purged chunks are still there to be taken (cold, reading as zero).
    let again = pool.take(0).expect("a cold chunk");
    pool.give(again);
}
