//! Checked mode (feature `checked`): misuse detected on every free and
//! reported with a clear message on standard error, then `abort()`.
//!
//! - **Foreign pointer**: every live segment's base is in a global
//!   lock-free hash set; a pointer whose segment is not in it was not
//!   allocated by homing (or was already released with its segment).
//! - **Interior pointer**: a pointer that is not the start of its block.
//! - **Double free**: a free writes a mark (`FREED ^ address`) into the
//!   block's second word (every block has at least 16 bytes) and an
//!   allocation clears it; a free that finds the mark already there is a
//!   double free, whether the first free is on a free list or still in
//!   flight to the owner. User data matching the mark has odds of 2^-64.
//!
//! Messages are written with `write(2)` from a stack buffer: nothing here
//! allocates.

use crate::live_segments::is_registered;
use crate::segment::{self, Kind};

/// The double-free mark, xored with the block address.
const FREED: usize = 0xF7EE_D0B1_0C4E_D00D;

/// Checks that `p`, handed to `call` (`"free"`, `"realloc"`, ...), is the
/// start of a block in a live homing segment.
///
/// # Safety
///
/// `p` is non-null.
unsafe fn check_block(p: *mut u8, call: &str) {
    // SAFETY: we read the header only once the set says the segment is live.
    unsafe {
        let seg = segment::segment_of(p);
        if !is_registered(seg as usize) {
            fail(
                call,
                "of a pointer homing did not allocate (or already released)",
                p as usize,
            );
        }
        let start = if (*seg).kind == Kind::Huge {
            (*seg).huge_block
        } else {
            let page = segment::page_of(seg, p);
            if !(*page).in_use || (*page).start.is_null() || p < (*page).start {
                fail(
                    call,
                    "of a pointer in an unused page (double free?)",
                    p as usize,
                );
            }
            (*page).block_start(p)
        };
        if start != p {
            fail(call, "of a pointer into the middle of a block", p as usize);
        }
    }
}

/// Checks that `p`, handed to `call` (`"realloc"`, `"usable_size"`), is a
/// live block start: reports foreign, interior and already-freed pointers,
/// naming the call.
///
/// # Safety
///
/// `p` is non-null.
pub(crate) unsafe fn check_live(p: *mut u8, call: &str) {
    // SAFETY: `check_block` validates `p` before we read its second word.
    unsafe {
        check_block(p, call);
        if p.cast::<usize>().add(1).read() == FREED ^ p as usize {
            fail(call, "of a freed block (use after free)", p as usize);
        }
    }
}

/// Checks a pointer about to be freed, and marks it freed.
///
/// # Safety
///
/// `p` is non-null. (Everything else is what we check.)
pub(crate) unsafe fn check_free(p: *mut u8) {
    // SAFETY: `check_block` validates `p` before we touch the block.
    unsafe {
        check_block(p, "free");
        let mark = p.cast::<usize>().add(1);
        if mark.read() == FREED ^ p as usize {
            fail("double", "free", p as usize);
        }
        mark.write(FREED ^ p as usize);
    }
}

/// Clears the double-free mark of a block being handed out.
///
/// # Safety
///
/// `p` is a block of at least 16 bytes, now the caller's.
#[inline(always)]
pub(crate) unsafe fn clear_mark(p: *mut u8) {
    // SAFETY: the block is ours and has a second word.
    unsafe { p.cast::<usize>().add(1).write(0) };
}

/// Reports misuse of `call` and aborts (see `os::fatal`).
#[cold]
fn fail(call: &str, what: &str, p: usize) -> ! {
    crate::os::fatal(&[call, " ", what], "pointer", p)
}
