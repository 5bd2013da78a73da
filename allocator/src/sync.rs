//! The one place this crate takes its atomics from: loom's under
//! `cfg(loom)`, `core`'s otherwise. No other module imports
//! `core::sync::atomic` directly.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicUsize, Ordering};
