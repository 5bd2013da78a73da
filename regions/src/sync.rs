//! This crate's atomics and cells: the workspace's one shim, written once
//! in `homing-deferred` (loom's types under `cfg(loom)`, `core`'s
//! otherwise). No other module imports `core::sync::atomic` directly.

pub(crate) use homing_deferred::sync::{
    fence, plain, AtomicPtr, AtomicUsize, Ordering, UnsafeCell,
};
