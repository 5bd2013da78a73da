//! The one place this crate takes its atomics and cells from.
//!
//! Under `cfg(loom)` these are loom's model-checked types, so `tests/loom.rs`
//! explores every interleaving the memory model allows; otherwise they are
//! `core`'s, with no cost. No other module imports `core::sync::atomic`
//! directly.

#[cfg(all(loom, feature = "std"))]
pub(crate) use loom::sync::atomic::{fence, AtomicIsize, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, Ordering};

#[cfg(all(not(loom), feature = "std"))]
pub(crate) use core::sync::atomic::{fence, AtomicIsize, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicPtr, Ordering};

/// An `UnsafeCell` with loom's closure API (`with` / `with_mut`), so that
/// loom can check every plain access to a node's link for data races.
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `core::cell::UnsafeCell` behind loom's closure API.
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

/// Declares this crate's thread-locals: `std`'s (const-initialised) outside
/// loom, loom's (which it drops at the end of each modelled thread) inside.
#[cfg(all(not(loom), feature = "std"))]
macro_rules! thread_locals {
    ($($(#[$attr:meta])* static $name:ident: $ty:ty = $init:expr;)*) => {
        std::thread_local! { $($(#[$attr])* static $name: $ty = const { $init };)* }
    };
}

/// Declares this crate's thread-locals (loom's, under `cfg(loom)`).
#[cfg(all(loom, feature = "std"))]
macro_rules! thread_locals {
    ($($(#[$attr:meta])* static $name:ident: $ty:ty = $init:expr;)*) => {
        loom::thread_local! { $($(#[$attr])* static $name: $ty = $init;)* }
    };
}

#[cfg(feature = "std")]
pub(crate) use thread_locals;
