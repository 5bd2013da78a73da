//! This crate's atomics: the workspace's one shim, written once in
//! `homing-deferred` (`homing_deferred::sync`). No other module imports
//! `core::sync::atomic` directly.
//!
//! Two kinds:
//! - The atomics of the cross-thread protocols (a heap's `state`, the heap
//!   registry, the purge lock, the inbox inside `homing-deferred`): loom's
//!   under `cfg(loom)`, so `tests/loom.rs` explores their interleavings;
//!   `core`'s otherwise.
//! - [`plain`]: statistics, once-computed options and registered hooks,
//!   which publish nothing and live in `static`s (loom's atomics cannot be
//!   built in a `const`): always `core`'s.

pub(crate) use homing_deferred::sync::{
    fence, plain, AtomicBool, AtomicPtr, AtomicUsize, Ordering,
};
