#![doc = include_str!("../README.md")]
#![no_std]
// Under loom only the heap, page and remote-free layers are built (see `model`).
#![cfg_attr(loom, allow(dead_code))]

extern crate std;

mod account;
pub mod os;
mod sync;

#[cfg(feature = "checked")]
mod checked;
#[cfg(not(loom))]
mod global;
mod heap;
#[cfg(not(loom))]
mod heap_api;
#[cfg(loom)]
pub mod model;
pub mod options;
mod page;
mod purge;
mod registry;
mod remote;
mod segment;
pub mod size_class;
mod stats;
#[cfg(not(loom))]
mod thread;

#[cfg(not(loom))]
pub use global::{
    alloc, alloc_zeroed, collect, free, print_stats, realloc, stats, usable_size, usable_size_for,
    Homing,
};
#[cfg(not(loom))]
pub use heap_api::{Heap, Holder};
#[cfg(not(loom))]
pub use stats::{HeapStats, Stats};
