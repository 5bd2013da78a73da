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

use crate::segment::{self, Kind, Segment, SEGMENT_SHIFT};
use crate::sync::plain::{AtomicUsize, Ordering};

/// Slots in the segment set: room for 64 Ki segments (256 GiB of pages),
/// 512 KiB of zero pages, touched only where used.
const SET_SLOTS: usize = 1 << 16;
/// A slot whose segment was released (probing goes on past it).
const TOMBSTONE: usize = 1;
/// The double-free mark, xored with the block address.
const FREED: usize = 0xF7EE_D0B1_0C4E_D00D;

static SEGMENTS: [AtomicUsize; SET_SLOTS] = [const { AtomicUsize::new(0) }; SET_SLOTS];

fn slot_of(base: usize) -> usize {
    // Fibonacci hashing of the segment number.
    ((base >> SEGMENT_SHIFT).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % SET_SLOTS
}

/// Records a new segment.
pub(crate) fn register(seg: *mut Segment) {
    let base = seg as usize;
    let mut i = slot_of(base);
    for _ in 0..SET_SLOTS {
        let cur = SEGMENTS[i].load(Ordering::Relaxed);
        // Relaxed is enough: the set is checked only for pointers the
        // checking thread received through its own synchronisation with the
        // allocating thread, which happened after this insert.
        if (cur == 0 || cur == TOMBSTONE)
            && SEGMENTS[i]
                .compare_exchange(cur, base, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return;
        }
        i = (i + 1) % SET_SLOTS;
    }
    fail("checked mode:", "the segment set is full", 0);
}

/// Forgets a segment that is being released.
pub(crate) fn unregister(seg: *mut Segment) {
    let base = seg as usize;
    let mut i = slot_of(base);
    for _ in 0..SET_SLOTS {
        // Relaxed: see `register`.
        match SEGMENTS[i].load(Ordering::Relaxed) {
            0 => return,
            b if b == base => {
                SEGMENTS[i].store(TOMBSTONE, Ordering::Relaxed);
                return;
            }
            _ => i = (i + 1) % SET_SLOTS,
        }
    }
}

fn is_registered(base: usize) -> bool {
    let mut i = slot_of(base);
    for _ in 0..SET_SLOTS {
        // Relaxed: see `register`.
        match SEGMENTS[i].load(Ordering::Relaxed) {
            0 => return false,
            b if b == base => return true,
            _ => i = (i + 1) % SET_SLOTS,
        }
    }
    false
}

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

/// Writes "homing: <call> <what> (pointer 0x...)" to standard error and
/// aborts.
#[cold]
fn fail(call: &str, what: &str, p: usize) -> ! {
    let mut buf = [0u8; 160];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        for &b in bytes {
            if n < buf.len() {
                buf[n] = b;
                n += 1;
            }
        }
    };
    put(b"homing: ");
    put(call.as_bytes());
    put(b" ");
    put(what.as_bytes());
    put(b" (pointer 0x");
    for shift in (0..16).rev() {
        put(&[b"0123456789abcdef"[(p >> (shift * 4)) & 0xF]]);
    }
    put(b")\n");
    // SAFETY: writing our own stack buffer to fd 2, then aborting.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), n);
        libc::abort()
    }
}
