//! Options, read once from `HOMING_*` environment variables without
//! allocating (`getenv` on a C string literal, digits parsed by hand).
//!
//! They are read when the library is loaded (an ELF constructor, before
//! `main`), not at first use: some programs (PHP) clear their environment
//! later, and an option must not change its value in the middle of a run.
//! A read at first use remains the fallback where no constructor runs.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `HOMING_PURGE_DELAY_MS` | 10 | how long a free page keeps its memory before it is purged (`MADV_DONTNEED`); 0 purges at once; `-1` never purges |
//! | `HOMING_OUTBOX_BUDGET` | 64 | remote frees a thread collects before it posts them to their owners |
//! | `HOMING_KEEP_SEGMENTS` | 1 | empty segments a heap keeps mapped per page size (purged) instead of unmapping |
//! | `HOMING_BACKGROUND_PURGE` | 0 | 1 starts a background thread that purges free pages of idle heaps once their delay has passed (see `purge`) |

use crate::sync::plain::{AtomicUsize, Ordering};

/// Default purge delay: long enough that a page freed and reused within a
/// burst keeps its memory, short enough that RSS follows the live set.
pub const DEFAULT_PURGE_DELAY_MS: usize = 10;
/// Default outbox budget: one atomic exchange per 64 remote frees keeps the
/// owner's inbox traffic low while holding at most 64 blocks in flight.
pub const DEFAULT_OUTBOX_BUDGET: usize = 64;
/// Default segments kept: one per kind avoids mapping and unmapping 4 MiB
/// back and forth at a page boundary.
pub const DEFAULT_KEEP_SEGMENTS: usize = 1;
/// `purge_delay_ms` meaning "never purge".
pub const NEVER: usize = usize::MAX;

/// Not read yet.
const UNSET: usize = usize::MAX - 1;

static PURGE_DELAY_MS: AtomicUsize = AtomicUsize::new(UNSET);
static OUTBOX_BUDGET: AtomicUsize = AtomicUsize::new(UNSET);
static KEEP_SEGMENTS: AtomicUsize = AtomicUsize::new(UNSET);
static BACKGROUND_PURGE: AtomicUsize = AtomicUsize::new(UNSET);

/// Parses a decimal `usize` (or `-1` as [`NEVER`]) from a C string. (Unused
/// under Miri and loom, where the environment is not read.)
#[cfg_attr(any(miri, loom), allow(dead_code))]
fn parse(bytes: &[u8]) -> Option<usize> {
    if bytes == b"-1" {
        return Some(NEVER);
    }
    if bytes.is_empty() {
        return None;
    }
    let mut n: usize = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((b - b'0') as usize)?;
    }
    Some(n.min(UNSET - 1))
}

/// Reads `name` (NUL-terminated) from the environment as a number.
fn env(name: &[u8]) -> Option<usize> {
    crate::os::getenv(name).and_then(parse)
}

fn get(cell: &AtomicUsize, name: &[u8], default: usize) -> usize {
    // Relaxed: the value is a plain number derived from the environment;
    // two threads racing to read it compute the same result.
    let v = cell.load(Ordering::Relaxed);
    if v != UNSET {
        return v;
    }
    let v = env(name).unwrap_or(default);
    cell.store(v, Ordering::Relaxed);
    v
}

/// Milliseconds a free page waits before it is purged ([`NEVER`]: never).
pub fn purge_delay_ms() -> usize {
    get(
        &PURGE_DELAY_MS,
        b"HOMING_PURGE_DELAY_MS\0",
        DEFAULT_PURGE_DELAY_MS,
    )
}

/// Remote frees collected before posting.
pub fn outbox_budget() -> usize {
    get(
        &OUTBOX_BUDGET,
        b"HOMING_OUTBOX_BUDGET\0",
        DEFAULT_OUTBOX_BUDGET,
    )
    .max(1)
}

/// Empty segments kept per kind.
pub fn keep_segments() -> usize {
    get(
        &KEEP_SEGMENTS,
        b"HOMING_KEEP_SEGMENTS\0",
        DEFAULT_KEEP_SEGMENTS,
    )
}

/// `true` if a background thread purges idle heaps' free pages.
pub fn background_purge() -> bool {
    get(&BACKGROUND_PURGE, b"HOMING_BACKGROUND_PURGE\0", 0) != 0
}

/// Reads every option now. homing calls it when it is loaded; calling it
/// again does nothing.
pub fn init() {
    purge_delay_ms();
    outbox_budget();
    keep_segments();
    background_purge();
}

/// Reads the options when the library is loaded (see the module doc).
#[cfg(all(target_os = "linux", not(any(miri, loom))))]
#[used]
#[link_section = ".init_array"]
static READ_AT_LOAD: extern "C" fn() = read_at_load;

#[cfg(all(target_os = "linux", not(any(miri, loom))))]
extern "C" fn read_at_load() {
    init();
}

/// Monotonic milliseconds, for the purge delay.
#[inline]
pub(crate) fn now_ms() -> u64 {
    crate::os::monotonic_ms()
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_numbers_and_never() {
        assert_eq!(parse(b"0"), Some(0));
        assert_eq!(parse(b"250"), Some(250));
        assert_eq!(parse(b"-1"), Some(super::NEVER));
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"12ms"), None);
        assert_eq!(parse(b"99999999999999999999999"), None);
    }
}
