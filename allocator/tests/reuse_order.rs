//! A heap that needs a new page reuses a free page whose memory is still
//! resident (retired, waiting out its purge delay) before a purged or
//! untouched one, which would fault in again as it is used.
//!
//! One test in its own binary: it sets the process's purge delay.
#![cfg(not(miri))]

use core::alloc::Layout;
use core::ptr::NonNull;

/// Small pages (64 KiB): a page's blocks share `addr >> PAGE_SHIFT`.
const PAGE_SHIFT: usize = 16;
const PAGE: usize = 1 << PAGE_SHIFT;

/// Allocates blocks of `size` on `heap` until `pages` distinct pages have
/// been filled (the blocks of the last one too); returns the blocks.
fn fill_pages(heap: &homing::Heap, size: usize, pages: usize) -> Vec<NonNull<u8>> {
    let layout = Layout::from_size_align(size, 16).unwrap();
    let per_page = PAGE / size;
    (0..per_page * pages)
        .map(|_| heap.alloc(layout).expect("memory"))
        .collect()
}

fn page_of(p: NonNull<u8>) -> usize {
    p.as_ptr() as usize >> PAGE_SHIFT
}

#[test]
fn a_new_page_reuses_a_resident_free_page_before_a_purged_one() {
    // Nothing expires during the test: only `collect` purges.
    homing::configure(homing::Setting::PurgeDelayMs(Some(100_000)));
    let heap = homing::Heap::new();
    // Three pages of 1 KiB blocks, taken lowest slot first.
    let blocks = fill_pages(&heap, 1024, 3);
    let mut pages: Vec<usize> = blocks.iter().map(|&p| page_of(p)).collect();
    pages.dedup();
    assert_eq!(pages.len(), 3, "1 KiB blocks fill pages one after another");
    let (low, mid) = (pages[0], pages[1]);
    let free_page = |page: usize| {
        for &p in blocks.iter().filter(|&&p| page_of(p) == page) {
            // SAFETY: a live block of this heap, freed once.
            unsafe { heap.dealloc(p) };
        }
    };
    // The lowest page empties and `collect` retires and purges it: its
    // slot is free and clean.
    free_page(low);
    heap.collect();
    // The middle page empties now: retired (the class has no page to
    // allocate from after `collect`, so it is not kept as a spare), its
    // memory resident until its delay passes.
    free_page(mid);
    // Another class needs a page: it gets the resident one, not the lower,
    // purged slot.
    let other = heap
        .alloc(Layout::from_size_align(512, 16).unwrap())
        .unwrap();
    assert_eq!(
        page_of(other),
        mid,
        "the new page was not the resident free page (lowest page {low:#x}, resident {mid:#x})"
    );
    // SAFETY: live blocks of this heap, freed once.
    unsafe {
        heap.dealloc(other);
        for &p in blocks
            .iter()
            .filter(|&&p| page_of(p) != low && page_of(p) != mid)
        {
            heap.dealloc(p);
        }
    }
}
