//! What a report needs to be read later: which code, which toolchain, which
//! machine, which versions of the peers, when.
//!
//! Everything here is best effort: a fact that cannot be found (no git, no
//! `/proc`) is `"unknown"`, never an error that stops the run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The crates whose versions the report records: the peer allocators' Rust
/// wrappers and the `-sys` crates that carry the C allocators themselves.
pub const PEER_CRATES: &[&str] = &[
    "mimalloc",
    "libmimalloc-sys",
    "tikv-jemallocator",
    "tikv-jemalloc-sys",
    "snmalloc-rs",
    "snmalloc-sys",
    "rpmalloc",
    "rpmalloc-sys",
];

/// Written for an unknown fact.
pub const UNKNOWN: &str = "unknown";

/// The run's metadata (the `meta` object of `report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Start of the run, UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub date: String,
    /// `git rev-parse --short=12 HEAD`, with `-dirty` if tracked files were
    /// changed.
    pub commit: String,
    /// `rustc -V` of the toolchain that built the binaries.
    pub rustc: String,
    /// The CPU model (`/proc/cpuinfo`).
    pub cpu: String,
    /// CPUs this process may run on.
    pub cpus: usize,
    /// Physical memory, in MiB (`/proc/meminfo`).
    pub memory_mib: u64,
    /// Kernel release (`/proc/sys/kernel/osrelease`).
    pub kernel: String,
    /// The C library's version (the `system` allocator).
    pub libc: String,
    /// homing's version (`homing 0.1.0`).
    pub homing: String,
    /// Features of homing in this build, as detected at run time.
    pub homing_features: Vec<String>,
    /// `(crate, version)` for each [`PEER_CRATES`] entry in `Cargo.lock`.
    pub peers: Vec<(String, String)>,
    /// `true` for a `--quick` run (a tenth of the work).
    pub quick: bool,
    /// Runs per workload × allocator.
    pub runs: usize,
    /// `/proc/loadavg`'s 1-, 5- and 15-minute load averages when the runs
    /// started: other work on the machine, the main source of noise.
    #[serde(default)]
    pub load_start: String,
    /// The same when the runs ended.
    #[serde(default)]
    pub load_end: String,
}

impl Meta {
    /// Gathers the metadata of a run starting now, for the workspace at
    /// `workspace`.
    pub fn collect(workspace: &Path, quick: bool, runs: usize) -> Self {
        let lock = std::fs::read_to_string(workspace.join("Cargo.lock")).unwrap_or_default();
        let peers = PEER_CRATES
            .iter()
            .map(|name| {
                let version = lock_version(&lock, name).unwrap_or_else(|| UNKNOWN.into());
                (name.to_string(), version)
            })
            .collect();
        Meta {
            date: utc_timestamp(now_unix()),
            commit: git_commit(workspace),
            rustc: command_line("rustc", &["-V"], workspace),
            cpu: cpu_model(),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_mib: memory_mib(),
            kernel: first_line_of("/proc/sys/kernel/osrelease"),
            libc: libc_version(),
            homing: format!("homing {}", env!("CARGO_PKG_VERSION")),
            homing_features: homing_features(),
            peers,
            quick,
            runs,
            load_start: load_average(),
            load_end: String::new(),
        }
    }

    /// The load averages, when both ends are known: `start 5.30 8.84 8.18,
    /// end 1.2 1.5 2.0`.
    pub fn load(&self) -> Option<String> {
        if self.load_start.is_empty() {
            return None;
        }
        let end = if self.load_end.is_empty() {
            String::new()
        } else {
            format!(", end {}", self.load_end)
        };
        Some(format!("start {}{end}", self.load_start))
    }

    /// A one-line description of the machine, for captions.
    pub fn machine(&self) -> String {
        format!(
            "{}, {} CPUs, {} GiB, Linux {}",
            self.cpu,
            self.cpus,
            (self.memory_mib + 512) / 1024,
            self.kernel
        )
    }

    /// The name of this run's results folder: `<date>-<HHMM>-<commit>`,
    /// with `-quick` for a quick run; sorts by time.
    pub fn folder_name(&self) -> String {
        // `2026-12-01T21:40:05Z` -> `2026-12-01-2140`.
        let stamp: String = self
            .date
            .get(..16)
            .unwrap_or(&self.date)
            .replace('T', "-")
            .replace(':', "");
        let commit: String = self
            .commit
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let quick = if self.quick { "-quick" } else { "" };
        format!("{stamp}-{commit}{quick}")
    }
}

/// Seconds since the Unix epoch.
fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian,
/// UTC).
///
/// ```
/// use homing_bench::compare::meta::utc_timestamp;
///
/// assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
/// assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
/// assert_eq!(utc_timestamp(1_796_161_205), "2026-12-01T21:40:05Z");
/// ```
pub fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days to civil date (Howard Hinnant's algorithm), epoch 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The version of package `name` in the text of a `Cargo.lock`.
///
/// ```
/// use homing_bench::compare::meta::lock_version;
///
/// let lock = "[[package]]\nname = \"mimalloc\"\nversion = \"0.1.52\"\n";
/// assert_eq!(lock_version(lock, "mimalloc").as_deref(), Some("0.1.52"));
/// assert_eq!(lock_version(lock, "rpmalloc"), None);
/// ```
pub fn lock_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let version = lines.next()?.trim().strip_prefix("version = \"")?;
            return Some(version.trim_end_matches('"').to_string());
        }
    }
    None
}

/// The first line a command prints, or [`UNKNOWN`].
pub(super) fn command_line(program: &str, args: &[&str], dir: &Path) -> String {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| UNKNOWN.into())
}

/// The short commit of `workspace`, `-dirty` if tracked files differ.
fn git_commit(workspace: &Path) -> String {
    let commit = command_line("git", &["rev-parse", "--short=12", "HEAD"], workspace);
    if commit == UNKNOWN {
        return commit;
    }
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(workspace)
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    }
}

/// The first line of a file, trimmed, or [`UNKNOWN`].
fn first_line_of(path: &str) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.lines().next().map(|l| l.trim().to_string()))
        .unwrap_or_else(|| UNKNOWN.into())
}

/// The `model name` of the first CPU in `/proc/cpuinfo` (on aarch64, which
/// has none, the `CPU part`).
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    for key in ["model name", "CPU part"] {
        if let Some(value) = info
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
        {
            return value.1.split_whitespace().collect::<Vec<_>>().join(" ");
        }
    }
    UNKNOWN.into()
}

/// The first three fields of `/proc/loadavg`, or [`UNKNOWN`].
pub fn load_average() -> String {
    let line = first_line_of("/proc/loadavg");
    let fields: Vec<&str> = line.split_whitespace().take(3).collect();
    if fields.len() == 3 {
        fields.join(" ")
    } else {
        UNKNOWN.into()
    }
}

/// `MemTotal` in MiB, or 0.
fn memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib / 1024)
}

/// glibc's version, e.g. `glibc 2.41`.
pub fn libc_version() -> String {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: glibc returns a pointer to a static NUL-terminated string.
        let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
        format!("glibc {}", version.to_string_lossy())
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        UNKNOWN.into()
    }
}

/// The features of homing this build has, found by using it: with `stats`
/// on, a live block shows in [`homing::stats`]. (`compare` and the `wl-*`
/// binaries are one package, so they are built with the same features.)
fn homing_features() -> Vec<String> {
    let p = homing::alloc(64, 8);
    let counted = homing::stats().live_blocks > 0;
    // SAFETY: `p` is null or a live block from `homing::alloc`.
    unsafe { homing::free(p) };
    if counted {
        vec!["stats".into()]
    } else {
        Vec::new()
    }
}

/// The workspace holding this crate (where `Cargo.lock` and `results/`
/// are).
pub fn workspace_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or(manifest.clone(), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_cross_years_and_leap_days() {
        assert_eq!(utc_timestamp(86_399), "1970-01-01T23:59:59Z");
        assert_eq!(utc_timestamp(1_709_164_800), "2024-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_735_689_599), "2024-12-31T23:59:59Z");
        assert_eq!(utc_timestamp(1_735_689_600), "2025-01-01T00:00:00Z");
    }

    #[test]
    fn this_build_counts_with_stats() {
        // benches/Cargo.toml asks for `stats`: the measured build is the
        // default one.
        assert_eq!(homing_features(), ["stats"]);
    }

    #[test]
    fn folder_names_sort_by_time_and_say_quick() {
        let mut meta = Meta::collect(&workspace_dir(), true, 1);
        meta.date = "2026-12-01T21:40:05Z".into();
        meta.commit = "abc123-dirty".into();
        assert_eq!(meta.folder_name(), "2026-12-01-2140-abc123-dirty-quick");
        meta.quick = false;
        assert_eq!(meta.folder_name(), "2026-12-01-2140-abc123-dirty");
    }

    #[test]
    fn the_lock_file_has_every_peer() {
        let meta = Meta::collect(&workspace_dir(), false, 5);
        assert_eq!(meta.peers.len(), PEER_CRATES.len());
        for (name, version) in &meta.peers {
            assert_ne!(version, UNKNOWN, "{name} not in Cargo.lock");
        }
        assert!(meta.cpus > 0);
        assert_eq!(meta.load_start.split(' ').count(), 3, "{}", meta.load_start);
    }
}
