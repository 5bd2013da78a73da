//! Helpers shared by the fuzz targets: a byte pattern laid over a block and
//! checked later, a zero check, and a helper thread that runs jobs.
//!
//! The pattern covers the bytes a corruption is most likely to hit without
//! costing a full pass over huge blocks: the first and last [`EDGE`] bytes
//! and one byte every [`STRIDE`] in between, or at most [`INNER_POINTS`]
//! bytes in between in a larger block (so an enormous block, mapped but
//! never touched, stays address space: about a megabyte of it is written). Byte `i` of a block with seed
//! `s` is [`pattern_byte`]`(s, i)`, so any prefix of a block can be checked
//! after a resize that kept only that prefix.

use std::sync::mpsc;
use std::thread::JoinHandle;

/// Bytes at each end of a block that are always patterned and checked.
pub const EDGE: usize = 256;
/// Distance between patterned bytes inside a block, away from its ends, at
/// least: an OS page, so every page of an ordinary huge block is touched.
pub const STRIDE: usize = 4096;
/// Patterned bytes inside a block (away from its ends), at most.
pub const INNER_POINTS: usize = 256;

/// The pattern's byte at offset `i` of a block with seed `seed`.
pub fn pattern_byte(seed: u32, i: usize) -> u8 {
    let x = (seed as u64) ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x ^ (x >> 29) ^ (x >> 47)) as u8
}

/// Calls `f(i)` for every patterned offset `i` of a `len`-byte block, in
/// increasing order.
fn for_each_offset(len: usize, mut f: impl FnMut(usize)) {
    let head = len.min(EDGE);
    (0..head).for_each(&mut f);
    let tail = len.saturating_sub(EDGE).max(head);
    let stride = STRIDE.max(len / INNER_POINTS);
    let mut i = stride;
    while i < tail {
        f(i);
        i += stride;
    }
    (tail..len).for_each(f);
}

/// Writes the pattern of `seed` over the `len` bytes at `p`.
///
/// # Safety
///
/// `p` is valid for writes of `len` bytes.
pub unsafe fn fill(p: *mut u8, len: usize, seed: u32) {
    for_each_offset(len, |i| {
        // SAFETY: `i < len` (see `for_each_offset`).
        unsafe { p.add(i).write(pattern_byte(seed, i)) }
    });
}

/// Checks the pattern that `fill(p, len, seed)` wrote, on its offsets below
/// `upto` only (the prefix a resize kept); panics at the first wrong byte.
///
/// # Safety
///
/// `p` is valid for reads of `min(len, upto)` bytes.
pub unsafe fn verify(p: *const u8, len: usize, seed: u32, upto: usize, what: &str) {
    for_each_offset(len, |i| {
        if i < upto {
            // SAFETY: `i < min(len, upto)`.
            let got = unsafe { p.add(i).read() };
            assert_eq!(
                got,
                pattern_byte(seed, i),
                "{what}: block {p:p} ({len} bytes, seed {seed}) corrupted at byte {i}"
            );
        }
    });
}

/// Checks that the `len` bytes at `p` read as zero: all of the first 64 KiB,
/// then the patterned offsets.
///
/// # Safety
///
/// `p` is valid for reads of `len` bytes.
pub unsafe fn verify_zero(p: *const u8, len: usize, what: &str) {
    const FULL: usize = 64 << 10;
    let check = |i: usize| {
        // SAFETY: `i < len`.
        let got = unsafe { p.add(i).read() };
        assert_eq!(
            got, 0,
            "{what}: block {p:p} ({len} bytes) not zero at byte {i}"
        );
    };
    (0..len.min(FULL)).for_each(check);
    if len > FULL {
        for_each_offset(len, |i| {
            if i >= FULL {
                check(i)
            }
        });
    }
}

/// A job for a [`Helper`].
pub type Job = Box<dyn FnOnce() + Send>;

/// A thread that runs jobs one at a time; [`Helper::run`] waits for each to
/// finish, so the caller knows exactly what the other thread has done.
///
/// A job that panics aborts the process (libfuzzer-sys's panic hook), which
/// the fuzzer reports as a crash.
pub struct Helper {
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl Helper {
    /// Starts the thread.
    pub fn new() -> Helper {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            for job in rx {
                job();
                done_tx.send(()).unwrap();
            }
        });
        Helper {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        }
    }

    /// Runs `job` on the helper thread and waits until it has finished.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        self.start(job);
        self.wait();
    }

    /// Hands `job` to the helper thread without waiting; pair with [`wait`].
    ///
    /// [`wait`]: Helper::wait
    pub fn start(&self, job: impl FnOnce() + Send + 'static) {
        self.jobs.as_ref().unwrap().send(Box::new(job)).unwrap();
    }

    /// Waits for the oldest job handed over with [`start`] to finish.
    ///
    /// [`start`]: Helper::start
    pub fn wait(&self) {
        self.done.recv().unwrap();
    }
}

impl Default for Helper {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_round_trips_and_catches_a_flip() {
        for len in [0, 1, 255, 256, 257, 600, 5000, 100_000] {
            let mut v = vec![0u8; len];
            // SAFETY: `v` holds `len` bytes.
            unsafe {
                fill(v.as_mut_ptr(), len, 7);
                verify(v.as_ptr(), len, 7, len, "round trip");
            }
            if len > 0 {
                let last = len - 1;
                v[last] ^= 1;
                let r = std::panic::catch_unwind(|| {
                    // SAFETY: as above.
                    unsafe { verify(v.as_ptr(), len, 7, len, "flip") }
                });
                assert!(r.is_err(), "a flipped last byte went unseen ({len})");
                // SAFETY: as above; the flipped byte is outside the prefix.
                unsafe { verify(v.as_ptr(), len, 7, last, "prefix") };
            }
        }
    }
}
