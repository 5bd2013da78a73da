//! Checked mode's set of live segments: every segment's base, from the
//! moment it is made until it is released, in a lock-free hash set (open
//! addressing, tombstones), so `checked` can tell a pointer homing handed
//! out from a foreign one before it reads any header. Addresses only: it
//! sits below `segment`, which registers and unregisters its segments.

use crate::sync::plain::{AtomicUsize, Ordering};

/// Slots in the segment set: room for 64 Ki segments (256 GiB of pages),
/// 512 KiB of zero pages, touched only where used.
const SET_SLOTS: usize = 1 << 16;
/// A slot whose segment was released (probing goes on past it).
const TOMBSTONE: usize = 1;

static SEGMENTS: [AtomicUsize; SET_SLOTS] = [const { AtomicUsize::new(0) }; SET_SLOTS];

fn slot_of(base: usize) -> usize {
    // Fibonacci hashing of the address (segment bases are 4 MiB aligned:
    // the product's upper half mixes the segment number's bits).
    (base.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % SET_SLOTS
}

/// Records a new segment.
pub(crate) fn register(base: usize) {
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
    crate::os::fatal(&["checked mode: the segment set is full"], "segment", base);
}

/// Forgets a segment that is being released.
pub(crate) fn unregister(base: usize) {
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

pub(crate) fn is_registered(base: usize) -> bool {
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
