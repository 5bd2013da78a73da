//! Replays an arbitrary list of first-class heap operations against a model
//! of the live blocks.
//!
//! Up to four `homing::Heap`s live at once beside the thread's own heap.
//! Blocks of every size kind (small, medium, huge, and huge with alignment
//! up to 8 MiB, which is segment-aligned) are allocated from them (zeroed
//! or not), patterned, and checked before they are freed: by their own
//! heap's `dealloc`, by another heap's `dealloc` (which hands foreign
//! blocks on), by `homing::free` here, or by `homing::free` on a helper
//! thread that receives the pointers over a channel. Heaps are collected
//! and destroyed with blocks still live (those are forgotten by the model;
//! the remote frees sent before are waited for first, as the `destroy`
//! contract asks). At the end no huge block is left and the number of heaps
//! ever created stays bounded (destroyed heaps are reused).
#![no_main]

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::mpsc;

use arbitrary::Arbitrary;
use homing::Heap;
use homing_fuzz::{fill, verify, verify_zero};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

/// First-class heaps live at once, at most.
const HEAPS: usize = 4;
/// Heaps that may ever exist in this process: the fuzzing thread's, the
/// helper threads' (one per run, reused after it exits), `HEAPS` first-class
/// ones and some slack for libFuzzer's threads. A heap that is never
/// recycled makes this grow with the number of runs.
const MAX_HEAPS: usize = 32;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Create a heap in slot `h` (if it is empty).
    New { h: u8 },
    /// Allocate from heap `h` (or the thread heap if its slot is empty):
    /// `size` masked by `kind` (small ≤ 8 KiB, medium ≤ 128 KiB, huge
    /// ≤ 4 MiB), alignment 2^`align_log` masked by `kind` too.
    Alloc {
        h: u8,
        kind: u8,
        size: u32,
        align_log: u8,
        zeroed: bool,
    },
    /// Free live block `index` (mod count) with its own heap's `dealloc`.
    Dealloc { index: u16 },
    /// Free live block `index` through heap `h`'s `dealloc` (another
    /// heap's block, unless `h` happens to own it).
    DeallocVia { index: u16, h: u8 },
    /// Free live block `index` with `homing::free` on this thread.
    Free { index: u16 },
    /// Free live block `index` on the helper thread.
    FreeRemote { index: u16 },
    /// `collect` heap `h`, or `homing::collect` if its slot is empty.
    Collect { h: u8 },
    /// Destroy heap `h` with whatever it still holds.
    Destroy { h: u8 },
}

struct Live {
    addr: usize,
    size: usize,
    seed: u32,
    /// The heap slot it came from, `None` for the thread heap.
    heap: Option<usize>,
}

impl Live {
    fn verify(&self, what: &str) {
        // SAFETY: the model's blocks are live, `size` bytes each.
        unsafe {
            verify(
                self.addr as *const u8,
                self.size,
                self.seed,
                self.size,
                what,
            )
        };
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let base_huge = homing::stats().huge_blocks;
    let (tx, rx) = mpsc::channel::<usize>();
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let helper = std::thread::spawn(move || {
        for p in rx {
            // SAFETY: each pointer sent is a live block its sender gave up.
            unsafe { homing::free(p as *mut u8) };
            ack_tx.send(()).unwrap();
        }
    });
    let mut heaps: Vec<Option<Heap>> = (0..HEAPS).map(|_| None).collect();
    let mut live: Vec<Live> = Vec::new();
    let mut seed = 0u32;
    for op in ops {
        match op {
            Op::New { h } => {
                let h = h as usize % HEAPS;
                if heaps[h].is_none() {
                    heaps[h] = Some(Heap::new());
                }
            }
            Op::Alloc {
                h,
                kind,
                size,
                align_log,
                zeroed,
            } => {
                let (size, align) = match kind % 4 {
                    0 => (size % (8 << 10), 1 << (align_log % 8)),
                    1 => (size % (128 << 10), 1 << (align_log % 13)),
                    2 => (size % (4 << 20), 1 << (align_log % 17)),
                    // Huge with segment alignment (≥ 4 MiB) or less.
                    _ => ((128 << 10) + size % (2 << 20), 1 << (align_log % 24)),
                };
                let (size, align) = (size as usize, align as usize);
                let h = h as usize % HEAPS;
                let layout = Layout::from_size_align(size, align).unwrap();
                let (p, heap) = match &heaps[h] {
                    Some(heap) => {
                        let p = if zeroed {
                            heap.alloc_zeroed(layout)
                        } else {
                            heap.alloc(layout)
                        };
                        (p.expect("heap out of memory").as_ptr(), Some(h))
                    }
                    None => {
                        let p = if zeroed {
                            homing::alloc_zeroed(size, align)
                        } else {
                            homing::alloc(size, align)
                        };
                        assert!(!p.is_null(), "thread heap out of memory");
                        (p, None)
                    }
                };
                assert_eq!(p as usize % align, 0, "misaligned: {size} bytes at {align}");
                // SAFETY: a live block.
                let usable = unsafe { homing::usable_size(p) };
                assert!(usable >= size, "usable size {usable} < {size}");
                if zeroed {
                    // SAFETY: the block holds `size` bytes.
                    unsafe { verify_zero(p, size, "alloc_zeroed") };
                }
                seed = seed.wrapping_add(1);
                // SAFETY: the block holds `usable` bytes, all writable.
                unsafe { fill(p, usable, seed) };
                live.push(Live {
                    addr: p as usize,
                    size: usable,
                    seed,
                    heap,
                });
            }
            Op::Dealloc { index } if !live.is_empty() => {
                let l = live.swap_remove(index as usize % live.len());
                l.verify("before dealloc");
                let p = NonNull::new(l.addr as *mut u8).unwrap();
                match l.heap {
                    // SAFETY: a live block of this heap, freed once.
                    Some(h) => unsafe { heaps[h].as_ref().unwrap().dealloc(p) },
                    // SAFETY: a live block of the thread heap, freed once.
                    None => unsafe { homing::free(p.as_ptr()) },
                }
            }
            Op::DeallocVia { index, h } if !live.is_empty() => {
                let h = h as usize % HEAPS;
                if let Some(heap) = &heaps[h] {
                    let l = live.swap_remove(index as usize % live.len());
                    l.verify("before dealloc via another heap");
                    // SAFETY: a live homing block, freed once.
                    unsafe { heap.dealloc(NonNull::new(l.addr as *mut u8).unwrap()) };
                }
            }
            Op::Free { index } if !live.is_empty() => {
                let l = live.swap_remove(index as usize % live.len());
                l.verify("before free");
                // SAFETY: a live block, freed once.
                unsafe { homing::free(l.addr as *mut u8) };
            }
            Op::FreeRemote { index } if !live.is_empty() => {
                let l = live.swap_remove(index as usize % live.len());
                l.verify("before remote free");
                tx.send(l.addr).unwrap();
                ack_rx.recv().unwrap();
            }
            Op::Collect { h } => match &heaps[h as usize % HEAPS] {
                Some(heap) => heap.collect(),
                None => homing::collect(),
            },
            Op::Destroy { h } => {
                let h = h as usize % HEAPS;
                if let Some(heap) = heaps[h].take() {
                    // Every remote free sent so far was acknowledged, so no
                    // block of this heap is in flight.
                    live.retain(|l| {
                        if l.heap == Some(h) {
                            l.verify("before destroy");
                        }
                        l.heap != Some(h)
                    });
                    heap.destroy();
                    // The other heaps' blocks are untouched.
                    live.iter()
                        .for_each(|l| l.verify("after another heap's destroy"));
                }
            }
            _ => {}
        }
    }
    for l in live.drain(..) {
        l.verify("at the end");
        // SAFETY: a live block, freed once.
        unsafe { homing::free(l.addr as *mut u8) };
    }
    drop(live);
    drop(heaps);
    drop(tx);
    helper.join().unwrap();
    homing::collect();
    let s = homing::stats();
    assert_eq!(s.huge_blocks, base_huge, "huge blocks left behind\n{s}");
    assert!(
        s.heaps <= MAX_HEAPS,
        "heaps are not reused: {} ever created\n{s}",
        s.heaps
    );
});
