//! `xmalloc`: producers allocate, consumers free; every free is remote.
//!
//! Modelled on the classic xmalloc-test: half the threads (rounded down, at
//! least one) are producers that allocate blocks of random sizes in
//! `min_size..=max_size`, write them, and send them in batches of
//! [`BATCH_LEN`] to the consumers, round robin; the other threads (at least
//! one) are consumers that free every block they receive. Nothing is freed
//! by the thread that allocated it, so the allocator's cross-thread free path
//! carries the whole load. The channels are bounded ([`IN_FLIGHT_BATCHES`]),
//! so the live set stays small and producers wait for slow consumers.
//!
//! Parameters: `threads` (producers + consumers, at least 2 are used),
//! `min_size`/`max_size`, `work` = blocks allocated in total.
//! Checksum: the bytes requested.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;

use super::{share, Block, Params, Workload, DEFAULT_SEED};
use crate::rng::Rng;

/// Blocks per message: enough that the channel costs little next to the
/// allocations, few enough that blocks do reach consumers while producers run.
pub const BATCH_LEN: usize = 64;

/// Messages a consumer's channel holds before producers wait: bounds the
/// live set at about `consumers × IN_FLIGHT_BATCHES × BATCH_LEN` blocks.
pub const IN_FLIGHT_BATCHES: usize = 16;

/// One message: blocks on their way to be freed by a consumer.
type Batch = Vec<Block>;

/// The registry entry: name, summary and the defaults of a full run on a
/// 2-core machine.
pub const WORKLOAD: Workload = Workload {
    name: "xmalloc",
    summary: "producers allocate, consumers free: every free crosses threads",
    run,
    defaults: Params {
        threads: 2,
        min_size: 16,
        max_size: 512,
        work: 18_000_000,
        seed: DEFAULT_SEED,
    },
    oversubscribed: true,
};

/// Runs the workload; see the module documentation.
pub fn run(p: &Params) -> u64 {
    let producers = (p.threads / 2).max(1);
    let consumers = p.threads.saturating_sub(producers).max(1);
    let (senders, receivers): (Vec<SyncSender<Batch>>, Vec<Receiver<Batch>>) = (0..consumers)
        .map(|_| mpsc::sync_channel(IN_FLIGHT_BATCHES))
        .unzip();
    thread::scope(|s| {
        for rx in receivers {
            s.spawn(move || {
                // Dropping a batch frees its blocks, then the batch's buffer.
                for batch in rx {
                    drop(batch);
                }
            });
        }
        let producer_threads: Vec<_> = (0..producers)
            .map(|i| {
                let senders = senders.clone();
                let share = share(p.work, producers, i);
                s.spawn(move || produce(p, i, share, &senders))
            })
            .collect();
        // Only the producers' clones remain, so each consumer stops when
        // every producer has finished.
        drop(senders);
        producer_threads
            .into_iter()
            .map(|t| t.join().expect("producer panicked"))
            .sum()
    })
}

/// Producer `index`: allocates `count` blocks and sends them out in batches;
/// returns the bytes requested.
fn produce(p: &Params, index: usize, count: u64, senders: &[SyncSender<Batch>]) -> u64 {
    let mut rng = Rng::for_thread(p.seed, index as u64);
    let mut bytes = 0u64;
    let mut next_consumer = index % senders.len();
    let mut batch = Vec::with_capacity(BATCH_LEN);
    for _ in 0..count {
        let size = rng.range_inclusive(p.min_size, p.max_size);
        bytes += size as u64;
        batch.push(Block::new(size));
        if batch.len() == BATCH_LEN {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_LEN));
            senders[next_consumer]
                .send(full)
                .expect("consumers outlive producers");
            next_consumer = (next_consumer + 1) % senders.len();
        }
    }
    if !batch.is_empty() {
        senders[next_consumer]
            .send(batch)
            .expect("consumers outlive producers");
    }
    bytes
}
