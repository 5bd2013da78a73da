//! The `GlobalAlloc` contract, with homing as this test binary's allocator.

use std::alloc::{GlobalAlloc, Layout};

use homing::Homing;

#[global_allocator]
static GLOBAL: Homing = Homing;

/// Sizes 1 B – 4 MiB (a geometric sweep with neighbours of each step).
fn sizes() -> Vec<usize> {
    let mut v = Vec::new();
    let mut s = 1usize;
    while s <= 4 << 20 {
        for d in [s.saturating_sub(1).max(1), s, s + 1, s + s / 3] {
            v.push(d);
        }
        s *= 2;
    }
    v.sort_unstable();
    v.dedup();
    v
}

fn aligns() -> Vec<usize> {
    (0..=20).map(|k| 1usize << k).collect() // 1 B – 1 MiB
}

#[test]
fn every_size_and_alignment_is_aligned_and_writable() {
    let step = if cfg!(miri) { 7 } else { 1 };
    for &size in sizes().iter().step_by(step) {
        for &align in aligns().iter().step_by(step) {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: non-zero size layouts; each block is freed once.
            unsafe {
                let p = GLOBAL.alloc(layout);
                assert!(!p.is_null(), "size {size} align {align}");
                assert_eq!(p as usize % align, 0, "size {size} align {align}");
                assert!(homing::usable_size(p) >= size);
                p.write_bytes(0xA5, size);
                assert_eq!(*p.add(size - 1), 0xA5);
                GLOBAL.dealloc(p, layout);
            }
        }
    }
}

#[test]
fn alignments_beyond_a_segment_go_to_the_os() {
    for align in [4 << 20, 8 << 20] {
        let layout = Layout::from_size_align(100, align).unwrap();
        // SAFETY: valid layout; freed once.
        unsafe {
            let p = GLOBAL.alloc(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            p.write_bytes(1, 100);
            GLOBAL.dealloc(p, layout);
        }
    }
}

#[test]
fn alloc_zeroed_is_zero_even_for_reused_memory() {
    for &size in sizes().iter().filter(|&&s| s <= 1 << 20) {
        let layout = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: valid layouts; every block freed once.
        unsafe {
            // Dirty a block of this class, free it, then ask for zeroes: the
            // same block is likely to come back.
            let p = GLOBAL.alloc(layout);
            p.write_bytes(0xFF, size);
            GLOBAL.dealloc(p, layout);
            let z = GLOBAL.alloc_zeroed(layout);
            assert!(!z.is_null());
            assert!(
                std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0),
                "size {size}"
            );
            GLOBAL.dealloc(z, layout);
        }
    }
}

#[test]
fn realloc_keeps_the_prefix() {
    let mut size = 1usize;
    let layout = Layout::from_size_align(size, 8).unwrap();
    // SAFETY: we track the live size; realloc'd pointers replace the old.
    unsafe {
        let mut p = GLOBAL.alloc(layout);
        *p = 7;
        let mut sizes: Vec<usize> = (0..24).map(|k| 3usize << k).collect();
        sizes.extend((0..24).rev().map(|k| 5usize << k));
        for new in sizes {
            let keep = size.min(new);
            for i in 0..keep.min(64) {
                p.add(i).write((i as u8).wrapping_mul(31));
            }
            let q = GLOBAL.realloc(p, Layout::from_size_align(size, 8).unwrap(), new);
            assert!(!q.is_null());
            for i in 0..keep.min(64) {
                assert_eq!(*q.add(i), (i as u8).wrapping_mul(31), "{size} -> {new}");
            }
            p = q;
            size = new;
        }
        GLOBAL.dealloc(p, Layout::from_size_align(size, 8).unwrap());
    }
}

#[test]
fn impossible_sizes_return_null() {
    for size in [isize::MAX as usize - 4095, isize::MAX as usize / 2, 1 << 60] {
        let layout = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: a valid layout; a null result is expected.
        let p = unsafe { GLOBAL.alloc(layout) };
        assert!(p.is_null(), "size {size}");
        // SAFETY: as above.
        let p = unsafe { GLOBAL.alloc_zeroed(layout) };
        assert!(p.is_null(), "size {size}");
    }
    assert!(homing::alloc(usize::MAX, 16).is_null());
    assert!(homing::alloc(100, 3).is_null());
    // SAFETY: a live block; realloc to an impossible size leaves it alone.
    unsafe {
        let p = homing::alloc(64, 8);
        p.write_bytes(9, 64);
        assert!(homing::realloc(p, 64, 8, isize::MAX as usize - 100).is_null());
        assert_eq!(*p.add(63), 9);
        homing::free(p);
    }
}

/// `true` unless the kernel overcommits without any check
/// (`vm.overcommit_memory = 1`), where no size is refused up front.
fn kernel_checks_commit() -> bool {
    std::fs::read_to_string("/proc/sys/vm/overcommit_memory")
        .map(|mode| mode.trim() != "1")
        .unwrap_or(true)
}

/// Sizes that fit the address space but not the machine: the kernel's
/// overcommit check refuses them (as it does for glibc's `malloc`), so
/// homing must return null instead of a mapping that kills the program
/// when it is touched.
#[test]
fn sizes_beyond_what_the_kernel_commits_return_null() {
    if cfg!(miri) || !kernel_checks_commit() {
        eprintln!("skipped: vm.overcommit_memory = 1 accepts every size");
        return;
    }
    for (size, align) in [(1usize << 40, 16), (1 << 40, 1 << 22), (1 << 44, 1 << 30)] {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: a valid layout; a null result is expected.
        let p = unsafe { GLOBAL.alloc(layout) };
        assert!(p.is_null(), "{size} bytes at {align} were handed out");
    }
    let mut v: Vec<u8> = Vec::new();
    assert!(v.try_reserve_exact(1 << 40).is_err());
    // A huge block asked to grow beyond the machine stays as it was.
    // SAFETY: a live block; a failed realloc leaves it alone.
    unsafe {
        let p = homing::alloc(1 << 20, 16);
        p.write_bytes(7, 1 << 20);
        assert!(homing::realloc(p, 1 << 20, 16, 1 << 40).is_null());
        assert_eq!(*p.add((1 << 20) - 1), 7);
        homing::free(p);
    }
}

#[test]
fn free_of_null_does_nothing() {
    // SAFETY: null is allowed.
    unsafe { homing::free(std::ptr::null_mut()) };
}

#[test]
fn many_small_blocks_round_trip() {
    let n = if cfg!(miri) { 2_000 } else { 200_000 };
    let mut v: Vec<Box<[u8]>> = Vec::new();
    for i in 0..n {
        v.push(vec![i as u8; 1 + i % 300].into_boxed_slice());
    }
    for (i, b) in v.iter().enumerate() {
        assert!(b.iter().all(|&x| x == i as u8));
    }
    drop(v);
    homing::collect();
}

#[test]
fn huge_blocks_grown_in_small_steps_move_rarely() {
    let (start, end, step) = if cfg!(miri) {
        (200 << 10, 1 << 20, 64 << 10)
    } else {
        (200 << 10, 64 << 20, 4 << 10)
    };
    let mut size = start;
    let p0 = homing::alloc(size, 16);
    // SAFETY: `p` is always the live block of `size` bytes.
    unsafe {
        p0.write_bytes(0x5A, size);
        let mut p = p0;
        let mut moves = 0;
        while size < end {
            let q = homing::realloc(p, size, 16, size + step);
            assert!(!q.is_null());
            assert_eq!(*q.add(size - 1), 0x5A, "prefix kept");
            if q != p {
                moves += 1;
            }
            q.add(size).write_bytes(0x5A, step);
            p = q;
            size += step;
        }
        // In place where the address range allows, else by half again: a
        // logarithmic number of copies, not one per step.
        assert!(
            moves <= 64,
            "{moves} moves for {} steps",
            (end - start) / step
        );
        homing::free(p);
    }
}
