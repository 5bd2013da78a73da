//! The one place this crate takes its atomics from. No other module imports
//! `core::sync::atomic` directly.
//!
//! These are `core`'s atomics even under `cfg(loom)`: the allocator keeps
//! its global state in `static`s, which loom's atomics (not `const`
//! constructible) cannot initialise. The cross-thread protocols built on
//! them are model-checked where they live: the inbox queue in
//! `homing-deferred`'s loom models.

pub(crate) use core::sync::atomic::{fence, AtomicPtr, AtomicUsize, Ordering};
