//! The C contract, checked from C: each program in `tests/c/` is compiled
//! with the system `cc` and each of its cases runs as its own process,
//! either under `LD_PRELOAD=libhoming.so` (a plain C program that knows
//! nothing of homing) or linked against `libhoming.so` / `libhoming.a`.
//!
//! A program prints its case names with `--list`; a case fails with a
//! message on standard error and exit status 1 (see `tests/c/check.h`).
//! Every program first checks that `malloc` and `free` really are homing's.
//!
//! Needs the `malloc` feature (on by default): the programs check that
//! `malloc` is homing's.
#![cfg(feature = "malloc")]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    checked_lib_dir, crate_dir, lib_dir, libhoming_a, libhoming_so, out_dir, run, run_ok,
};

/// Flags for every C test program: warnings are errors; `-fno-builtin` so
/// that the compiler keeps every allocation call as written (it may
/// otherwise drop a `malloc` whose result is only compared with NULL);
/// sizes beyond `PTRDIFF_MAX` are what the errno cases pass on purpose.
const CFLAGS: &[&str] = &[
    "-std=gnu11",
    "-O1",
    "-g",
    "-fno-builtin",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-alloc-size-larger-than",
    "-pthread",
];

/// What a program linked with `libhoming.a` needs besides libc (Rust's
/// standard library's dependencies, as `rustc --print native-static-libs`
/// lists them; `-rdynamic` lets `check.h` find `homing_malloc` by name).
const STATIC_LIBS: &[&str] = &[
    "-rdynamic",
    "-lpthread",
    "-ldl",
    "-lm",
    "-lrt",
    "-lutil",
    "-lgcc_s",
];

/// `tests/c/<name>`.
fn source(name: &str) -> PathBuf {
    crate_dir().join("tests").join("c").join(name)
}

/// Compiles `tests/c/<src>` into `<out_dir>/<out>` with `compiler`, the
/// common flags and `extra` arguments after the source.
fn compile_with(compiler: &str, src: &str, out: &str, flags: &[&str], extra: &[&str]) -> PathBuf {
    let exe = out_dir().join(out);
    let include = crate_dir().join("include");
    run_ok(
        Command::new(compiler)
            .args(flags)
            .arg("-I")
            .arg(&include)
            .arg(source(src))
            .arg("-o")
            .arg(&exe)
            .args(extra),
    );
    exe
}

/// Compiles `tests/c/<src>` linked against the `libhoming.so` in `dir`
/// (with a RUNPATH to it), with `flags` and then `libs`.
fn compile_linked(dir: &Path, src: &str, out: &str, flags: &[&str], libs: &[&str]) -> PathBuf {
    let rpath = format!("-Wl,-rpath,{}", dir.display());
    let libdir = format!("-L{}", dir.display());
    let mut extra = vec![libdir.as_str(), "-lhoming", rpath.as_str()];
    extra.extend_from_slice(libs);
    compile_with("cc", src, out, flags, &extra)
}

/// A C program that does not link homing (it runs under `LD_PRELOAD`).
fn compile_plain(src: &str, out: &str) -> PathBuf {
    compile_with("cc", src, out, CFLAGS, &["-ldl"])
}

/// The case names of a program.
fn cases(exe: &Path, env: &[(&str, &std::ffi::OsStr)]) -> Vec<String> {
    let out = run_ok(Command::new(exe).arg("--list").envs(env.iter().copied()));
    String::from_utf8(out.stdout)
        .expect("case names are UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs every case of `exe` as its own process with `env`; panics listing
/// every failed case. Returns each case's standard error.
fn run_cases(exe: &Path, env: &[(&str, &std::ffi::OsStr)]) -> Vec<(String, String)> {
    let names = cases(exe, env);
    assert!(!names.is_empty(), "{} has no cases", exe.display());
    let mut failures = Vec::new();
    let mut stderrs = Vec::new();
    for name in names {
        let out = run(Command::new(exe).arg(&name).envs(env.iter().copied()));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            failures.push(format!("{name}: {}\n{stderr}", out.status));
        }
        stderrs.push((name, stderr));
    }
    assert!(
        failures.is_empty(),
        "{} failed {} case(s):\n{}",
        exe.display(),
        failures.len(),
        failures.join("\n")
    );
    stderrs
}

/// Compiles `tests/c/<name>.c` and runs each case under `LD_PRELOAD`.
fn preloaded(name: &str) {
    let exe = compile_plain(&format!("{name}.c"), name);
    let so = libhoming_so();
    run_cases(&exe, &[("LD_PRELOAD", so.as_os_str())]);
}

#[test]
fn alignment_sweep() {
    preloaded("align");
}

#[test]
fn errno_cases() {
    preloaded("errno");
}

#[test]
fn calloc_overflow_and_zeroing() {
    preloaded("calloc");
}

#[test]
fn realloc_grow_shrink_and_policies() {
    preloaded("realloc");
}

#[test]
fn usable_size() {
    preloaded("usable");
}

#[test]
fn threads_that_only_free_exit_and_churn() {
    preloaded("threads");
}

/// glibc frees a thread's `strerror`, `strsignal` and `dlerror` buffers
/// after every key destructor: the heap the thread gave up must not be tied
/// to it again (memory stranded, a heap per thread).
#[test]
fn frees_after_thread_exit_hooks() {
    preloaded("exit_late");
}

/// Under `RLIMIT_AS`, filling memory, freeing it all and allocating again
/// (small, medium, huge) succeeds: homing gives back what it holds when the
/// OS refuses memory, and retries.
#[test]
fn out_of_memory_recovers_after_frees() {
    preloaded("oom");
}

#[test]
fn fork_while_threads_allocate() {
    preloaded("fork");
}

/// Allocation in a preloaded library's constructor, before or after
/// homing's own initialisers (both preload orders), and at the other edges
/// of a process.
#[test]
fn early_and_late_allocation() {
    let lib = out_dir().join("early_lib.so");
    let include = crate_dir().join("include");
    run_ok(
        Command::new("cc")
            .args(CFLAGS)
            .args(["-fPIC", "-shared"])
            .arg("-I")
            .arg(&include)
            .arg(source("early_lib.c"))
            .arg("-o")
            .arg(&lib),
    );
    let exe = compile_plain("early.c", "early");
    let so = libhoming_so();
    for order in [[&lib, &so], [&so, &lib]] {
        let preload = std::env::join_paths(order).expect("paths without ':'");
        run_cases(&exe, &[("LD_PRELOAD", preload.as_os_str())]);
    }
}

/// Copies of `tls_lib.so` the `tls` program loads (it says why 40).
const TLS_COPIES: usize = 40;

/// Dynamic TLS of `dlopen`ed libraries: the loader allocates TLS blocks
/// and grows DTVs with homing's malloc from inside `__tls_get_addr`.
#[test]
fn dlopen_libraries_with_thread_locals() {
    let dir = out_dir().join("tls-libs");
    std::fs::create_dir_all(&dir).expect("mkdir tls");
    let first = dir.join("libtls0.so");
    run_ok(
        Command::new("cc")
            .args(CFLAGS)
            .args(["-fPIC", "-shared"])
            .arg(source("tls_lib.c"))
            .arg("-o")
            .arg(&first),
    );
    // Copies, not links: the loader would load one file only once.
    for i in 1..TLS_COPIES {
        std::fs::copy(&first, dir.join(format!("libtls{i}.so"))).expect("copy tls_lib.so");
    }
    let exe = compile_plain("tls.c", "tls");
    let so = libhoming_so();
    run_cases(
        &exe,
        &[
            ("LD_PRELOAD", so.as_os_str()),
            ("HOMING_TEST_TLS_DIR", dir.as_os_str()),
        ],
    );
}

/// Copies of each `tls_filler.so` the `dlopen` program loads (it says why).
const FILLER_COPIES: usize = 64;

/// Builds the `dlopen` program and `FILLER_COPIES` copies of the filler
/// libraries (256 and 8 bytes of initial-exec TLS), named after `tag` (the
/// tests run at once); returns both paths.
fn dlopen_program(tag: &str) -> (PathBuf, PathBuf) {
    let dir = out_dir().join(format!("tls-fillers-{tag}"));
    std::fs::create_dir_all(&dir).expect("mkdir tls-fillers");
    for (kind, bytes) in [("big", 256), ("small", 8)] {
        let first = dir.join(format!("libfill{kind}0.so"));
        run_ok(
            Command::new("cc")
                .args(CFLAGS)
                .args(["-fPIC", "-shared"])
                .arg(format!("-DFILLER_BYTES={bytes}"))
                .arg(source("tls_filler.c"))
                .arg("-o")
                .arg(&first),
        );
        // Copies, not links: the loader would load one file only once.
        for i in 1..FILLER_COPIES {
            std::fs::copy(&first, dir.join(format!("libfill{kind}{i}.so")))
                .expect("copy tls_filler.so");
        }
    }
    (compile_plain("dlopen.c", &format!("dlopen-{tag}")), dir)
}

/// Whether `so` is marked `STATIC_TLS` (None without `readelf`).
fn static_tls(so: &Path) -> Option<bool> {
    if !common::have("readelf") {
        return None;
    }
    let dynamic = run_ok(Command::new("readelf").arg("-d").arg(so));
    Some(String::from_utf8_lossy(&dynamic.stdout).contains("STATIC_TLS"))
}

/// `libhoming.so` (initial-exec TLS, `STATIC_TLS`) loaded with `dlopen` by
/// a program not linked with it: threads that ran before the `dlopen` and
/// threads created and exiting after it use it; with the static TLS
/// surplus used up by other initial-exec libraries, the `dlopen` fails
/// with the loader's "static TLS" message and the program goes on.
#[test]
fn dlopen_of_the_initial_exec_library() {
    let (exe, fillers) = dlopen_program("ie");
    let so = libhoming_so();
    // The library under test really is the initial-exec one (x86-64).
    if cfg!(target_arch = "x86_64") {
        assert_ne!(
            static_tls(&so),
            Some(false),
            "{} is not STATIC_TLS",
            so.display()
        );
    }
    run_cases(
        &exe,
        &[
            ("HOMING_TEST_LIB", so.as_os_str()),
            ("HOMING_TEST_FILLER_DIR", fillers.as_os_str()),
            ("HOMING_TEST_STATIC_TLS", "refused".as_ref()),
        ],
    );
}

/// The `tls-descriptors` build: not `STATIC_TLS`, so with the static TLS
/// surplus used up it still loads (its words in dynamic TLS) and serves
/// threads; the other cases as for the initial-exec build.
#[test]
fn dlopen_of_the_tls_descriptor_library() {
    let (exe, fillers) = dlopen_program("desc");
    let so = common::tls_descriptors_lib_dir().join("libhoming.so");
    assert_ne!(
        static_tls(&so),
        Some(true),
        "{} is STATIC_TLS",
        so.display()
    );
    run_cases(
        &exe,
        &[
            ("HOMING_TEST_LIB", so.as_os_str()),
            ("HOMING_TEST_FILLER_DIR", fillers.as_os_str()),
            ("HOMING_TEST_STATIC_TLS", "loads".as_ref()),
        ],
    );
}

/// `HOMING_SHOW_STATS` prints the statistics at exit, and a program run
/// without homing fails its `require_homing` check (so the other tests do
/// prove they ran on homing).
#[test]
fn stats_at_exit_and_the_homing_check() {
    let exe = compile_plain("usable.c", "usable-stats");
    let so = libhoming_so();
    let out = run_ok(
        Command::new(&exe)
            .arg("null_is_zero")
            .env("LD_PRELOAD", &so)
            .env("HOMING_SHOW_STATS", "1"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("homing statistics"), "{stderr}");
    // Read when the library was loaded: a program that clears its
    // environment before it exits still gets its statistics.
    let cleared = run_ok(
        Command::new(&exe)
            .arg("clears_its_environment")
            .env("LD_PRELOAD", &so)
            .env("HOMING_SHOW_STATS", "1"),
    );
    let stderr = String::from_utf8_lossy(&cleared.stderr);
    assert!(stderr.contains("homing statistics"), "{stderr}");
    let quiet = run_ok(
        Command::new(&exe)
            .arg("null_is_zero")
            .env("LD_PRELOAD", &so),
    );
    assert!(quiet.stderr.is_empty());
    let without = run(Command::new(&exe)
        .arg("null_is_zero")
        .env_remove("LD_PRELOAD"));
    assert!(
        !without.status.success(),
        "require_homing passed without homing"
    );
}

/// What each case of `misuse.c` must report.
const MISUSE: &[(&str, &str)] = &[
    ("free_of_a_foreign_pointer", "did not allocate"),
    ("free_of_a_stack_pointer", "did not allocate"),
    ("free_of_an_interior_pointer", "middle of a block"),
    ("double_free", "double free"),
    (
        "double_free_of_a_huge_block",
        "did not allocate (or already released)",
    ),
    (
        "realloc_of_a_foreign_pointer",
        "realloc of a pointer homing did not allocate",
    ),
    (
        "usable_size_of_a_freed_block",
        "malloc_usable_size of a freed block",
    ),
];

/// A `libhoming.so` built with `--features checked` turns a C program's
/// misuse (foreign pointer, interior pointer, double free) into a clear
/// message and `SIGABRT` instead of undefined behaviour.
#[test]
fn checked_build_reports_misuse() {
    let so = checked_lib_dir().join("libhoming.so");
    let exe = compile_with(
        "cc",
        "misuse.c",
        "misuse",
        CFLAGS,
        &["-Wno-free-nonheap-object", "-ldl"],
    );
    let names = cases(&exe, &[("LD_PRELOAD", so.as_os_str())]);
    assert_eq!(
        names.len(),
        MISUSE.len(),
        "misuse.c and MISUSE list the same cases"
    );
    for (name, message) in MISUSE {
        let out = run(Command::new(&exe).arg(name).env("LD_PRELOAD", &so));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "{name}: {}\n{stderr}",
            out.status
        );
        assert!(
            stderr.contains("homing: ") && stderr.contains(message),
            "{name}:\n{stderr}"
        );
    }
}

/// Checks the embedding program's output: the stats case printed them.
fn check_embed_stderr(stderrs: &[(String, String)]) {
    let (_, stats) = stderrs
        .iter()
        .find(|(name, _)| name == "safe_points_and_stats")
        .expect("embed.c has a safe_points_and_stats case");
    assert!(stats.contains("homing statistics"), "{stats}");
}

/// The embedding API, linked against `libhoming.so` (no `LD_PRELOAD`).
#[test]
fn embedding_api_linked_dynamically() {
    let dir = lib_dir();
    let exe = compile_linked(dir, "embed.c", "embed", CFLAGS, &["-ldl"]);
    let stderrs = run_cases(&exe, &[]);
    check_embed_stderr(&stderrs);
}

/// The embedding API, linked statically with `libhoming.a`: the executable
/// defines `malloc` itself.
#[test]
fn embedding_api_linked_statically() {
    let archive = libhoming_a();
    let archive = archive.to_str().expect("a UTF-8 path");
    let mut extra = vec![archive];
    extra.extend_from_slice(STATIC_LIBS);
    let exe = compile_with("cc", "embed.c", "embed-static", CFLAGS, &extra);
    let stderrs = run_cases(&exe, &[]);
    check_embed_stderr(&stderrs);
}

/// C++ under `LD_PRELOAD`: new/delete, aligned new, exceptions, threads
/// with `thread_local` destructors that allocate.
#[test]
fn cxx_program() {
    if !common::have("c++") {
        eprintln!("skipped: no c++ compiler");
        return;
    }
    let flags = [
        "-std=c++17",
        "-O1",
        "-g",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pthread",
    ];
    let exe = compile_with("c++", "cxx.cc", "cxx", &flags, &["-ldl"]);
    let out = run_ok(Command::new(&exe).env("LD_PRELOAD", libhoming_so()));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}

/// Heaps handed between worker threads (`homing_heap_release` /
/// `homing_heap_acquire`) while another thread frees their blocks; the
/// refusals of a misused hand-off; per-heap stats and the limit.
#[test]
fn heap_hand_off_stats_and_limit() {
    let dir = lib_dir();
    let exe = compile_linked(dir, "handoff.c", "handoff", CFLAGS, &["-ldl"]);
    run_cases(&exe, &[]);
}

/// What each case of `handoff_misuse.c` must report (None: must pass).
const HANDOFF_MISUSE: &[(&str, Option<&str>)] = &[
    (
        "used_by_a_thread_that_does_not_hold_it",
        Some("homing_heap_malloc of a heap the calling thread does not hold (another thread holds it"),
    ),
    (
        "used_after_release",
        Some("homing_heap_free of a heap the calling thread does not hold (it was released and not acquired"),
    ),
    (
        "acquired_while_another_thread_holds_it",
        Some("homing_heap_acquire of a heap another thread holds (two threads using one heap at once"),
    ),
    (
        "released_by_a_thread_that_does_not_hold_it",
        Some("homing_heap_release of a heap the calling thread does not hold (another thread holds it"),
    ),
    (
        "destroyed_by_a_thread_that_does_not_hold_it",
        Some("homing_heap_destroy of a heap the calling thread does not hold (it was released"),
    ),
    ("proper_hand_off_passes", None),
];

/// The checked build reports a heap used by a thread that does not hold it,
/// and two threads using one heap at once, naming the call.
#[test]
fn checked_build_reports_hand_off_misuse() {
    let dir = checked_lib_dir();
    let exe = compile_linked(dir, "handoff_misuse.c", "handoff_misuse", CFLAGS, &["-ldl"]);
    // Cargo's LD_LIBRARY_PATH (searched before the RUNPATH) holds the
    // unchecked build: preload the checked one so it is the one bound.
    let so = dir.join("libhoming.so");
    let env = [("LD_PRELOAD", so.as_os_str())];
    let names = cases(&exe, &env);
    assert_eq!(names.len(), HANDOFF_MISUSE.len());
    for (name, message) in HANDOFF_MISUSE {
        let out = run(Command::new(&exe).arg(name).envs(env));
        let stderr = String::from_utf8_lossy(&out.stderr);
        match message {
            Some(message) => {
                assert_eq!(
                    out.status.signal(),
                    Some(libc::SIGABRT),
                    "{name}: {}\n{stderr}",
                    out.status
                );
                assert!(
                    stderr.contains("homing: ") && stderr.contains(message),
                    "{name}:\n{stderr}"
                );
            }
            None => assert!(out.status.success(), "{name}: {}\n{stderr}", out.status),
        }
    }
}

/// Where Debian's `liblua5.4-dev` puts its headers.
const LUA_INCLUDE: &str = "/usr/include/lua5.4";

/// Lua 5.4 embedded as a VM runtime does: many states on a pool of worker
/// threads, moved between workers between jobs, each state's memory from
/// (1) the C library's realloc/free, (2) homing's malloc, (3) a homing heap
/// per worker, (4) a homing heap per state handed over with
/// release/acquire, read with `homing_heap_stats` at every job and
/// destroyed whole. The four outputs are identical; one more state runs
/// into its limit (LUA_ERRMEM) and recovers; with homing, mapped memory is
/// back to its baseline at the end (the program checks both).
#[test]
fn lua_states_on_moving_heaps() {
    if !Path::new(LUA_INCLUDE).join("lua.h").exists() {
        eprintln!(
            "\n!!! SKIPPED: no Lua 5.4 headers in {LUA_INCLUDE} (apt-get install liblua5.4-dev): \
             the embedded Lua test did not run\n"
        );
        return;
    }
    let lua_inc = format!("-I{LUA_INCLUDE}");
    let mut flags = CFLAGS.to_vec();
    flags.push(&lua_inc);
    let plain = compile_with(
        "cc",
        "lua_states.c",
        "lua_states_glibc",
        &flags,
        &["-DNO_HOMING", "-llua5.4", "-lm"],
    );
    let dir = lib_dir();
    let homing = compile_linked(
        dir,
        "lua_states.c",
        "lua_states_homing",
        &flags,
        &["-llua5.4", "-lm"],
    );
    let (states, jobs) = ("24", "8");
    let reference = run_ok(Command::new(&plain).args(["global", states, jobs]));
    let expected = String::from_utf8_lossy(&reference.stdout).into_owned();
    assert!(expected.contains("state 23: 8 jobs"), "{expected}");
    assert!(expected.contains("LUA_ERRMEM"), "{expected}");
    for mode in ["global", "worker", "state"] {
        let out = run_ok(Command::new(&homing).args([mode, states, jobs]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            expected,
            "lua_states {mode}: output differs from the C library's\n{stderr}"
        );
        assert!(stderr.contains("mapped (minus segment cache)"), "{stderr}");
        if mode == "state" {
            assert!(stderr.contains("refusals"), "{stderr}");
        }
    }
}
