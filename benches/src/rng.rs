//! A tiny deterministic pseudo-random generator for the workloads.
//!
//! Every allocator must do *identical* work, so each workload thread draws
//! its sizes and choices from its own [`Rng`], seeded from the run's seed and
//! the thread's index ([`Rng::for_thread`]). The generator is SplitMix64:
//! one add, two multiplies and three xor-shifts per draw, no allocation, and
//! good enough statistics for picking sizes and slots.

/// The increment of SplitMix64's Weyl sequence (2^64 divided by the golden
/// ratio, made odd): consecutive states never repeat within 2^64 draws.
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's first output multiplier.
const MIX_1: u64 = 0xBF58_476D_1CE4_E5B9;

/// SplitMix64's second output multiplier.
const MIX_2: u64 = 0x94D0_49BB_1331_11EB;

/// A SplitMix64 generator: deterministic, `Copy`-free so a stream is never
/// duplicated by accident, and cheap enough not to show in a profile.
///
/// ```
/// use homing_bench::rng::Rng;
///
/// let mut a = Rng::new(7);
/// let mut b = Rng::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// let size = a.range_inclusive(16, 512);
/// assert!((16..=512).contains(&size));
/// ```
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose stream is fixed by `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The generator of thread `index` of a run seeded with `seed`: streams
    /// of different threads are unrelated, and the same for every allocator.
    pub fn for_thread(seed: u64, index: u64) -> Self {
        // Mixing the index through one draw keeps neighbouring threads'
        // states far apart instead of one Weyl step from each other.
        let mut mixer = Self::new(seed ^ index.wrapping_mul(GOLDEN_GAMMA));
        Self::new(mixer.next_u64())
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(MIX_1);
        z = (z ^ (z >> 27)).wrapping_mul(MIX_2);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`), by multiply-and-shift: the bias is at
    /// most `n / 2^64`, invisible at workload sizes.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0, "below(0) has no value to return");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// An index in `0..n` (`n > 0`).
    #[inline]
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// A number in `lo..=hi` (`lo <= hi`).
    #[inline]
    pub fn range_inclusive(&mut self, lo: usize, hi: usize) -> usize {
        debug_assert!(lo <= hi, "empty range {lo}..={hi}");
        lo + self.below((hi - lo) as u64 + 1) as usize
    }

    /// `true` with probability `percent / 100`.
    #[inline]
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn known_first_values() {
        // SplitMix64 from state 0: pinned so that a change to the generator
        // (which would change every workload) is a deliberate one.
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn threads_get_different_streams() {
        let mut a = Rng::for_thread(1, 0);
        let mut b = Rng::for_thread(1, 1);
        let a: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let b: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_ne!(a, b);
        let mut again = Rng::for_thread(1, 0);
        assert_eq!(a[0], again.next_u64());
    }

    #[test]
    fn ranges_stay_in_bounds_and_cover_them() {
        let mut r = Rng::new(9);
        let mut seen = [false; 5];
        for _ in 0..10_000 {
            let v = r.range_inclusive(10, 14);
            assert!((10..=14).contains(&v));
            seen[v - 10] = true;
            assert!(r.below(3) < 3);
        }
        assert!(
            seen.iter().all(|&s| s),
            "every value of a small range shows up"
        );
        assert_eq!(r.range_inclusive(7, 7), 7);
    }
}
