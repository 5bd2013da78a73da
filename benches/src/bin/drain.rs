//! The cost of a remote free, on both sides: how long the freeing thread
//! spends per block (`free` into its outbox, and the flush), and how long
//! the owner spends taking the blocks back (its inbox drain, run here by
//! `homing::collect`).
//!
//! `drain [size] [blocks] [rounds]`: each round the owner allocates
//! `blocks` blocks of `size` bytes, hands them to a freeing thread, which
//! frees them in one of three orders and flushes its outbox, and then the
//! owner collects. Orders:
//! - `seq`: the order they were allocated (a producer/consumer queue);
//! - `strided`: round-robin over 16 interleaved streams (several consumers'
//!   worth of frees mixed together);
//! - `random`: shuffled (a server freeing requests as they finish).
//!
//! The owner keeps one ballast block beside every block it hands out, so no
//! page ever empties and what is timed is the free path, not page retiring.
//! Prints the median over the rounds of nanoseconds per block.

use std::sync::mpsc;
use std::time::Instant;

use homing_bench::rng::Rng;

#[global_allocator]
static HOMING: homing::Homing = homing::Homing;

fn main() {
    let mut args = std::env::args().skip(1);
    let size: usize = args.next().map_or(64, |a| a.parse().expect("size"));
    let blocks: usize = args.next().map_or(100_000, |a| a.parse().expect("blocks"));
    let rounds: usize = args.next().map_or(15, |a| a.parse().expect("rounds"));
    let layout = std::alloc::Layout::from_size_align(size, 16).expect("layout");
    println!("order     free ns/block  drain ns/block   ({blocks} blocks of {size} B, median of {rounds})");
    for order in ["seq", "strided", "random"] {
        let (to_freer, work) = mpsc::channel::<Vec<usize>>();
        let (done, back) = mpsc::channel::<f64>();
        let freer = std::thread::spawn(move || {
            let mut rng = Rng::for_thread(7, 1);
            for mut ptrs in work {
                match order {
                    "strided" => {
                        let n = ptrs.len();
                        let streams = 16;
                        ptrs = (0..streams)
                            .flat_map(|s| (s..n).step_by(streams))
                            .map(|i| ptrs[i])
                            .collect();
                    }
                    "random" => {
                        for i in (1..ptrs.len()).rev() {
                            let j = rng.index(i + 1);
                            ptrs.swap(i, j);
                        }
                    }
                    _ => {}
                }
                let start = Instant::now();
                for &p in &ptrs {
                    // SAFETY: each block came from the owner with this
                    // layout and is freed once.
                    unsafe { std::alloc::dealloc(p as *mut u8, layout) };
                }
                homing::collect();
                let ns = start.elapsed().as_nanos() as f64 / ptrs.len() as f64;
                drop(ptrs);
                done.send(ns).expect("owner");
            }
        });
        let mut ballast = Vec::with_capacity(blocks);
        let (mut free_ns, mut drain_ns) = (Vec::new(), Vec::new());
        for round in 0..rounds + 1 {
            let mut ptrs = Vec::with_capacity(blocks);
            for _ in 0..blocks {
                // SAFETY: a valid, non-zero layout.
                let p = unsafe { std::alloc::alloc(layout) };
                assert!(!p.is_null());
                // SAFETY: `p` is ours, `size` bytes.
                unsafe { p.write_bytes(1, size) };
                ptrs.push(p as usize);
                if round == 0 {
                    // SAFETY: as above.
                    ballast.push(unsafe { std::alloc::alloc(layout) } as usize);
                }
            }
            to_freer.send(ptrs).expect("freer");
            let f = back.recv().expect("freer");
            let start = Instant::now();
            homing::collect();
            let d = start.elapsed().as_nanos() as f64 / blocks as f64;
            if round > 0 {
                // Round 0 warms up (pages carved, ballast placed).
                free_ns.push(f);
                drain_ns.push(d);
            }
        }
        drop(to_freer);
        freer.join().expect("freer");
        for p in ballast {
            // SAFETY: ours, allocated with `layout`, freed once.
            unsafe { std::alloc::dealloc(p as *mut u8, layout) };
        }
        println!(
            "{order:<9} {:>14.2} {:>15.2}",
            median(&mut free_ns),
            median(&mut drain_ns)
        );
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
