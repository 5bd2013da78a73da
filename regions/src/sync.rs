//! The one place this crate takes its atomics and cells from.
//!
//! Under `cfg(loom)` these are loom's model-checked types, so
//! `tests/loom.rs` explores the interleavings of the chunk pool; otherwise
//! they are `core`'s, at no cost. No other module imports
//! `core::sync::atomic` directly.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicPtr, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicPtr, AtomicUsize, Ordering};

/// `core`'s atomics even under loom, for process-wide statistics that live
/// in a `static` (loom's atomics cannot be built in a `const`) and that no
/// model reasons about.
pub(crate) mod plain {
    pub(crate) use core::sync::atomic::{AtomicUsize, Ordering};
}

/// An `UnsafeCell` that loom can watch for data races.
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `core::cell::UnsafeCell` behind loom's closure API (`with` / `with_mut`).
#[cfg(not(loom))]
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    #[inline(always)]
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared raw pointer to the contents.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a mutable raw pointer to the contents.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
