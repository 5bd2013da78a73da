//! The fast path's by-size page pointers: every request size up to 8 KiB
//! reaches a page of its own class, and the blocks it hands out are counted
//! in that class (the by-size counters are folded into their classes when
//! the statistics are read), while pages fill, change and empty under it.

use std::alloc::Layout;

use homing::size_class::{class_of, CLASS_SIZE, SMALL_MAX};

/// Every size from 0 to `SMALL_MAX`, many blocks of each, through a
/// first-class heap (whose counters no other test touches): each block is
/// at least its size and aligned, blocks of one size never overlap, and the
/// live bytes the heap reports are exactly the class sizes of what it holds.
#[test]
fn every_small_size_gets_its_class_and_is_counted_in_it() {
    let heap = homing::Heap::new();
    let per_size = if cfg!(miri) { 2 } else { 6 };
    let step = if cfg!(miri) { 97 } else { 1 };
    let mut held = Vec::new();
    let mut expect = 0usize;
    let mut size = 0;
    while size <= SMALL_MAX {
        let layout = Layout::from_size_align(size, 8).unwrap();
        for i in 0..per_size {
            let p = heap.alloc(layout).expect("memory");
            assert_eq!(p.as_ptr() as usize % 16, 0, "size {size}");
            // Written whole (the last byte at least): a block smaller than
            // its size would run into its neighbour, found below.
            // SAFETY: `p` is a live block of at least `size` bytes.
            unsafe { p.as_ptr().write_bytes((i & 0xff) as u8, size) };
            held.push((p, size, (i & 0xff) as u8));
            expect += CLASS_SIZE[class_of(size.max(1))] as usize;
        }
        size += step;
    }
    let stats = heap.stats();
    assert_eq!(stats.live_blocks, held.len());
    assert_eq!(stats.live_bytes, expect);
    for &(p, size, byte) in &held {
        // SAFETY: live blocks of `size` bytes, each written with `byte`.
        let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), size) };
        assert!(bytes.iter().all(|&b| b == byte), "size {size}: overwritten");
    }
    // Half back, then as many again: pages that emptied, filled and changed.
    for (i, &(p, _, _)) in held.iter().enumerate() {
        if i % 2 == 0 {
            // SAFETY: a live block of this heap, given up once.
            unsafe { heap.dealloc(p) };
        }
    }
    let mut kept: Vec<_> = held.iter().skip(1).step_by(2).copied().collect();
    let mut size = 0;
    while size <= SMALL_MAX {
        let p = heap
            .alloc(Layout::from_size_align(size, 8).unwrap())
            .expect("memory");
        kept.push((p, size, 0));
        size += step;
    }
    let live: usize = kept
        .iter()
        .map(|&(_, size, _)| CLASS_SIZE[class_of(size.max(1))] as usize)
        .sum();
    assert_eq!(heap.stats().live_bytes, live);
    for &(p, _, _) in &kept {
        // SAFETY: a live block of this heap, given up once.
        unsafe { heap.dealloc(p) };
    }
    heap.collect();
    assert_eq!(heap.stats().live_blocks, 0);
    assert_eq!(heap.stats().live_bytes, 0);
    heap.destroy();
}

/// The same through the thread's heap (the global allocator's path): sizes
/// that share a class share its direct page.
#[test]
fn sizes_of_one_class_share_its_direct_page() {
    // 1025 and 1152 bytes are both in the 1152-byte class.
    assert_eq!(class_of(1025), class_of(1152));
    let a = homing::alloc(1025, 8);
    let b = homing::alloc(1152, 8);
    let a2 = homing::alloc(1025, 8);
    let c = homing::alloc(1024, 8);
    assert!(!a.is_null() && !b.is_null() && !a2.is_null() && !c.is_null());
    // Small pages are 64 KiB, aligned to it; one holds 56 blocks of the
    // class, so the direct page changes at most once in these three.
    let page = |p: *mut u8| p as usize >> homing::size_class::SMALL_PAGE_SHIFT;
    assert!(
        page(a) == page(b) || page(b) == page(a2),
        "one class, one direct page"
    );
    assert_ne!(page(b), page(c), "1024 bytes is another class's");
    // SAFETY: live blocks from homing, given up here.
    unsafe {
        homing::free(a);
        homing::free(b);
        homing::free(a2);
        homing::free(c);
    }
}
