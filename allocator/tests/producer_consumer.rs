//! Producers allocate blocks and send them to consumers, which verify and
//! free them; producers exit while their blocks are still queued or held
//! by consumers, so their heaps are abandoned with live blocks and the
//! consumers' frees must claim them. A few blocks per consumer are carried
//! over to the next round, so abandoned heaps live on and are adopted by the
//! next round's threads.
//!
//! Checked after every round (all threads joined, main thread collected):
//! the live set is exactly the baseline plus the carried blocks; every block
//! was received once (an id bitmap), intact (cookie and full content); and
//! `stats().heaps` stays bounded.
//!
//! One `#[test]` only: see `common` for why.

mod common;

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use common::{Liveness, Rng};

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

const PRODUCERS: usize = 4;
const CONSUMERS: usize = 4;
const ROUNDS: usize = if cfg!(miri) { 2 } else { 20 };
/// Blocks each producer sends per round.
const PER_PRODUCER: usize = if cfg!(miri) { 40 } else { 4_000 };
/// Channel capacity: a producer's last sends wait in the queue while it
/// exits.
const QUEUE: usize = 32;
/// Blocks a consumer holds before freeing the oldest.
const WINDOW: usize = 16;
/// Blocks each consumer carries over to the next round.
const CARRY: usize = 8;
/// Ids ever used.
const MAX_IDS: u64 = (ROUNDS * PRODUCERS * PER_PRODUCER) as u64;

/// A block in transit.
#[derive(Clone, Copy, Debug)]
struct Msg {
    addr: usize,
    size: usize,
    id: u64,
}

/// Sizes: 99% 16 B – 4 KiB, 1% 4 – 128 KiB (all from pages, so a carried
/// block's class size is its usable size; huge blocks are counted by their
/// mapping).
fn size(rng: &mut Rng) -> usize {
    if rng.percent(99) {
        rng.log_size(4, 12)
    } else {
        rng.log_size(12, 17).min(128 << 10)
    }
}

/// The content between the cookie's head (16 bytes) and tail (8 bytes):
/// word `j` is `mix(id) + j * K`.
fn body_word(id: u64, j: usize) -> u64 {
    common::mix(id).wrapping_add((j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Makes a block: allocate, cookie, fill.
fn produce(id: u64, rng: &mut Rng, live: &Liveness) -> Msg {
    let size = size(rng);
    let p = homing::alloc(size, 16);
    assert!(!p.is_null());
    live.born(id);
    // SAFETY: `size >= 16` fresh bytes; the body words lie between the head
    // (16 bytes) and the tail (last 8 bytes).
    unsafe {
        common::write_cookie(p, size, id);
        for j in 2..(size - 8) / 8 {
            p.cast::<u64>().add(j).write(body_word(id, j));
        }
    }
    Msg {
        addr: p as usize,
        size,
        id,
    }
}

/// Verifies a block and frees it.
fn consume(m: Msg, live: &Liveness) {
    let p = m.addr as *mut u8;
    // SAFETY: a live block we received (moved to us through the channel).
    unsafe {
        assert!(homing::usable_size(p) >= m.size);
        let (size, id) = common::check_cookie(p);
        assert_eq!(
            (size, id),
            (m.size, m.id),
            "block {p:p} holds another block's cookie"
        );
        for j in 2..(size - 8) / 8 {
            let got = p.cast::<u64>().add(j).read();
            assert_eq!(
                got,
                body_word(id, j),
                "block {id} ({size} B) word {j} overwritten"
            );
        }
        live.dies(id);
        common::poison_cookie(p, size);
        homing::free(p);
    }
}

/// Everything the test keeps across rounds, allocated before the baseline.
struct Books {
    live: Liveness,
    /// Per consumer, the blocks it carries over to the next round.
    carried: Vec<Mutex<Vec<Msg>>>,
}

/// One round: consumers free last round's carried blocks, producers make
/// `PER_PRODUCER` blocks each and exit, consumers drain, then carry some.
fn round(r: usize, books: &Arc<Books>) {
    let mut senders = Vec::with_capacity(CONSUMERS);
    let mut consumers = Vec::with_capacity(CONSUMERS);
    // Consumers wait here until every producer has been joined, then free
    // what they still hold: blocks of heaps whose threads are gone.
    let producers_gone = Arc::new(Barrier::new(CONSUMERS + 1));
    for c in 0..CONSUMERS {
        let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
        senders.push(tx);
        let books = Arc::clone(books);
        let gone = Arc::clone(&producers_gone);
        consumers.push(thread::spawn(move || {
            let mut rng = Rng::new((r * 1000 + c) as u64);
            // Last round's carried blocks: their producers exited a round ago.
            let carried: Vec<Msg> = books.carried[c].lock().unwrap().drain(..).collect();
            for m in carried {
                consume(m, &books.live);
            }
            let mut window = VecDeque::with_capacity(WINDOW);
            let mut received = 0usize;
            for m in rx.iter() {
                received += 1;
                if window.len() == WINDOW {
                    consume(window.pop_front().unwrap(), &books.live);
                }
                // Hold some longer than others.
                if rng.percent(50) {
                    window.push_back(m);
                } else {
                    consume(m, &books.live);
                }
            }
            gone.wait();
            let mut carry = books.carried[c].lock().unwrap();
            for m in window {
                if r + 1 < ROUNDS && carry.len() < CARRY {
                    carry.push(m);
                } else {
                    consume(m, &books.live);
                }
            }
            received
        }));
    }
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let senders = senders.clone();
            let books = Arc::clone(books);
            thread::spawn(move || {
                let mut rng = Rng::new((r * 1000 + 500 + p) as u64);
                for i in 0..PER_PRODUCER {
                    let id = ((r * PRODUCERS + p) * PER_PRODUCER + i) as u64;
                    let m = produce(id, &mut rng, &books.live);
                    senders[common::mix(id) as usize % CONSUMERS]
                        .send(m)
                        .unwrap();
                }
            })
        })
        .collect();
    drop(senders);
    for p in producers {
        p.join().unwrap();
    }
    producers_gone.wait();
    let received: usize = consumers.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(
        received,
        PRODUCERS * PER_PRODUCER,
        "round {r}: blocks lost in transit"
    );
}

#[test]
fn producers_exit_while_consumers_free() {
    let books = Arc::new(Books {
        live: Liveness::new(MAX_IDS),
        carried: (0..CONSUMERS)
            .map(|_| Mutex::new(Vec::with_capacity(CARRY)))
            .collect(),
    });
    common::warm_up();
    let base = common::settled();
    // At any instant a new heap is made only if every heap is ACTIVE (at
    // most one per live thread: producers, consumers, this thread, the
    // harness) or CLAIMED (at most one per consumer, the only threads that
    // free remote blocks during a round).
    let heap_bound = base.heaps + PRODUCERS + CONSUMERS + CONSUMERS;
    let mut max_abandoned = 0;
    for r in 0..ROUNDS {
        round(r, &books);
        let now = common::settled();
        max_abandoned = max_abandoned.max(now.heaps_abandoned);
        // Carried blocks are the only ones of ours alive between rounds.
        let carried: Vec<Msg> = books
            .carried
            .iter()
            .flat_map(|c| c.lock().unwrap().clone())
            .collect();
        // SAFETY: carried blocks are live (their consumer thread is joined).
        let carried_bytes: usize = carried
            .iter()
            .map(|m| unsafe { homing::usable_size(m.addr as *mut u8) })
            .sum();
        let expected = (
            base.live_blocks + carried.len(),
            base.live_bytes + carried_bytes,
        );
        assert_eq!(
            books.live.count_live() as usize,
            carried.len(),
            "round {r}: blocks neither freed nor carried"
        );
        drop(carried);
        assert_eq!(
            (now.live_blocks, now.live_bytes),
            expected,
            "round {r}: live set is not the baseline plus the carried blocks\nbefore: {base}\nnow: {now}"
        );
        assert!(
            now.heaps <= heap_bound,
            "round {r}: {} heaps, bound {heap_bound} ({PRODUCERS} producers + {CONSUMERS} consumers)\n{now}",
            now.heaps
        );
    }
    assert!(books.carried.iter().all(|c| c.lock().unwrap().is_empty()));
    // The scenario did what it is for: carried blocks kept heaps of exited
    // producers abandoned across a round boundary, for new threads to adopt.
    assert!(
        max_abandoned > 0,
        "no heap was ever left abandoned between rounds"
    );
    // `books` was allocated before the baseline: it stays until the end.
    let end = common::settled();
    common::assert_balanced(&base, &end, "after the last round");
    assert_eq!(
        end.heaps_abandoned, base.heaps_abandoned,
        "abandoned heaps left though every block is free\n{end}"
    );
    eprintln!(
        "producer/consumer: {ROUNDS} rounds, heaps {} (bound {heap_bound}), \
         up to {max_abandoned} abandoned between rounds\n{end}",
        end.heaps
    );
    drop(books);
}
