//! Size classes: which block size serves a request.
//!
//! # The table
//!
//! - Classes `0..8` step by 16 bytes: 16, 32, …, 128. Every block of every
//!   class is a multiple of 16 bytes, so every block is 16-byte aligned (the
//!   C ABI's `malloc` promise); that is why there is nothing finer than 16.
//! - Above 128 bytes, eight classes per power of two: `2^k + j·2^(k-3)`
//!   for `j = 1..=8`, up to [`MEDIUM_MAX`] (128 KiB).
//!
//! Worst-case internal waste, `(class - size) / size`, measured by the tests
//! below: under 12.5% above 128 bytes; under 25% above 64 bytes
//! (65 B → 80 B is 23%: the 16-byte step is the C alignment floor); below 64
//! bytes the 16-byte step dominates (17 B → 32 B).
//!
//! The issue asked for "about four classes per power of two" and "at most
//! 12.5% waste above 64 bytes"; four per power of two cannot give 12.5%, so
//! we use eight above 128 B (as jemalloc's finer spacing does), which costs a
//! few more partially filled pages per heap.
//!
//! # Pages
//!
//! Classes up to [`SMALL_MAX`] (8 KiB) live in small pages (64 KiB), the rest
//! up to [`MEDIUM_MAX`] in medium pages (512 KiB); larger requests go straight
//! to the OS layer as *huge* blocks.
//!
//! # Lookup
//!
//! Size → class is one byte-table load for sizes up to [`SMALL_MAX`] (the
//! fast path) and a few bit operations above.

/// log2 of a small page.
pub const SMALL_PAGE_SHIFT: usize = 16;
/// Small page: 64 KiB holds 8 blocks of the largest small class (8 KiB).
pub const SMALL_PAGE_SIZE: usize = 1 << SMALL_PAGE_SHIFT;
/// log2 of a medium page.
pub const MEDIUM_PAGE_SHIFT: usize = 19;
/// Medium page: 512 KiB holds 4 blocks of the largest medium class (128 KiB).
pub const MEDIUM_PAGE_SIZE: usize = 1 << MEDIUM_PAGE_SHIFT;
const _: () = assert!(
    MEDIUM_MAX * 4 <= MEDIUM_PAGE_SIZE && SMALL_MAX * 8 <= SMALL_PAGE_SIZE,
    "a page holds at least 4 (medium) or 8 (small) blocks of its largest class"
);

/// Number of size classes.
pub const CLASSES: usize = 88;
/// Largest request served from small pages.
pub const SMALL_MAX: usize = 8 * 1024;
/// Largest request served from pages at all; above it, huge blocks.
pub const MEDIUM_MAX: usize = 128 * 1024;
/// Every block is at least this aligned (and every class a multiple of it).
pub const MIN_ALIGN: usize = 16;
/// Classes below this index are small (served from small pages).
pub const SMALL_CLASSES: usize = class_of_large(SMALL_MAX);

/// Classes in the 16-byte-step band (16 ..= 128).
const LINEAR_CLASSES: usize = 8;
/// log2 of the end of the linear band (128).
const LINEAR_END_SHIFT: u32 = 7;
/// log2 of the classes per power of two above the linear band.
const STEPS_SHIFT: u32 = 3;

/// Block size of each class.
pub static CLASS_SIZE: [u32; CLASSES] = class_sizes();

/// Class of each size up to [`SMALL_MAX`], indexed by `(size + 15) / 16`.
///
/// A `const`, not a `static`: the allocation fast path is inlined into the
/// user's crate, and a `static` of ours is reached there through the GOT in
/// a position-independent executable (one more load per allocation); a
/// `const` indexed at run time becomes data of the crate that uses it,
/// reached directly.
const SMALL_TABLE: [u8; SMALL_TABLE_LEN] = small_table();

/// Entries of the size → class table of small sizes (one per 16 bytes).
const SMALL_TABLE_LEN: usize = SMALL_MAX / MIN_ALIGN + 1;

const fn class_sizes() -> [u32; CLASSES] {
    let mut sizes = [0u32; CLASSES];
    let mut i = 0;
    while i < CLASSES {
        sizes[i] = if i < LINEAR_CLASSES {
            ((i + 1) * MIN_ALIGN) as u32
        } else {
            let group = (i - LINEAR_CLASSES) >> STEPS_SHIFT;
            let j = ((i - LINEAR_CLASSES) & ((1 << STEPS_SHIFT) - 1)) + 1;
            let k = LINEAR_END_SHIFT + group as u32;
            ((1usize << k) + j * (1usize << (k - STEPS_SHIFT))) as u32
        };
        i += 1;
    }
    sizes
}

/// The class for `size` in `1..=MEDIUM_MAX`, computed (no table).
const fn class_of_large(size: usize) -> usize {
    if size <= (1 << LINEAR_END_SHIFT) {
        let s = if size == 0 { 1 } else { size };
        return s.div_ceil(MIN_ALIGN) - 1;
    }
    // `size` lies in (2^k, 2^(k+1)].
    let k = usize::BITS - 1 - (size - 1).leading_zeros();
    let step_shift = k - STEPS_SHIFT;
    let j = (size - (1 << k) + (1 << step_shift) - 1) >> step_shift;
    LINEAR_CLASSES + (((k - LINEAR_END_SHIFT) as usize) << STEPS_SHIFT) + j - 1
}

const fn small_table() -> [u8; SMALL_TABLE_LEN] {
    let mut table = [0u8; SMALL_TABLE_LEN];
    let mut i = 0;
    while i < table.len() {
        table[i] = class_of_large(if i == 0 { 1 } else { i * MIN_ALIGN }) as u8;
        i += 1;
    }
    table
}

/// The class for `size <= SMALL_MAX`: one table load.
#[inline(always)]
pub fn class_of_small(size: usize) -> usize {
    debug_assert!(size <= SMALL_MAX);
    // The index is at most SMALL_MAX / 16, the table's last entry.
    let class = SMALL_TABLE[size.div_ceil(MIN_ALIGN)] as usize;
    // SAFETY: every entry is a class (the table is built from
    // `class_of_large`, checked by the tests below): callers may index by
    // it unchecked.
    unsafe { core::hint::assert_unchecked(class < CLASSES) };
    class
}

/// Entries of the heap's by-size page pointers (`Owned::by_size`): one per
/// 16 bytes of request, sizes `0..=SMALL_MAX`, so `malloc` indexes them
/// with `(size + 15) / 16` and skips the table load that `class_of_small`
/// puts on the fast path's chain of dependent loads.
pub const DIRECT_SLOTS: usize = SMALL_TABLE_LEN;

/// Classes served through the by-size pointers: those of the sizes up to
/// `SMALL_MAX`, through the class of `SMALL_MAX` itself (index
/// [`SMALL_CLASSES`]).
pub const DIRECT_CLASSES: usize = SMALL_CLASSES + 1;

/// The by-size entry of `size <= SMALL_MAX`.
#[inline(always)]
pub fn slot_of(size: usize) -> usize {
    debug_assert!(size <= SMALL_MAX);
    size.div_ceil(MIN_ALIGN)
}

/// The class of by-size entry `slot` (`< DIRECT_SLOTS`).
#[inline(always)]
pub fn class_of_slot(slot: usize) -> usize {
    debug_assert!(slot < DIRECT_SLOTS);
    let class = SMALL_TABLE[slot] as usize;
    // SAFETY: as in `class_of_small`: every entry is a class.
    unsafe { core::hint::assert_unchecked(class < CLASSES) };
    class
}

/// The by-size entries of `class` (`< DIRECT_CLASSES`): the sizes above
/// the class below it, up to its own; class 0 also has entry 0 (size 0).
#[inline]
pub fn slots_of_class(class: usize) -> core::ops::Range<usize> {
    debug_assert!(class < DIRECT_CLASSES);
    let first = if class == 0 {
        0
    } else {
        CLASS_SIZE[class - 1] as usize / MIN_ALIGN + 1
    };
    first..CLASS_SIZE[class] as usize / MIN_ALIGN + 1
}

/// The class for `size <= MEDIUM_MAX`.
#[inline]
pub fn class_of(size: usize) -> usize {
    if size <= SMALL_MAX {
        class_of_small(size)
    } else {
        class_of_medium(size)
    }
}

/// The class of a size in `SMALL_MAX + 1 ..= MEDIUM_MAX`: a few shifts,
/// no table.
#[inline(always)]
pub fn class_of_medium(size: usize) -> usize {
    debug_assert!(size > SMALL_MAX && size <= MEDIUM_MAX);
    class_of_large(size)
}

/// The class serving `size` bytes at `align`, or `None` when no class can
/// (too big, or an alignment the class grid cannot give): the caller then
/// takes the huge path.
///
/// A block of class `c` sits at a multiple of `CLASS_SIZE[c]` from a page
/// start that is aligned to at least 64 KiB, so it is aligned to the largest
/// power of two dividing the class size. For `align <= 16` every class works;
/// above, we walk up to the first class that `align` divides (a power-of-two
/// class at the latest).
#[inline]
pub fn class_for(size: usize, align: usize) -> Option<usize> {
    if size > MEDIUM_MAX {
        return None;
    }
    if align <= MIN_ALIGN {
        return Some(class_of(size));
    }
    if align > SMALL_PAGE_SIZE {
        return None;
    }
    let mut class = class_of(size.max(align));
    while class < CLASSES {
        if (CLASS_SIZE[class] as usize).is_multiple_of(align) {
            return Some(class);
        }
        class += 1;
    }
    None
}

/// `true` if `class` is served from small pages.
#[inline(always)]
pub fn is_small(class: usize) -> bool {
    class < SMALL_CLASSES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_monotonic_and_ends_at_medium_max() {
        assert_eq!(CLASS_SIZE[0], 16);
        assert_eq!(CLASS_SIZE[CLASSES - 1] as usize, MEDIUM_MAX);
        assert_eq!(CLASS_SIZE[SMALL_CLASSES] as usize, SMALL_MAX);
        for w in CLASS_SIZE.windows(2) {
            assert!(w[0] < w[1]);
        }
        assert!(CLASS_SIZE
            .iter()
            .all(|&s| (s as usize).is_multiple_of(MIN_ALIGN)));
    }

    #[test]
    fn every_size_gets_the_smallest_class_that_fits() {
        for size in 1..=MEDIUM_MAX {
            let c = class_of(size);
            assert!(CLASS_SIZE[c] as usize >= size, "size {size}");
            if c > 0 {
                assert!((CLASS_SIZE[c - 1] as usize) < size, "size {size}");
            }
        }
    }

    #[test]
    fn worst_case_waste_is_bounded() {
        let waste = |size: usize| (CLASS_SIZE[class_of(size)] as usize - size) as f64 / size as f64;
        let worst = |from: usize| (from..=MEDIUM_MAX).map(waste).fold(0.0, f64::max);
        assert!(worst(129) < 0.125, "{}", worst(129));
        assert!(worst(65) < 0.25, "{}", worst(65));
    }

    #[test]
    fn by_size_entries_partition_the_direct_sizes_by_class() {
        assert_eq!(CLASS_SIZE[DIRECT_CLASSES - 1] as usize, SMALL_MAX);
        let mut next = 0;
        for class in 0..DIRECT_CLASSES {
            let slots = slots_of_class(class);
            assert_eq!(slots.start, next, "class {class}");
            for slot in slots.clone() {
                assert_eq!(class_of_slot(slot), class, "slot {slot}");
            }
            next = slots.end;
        }
        assert_eq!(next, DIRECT_SLOTS);
        for size in 0..=SMALL_MAX {
            assert_eq!(
                class_of_slot(slot_of(size)),
                class_of_small(size),
                "size {size}"
            );
        }
    }

    #[test]
    fn aligned_classes_are_aligned() {
        let mut align = 1;
        while align <= SMALL_PAGE_SIZE {
            for size in [1, 7, 16, 100, 1000, 5000, 70_000] {
                if let Some(c) = class_for(size, align) {
                    assert!(CLASS_SIZE[c] as usize >= size);
                    assert_eq!(CLASS_SIZE[c] as usize % align.max(MIN_ALIGN), 0);
                }
            }
            align *= 2;
        }
        assert_eq!(class_for(MEDIUM_MAX + 1, 8), None);
    }
}
