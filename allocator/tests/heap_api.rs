//! First-class heaps: `homing::Heap` as an `allocator_api2` allocator for
//! collections, its blocks freed from other threads, `destroy` with live
//! blocks, heaps recycled rather than piling up, a heap handed between
//! threads while other threads free into it, its statistics against a model
//! (proptest) and its limit.
//!
//! One `#[test]` runs the scenarios in turn, each against its own baseline
//! (see `common` for why not one test each).

mod common;

use std::alloc::Layout;
use std::sync::mpsc;
use std::thread;

use allocator_api2::alloc::Allocator;
use allocator_api2::boxed::Box as HBox;
use allocator_api2::vec::Vec as HVec;
use homing::size_class::{class_for, CLASS_SIZE};
use homing::{Heap, HeapStats};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use common::Rng;

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

/// Allocates a `size`-byte block (8 ..= 1 MiB) from `heap` with a cookie.
fn cookie_alloc(heap: &Heap, size: usize, serial: u64) -> *mut u8 {
    let p = heap
        .alloc(Layout::from_size_align(size, 16).unwrap())
        .expect("heap out of memory")
        .as_ptr();
    // SAFETY: a fresh, 16-aligned block of `size` bytes.
    unsafe { common::write_cookie(p, size, serial) };
    p
}

/// Sizes: small, medium and (1 in 50) huge.
fn mixed_size(rng: &mut Rng) -> usize {
    match rng.below(50) {
        0 => rng.log_size(17, if cfg!(miri) { 18 } else { 20 }),
        1..=9 => rng.log_size(13, 17),
        _ => rng.log_size(3, 13),
    }
}

/// `Vec`, `HashMap` and `Box` in a heap; zeroed allocations; the live set
/// returns to the baseline when they are dropped.
fn collections_live_in_the_heap() {
    let n: u64 = if cfg!(miri) { 20_000 } else { 300_000 };
    let heap = Heap::new();
    let base = common::settled();

    // A vector that grows through small, medium and huge blocks.
    let mut v = HVec::new_in(&heap);
    for i in 0..n {
        v.push(i);
    }
    assert_eq!(v.iter().sum::<u64>(), n * (n - 1) / 2);
    assert!(
        homing::stats().huge_blocks > base.huge_blocks,
        "a {} KiB vector is a huge block",
        n / 128
    );

    let mut map = hashbrown::HashMap::new_in(&heap);
    let entries = n / 10;
    for i in 0..entries {
        map.insert(i, [i, !i, i.wrapping_mul(3)]);
    }
    for i in (0..entries).step_by(2) {
        assert_eq!(map.remove(&i), Some([i, !i, i.wrapping_mul(3)]));
    }
    for i in 0..entries {
        assert_eq!(
            map.get(&i).copied(),
            (i % 2 == 1).then(|| [i, !i, i.wrapping_mul(3)]),
            "key {i}"
        );
    }

    let b = HBox::new_in([7u8; 1000], &heap);
    assert!(b.iter().all(|&x| x == 7));

    // Zeroed memory, even where a dirty block of the same class was freed.
    for size in [8usize, 100, 5000, 70_000, 200_000] {
        let layout = Layout::from_size_align(size, 8).unwrap();
        let dirty = (&heap).allocate(layout).unwrap();
        assert!(dirty.len() >= size);
        // SAFETY: `dirty` is a live block of at least `size` bytes; freed once.
        unsafe {
            dirty.cast::<u8>().as_ptr().write_bytes(0xEE, size);
            (&heap).deallocate(dirty.cast(), layout);
        }
        let zeroed = (&heap).allocate_zeroed(layout).unwrap();
        // SAFETY: a live block of at least `size` bytes; freed once.
        unsafe {
            let bytes = std::slice::from_raw_parts(zeroed.cast::<u8>().as_ptr(), size);
            assert!(
                bytes.iter().all(|&x| x == 0),
                "allocate_zeroed({size}) is not zero"
            );
            (&heap).deallocate(zeroed.cast(), layout);
        }
    }

    // A block of the thread heap handed to `Heap::dealloc` goes home.
    let global = Box::into_raw(Box::new([1u64; 8]));
    // SAFETY: a live global-allocator block, given up.
    unsafe { heap.dealloc(std::ptr::NonNull::new(global.cast()).unwrap()) };

    assert!(homing::stats().live_blocks > base.live_blocks);
    drop((v, map, b));
    heap.collect();
    common::assert_balanced(&base, &common::settled(), "collections dropped");
    heap.destroy();
    common::assert_balanced(&base, &common::settled(), "heap destroyed");
}

/// A heap's blocks freed by another thread with `homing::free` wait in the
/// heap's inbox (still counted live) until `heap.collect()` takes them back.
fn remote_frees_come_back() {
    let n = if cfg!(miri) { 40 } else { 5_000 };
    let heap = Heap::new();
    let base = common::settled();
    let mut rng = Rng::new(1);
    let blocks: Vec<usize> = (0..n)
        .map(|i| cookie_alloc(&heap, mixed_size(&mut rng), i) as usize)
        .collect();
    let loaded = homing::stats();
    assert_eq!(
        loaded.live_blocks - base.live_blocks,
        n as usize + 1,
        "the blocks and their list"
    );

    thread::spawn(move || {
        for (i, &addr) in blocks.iter().enumerate() {
            let p = addr as *mut u8;
            // SAFETY: live cookie blocks handed to us; each freed once.
            unsafe {
                let (size, serial) = common::check_cookie(p);
                assert_eq!(serial, i as u64);
                common::poison_cookie(p, size);
                homing::free(p);
            }
        }
    })
    .join()
    .unwrap();

    // Our own blocks the thread freed (the list) come home with our collect;
    // the heap's blocks wait in its inbox, still counted live.
    let posted = common::settled();
    assert_eq!(
        posted.live_blocks - base.live_blocks,
        n as usize,
        "a first-class heap's remote frees are live until it collects them\n{posted}"
    );
    assert!(posted.remote_posted - base.remote_posted >= n as usize);
    heap.collect();
    let back = common::settled();
    common::assert_balanced(&base, &back, "heap collected its remote frees");
    assert!(back.remote_drained - base.remote_drained >= n as usize);
    heap.destroy();
}

/// While the owner keeps allocating, its allocation slow path takes back
/// what another thread freed: the heap's memory stays bounded without any
/// `collect`.
fn owner_reuses_remote_frees_without_collect() {
    let rounds = if cfg!(miri) { 4 } else { 200 };
    let per_round = if cfg!(miri) { 50 } else { 2_000 };
    let heap = Heap::new();
    let base = common::settled();
    let (tx, rx) = mpsc::channel::<Vec<usize>>();
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let freer = thread::spawn(move || {
        for batch in rx {
            for addr in batch {
                // SAFETY: live blocks handed to us; each freed once.
                unsafe { homing::free(addr as *mut u8) };
            }
            ack_tx.send(()).unwrap();
        }
    });
    let mut rng = Rng::new(2);
    let mut mapped = Vec::with_capacity(rounds);
    for r in 0..rounds {
        let batch: Vec<usize> = (0..per_round)
            .map(|i| cookie_alloc(&heap, rng.log_size(4, 13), (r * per_round + i) as u64) as usize)
            .collect();
        tx.send(batch).unwrap();
        ack_rx.recv().unwrap();
        mapped.push(common::in_use(&homing::stats()));
    }
    drop(tx);
    freer.join().unwrap();
    // The first round maps what one batch needs; later rounds reuse it (a
    // batch freed elsewhere is back before the next batch runs out of
    // pages). Allow two batches' worth of segments for timing of the drain.
    let warm = mapped[..rounds / 10 + 1].iter().max().copied().unwrap();
    let late = mapped[rounds / 2..].iter().max().copied().unwrap();
    assert!(
        late <= warm + (8 << 20),
        "heap memory grows with remote frees: {:.1} MiB mapped early, {:.1} MiB late",
        common::mib(warm),
        common::mib(late)
    );
    // The ack channel's blocks were allocated by the freer thread.
    drop((mapped, ack_rx));
    heap.collect();
    common::assert_balanced(&base, &common::settled(), "owner reused remote frees");
    heap.destroy();
}

/// `destroy` with live blocks (small, medium, huge, and some sitting in the
/// inbox) releases them all at once: live set and memory in use go back.
fn destroy_releases_live_blocks() {
    let n = if cfg!(miri) { 60 } else { 20_000 };
    let base = common::settled();
    let heap = Heap::new();
    let with_heap = homing::stats();
    let mut rng = Rng::new(3);
    let mut blocks = Vec::with_capacity(n);
    for i in 0..n {
        // At least one huge block, whatever the generator picks.
        let size = if i == 0 {
            300_000
        } else {
            mixed_size(&mut rng)
        };
        blocks.push(cookie_alloc(&heap, size, i as u64) as usize);
    }
    // A tenth freed remotely: they sit in the heap's inbox at destroy time.
    let remote: Vec<usize> = blocks.iter().step_by(10).copied().collect();
    thread::spawn(move || {
        for addr in remote {
            // SAFETY: live blocks handed to us; each freed once.
            unsafe { homing::free(addr as *mut u8) };
        }
    })
    .join()
    .unwrap();
    let loaded = common::settled();
    assert_eq!(
        loaded.live_blocks - base.live_blocks,
        n + 1,
        "blocks, the list, inbox included"
    );
    assert!(loaded.huge_blocks > base.huge_blocks);
    assert!(
        common::in_use(&loaded) >= common::in_use(&with_heap) + (4 << 20),
        "the heap's blocks should hold at least a segment\nwith the heap: {with_heap}\nloaded: {loaded}"
    );
    drop(blocks);

    heap.destroy();
    let after = common::settled();
    common::assert_balanced(&base, &after, "destroy with live blocks");
    // Released segments may stay mapped in homing's segment cache (purged,
    // for any heap to reuse); the rest is unmapped.
    assert!(
        common::in_use(&after) <= common::in_use(&with_heap),
        "destroy left memory in use: {:.1} MiB before the heap's blocks, {:.1} MiB after destroy\n{after}",
        common::mib(common::in_use(&with_heap)),
        common::mib(common::in_use(&after))
    );
}

/// Heaps created and destroyed in a loop (one at a time, several at once,
/// on several threads) are reused: `stats().heaps` stays bounded.
fn heaps_are_recycled() {
    let loops = if cfg!(miri) { 10 } else { 2_000 };
    let base = common::settled();
    for i in 0..loops {
        let heap = Heap::new();
        let a = cookie_alloc(&heap, 64, i);
        let b = cookie_alloc(&heap, 300_000, i);
        // Left live for `destroy`.
        cookie_alloc(&heap, 5_000, i);
        // SAFETY: live blocks of `heap`, freed once (one locally, one
        // through the inbox).
        unsafe {
            heap.dealloc(std::ptr::NonNull::new(a).unwrap());
            homing::free(b);
        }
        heap.destroy();
    }
    let one_at_a_time = homing::stats().heaps;
    assert!(
        one_at_a_time <= base.heaps + 1,
        "{loops} heaps made and destroyed one at a time: heaps went from {} to {one_at_a_time}",
        base.heaps
    );

    const AT_ONCE: usize = 10;
    for _ in 0..loops / 20 {
        let heaps: Vec<Heap> = (0..AT_ONCE).map(|_| Heap::new()).collect();
        for (k, h) in heaps.iter().enumerate() {
            cookie_alloc(h, 100 + k, k as u64);
        }
        drop(heaps);
    }
    let several = homing::stats().heaps;
    assert!(
        several <= base.heaps + AT_ONCE,
        "{AT_ONCE} heaps at a time made {} heaps",
        several - base.heaps
    );

    const THREADS: usize = 4;
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                for i in 0..loops / 10 {
                    let heap = Heap::new();
                    cookie_alloc(&heap, 16 + (i % 4000) as usize, t as u64);
                    heap.destroy();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let end = common::settled();
    // Each worker holds at most a thread heap and one first-class heap.
    assert!(
        end.heaps <= base.heaps + AT_ONCE.max(2 * THREADS),
        "heaps grew from {} to {} recycling first-class heaps",
        base.heaps,
        end.heaps
    );
    common::assert_balanced(&base, &end, "heaps recycled");
}

/// A heap owned by another thread: we free its blocks, the owner collects
/// them and destroys the heap.
fn heap_on_another_thread() {
    let n = if cfg!(miri) { 30 } else { 3_000 };
    let base = common::settled();
    let (to_main, from_owner) = mpsc::channel::<Vec<usize>>();
    let (to_owner, from_main) = mpsc::channel::<()>();
    let owner = thread::spawn(move || {
        let heap = Heap::new();
        let mut rng = Rng::new(4);
        let blocks = (0..n)
            .map(|i| cookie_alloc(&heap, mixed_size(&mut rng), i as u64) as usize)
            .collect();
        to_main.send(blocks).unwrap();
        from_main.recv().unwrap();
        heap.collect();
        heap.destroy();
    });
    let blocks = from_owner.recv().unwrap();
    for (i, &addr) in blocks.iter().enumerate() {
        let p = addr as *mut u8;
        // SAFETY: live cookie blocks handed to us; each freed once.
        unsafe {
            let (size, serial) = common::check_cookie(p);
            assert_eq!(serial, i as u64);
            common::poison_cookie(p, size);
            homing::free(p);
        }
    }
    drop(blocks);
    to_owner.send(()).unwrap();
    owner.join().unwrap();
    drop((from_owner, to_owner));
    common::assert_balanced(&base, &common::settled(), "heap on another thread");
}

/// A heap moved between threads (it is `Send`) by a scheduler, as a VM
/// state between workers, while a third thread frees its blocks: blocks
/// posted while the heap travels are taken back by the next holder, and
/// the heap is destroyed on the last worker.
fn heap_handed_between_threads() {
    let rounds = if cfg!(miri) { 6 } else { 60 };
    let per_round = if cfg!(miri) { 10 } else { 200 };
    let (to_freer, freer_rx) = mpsc::channel::<Vec<usize>>();
    let freer = thread::spawn(move || {
        let mut n = 0;
        for blocks in freer_rx {
            for addr in blocks {
                let p = addr as *mut u8;
                // SAFETY: live cookie blocks handed to us; each freed once.
                unsafe {
                    let (size, _) = common::check_cookie(p);
                    common::poison_cookie(p, size);
                    homing::free(p);
                }
                n += 1;
            }
        }
        n
    });
    // Two workers; the heap (in a "state") goes back and forth through
    // channels, one job per hop.
    type State = (Heap, Vec<usize>, u64);
    let (to_a, a_rx) = mpsc::channel::<Option<State>>();
    let (to_b, b_rx) = mpsc::channel::<Option<State>>();
    let (done_tx, done_rx) = mpsc::channel::<State>();
    let worker = |rx: mpsc::Receiver<Option<State>>,
                  next: mpsc::Sender<Option<State>>,
                  to_freer: mpsc::Sender<Vec<usize>>,
                  done: mpsc::Sender<State>,
                  seed: u64| {
        thread::spawn(move || {
            let mut rng = Rng::new(seed);
            while let Ok(Some((heap, mut mine, mut serial))) = rx.recv() {
                if serial as usize >= rounds * per_round {
                    done.send((heap, mine, serial)).unwrap();
                    let _ = next.send(None);
                    break;
                }
                // The job: allocate, free some of ours locally, give some to
                // the freer thread.
                let mut give = Vec::new();
                for _ in 0..per_round {
                    let p = cookie_alloc(&heap, mixed_size(&mut rng), serial);
                    serial += 1;
                    match rng.below(3) {
                        0 => mine.push(p as usize),
                        1 => give.push(p as usize),
                        _ => {
                            // SAFETY: a live block of this heap, freed once.
                            unsafe {
                                let (size, _) = common::check_cookie(p);
                                common::poison_cookie(p, size);
                                heap.dealloc(std::ptr::NonNull::new(p).unwrap());
                            }
                        }
                    }
                }
                to_freer.send(give).unwrap();
                let s = heap.stats();
                assert!(s.live_blocks >= mine.len(), "{s:?}");
                next.send(Some((heap, mine, serial))).unwrap();
            }
        })
    };
    let a = worker(a_rx, to_b.clone(), to_freer.clone(), done_tx.clone(), 11);
    let b = worker(b_rx, to_a.clone(), to_freer.clone(), done_tx, 12);
    drop(to_freer);
    to_a.send(Some((Heap::new(), Vec::new(), 0))).unwrap();
    let (heap, mine, _) = done_rx.recv().unwrap();
    drop((to_a, to_b));
    a.join().unwrap();
    b.join().unwrap();
    let given = freer.join().unwrap();
    assert!(given > 0);
    // Every block the freer gave up came home to the heap's inbox.
    heap.collect();
    let s = heap.stats();
    assert_eq!(s.live_blocks, mine.len(), "{s:?}");
    assert!(s.remote_frees >= given, "{s:?} {given}");
    for &addr in &mine {
        // SAFETY: cookie blocks of the heap, still live.
        unsafe { common::check_cookie(addr as *mut u8) };
    }
    // The channels' blocks live in the workers' thread heaps; the heap's
    // own numbers are what this checks.
    heap.destroy();
}

/// One operation on a heap, for the statistics model.
#[derive(Clone, Debug)]
enum Op {
    Alloc(usize),
    Free(usize),
    FreeRemote(usize),
    Collect,
    /// Released (it trims) and taken back by another thread.
    HandOff,
    Check,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..=64 * 1024).prop_map(Op::Alloc),
        1 => (1usize..=600_000).prop_map(Op::Alloc),
        3 => any::<usize>().prop_map(Op::Free),
        2 => any::<usize>().prop_map(Op::FreeRemote),
        1 => Just(Op::Collect),
        1 => Just(Op::HandOff),
        2 => Just(Op::Check),
    ]
}

/// The bytes a live block of the model carries at its two ends (so a
/// trim that purged live data, or a block handed out twice, shows).
/// The two stamps of a block: its first byte and its last. A block of one
/// byte has one byte to stamp: both stamps are then the same byte with the
/// same value (two values would overwrite each other, and the check of a
/// correct block would fail).
fn stamps(p: usize, size: usize) -> [(usize, u8); 2] {
    let last = if size > 1 {
        (p >> 12) as u8 ^ 0xC3
    } else {
        (p >> 4) as u8 ^ 0x5A
    };
    [(p, (p >> 4) as u8 ^ 0x5A), (p + size - 1, last)]
}

fn stamp(p: usize, size: usize) {
    for (at, v) in stamps(p, size) {
        // SAFETY: inside a live block of `size` bytes of the test's.
        unsafe { (at as *mut u8).write(v) };
    }
}

fn stamped(p: usize, size: usize) -> bool {
    // SAFETY: as in `stamp`.
    stamps(p, size)
        .iter()
        .all(|&(at, v)| unsafe { (at as *const u8).read() } == v)
}

/// What a block of `size` counts in the live bytes: its class size, or
/// for a huge block its mapping, which the test learns from the stats.
fn class_bytes(size: usize) -> Option<usize> {
    class_for(size, 16).map(|c| CLASS_SIZE[c] as usize)
}

/// `Heap::stats` against a model: live blocks and bytes exact (after the
/// remote frees are taken back), the peak between the highest live count
/// sampled and the true highest, in-use and OS bytes bounded by live;
/// hand-offs (which trim free memory) between the operations, and every
/// live block's contents checked throughout.
fn stats_follow_a_model() {
    let cases = if cfg!(miri) { 4 } else { 48 };
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..120), |ops| {
            let mut heap = Heap::new();
            // (pointer, counted bytes, size)
            let mut live: Vec<(usize, usize, usize)> = Vec::new();
            let mut model_bytes = 0usize;
            // Remote frees not yet taken back: still live in the heap.
            let mut in_flight = (0usize, 0usize);
            let mut remote_total = 0usize;
            let mut true_peak = 0usize;
            let mut seen_peak = 0usize;
            for op in ops {
                match op {
                    Op::Alloc(size) => {
                        let before = heap.stats().live_bytes;
                        let p = heap
                            .alloc(Layout::from_size_align(size, 16).unwrap())
                            .unwrap();
                        let counted = match class_bytes(size) {
                            Some(b) => b,
                            None => {
                                // A huge block counts its mapping: at least
                                // the request, at most a few pages more
                                // (its segment header, 8.4 KiB, and the
                                // rounding to an OS page).
                                let b = heap.stats().live_bytes - before;
                                prop_assert!(b >= size && b <= size + 4 * 4096, "{b} {size}");
                                b
                            }
                        };
                        stamp(p.as_ptr() as usize, size);
                        live.push((p.as_ptr() as usize, counted, size));
                        model_bytes += counted;
                        true_peak = true_peak.max(model_bytes + in_flight.1);
                    }
                    Op::Free(i) if !live.is_empty() => {
                        let (p, b, size) = live.swap_remove(i % live.len());
                        prop_assert!(stamped(p, size));
                        // SAFETY: a live block of this heap, freed once.
                        unsafe { heap.dealloc(std::ptr::NonNull::new(p as *mut u8).unwrap()) };
                        model_bytes -= b;
                    }
                    Op::FreeRemote(i) if !live.is_empty() => {
                        let (p, b, size) = live.swap_remove(i % live.len());
                        prop_assert!(stamped(p, size));
                        // SAFETY: as above, from another thread.
                        thread::spawn(move || unsafe { homing::free(p as *mut u8) })
                            .join()
                            .unwrap();
                        model_bytes -= b;
                        in_flight.0 += 1;
                        in_flight.1 += b;
                    }
                    Op::Collect => {
                        heap.collect();
                        remote_total += in_flight.0;
                        in_flight = (0, 0);
                    }
                    Op::HandOff => {
                        heap.hold_release().unwrap();
                        remote_total += in_flight.0;
                        in_flight = (0, 0);
                        heap = thread::spawn(move || {
                            heap.hold_acquire().unwrap();
                            heap.hold_release().unwrap();
                            heap
                        })
                        .join()
                        .unwrap();
                        heap.hold_acquire().unwrap();
                    }
                    _ => {}
                }
                for &(p, _, size) in &live {
                    prop_assert!(stamped(p, size), "{op:?} changed a live block");
                }
                if matches!(op, Op::Check | Op::Collect | Op::HandOff) {
                    let s: HeapStats = heap.stats();
                    // Undrained remote frees count as live (taken back only
                    // at a slow path or collect): between the two.
                    prop_assert!(s.live_blocks >= live.len(), "{s:?}");
                    prop_assert!(s.live_blocks <= live.len() + in_flight.0, "{s:?}");
                    prop_assert!(s.live_bytes >= model_bytes, "{s:?}");
                    prop_assert!(s.live_bytes <= model_bytes + in_flight.1, "{s:?}");
                    seen_peak = seen_peak.max(s.live_bytes);
                    prop_assert!(s.peak_live_bytes >= seen_peak, "{s:?}");
                    prop_assert!(s.peak_live_bytes <= true_peak, "{s:?} {true_peak}");
                    prop_assert!(s.in_use_bytes >= s.live_bytes, "{s:?}");
                    prop_assert!(s.os_bytes >= s.in_use_bytes, "{s:?}");
                    prop_assert!(s.remote_frees >= remote_total, "{s:?}");
                    prop_assert!(s.remote_frees <= remote_total + in_flight.0, "{s:?}");
                    prop_assert_eq!(s.limit, None);
                }
                if matches!(op, Op::Collect | Op::HandOff) {
                    let s = heap.stats();
                    prop_assert_eq!(s.live_blocks, live.len());
                    prop_assert_eq!(s.live_bytes, model_bytes);
                    prop_assert_eq!(s.remote_frees, remote_total);
                }
            }
            heap.collect();
            for (p, _, _) in live.drain(..) {
                // SAFETY: live blocks of this heap, freed once.
                unsafe { heap.dealloc(std::ptr::NonNull::new(p as *mut u8).unwrap()) };
            }
            heap.collect();
            let s = heap.stats();
            prop_assert_eq!((s.live_blocks, s.live_bytes), (0, 0));
            prop_assert_eq!(s.in_use_bytes, 0);
            heap.destroy();
            Ok(())
        })
        .unwrap();
}

/// The limit: allocations fail (None) once the next page would go over
/// it, live bytes never exceed it, the heap stays usable, and frees make
/// room again. A limit refusal does not make the process give back its
/// memory (it is not an out-of-memory condition).
fn limit_refuses_and_recovers() {
    let heap = Heap::new();
    let limit = if cfg!(miri) { 1 << 20 } else { 8 << 20 };
    heap.set_limit(Some(limit));
    assert_eq!(heap.limit(), Some(limit));
    let layout = Layout::from_size_align(1000, 16).unwrap();
    let mut blocks = Vec::new();
    while let Some(p) = heap.alloc(layout) {
        blocks.push(p);
        assert!(blocks.len() < 2 * limit / 1000, "the limit never refused");
    }
    let s = heap.stats();
    assert!(s.live_bytes <= limit && s.in_use_bytes <= limit, "{s:?}");
    // Whole pages: refused only when a fresh page would not fit.
    assert!(s.in_use_bytes + (64 << 10) > limit, "{s:?}");
    assert!(s.limit_refusals >= 1, "{s:?}");
    // Every size is refused now, huge ones too, and the heap is intact.
    // The refusals are not out-of-memory: the process keeps what it holds
    // (the segment cache is not drained for them).
    let cached = homing::stats().os_cached;
    assert!(heap
        .alloc(Layout::from_size_align(100_000, 16).unwrap())
        .is_none());
    assert!(heap
        .alloc(Layout::from_size_align(4 << 20, 16).unwrap())
        .is_none());
    assert!(
        homing::stats().os_cached >= cached,
        "a refusal drained the segment cache"
    );
    let refused = heap.stats().limit_refusals;
    assert!(refused > s.limit_refusals);
    // Free half (every other block: pages stay in use) and allocate again.
    let n = blocks.len();
    for p in blocks.iter().skip(1).step_by(2) {
        // SAFETY: live blocks of the heap, freed once.
        unsafe { heap.dealloc(*p) };
    }
    let kept: Vec<_> = blocks.iter().step_by(2).copied().collect();
    let mut again = Vec::new();
    while let Some(p) = heap.alloc(layout) {
        again.push(p);
        assert!(again.len() <= n, "the limit never refused again");
    }
    assert!(again.len() >= n / 2 - 64, "{} of {}", again.len(), n / 2);
    for p in kept.iter().chain(&again) {
        // SAFETY: as above.
        unsafe { heap.dealloc(*p) };
    }
    // Empty: a block of up to the limit's worth fits again.
    heap.collect();
    assert_eq!(heap.stats().in_use_bytes, 0);
    let big = heap
        .alloc(Layout::from_size_align(limit / 2, 16).unwrap())
        .expect("a huge block under the limit");
    // SAFETY: as above.
    unsafe { heap.dealloc(big) };
    // No limit: the heap grows past the old one.
    heap.set_limit(None);
    let past: Vec<_> = (0..(limit / 1000 + 100))
        .map(|_| heap.alloc(layout).expect("no limit"))
        .collect();
    assert!(heap.stats().live_bytes > limit);
    drop(past);
    heap.destroy();
    // A destroyed heap is reused, possibly as a new thread's own heap: its
    // limit must not go with it.
    let tiny = Heap::new();
    tiny.set_limit(Some(0));
    assert!(tiny.alloc(layout).is_none());
    tiny.destroy();
    let again = Heap::new();
    assert_eq!(again.limit(), None);
    assert!(again.alloc(layout).is_some());
    again.destroy();
    let tiny = Heap::new();
    tiny.set_limit(Some(0));
    tiny.destroy();
    thread::spawn(|| {
        let blocks: Vec<_> = (0..2000).map(|_| homing::alloc(1000, 16)).collect();
        assert!(
            blocks.iter().all(|p| !p.is_null()),
            "a thread heap inherited a limit"
        );
        for p in blocks {
            // SAFETY: live blocks, freed once.
            unsafe { homing::free(p) };
        }
    })
    .join()
    .unwrap();
}

#[test]
fn first_class_heaps() {
    common::warm_up();
    collections_live_in_the_heap();
    remote_frees_come_back();
    owner_reuses_remote_frees_without_collect();
    destroy_releases_live_blocks();
    heaps_are_recycled();
    heap_on_another_thread();
    heap_handed_between_threads();
    stats_follow_a_model();
    limit_refuses_and_recovers();
}
