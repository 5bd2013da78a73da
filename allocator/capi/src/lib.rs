#![doc = include_str!("../README.md")]
//!
//! # Modules, bottom up
//!
//! Each uses only the ones above it in this list, and the allocator crate
//! `homing` (a dependency renamed `allocator` here, because this crate's own
//! lib is called `homing` too: it is what C links as `-lhoming`) and
//! `homing-regions`.
//!
//! 1. `errno`: reading and writing the calling thread's C `errno`.
//! 2. [`family`]: `homing_malloc`, `homing_free`, ...: the C allocation
//!    contract (alignment, `errno`, overflow, `realloc` policies) on top of
//!    the allocator's Rust entry points. Always exported.
//! 3. [`interpose`] (feature `malloc`): `malloc`, `free`, `calloc`, ...:
//!    the standard names, each a call of the `family` function, so that the
//!    library replaces the process's allocator.
//! 4. [`heap`]: `homing_heap_*`, first-class heaps behind a C handle.
//! 5. [`region`]: `homing_region_*`, regions behind a C handle.
//! 6. [`stats`]: `homing_collect`, `homing_stats`, `homing_stats_print`,
//!    and the statistics printed at exit under `HOMING_SHOW_STATS`.
//!
//! Layers, bottom up: `errno` → `family` → `interpose` → `heap` →
//! `region` → `stats` (checked by `.ci/layers`).
//!
//! Every function here is `extern "C"` and never unwinds: a Rust panic
//! inside one aborts the process (the `extern "C"` ABI guarantees it), and
//! nothing on an allocation path can panic.

mod errno;
pub mod family;
#[cfg(feature = "malloc")]
pub mod interpose;

pub mod heap;
pub mod region;
pub mod stats;
