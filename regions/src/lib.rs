#![doc = include_str!("../README.md")]
//!
//! # Modules, bottom up
//!
//! Each uses only the ones above it in this list.
//!
//! Layers, bottom up: `sync` → `chunk` → `stack` → `pool` → `cache` →
//! `region` → `alloc_api` / `string` → `iso` → `frozen` → `actor`
//! (checked by `.ci/layers`).
//!
//! 1. `sync`: the atomics and cells (loom's under `cfg(loom)`).
//! 2. `chunk`: a chunk of memory from `homing::os`, its header at the end.
//! 3. `stack`: a lock-free Treiber stack of chunks with an ABA tag.
//! 4. `pool`: the global chunk pool (hot and purged stacks per class).
//! 5. `cache`: each thread's small chunk cache in front of the pool.
//! 6. `region`: [`Region`], bump allocation and the drop list.
//! 7. `alloc_api`: `allocator_api2::alloc::Allocator` for `Region` (owned)
//!    and `&Region` (borrowed); `string`: [`String`], in either.
//! 8. `iso`: [`Iso`] and [`Family`], a region with a root.
//! 9. `frozen`: [`Frozen`], a shared read-only `Iso`.
//! 10. [`actor`]: actors whose state is an `Iso`, on a worker pool.
//!
//! # What is `unsafe` here, and why
//!
//! The public API is safe. Inside: bump allocation hands out references to
//! raw chunk memory (sound because each byte is handed out once until the
//! region is reset, which needs `&mut`); the pool's stack reads a header of
//! a chunk it may have lost to another thread (sound because that word is
//! an atomic and pooled chunks are never unmapped); `Iso` and `Frozen` store
//! the root at a made-up lifetime and give it back only under a brand
//! (`for<'r>` closures), and keep the region inside its own memory; and the
//! `Send`/`Sync` impls, argued on each type.

mod sync;

// Unstable internals: chunks of OS memory. Not part of the public API; may
// change in any release.
#[doc(hidden)]
pub mod chunk;
mod stack;

// Unstable internals: the global chunk pool (its statistics are used by
// this crate's tests). Not part of the public API; may change in any
// release.
#[doc(hidden)]
pub mod pool;

mod cache;

mod region;

mod alloc_api;

mod string;

mod iso;

mod frozen;

#[cfg(not(loom))]
pub mod actor;

pub use frozen::Frozen;
pub use iso::{Family, Iso};
pub use region::{live_chunk_bytes, AllocError, Region, LARGE_OBJECT};
pub use string::String;
