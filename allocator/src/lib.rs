#![doc = include_str!("../README.md")]
//!
//! # Layers
//!
//! Layers, bottom up: `sync` → `os` → `options` → `list` → `size_class` →
//! `page` → `live_segments` → `segment` → `segments` → `purge` →
//! `account` → `stats` → `outbox` → `heap` → `pages` / `huge` / `collect` → `checked` →
//! `remote` → `registry` → `thread` → `global` / `heap_api` / `loom_model` →
//! `safe_point`.
//!
//! A module uses only modules of earlier layers (`.ci/layers` checks it);
//! `ARCHITECTURE.md` says what each one holds.
#![no_std]
// Under loom only the heap, page and remote-free layers are built (see `loom_model`).
#![cfg_attr(loom, allow(dead_code))]

extern crate std;

mod account;
// homing maps memory with Linux calls (`mremap`, `MADV_DONTNEED` semantics,
// `/proc` reads): say so instead of failing deep inside `os`.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "homing supports Linux only (x86_64 and aarch64): it uses mmap/mremap/madvise \
     with Linux semantics; other operating systems are not supported yet"
);

// Unstable internals: the OS layer, shared with `homing-regions` and
// `homing-capi`. Not part of the public API; may change in any release.
#[doc(hidden)]
pub mod os;
mod sync;

#[cfg(feature = "checked")]
mod checked;
mod collect;
#[cfg(not(loom))]
mod global;
mod heap;
#[cfg(not(loom))]
mod heap_api;
mod huge;
mod list;
#[cfg(feature = "checked")]
mod live_segments;
#[cfg(loom)]
pub mod loom_model;
// Unstable internals: the `HOMING_*` options as read at start-up. Not part
// of the public API; may change in any release.
#[doc(hidden)]
pub mod options;
mod outbox;
mod page;
mod pages;
mod purge;
mod registry;
mod remote;
mod segment;
mod segments;
// Unstable internals: the size-class table, shared with `homing-capi`. Not
// part of the public API; may change in any release.
#[doc(hidden)]
pub mod size_class;
mod stats;
#[cfg(not(loom))]
mod thread;
// `homing::safe_point()`: both crates' `collect` in one call.
#[cfg(not(loom))]
mod safe_point;

#[cfg(not(loom))]
pub use global::{
    alloc, alloc_reporting, alloc_zeroed, collect, free, print_stats, realloc, realloc_usable,
    stats, usable_size, usable_size_for, Homing, OnFailure, Quietly,
};
#[cfg(not(loom))]
pub use heap_api::{Heap, Holder};
pub use options::{configure, Setting};
#[cfg(not(loom))]
pub use safe_point::safe_point;
#[cfg(not(loom))]
pub use stats::{HeapStats, Stats};
