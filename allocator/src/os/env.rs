//! The environment and the clock.

/// The value of the environment variable `name` (NUL-terminated), as
/// bytes; `None` if it is not set (and always under Miri and loom). The
/// bytes live as long as the environment entry: read them at once.
pub(crate) fn getenv(name: &[u8]) -> Option<&'static [u8]> {
    debug_assert_eq!(name.last(), Some(&0));
    #[cfg(any(miri, loom))]
    {
        let _ = name;
        None
    }
    #[cfg(not(any(miri, loom)))]
    // SAFETY: `name` is NUL-terminated; getenv returns null or a
    // NUL-terminated string that stays valid until the environment entry
    // changes (the callers read it at once, during start-up).
    unsafe {
        let value = libc::getenv(name.as_ptr().cast());
        if value.is_null() {
            return None;
        }
        Some(core::ffi::CStr::from_ptr(value).to_bytes())
    }
}

/// Monotonic milliseconds (0 under Miri and loom, where time stands still).
#[inline]
pub(crate) fn monotonic_ms() -> u64 {
    #[cfg(any(miri, loom))]
    {
        0
    }
    #[cfg(not(any(miri, loom)))]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC_COARSE always
        // exists on Linux (since 2.6.32), served from the vDSO with no system
        // call and no time-stamp read: the time of the last tick (1-4 ms
        // resolution), which the purge delays, in milliseconds, can afford
        // (CLOCK_MONOTONIC took 6% of a small-block C benchmark's time,
        // read at allocation slow paths).
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
    }
}
