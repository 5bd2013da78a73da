//! The OS layer: the only module that calls the C library. One file per
//! concern: `errno` (every entry point below that may reach the kernel
//! leaves the C `errno` as it found it), `memory` (mapping, purging,
//! unmapping; the pressure hooks),
//! `env` (the environment and the clock), `thread` (the thread-exit key,
//! a thread token, yielding, the background thread), `output` (the
//! checked build's report and abort). The contract below is `memory`'s.
//!
//! # Contract
//!
//! - Sizes are multiples of [`OS_PAGE`] and non-zero; alignments are powers
//!   of two, at least [`OS_PAGE`]. Callers check; this module asserts in
//!   debug builds only.
//! - [`map`] returns read-write memory that reads as zero. On Linux the
//!   kernel backs it lazily, so mapping costs address space, not RSS, until
//!   the memory is touched: there is no separate commit step. It is *not*
//!   mapped with `MAP_NORESERVE`: the kernel's overcommit policy
//!   (`vm.overcommit_memory`) judges every mapping as it judges glibc's, so
//!   a size the machine cannot back (`malloc(1 << 40)` on a 24 GiB machine)
//!   is refused here, with `None`, instead of succeeding and killing the
//!   program when it touches the memory.
//! - [`purge`] hands the physical memory of a sub-range back (RSS drops) and
//!   keeps the address range; the range reads as zero afterwards.
//! - [`unmap`] returns a whole mapping made by [`map`], by its exact base and
//!   size.
//! - Nothing here allocates, locks or panics: failures are `None`.
//!
//! Reservations go through `memmap2` (`MmapOptions::map_anon`); `memmap2`
//! cannot place a mapping at an alignment,
//! release part of one or purge a sub-range, so those three calls are made
//! here with `libc`. Under Miri and loom, where `mmap` is not available, the
//! same contract is met by the system allocator (`cfg(any(miri, loom))`).

mod env;
mod errno;
mod memory;
mod output;
mod thread;

pub(crate) use env::{getenv, monotonic_ms};
pub use memory::*;
pub use output::fatal;
pub(crate) use thread::thread_token;
pub use thread::yield_now;
#[cfg(not(any(miri, loom)))]
pub(crate) use thread::{at_fork, exit_key, process_id, spawn_periodic};
