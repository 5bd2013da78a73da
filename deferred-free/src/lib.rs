// Without `std` there is no `collect` to link to: the README's links to it
// point at its section on features instead (with `std` they resolve to the
// function).
#![cfg_attr(
    not(feature = "std"),
    doc = "[`collect`]: index.html#features-and-platforms\n"
)]
#![doc = include_str!("../README.md")]
//!
//! # Layers
//!
//! Layers, bottom up: `sync` → `inbox` → `record` → `header` → `thread` →
//! `shared` (the last four with the std feature; checked by `.ci/layers`).
#![no_std]

#[cfg(feature = "std")]
extern crate std;

mod inbox;
// The workspace's one loom/core shim (see its doc). Not a stable API.
#[doc(hidden)]
pub mod sync;

#[cfg(feature = "std")]
mod record;

#[cfg(feature = "std")]
mod header;

#[cfg(feature = "std")]
mod thread;

#[cfg(feature = "std")]
mod shared;

pub use inbox::{Batch, Chain, Inbox, Node};

#[cfg(feature = "std")]
pub use shared::Shared;
#[cfg(feature = "std")]
pub use thread::collect;
