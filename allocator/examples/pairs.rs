//! One alloc + free pair of a given size, N times, for counting instructions
//! under callgrind: `cargo build --release -p homing --example pairs`, then
//! `valgrind --tool=callgrind target/release/examples/pairs 64 1000000`
//! and again with 2000000; the difference over 1000000 is one pair.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

fn main() {
    let mut args = std::env::args().skip(1);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let layout = Layout::from_size_align(size, 8).expect("layout");
    for _ in 0..n {
        // SAFETY: a valid layout; the block is freed right away.
        unsafe {
            let p = GLOBAL.alloc(black_box(layout));
            black_box(p);
            GLOBAL.dealloc(p, layout);
        }
    }
}
