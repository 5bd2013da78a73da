//! The C workloads of the C mode: their registry, and compiling them.
//!
//! The programs are ours, in `benches/c/` (one `.c` file each and the
//! shared `bench.h`), modelled on the classic C allocator benchmarks. Each
//! is called as `program THREADS WORK` and prints the same
//! `elapsed_s=… checksum=…` line as the Rust workloads
//! ([`crate::workloads::Report`]). `compare` compiles them at run time with
//! the system C compiler (`$CC`, else `cc`), `-O2 -pthread`, dynamically
//! linked against the C library so that `LD_PRELOAD` replaces their
//! `malloc`; no build dependency is added to the crate.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// One C workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CProgram {
    /// The name used on the command line and in reports; the source is
    /// `benches/c/<name>.c`.
    pub name: &'static str,
    /// One line: what it stresses.
    pub summary: &'static str,
    /// The thread counts `compare` runs it with (same total work each).
    pub threads: &'static [usize],
    /// The work of a full run (the program's own unit), sized for about a
    /// second under glibc on the project's 2-core machine.
    pub work: u64,
    /// What one unit of work is.
    pub unit: &'static str,
}

/// Every C program, in report order.
pub const C_PROGRAMS: &[CProgram] = &[
    CProgram {
        name: "mstress",
        summary: "rounds of short-lived threads; objects 16 B-2.5 MiB passed between threads",
        threads: &[2, 8],
        work: 1_000_000,
        unit: "allocations",
    },
    CProgram {
        name: "larson",
        summary:
            "server simulation: threads replace 16-1000 B objects, then hand them to a successor",
        threads: &[2, 8],
        work: 20_000_000,
        unit: "replacements",
    },
    CProgram {
        name: "xmalloc",
        summary: "producers allocate 16-512 B blocks, consumers free them (every free remote)",
        threads: &[2, 8],
        work: 4_000_000,
        unit: "blocks",
    },
    CProgram {
        name: "malloc-simple",
        summary:
            "one thread: tight malloc/free loops of 16-1024 B at working sets of 25-1600 blocks",
        threads: &[1],
        work: 20_000_000,
        unit: "mallocs",
    },
    CProgram {
        name: "malloc-thread",
        summary: "per-thread replace loops, 16 B-32 KiB log-uniform, nothing shared",
        threads: &[2, 8],
        work: 5_000_000,
        unit: "steps",
    },
    CProgram {
        name: "alloc-test",
        summary: "mixed sizes 16 B-64 KiB over a large working set, realloc and bursts",
        threads: &[1, 2],
        work: 4_000_000,
        unit: "steps",
    },
    CProgram {
        name: "cfrac",
        summary: "one thread: big-number continued fraction, many tiny short-lived blocks",
        threads: &[1],
        work: 500_000,
        unit: "terms",
    },
    CProgram {
        name: "rptest",
        summary:
            "threads in a ring: local churn of mixed sizes plus batches freed by the next thread",
        threads: &[2, 8],
        work: 400_000,
        unit: "steps",
    },
];

/// The C program called `name`.
pub fn find(name: &str) -> Option<&'static CProgram> {
    C_PROGRAMS.iter().find(|p| p.name == name)
}

/// `benches/c/`, where the sources are.
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("c")
}

/// The C compiler: `$CC` if set, else `cc`.
pub fn compiler() -> String {
    std::env::var("CC")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| "cc".into())
}

/// The flags every program is compiled with.
pub const CFLAGS: &[&str] = &["-O2", "-pthread", "-std=gnu11", "-Wall"];

/// The compiler's first `--version` line, for the report.
pub fn compiler_version() -> String {
    super::meta::command_line(&compiler(), &["--version"], std::path::Path::new("."))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Compiles `program` into `out_dir/<name>` unless that binary is newer
/// than its source and `bench.h`; returns the binary's path.
pub fn compile(program: &CProgram, out_dir: &Path) -> Result<PathBuf, String> {
    let dir = source_dir();
    let source = dir.join(format!("{}.c", program.name));
    let header = dir.join("bench.h");
    let binary = out_dir.join(program.name);
    let newest_input = [&source, &header]
        .into_iter()
        .filter_map(|p| modified(p))
        .max();
    if let (Some(built), Some(input)) = (modified(&binary), newest_input) {
        if built > input {
            return Ok(binary);
        }
    }
    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let cc = compiler();
    let output = Command::new(&cc)
        .args(CFLAGS)
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .output()
        .map_err(|e| {
            format!(
                "cannot run the C compiler `{cc}` ({e}): the C mode needs gcc or cc \
                 (`sudo apt-get install gcc`), or CC set to one"
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "`{cc}` failed on {}:\n{}",
            source.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_has_a_source_whose_default_work_matches() {
        for (i, p) in C_PROGRAMS.iter().enumerate() {
            assert!(C_PROGRAMS[..i].iter().all(|o| o.name != p.name));
            assert!(!p.threads.is_empty() && p.work > 0, "{}", p.name);
            let source = std::fs::read_to_string(source_dir().join(format!("{}.c", p.name)))
                .unwrap_or_else(|e| panic!("{}: {e}", p.name));
            // The usage line in the header comment states the same default
            // work as the registry (the programs' own default for manual runs).
            let usage = format!("WORK={} {}", p.work, p.unit);
            assert!(
                source.contains(&usage),
                "{}.c does not say `{usage}`",
                p.name
            );
            let default = format!(" = {};", p.work);
            assert!(source.contains(&default), "{}.c has no `{default}`", p.name);
            // It reports through bench.h (directly, after the stamp check,
            // or through the shared worker runner).
            assert!(
                ["bench_report(", "bench_finish(", "bench_run_workers("]
                    .iter()
                    .any(|f| source.contains(f)),
                "{}",
                p.name
            );
        }
    }
}
