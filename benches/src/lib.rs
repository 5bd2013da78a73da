//! Benchmarks of homing against its peers.
//!
//! - `benches/deferred.rs`: criterion benchmark of the deferred-free queue
//!   (`cargo bench -p homing-bench --bench deferred`).
//! - The comparison suite, `cargo run --release -p homing-bench --bin
//!   compare`: the [`workloads`] run in one `wl-<allocator>` binary per
//!   allocator (each sets its `#[global_allocator]` and calls
//!   [`workloads::main`]), and [`compare`] runs them all as child processes
//!   and reports times, peak RSS and ratios.
//!
//! Modules, bottom up: [`rng`] and [`cli`] use nothing else here;
//! [`workloads`] uses both; [`compare`] uses all of them.

pub mod cli;
pub mod compare;
pub mod rng;
pub mod workloads;
