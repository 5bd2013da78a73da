//! Pages: runs of memory that serve one size class.
//!
//! # Glossary
//!
//! - **Page**: our unit (64 KiB small, 512 KiB medium; see `segment`), never
//!   the OS's 4 KiB page (that is an *OS page*).
//! - **Block**: one slot of the page's class size. A free block's first word
//!   links it to the next free block.
//! - `free`: the list allocation pops from. `local_free`: where the owner's
//!   own frees go; it is swapped into `free` when `free` runs dry, so the
//!   allocation fast path never has to look at two lists.
//! - `reserved`: blocks carved out of the page so far. Blocks past it have
//!   never been handed out; they are linked lazily, a few OS pages at a time,
//!   so a page's untouched tail costs no RSS.
//! - **Hole**: a stretch of the page's block area (an OS page, or 8 KiB of a
//!   medium page) that held only free blocks and was purged by
//!   [`Page::trim`]; `holes` is its bitmap. A free block that touches a hole
//!   is **held**: on no list, until [`Page::pop_refill`] finds both lists
//!   empty and fills the lowest hole back in (its blocks are linked again,
//!   and the memory faults in as they are used).
//!
//! # Who touches what
//!
//! Every field is the owner heap's: only the thread that owns the heap (or
//! holds its claim, see `heap`) reads or writes them. Other threads never
//! touch a page: their frees travel through the owner's inbox.
//!
//! # Invariant
//!
//! `used - pinned + |free| + |local_free| + held + (capacity - reserved) == capacity`,
//! where `used` counts blocks handed out and not yet back on a list,
//! *including* blocks freed by other threads that are still in flight to the
//! owner (in some outbox or in the inbox), plus one **pin** while the page is
//! the one its class allocates from (`pinned`, the heap's `direct` page). So
//! a page reaches `used == 0` exactly when it holds no live block, nothing in
//! flight, and is not the direct page: the free that takes `used` to zero
//! retires it (the field holds `used - 1`, so the subtraction's own sign
//! flag is the test and the free fast path pays one branch for it), while a steady alloc/free loop on the
//! direct page never leaves the fast path. Every block that touches a hole
//! is free and held (a hole is made only where every block is free, and a
//! held block is on no list, so nobody can allocate it).

use core::ptr;

use crate::list::{Adapter, Links, List};
use crate::os::OS_PAGE;
use crate::size_class::{MIN_ALIGN, SMALL_PAGE_SIZE};

/// A free block: its first word is the link to the next free block.
#[repr(C)]
pub(crate) struct Block {
    pub(crate) next: *mut Block,
}

/// How many bytes of new blocks to link at once when a page is extended:
/// one OS page's worth keeps RSS close to what is used.
const EXTEND_BYTES: usize = crate::os::OS_PAGE;
/// ... but never fewer than this many blocks (while the page has them),
/// up to [`EXTEND_MIN_BYTES`] of them: a loop that frees each block before
/// it takes the next cycles through the blocks carved so far, and takes
/// the refill path once per cycle. With one block carved at a time (any
/// class of 4 KiB or more), that was every allocation: a `malloc(8192)`/
/// `free` pair cost 67 instructions against 38 at 16 B (45 now).
const EXTEND_MIN_BLOCKS: usize = 4;
/// ... the most bytes of blocks that minimum carves at once. Linking a
/// block writes its first word, so each carved block costs an OS page of
/// RSS before it is used; carving 4 blocks of every medium class at once
/// raised the C `mstress`'s peak RSS from 75 to 95–102 MiB (8 threads),
/// its pages being retired and set up again all the time. Classes above
/// 16 KiB are carved one or two blocks at a time.
const EXTEND_MIN_BYTES: usize = 32 * 1024;
/// ... nor more than this many (a 16-byte class would otherwise link 256
/// blocks at once).
const EXTEND_MAX_BLOCKS: usize = 128;

/// Subtracted from the use count while a page is on the full list: the
/// count then stays negative whatever is freed, so the free's one sign test
/// (see [`Page::push_local_run`]) catches "was full" as well as "emptied".
pub(crate) const FULL_BIAS: i32 = 1 << 30;

/// The most blocks a page holds (a small page of the smallest class): the
/// size of the bitmap [`Page::trim`] builds on its stack. (A medium page's
/// blocks are larger than 8 KiB: at most 64.)
const MAX_BLOCKS: usize = SMALL_PAGE_SIZE / MIN_ALIGN;

/// A page's hole bitmap has one bit per granule: an OS page of a small
/// page (16), 8 KiB of a medium one (64).
const HOLE_BITS: usize = 64;

/// `true` if a page with `listed` free blocks on its lists out of
/// `reserved` carved ones may have a granule to give back: at least a
/// granule's worth free, and at least a quarter of the page (the free
/// blocks of a page less free than that rarely fill a whole granule: on the
/// 64-state Lua run, skipping them left the peak RSS unchanged and spared
/// the walks).
const fn worth_trimming(listed: usize, reserved: usize, block_size: usize, granule: usize) -> bool {
    listed * block_size >= granule && listed * 4 >= reserved
}

/// log2 of a hole's size in a page of `1 << page_shift` bytes.
const fn hole_shift(page_shift: usize) -> u32 {
    let os = OS_PAGE.trailing_zeros();
    let fit = page_shift as u32 - HOLE_BITS.trailing_zeros();
    if fit > os {
        fit
    } else {
        os
    }
}

/// Metadata of one page; lives in its segment's header.
///
/// The fields both fast paths touch (`free`, `local_free`, the use count
/// and `class`) come first, within 24 bytes, and a page takes a cache
/// line and a half, padded to two (128 bytes, 64-byte aligned): those
/// fields always share one line, where with an 88-byte stride five pages
/// in eight had them across two, and the free finds a page's metadata
/// with a shift (`index << 7`) where 88 took a multiply and 96 two
/// instructions. Slot 0 of a segment, the header's, is a whole small page
/// anyway: the larger array costs one OS page of it.
#[repr(C, align(64))]
pub(crate) struct Page {
    /// Allocation pops here (owner only).
    pub(crate) free: *mut Block,
    /// The owner's frees push here (owner only).
    pub(crate) local_free: *mut Block,
    /// Blocks handed out and not back on a list (includes remote frees in
    /// flight, and the pin), **minus one**, less [`FULL_BIAS`] while on the
    /// full list. Owner only. The offset makes the free that empties the
    /// page take it negative: the decrement's own sign flag is the free fast
    /// path's one test (`sub [mem]; js`), where `used <= 0` would cost a
    /// load and a compare more. Read it through [`Page::used_blocks`].
    used_less_one: i32,
    /// Size class (meaningful while in use).
    pub(crate) class: u8,
    /// `true` while the page sits on its heap's full list (no free block
    /// when it was last looked at). The use count then carries [`FULL_BIAS`]
    /// less, so the free path's one test ([`Page::push_local_run`]) sees it.
    pub(crate) in_full: bool,
    /// `true` while the page is assigned to a class (not a free slot).
    pub(crate) in_use: bool,
    /// `true` if the page's memory may hold data (touched since mapped or
    /// last purged); `false` means it reads as zero.
    pub(crate) dirty: bool,
    /// `true` while the page is its heap's direct page for its class: `used`
    /// then holds one extra count (the pin), so it never reaches zero.
    pub(crate) pinned: bool,
    /// `true` while the page is empty and kept in its bin as a spare (the
    /// heap counts its spares per class).
    pub(crate) spare: bool,
    /// log2 of the page's size (its segment's `page_shift`, set by
    /// [`Page::trim`]): where its slot starts and how large a hole is.
    hole_page_shift: u8,
    /// Blocks carved out of the page so far.
    pub(crate) reserved: u32,
    /// Blocks the page can hold.
    pub(crate) capacity: u32,
    /// Free blocks that touch a hole (on no list; see the module doc).
    pub(crate) held: u32,
    /// Free blocks on the lists when [`Page::trim`] last looked, with
    /// `local_free` empty: a page unchanged since then is not looked at
    /// again.
    trimmed_free: u32,
    /// Block size in bytes (0 while the page is not in use).
    pub(crate) block_size: u32,
    /// Bit `g`: the `g`-th granule of the page (from its slot's start,
    /// [`hole_shift`] bytes each) is a hole.
    pub(crate) holes: u64,
    /// First byte of the page's block area.
    pub(crate) start: *mut u8,
    /// Links in the heap's class bin, full list or purge queue (owner only;
    /// the purge queue's under its lock).
    pub(crate) links: Links<Page>,
    /// When the page became free (monotonic milliseconds), for the purge
    /// delay.
    pub(crate) freed_at_ms: u64,
}

// The fast paths' fields sit in the first 24 bytes of a 32-byte aligned
// page (see the type's doc).
const _: () = assert!(
    core::mem::offset_of!(Page, class) < 24
        && core::mem::offset_of!(Page, used_less_one) < 24
        && core::mem::align_of::<Page>() == 64
);

impl Page {
    /// A page that serves nothing: its `free` is null, so an allocation that
    /// finds it falls to the slow path. The empty heap's classes all point to
    /// one of these.
    pub(crate) const EMPTY: Page = Page {
        free: ptr::null_mut(),
        local_free: ptr::null_mut(),
        used_less_one: -1,
        reserved: 0,
        capacity: 0,
        held: 0,
        trimmed_free: u32::MAX,
        block_size: 0,
        class: 0,
        in_full: false,
        in_use: false,
        dirty: false,
        pinned: false,
        spare: false,
        hole_page_shift: 0,
        holes: 0,
        start: ptr::null_mut(),
        links: Links::NONE,
        freed_at_ms: 0,
    };

    /// Sets a free page up to serve `class` with `block_size` blocks over
    /// `bytes` bytes from `start`.
    pub(crate) fn init(&mut self, start: *mut u8, bytes: usize, class: usize, block_size: usize) {
        debug_assert!(!self.in_use);
        self.free = ptr::null_mut();
        self.local_free = ptr::null_mut();
        self.used_less_one = -1;
        self.reserved = 0;
        self.capacity = (bytes / block_size) as u32;
        self.block_size = block_size as u32;
        debug_assert!(class < crate::size_class::CLASSES);
        self.class = class as u8;
        self.in_full = false;
        self.in_use = true;
        self.pinned = false;
        self.spare = false;
        self.held = 0;
        self.holes = 0;
        self.trimmed_free = u32::MAX;
        self.start = start;
        self.links = Links::NONE;
    }

    /// Pops a block, or null if both lists are empty and nothing is left to
    /// carve. Refills `free` from `local_free`, then from a hole, then from
    /// the untouched tail.
    #[inline]
    pub(crate) fn pop_refill(&mut self) -> *mut Block {
        if self.free.is_null() {
            if !self.local_free.is_null() {
                self.free = self.local_free;
                self.local_free = ptr::null_mut();
            } else if self.holes != 0 {
                self.fill_hole();
            } else if self.reserved < self.capacity {
                self.extend();
            } else {
                return ptr::null_mut();
            }
        }
        let block = self.free;
        // SAFETY: `block` is a free block of this page; its first word is the
        // link we wrote when it was freed or carved.
        self.free = unsafe { (*block).next };
        // The next pop's block: see `Heap::pop_direct`.
        prefetch(self.free.cast());
        self.count_out(1);
        block
    }

    /// Carves the next few untouched blocks and links them onto `free`.
    #[cold]
    fn extend(&mut self) {
        let bs = self.block_size as usize;
        let least = EXTEND_MIN_BLOCKS.min(EXTEND_MIN_BYTES / bs).max(1);
        let count = (EXTEND_BYTES / bs)
            .clamp(least, EXTEND_MAX_BLOCKS)
            .min((self.capacity - self.reserved) as usize);
        // SAFETY: blocks `reserved .. reserved + count` lie inside the page
        // (count is capped by capacity) and are owned by nobody yet.
        unsafe {
            let first = self.start.add(self.reserved as usize * bs);
            for i in 0..count {
                let block = first.add(i * bs).cast::<Block>();
                let next = if i + 1 < count {
                    first.add((i + 1) * bs).cast::<Block>()
                } else {
                    self.free
                };
                (*block).next = next;
            }
            self.free = first.cast();
        }
        self.reserved += count as u32;
        self.dirty = true;
    }

    /// Where the page's slot starts: granule `g` of the hole bitmap starts
    /// `g << hole_shift(page_shift)` bytes after it.
    fn slot_start(&self, page_shift: usize) -> usize {
        self.start as usize & !((1 << page_shift) - 1)
    }

    /// The granules (bit mask) that block `i` touches.
    fn granules_of(&self, i: usize, base: usize, shift: u32) -> u64 {
        let bs = self.block_size as usize;
        let first = self.start as usize + i * bs;
        let g0 = (first - base) >> shift;
        let g1 = (first + bs - 1 - base) >> shift;
        // Bits g0..=g1 (g1 < HOLE_BITS: the block lies in the slot).
        (u64::MAX >> (HOLE_BITS - 1 - g1)) & (u64::MAX << g0)
    }

    /// Gives back the memory of the free blocks of a page in use: every
    /// granule of its carved area (an OS page, or 8 KiB of a medium page,
    /// see [`HOLE_BITS`]) that only free blocks touch is purged and becomes
    /// a hole, and the free blocks that touch a hole are held until
    /// [`Page::pop_refill`] needs them (the module doc). The page keeps its
    /// live blocks, its class and its place. `page_shift` is its segment's.
    /// Bytes purged.
    ///
    /// A heap that stops allocating (`homing_heap_release`, `collect`) keeps
    /// resident only the OS pages its live blocks touch, rather than every
    /// page its class ever filled. O(blocks) with a bitmap on the stack; a
    /// page that has not changed since it was last trimmed is skipped in
    /// O(1). Nothing in checked mode, where a free block's second word
    /// holds the double-free mark that a purge would erase.
    ///
    /// # Safety
    ///
    /// The caller owns the page, which is in use, with free lists made of
    /// its own blocks.
    pub(crate) unsafe fn trim(&mut self, page_shift: usize) -> usize {
        if cfg!(feature = "checked") || !self.in_use {
            return 0;
        }
        let bs = self.block_size as usize;
        let reserved = self.reserved as usize;
        let live = self.used_blocks() as usize - usize::from(self.pinned);
        let listed = reserved - live - self.held as usize;
        let shift = hole_shift(page_shift);
        let granule = 1usize << shift;
        if !worth_trimming(listed, reserved, bs, granule)
            || (self.local_free.is_null() && listed == self.trimmed_free as usize)
        {
            return 0;
        }
        debug_assert!(reserved <= MAX_BLOCKS && (1 << page_shift) >> shift <= HOLE_BITS);
        debug_assert!(self.holes == 0 || self.hole_page_shift as usize == page_shift);
        let start = self.start as usize;
        let base = self.slot_start(page_shift);
        // Free blocks: those on the lists, and the held ones (every block
        // that touches a hole).
        let mut free = [0u64; MAX_BLOCKS / 64];
        let mut mark = |i: usize| free[i / 64] |= 1 << (i % 64);
        for mut block in [self.free, self.local_free] {
            while !block.is_null() {
                mark((block as usize - start) / bs);
                // SAFETY: list nodes are free blocks of this page.
                block = unsafe { (*block).next };
            }
        }
        let is_free = |free: &[u64], i: usize| free[i / 64] & (1 << (i % 64)) != 0;
        let end = start + reserved * bs;
        let mut fresh = 0u64;
        for g in 0..(1usize << page_shift) >> shift {
            let (from, to) = (base + (g << shift), base + ((g + 1) << shift));
            if from < start || to > end || self.holes & (1 << g) != 0 {
                continue;
            }
            let (first, last) = ((from - start) / bs, (to - 1 - start) / bs);
            // A held block touches a hole: free, though not on a list.
            let held = |i: usize| self.holes & self.granules_of(i, base, shift) != 0;
            if (first..=last).all(|i| is_free(&free, i) || held(i)) {
                fresh |= 1 << g;
            }
        }
        self.trimmed_free = listed as u32;
        if fresh == 0 {
            return 0;
        }
        // Purge each run of new holes with one call.
        let mut rest = fresh;
        while rest != 0 {
            let g = rest.trailing_zeros();
            let run = (rest >> g).trailing_ones();
            let from = base + ((g as usize) << shift);
            // SAFETY: the granules lie in the page's carved area and only
            // free blocks touch them; nobody reads a free block's memory
            // but us, and we link none of these until the hole is filled.
            unsafe {
                crate::os::purge(
                    ptr::NonNull::new_unchecked(self.start.wrapping_add(from - start)),
                    (run as usize) << shift,
                )
            };
            rest &= !((u64::MAX >> (64 - run)) << g);
        }
        self.holes |= fresh;
        self.hole_page_shift = page_shift as u8;
        // Relink the listed blocks that touch no hole, lowest address first.
        let (mut head, mut kept) = (ptr::null_mut::<Block>(), 0u32);
        for i in (0..reserved).rev() {
            if is_free(&free, i) && self.holes & self.granules_of(i, base, shift) == 0 {
                let block = self.start.wrapping_add(i * bs).cast::<Block>();
                // SAFETY: a free block of ours outside every hole.
                unsafe { (*block).next = head };
                head = block;
                kept += 1;
            }
        }
        self.free = head;
        self.local_free = ptr::null_mut();
        self.held += listed as u32 - kept;
        self.trimmed_free = kept;
        fresh.count_ones() as usize * granule
    }

    /// Fills the lowest hole back in: links the held blocks that touch no
    /// other hole (repeating with the next hole until one is linked).
    #[cold]
    fn fill_hole(&mut self) {
        let page_shift = self.hole_page_shift as usize;
        let shift = hole_shift(page_shift);
        let bs = self.block_size as usize;
        let start = self.start as usize;
        let base = self.slot_start(page_shift);
        while self.holes != 0 && self.free.is_null() {
            let g = self.holes.trailing_zeros() as usize;
            self.holes &= self.holes - 1;
            let (from, to) = (base + (g << shift), base + ((g + 1) << shift));
            let (first, last) = ((from - start) / bs, (to - 1 - start) / bs);
            for i in (first..=last).rev() {
                if self.holes & self.granules_of(i, base, shift) == 0 {
                    let block = self.start.wrapping_add(i * bs).cast::<Block>();
                    // SAFETY: a held block of ours (it touched hole `g`,
                    // and now touches none); writing its link faults the
                    // purged memory back in.
                    unsafe { (*block).next = self.free };
                    self.free = block;
                    self.held -= 1;
                }
            }
        }
        debug_assert!(self.holes != 0 || self.held == 0);
        // The lists changed under the trim's feet: look again next time.
        self.trimmed_free = u32::MAX;
    }

    /// The page's class, as an index the caller may use unchecked.
    #[inline(always)]
    pub(crate) fn class_index(&self) -> usize {
        let class = self.class as usize;
        // SAFETY: `init` is the only writer of `class`, always with a class
        // below `CLASSES` (the empty page keeps 0).
        unsafe { core::hint::assert_unchecked(class < crate::size_class::CLASSES) };
        class
    }

    /// Counts `n` blocks handed out (or the pin, for `n == 1`).
    #[inline(always)]
    pub(crate) fn count_out(&mut self, n: u32) {
        self.used_less_one = self.used_less_one.wrapping_add(n as i32);
    }

    /// Takes the pin's count off: `true` if that leaves the page with no
    /// block in use (and it is not on the full list).
    pub(crate) fn unpin_empties(&mut self) -> bool {
        self.used_less_one = self.used_less_one.wrapping_sub(1);
        self.is_unused()
    }

    /// Sets the use count (a page being set up for one block).
    pub(crate) fn set_used(&mut self, n: u32) {
        debug_assert!(!self.in_full);
        self.used_less_one = n as i32 - 1;
    }

    /// `true` if no block is in use, nothing is in flight, the page is not
    /// pinned and not on the full list.
    #[inline]
    pub(crate) fn is_unused(&self) -> bool {
        self.used_less_one == -1
    }

    /// Parks the page on the full list's books (the caller links it).
    pub(crate) fn mark_full(&mut self) {
        debug_assert!(!self.in_full && self.used_less_one >= -1);
        self.in_full = true;
        self.used_less_one = self.used_less_one.wrapping_sub(FULL_BIAS);
    }

    /// Takes the page off the full list's books (the caller unlinks it).
    pub(crate) fn unmark_full(&mut self) {
        debug_assert!(self.in_full);
        self.in_full = false;
        self.used_less_one = self.used_less_one.wrapping_add(FULL_BIAS);
    }

    /// Blocks handed out (and the pin), whatever list the page is on.
    pub(crate) fn used_blocks(&self) -> u32 {
        let biased = if self.in_full {
            self.used_less_one.wrapping_add(FULL_BIAS)
        } else {
            self.used_less_one
        };
        (biased + 1) as u32
    }

    /// Pushes a block freed by the owner (or drained from the inbox).
    /// `true` if the free needs attention (see [`Page::push_local_run`]).
    #[inline(always)]
    #[must_use]
    pub(crate) fn push_local(&mut self, block: *mut Block) -> bool {
        // A run of one: the block's first word becomes the link.
        self.push_local_run(block, block, 1)
    }

    /// Pushes a run of `len` blocks (freed by another thread, or one freed
    /// by the owner), linked from `head` to `tail` through their first
    /// words: one splice, whatever `len` (the blocks between are not
    /// touched).
    ///
    /// Returns `true` if the free needs attention: it emptied the page, or
    /// the page sits on the full list. Both leave the use count negative,
    /// so one sign test after the subtraction covers them.
    #[inline(always)]
    #[must_use]
    pub(crate) fn push_local_run(
        &mut self,
        head: *mut Block,
        tail: *mut Block,
        len: usize,
    ) -> bool {
        // SAFETY: the caller hands us a run of dead blocks of this page;
        // the tail's first word (its inbox link, already read) becomes the
        // link to the rest of the list.
        unsafe { (*tail).next = self.local_free };
        self.local_free = head;
        let used_less_one = self.used_less_one.wrapping_sub(len as i32);
        self.used_less_one = used_less_one;
        used_less_one < 0
    }

    /// Start of the block that contains `p` (for interior pointers).
    #[inline]
    pub(crate) fn block_start(&self, p: *mut u8) -> *mut u8 {
        let offset = p as usize - self.start as usize;
        let bs = self.block_size as usize;
        // SAFETY: `p` lies inside this page, so the rounded-down offset does too.
        unsafe { self.start.add(offset - offset % bs) }
    }

    /// Counts the blocks on both free lists (O(n); for checks and tests).
    pub(crate) fn count_free(&self) -> usize {
        let mut n = 0;
        for mut cur in [self.free, self.local_free] {
            while !cur.is_null() {
                n += 1;
                // SAFETY: list nodes are free blocks of this page.
                cur = unsafe { (*cur).next };
            }
        }
        n
    }

    /// Checks the page invariant (O(n): debug and expensive-check builds).
    pub(crate) fn check(&self) -> bool {
        (self.used_blocks() as usize).wrapping_sub(usize::from(self.pinned))
            + self.count_free()
            + self.held as usize
            + (self.capacity - self.reserved) as usize
            == self.capacity as usize
    }
}

/// The page lists of a heap (class bins, the full list, the purge queue):
/// [`List`]s linked through [`Page::links`].
pub(crate) type PageQueue = List<Page, PageLinks>;

/// The adapter of [`PageQueue`].
pub(crate) struct PageLinks;

impl Adapter<Page> for PageLinks {
    #[inline(always)]
    unsafe fn links(item: *mut Page) -> *mut Links<Page> {
        // SAFETY: the caller passes a live page.
        unsafe { ptr::addr_of_mut!((*item).links) }
    }
}

/// Asks the CPU to start loading the line at `p`. Never faults, whatever
/// the address: a hint that turns out stale costs nothing but the
/// prefetch.
#[inline(always)]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: a prefetch never faults and has no architectural effect.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page over a buffer of the test's own (a page needs no segment).
    fn page_over(buf: &mut [u64], block_size: usize) -> Page {
        let mut page = Page::EMPTY;
        let bytes = buf.len() * 8;
        page.init(buf.as_mut_ptr().cast(), bytes, 3, block_size);
        page
    }

    #[test]
    fn blocks_come_out_once_and_go_back_and_the_invariant_holds() {
        let mut buf = std::vec![0u64; 1024]; // 8 KiB
        let mut page = page_over(&mut buf, 64);
        assert_eq!(page.capacity, 128);
        let mut got = std::vec::Vec::new();
        for _ in 0..page.capacity {
            let b = page.pop_refill();
            assert!(!b.is_null());
            assert!(page.check());
            got.push(b);
        }
        assert!(page.pop_refill().is_null(), "a full page hands out nothing");
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 128, "each block once");
        for (i, &b) in got.iter().enumerate() {
            // Only the free that empties the page needs attention.
            assert_eq!(page.push_local(b), i == got.len() - 1);
            assert!(page.check());
        }
        assert!(page.is_unused() && page.used_blocks() == 0);
        assert_eq!(page.count_free(), 128);
        // The local frees are swapped in when `free` runs dry.
        assert!(!page.pop_refill().is_null());
        assert!(page.local_free.is_null() && page.check());
    }

    /// An aligned buffer for a page of `1 << shift` bytes (a page's slot
    /// is aligned to its size).
    struct Slot {
        ptr: *mut u8,
        layout: std::alloc::Layout,
    }

    impl Slot {
        fn new(shift: usize) -> Slot {
            let layout = std::alloc::Layout::from_size_align(1 << shift, 1 << shift).unwrap();
            // SAFETY: a non-zero size.
            let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
            assert!(!ptr.is_null());
            Slot { ptr, layout }
        }
    }

    impl Drop for Slot {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with this layout.
            unsafe { std::alloc::dealloc(self.ptr, self.layout) };
        }
    }

    /// A tiny deterministic generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// The holes a trim must make: every granule inside the carved area
    /// that no live block touches (the brute-force model).
    fn model_holes(page: &Page, shift: usize, live: &[usize]) -> u64 {
        let g = hole_shift(shift) as usize;
        let base = page.start as usize & !((1 << shift) - 1);
        let end = page.start as usize + page.reserved as usize * page.block_size as usize;
        let mut holes = 0;
        for k in 0..(1usize << shift) >> g {
            let (from, to) = (base + (k << g), base + ((k + 1) << g));
            let touched = live
                .iter()
                .any(|&b| b < to && b + page.block_size as usize > from);
            if from >= page.start as usize && to <= end && !touched {
                holes |= 1 << k;
            }
        }
        holes
    }

    /// Random pages, block sizes and live sets, trimmed in rounds against
    /// the model: the holes are exactly the granules no live block
    /// touches, the invariant holds, live blocks keep their contents, and
    /// every free block (listed or held) comes out exactly once afterwards.
    #[test]
    fn trim_purges_exactly_the_granules_only_free_blocks_touch() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let rounds = if cfg!(miri) { 3 } else { 60 };
        let mut with_holes = 0;
        for round in 0..rounds {
            let medium = round % 4 == 3;
            let (shift, sizes): (usize, &[usize]) = if medium {
                (19, &[9216, 16384, 20480, 49152])
            } else {
                (16, &[16, 48, 64, 112, 208, 1024, 1664, 3072, 6144, 8192])
            };
            let bs = sizes[rng.below(sizes.len())];
            let slot = Slot::new(shift);
            let mut page = Page::EMPTY;
            page.init(slot.ptr, 1 << shift, 3, bs);
            // Hand out some or all of the page.
            let out = 1 + rng.below(page.capacity as usize);
            let mut live: std::vec::Vec<*mut Block> = (0..out).map(|_| page.pop_refill()).collect();
            // Free most of them, keeping a random few (clustered or not).
            let keep = rng.below(out.min(12) + 1);
            let mut kept = std::vec::Vec::new();
            for _ in 0..keep {
                kept.push(live.swap_remove(rng.below(live.len())));
            }
            for &b in &live {
                // Attention exactly when the free empties the page.
                let emptied = page.push_local(b);
                assert_eq!(emptied, page.is_unused());
            }
            for &b in &kept {
                // SAFETY: a live block of the page: the test's data.
                unsafe { b.cast::<u8>().add(bs - 1).write(0xA5) };
                // SAFETY: as above.
                unsafe { (*b).next = b };
            }
            // SAFETY: our page, its lists made of its own blocks.
            let purged = unsafe { page.trim(shift) };
            let listed = page.reserved as usize - kept.len();
            let want =
                if !worth_trimming(listed, page.reserved as usize, bs, 1 << hole_shift(shift)) {
                    0 // too little free to look
                } else {
                    model_holes(
                        &page,
                        shift,
                        &kept
                            .iter()
                            .map(|&b| b as usize)
                            .collect::<std::vec::Vec<_>>(),
                    )
                };
            assert_eq!(
                page.holes,
                want,
                "round {round} bs {bs} kept {}",
                kept.len()
            );
            with_holes += usize::from(want != 0);
            assert_eq!(purged, (want.count_ones() as usize) << hole_shift(shift));
            assert!(page.check(), "round {round}");
            for &b in &kept {
                // SAFETY: as above: live data survives the trim.
                unsafe {
                    assert_eq!(b.cast::<u8>().add(bs - 1).read(), 0xA5);
                    assert_eq!((*b).next, b);
                }
            }
            // A second trim with nothing changed does nothing.
            // SAFETY: as above.
            assert_eq!(unsafe { page.trim(shift) }, 0);
            // Everything not kept comes out again, once, then nothing.
            let mut again = std::vec::Vec::new();
            loop {
                let b = page.pop_refill();
                if b.is_null() {
                    break;
                }
                assert!(!kept.contains(&b), "a live block handed out");
                again.push(b);
                // (Every step is O(n²) in all: too slow for Miri.)
                assert!(cfg!(miri) || page.check());
            }
            assert_eq!(
                again.len() + kept.len(),
                page.capacity as usize,
                "round {round}"
            );
            again.sort();
            again.dedup();
            assert_eq!(
                again.len() + kept.len(),
                page.capacity as usize,
                "each block once"
            );
            assert_eq!((page.holes, page.held), (0, 0));
            // Free them all but the kept ones, trim, and fill one hole back in
            // half way: the invariant holds at every step.
            for &b in &again {
                // Attention exactly when the free empties the page.
                let emptied = page.push_local(b);
                assert_eq!(emptied, page.is_unused());
            }
            // SAFETY: as above.
            unsafe { page.trim(shift) };
            assert!(page.check());
            for _ in 0..rng.below(64) {
                if page.pop_refill().is_null() {
                    break;
                }
                assert!(page.check());
            }
        }
        assert!(
            with_holes * 2 >= rounds,
            "the model made holes in {with_holes} of {rounds} rounds"
        );
    }

    #[test]
    fn blocks_are_carved_lazily_a_few_os_pages_at_a_time() {
        let mut buf = std::vec![0u64; 8192]; // 64 KiB
        let mut page = page_over(&mut buf, 16);
        let _ = page.pop_refill();
        assert!(page.reserved as usize <= EXTEND_MAX_BLOCKS);
        assert!(page.reserved < page.capacity);
        assert!(page.dirty);
    }

    #[test]
    fn the_full_bias_and_the_pin_meet_the_one_test_of_the_free_path() {
        let mut buf = std::vec![0u64; 64];
        let mut page = page_over(&mut buf, 64);
        let a = page.pop_refill();
        let b = page.pop_refill();
        let c = page.pop_refill();
        // On the full list: every free needs attention, whatever the count.
        page.mark_full();
        assert_eq!(page.used_blocks(), 3);
        assert!(page.check());
        assert!(page.push_local(c), "a free to a page on the full list");
        page.unmark_full();
        assert_eq!(page.used_blocks(), 2);
        // Two blocks out: the next free does not empty the page.
        assert!(!page.push_local(b));
        // Pinned (the direct page): one more count, never emptied by a free.
        page.count_out(1);
        page.pinned = true;
        assert!(!page.push_local(a));
        assert!(page.check() && !page.is_unused());
        // Unpinned, it is empty.
        assert!(page.unpin_empties());
        page.pinned = false;
        assert!(page.is_unused() && page.used_blocks() == 0);
        assert!(page.check());
        // A run that takes the count to zero needs attention too.
        let (x, y) = (page.pop_refill(), page.pop_refill());
        // SAFETY: two free blocks of the page: link x -> y.
        unsafe { (*x).next = y };
        assert!(page.push_local_run(x, y, 2));
        assert!(page.is_unused() && page.check());
    }
}
