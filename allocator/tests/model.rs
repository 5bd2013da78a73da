//! A model test: random sequences of allocations (random size and
//! alignment, some zeroed, some made by another thread), reallocations,
//! frees on this thread and frees on another thread, checked step by step
//! against a model of the live blocks (`id → (pointer, size, alignment)`;
//! each block's content is a pattern derived from its id).
//!
//! After every step every live block must still hold its pattern, and no
//! two live blocks may overlap. After every case everything is freed and
//! the statistics are back to where the case started.
//!
//! The other thread is a long-lived helper that serves requests through a
//! mutex-and-condvar mailbox (which allocates nothing, so the statistics
//! stay exact); a request returns only when the helper has done it.
//!
//! One `#[test]` only: see `common` for why.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

// ---------------------------------------------------------------------
// The helper thread
// ---------------------------------------------------------------------

/// A request to the helper thread (addresses as `usize`: raw pointers are
/// not `Send`).
#[derive(Clone, Copy, Debug)]
enum Request {
    /// Free this block there.
    Free(usize),
    /// Allocate a block there, fill it with `id`'s pattern, return it.
    Alloc {
        size: usize,
        align: usize,
        id: u64,
    },
    /// `homing::collect()` there: post the helper's outbox, drain its inbox.
    Collect,
    Exit,
}

#[derive(Default)]
struct Slot {
    request: Option<Request>,
    reply: Option<usize>,
}

/// One request at a time, one reply per request.
#[derive(Default)]
struct Mailbox {
    slot: Mutex<Slot>,
    changed: Condvar,
}

impl Mailbox {
    /// Sends `request` and waits for the helper's reply.
    fn call(&self, request: Request) -> usize {
        let mut slot = self.slot.lock().unwrap();
        assert!(slot.request.is_none() && slot.reply.is_none());
        slot.request = Some(request);
        self.changed.notify_all();
        loop {
            if let Some(reply) = slot.reply.take() {
                return reply;
            }
            slot = self.changed.wait(slot).unwrap();
        }
    }

    /// The helper's loop.
    fn serve(&self) {
        loop {
            let request = {
                let mut slot = self.slot.lock().unwrap();
                loop {
                    if let Some(r) = slot.request.take() {
                        break r;
                    }
                    slot = self.changed.wait(slot).unwrap();
                }
            };
            let reply = match request {
                // SAFETY: the main thread gives up a live block.
                Request::Free(addr) => unsafe {
                    homing::free(addr as *mut u8);
                    0
                },
                Request::Alloc { size, align, id } => {
                    let p = homing::alloc(size, align);
                    if !p.is_null() {
                        // SAFETY: a fresh block of `size` bytes.
                        unsafe { fill(p, size, id) };
                    }
                    p as usize
                }
                Request::Collect => {
                    homing::collect();
                    0
                }
                Request::Exit => 0,
            };
            let mut slot = self.slot.lock().unwrap();
            slot.reply = Some(reply);
            self.changed.notify_all();
            if matches!(request, Request::Exit) {
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------
// Block contents
// ---------------------------------------------------------------------

/// Blocks up to this size are written and checked in full ...
const FULL: usize = if cfg!(miri) { 128 } else { 1024 };
/// ... larger ones at their first and last `EDGE` bytes and every
/// `STRIDE`th byte (a prime, so the samples walk through every offset in a
/// page).
const EDGE: usize = if cfg!(miri) { 64 } else { 256 };
const STRIDE: usize = if cfg!(miri) { 1021 } else { 257 };

/// The offsets of a `size`-byte block that carry the pattern.
fn offsets(size: usize) -> impl Iterator<Item = usize> {
    let (head, strided, tail) = if size <= FULL {
        (0..size, (0..0).step_by(1), 0..0)
    } else {
        (
            0..EDGE,
            (EDGE..size - EDGE).step_by(STRIDE),
            size - EDGE..size,
        )
    };
    head.chain(strided).chain(tail)
}

/// Byte `i` of block `id`'s pattern.
fn pattern(id: u64, i: usize) -> u8 {
    (common::mix(id) as u8) ^ (i as u8) ^ ((i >> 8) as u8).wrapping_mul(31)
}

/// Writes `id`'s pattern into a block.
///
/// # Safety
///
/// `p` is valid for writes of `size` bytes.
unsafe fn fill(p: *mut u8, size: usize, id: u64) {
    for i in offsets(size) {
        // SAFETY: `i < size`.
        unsafe { p.add(i).write(pattern(id, i)) };
    }
}

/// The first offset below `limit` where a block does not hold `id`'s
/// pattern.
///
/// # Safety
///
/// `p` is valid for reads of `size` bytes.
unsafe fn first_bad(p: *const u8, size: usize, id: u64, limit: usize) -> Option<usize> {
    // SAFETY: `i < size`.
    offsets(size)
        .take_while(|&i| i < limit)
        .find(|&i| unsafe { p.add(i).read() } != pattern(id, i))
}

// ---------------------------------------------------------------------
// Operations and the model
// ---------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    /// Allocate here (`align` = `1 << align_log`).
    Alloc {
        size: usize,
        align_log: u32,
        zeroed: bool,
    },
    /// Have the helper allocate; the block is ours from then on.
    AllocThere {
        size: usize,
        align_log: u32,
    },
    Realloc {
        pick: Index,
        size: usize,
    },
    Free {
        pick: Index,
    },
    /// Send the block to the helper, which frees it.
    FreeThere {
        pick: Index,
    },
    /// Allocate `n` blocks of one small size here, in a row: they share
    /// pages, so freeing them elsewhere forms per-page runs.
    AllocMany {
        size: usize,
        n: usize,
    },
    /// The helper frees up to `n` live blocks, consecutive by id from the
    /// picked one, in order or in reverse (runs of one page on their way
    /// home, and a run cut by a block of another page).
    FreeManyThere {
        pick: Index,
        n: usize,
        reverse: bool,
    },
    Collect,
    CollectThere,
}

/// Sizes: mostly small, some medium, a few huge (and 0). Some huge sizes
/// repeat exactly or nearly (a few values), so freed huge mappings are
/// reused from the cache of huge mappings, at other alignments too.
fn size_strategy() -> impl Strategy<Value = usize> {
    let huge_max = if cfg!(miri) { 300 << 10 } else { 3 << 20 };
    let repeated: Vec<usize> = if cfg!(miri) {
        vec![(128 << 10) + 1, 200 << 10, (200 << 10) - 5000, 300 << 10]
    } else {
        vec![
            (128 << 10) + 1,
            300 << 10,
            1 << 20,
            (1 << 20) - 70_000,
            3 << 20,
        ]
    };
    prop_oneof![
        1 => Just(0usize),
        8 => 1..=256usize,
        4 => 257..=8192usize,
        2 => 8193..=(128usize << 10),
        1 => (128usize << 10) + 1..=huge_max,
        1 => proptest::sample::select(repeated),
    ]
}

/// Alignments: mostly natural, some beyond 16 B, a few beyond a segment.
fn align_strategy() -> impl Strategy<Value = u32> {
    let max_log: u32 = if cfg!(miri) { 16 } else { 23 };
    prop_oneof![
        6 => 0..=4u32,
        3 => 5..=12u32,
        1 => 13..=max_log,
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let many: usize = if cfg!(miri) { 8 } else { 300 };
    prop_oneof![
        6 => (size_strategy(), align_strategy(), any::<bool>())
            .prop_map(|(size, align_log, zeroed)| Op::Alloc { size, align_log, zeroed }),
        2 => (size_strategy(), align_strategy()).prop_map(|(size, align_log)| Op::AllocThere { size, align_log }),
        3 => (any::<Index>(), size_strategy()).prop_map(|(pick, size)| Op::Realloc { pick, size }),
        3 => any::<Index>().prop_map(|pick| Op::Free { pick }),
        3 => any::<Index>().prop_map(|pick| Op::FreeThere { pick }),
        1 => (1..=512usize, 1..=many).prop_map(|(size, n)| Op::AllocMany { size, n }),
        2 => (any::<Index>(), 1..=many, any::<bool>())
            .prop_map(|(pick, n, reverse)| Op::FreeManyThere { pick, n, reverse }),
        1 => Just(Op::Collect),
        1 => Just(Op::CollectThere),
    ]
}

/// A live block in the model.
#[derive(Clone, Copy, Debug)]
struct Block {
    addr: usize,
    size: usize,
    align: usize,
}

/// The model: live blocks by id (a `BTreeMap`, so `Index` picks the same
/// block on every run and shrinking is deterministic), and by address for
/// the overlap check.
#[derive(Default)]
struct Model {
    blocks: BTreeMap<u64, Block>,
    by_addr: BTreeMap<usize, u64>,
    next_id: u64,
}

impl Model {
    fn pick(&self, pick: &Index) -> Option<(u64, Block)> {
        if self.blocks.is_empty() {
            return None;
        }
        let (&id, &b) = self.blocks.iter().nth(pick.index(self.blocks.len()))?;
        Some((id, b))
    }

    /// Records a block allocated here under a fresh id (see `insert`).
    fn add(&mut self, p: *mut u8, size: usize, align: usize) -> Result<u64, TestCaseError> {
        let id = self.next_id;
        self.next_id += 1;
        self.insert(
            id,
            Block {
                addr: p as usize,
                size,
                align,
            },
        )?;
        Ok(id)
    }

    /// Adds a block, checking alignment and that it overlaps no live block.
    fn insert(&mut self, id: u64, b: Block) -> Result<(), TestCaseError> {
        prop_assert!(
            b.addr != 0,
            "allocation of {} B at {} failed",
            b.size,
            b.align
        );
        prop_assert_eq!(
            b.addr % b.align,
            0,
            "{} B block not aligned to {}",
            b.size,
            b.align
        );
        // SAFETY: a live block.
        let usable = unsafe { homing::usable_size(b.addr as *mut u8) };
        prop_assert!(usable >= b.size, "usable {} < size {}", usable, b.size);
        let end = b.addr + b.size.max(1);
        if let Some((&a, &other)) = self.by_addr.range(..end).next_back() {
            let o = self.blocks[&other];
            prop_assert!(
                a + o.size.max(1) <= b.addr,
                "block {id} [{:#x}, +{}) overlaps live block {other} [{a:#x}, +{})",
                b.addr,
                b.size,
                o.size
            );
        }
        self.blocks.insert(id, b);
        self.by_addr.insert(b.addr, id);
        Ok(())
    }

    fn remove(&mut self, id: u64) -> Block {
        let b = self.blocks.remove(&id).unwrap();
        self.by_addr.remove(&b.addr);
        b
    }

    /// Every live block still holds its pattern.
    fn check_all(&self) -> Result<(), TestCaseError> {
        for (&id, b) in &self.blocks {
            // SAFETY: a live block of `b.size` bytes.
            if let Some(i) = unsafe { first_bad(b.addr as *const u8, b.size, id, b.size) } {
                return Err(TestCaseError::fail(format!(
                    "block {id} ({} B at {:#x}, align {}) corrupted at offset {i}",
                    b.size, b.addr, b.align
                )));
            }
        }
        Ok(())
    }
}

/// Frees everything the model holds, alternating threads, then settles
/// both threads' outboxes and inboxes.
fn free_all(model: &mut Model, helper: &Mailbox) {
    let ids: Vec<u64> = model.blocks.keys().copied().collect();
    for (k, id) in ids.into_iter().enumerate() {
        let b = model.remove(id);
        if k % 2 == 0 {
            // SAFETY: a live block, given up.
            unsafe { homing::free(b.addr as *mut u8) };
        } else {
            helper.call(Request::Free(b.addr));
        }
    }
    settle(helper);
}

/// Posts and drains everything in flight between the two threads: ours to
/// the helper, the helper's (including what we just posted) to us.
fn settle(helper: &Mailbox) {
    homing::collect();
    helper.call(Request::Collect);
    homing::collect();
}

fn run_case(ops: &[Op], helper: &Mailbox) -> Result<(), TestCaseError> {
    settle(helper);
    let base = homing::stats();
    let mut model = Model::default();
    let result = run_ops(ops, helper, &mut model);
    free_all(&mut model, helper);
    drop(model);
    result?;
    let now = homing::stats();
    prop_assert_eq!(
        (now.live_blocks, now.live_bytes, now.huge_blocks),
        (base.live_blocks, base.live_bytes, base.huge_blocks),
        "live set not back to the case's baseline\nbefore: {}\nnow: {}",
        base,
        now
    );
    Ok(())
}

fn run_ops(ops: &[Op], helper: &Mailbox, model: &mut Model) -> Result<(), TestCaseError> {
    for op in ops {
        match *op {
            Op::Alloc {
                size,
                align_log,
                zeroed,
            } => {
                let align = 1usize << align_log;
                let p = if zeroed {
                    homing::alloc_zeroed(size, align)
                } else {
                    homing::alloc(size, align)
                };
                let id = model.add(p, size, align)?;
                if zeroed {
                    for i in offsets(size) {
                        // SAFETY: `i < size` in a live block.
                        let byte = unsafe { p.add(i).read() };
                        prop_assert_eq!(
                            byte,
                            0,
                            "alloc_zeroed({}, {}) byte {} not zero",
                            size,
                            align,
                            i
                        );
                    }
                }
                // SAFETY: a fresh block of `size` bytes.
                unsafe { fill(p, size, id) };
            }
            Op::AllocThere { size, align_log } => {
                let align = 1usize << align_log;
                let id = model.next_id;
                model.next_id += 1;
                let addr = helper.call(Request::Alloc { size, align, id });
                model.insert(id, Block { addr, size, align })?;
            }
            Op::Realloc { pick, size } => {
                let Some((id, b)) = model.pick(&pick) else {
                    continue;
                };
                model.remove(id);
                // SAFETY: a live block of `b.size` bytes at `b.align`;
                // realloc gives a block of `size` bytes with the prefix, or
                // null and leaves the old one.
                let q = unsafe { homing::realloc(b.addr as *mut u8, b.size, b.align, size) };
                if q.is_null() {
                    model.insert(id, b)?;
                    prop_assert!(
                        false,
                        "realloc {} -> {} at align {} failed",
                        b.size,
                        size,
                        b.align
                    );
                }
                // The prefix was copied: the old samples below the new size
                // must be there.
                // SAFETY: `q` holds at least `size` bytes.
                let bad = unsafe { first_bad(q, b.size, id, b.size.min(size)) };
                prop_assert!(
                    bad.is_none(),
                    "realloc {} -> {} lost byte {:?} of the prefix",
                    b.size,
                    size,
                    bad
                );
                model.insert(
                    id,
                    Block {
                        addr: q as usize,
                        size,
                        align: b.align,
                    },
                )?;
                // SAFETY: `size` bytes at `q`.
                unsafe { fill(q, size, id) };
            }
            Op::Free { pick } => {
                let Some((id, _)) = model.pick(&pick) else {
                    continue;
                };
                let b = model.remove(id);
                // SAFETY: a live block, given up.
                unsafe { homing::free(b.addr as *mut u8) };
            }
            Op::FreeThere { pick } => {
                let Some((id, _)) = model.pick(&pick) else {
                    continue;
                };
                let b = model.remove(id);
                helper.call(Request::Free(b.addr));
            }
            Op::AllocMany { size, n } => {
                for _ in 0..n {
                    let p = homing::alloc(size, 16);
                    let id = model.add(p, size, 16)?;
                    // SAFETY: a fresh block of `size` bytes.
                    unsafe { fill(p, size, id) };
                }
            }
            Op::FreeManyThere { pick, n, reverse } => {
                let Some((first, _)) = model.pick(&pick) else {
                    continue;
                };
                let mut ids: Vec<u64> = model
                    .blocks
                    .range(first..)
                    .map(|(&id, _)| id)
                    .take(n)
                    .collect();
                if reverse {
                    ids.reverse();
                }
                for id in ids {
                    let b = model.remove(id);
                    helper.call(Request::Free(b.addr));
                }
            }
            Op::Collect => homing::collect(),
            Op::CollectThere => {
                helper.call(Request::Collect);
            }
        }
        model.check_all()?;
    }
    Ok(())
}

#[test]
fn random_operations_match_the_model() {
    let helper = Arc::new(Mailbox::default());
    let serving = Arc::clone(&helper);
    let helper_thread = thread::spawn(move || serving.serve());

    let config = Config {
        cases: if cfg!(miri) { 4 } else { 256 },
        max_shrink_iters: if cfg!(miri) { 0 } else { 4096 },
        failure_persistence: None,
        ..Config::default()
    };
    let max_ops = if cfg!(miri) { 12 } else { 64 };
    let mut runner = TestRunner::new(config);
    let result = runner.run(
        &proptest::collection::vec(op_strategy(), 1..=max_ops),
        |ops| run_case(&ops, &helper),
    );

    helper.call(Request::Exit);
    helper_thread.join().unwrap();
    if let Err(e) = result {
        panic!("{e}");
    }
}
