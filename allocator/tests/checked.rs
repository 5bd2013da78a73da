//! Checked mode (`--features checked`): misuse is reported with a clear
//! message and the process aborts. Each case runs in a child process (this
//! test binary re-executed with `HOMING_CHECKED_CASE` set).
#![cfg(all(feature = "checked", not(miri)))]

use std::process::Command;

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

const CASE: &str = "HOMING_CHECKED_CASE";

/// Runs `case` in a child; returns its standard error. The child must die.
fn run_case(case: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CASE, case)
        .output()
        .unwrap();
    assert!(!out.status.success(), "case {case} did not abort");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The child side: does the misuse named by `HOMING_CHECKED_CASE`.
#[test]
fn child() {
    let Ok(case) = std::env::var(CASE) else {
        return;
    };
    // SAFETY: none: this is the misuse under test, in a child process.
    unsafe {
        match case.as_str() {
            "double-free-local" => {
                let p = homing::alloc(48, 8);
                homing::free(p);
                homing::free(p);
            }
            "double-free-remote" => {
                let p = homing::alloc(48, 8) as usize;
                std::thread::spawn(move || homing::free(p as *mut u8))
                    .join()
                    .unwrap();
                homing::free(p as *mut u8);
            }
            "double-free-huge" => {
                let p = homing::alloc(1 << 20, 8);
                let q = homing::alloc(1 << 20, 8);
                homing::free(p);
                homing::free(p);
                homing::free(q);
            }
            "foreign" => {
                let mut on_stack = [0u64; 4];
                homing::free(on_stack.as_mut_ptr().cast::<u8>().add(8));
            }
            "realloc-foreign" => {
                let mut on_stack = [0u64; 4];
                homing::realloc(on_stack.as_mut_ptr().cast::<u8>().add(8), 8, 8, 100);
            }
            "usable-size-freed" => {
                let p = homing::alloc(48, 8);
                homing::free(p);
                homing::usable_size(p);
            }
            "interior" => {
                let p = homing::alloc(64, 8);
                homing::free(p.add(16));
            }
            "heap-released" => {
                let heap = homing::Heap::new();
                heap.hold_release().unwrap();
                let _ = heap.alloc(std::alloc::Layout::new::<[u8; 32]>());
            }
            "heap-two-threads" => {
                // Shares a heap through `unsafe` (the type is !Sync): two
                // threads allocating and freeing at once, until caught.
                struct Shared(homing::Heap);
                // SAFETY: none: this is the misuse under test.
                unsafe impl Sync for Shared {}
                let shared = Shared(homing::Heap::new());
                let layout = std::alloc::Layout::new::<[u8; 48]>();
                let churn = |shared: &Shared| {
                    let start = std::time::Instant::now();
                    while start.elapsed() < std::time::Duration::from_secs(20) {
                        for _ in 0..1000 {
                            let p = shared.0.alloc(layout).unwrap();
                            shared.0.dealloc(p);
                        }
                    }
                };
                std::thread::scope(|s| {
                    s.spawn(|| churn(&shared));
                    churn(&shared);
                });
            }
            other => panic!("unknown case {other}"),
        }
    }
}

#[test]
fn double_free_is_reported() {
    for case in [
        "double-free-local",
        "double-free-remote",
        "double-free-huge",
    ] {
        let err = run_case(case);
        assert!(
            err.contains("homing: double free") || err.contains("already released"),
            "{case}: {err}"
        );
    }
}

#[test]
fn foreign_pointer_is_reported() {
    let err = run_case("foreign");
    assert!(err.contains("homing did not allocate"), "{err}");
}

#[test]
fn realloc_and_usable_size_check_their_pointer() {
    // The message names the call that was misused, not `free`.
    let err = run_case("realloc-foreign");
    assert!(
        err.contains("homing: realloc of a pointer homing did not allocate"),
        "{err}"
    );
    let err = run_case("usable-size-freed");
    assert!(
        err.contains("homing: usable_size of a freed block"),
        "{err}"
    );
}

#[test]
fn interior_pointer_is_reported() {
    let err = run_case("interior");
    assert!(err.contains("middle of a block"), "{err}");
}

#[test]
fn heap_misuse_is_reported() {
    let err = run_case("heap-released");
    assert!(
        err.contains(
            "homing: Heap::alloc of a heap that was released (hold_release) and not acquired again"
        ),
        "{err}"
    );
    // Two threads inside the heap's calls at once: caught as soon as two
    // calls overlap (the child gives up after 20 s and exits cleanly, which
    // fails the test).
    let err = run_case("heap-two-threads");
    assert!(
        err.contains(
            "of a heap another thread is using at this moment (two threads using one heap at once)"
        ),
        "{err}"
    );
}

#[test]
fn correct_use_passes_the_checks() {
    let mut v: Vec<Vec<u8>> = (0..10_000).map(|i| vec![i as u8; i % 700]).collect();
    let t = std::thread::spawn(move || {
        v.truncate(5_000);
        v
    });
    let v = t.join().unwrap();
    drop(v);
    homing::collect();
}
