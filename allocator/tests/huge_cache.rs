//! The cache of released huge mappings (`huge::cache`): a freed huge block's
//! mapping is reused by the next huge allocation that fits, on any thread;
//! it is purged after the purge delay and unmapped later; reused blocks
//! keep their alignment and zeroing promises; first-class heaps count and
//! limit what they take; the out-of-memory path gives the cache back.
//!
//! The cache and its counters are process-wide, so each case runs in a
//! child process (this binary re-executed with `HOMING_HUGE_CASE` set).
#![cfg(not(miri))]

mod common;

use std::alloc::Layout;
use std::process::Command;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

const CASE: &str = "HOMING_HUGE_CASE";
const MIB: usize = 1 << 20;
/// Above `MEDIUM_MAX` (128 KiB): a huge block.
const HUGE: usize = MIB;

fn alloc(size: usize, align: usize) -> *mut u8 {
    let p = homing::alloc(size, align);
    assert!(!p.is_null(), "alloc({size}, {align}) failed");
    p
}

fn free(p: *mut u8) {
    // SAFETY: the cases free only live blocks of ours, once.
    unsafe { homing::free(p) }
}

/// Writes a pattern of `seed` over the block's ends and one byte per OS
/// page.
fn fill(p: *mut u8, size: usize, seed: u8) {
    for i in (0..size).step_by(4096).chain([size - 1]) {
        // SAFETY: `i < size`, inside the live block.
        unsafe { p.add(i).write(seed ^ (i / 4096) as u8) };
    }
}

/// Checks what `fill(p, size, seed)` wrote.
fn check(p: *mut u8, size: usize, seed: u8) {
    check_prefix(p, size, size, seed);
}

/// Checks what `fill(p, filled, seed)` wrote below `n`.
fn check_prefix(p: *mut u8, filled: usize, n: usize, seed: u8) {
    for i in (0..filled)
        .step_by(4096)
        .chain([filled - 1])
        .filter(|&i| i < n)
    {
        // SAFETY: `i < size`, inside the live block.
        let got = unsafe { p.add(i).read() };
        assert_eq!(got, seed ^ (i / 4096) as u8, "byte {i} of {filled} changed");
    }
}

/// Calls `collect` (which sweeps the cache) until `done` or a timeout.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{what}: not after 5 s\n{}",
            homing::stats()
        );
        std::thread::sleep(Duration::from_millis(5));
        homing::collect();
    }
}

fn case_reuse() {
    let before = homing::stats();
    let p = alloc(HUGE, 16);
    fill(p, HUGE, 1);
    free(p);
    let cached = homing::stats();
    assert!(cached.huge_cached >= HUGE, "not cached\n{cached}");
    assert_eq!(cached.huge_blocks, before.huge_blocks);
    // The same size again: the same mapping, no new one.
    let q = alloc(HUGE, 16);
    let s = homing::stats();
    assert_eq!(q, p, "a fresh mapping instead of the cached one");
    assert_eq!(s.huge_mapped, cached.huge_mapped, "mapped again\n{s}");
    assert_eq!(s.huge_reused, cached.huge_reused + 1);
    assert_eq!(s.huge_cached, 0);
    assert_eq!(s.os_mapped, cached.os_mapped, "address space changed");
    free(q);
    // Smaller (down to half): reused too, with the larger mapping's room
    // usable.
    let smaller = HUGE / 2 + HUGE / 8;
    let r = alloc(smaller, 16);
    assert_eq!(r, p);
    // SAFETY: a live block.
    assert!(unsafe { homing::usable_size(r) } >= HUGE);
    free(r);
    // Much smaller: not reused (it would waste most of the mapping).
    let mapped = homing::stats().huge_mapped;
    let t = alloc(HUGE / 4, 16);
    assert_ne!(t, p);
    assert_eq!(homing::stats().huge_mapped, mapped + 1);
    free(t);
    // Blocks of about 300 KiB (the smallest huge sizes) reuse as well.
    let a = alloc(300 << 10, 16);
    free(a);
    let b = alloc(300 << 10, 16);
    assert_eq!(a, b);
    free(b);
}

fn case_purge_then_unmap() {
    // Resident while cached, for the purge delay (10 ms), then purged
    // (RSS back, mapping kept), then unmapped (address space back).
    let size = 16 * MIB;
    let base = homing::stats();
    let rss0 = common::current_rss();
    let p = alloc(size, 16);
    // SAFETY: a live block of `size` bytes: touch all of it.
    unsafe { p.write_bytes(0x5a, size) };
    free(p);
    let cached = homing::stats();
    assert!(cached.huge_cached >= size, "{cached}");
    if let (Some(r0), Some(r1)) = (rss0, common::current_rss()) {
        assert!(r1 >= r0 + size / 2, "not resident while cached");
    }
    wait_for("purged", || {
        homing::stats().os_purged >= cached.os_purged + size - 64 * 1024
    });
    if let (Some(r0), Some(r2)) = (rss0, common::current_rss()) {
        assert!(r2 < r0 + 4 * MIB, "purged but still resident");
    }
    // Purged, still cached: reused, and it reads as zero where purged.
    assert!(homing::stats().huge_cached >= size);
    let z = homing::alloc_zeroed(size, 16);
    assert_eq!(z, p, "the purged mapping was not reused");
    // SAFETY: a live zeroed block of `size` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(z, size) };
    assert!(bytes.iter().all(|&b| b == 0), "a reused block not zeroed");
    free(z);
    // Left alone, it is unmapped after the decay (16 purge delays).
    wait_for("unmapped", || homing::stats().huge_cached == 0);
    let end = homing::stats();
    assert!(end.os_mapped <= base.os_mapped, "{end}\nbefore: {base}");
}

fn case_zeroed_resident() {
    // A resident cached mapping holds old bytes: alloc_zeroed clears them.
    homing::configure(homing::Setting::PurgeDelayMs(None));
    for &size in &[200 << 10, HUGE, 3 * MIB + 12345] {
        let p = alloc(size, 64);
        // SAFETY: a live block of `size` bytes.
        unsafe { p.write_bytes(0xff, size) };
        free(p);
        let reused = homing::stats().huge_reused;
        let z = homing::alloc_zeroed(size, 64);
        assert_eq!(homing::stats().huge_reused, reused + 1, "not reused");
        // SAFETY: a live zeroed block of `size` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(z, size) };
        assert!(
            bytes.iter().all(|&b| b == 0),
            "{size}: old bytes in alloc_zeroed"
        );
        free(z);
    }
}

fn case_alignment() {
    // Alignments up to 512 KiB reuse one cached mapping (made at 512 KiB,
    // so every one fits it within the bounded waste), the block placed
    // for each new alignment.
    let size = 2 * MIB;
    let p = alloc(size, 512 << 10);
    free(p);
    for log in 4..=19 {
        let align = 1usize << log;
        let reused = homing::stats().huge_reused;
        let q = alloc(size, align);
        assert_eq!(q as usize % align, 0, "{size} at {align}: misaligned");
        // SAFETY: a live block.
        assert!(unsafe { homing::usable_size(q) } >= size);
        assert_eq!(
            homing::stats().huge_reused,
            reused + 1,
            "{align}: not reused\n{}",
            homing::stats()
        );
        fill(q, size, log as u8);
        check(q, size, log as u8);
        free(q);
    }
    // 1 and 2 MiB: a mapping made at that alignment is reused at it.
    for log in 20..=21 {
        let align = 1usize << log;
        let p = alloc(size, align);
        free(p);
        let reused = homing::stats().huge_reused;
        let q = alloc(size, align);
        assert_eq!(q, p);
        assert_eq!(q as usize % align, 0);
        assert_eq!(homing::stats().huge_reused, reused + 1);
        free(q);
    }
    // 4 MiB (a segment): the block is segment-aligned, its header at the
    // mapping's base, one segment below: cached and reused like the rest.
    let q = alloc(size, 4 * MIB);
    assert_eq!(q as usize % (4 * MIB), 0);
    fill(q, size, 8);
    free(q);
    let reused = homing::stats().huge_reused;
    let r = alloc(size, 4 * MIB);
    assert_eq!(r, q);
    assert_eq!(homing::stats().huge_reused, reused + 1);
    free(r);
    // A zero-byte segment-aligned block still owns two words (checked mode
    // writes its mark there): it does not sit at its mapping's very end.
    for _ in 0..2 {
        let z = alloc(0, 4 * MIB);
        assert_eq!(z as usize % (4 * MIB), 0);
        // SAFETY: every block has room for two words.
        unsafe { z.cast::<[u64; 2]>().write([1, 2]) };
        free(z);
    }
    // More than a segment: the header sits inside the mapping, not at its
    // base: never cached, always aligned.
    for log in 23..=24 {
        let align = 1usize << log;
        let q = alloc(size, align);
        assert_eq!(q as usize % align, 0);
        fill(q, size, 9);
        let cached = homing::stats().huge_cached;
        free(q);
        assert_eq!(homing::stats().huge_cached, cached, "{align}: cached");
    }
}

fn case_realloc_across() {
    // small → medium → huge → larger huge → and back, contents kept.
    let sizes = [
        100,
        20_000,
        130_000,
        300_000,
        5 * MIB,
        9 * MIB,
        600_000,
        128 << 10,
        5_000,
        24,
    ];
    for round in 0..3u8 {
        let mut p = alloc(sizes[0], 16);
        fill(p, sizes[0], round);
        let mut size = sizes[0];
        for &next in &sizes[1..] {
            // SAFETY: `p` is a live block of `size` bytes at 16.
            let q = unsafe { homing::realloc(p, size, 16, next) };
            assert!(!q.is_null());
            check_prefix(q, size, size.min(next), round);
            fill(q, next, round);
            p = q;
            size = next;
        }
        free(p);
    }
    // A reused mapping grows in place (mremap) when the range after it is
    // free; either way the contents move with it.
    let p = alloc(HUGE, 16);
    free(p);
    let q = alloc(HUGE, 16);
    assert_eq!(q, p);
    fill(q, HUGE, 3);
    // SAFETY: a live block of HUGE bytes.
    let r = unsafe { homing::realloc(q, HUGE, 16, 6 * MIB) };
    assert!(!r.is_null());
    check(r, HUGE, 3);
    fill(r, 6 * MIB, 4);
    free(r);
}

fn case_cross_thread() {
    // Huge blocks made here, freed on another thread: their mappings go to
    // the shared cache (no message to this thread) and come back here.
    let sizes = [300 << 10, HUGE, 2 * MIB + 4096, 5 * MIB];
    let blocks: Vec<usize> = sizes
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let p = alloc(s, 16);
            fill(p, s, i as u8);
            p as usize
        })
        .collect();
    let before = homing::stats();
    let sizes2 = sizes;
    std::thread::spawn(move || {
        for (i, (&p, &s)) in blocks.iter().zip(&sizes2).enumerate() {
            check(p as *mut u8, s, i as u8);
            free(p as *mut u8);
        }
    })
    .join()
    .unwrap();
    let mid = homing::stats();
    assert_eq!(mid.huge_blocks, before.huge_blocks - sizes.len());
    for &s in &sizes {
        let p = alloc(s, 16);
        free(p);
    }
    let end = homing::stats();
    assert_eq!(end.huge_mapped, mid.huge_mapped, "mapped again\n{end}");
    assert!(end.huge_reused >= mid.huge_reused + sizes.len());

    // Two threads allocating and freeing huge blocks of a few sizes at
    // once, handing some to each other: every block keeps its contents.
    let (tx_a, rx_b) = std::sync::mpsc::channel::<(usize, usize, u8)>();
    let (tx_b, rx_a) = std::sync::mpsc::channel::<(usize, usize, u8)>();
    let worker = |seed: u64,
                  tx: std::sync::mpsc::Sender<(usize, usize, u8)>,
                  rx: std::sync::mpsc::Receiver<(usize, usize, u8)>| {
        std::thread::spawn(move || {
            let mut rng = common::Rng::new(seed);
            let mut mine: Vec<(usize, usize, u8)> = Vec::new();
            for i in 0..2_000 {
                let size = [200 << 10, 700 << 10, HUGE, 3 * MIB][rng.below(4)];
                let tag = (i % 251) as u8;
                let p = alloc(size, 16);
                fill(p, size, tag);
                mine.push((p as usize, size, tag));
                if mine.len() > 6 {
                    let b = mine.swap_remove(rng.below(mine.len()));
                    if rng.percent(40) {
                        let _ = tx.send(b);
                    } else {
                        check(b.0 as *mut u8, b.1, b.2);
                        free(b.0 as *mut u8);
                    }
                }
                while let Ok(b) = rx.try_recv() {
                    check(b.0 as *mut u8, b.1, b.2);
                    free(b.0 as *mut u8);
                }
            }
            drop(tx);
            for b in mine.into_iter().chain(rx.iter()) {
                check(b.0 as *mut u8, b.1, b.2);
                free(b.0 as *mut u8);
            }
        })
    };
    let a = worker(1, tx_a, rx_a);
    let b = worker(2, tx_b, rx_b);
    a.join().unwrap();
    b.join().unwrap();
    let s = homing::stats();
    assert_eq!(s.huge_blocks, end.huge_blocks, "huge blocks leaked\n{s}");
    assert!(
        s.huge_reused > end.huge_reused + 2_000,
        "the cache hardly served\n{s}"
    );
}

fn case_first_class() {
    let heap = homing::Heap::new();
    let layout = Layout::from_size_align(HUGE, 16).unwrap();
    let p = heap.alloc(layout).unwrap();
    let live = heap.stats();
    assert!(live.in_use_bytes >= HUGE && live.live_bytes >= HUGE);
    // SAFETY: a live block of the heap, freed once.
    unsafe { heap.dealloc(p) };
    let freed = heap.stats();
    assert_eq!(freed.live_bytes, 0, "{freed:?}");
    assert_eq!(freed.in_use_bytes, 0, "{freed:?}");
    assert_eq!(
        freed.os_bytes, 0,
        "a cached mapping still counted: {freed:?}"
    );
    // The same size: the heap takes the cached mapping, counted as before.
    let mapped = homing::stats().huge_mapped;
    let q = heap.alloc(layout).unwrap();
    assert_eq!(q, p);
    assert_eq!(homing::stats().huge_mapped, mapped);
    assert_eq!(heap.stats().in_use_bytes, live.in_use_bytes);
    // SAFETY: as above.
    unsafe { heap.dealloc(q) };
    // A smaller request does not take the larger mapping: a first-class
    // heap counts exactly what it would map fresh.
    let small = Layout::from_size_align(HUGE - HUGE / 8, 16).unwrap();
    let r = heap.alloc(small).unwrap();
    assert_ne!(r, p);
    assert!(heap.stats().in_use_bytes <= small.size() + 3 * 4096);
    // SAFETY: as above.
    unsafe { heap.dealloc(r) };
    // The limit counts cached and fresh mappings alike.
    heap.set_limit(Some(HUGE + HUGE / 2));
    let a = heap.alloc(layout).unwrap();
    assert!(heap.alloc(layout).is_none(), "over the limit");
    // SAFETY: as above.
    unsafe { heap.dealloc(a) };
    let b = heap.alloc(layout).unwrap();
    assert_eq!(b, a, "the cached mapping under a limit");
    // Blocks freed into the cache by the heap serve the thread heap too.
    // SAFETY: as above.
    unsafe { heap.dealloc(b) };
    let t = alloc(HUGE, 16);
    assert_eq!(t, b.as_ptr());
    free(t);
    // Destroy with live huge blocks: they go, the counts balance.
    heap.set_limit(None);
    let before = homing::stats();
    let _x = heap
        .alloc(Layout::from_size_align(2 * MIB, 16).unwrap())
        .unwrap();
    let _y = heap.alloc(layout).unwrap();
    heap.destroy();
    let after = homing::stats();
    assert_eq!(after.huge_blocks, before.huge_blocks, "{after}");
    assert_eq!(after.live_bytes, before.live_bytes, "{after}");
}

/// The process's address space (`VmSize`), in bytes.
fn vm_size() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    let kib: usize = line["VmSize:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

fn case_out_of_memory() {
    // Fill the cache, then cap the address space so that a new, larger
    // mapping only fits once the cache is given back: the allocation
    // succeeds after the out-of-memory path drains it.
    homing::configure(homing::Setting::PurgeDelayMs(None));
    // 31 MiB and five headers: within the cache's 32 MiB.
    let sizes = [4 * MIB, 5 * MIB, 6 * MIB, 7 * MIB, 9 * MIB];
    let blocks: Vec<*mut u8> = sizes.iter().map(|&s| alloc(s, 16)).collect();
    for p in blocks {
        free(p);
    }
    let cached = homing::stats().huge_cached;
    assert!(cached >= 31 * MIB, "{}", homing::stats());
    let vm = vm_size();
    let limit = (vm + 16 * MIB) as libc::rlim_t;
    let rl = libc::rlimit {
        rlim_cur: limit,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a valid rlimit struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &rl) }, 0);
    // 24 MiB needs 28 MiB of address space (the aligned over-reservation):
    // more than the 16 MiB left, less than what the cache gives back.
    let p = homing::alloc(24 * MIB, 16);
    assert!(
        !p.is_null(),
        "the cache was not given back\n{}",
        homing::stats()
    );
    fill(p, 24 * MIB, 7);
    assert_eq!(homing::stats().huge_cached, 0, "{}", homing::stats());
    free(p);
}

fn case_background() {
    // With the background purger, a cached mapping is purged and unmapped
    // while every thread sleeps (no allocation, no free, no collect).
    let size = 16 * MIB;
    let p = alloc(size, 16);
    // SAFETY: a live block of `size` bytes: touch all of it.
    unsafe { p.write_bytes(0x33, size) };
    free(p);
    let cached = homing::stats();
    assert!(cached.huge_cached >= size, "{cached}");
    let start = Instant::now();
    let mut purged = false;
    while start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
        let s = homing::stats();
        purged |= s.os_purged >= cached.os_purged + size - 64 * 1024;
        // Both: unmapped alone does not show the purge happened first (the
        // purger takes a mapping out of the cache's entries while it purges
        // it, still counted in `huge_cached`, and puts it back, purged, to
        // unmap it later).
        if purged && s.huge_cached == 0 {
            break;
        }
    }
    let end = homing::stats();
    assert!(purged, "never purged\n{end}");
    assert_eq!(end.huge_cached, 0, "never unmapped\n{end}");
}

/// The child side.
#[test]
fn child() {
    let Ok(case) = std::env::var(CASE) else {
        return;
    };
    match case.as_str() {
        "reuse" => case_reuse(),
        "purge" => case_purge_then_unmap(),
        "zeroed" => case_zeroed_resident(),
        "alignment" => case_alignment(),
        "realloc" => case_realloc_across(),
        "cross_thread" => case_cross_thread(),
        "first_class" => case_first_class(),
        "out_of_memory" => case_out_of_memory(),
        "background" => case_background(),
        other => panic!("unknown case {other}"),
    }
}

fn run_case(case: &str) {
    run_case_with(case, &[]);
}

fn run_case_with(case: &str, env: &[(&str, &str)]) {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CASE, case)
        .env_remove("HOMING_PURGE_DELAY_MS")
        .env_remove("HOMING_BACKGROUND_PURGE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "case {case} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_freed_mapping_is_reused() {
    run_case("reuse");
}

#[test]
fn cached_mappings_are_purged_then_unmapped() {
    run_case("purge");
}

#[test]
fn reused_blocks_are_zeroed_when_asked() {
    run_case("zeroed");
}

#[test]
fn reused_blocks_keep_their_alignment() {
    run_case("alignment");
}

#[test]
fn realloc_across_every_boundary_keeps_contents() {
    run_case("realloc");
}

#[test]
fn frees_from_other_threads_feed_the_shared_cache() {
    run_case("cross_thread");
}

#[test]
fn first_class_heaps_count_and_limit_cached_mappings() {
    run_case("first_class");
}

#[test]
fn out_of_memory_gives_the_cache_back() {
    run_case("out_of_memory");
}

#[test]
fn the_background_purger_ages_the_cache_of_an_idle_process() {
    run_case_with("background", &[("HOMING_BACKGROUND_PURGE", "1")]);
}
