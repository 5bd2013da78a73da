//! Random sequences of push / push_batch / take from several producers,
//! checked against a `VecDeque` model: no node lost, duplicated or reordered
//! per producer.
#![cfg(not(loom))]

use std::collections::VecDeque;
use std::ptr::NonNull;

use homing_deferred::{Batch, Inbox, Node};
use proptest::prelude::*;

#[repr(C)]
struct Item {
    node: Node,
    producer: u8,
    seq: u32,
}

#[derive(Debug, Clone)]
enum Op {
    /// Producer `p` pushes one node.
    Push(u8),
    /// Producer `p` adds a node to its private batch.
    Stage(u8),
    /// Producer `p` publishes its private batch.
    Publish(u8),
    /// The owner takes everything.
    Take,
}

const PRODUCERS: u8 = 3;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..PRODUCERS).prop_map(Op::Push),
        4 => (0..PRODUCERS).prop_map(Op::Stage),
        2 => (0..PRODUCERS).prop_map(Op::Publish),
        1 => Just(Op::Take),
    ]
}

fn new_item(producer: u8, seq: u32) -> NonNull<Node> {
    let item = Box::new(Item {
        node: Node::new(),
        producer,
        seq,
    });
    NonNull::from(Box::leak(item)).cast()
}

/// Takes everything and checks it against the model's pending pushes.
fn take_and_check(queue: &Inbox, model: &mut VecDeque<(u8, u32)>) -> Result<(), TestCaseError> {
    // The model holds published nodes in push order; `take` returns them
    // newest first, so its reverse must equal the model exactly.
    let got: Vec<(u8, u32)> = queue
        .take()
        .reversed()
        .map(|node| {
            // SAFETY: every node came from `new_item` and is taken once.
            let item = unsafe { Box::from_raw(node.cast::<Item>().as_ptr()) };
            (item.producer, item.seq)
        })
        .collect();
    let expected: Vec<(u8, u32)> = model.drain(..).collect();
    prop_assert_eq!(got, expected);
    prop_assert!(queue.is_empty());
    Ok(())
}

/// Fewer cases under Miri, and no failure file (Miri isolates the file system).
fn config() -> ProptestConfig {
    if cfg!(miri) {
        ProptestConfig {
            cases: 8,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    } else {
        ProptestConfig::with_cases(512)
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn queue_matches_model(ops in proptest::collection::vec(op(), 0..200)) {
        let queue = Inbox::new();
        let mut model: VecDeque<(u8, u32)> = VecDeque::new();
        let mut batches: Vec<Batch> = (0..PRODUCERS).map(|_| Batch::new()).collect();
        // What each producer staged, in staging order (not yet published).
        let mut staged: Vec<Vec<(u8, u32)>> = vec![Vec::new(); PRODUCERS as usize];
        let mut next_seq = [0u32; PRODUCERS as usize];

        for op in ops {
            match op {
                Op::Push(p) => {
                    let seq = next_seq[p as usize];
                    next_seq[p as usize] += 1;
                    // SAFETY: a fresh node, pushed once, freed when taken.
                    unsafe { queue.push(new_item(p, seq)) };
                    model.push_back((p, seq));
                }
                Op::Stage(p) => {
                    let seq = next_seq[p as usize];
                    next_seq[p as usize] += 1;
                    // SAFETY: a fresh node, in no other chain.
                    unsafe { batches[p as usize].push_front(new_item(p, seq)) };
                    staged[p as usize].push((p, seq));
                }
                Op::Publish(p) => {
                    prop_assert_eq!(batches[p as usize].len(), staged[p as usize].len());
                    // SAFETY: the nodes live until taken.
                    unsafe { batches[p as usize].publish(&queue) };
                    model.extend(staged[p as usize].drain(..));
                }
                Op::Take => take_and_check(&queue, &mut model)?,
            }
        }
        for p in 0..PRODUCERS as usize {
            // SAFETY: the nodes live until taken.
            unsafe { batches[p].publish(&queue) };
            model.extend(staged[p].drain(..));
        }
        take_and_check(&queue, &mut model)?;
    }
}
