//! Freed memory follows the live set when a thread stops allocating new
//! pages: a thread that keeps allocating from a warm page (steady state)
//! purges what it freed once the purge delay has passed, and with the
//! background purger (`HOMING_BACKGROUND_PURGE=1`) so does a thread that
//! sleeps. Each case runs in a child process (this binary re-executed with
//! `HOMING_IDLE_CASE` set), so its RSS is its own.
#![cfg(not(miri))]

mod common;

use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

const CASE: &str = "HOMING_IDLE_CASE";
/// Freed by the thread under test: 64 MiB of 1 KiB blocks.
const FREED_BYTES: usize = 64 << 20;
const BLOCK: usize = 1024;
/// What may stay resident once memory has returned (pages each class
/// still allocates from, the test's own buffers, noise).
const SLACK: usize = 12 << 20;
/// How long a case waits for memory to return: many purge delays (10 ms).
const PATIENCE: Duration = Duration::from_millis(1500);

/// Of the blocks `fill_and_free` allocates, one in this many stays live
/// (freed only at the end of the case): one or two a segment, so segments
/// are never released whole and only page purges can give memory back.
const KEEP_ONE_IN: usize = 3000;

/// Allocates `FREED_BYTES` of small blocks and frees all but one in
/// [`KEEP_ONE_IN`]; returns the RSS before it started and the kept blocks.
fn fill_and_free() -> (usize, Vec<usize>) {
    let before = common::current_rss().unwrap();
    let mut kept = Vec::with_capacity(FREED_BYTES / BLOCK / KEEP_ONE_IN + 1);
    let blocks = common::filled_blocks(FREED_BYTES / BLOCK, BLOCK);
    for (i, p) in blocks.into_iter().enumerate() {
        if i % KEEP_ONE_IN == 0 {
            kept.push(p);
        } else {
            // SAFETY: live blocks of ours.
            unsafe { homing::free(p as *mut u8) };
        }
    }
    (before, kept)
}

fn free_all(blocks: Vec<usize>) {
    for p in blocks {
        // SAFETY: live blocks of ours, freed once.
        unsafe { homing::free(p as *mut u8) };
    }
}

fn resident_above(base: usize) -> usize {
    common::current_rss().unwrap().saturating_sub(base)
}

/// The child side.
#[test]
fn child() {
    let Ok(case) = std::env::var(CASE) else {
        return;
    };
    match case.as_str() {
        "steady" => {
            // Frees 64 MiB, then keeps allocating and freeing one block of
            // the same class (never a new page): the freed pages are
            // retired as they empty and purged on its slow paths.
            let (base, kept) = fill_and_free();
            let start = Instant::now();
            while resident_above(base) > SLACK && start.elapsed() < PATIENCE {
                for _ in 0..10_000 {
                    let p = homing::alloc(BLOCK, 16);
                    black_box(p);
                    // SAFETY: a live block of ours.
                    unsafe { homing::free(p) };
                }
            }
            let left = resident_above(base);
            free_all(kept);
            assert!(left <= SLACK, "{} MiB still resident", common::mib(left));
        }
        "idle" => {
            // Frees 64 MiB on a thread that then sleeps: only the
            // background purger can give the memory back.
            // The thread allocates nothing after its frees (no channel, no
            // formatting): it publishes its baseline in an atomic and sleeps.
            static BASE: AtomicUsize = AtomicUsize::new(0);
            static DONE: AtomicBool = AtomicBool::new(false);
            let t = std::thread::spawn(|| {
                let (base, kept) = fill_and_free();
                BASE.store(base, Ordering::SeqCst);
                while !DONE.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(2));
                }
                free_all(kept);
            });
            while BASE.load(Ordering::SeqCst) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            let base = BASE.load(Ordering::SeqCst);
            let start = Instant::now();
            while resident_above(base) > SLACK && start.elapsed() < PATIENCE {
                std::thread::sleep(Duration::from_millis(5));
            }
            let left = resident_above(base);
            DONE.store(true, Ordering::SeqCst);
            t.join().unwrap();
            assert!(left <= SLACK, "{} MiB still resident", common::mib(left));
        }
        "configured" => {
            // A zero purge delay set from code: every retired page is
            // purged at once, so the memory is back as soon as the frees
            // return, with no wait and no purger.
            homing::configure(homing::Setting::PurgeDelayMs(Some(0)));
            let (base, kept) = fill_and_free();
            let left = resident_above(base);
            free_all(kept);
            assert!(left <= SLACK, "{} MiB still resident", common::mib(left));
        }
        other => panic!("unknown case {other}"),
    }
}

fn run_case(case: &str, env: &[(&str, &str)]) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CASE, case)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "case {case}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_steady_state_thread_gives_freed_memory_back() {
    run_case("steady", &[]);
}

#[test]
fn the_background_purger_gives_an_idle_threads_memory_back() {
    run_case("idle", &[("HOMING_BACKGROUND_PURGE", "1")]);
}

#[test]
fn a_purge_delay_set_from_code_takes_effect() {
    run_case("configured", &[("HOMING_PURGE_DELAY_MS", "100000")]);
}
