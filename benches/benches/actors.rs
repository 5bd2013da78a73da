//! Actor benchmarks (Savina's ping-pong and thread-ring, and a fan-out /
//! fan-in of 1M messages) with **homing** as the global allocator: homing's
//! actors against `std::thread` + `crossbeam-channel` and tokio tasks +
//! `tokio::sync::mpsc`. `actors_system.rs` runs the same with the system
//! allocator.
//!
//! `cargo bench -p homing-bench --bench actors`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

mod actors_common;

criterion::criterion_group! {
    name = benches;
    config = actors_common::config();
    targets = actors_common::all_homing
}
criterion::criterion_main!(benches);
