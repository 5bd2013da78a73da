//! Replays an arbitrary list of allocator operations against a model of the
//! live blocks: every block's contents are checked before it is freed or
//! resized, alignments and usable sizes are checked on every allocation,
//! and frees happen on this thread, on a helper thread (remote frees), or
//! through a first-class heap. At the end the live counters balance.
#![no_main]

use std::sync::mpsc;

use arbitrary::Arbitrary;
use homing::Homing;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static GLOBAL: Homing = Homing;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Allocate `size` (masked to 0..=300 KiB, so huge blocks happen) at
    /// alignment 2^`align_log` (masked to ≤ 2^17).
    Alloc {
        size: u32,
        align_log: u8,
        zeroed: bool,
    },
    /// Resize live block number `index` (mod count) to `size`.
    Realloc { index: u16, size: u32 },
    /// Free live block `index` here.
    Free { index: u16 },
    /// Free live block `index` on the helper thread.
    FreeRemote { index: u16 },
    /// Run `collect()`.
    Collect,
}

struct Live {
    ptr: usize,
    size: usize,
    align: usize,
    seed: u8,
}

fn fill(ptr: *mut u8, size: usize, seed: u8) {
    for i in 0..size.min(256) {
        // SAFETY: `ptr` holds `size` bytes.
        unsafe { ptr.add(i).write(seed.wrapping_add(i as u8)) };
    }
}

fn verify(l: &Live) {
    for i in 0..l.size.min(256) {
        // SAFETY: the block is live with `size` bytes.
        let b = unsafe { *(l.ptr as *const u8).add(i) };
        assert_eq!(b, l.seed.wrapping_add(i as u8), "corrupted block");
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let (tx, rx) = mpsc::channel::<usize>();
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let helper = std::thread::spawn(move || {
        for p in rx {
            // SAFETY: each pointer sent is a live block given up by its sender.
            unsafe { homing::free(p as *mut u8) };
            ack_tx.send(()).unwrap();
        }
    });
    let mut live: Vec<Live> = Vec::new();
    let mut seed = 0u8;
    for op in ops {
        match op {
            Op::Alloc {
                size,
                align_log,
                zeroed,
            } => {
                let size = (size % (300 << 10)) as usize;
                let align = 1usize << (align_log % 18);
                let p = if zeroed {
                    homing::alloc_zeroed(size, align)
                } else {
                    homing::alloc(size, align)
                };
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0);
                // SAFETY: a live block.
                assert!(unsafe { homing::usable_size(p) } >= size);
                if zeroed {
                    // SAFETY: `p` holds `size` bytes.
                    assert!(unsafe { std::slice::from_raw_parts(p, size) }
                        .iter()
                        .all(|&b| b == 0));
                }
                seed = seed.wrapping_add(1);
                fill(p, size, seed);
                live.push(Live {
                    ptr: p as usize,
                    size,
                    align,
                    seed,
                });
            }
            Op::Realloc { index, size } if !live.is_empty() => {
                let i = index as usize % live.len();
                let l = &mut live[i];
                verify(l);
                let size = (size % (300 << 10)) as usize;
                // SAFETY: a live block of `l.size` bytes at `l.align`.
                let q = unsafe { homing::realloc(l.ptr as *mut u8, l.size, l.align, size) };
                assert!(!q.is_null());
                assert_eq!(q as usize % l.align, 0);
                l.ptr = q as usize;
                l.size = l.size.min(size);
                verify(l);
                l.size = size;
                seed = seed.wrapping_add(1);
                l.seed = seed;
                fill(q, size, seed);
            }
            Op::Free { index } if !live.is_empty() => {
                let l = live.swap_remove(index as usize % live.len());
                verify(&l);
                // SAFETY: a live block, freed once.
                unsafe { homing::free(l.ptr as *mut u8) };
            }
            Op::FreeRemote { index } if !live.is_empty() => {
                let l = live.swap_remove(index as usize % live.len());
                verify(&l);
                tx.send(l.ptr).unwrap();
                ack_rx.recv().unwrap();
            }
            Op::Collect => homing::collect(),
            _ => {}
        }
    }
    for l in live {
        verify(&l);
        // SAFETY: a live block, freed once.
        unsafe { homing::free(l.ptr as *mut u8) };
    }
    drop(tx);
    helper.join().unwrap();
    homing::collect();
});
