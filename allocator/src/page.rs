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
//!
//! # Who touches what
//!
//! Every field is the owner heap's: only the thread that owns the heap (or
//! holds its claim, see `heap`) reads or writes them. Other threads never
//! touch a page: their frees travel through the owner's inbox.
//!
//! # Invariant
//!
//! `used - pinned + |free| + |local_free| + (capacity - reserved) == capacity`,
//! where `used` counts blocks handed out and not yet back on a list,
//! *including* blocks freed by other threads that are still in flight to the
//! owner (in some outbox or in the inbox), plus one **pin** while the page is
//! the one its class allocates from (`pinned`, the heap's `direct` page). So
//! a page reaches `used == 0` exactly when it holds no live block, nothing in
//! flight, and is not the direct page: the free that takes `used` to zero
//! retires it (the decrement's own zero flag is the test, so the free fast
//! path pays one branch for it), while a steady alloc/free loop on the
//! direct page never leaves the fast path.

use core::ptr;

use crate::list::{Adapter, Links, List};

/// A free block: its first word is the link to the next free block.
#[repr(C)]
pub(crate) struct Block {
    pub(crate) next: *mut Block,
}

/// How many bytes of new blocks to link at once when a page is extended:
/// one OS page's worth keeps RSS close to what is used.
const EXTEND_BYTES: usize = crate::os::OS_PAGE;
/// ... but never fewer than one block nor more than this many (a 16-byte
/// class would otherwise link 256 blocks at once).
const EXTEND_MAX_BLOCKS: usize = 128;

/// Subtracted from `used` while a page is on the full list: `used` then
/// reads as negative (as an `i32`), so one signed test after the free's
/// decrement catches both "emptied" (`0`) and "was full" (negative).
pub(crate) const FULL_BIAS: u32 = 1 << 30;

/// Metadata of one page; lives in its segment's header.
#[repr(C)]
pub(crate) struct Page {
    /// Allocation pops here (owner only).
    pub(crate) free: *mut Block,
    /// The owner's frees push here (owner only).
    pub(crate) local_free: *mut Block,
    /// Blocks handed out and not back on a list (includes remote frees in
    /// flight). Owner only.
    pub(crate) used: u32,
    /// Blocks carved out of the page so far.
    pub(crate) reserved: u32,
    /// Blocks the page can hold.
    pub(crate) capacity: u32,
    /// Block size in bytes (0 while the page is not in use).
    pub(crate) block_size: u32,
    /// Size class (meaningful while in use).
    pub(crate) class: u8,
    /// `true` while the page sits on its heap's full list (no free block
    /// when it was last looked at). `used` then carries [`FULL_BIAS`] less,
    /// so the free path's one test ([`Page::needs_attention`]) sees it.
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
    /// First byte of the page's block area.
    pub(crate) start: *mut u8,
    /// Links in the heap's class bin, full list or purge queue (owner only;
    /// the purge queue's under its lock).
    pub(crate) links: Links<Page>,
    /// When the page became free (monotonic milliseconds), for the purge
    /// delay.
    pub(crate) freed_at_ms: u64,
}

impl Page {
    /// A page that serves nothing: its `free` is null, so an allocation that
    /// finds it falls to the slow path. The empty heap's classes all point to
    /// one of these.
    pub(crate) const EMPTY: Page = Page {
        free: ptr::null_mut(),
        local_free: ptr::null_mut(),
        used: 0,
        reserved: 0,
        capacity: 0,
        block_size: 0,
        class: 0,
        in_full: false,
        in_use: false,
        dirty: false,
        pinned: false,
        spare: false,
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
        self.used = 0;
        self.reserved = 0;
        self.capacity = (bytes / block_size) as u32;
        self.block_size = block_size as u32;
        debug_assert!(class < crate::size_class::CLASSES);
        self.class = class as u8;
        self.in_full = false;
        self.in_use = true;
        self.pinned = false;
        self.spare = false;
        self.start = start;
        self.links = Links::NONE;
    }

    /// Pops a block, or null if both lists are empty and nothing is left to
    /// carve. Refills `free` from `local_free`, then from the untouched tail.
    #[inline]
    pub(crate) fn pop_refill(&mut self) -> *mut Block {
        if self.free.is_null() {
            if !self.local_free.is_null() {
                self.free = self.local_free;
                self.local_free = ptr::null_mut();
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
        self.used += 1;
        block
    }

    /// Carves the next few untouched blocks and links them onto `free`.
    #[cold]
    fn extend(&mut self) {
        let bs = self.block_size as usize;
        let count = (EXTEND_BYTES / bs)
            .clamp(1, EXTEND_MAX_BLOCKS)
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

    /// The page's class, as an index the caller may use unchecked.
    #[inline(always)]
    pub(crate) fn class_index(&self) -> usize {
        let class = self.class as usize;
        // SAFETY: `init` is the only writer of `class`, always with a class
        // below `CLASSES` (the empty page keeps 0).
        unsafe { core::hint::assert_unchecked(class < crate::size_class::CLASSES) };
        class
    }

    /// Before a free's decrement: `true` if the free will need attention
    /// (it empties, or sits on the full list). Testing first lets the fast
    /// path decrement `used` in memory and pay one compare and one branch
    /// for both cases.
    #[inline(always)]
    pub(crate) fn free_needs_attention(&self) -> bool {
        self.run_needs_attention(1)
    }

    /// Before a run of `len` blocks is freed: as [`Page::free_needs_attention`]
    /// (the run empties the page, or the page sits on the full list).
    #[inline(always)]
    pub(crate) fn run_needs_attention(&self, len: usize) -> bool {
        self.used as i32 <= len as i32
    }

    /// Parks the page on the full list's books (the caller links it).
    pub(crate) fn mark_full(&mut self) {
        debug_assert!(!self.in_full && self.used < FULL_BIAS);
        self.in_full = true;
        self.used = self.used.wrapping_sub(FULL_BIAS);
    }

    /// Takes the page off the full list's books (the caller unlinks it).
    pub(crate) fn unmark_full(&mut self) {
        debug_assert!(self.in_full);
        self.in_full = false;
        self.used = self.used.wrapping_add(FULL_BIAS);
    }

    /// Blocks handed out (and the pin), whatever list the page is on.
    pub(crate) fn used_blocks(&self) -> u32 {
        if self.in_full {
            self.used.wrapping_add(FULL_BIAS)
        } else {
            self.used
        }
    }

    /// Pushes a block freed by the owner (or drained from the inbox).
    #[inline(always)]
    pub(crate) fn push_local(&mut self, block: *mut Block) {
        // A run of one: the block's first word becomes the link.
        self.push_local_run(block, block, 1);
    }

    /// Pushes a run of `len` blocks (freed by another thread, or one freed
    /// by the owner), linked from `head` to `tail` through their first
    /// words: one splice, whatever `len` (the blocks between are not
    /// touched).
    #[inline(always)]
    pub(crate) fn push_local_run(&mut self, head: *mut Block, tail: *mut Block, len: usize) {
        // SAFETY: the caller hands us a run of dead blocks of this page;
        // the tail's first word (its inbox link, already read) becomes the
        // link to the rest of the list.
        unsafe { (*tail).next = self.local_free };
        self.local_free = head;
        self.used = self.used.wrapping_sub(len as u32);
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
        for &b in &got {
            page.push_local(b);
            assert!(page.check());
        }
        assert_eq!(page.used, 0);
        assert_eq!(page.count_free(), 128);
        // The local frees are swapped in when `free` runs dry.
        assert!(!page.pop_refill().is_null());
        assert!(page.local_free.is_null() && page.check());
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
        // Two blocks out: the next free does not empty the page.
        assert!(!page.free_needs_attention());
        page.push_local(b);
        // One block out: the next free empties it.
        assert!(page.free_needs_attention());
        // Pinned (the direct page): one more count, never empty.
        page.used += 1;
        page.pinned = true;
        assert!(!page.free_needs_attention());
        assert!(page.check());
        // On the full list: every free needs attention, whatever `used`.
        page.mark_full();
        assert!(page.free_needs_attention());
        assert_eq!(page.used_blocks(), 2);
        assert!(page.check());
        page.unmark_full();
        assert!(!page.free_needs_attention());
        page.push_local(a);
        page.used -= 1;
        page.pinned = false;
        assert_eq!(page.used, 0);
        assert!(page.check());
    }
}
