//! The actor benchmarks of `actors.rs` with the **system** allocator as the
//! global allocator.
//!
//! `cargo bench -p homing-bench --bench actors_system`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

mod actors_common;

criterion::criterion_group! {
    name = benches;
    config = actors_common::config();
    targets = actors_common::all_system
}
criterion::criterion_main!(benches);
