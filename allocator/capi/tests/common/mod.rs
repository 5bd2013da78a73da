//! What the integration tests share: finding the `libhoming.so` and
//! `libhoming.a` that cargo built for this very test run, compiling C with
//! the system compiler, and running processes with a time limit.

#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long one process may run before it is killed and the test fails.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a running process is polled for its exit.
const POLL: Duration = Duration::from_millis(5);

/// `<target>/<profile>`: the directory of this test binary's `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("the test binary lies in deps/");
    deps.parent()
        .expect("deps/ lies in the profile directory")
        .to_path_buf()
}

/// The directory holding `libhoming.so` and `libhoming.a` of this build,
/// or of `HOMING_CAPI_LIB_DIR` when that is set (to test another build of
/// the library, e.g. a release or nightly initial-exec build).
///
/// Cargo builds the library target with all its crate types (cdylib,
/// staticlib, rlib) before it builds the integration tests, into `deps/`
/// (and into the profile directory for `cargo build`). If neither holds
/// them (a test binary run by hand after a clean), we build them with the
/// same cargo, target directory and profile.
pub fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("HOMING_CAPI_LIB_DIR") {
            return PathBuf::from(dir);
        }
        let profile = profile_dir();
        for dir in [profile.join("deps"), profile.clone()] {
            if dir.join("libhoming.so").exists() && dir.join("libhoming.a").exists() {
                return dir;
            }
        }
        let target = profile
            .parent()
            .expect("profile dir lies in the target dir");
        let name = profile
            .file_name()
            .and_then(|n| n.to_str())
            .expect("profile name");
        let cargo_profile = if name == "debug" { "dev" } else { name };
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "homing-capi",
                "--lib",
                "--profile",
                cargo_profile,
            ])
            .env("CARGO_TARGET_DIR", target)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p homing-capi failed");
        profile
    })
}

/// The directory of a `libhoming.so` built with the `checked` feature: a
/// nested cargo build into its own target directory (next to this one), so
/// it neither waits for nor invalidates the build under test.
pub fn checked_lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_with_feature("checked"))
}

/// The directory of a `libhoming.so` built with the `tls-descriptors`
/// feature (the same kind of nested build).
pub fn tls_descriptors_lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_with_feature("tls-descriptors"))
}

/// Builds homing-capi's lib with `feature` into `<profile>/homing-capi-<feature>`
/// and returns the directory holding its `libhoming.so`.
fn build_with_feature(feature: &str) -> PathBuf {
    let profile = profile_dir();
    let name = profile
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile name");
    let cargo_profile = if name == "debug" { "dev" } else { name };
    let target = profile.join(format!("homing-capi-{feature}"));
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "homing-capi", "--lib", "--features", feature])
        .args(["--profile", cargo_profile])
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("run cargo build --features");
    assert!(
        status.success(),
        "cargo build -p homing-capi --features {feature} failed"
    );
    target.join(name)
}

/// `libhoming.so`, absolute.
pub fn libhoming_so() -> PathBuf {
    lib_dir().join("libhoming.so")
}

/// `libhoming.a`, absolute.
pub fn libhoming_a() -> PathBuf {
    lib_dir().join("libhoming.a")
}

/// Where compiled test programs go (inside the target directory).
pub fn out_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = profile_dir().join("homing-capi-tests");
        std::fs::create_dir_all(&dir).expect("create the output directory");
        dir
    })
}

/// `allocator/capi`.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty scratch directory for one test, under the output dir
/// (emptied again by the next run, so runs do not pile up).
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = out_dir().join(format!("scratch-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// `true` if `program` can be run (found on `PATH` and answers `--version`).
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd` to completion (killing it after [`PROCESS_TIMEOUT`]) and
/// returns its output; panics if it cannot start or times out.
pub fn run(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    // Read the pipes on threads so a chatty child cannot block on them.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut buf).map(|_| buf)
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut buf).map(|_| buf)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > PROCESS_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} ran longer than {PROCESS_TIMEOUT:?} and was killed");
        }
        std::thread::sleep(POLL);
    };
    Output {
        status,
        stdout: out_reader
            .join()
            .expect("stdout reader")
            .unwrap_or_default(),
        stderr: err_reader
            .join()
            .expect("stderr reader")
            .unwrap_or_default(),
    }
}

/// Runs `cmd` and panics with its output unless it exits with status 0.
pub fn run_ok(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{what} failed: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
