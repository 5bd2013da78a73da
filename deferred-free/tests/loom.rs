//! loom models of the inbox queue. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release -p homing-deferred --test loom`.
#![cfg(loom)]

use std::ptr::NonNull;

use homing_deferred::{Batch, Chain, Inbox, Node};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

/// A queued block: the link first, then a payload written by the producer
/// before publishing (through a loom cell, so a missing happens-before edge
/// between that write and the owner's read is reported as a data race).
#[repr(C)]
struct Item {
    node: Node,
    payload: UnsafeCell<(usize, usize)>,
}

fn new_item(producer: usize, seq: usize) -> NonNull<Node> {
    let item = Box::new(Item {
        node: Node::new(),
        payload: UnsafeCell::new((0, 0)),
    });
    // The payload is written after construction, as a freeing thread writes
    // into a block it is about to post.
    // SAFETY: the item is ours alone until it is pushed.
    item.payload.with_mut(|p| unsafe { *p = (producer, seq) });
    NonNull::from(Box::leak(item)).cast()
}

/// Frees every node of `chain` and records `(producer, seq)` in push order.
fn drain(chain: Chain, out: &mut Vec<(usize, usize)>) {
    for node in chain.reversed() {
        // SAFETY: every node came from `new_item` and is taken exactly once.
        let item = unsafe { Box::from_raw(node.cast::<Item>().as_ptr()) };
        out.push(item.payload.with(|p| unsafe { *p }));
    }
}

/// Checks that each producer's nodes arrived exactly once, in push order.
fn check(got: &[(usize, usize)], producers: usize, per_producer: usize) {
    for p in 0..producers {
        let seqs: Vec<usize> = got
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|&(_, s)| s)
            .collect();
        assert_eq!(seqs, (0..per_producer).collect::<Vec<_>>(), "producer {p}");
    }
    assert_eq!(got.len(), producers * per_producer);
}

#[test]
fn two_producers_and_a_draining_owner() {
    loom::model(|| {
        let queue = Arc::new(Inbox::new());
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let queue = Arc::clone(&queue);
                thread::spawn(move || {
                    for seq in 0..2 {
                        // SAFETY: fresh node, pushed once.
                        unsafe { queue.push(new_item(p, seq)) };
                    }
                })
            })
            .collect();
        let mut got = Vec::new();
        drain(queue.take(), &mut got);
        drain(queue.take(), &mut got);
        for producer in producers {
            producer.join().unwrap();
        }
        drain(queue.take(), &mut got);
        check(&got, 2, 2);
    });
}

#[test]
fn batches_race_single_pushes() {
    loom::model(|| {
        let queue = Arc::new(Inbox::new());
        let batcher = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let mut batch = Batch::new();
                for seq in 0..3 {
                    // SAFETY: fresh node.
                    unsafe { batch.push_front(new_item(0, seq)) };
                }
                // SAFETY: nodes live until taken.
                unsafe { batch.publish(&queue) };
            })
        };
        let single = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                for seq in 0..2 {
                    // SAFETY: fresh node.
                    unsafe { queue.push(new_item(1, seq)) };
                }
            })
        };
        let mut got = Vec::new();
        drain(queue.take(), &mut got);
        batcher.join().unwrap();
        single.join().unwrap();
        drain(queue.take(), &mut got);
        let zeros: Vec<_> = got
            .iter()
            .filter(|(p, _)| *p == 0)
            .map(|&(_, s)| s)
            .collect();
        assert_eq!(zeros, [0, 1, 2]);
        let ones: Vec<_> = got
            .iter()
            .filter(|(p, _)| *p == 1)
            .map(|&(_, s)| s)
            .collect();
        assert_eq!(ones, [0, 1]);
    });
}

#[test]
fn owner_never_sees_part_of_a_batch() {
    loom::model(|| {
        const LEN: usize = 4;
        let queue = Arc::new(Inbox::new());
        let producer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let mut batch = Batch::new();
                for seq in 0..LEN {
                    // SAFETY: fresh node.
                    unsafe { batch.push_front(new_item(0, seq)) };
                }
                // SAFETY: nodes live until taken.
                unsafe { batch.publish(&queue) };
            })
        };
        // Whatever the interleaving, one take sees either nothing or the
        // whole batch, links and payloads (loom flags a racy read).
        let mut got = Vec::new();
        drain(queue.take(), &mut got);
        assert!(
            got.is_empty() || got.len() == LEN,
            "saw {} of {LEN}",
            got.len()
        );
        producer.join().unwrap();
        drain(queue.take(), &mut got);
        check(&got, 1, LEN);
    });
}

/// `Shared<T>`: the biased counts, the owner's signal and sweep, and owner exit.
#[cfg(feature = "std")]
mod shared {
    use homing_deferred::{collect, Shared};
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    /// Counts its drops; a drop also reads a plain payload, so loom reports
    /// a free that does not happen after every use.
    struct Probe {
        drops: Arc<AtomicUsize>,
        payload: loom::cell::UnsafeCell<u32>,
    }

    impl Probe {
        fn new(drops: &Arc<AtomicUsize>) -> Probe {
            Probe {
                drops: Arc::clone(drops),
                payload: loom::cell::UnsafeCell::new(7),
            }
        }

        fn read(&self) -> u32 {
            // SAFETY: the payload is written only in `drop`, when no handle
            // can read any more; loom checks that claim.
            self.payload.with(|p| unsafe { *p })
        }
    }

    // SAFETY: the payload is only read while shared; written only in drop.
    unsafe impl Sync for Probe {}

    impl Drop for Probe {
        fn drop(&mut self) {
            // SAFETY: `drop` has the object alone (the last handle is gone);
            // loom reports a read racing this write.
            self.payload.with_mut(|p| unsafe { *p = 0 });
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn owner_and_foreign_releases_race() {
        loom::model(|| {
            let drops = Arc::new(AtomicUsize::new(0));
            let s = Shared::new(Probe::new(&drops));
            let a = s.clone();
            let b = s.clone();
            let foreign = thread::spawn(move || {
                // +1, -1, then -1 for the owner-counted handle: negative,
                // so it is posted to the owner.
                let c = a.clone();
                assert_eq!(c.read(), 7);
                drop(a);
                drop(c);
            });
            drop(b);
            collect(); // may or may not see the post: either is fine
            assert_eq!(s.read(), 7);
            drop(s);
            foreign.join().unwrap();
            collect();
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn two_foreign_releases_race_to_signal() {
        loom::model(|| {
            let drops = Arc::new(AtomicUsize::new(0));
            let s = Shared::new(Probe::new(&drops));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let h = s.clone();
                    thread::spawn(move || {
                        assert_eq!(h.read(), 7);
                        drop(h);
                    })
                })
                .collect();
            collect();
            drop(s);
            for t in threads {
                t.join().unwrap();
            }
            collect();
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn owner_exit_races_a_foreign_release() {
        loom::model(|| {
            let drops = Arc::new(AtomicUsize::new(0));
            let d = Arc::clone(&drops);
            let owner = thread::spawn(move || {
                let s = Shared::new(Probe::new(&d));
                let a = s.clone();
                let foreign = thread::spawn(move || {
                    assert_eq!(a.read(), 7);
                    drop(a);
                });
                drop(s);
                // The owner's exit (its thread-locals' destructors) now races
                // the foreign drop of the handle it counted.
                foreign
            });
            let foreign = owner.join().unwrap();
            foreign.join().unwrap();
            // loom's `join` returns before the joined thread's thread-locals
            // are destroyed (std's waits for them), so the owner's exit may
            // still be running: wait for it. If nobody finished the object
            // this spins until loom gives up on the execution, which fails.
            while drops.load(Ordering::SeqCst) == 0 {
                thread::yield_now();
            }
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn merged_last_drops_race() {
        loom::model(|| {
            let drops = Arc::new(AtomicUsize::new(0));
            let s = Shared::new(Probe::new(&drops));
            let a = s.clone();
            // A foreign clone made from `a` and dropped there keeps the
            // count at zero; the owner's last local drop then races the
            // foreign drop of `a` itself.
            let foreign = thread::spawn(move || {
                let c = a.clone();
                drop(c);
                drop(a);
            });
            drop(s);
            foreign.join().unwrap();
            collect();
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        });
    }

    /// The owner never joins the foreign thread, so only the signal's
    /// Release/Acquire pair makes the foreign decrement visible to the
    /// owner's sweep. Were either side weaker, a sweep could take the signal
    /// yet read the count from before the decrement, skip the object, and
    /// nothing would ever free it: the loop below would spin until loom
    /// gives up on the execution, which fails the test.
    #[test]
    fn a_sweep_sees_the_decrement_it_was_signalled_for() {
        loom::model(|| {
            let drops = Arc::new(AtomicUsize::new(0));
            let s = Shared::new(Probe::new(&drops));
            let foreign = thread::spawn(move || {
                assert_eq!(s.read(), 7);
                drop(s); // the owner counted it: below zero, signals
            });
            while drops.load(Ordering::SeqCst) == 0 {
                collect();
                thread::yield_now();
            }
            foreign.join().unwrap();
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        });
    }

    /// Two foreign threads each drop the last handle of a different object
    /// of the same owner. The owner's one swap may read the second signal
    /// only; it must still see the first thread's decrement, which holds
    /// only because each signal is a read-modify-write continuing the
    /// release sequence (a plain store would cut it, the first object would
    /// be skipped and never freed, and the loop would spin until loom gives
    /// up).
    #[test]
    fn one_sweep_sees_every_signaller_before_it() {
        loom::model(|| {
            let drops = Arc::new(AtomicUsize::new(0));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let s = Shared::new(Probe::new(&drops));
                    thread::spawn(move || drop(s))
                })
                .collect();
            while drops.load(Ordering::SeqCst) < 2 {
                collect();
                thread::yield_now();
            }
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(drops.load(Ordering::SeqCst), 2);
        });
    }
}
