//! Integration tests of `Iso` and `Frozen`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use homing_regions::{Family, Iso, Region};

const N: usize = if cfg!(miri) { 100 } else { 100_000 };

/// A singly linked list whose nodes live in the region.
struct List<'r> {
    head: Option<&'r mut Cons<'r>>,
    len: usize,
}
struct Cons<'r> {
    value: u64,
    tail: Option<&'r mut Cons<'r>>,
}
struct ListF;
impl Family for ListF {
    type Of<'r> = List<'r>;
}

fn push<'r>(region: &'r Region, list: &mut List<'r>, value: u64) {
    let tail = list.head.take();
    list.head = Some(region.alloc_no_drop(Cons { value, tail }));
    list.len += 1;
}

fn sum(list: &List<'_>) -> u64 {
    let mut s = 0;
    let mut at = list.head.as_deref();
    while let Some(c) = at {
        s += c.value;
        at = c.tail.as_deref();
    }
    s
}

/// Counts drops in a shared counter.
struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn iso_moves_across_threads_and_is_mutated_there() {
    let mut iso = Iso::<ListF>::new(|region| {
        let mut list = List { head: None, len: 0 };
        for i in 0..N as u64 {
            push(region, &mut list, i);
        }
        list
    });
    assert_eq!(iso.with(|_, l| l.len), N);
    // Ping-pong it through three threads, adding nodes on each.
    for round in 0..3u64 {
        iso = std::thread::spawn(move || {
            iso.with(|region, list| {
                for i in 0..N as u64 {
                    push(region, list, round * 1_000_000 + i);
                }
                // Mutate an existing node in place.
                list.head.as_mut().unwrap().value += 1;
            });
            iso
        })
        .join()
        .unwrap();
    }
    let n = N as u64;
    let expected = n * (n - 1) / 2
        + (0..3)
            .map(|r| r * 1_000_000 * n + n * (n - 1) / 2)
            .sum::<u64>()
        + 3;
    assert_eq!(iso.with(|_, l| (l.len, sum(l))), (4 * N, expected));
}

#[test]
fn iso_drops_root_and_values_once_wherever_dropped() {
    struct RootF;
    impl Family for RootF {
        type Of<'r> = (Counted, &'r Counted);
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let iso = Iso::<RootF>::new(move |region| {
        for _ in 0..10 {
            region.alloc(Counted(d.clone()));
        }
        let kept = &*region.alloc(Counted(d.clone()));
        (Counted(d), kept)
    });
    std::thread::spawn(move || drop(iso)).join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 12);
}

#[test]
fn iso_merge_links_two_graphs() {
    let mut a = Iso::<ListF>::new(|region| {
        let mut l = List { head: None, len: 0 };
        push(region, &mut l, 1);
        l
    });
    let b = std::thread::spawn(|| {
        Iso::<ListF>::new(|region| {
            let mut l = List { head: None, len: 0 };
            for i in 0..N as u64 {
                push(region, &mut l, i);
            }
            l
        })
    })
    .join()
    .unwrap();
    a.merge(b, |region, root, other| {
        // Append `other`'s nodes behind ours, then add one more.
        let mut at = root.head.as_mut().unwrap();
        while at.tail.is_some() {
            at = at.tail.as_mut().unwrap();
        }
        at.tail = other.head;
        root.len += other.len;
        push(region, root, 1000);
    });
    let n = N as u64;
    assert_eq!(
        a.with(|_, l| (l.len, sum(l))),
        (N + 2, 1 + n * (n - 1) / 2 + 1000)
    );
}

#[test]
fn iso_build_panic_frees_the_region() {
    struct UnitF;
    impl Family for UnitF {
        type Of<'r> = ();
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let r = std::panic::catch_unwind(move || {
        Iso::<UnitF>::new(move |region| {
            region.alloc(Counted(d));
            panic!("build failed");
        })
    });
    assert!(r.is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn frozen_is_read_by_eight_threads_and_released_by_the_last() {
    const READERS: usize = 8;
    struct TreeF;
    impl Family for TreeF {
        type Of<'r> = (&'r [u64], Counted);
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let frozen = Iso::<TreeF>::new(move |region| {
        region.alloc(Counted(d.clone()));
        let data = region.alloc_slice_fill_with(N, |i| i as u64);
        (&*data, Counted(d))
    })
    .freeze();
    let start = Arc::new(Barrier::new(READERS));
    let done = Arc::new(Barrier::new(READERS));
    let handles: Vec<_> = (0..READERS)
        .map(|t| {
            let f = frozen.clone();
            let (start, done, drops) = (start.clone(), done.clone(), drops.clone());
            std::thread::spawn(move || {
                start.wait();
                let s = f.with(|(data, _)| data.iter().sum::<u64>());
                done.wait();
                // Thread t drops its handle after t others did: the last one
                // frees the region.
                assert_eq!(drops.load(Ordering::SeqCst), 0);
                std::thread::sleep(std::time::Duration::from_millis(t as u64 * 5));
                drop(f);
                s
            })
        })
        .collect();
    drop(frozen);
    let n = N as u64;
    for h in handles {
        assert_eq!(h.join().unwrap(), n * (n - 1) / 2);
    }
    assert_eq!(
        drops.load(Ordering::SeqCst),
        2,
        "root and value dropped once"
    );
}

#[test]
fn frozen_thaws_when_alone() {
    struct NumF;
    impl Family for NumF {
        type Of<'r> = &'r mut u64;
    }
    let frozen = Iso::<NumF>::new(|r| r.alloc(1u64)).freeze();
    let other = frozen.clone();
    let frozen = frozen.try_thaw().expect_err("two handles");
    drop(other);
    let mut iso = frozen.try_thaw().expect("one handle");
    iso.with(|_, n| **n += 1);
    assert_eq!(iso.with(|_, n| **n), 2);
}
