//! Instruction count of one alloc + free pair, for callgrind.
//!
//! `pairs <allocator> <size> <n>` runs `n` pairs of `size` bytes through the
//! allocator's `GlobalAlloc` impl (called directly, not as the global
//! allocator, so every allocator runs the same loop). Under
//! `valgrind --tool=callgrind`, `(I(2n) - I(n)) / n` is the cost of one pair
//! plus the loop; `pairs none ...` (an allocator that does nothing) measures
//! the loop alone, to subtract. `cargo run --release -p homing-bench --bin
//! callgrind-pairs` (see `scripts` in the README) does all of it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

/// An allocator that hands out one static buffer: the loop's own cost.
struct Nothing;

static mut BUFFER: [u8; 8192] = [0; 8192];

// SAFETY: never used for real data: the measurement loop writes nothing to
// the block and "frees" it right away.
unsafe impl GlobalAlloc for Nothing {
    unsafe fn alloc(&self, _layout: Layout) -> *mut u8 {
        std::ptr::addr_of_mut!(BUFFER).cast()
    }
    unsafe fn dealloc(&self, _p: *mut u8, _layout: Layout) {}
}

fn run<A: GlobalAlloc>(a: &A, layout: Layout, n: usize) {
    for _ in 0..n {
        // SAFETY: a valid layout; the block is freed right away.
        unsafe {
            let p = a.alloc(black_box(layout));
            black_box(p);
            a.dealloc(p, layout);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!(
            "usage: pairs <homing|mimalloc|jemalloc|snmalloc|rpmalloc|system|none> <size> <n>"
        );
        std::process::exit(2);
    }
    let size: usize = args[2].parse().expect("size");
    let n: usize = args[3].parse().expect("n");
    let layout = Layout::from_size_align(size, 8).expect("layout");
    match args[1].as_str() {
        "homing" => run(&homing::Homing, layout, n),
        "mimalloc" => run(&mimalloc::MiMalloc, layout, n),
        "jemalloc" => run(&tikv_jemallocator::Jemalloc, layout, n),
        "snmalloc" => run(&snmalloc_rs::SnMalloc, layout, n),
        "rpmalloc" => run(&rpmalloc::RpMalloc, layout, n),
        "system" => run(&System, layout, n),
        "none" => run(&Nothing, layout, n),
        other => {
            eprintln!("unknown allocator {other}");
            std::process::exit(2);
        }
    }
}
