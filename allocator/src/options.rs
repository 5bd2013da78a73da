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
//! | `HOMING_OUTBOX_BUDGET` | 256 | remote frees a thread collects before it posts them to their owners |
//! | `HOMING_KEEP_SEGMENTS` | 1 | empty segments a heap keeps mapped per page size (purged) instead of unmapping |
//! | `HOMING_BACKGROUND_PURGE` | 0 | 1 starts a background thread that purges free pages of idle heaps once their delay has passed (see `purge`) |
//!
//! The C ABI reads two more: `HOMING_SHOW_STATS` (print the statistics at
//! exit) and `HOMING_DEEPBIND` (`keep`: leave `RTLD_DEEPBIND` to `dlopen`).
//! [`configure`] sets the first four from code.

use crate::sync::plain::{AtomicUsize, Ordering};

/// Default purge delay: long enough that a page freed and reused within a
/// burst keeps its memory, short enough that RSS follows the live set.
pub const DEFAULT_PURGE_DELAY_MS: usize = 10;
/// Default outbox budget: at most 256 blocks held in flight per freeing
/// thread. The budget bounds how long the per-page runs grow (see
/// `remote`): a thread freeing blocks of mixed sizes spreads each batch
/// over a few dozen pages, and with 64 its runs were two or three blocks
/// long; with 256 the C `xmalloc` (2 threads) runs 0.19 s against 0.25–0.36 s
/// (mimalloc 0.17–0.21 s in the same run).
pub const DEFAULT_OUTBOX_BUDGET: usize = 256;
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

/// A setting made from code, overriding its `HOMING_*` variable (see
/// [`configure`]).
///
/// ```
/// let never_purge = homing::Setting::PurgeDelayMs(None);
/// assert_ne!(never_purge, homing::Setting::PurgeDelayMs(Some(0)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Setting {
    /// `HOMING_PURGE_DELAY_MS`: milliseconds a free page keeps its memory
    /// before it is purged; `Some(0)` purges at once, `None` never purges.
    PurgeDelayMs(Option<usize>),
    /// `HOMING_OUTBOX_BUDGET`: remote frees a thread collects before it
    /// posts them to their owners (at least 1).
    OutboxBudget(usize),
    /// `HOMING_KEEP_SEGMENTS`: empty segments a heap keeps per page size.
    KeepSegments(usize),
    /// `HOMING_BACKGROUND_PURGE`: a background thread purges idle heaps'
    /// free pages. Turning it on starts the thread at the next heap
    /// binding; turning it off stops no thread that already runs.
    BackgroundPurge(bool),
}

/// Sets an option from code, overriding the environment: what a program
/// that wants fixed settings (or cannot set its environment) calls, best
/// before its threads start allocating. Each setting takes effect from the
/// allocator's next use of it (the purge delay for pages retired from then
/// on, the budget at the next remote free, and so on); nothing already
/// done is undone.
///
/// ```
/// use homing::{configure, Setting};
///
/// configure(Setting::PurgeDelayMs(Some(50)));
/// configure(Setting::OutboxBudget(128));
/// let v = vec![0u8; 1 << 20];
/// drop(v);
/// configure(Setting::PurgeDelayMs(Some(10)));
/// ```
pub fn configure(setting: Setting) {
    // Relaxed: an option is a plain number; a thread that reads it a moment
    // late uses the old value once, which every option tolerates.
    match setting {
        Setting::PurgeDelayMs(ms) => {
            PURGE_DELAY_MS.store(ms.map_or(NEVER, |ms| ms.min(UNSET - 1)), Ordering::Relaxed)
        }
        Setting::OutboxBudget(n) => OUTBOX_BUDGET.store(n.clamp(1, UNSET - 1), Ordering::Relaxed),
        Setting::KeepSegments(n) => KEEP_SEGMENTS.store(n.min(UNSET - 1), Ordering::Relaxed),
        Setting::BackgroundPurge(on) => BACKGROUND_PURGE.store(usize::from(on), Ordering::Relaxed),
    }
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
