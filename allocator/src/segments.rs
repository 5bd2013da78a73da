//! A heap's segments: which of them have a free page slot, and all of them.
//!
//! # Glossary
//!
//! - **Slot**: a page-sized place in a segment (slot 0 holds the header).
//!   A heap *takes* a slot to make a page of it and *gives it back* when
//!   the page is retired.
//! - `avail[kind]`: segments of that kind (small, medium) with a free slot.
//! - `all`: every segment of the heap (and, for a first-class heap, its
//!   huge blocks' segments, so `destroy` finds them).
//!
//! # Who touches what
//!
//! Owner only (the heap's owner, or a claimer).
//!
//! # Invariants
//!
//! - Per segment: `used_pages + popcount(free_slots) == slots − 1`.
//! - A small or medium segment is on `avail[its kind]` exactly when it has a
//!   free slot (`in_avail`); every segment of the heap is on `all`.

use core::ptr;

use crate::list::{Adapter, Links, List};
use crate::segment::{HeapOwner, Kind, Segment};

/// The adapter of the `avail` lists.
pub(crate) struct AvailLinks;

impl Adapter<Segment> for AvailLinks {
    #[inline(always)]
    unsafe fn links(item: *mut Segment) -> *mut Links<Segment> {
        // SAFETY: the caller passes a live segment header.
        unsafe { ptr::addr_of_mut!((*item).avail_links) }
    }
}

/// The adapter of the `all` list.
pub(crate) struct AllLinks;

impl Adapter<Segment> for AllLinks {
    #[inline(always)]
    unsafe fn links(item: *mut Segment) -> *mut Links<Segment> {
        // SAFETY: the caller passes a live segment header.
        unsafe { ptr::addr_of_mut!((*item).all_links) }
    }
}

/// A heap's segments.
pub(crate) struct SegmentSet {
    avail: [List<Segment, AvailLinks>; 2],
    all: List<Segment, AllLinks>,
}

/// A slot taken by [`SegmentSet::take_slot`].
pub(crate) struct Taken {
    pub(crate) segment: *mut Segment,
    pub(crate) slot: usize,
    /// `true` if the segment was made for this slot (mapped or taken from
    /// the segment cache).
    pub(crate) fresh: bool,
}

impl SegmentSet {
    /// No segment.
    pub(crate) const EMPTY: SegmentSet = SegmentSet {
        avail: [List::EMPTY, List::EMPTY],
        all: List::EMPTY,
    };

    /// `true` if the heap holds no segment at all.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Every segment, newest first.
    ///
    /// # Safety
    ///
    /// The set is not changed during the walk except by releasing the
    /// segment last yielded.
    pub(crate) unsafe fn iter(&self) -> impl Iterator<Item = *mut Segment> {
        // SAFETY: forwarded.
        unsafe { self.all.iter() }
    }

    /// Takes the lowest free slot of a segment of `kind` with one, making a
    /// new segment (owned by `owner`) if none has. `None` when the OS has
    /// no memory for it.
    ///
    /// # Safety
    ///
    /// The caller owns the set and the heap `owner`.
    pub(crate) unsafe fn take_slot(&mut self, owner: *mut HeapOwner, kind: Kind) -> Option<Taken> {
        let k = kind as usize;
        let mut fresh = false;
        let mut seg = self.avail[k].first();
        // SAFETY: the segments on our lists are ours and live; a new one is
        // ours alone.
        unsafe {
            if seg.is_null() {
                seg = Segment::create(owner, kind)?.as_ptr();
                fresh = true;
                self.all.push_front(seg);
                self.avail[k].push_front(seg);
                (*seg).in_avail = true;
            }
            // Raw field accesses only: no reference to the whole header is
            // held while pages inside it are used.
            let slot = (*seg).free_slots.trailing_zeros() as usize;
            (*seg).free_slots &= !(1u64 << slot);
            (*seg).used_pages += 1;
            if (*seg).free_slots == 0 {
                self.avail[k].remove(seg);
                (*seg).in_avail = false;
            }
            debug_assert!((*seg).check());
            Some(Taken {
                segment: seg,
                slot,
                fresh,
            })
        }
    }

    /// Takes the free slot `slot` of `seg` (a free page chosen by the
    /// caller, see `Owned::new_page`).
    ///
    /// # Safety
    ///
    /// The caller owns the set; `seg` is one of its small/medium segments
    /// and `slot` one of its free slots.
    pub(crate) unsafe fn take_given_slot(&mut self, seg: *mut Segment, slot: usize) -> Taken {
        // SAFETY: the segment is ours.
        unsafe {
            debug_assert!((*seg).free_slots & (1u64 << slot) != 0);
            (*seg).free_slots &= !(1u64 << slot);
            (*seg).used_pages += 1;
            if (*seg).free_slots == 0 && (*seg).in_avail {
                self.avail[(*seg).kind as usize].remove(seg);
                (*seg).in_avail = false;
            }
            debug_assert!((*seg).check());
        }
        Taken {
            segment: seg,
            slot,
            fresh: false,
        }
    }

    /// Gives slot `slot` of `seg` back. `true` if the segment has no page in
    /// use any more.
    ///
    /// # Safety
    ///
    /// The caller owns the set; `seg` is one of its small/medium segments
    /// and `slot` a slot it took.
    pub(crate) unsafe fn give_slot(&mut self, seg: *mut Segment, slot: usize) -> bool {
        // SAFETY: the segment is ours.
        unsafe {
            debug_assert!((*seg).free_slots & (1u64 << slot) == 0);
            (*seg).free_slots |= 1u64 << slot;
            (*seg).used_pages -= 1;
            if !(*seg).in_avail {
                self.avail[(*seg).kind as usize].push_front(seg);
                (*seg).in_avail = true;
            }
            debug_assert!((*seg).check());
            (*seg).used_pages == 0
        }
    }

    /// Empty segments of `seg`'s kind other than `seg` (a rare walk: a
    /// segment empties at most once per 63 or 7 page retirements).
    ///
    /// # Safety
    ///
    /// The caller owns the set; `seg` is one of its segments.
    pub(crate) unsafe fn other_empty(&self, seg: *mut Segment) -> usize {
        // SAFETY: our segments are live.
        unsafe {
            self.all
                .iter()
                .filter(|&other| {
                    other != seg && (*other).kind == (*seg).kind && (*other).used_pages == 0
                })
                .count()
        }
    }

    /// Unlinks `seg` from every list (the caller then gives it back).
    ///
    /// # Safety
    ///
    /// The caller owns the set; `seg` is one of its segments.
    pub(crate) unsafe fn unlink(&mut self, seg: *mut Segment) {
        // SAFETY: `seg` is on `all`, and on `avail` when `in_avail`.
        unsafe {
            if (*seg).in_avail {
                self.avail[(*seg).kind as usize].remove(seg);
                (*seg).in_avail = false;
            }
            self.all.remove(seg);
        }
    }

    /// Links a first-class heap's huge segment (on `all` only).
    ///
    /// # Safety
    ///
    /// The caller owns the set; `seg` is a fresh huge segment.
    pub(crate) unsafe fn link_huge(&mut self, seg: *mut Segment) {
        // SAFETY: forwarded.
        unsafe { self.all.push_front(seg) }
    }

    /// Forgets every segment (their memory is being released whole).
    pub(crate) fn clear(&mut self) {
        *self = SegmentSet::EMPTY;
    }

    /// Checks the set's invariants (O(segments)).
    ///
    /// # Safety
    ///
    /// The caller owns the set.
    pub(crate) unsafe fn check(&self) -> bool {
        // SAFETY: our segments are live.
        unsafe {
            self.all.check()
                && self.avail.iter().all(|l| l.check())
                && self.all.iter().all(|seg| (*seg).check())
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::segment::PAGE_SLOTS;

    #[test]
    fn slots_are_taken_lowest_first_and_given_back() {
        let mut set = SegmentSet::EMPTY;
        assert!(set.is_empty());
        // SAFETY: the set is ours; its segments are made and released here.
        unsafe {
            let first = set
                .take_slot(ptr::null_mut(), Kind::Small)
                .expect("a segment");
            assert!(first.fresh && first.slot == 1, "slot 0 holds the header");
            let seg = first.segment;
            let mut slots = std::vec![first.slot];
            for _ in 2..PAGE_SLOTS {
                let t = set.take_slot(ptr::null_mut(), Kind::Small).unwrap();
                assert!(!t.fresh && t.segment == seg);
                slots.push(t.slot);
                assert!(set.check());
            }
            assert_eq!(slots, (1..PAGE_SLOTS).collect::<std::vec::Vec<_>>());
            // Full: the next slot comes from a new segment.
            let other = set.take_slot(ptr::null_mut(), Kind::Small).unwrap();
            assert!(other.fresh && other.segment != seg);
            assert_eq!(set.iter().count(), 2);
            // Giving every slot back empties the segment.
            for (i, &slot) in slots.iter().enumerate() {
                let emptied = set.give_slot(seg, slot);
                assert_eq!(emptied, i + 1 == slots.len());
                assert!(set.check());
            }
            assert_eq!(set.other_empty(other.segment), 1);
            // A given-back slot is taken again, from the emptied segment's
            // lowest free slot or the other segment's.
            let again = set.take_slot(ptr::null_mut(), Kind::Small).unwrap();
            assert!(!again.fresh);
            let _ = set.give_slot(again.segment, again.slot);
            let _ = set.give_slot(other.segment, other.slot);
            for s in [seg, other.segment] {
                set.unlink(s);
                Segment::destroy(s);
            }
            assert!(set.is_empty() && set.check());
        }
    }
}
