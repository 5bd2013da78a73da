//! Helpers shared by the integration tests: a small deterministic PRNG,
//! block cookies, statistics settling and RSS readings.
//!
//! Every test binary that measures `homing::stats()` runs a single
//! `#[test]`: the harness's own allocations (spawning the next test, storing
//! a finished test's output) would otherwise land inside the measuring
//! window of a test running in parallel.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

/// SplitMix64: tiny, fast, deterministic; good enough to pick sizes.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// `true` with probability `percent` / 100.
    pub fn percent(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// A size spread evenly over the powers of two in `[2^lo, 2^hi)`:
    /// small sizes as likely per octave as large ones, like real programs.
    pub fn log_size(&mut self, lo: u32, hi: u32) -> usize {
        let e = lo + self.below((hi - lo) as usize) as u32;
        self.range(1 << e, (1 << (e + 1)) - 1)
    }
}

/// The SplitMix64 finaliser: a bijective 64-bit hash.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------
// Cookies
// ---------------------------------------------------------------------

/// Bits of the header word that hold the block's size (up to 2 MiB - 1).
pub const SIZE_BITS: u32 = 21;
/// Largest size a cookie can describe.
pub const COOKIE_MAX_SIZE: usize = (1 << SIZE_BITS) - 1;
/// Smallest size that holds a cookie (the header word).
pub const COOKIE_MIN_SIZE: usize = 8;

/// A cookie laid over a block:
///
/// - word 0: `size | serial << SIZE_BITS` (always);
/// - word 1: `hash(address, word 0)` (if `size >= 16`);
/// - the last 8 bytes: `!hash(address, word 0)` (if `size >= 24`).
///
/// The serial is unique per allocation, so a block handed out twice while
/// live, or freed twice, shows up as a wrong hash or a serial already dead
/// (see [`Liveness`]).
pub fn cookie_hash(addr: usize, word0: u64) -> u64 {
    mix(addr as u64 ^ word0.rotate_left(17) ^ 0xC0FF_EE00_D15E_A5E5)
}

/// Writes the cookie of allocation `serial` (`size` bytes) at `p`.
///
/// # Safety
///
/// `p` is valid for writes of `size` bytes, aligned to 8, and
/// `COOKIE_MIN_SIZE <= size <= COOKIE_MAX_SIZE`.
pub unsafe fn write_cookie(p: *mut u8, size: usize, serial: u64) {
    assert!((COOKIE_MIN_SIZE..=COOKIE_MAX_SIZE).contains(&size));
    let word0 = size as u64 | serial << SIZE_BITS;
    let h = cookie_hash(p as usize, word0);
    // SAFETY: the caller gives us `size` writable bytes at an 8-aligned `p`;
    // each write lies inside them (guarded by `size`).
    unsafe {
        p.cast::<u64>().write(word0);
        if size >= 16 {
            p.cast::<u64>().add(1).write(h);
        }
        if size >= 24 {
            p.add(size - 8).cast::<u64>().write_unaligned(!h);
        }
    }
}

/// Checks the cookie at `p` and returns `(size, serial)`; panics with what
/// is wrong otherwise.
///
/// # Safety
///
/// `p` is a live block that received a cookie from [`write_cookie`] (if
/// the allocator is correct) and is still readable for its size.
pub unsafe fn check_cookie(p: *mut u8) -> (usize, u64) {
    // SAFETY: the header word is always there (size >= 8); its size field
    // tells us which further words were written, and we read only those.
    unsafe {
        let word0 = p.cast::<u64>().read();
        let size = (word0 & ((1 << SIZE_BITS) - 1)) as usize;
        let serial = word0 >> SIZE_BITS;
        assert!(
            (COOKIE_MIN_SIZE..=COOKIE_MAX_SIZE).contains(&size),
            "block {p:p}: header {word0:#x} holds no valid size"
        );
        let h = cookie_hash(p as usize, word0);
        if size >= 16 {
            let got = p.cast::<u64>().add(1).read();
            assert_eq!(
                got, h,
                "block {p:p} (size {size}, serial {serial}): head cookie overwritten"
            );
        }
        if size >= 24 {
            let got = p.add(size - 8).cast::<u64>().read_unaligned();
            assert_eq!(
                got, !h,
                "block {p:p} (size {size}, serial {serial}): tail cookie overwritten"
            );
        }
        (size, serial)
    }
}

/// Overwrites a cookie before the block is freed, so a stale pointer to it
/// no longer checks out.
///
/// # Safety
///
/// As for [`write_cookie`].
pub unsafe fn poison_cookie(p: *mut u8, size: usize) {
    // SAFETY: forwarded: `size` writable bytes at an 8-aligned `p`.
    unsafe {
        p.cast::<u64>().write(u64::MAX);
        if size >= 16 {
            p.cast::<u64>().add(1).write(0xDEAD_DEAD_DEAD_DEAD);
        }
    }
}

/// One bit per allocation serial: set while the allocation is live.
pub struct Liveness {
    bits: Vec<AtomicU64>,
}

impl Liveness {
    pub fn new(serials: u64) -> Liveness {
        Liveness {
            bits: (0..serials.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    /// Marks `serial` live; panics if it already was.
    pub fn born(&self, serial: u64) {
        let (w, b) = ((serial / 64) as usize, 1u64 << (serial % 64));
        // Relaxed: the bit's own history is all that matters (one RMW order
        // per word); the block that carries the serial travels with its own
        // synchronisation.
        let old = self.bits[w].fetch_or(b, Ordering::Relaxed);
        assert_eq!(old & b, 0, "serial {serial} born twice");
    }

    /// Marks `serial` dead; panics if it was not live (a double free or a
    /// block handed out twice).
    pub fn dies(&self, serial: u64) {
        let (w, b) = ((serial / 64) as usize, 1u64 << (serial % 64));
        // Relaxed: as in `born`.
        let old = self.bits[w].fetch_and(!b, Ordering::Relaxed);
        assert_ne!(
            old & b,
            0,
            "serial {serial} freed twice (or its block was handed out twice)"
        );
    }

    /// Serials still live.
    pub fn count_live(&self) -> u32 {
        // Relaxed: read after all writers were joined.
        self.bits
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones())
            .sum()
    }
}

/// Allocates a `size`-byte block from homing with a cookie (see
/// [`write_cookie`]), as a `usize` so it can be sent between threads.
pub fn cookie_block(size: usize, serial: u64) -> usize {
    let p = homing::alloc(size, 16);
    assert!(!p.is_null(), "out of memory for {size} bytes");
    // SAFETY: a fresh, 16-aligned block of `size` bytes.
    unsafe { write_cookie(p, size, serial) };
    p as usize
}

/// Checks a cookie block, poisons it and frees it.
///
/// # Safety
///
/// `addr` is a live block from [`cookie_block`], given up by the caller.
pub unsafe fn free_cookie_block(addr: usize) {
    let p = addr as *mut u8;
    // SAFETY: forwarded from the caller.
    unsafe {
        let (size, _) = check_cookie(p);
        poison_cookie(p, size);
        homing::free(p);
    }
}

// ---------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------

/// Makes std allocate what it keeps for a thread's lifetime before a test
/// takes its baseline: a channel's blocking receive caches a wake-up
/// context (an `Arc`, 48 bytes) in a thread-local that lives until the
/// thread exits. The receive times out at once: nothing is timed.
pub fn warm_up() {
    let (_tx, rx) = std::sync::mpsc::channel::<()>();
    let _ = rx.recv_timeout(std::time::Duration::from_millis(1));
    let (_tx, rx) = std::sync::mpsc::sync_channel::<()>(0);
    let _ = rx.recv_timeout(std::time::Duration::from_millis(1));
    std::thread::spawn(|| {}).join().unwrap();
}

/// Posts this thread's outbox, drains its inbox, then snapshots the stats.
pub fn settled() -> homing::Stats {
    homing::collect();
    homing::stats()
}

/// Address space heaps hold: mapped, minus released segments kept in the
/// segment cache (purged, reusable by any heap).
pub fn in_use(s: &homing::Stats) -> usize {
    s.os_mapped - s.os_cached
}

/// Panics unless live blocks and bytes are back at `base`.
pub fn assert_balanced(base: &homing::Stats, now: &homing::Stats, what: &str) {
    assert!(
        now.live_blocks == base.live_blocks && now.live_bytes == base.live_bytes,
        "{what}: live set not back to baseline: {} blocks / {} bytes now, {} / {} before\n\
         before: {base}\nnow: {now}",
        now.live_blocks as isize,
        now.live_bytes as isize,
        base.live_blocks,
        base.live_bytes,
    );
    assert_eq!(
        now.huge_blocks, base.huge_blocks,
        "{what}: huge blocks left"
    );
}

// ---------------------------------------------------------------------
// RSS
// ---------------------------------------------------------------------

/// A `kB` field of `/proc/self/status`, in bytes.
fn status_field(name: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(name))?;
    let kib: usize = line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Whether the process's RSS says anything about homing: not under Miri
/// (no `/proc`), nor under ThreadSanitizer (`.ci/tsan` builds with
/// `--cfg homing_tsan`), whose shadow memory and access history grow with
/// every byte the program touches and make up most of the RSS.
fn rss_meaningful() -> bool {
    !cfg!(miri) && !cfg!(homing_tsan)
}

/// Peak resident set (`VmHWM`), in bytes; `None` where unavailable or
/// meaningless (see `rss_meaningful`).
pub fn peak_rss() -> Option<usize> {
    if !rss_meaningful() {
        return None;
    }
    status_field("VmHWM:")
}

/// Current resident set (`VmRSS`), in bytes; `None` as for [`peak_rss`].
pub fn current_rss() -> Option<usize> {
    if !rss_meaningful() {
        return None;
    }
    status_field("VmRSS:")
}

/// Resets `VmHWM` to the current RSS (`echo 5 > /proc/self/clear_refs`,
/// Linux 4.0+). `false` if the kernel or sandbox does not allow it, in which
/// case `VmHWM` remains the peak over the process's life.
pub fn reset_peak_rss() -> bool {
    rss_meaningful() && std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Bytes in mebibytes, for messages.
pub fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Allocates `count` blocks of `size` bytes with `homing::alloc` and writes
/// all of each (so its memory is resident); returns their addresses.
pub fn filled_blocks(count: usize, size: usize) -> Vec<usize> {
    (0..count)
        .map(|i| {
            let p = homing::alloc(size, 16);
            assert!(!p.is_null());
            // SAFETY: a fresh block of `size` bytes: touch all of it.
            unsafe { p.write_bytes(i as u8, size) };
            p as usize
        })
        .collect()
}
