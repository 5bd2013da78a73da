//! The one place this crate takes its atomics from. No other module imports
//! `core::sync::atomic` directly.
//!
//! Two kinds:
//! - The atomics of the cross-thread protocols (a heap's `state`, the heap
//!   registry, the inbox inside `homing-deferred`): loom's under
//!   `cfg(loom)`, so `tests/loom.rs` explores their interleavings; `core`'s
//!   otherwise.
//! - [`plain`]: statistics and once-computed options, which publish nothing
//!   and live in `static`s (loom's atomics cannot be built in a `const`):
//!   always `core`'s.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::AtomicPtr;

/// Atomics for counters, options and registered hooks: never part of a
/// protocol loom needs to explore.
pub(crate) mod plain {
    pub(crate) use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
}
