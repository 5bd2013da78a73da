//! Real programs under `LD_PRELOAD=libhoming.so`: `python3` (with
//! `PYTHONMALLOC=malloc`, so every object goes through `malloc`), `perl`,
//! `git` and `sqlite3`, each doing a few seconds' worth of allocation-heavy
//! work. Each runs twice, without and with homing, and the two standard
//! outputs must be identical; the homing run also sets `HOMING_SHOW_STATS`
//! and must print homing's statistics at exit, which proves `malloc` was
//! homing's. A program that is not installed is skipped with a message.
//!
//! The scripts live in `tests/programs/`.
//!
//! Needs the `malloc` feature (on by default): the programs check that
//! `malloc` is homing's.
#![cfg(feature = "malloc")]

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{crate_dir, have, libhoming_so, run_ok, scratch_dir};

/// `tests/programs/<name>`.
fn script(name: &str) -> PathBuf {
    crate_dir().join("tests").join("programs").join(name)
}

/// Whether a run is on homing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Allocator {
    Glibc,
    Homing,
}

impl Allocator {
    /// Sets up `cmd` to run on this allocator.
    fn apply(self, cmd: &mut Command) -> &mut Command {
        match self {
            Allocator::Glibc => cmd.env_remove("LD_PRELOAD").env_remove("HOMING_SHOW_STATS"),
            Allocator::Homing => cmd
                .env("LD_PRELOAD", libhoming_so())
                .env("HOMING_SHOW_STATS", "1"),
        }
    }
}

/// Runs `make(allocator)` for both allocators and compares standard
/// outputs; the homing run must print homing's statistics.
fn same_output(what: &str, make: impl Fn(Allocator) -> Command) {
    let plain = run_ok(&mut make(Allocator::Glibc));
    let homing = run_ok(&mut make(Allocator::Homing));
    let (a, b) = (
        String::from_utf8_lossy(&plain.stdout),
        String::from_utf8_lossy(&homing.stdout),
    );
    assert!(!a.trim().is_empty(), "{what} printed nothing");
    assert_eq!(a, b, "{what}: output differs under LD_PRELOAD=libhoming.so");
    let stderr = String::from_utf8_lossy(&homing.stderr);
    assert!(
        stderr.contains("homing statistics"),
        "{what} did not print homing's statistics at exit:\n{stderr}"
    );
}

/// The real Python interpreter (not a wrapper script such as a pyenv
/// shim), so that `LD_PRELOAD` applies to the interpreter itself.
fn python() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?;
    let path = PathBuf::from(path.trim());
    (out.status.success() && path.is_file()).then_some(path)
}

#[test]
fn python_threads_build_and_drop_dicts_and_lists() {
    let Some(python) = python() else {
        eprintln!("skipped: no python3");
        return;
    };
    same_output("python3 dicts.py", |alloc| {
        let mut cmd = Command::new(&python);
        cmd.arg(script("dicts.py")).env("PYTHONMALLOC", "malloc");
        alloc.apply(&mut cmd);
        cmd
    });
}

#[test]
fn python_sqlite3_module() {
    let Some(python) = python() else {
        eprintln!("skipped: no python3");
        return;
    };
    same_output("python3 sqlite.py", |alloc| {
        let dir = scratch_dir(&format!("pysqlite-{alloc:?}"));
        let mut cmd = Command::new(&python);
        cmd.arg(script("sqlite.py"))
            .arg(&dir)
            .env("PYTHONMALLOC", "malloc");
        alloc.apply(&mut cmd);
        cmd
    });
}

#[test]
fn perl_builds_and_drops_hashes_and_arrays() {
    if !have("perl") {
        eprintln!("skipped: no perl");
        return;
    }
    same_output("perl hashes.pl", |alloc| {
        let mut cmd = Command::new("perl");
        cmd.arg(script("hashes.pl"));
        alloc.apply(&mut cmd);
        cmd
    });
}

/// The sqlite3 shell (Debian: `apt-get install sqlite3`) fills a database
/// file with 100,000 rows, indexes, updates, deletes, vacuums and queries it.
#[test]
fn sqlite3_fills_and_queries_a_table() {
    if !have("sqlite3") {
        eprintln!("skipped: no sqlite3 shell (python's sqlite3 module is tested anyway)");
        return;
    }
    same_output("sqlite3 < fill.sql", |alloc| {
        let dir = scratch_dir(&format!("sqlite-{alloc:?}"));
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("exec sqlite3 \"$1\" < \"$2\"")
            .arg("sh")
            .arg(dir.join("t.db"))
            .arg(script("fill.sql"));
        alloc.apply(&mut cmd);
        cmd
    });
}

/// Files of the throwaway repository: `(path, contents)`, deterministic.
fn repository_files(generation: usize) -> Vec<(String, String)> {
    const FILES: usize = 120;
    const LINES: usize = 40;
    (0..FILES)
        .filter(|i| generation == 0 || i % 10 != 3)
        .map(|i| {
            let body: String = (0..LINES + i % 17)
                .map(|l| {
                    let edited = generation > 0 && (i + l) % 7 == 0;
                    format!(
                        "file {i} line {l} {}\n",
                        if edited { "edited" } else { "original" }
                    )
                })
                .collect();
            (format!("dir{}/file{i}.txt", i % 6), body)
        })
        .chain((0..generation * 15).map(|i| {
            (
                format!("new/added{i}.txt"),
                format!("added {i}\n").repeat(i + 1),
            )
        }))
        .collect()
}

/// Writes one generation of the repository's files into `dir`.
fn write_generation(dir: &Path, generation: usize) {
    if generation > 0 {
        for entry in std::fs::read_dir(dir).expect("read the repository") {
            let path = entry.expect("an entry").path();
            if path.is_dir() && !path.ends_with(".git") {
                std::fs::remove_dir_all(&path).expect("clear the work tree");
            }
        }
    }
    for (path, contents) in repository_files(generation) {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, contents).expect("write a file");
    }
}

/// Runs a git session in a fresh repository and returns everything the
/// commands printed.
fn git_session(alloc: Allocator) -> String {
    let dir = scratch_dir(&format!("git-{alloc:?}"));
    let home = dir.join("home");
    let repo = dir.join("repo");
    std::fs::create_dir_all(&home).expect("mkdir home");
    std::fs::create_dir_all(&repo).expect("mkdir repo");
    let git = |args: &[&str]| -> String {
        let mut cmd = Command::new("git");
        cmd.args(args)
            .current_dir(&repo)
            .env("HOME", &home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", OsString::from("/dev/null"))
            .env("GIT_AUTHOR_NAME", "Homing Test")
            .env("GIT_AUTHOR_EMAIL", "test@homing.invalid")
            .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_COMMITTER_NAME", "Homing Test")
            .env("GIT_COMMITTER_EMAIL", "test@homing.invalid")
            .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
            .env("LC_ALL", "C");
        alloc.apply(&mut cmd);
        let out = run_ok(&mut cmd);
        if alloc == Allocator::Homing {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("homing statistics"),
                "git {args:?}: no statistics:\n{stderr}"
            );
        }
        format!(
            "$ git {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        )
    };
    let mut log = String::new();
    log += &git(&["init", "-q", "-b", "main"]);
    write_generation(&repo, 0);
    log += &git(&["add", "-A"]);
    log += &git(&["commit", "-q", "-m", "first"]);
    write_generation(&repo, 1);
    log += &git(&["add", "-A"]);
    log += &git(&["commit", "-q", "-m", "second"]);
    log += &git(&["log", "--stat", "--format=%H %s"]);
    log += &git(&["diff", "HEAD~1", "--stat"]);
    log += &git(&["diff", "HEAD~1"]);
    log += &git(&["grep", "-n", "line 1 edited"]);
    log += &git(&["blame", "-s", "dir0/file0.txt"]);
    log += &git(&["gc", "-q"]);
    log += &git(&["fsck", "--strict", "--no-progress"]);
    log += &git(&["rev-list", "--all", "--objects"]);
    log += &git(&["status", "--porcelain"]);
    log
}

/// git on a throwaway repository: init, two commits of 120-odd files, log,
/// diff, grep, blame, gc (which runs pack-objects with threads), fsck.
#[test]
fn git_on_a_throwaway_repository() {
    if !have("git") {
        eprintln!("skipped: no git");
        return;
    }
    let plain = git_session(Allocator::Glibc);
    let homing = git_session(Allocator::Homing);
    assert!(plain.contains(" second\n"), "{plain}");
    assert_eq!(
        plain, homing,
        "git output differs under LD_PRELOAD=libhoming.so"
    );
}

/// Debian's `php` with `USE_ZEND_ALLOC=0` (every allocation through
/// `malloc`) building and dropping large arrays and strings. PHP opens its
/// extensions with `RTLD_DEEPBIND`, which binds their `free` to glibc's:
/// libhoming.so's `dlopen` clears the flag (see `interpose/deepbind.rs`),
/// without which this run crashes at start.
#[test]
fn php_builds_and_drops_arrays_and_strings() {
    if !have("php") {
        eprintln!(
            "\n!!! SKIPPED: no php (apt-get install php-cli): the PHP LD_PRELOAD test did not run\n"
        );
        return;
    }
    same_output("php arrays.php", |alloc| {
        let mut cmd = Command::new("php");
        cmd.arg(script("arrays.php")).env("USE_ZEND_ALLOC", "0");
        alloc.apply(&mut cmd);
        cmd
    });
}

/// The same PHP under `HOMING_DEEPBIND=keep` (the flag kept): the crash the
/// `dlopen` wrapper prevents, shown to be real (the process dies by a
/// signal), so the test above proves the wrapper, not luck.
#[test]
fn php_with_deepbind_kept_crashes() {
    if !have("php") {
        eprintln!("\n!!! SKIPPED: no php (apt-get install php-cli)\n");
        return;
    }
    let out = common::run(
        Command::new("php")
            .args(["-r", "echo 'up';"])
            .env("USE_ZEND_ALLOC", "0")
            .env("HOMING_DEEPBIND", "keep")
            .env("LD_PRELOAD", libhoming_so()),
    );
    assert!(
        !out.status.success(),
        "php with RTLD_DEEPBIND kept ran under homing; the wrapper is not needed?"
    );
}
