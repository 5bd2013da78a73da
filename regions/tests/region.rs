//! Integration tests of `Region`: drops, reset, merge, huge objects,
//! alignment, and collections in a region.

use std::alloc::Layout;
use std::sync::{Arc, Mutex};

use allocator_api2::vec::Vec as AVec;
use homing_regions::{Region, LARGE_OBJECT};

/// Counts of work, shrunk under Miri (which is ~1000x slower).
const N: usize = if cfg!(miri) { 200 } else { 100_000 };

/// Records its id in a shared log when dropped.
struct Guard {
    id: usize,
    log: Arc<Mutex<Vec<usize>>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.log.lock().unwrap().push(self.id);
    }
}

fn log() -> Arc<Mutex<Vec<usize>>> {
    Arc::new(Mutex::new(Vec::new()))
}

#[test]
fn values_are_dropped_once_in_reverse_order() {
    let log = log();
    let region = Region::new();
    for id in 0..N {
        let g = region.alloc(Guard {
            id,
            log: log.clone(),
        });
        assert_eq!(g.id, id);
        // Values without `Drop` in between are never visited.
        region.alloc(id as u64);
    }
    assert!(log.lock().unwrap().is_empty());
    drop(region);
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen, (0..N).rev().collect::<Vec<_>>());
}

#[test]
fn slices_fill_with_and_drop() {
    let log = log();
    let region = Region::new();
    let s = region.alloc_slice_fill_with(10, |id| Guard {
        id,
        log: log.clone(),
    });
    assert_eq!(s[9].id, 9);
    let strings = region.alloc_slice_fill_with(3, |i| i.to_string());
    assert_eq!(strings[2], "2");
    let empty: &mut [Guard] = region.alloc_slice_fill_with(0, |_| unreachable!());
    assert!(empty.is_empty());
    drop(region);
    // One entry for the slice: its elements drop in slice order.
    assert_eq!(*log.lock().unwrap(), (0..10).collect::<Vec<_>>());
}

#[test]
fn panicking_fill_drops_what_was_made() {
    let log = log();
    let region = Region::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        region.alloc_slice_fill_with(5, |id| {
            assert!(id < 3, "boom");
            Guard {
                id,
                log: log.clone(),
            }
        });
    }));
    assert!(r.is_err());
    assert_eq!(*log.lock().unwrap(), vec![0, 1, 2]);
    drop(region);
    assert_eq!(log.lock().unwrap().len(), 3, "no second drop");
}

#[test]
fn a_panicking_destructor_does_not_stop_the_others() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("bomb");
        }
    }
    let log = log();
    let region = Region::new();
    region.alloc(Guard {
        id: 0,
        log: log.clone(),
    });
    region.alloc(Bomb);
    region.alloc(Guard {
        id: 2,
        log: log.clone(),
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(region)));
    assert!(r.is_err());
    assert_eq!(*log.lock().unwrap(), vec![2, 0]);
}

#[test]
fn reset_drops_and_keeps_the_largest_chunk() {
    let log = log();
    let mut region = Region::new();
    for id in 0..N {
        region.alloc(Guard {
            id,
            log: log.clone(),
        });
    }
    let before = region.capacity();
    region.reset();
    assert_eq!(log.lock().unwrap().len(), N);
    let kept = region.capacity();
    assert!(kept > 0 && kept <= before);
    // The region works after a reset, and drops again.
    let x = region.alloc(Guard {
        id: N,
        log: log.clone(),
    });
    assert_eq!(x.id, N);
    drop(region);
    assert_eq!(log.lock().unwrap().len(), N + 1);

    let mut empty = Region::new();
    empty.reset();
    assert_eq!(empty.capacity(), 0);
}

#[test]
fn merge_moves_chunks_and_drops() {
    let log = log();
    let a = Region::new();
    let b = Region::new();
    let xa = a.alloc(Guard {
        id: 1,
        log: log.clone(),
    }) as *const Guard;
    let xb = b.alloc(Guard {
        id: 2,
        log: log.clone(),
    }) as *const Guard;
    let bytes = b.alloc_slice_copy(&[7u8; 100]).as_ptr();
    let (cap_a, cap_b) = (a.capacity(), b.capacity());
    a.merge(b);
    assert_eq!(a.capacity(), cap_a + cap_b);
    // SAFETY: (test) the values live in `a` now and `a` is alive.
    unsafe {
        assert_eq!((*xa).id, 1);
        assert_eq!((*xb).id, 2);
        assert_eq!(*bytes.add(99), 7);
    }
    assert!(log.lock().unwrap().is_empty());
    a.alloc(Guard {
        id: 3,
        log: log.clone(),
    });
    drop(a);
    assert_eq!(*log.lock().unwrap(), vec![3, 2, 1]);

    // Merging into an empty region, and merging an empty one.
    let c = Region::new();
    let d = Region::new();
    d.alloc(Guard {
        id: 4,
        log: log.clone(),
    });
    c.merge(d);
    c.merge(Region::new());
    c.alloc(5u32);
    drop(c);
    assert_eq!(log.lock().unwrap().last(), Some(&4));
}

#[test]
fn huge_objects_get_their_own_mapping() {
    let region = Region::new();
    let small = region.alloc(1u8);
    let size = if cfg!(miri) {
        LARGE_OBJECT
    } else {
        8 * LARGE_OBJECT + 12345
    };
    let big = region.alloc_layout(Layout::from_size_align(size, 8).unwrap());
    // SAFETY: (test) `size` fresh bytes.
    unsafe {
        big.as_ptr().write_bytes(0xCD, size);
        assert_eq!(*big.as_ptr().add(size - 1), 0xCD);
    }
    assert!(region.capacity() >= size);
    let after = region.alloc(2u8);
    assert_eq!((*small, *after), (1, 2));
    let boxed = region.alloc(vec![0u64; 100_000.min(N)]);
    assert_eq!(boxed.len(), 100_000.min(N));
}

#[test]
fn every_alignment_up_to_the_chunk_size() {
    let region = Region::new();
    let mut align = 1;
    while align <= homing_regions::chunk::MAX_CHUNK * 2 {
        for size in [0, 1, align / 2, align, 3 * align / 2 + 1] {
            let p = region.alloc_layout(Layout::from_size_align(size, align).unwrap());
            assert_eq!(p.as_ptr() as usize % align, 0, "size {size} align {align}");
            // SAFETY: (test) `size` fresh bytes.
            unsafe { p.as_ptr().write_bytes(0x5A, size) };
        }
        align *= 2;
    }
}

#[test]
fn strings_and_copies() {
    let region = Region::new();
    let s = region.alloc_str("grüße");
    assert_eq!(s, "grüße");
    let e = region.alloc_str("");
    assert_eq!(e, "");
    let zst = region.alloc(());
    assert_eq!(*zst, ());
    let words: Vec<&str> = (0..N.min(1000))
        .map(|i| &*region.alloc_str(&i.to_string()))
        .collect();
    assert_eq!(
        words[999.min(N.min(1000) - 1)],
        (N.min(1000) - 1).to_string()
    );
}

#[test]
fn vec_in_a_region_grows_in_place() {
    let region = Region::new();
    // Take the region past its small first chunks (a 20 KiB object fits
    // none of them), so the whole growth below fits the current chunk.
    region.alloc_layout(core::alloc::Layout::from_size_align(20 << 10, 8).unwrap());
    let mut v: AVec<u64, &Region> = AVec::new_in(&region);
    v.push(0);
    let first = v.as_ptr();
    for i in 1..1000 {
        v.push(i);
    }
    // Nothing else was allocated, so every growth happened in place.
    assert_eq!(v.as_ptr(), first);
    assert_eq!(v.iter().sum::<u64>(), 999 * 1000 / 2);
    v.shrink_to_fit();
    drop(v);
    // The Vec was the most recent allocation: freeing it rewound the region,
    // so the next allocation reuses its address.
    let again = region.alloc(5u64) as *mut u64;
    assert_eq!(again as *const u64, first);

    // Growth that cannot happen in place copies.
    let mut a: AVec<u32, &Region> = AVec::new_in(&region);
    let mut b: AVec<u32, &Region> = AVec::new_in(&region);
    for i in 0..N as u32 {
        a.push(i);
        b.push(i * 2);
    }
    assert_eq!(a[N - 1], N as u32 - 1);
    assert_eq!(b[N - 1], 2 * (N as u32 - 1));
    let leaked: &mut [u32] = a.leak();
    assert_eq!(leaked.len(), N);
}

#[test]
fn hash_map_in_a_region() {
    let region = Region::new();
    let mut map = hashbrown::HashMap::new_in(&region);
    for i in 0..N {
        map.insert(i, i * 3);
    }
    assert_eq!(map.len(), N);
    assert_eq!(map[&(N / 2)], N / 2 * 3);
    map.retain(|k, _| k % 2 == 0);
    assert_eq!(map.len(), N.div_ceil(2));
}

#[test]
fn region_moves_to_another_thread_and_drops_there() {
    let log = log();
    let region = Region::new();
    for id in 0..N {
        region.alloc(Guard {
            id,
            log: log.clone(),
        });
    }
    let moved = std::thread::spawn(move || {
        region.alloc(Guard {
            id: N,
            log: log.clone(),
        });
        drop(region);
        log
    })
    .join()
    .unwrap();
    assert_eq!(moved.lock().unwrap().len(), N + 1);
}

#[test]
fn many_regions_on_many_threads() {
    let threads = if cfg!(miri) { 2 } else { 4 };
    let rounds = if cfg!(miri) { 3 } else { 200 };
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                for r in 0..rounds {
                    let region = Region::new();
                    let v = region.alloc_slice_fill_with(N / 10, |i| (t, r, i));
                    assert_eq!(v[N / 10 - 1], (t, r, N / 10 - 1));
                    // Half the regions die on another thread.
                    if r % 2 == 0 {
                        std::thread::spawn(move || drop(region)).join().unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
