//! The one place the workspace takes its atomics and cells from: this
//! crate's modules, and `homing` and `homing-regions` (which re-export it
//! from their own `sync` modules; not a stable API).
//!
//! Under `cfg(loom)` these are loom's model-checked types, so each crate's
//! `tests/loom.rs` explores every interleaving the memory model allows;
//! otherwise they are `core`'s, with no cost. No other module imports
//! `core::sync::atomic` directly.

#[cfg(loom)]
pub use loom::sync::atomic::{fence, AtomicBool, AtomicIsize, AtomicPtr, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub use core::sync::atomic::{fence, AtomicBool, AtomicIsize, AtomicPtr, AtomicUsize, Ordering};

/// `core`'s atomics even under loom, for what lives in a `static` (loom's
/// atomics cannot be built in a `const`) and that no model reasons about:
/// statistics, options, registered hooks.
pub mod plain {
    pub use core::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering,
    };
}

/// An `UnsafeCell` with loom's closure API (`with` / `with_mut`), so that
/// loom can check every plain access for data races.
#[cfg(loom)]
pub use loom::cell::UnsafeCell;

/// `core::cell::UnsafeCell` behind loom's closure API.
#[cfg(not(loom))]
#[derive(Debug)]
#[repr(transparent)]
pub struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    #[inline(always)]
    pub const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared raw pointer to the contents.
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a mutable raw pointer to the contents.
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
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

/// Declares a constructor that is a `const fn` outside loom and a plain
/// `fn` under `cfg(loom)` (whose atomics cannot be built in a `const`), from
/// one body: the workspace's structures would otherwise write every such
/// constructor twice. Not a stable API.
///
/// ```
/// use homing_deferred::const_fn_unless_loom;
/// use homing_deferred::sync::AtomicUsize;
///
/// struct Counter(AtomicUsize);
/// impl Counter {
///     const_fn_unless_loom! {
///         /// A counter at zero.
///         pub fn new() -> Counter { Counter(AtomicUsize::new(0)) }
///     }
/// }
/// assert_eq!(Counter::new().0.into_inner(), 0);
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! const_fn_unless_loom {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        #[cfg(not(loom))]
        $(#[$meta])*
        $vis const fn $name($($arg: $ty),*) -> $ret $body

        #[cfg(loom)]
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) -> $ret $body
    };
}
