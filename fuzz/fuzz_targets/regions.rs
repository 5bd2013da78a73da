//! Replays an arbitrary list of region operations against a model.
//!
//! - Plain `Region`s: raw layouts, `alloc_slice_copy`, `alloc_str`, values
//!   with a destructor (`alloc`, `alloc_slice_fill_with`), `reset`, `merge`
//!   and drop. Every allocation is patterned when made and checked before
//!   its region is reset or dropped (and at merges); destructors are
//!   counted and must have run exactly once per value by the time the
//!   region is reset or dropped, and never before.
//! - `Iso`s whose root lists the slices allocated in them: grown here, sent
//!   to a helper thread that checks them, grows them and sends them back,
//!   merged, and frozen into `Frozen`s read by two threads at once (and
//!   the last handle dropped on either, or thawed back into an `Iso`).
//!
//! Everything runs with homing as the global allocator, so regions' chunks
//! (from the OS layer) and heap blocks (drop-list values, the root `Vec`s)
//! are interleaved.
#![no_main]

use std::alloc::Layout;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use arbitrary::Arbitrary;
use homing_fuzz::{fill, pattern_byte, verify, Helper};
use homing_regions::{Family, Frozen, Iso, Region};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

/// Plain regions or `Iso`s live at once, at most.
const SLOTS: usize = 4;

#[derive(Arbitrary, Debug)]
enum Op {
    /// A raw layout in region `r`: `size` masked by `kind` (small, up to a
    /// chunk, or at least `LARGE_OBJECT`), alignment 2^`align_log` (≤ 2^16).
    Alloc {
        r: u8,
        kind: u8,
        size: u32,
        align_log: u8,
    },
    /// `alloc_slice_copy` of `len` (≤ 4096) `u32`s.
    Slice { r: u8, len: u16 },
    /// `alloc_str` of `len` (≤ 1024) characters.
    Str { r: u8, len: u16 },
    /// `alloc` of a value with a destructor that owns a heap block of
    /// `size` (≤ 1 KiB) bytes.
    Tracked { r: u8, size: u16 },
    /// `alloc_slice_fill_with` of `len` (≤ 64) values with destructors.
    TrackedSlice { r: u8, len: u8 },
    /// `reset` region `r`.
    Reset { r: u8 },
    /// Move region `from` into region `into` (`merge`).
    Merge { into: u8, from: u8 },
    /// Drop region `r`, here or (if `remote`) on the helper thread.
    Drop { r: u8, remote: bool },
    /// Allocate `len` (masked to ≤ 300 KiB) patterned bytes in `Iso` `i`.
    IsoAlloc { i: u8, len: u32 },
    /// Send `Iso` `i` to the helper thread, which checks it, adds `adds`
    /// (≤ 8) slices, and sends it back.
    IsoSend { i: u8, adds: u8 },
    /// Merge `Iso` `from` into `Iso` `into`.
    IsoMerge { into: u8, from: u8 },
    /// Freeze `Iso` `i`, read it on the helper and the reader thread at
    /// once; then drop the handles (the last one on thread `last % 3`) or,
    /// if `thaw`, get the `Iso` back from the last handle.
    Freeze { i: u8, thaw: bool, last: u8 },
    /// Drop `Iso` `i`, here or on the helper thread.
    IsoDrop { i: u8, remote: bool },
}

/// Destructors run so far, over all regions.
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// A value with a destructor: owns a heap block whose contents it checks
/// when dropped, and counts itself.
struct Tracked {
    data: Vec<u8>,
    seed: u32,
}

impl Tracked {
    fn new(size: usize, seed: u32) -> Tracked {
        Tracked {
            data: (0..size).map(|i| pattern_byte(seed, i)).collect(),
            seed,
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        for (i, &b) in self.data.iter().enumerate() {
            assert_eq!(
                b,
                pattern_byte(self.seed, i),
                "a tracked value's block is corrupted"
            );
        }
        // Relaxed: a count, read after the dropping thread was waited for
        // (the helper's hand-shake synchronises).
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// One patterned allocation in a region: address, length, seed.
#[derive(Clone, Copy)]
struct Block {
    addr: usize,
    len: usize,
    seed: u32,
}

impl Block {
    fn verify(&self, what: &str) {
        // SAFETY: the block lives in a region the model holds (not reset or
        // dropped since it was made).
        unsafe { verify(self.addr as *const u8, self.len, self.seed, self.len, what) };
    }
}

/// A plain region and what the model knows about it.
struct RegionModel {
    region: Region,
    blocks: Vec<Block>,
    /// Values with destructors put in it (and in the regions merged into it).
    tracked: usize,
}

impl RegionModel {
    fn verify(&self, what: &str) {
        for b in &self.blocks {
            b.verify(what);
        }
    }
}

/// An `Iso`'s root: the slices allocated in it, in order.
struct RootF;
impl Family for RootF {
    type Of<'r> = Vec<&'r [u8]>;
}

/// The model's view of an `Iso`: the length and seed of each root slice.
type IsoModel = Vec<(usize, u32)>;

/// Checks every slice of a root against the model.
fn verify_root(root: &[&[u8]], model: &IsoModel, what: &str) {
    assert_eq!(
        root.len(),
        model.len(),
        "{what}: root has the wrong number of slices"
    );
    for (s, &(len, seed)) in root.iter().zip(model) {
        assert_eq!(s.len(), len, "{what}: slice length changed");
        // SAFETY: `s` is a live slice of `len` bytes.
        unsafe { verify(s.as_ptr(), len, seed, len, what) };
    }
}

/// Allocates `len` patterned bytes in `region` and links them into `root`.
fn iso_alloc<'r>(region: &'r Region, root: &mut Vec<&'r [u8]>, len: usize, seed: u32) {
    let layout = Layout::from_size_align(len, 1).unwrap();
    let p = region.alloc_layout(layout).as_ptr();
    // SAFETY: a fresh allocation of `len` bytes, ours while the region lives,
    // which is as long as `'r`.
    unsafe {
        fill(p, len, seed);
        root.push(std::slice::from_raw_parts(p, len));
    }
}

/// Panics unless exactly `expected` destructors ran since the count was
/// `before`.
fn check_dropped(before: usize, expected: usize, what: &str) {
    // Relaxed: see `Tracked::drop`.
    let now = DROPPED.load(Ordering::Relaxed);
    assert_eq!(now - before, expected, "{what}: destructors run");
}

/// The model slot an operation's index names.
fn slot(i: u8) -> usize {
    i as usize % SLOTS
}

fuzz_target!(|ops: Vec<Op>| {
    let helper = Helper::new();
    let reader = Helper::new();
    let mut regions: Vec<Option<RegionModel>> = (0..SLOTS).map(|_| None).collect();
    let mut isos: Vec<Option<(Iso<RootF>, IsoModel)>> = (0..SLOTS).map(|_| None).collect();
    let mut seed = 0u32;
    let mut next_seed = || {
        seed = seed.wrapping_add(1);
        seed
    };

    for op in ops {
        match op {
            Op::Alloc {
                r,
                kind,
                size,
                align_log,
            } => {
                let m = regions[slot(r)].get_or_insert_with(new_region);
                let size = match kind % 3 {
                    0 => size % 512,
                    1 => size % (64 << 10),
                    _ => homing_regions::LARGE_OBJECT as u32 + size % (256 << 10),
                } as usize;
                let align = 1usize << (align_log % 17);
                let layout = Layout::from_size_align(size, align).unwrap();
                let p = m.region.alloc_layout(layout).as_ptr();
                assert_eq!(p as usize % align, 0, "region block misaligned");
                let s = next_seed();
                // SAFETY: a fresh allocation of `size` bytes in the region.
                unsafe { fill(p, size, s) };
                m.blocks.push(Block {
                    addr: p as usize,
                    len: size,
                    seed: s,
                });
            }
            Op::Slice { r, len } => {
                let m = regions[slot(r)].get_or_insert_with(new_region);
                let s = next_seed();
                let src: Vec<u32> = (0..len as u32 % 4097)
                    .map(|i| s ^ i.wrapping_mul(2_654_435_761))
                    .collect();
                let got = m.region.alloc_slice_copy(&src);
                assert_eq!(got, &src[..], "alloc_slice_copy copied wrong");
                // Pattern the copy too, so later corruption shows.
                let len = got.len() * 4;
                let p = got.as_mut_ptr().cast::<u8>();
                // SAFETY: the slice's `len` bytes are ours.
                unsafe { fill(p, len, s) };
                m.blocks.push(Block {
                    addr: p as usize,
                    len,
                    seed: s,
                });
            }
            Op::Str { r, len } => {
                let m = regions[slot(r)].get_or_insert_with(new_region);
                let s = next_seed();
                let text: String = (0..len % 1025)
                    .map(|i| (b'a' + ((s as u16 + i) % 26) as u8) as char)
                    .collect();
                let got = m.region.alloc_str(&text);
                assert_eq!(&*got, text.as_str(), "alloc_str copied wrong");
                let (p, len) = (got.as_mut_ptr(), got.len());
                // The pattern is not UTF-8, but the `&mut str` is gone and
                // only the model reads these bytes from now on.
                // SAFETY: the string's `len` bytes are ours.
                unsafe { fill(p, len, s) };
                m.blocks.push(Block {
                    addr: p as usize,
                    len,
                    seed: s,
                });
            }
            Op::Tracked { r, size } => {
                let m = regions[slot(r)].get_or_insert_with(new_region);
                let s = next_seed();
                let v = m.region.alloc(Tracked::new(size as usize % 1025, s));
                assert_eq!(v.seed, s);
                m.tracked += 1;
            }
            Op::TrackedSlice { r, len } => {
                let m = regions[slot(r)].get_or_insert_with(new_region);
                let s = next_seed();
                let len = len as usize % 65;
                let v = m
                    .region
                    .alloc_slice_fill_with(len, |i| Tracked::new(i * 3, s.wrapping_add(i as u32)));
                assert_eq!(v.len(), len);
                assert!(v.iter().enumerate().all(|(i, t)| t.data.len() == i * 3));
                m.tracked += len;
            }
            Op::Reset { r } => {
                if let Some(m) = &mut regions[slot(r)] {
                    m.verify("before reset");
                    // Relaxed: see `Tracked::drop`.
                    let before = DROPPED.load(Ordering::Relaxed);
                    m.region.reset();
                    check_dropped(before, m.tracked, "reset");
                    m.blocks.clear();
                    m.tracked = 0;
                }
            }
            Op::Merge { into, from } => {
                let (a, b) = (slot(into), slot(from));
                if a != b && regions[a].is_some() {
                    if let Some(from) = regions[b].take() {
                        from.verify("before merge");
                        let into = regions[a].as_mut().unwrap();
                        // Relaxed: see `Tracked::drop`.
                        let before = DROPPED.load(Ordering::Relaxed);
                        into.region.merge(from.region);
                        check_dropped(before, 0, "merge");
                        into.blocks.extend(from.blocks);
                        into.tracked += from.tracked;
                        into.verify("after merge");
                    }
                }
            }
            Op::Drop { r, remote } => {
                let i = slot(r);
                if let Some(m) = regions[i].take() {
                    m.verify("before drop");
                    // Relaxed: see `Tracked::drop`.
                    let before = DROPPED.load(Ordering::Relaxed);
                    let expected = m.tracked;
                    if remote {
                        let region = m.region;
                        helper.run(move || drop(region));
                    } else {
                        drop(m.region);
                    }
                    check_dropped(before, expected, "drop");
                }
            }
            Op::IsoAlloc { i, len } => {
                let (iso, model) =
                    isos[slot(i)].get_or_insert_with(|| (Iso::new(|_| Vec::new()), Vec::new()));
                let len = (len % (300 << 10)) as usize;
                let s = next_seed();
                iso.with(|region, root| iso_alloc(region, root, len, s));
                model.push((len, s));
            }
            Op::IsoSend { i, adds } => {
                if let Some((iso, mut model)) = isos[slot(i)].take() {
                    let adds: Vec<(usize, u32)> = (0..adds % 9)
                        .map(|k| (k as usize * 1000 + 1, next_seed()))
                        .collect();
                    let (tx, rx) = mpsc::channel();
                    let expect = model.clone();
                    let new = adds.clone();
                    helper.run(move || {
                        let mut iso = iso;
                        iso.with(|region, root| {
                            verify_root(root, &expect, "iso on the helper");
                            for &(len, s) in &new {
                                iso_alloc(region, root, len, s);
                            }
                        });
                        tx.send(iso).unwrap();
                    });
                    let mut iso = rx.recv().unwrap();
                    model.extend(adds);
                    iso.with(|_, root| verify_root(root, &model, "iso sent back"));
                    isos[slot(i)] = Some((iso, model));
                }
            }
            Op::IsoMerge { into, from } => {
                let (a, b) = (slot(into), slot(from));
                if a != b && isos[a].is_some() {
                    if let Some((other, other_model)) = isos[b].take() {
                        let (iso, model) = isos[a].as_mut().unwrap();
                        iso.merge(other, |_, root, theirs| root.extend(theirs));
                        model.extend(other_model);
                        iso.with(|_, root| verify_root(root, model, "after iso merge"));
                    }
                }
            }
            Op::Freeze { i, thaw, last } => {
                if let Some((iso, model)) = isos[slot(i)].take() {
                    let frozen: Frozen<RootF> = iso.freeze();
                    let model = Arc::new(model);
                    // Two readers at once, on two other threads.
                    let (f1, m1) = (frozen.clone(), Arc::clone(&model));
                    let (f2, m2) = (frozen.clone(), Arc::clone(&model));
                    assert_eq!(frozen.handles(), 3);
                    helper.start(move || {
                        f1.with(|root| verify_root(root, &m1, "frozen on the helper"));
                        drop(f1);
                    });
                    reader.start(move || {
                        f2.with(|root| verify_root(root, &m2, "frozen on the reader"));
                        drop(f2);
                    });
                    frozen.with(|root| verify_root(root, &model, "frozen here"));
                    helper.wait();
                    reader.wait();
                    let model = Arc::try_unwrap(model).ok().unwrap();
                    if thaw {
                        let mut iso = frozen.try_thaw().expect("the only handle left");
                        iso.with(|_, root| verify_root(root, &model, "thawed"));
                        isos[slot(i)] = Some((iso, model));
                    } else {
                        match last % 3 {
                            0 => drop(frozen),
                            1 => helper.run(move || drop(frozen)),
                            _ => reader.run(move || drop(frozen)),
                        }
                    }
                }
            }
            Op::IsoDrop { i, remote } => {
                if let Some((mut iso, model)) = isos[slot(i)].take() {
                    iso.with(|_, root| verify_root(root, &model, "before iso drop"));
                    if remote {
                        helper.run(move || drop(iso));
                    } else {
                        drop(iso);
                    }
                }
            }
        }
    }
    for m in regions.into_iter().flatten() {
        m.verify("at the end");
        // Relaxed: see `Tracked::drop`.
        let before = DROPPED.load(Ordering::Relaxed);
        drop(m.region);
        check_dropped(before, m.tracked, "final drop");
    }
    for (mut iso, model) in isos.into_iter().flatten() {
        iso.with(|_, root| verify_root(root, &model, "at the end"));
    }
});

fn new_region() -> RegionModel {
    RegionModel {
        region: Region::new(),
        blocks: Vec::new(),
        tracked: 0,
    }
}
