//! Replays an arbitrary sequence of C malloc-family calls (the `homing_*`
//! functions of `homing-capi`, called as Rust functions) against a shadow
//! model of the live blocks: their requested and usable sizes, alignment
//! and contents.
//!
//! Checked on every call:
//!
//! - a successful allocation is aligned (16, or the alignment asked for),
//!   `homing_usable_size` is at least the size asked for, and every usable
//!   byte may be written (the pattern covers the last usable bytes);
//! - `calloc` memory reads as zero; `realloc` keeps the first
//!   `min(old usable, new size)` bytes; a failed `realloc` leaves the block
//!   live and intact;
//! - failures: a size above `PTRDIFF_MAX` or an overflowing product always
//!   fails with `errno = ENOMEM`; sizes up to 8 MiB never fail; sizes in
//!   between (up to 2^46) may fail (overcommit), but only with `ENOMEM`;
//!   `aligned_alloc` with an alignment that is not a power of two either
//!   fails with `EINVAL` or rounds the alignment up (glibc's choice);
//!   `posix_memalign` reports through its result and never touches `errno`
//!   or, on failure, `*out`; `free` and `realloc(p, 0)` never change
//!   `errno`;
//! - blocks are freed here, on a helper thread, or by `realloc(p, 0)`.
//!
//! The crate is built without its `malloc` feature, so the standard names
//! are not interposed and the fuzzer's own C allocations stay with the
//! system allocator; Rust's allocations (the model) go to homing.
#![no_main]

use core::ffi::c_void;
use std::sync::mpsc;

use arbitrary::Arbitrary;
use capi::family::{
    homing_aligned_alloc, homing_calloc, homing_free, homing_malloc, homing_posix_memalign,
    homing_realloc, homing_reallocarray, homing_usable_size,
};
use homing_fuzz::{fill, verify, verify_zero};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

/// `alignof(max_align_t)`: every block is aligned at least to this.
const MALLOC_ALIGN: usize = 16;
/// Sizes up to this must always be served.
const ALWAYS_FITS: usize = 8 << 20;
/// Sizes up to this may be served or refused (overcommit).
const MAY_FIT: usize = 1 << 46;
/// A value `errno` never takes by itself.
const SENTINEL: i32 = 0x4242;

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Size {
    kind: u8,
    raw: u64,
}

impl Size {
    /// Small, medium, huge, enormous (may fail), impossible (above
    /// `PTRDIFF_MAX`), or a size just around `PTRDIFF_MAX`.
    fn get(self) -> usize {
        let r = self.raw as usize;
        match self.kind % 16 {
            0..=6 => r % 1025,
            7..=9 => r % (128 << 10),
            10..=11 => r % ALWAYS_FITS,
            12 => (1 << 30) + r % MAY_FIT,
            13 => isize::MAX as usize + 1 + r % (1 << 62),
            14 => (isize::MAX as usize)
                .wrapping_sub(r % 8192)
                .wrapping_add(r % 3),
            _ => r,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Malloc {
        size: Size,
    },
    /// `calloc(count, size)`: small factors, factors whose product
    /// overflows, or any two words.
    Calloc {
        kind: u8,
        count: u64,
        size: u64,
    },
    Realloc {
        index: u16,
        size: Size,
    },
    ReallocNull {
        size: Size,
    },
    ReallocZero {
        index: u16,
    },
    ReallocArray {
        index: u16,
        null: bool,
        count: u32,
        size: Size,
    },
    /// `aligned_alloc`: a power of two (2^`align`, ≤ 2^23) unless `odd`,
    /// then any word (0 and non-powers of two included).
    AlignedAlloc {
        align: u32,
        odd: bool,
        size: Size,
    },
    /// `posix_memalign`, alignments as for `AlignedAlloc`.
    PosixMemalign {
        align: u32,
        odd: bool,
        size: Size,
    },
    Free {
        index: u16,
    },
    FreeNull,
    FreeRemote {
        index: u16,
    },
    UsableSize {
        index: u16,
    },
}

struct Live {
    addr: usize,
    /// Size asked for.
    size: usize,
    /// `homing_usable_size` at allocation; all of it is patterned (see
    /// `homing_fuzz`: an enormous block gets about a megabyte written).
    usable: usize,
    seed: u32,
}

impl Live {
    fn verify(&self, upto: usize, what: &str) {
        // SAFETY: the model's blocks are live with `usable` bytes.
        unsafe { verify(self.addr as *const u8, self.usable, self.seed, upto, what) };
    }
}

fn errno() -> i32 {
    // SAFETY: the calling thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn set_errno(v: i32) {
    // SAFETY: the calling thread's errno slot.
    unsafe { *libc::__errno_location() = v }
}

/// What the contract says an allocation of `size` bytes must do.
#[derive(PartialEq, Eq, Debug)]
enum Expect {
    Succeed,
    /// Succeed, or fail with `ENOMEM`.
    Either,
    /// Fail with `ENOMEM`.
    Fail,
}

fn expect(size: usize) -> Expect {
    if size <= ALWAYS_FITS {
        Expect::Succeed
    } else if size <= MAY_FIT {
        Expect::Either
    } else if size > isize::MAX as usize {
        Expect::Fail
    } else {
        // Between 2^46 and PTRDIFF_MAX: no machine has it, but the contract
        // only says the size is possible.
        Expect::Either
    }
}

/// The model's state for one run.
struct Model {
    live: Vec<Live>,
    seed: u32,
}

impl Model {
    /// Checks a fresh block `p` (or a failure) against what was expected;
    /// patterns and records a block. `align` is the alignment promised,
    /// `zero` whether its first `size` bytes must read as zero.
    fn took(
        &mut self,
        p: *mut c_void,
        size: usize,
        align: usize,
        zero: bool,
        exp: Expect,
        what: &str,
    ) {
        if p.is_null() {
            assert_ne!(exp, Expect::Succeed, "{what}({size}) failed");
            assert_eq!(
                errno(),
                libc::ENOMEM,
                "{what}({size}) failed without ENOMEM"
            );
            return;
        }
        assert_ne!(exp, Expect::Fail, "{what}({size:#x}) succeeded");
        self.record(p, size, align, zero, what);
    }

    fn record(&mut self, p: *mut c_void, size: usize, align: usize, zero: bool, what: &str) {
        assert_eq!(
            p as usize % align,
            0,
            "{what}({size}): {p:p} not aligned to {align}"
        );
        // SAFETY: a live block.
        let usable = unsafe { homing_usable_size(p) };
        assert!(usable >= size, "{what}({size}): usable size {usable}");
        if zero {
            // SAFETY: the block holds `size` bytes.
            unsafe { verify_zero(p.cast(), size, what) };
        }
        self.seed = self.seed.wrapping_add(1);
        // SAFETY: every usable byte may be written.
        unsafe { fill(p.cast(), usable, self.seed) };
        self.live.push(Live {
            addr: p as usize,
            size,
            usable,
            seed: self.seed,
        });
    }

    fn pick(&self, index: u16) -> Option<usize> {
        (!self.live.is_empty()).then(|| index as usize % self.live.len())
    }

    /// `realloc` of live block `i` (or null) to `size`, checked.
    fn realloc(
        &mut self,
        i: Option<usize>,
        mut size: usize,
        mut via_array: Option<(usize, usize)>,
    ) {
        let old = i.map(|i| &self.live[i]);
        if let Some(l) = old {
            // Moving an enormous block to another enormous size copies all
            // of it (address space becomes memory): keep such moves to an
            // ordinary size. Impossible sizes are still tried.
            if l.usable > ALWAYS_FITS && size > ALWAYS_FITS && size <= isize::MAX as usize {
                size = size % ALWAYS_FITS + 1;
                via_array = None;
            }
        }
        if let Some(l) = old {
            l.verify(l.usable, "before realloc");
        }
        let p = old.map_or(core::ptr::null_mut(), |l| l.addr as *mut c_void);
        set_errno(SENTINEL);
        let q = match via_array {
            // SAFETY: `p` is null or a live block.
            Some((count, each)) => unsafe { homing_reallocarray(p, count, each) },
            // SAFETY: `p` is null or a live block.
            None => unsafe { homing_realloc(p, size) },
        };
        let overflow = via_array.is_some_and(|(c, e)| c.checked_mul(e).is_none());
        let Some(i) = i else {
            let exp = if overflow { Expect::Fail } else { expect(size) };
            self.took(q, size, MALLOC_ALIGN, false, exp, "realloc(NULL)");
            return;
        };
        if size == 0 && !overflow {
            // glibc's policy: the block is freed, null comes back, errno kept.
            assert!(q.is_null(), "realloc(p, 0) returned a block");
            assert_eq!(errno(), SENTINEL, "realloc(p, 0) changed errno");
            self.live.swap_remove(i);
            return;
        }
        if q.is_null() {
            let exp = if overflow { Expect::Fail } else { expect(size) };
            assert_ne!(exp, Expect::Succeed, "realloc to {size} failed");
            assert_eq!(errno(), libc::ENOMEM, "realloc failed without ENOMEM");
            let l = &self.live[i];
            l.verify(l.usable, "after a failed realloc");
            // SAFETY: the block is still live.
            let usable = unsafe { homing_usable_size(l.addr as *mut c_void) };
            assert_eq!(usable, l.usable, "a failed realloc changed the block");
            return;
        }
        assert!(
            !overflow,
            "reallocarray with an overflowing product succeeded"
        );
        assert_ne!(expect(size), Expect::Fail, "realloc to {size:#x} succeeded");
        let l = self.live.swap_remove(i);
        let kept = l.usable.min(size);
        // SAFETY: the new block holds `size >= kept` bytes; the old pattern
        // is checked only where it was kept.
        unsafe { verify(q.cast(), l.usable, l.seed, kept, "after realloc") };
        self.record(q, size, MALLOC_ALIGN, false, "realloc");
    }
}

/// An alignment for `aligned_alloc` / `posix_memalign`.
fn alignment(align: u32, odd: bool) -> usize {
    if odd {
        align as usize
    } else {
        1 << (align % 24)
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let (tx, rx) = mpsc::channel::<usize>();
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let helper = std::thread::spawn(move || {
        for p in rx {
            set_errno(SENTINEL);
            // SAFETY: each pointer sent is a live block its sender gave up.
            unsafe { homing_free(p as *mut c_void) };
            assert_eq!(errno(), SENTINEL, "free on another thread changed errno");
            ack_tx.send(()).unwrap();
        }
    });
    let mut m = Model {
        live: Vec::new(),
        seed: 0,
    };
    for op in ops {
        match op {
            Op::Malloc { size } => {
                let size = size.get();
                set_errno(SENTINEL);
                let p = homing_malloc(size);
                m.took(p, size, MALLOC_ALIGN, false, expect(size), "malloc");
            }
            Op::Calloc { kind, count, size } => {
                let (count, size) = match kind % 3 {
                    0 => (count as usize % 1025, size as usize % 1025),
                    1 => (
                        (1 << 33) + count as usize % (1 << 20),
                        (1 << 31) + size as usize % (1 << 20),
                    ),
                    _ => (count as usize, size as usize),
                };
                set_errno(SENTINEL);
                let p = homing_calloc(count, size);
                let exp = count.checked_mul(size).map_or(Expect::Fail, expect);
                let total = count.wrapping_mul(size);
                m.took(p, total, MALLOC_ALIGN, true, exp, "calloc");
            }
            Op::Realloc { index, size } => {
                if let Some(i) = m.pick(index) {
                    m.realloc(Some(i), size.get(), None);
                }
            }
            Op::ReallocNull { size } => m.realloc(None, size.get(), None),
            Op::ReallocZero { index } => {
                if let Some(i) = m.pick(index) {
                    m.realloc(Some(i), 0, None);
                }
            }
            Op::ReallocArray {
                index,
                null,
                count,
                size,
            } => {
                let i = if null { None } else { m.pick(index) };
                let (count, each) = (count as usize, size.get());
                m.realloc(i, count.wrapping_mul(each), Some((count, each)));
            }
            Op::AlignedAlloc { align, odd, size } => {
                let (align, size) = (alignment(align, odd), size.get());
                set_errno(SENTINEL);
                let p = homing_aligned_alloc(align, size);
                if align.is_power_of_two() {
                    m.took(
                        p,
                        size,
                        align.max(MALLOC_ALIGN),
                        false,
                        expect(size),
                        "aligned_alloc",
                    );
                } else if p.is_null() {
                    // Refused for its alignment (or its size).
                    let e = errno();
                    assert!(
                        e == libc::EINVAL || (e == libc::ENOMEM && expect(size) != Expect::Succeed),
                        "aligned_alloc({align}, {size}) failed with errno {e}"
                    );
                } else {
                    // Rounded up, as glibc does.
                    let rounded = align
                        .checked_next_power_of_two()
                        .unwrap_or(1)
                        .max(MALLOC_ALIGN);
                    assert_ne!(
                        expect(size),
                        Expect::Fail,
                        "aligned_alloc({align}, {size:#x}) succeeded"
                    );
                    m.record(p, size, rounded, false, "aligned_alloc (rounded alignment)");
                }
            }
            Op::PosixMemalign { align, odd, size } => {
                let (align, size) = (alignment(align, odd), size.get());
                let mut out = 0x5EED as *mut c_void;
                set_errno(SENTINEL);
                // SAFETY: a valid out-pointer.
                let rc = unsafe { homing_posix_memalign(&mut out, align, size) };
                assert_eq!(errno(), SENTINEL, "posix_memalign changed errno");
                let valid = align.is_power_of_two() && align % core::mem::size_of::<usize>() == 0;
                if rc == 0 {
                    assert!(valid, "posix_memalign accepted alignment {align}");
                    assert_ne!(
                        expect(size),
                        Expect::Fail,
                        "posix_memalign of {size:#x} succeeded"
                    );
                    m.record(out, size, align.max(MALLOC_ALIGN), false, "posix_memalign");
                } else {
                    assert_eq!(
                        out, 0x5EED as *mut c_void,
                        "a failed posix_memalign wrote *out"
                    );
                    if valid {
                        assert_eq!(rc, libc::ENOMEM, "posix_memalign({align}, {size})");
                        assert_ne!(
                            expect(size),
                            Expect::Succeed,
                            "posix_memalign({align}, {size}) failed"
                        );
                    } else {
                        assert_eq!(rc, libc::EINVAL, "posix_memalign with alignment {align}");
                    }
                }
            }
            Op::Free { index } => {
                if let Some(i) = m.pick(index) {
                    let l = m.live.swap_remove(i);
                    l.verify(l.usable, "before free");
                    set_errno(SENTINEL);
                    // SAFETY: a live block, freed once.
                    unsafe { homing_free(l.addr as *mut c_void) };
                    assert_eq!(errno(), SENTINEL, "free changed errno");
                }
            }
            Op::FreeNull => {
                set_errno(SENTINEL);
                // SAFETY: null is always allowed.
                unsafe { homing_free(core::ptr::null_mut()) };
                assert_eq!(errno(), SENTINEL, "free(NULL) changed errno");
            }
            Op::FreeRemote { index } => {
                if let Some(i) = m.pick(index) {
                    let l = m.live.swap_remove(i);
                    l.verify(l.usable, "before remote free");
                    tx.send(l.addr).unwrap();
                    ack_rx.recv().unwrap();
                }
            }
            Op::UsableSize { index } => {
                if let Some(i) = m.pick(index) {
                    let l = &m.live[i];
                    // SAFETY: a live block.
                    let u = unsafe { homing_usable_size(l.addr as *mut c_void) };
                    assert_eq!(u, l.usable, "usable size changed while the block lived");
                    assert!(u >= l.size);
                    l.verify(l.usable, "usable size");
                }
            }
        }
    }
    for l in m.live.drain(..) {
        l.verify(l.usable, "at the end");
        // SAFETY: a live block, freed once.
        unsafe { homing_free(l.addr as *mut c_void) };
    }
    // SAFETY: null is always allowed.
    assert_eq!(unsafe { homing_usable_size(core::ptr::null_mut()) }, 0);
    drop(tx);
    helper.join().unwrap();
});
