//! Safe points and statistics for C: `homing_collect`, `homing_stats`,
//! `homing_stats_print`, and `HOMING_SHOW_STATS`.
//!
//! Setting `HOMING_SHOW_STATS` (to anything but `0`) in the environment of a
//! process that uses homing prints the statistics to standard error when the
//! process exits normally (from an ELF destructor, `.fini_array`, which runs
//! after `main` returns or `exit` is called, and allocates nothing). It is
//! how one checks that a program run under `LD_PRELOAD` really allocated
//! from homing.

use core::ffi::c_char;
use homing_deferred::sync::plain::{AtomicU8, Ordering};

/// homing's process-wide counters, as `homing_stats_t` in `homing.h`.
/// Fields are `size_t`; see `allocator::Stats` for each meaning.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HomingStats {
    /// Blocks handed out and not yet freed back to their heap.
    pub live_blocks: usize,
    /// Bytes of those blocks.
    pub live_bytes: usize,
    /// Huge blocks (straight from the OS) live now.
    pub huge_blocks: usize,
    /// Bytes mapped from the OS now.
    pub os_mapped: usize,
    /// Bytes given back to the OS with `MADV_DONTNEED` so far.
    pub os_purged: usize,
    /// Remote (cross-thread) frees posted to an owner's inbox so far.
    pub remote_posted: usize,
    /// Remote frees drained by their owners so far.
    pub remote_drained: usize,
    /// Pages purged so far.
    pub pages_purged: usize,
    /// Heaps ever created (thread heaps and first-class heaps).
    pub heaps: usize,
    /// Heaps of exited threads not yet adopted.
    pub heaps_abandoned: usize,
    /// Of `os_mapped`, bytes of released segments and huge mappings kept
    /// for reuse. After the older fields, so their layout is kept.
    pub os_cached: usize,
    /// Of `os_cached`, bytes of released huge mappings.
    pub huge_cached: usize,
    /// Huge blocks served from a cached mapping so far.
    pub huge_reused: usize,
    /// Huge mappings made from the OS so far.
    pub huge_mapped: usize,
}

impl From<allocator::Stats> for HomingStats {
    fn from(s: allocator::Stats) -> Self {
        HomingStats {
            live_blocks: s.live_blocks,
            live_bytes: s.live_bytes,
            huge_blocks: s.huge_blocks,
            os_mapped: s.os_mapped,
            os_purged: s.os_purged,
            remote_posted: s.remote_posted,
            remote_drained: s.remote_drained,
            pages_purged: s.pages_purged,
            heaps: s.heaps,
            heaps_abandoned: s.heaps_abandoned,
            os_cached: s.os_cached,
            huge_cached: s.huge_cached,
            huge_reused: s.huge_reused,
            huge_mapped: s.huge_mapped,
        }
    }
}

/// A safe point: the calling thread posts its pending remote frees, takes
/// back the blocks other threads freed to it, returns empty pages and
/// purges free memory. Never needed for correctness.
///
/// ```c
/// homing_collect(); /* e.g. at the end of a VM's GC cycle */
/// ```
#[no_mangle]
pub extern "C" fn homing_collect() {
    crate::errno::preserve(allocator::collect);
}

/// Writes a snapshot of the process-wide statistics to `*out`.
///
/// # Safety
///
/// `out` is valid for writing one `homing_stats_t`.
///
/// ```c
/// homing_stats_t s;
/// homing_stats(&s);
/// printf("%zu bytes live\n", s.live_bytes);
/// ```
#[no_mangle]
pub unsafe extern "C" fn homing_stats(out: *mut HomingStats) {
    // SAFETY: a writable out-pointer (caller contract).
    unsafe { out.write(allocator::stats().into()) };
}

/// Prints the statistics to standard error.
///
/// ```c
/// homing_stats_print();
/// ```
#[no_mangle]
pub extern "C" fn homing_stats_print() {
    crate::errno::preserve(allocator::print_stats);
}

/// The environment variable that asks for statistics at exit.
const SHOW_STATS: &[u8] = b"HOMING_SHOW_STATS\0";

/// Whether to print the statistics at exit: `UNREAD`, or the answer read
/// when the library was loaded (programs such as PHP clear their
/// environment before they exit).
static SHOW: AtomicU8 = AtomicU8::new(UNREAD);
const UNREAD: u8 = 2;

/// `HOMING_SHOW_STATS` is set and not `0`.
fn show_stats_asked() -> bool {
    // SAFETY: a NUL-terminated name; `getenv` returns null or a
    // NUL-terminated string we only read here.
    unsafe {
        let value = libc::getenv(SHOW_STATS.as_ptr().cast::<c_char>());
        !value.is_null() && core::ffi::CStr::from_ptr(value).to_bytes() != b"0"
    }
}

/// Reads `HOMING_SHOW_STATS` when the library is loaded.
extern "C" fn read_show_stats_at_load() {
    // Relaxed: read and written on the loading thread, before `main`.
    SHOW.store(u8::from(show_stats_asked()), Ordering::Relaxed);
}

#[used]
#[link_section = ".init_array"]
static READ_SHOW_STATS_AT_LOAD: extern "C" fn() = read_show_stats_at_load;

/// Prints the statistics if `HOMING_SHOW_STATS` was set (and not `0`) when
/// the library was loaded.
extern "C" fn show_stats_at_exit() {
    // Relaxed: written once before `main`; exit runs after it.
    let show = match SHOW.load(Ordering::Relaxed) {
        UNREAD => show_stats_asked(),
        asked => asked == 1,
    };
    if show {
        homing_stats_print();
    }
}

/// Runs [`show_stats_at_exit`] at normal process exit.
#[used]
#[link_section = ".fini_array"]
static SHOW_STATS_AT_EXIT: extern "C" fn() = show_stats_at_exit;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_see_an_allocation() {
        let p = crate::family::homing_malloc(1000);
        let mut s = HomingStats::default();
        // SAFETY: a writable out-pointer; `p` is live.
        unsafe {
            homing_stats(&mut s);
            assert!(s.heaps >= 1 && s.live_blocks >= 1 && s.os_mapped > 0);
            crate::family::homing_free(p);
        }
        homing_collect();
    }
}
