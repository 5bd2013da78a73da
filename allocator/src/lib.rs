#![doc = include_str!("../README.md")]
#![no_std]

extern crate std;

pub mod os;
mod sync;

#[cfg(not(loom))]
mod global;
#[cfg(not(loom))]
mod heap;
#[cfg(not(loom))]
mod heap_api;
pub mod options;
#[cfg(not(loom))]
mod page;
#[cfg(not(loom))]
mod remote;
#[cfg(not(loom))]
mod segment;
#[cfg(not(loom))]
pub mod size_class;
#[cfg(not(loom))]
mod stats;
#[cfg(not(loom))]
mod thread;

#[cfg(not(loom))]
pub use global::{alloc, alloc_zeroed, collect, free, print_stats, realloc, stats, usable_size, Homing};
#[cfg(not(loom))]
pub use heap_api::Heap;
#[cfg(not(loom))]
pub use stats::Stats;
