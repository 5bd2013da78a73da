//! `compare`'s command line.

use std::path::PathBuf;

use super::allocators;
use super::cprograms::C_PROGRAMS;
use super::preload::PRELOADS;
use crate::cli::Flags;
use crate::workloads::{self, WORKLOADS};

/// Runs of each workload × allocator unless `--runs` says otherwise: enough
/// for a median that one disturbed run cannot move.
pub const DEFAULT_RUNS: usize = 5;

/// `--quick` divides every workload's work by this: the whole quick suite
/// then takes well under two minutes on the project's 2-core machine.
pub const QUICK_WORK_DIVISOR: u64 = 10;

/// `--smoke` divides every C program's work by this (and runs each once):
/// a check that the programs run and agree, not a measurement.
pub const SMOKE_WORK_DIVISOR: u64 = 100;

/// The usage text of `compare --help`.
pub const USAGE: &str = "\
usage: compare [--rust | --c] [--quick] [--smoke] [--runs N] [--workload A,B]
               [--alloc A,B] [--threads N,M] [--out DIR] [--no-build] [--list] [--help]
       compare --redraw RUN_DIR

Runs every workload with every allocator (each in its own child process,
allocators alternating run by run), prints a markdown table of median times,
ranges, peak RSS and ratios to homing (or to the system allocator when homing
is not measured), and writes report.md, report.json and chart.svg to a new
folder <date>-<HHMM>-<commit>[-quick] under --out (earlier runs are kept).

Two modes, both by default, Rust first: the Rust mode runs the Rust
workloads, each allocator the global allocator of its own wl-* binary; the
C mode compiles the C programs of benches/c with cc and runs them under
LD_PRELOAD (nothing: glibc; libhoming.so; and libmimalloc.so.2,
libjemalloc.so.2, libtcmalloc_minimal.so.4 when installed:
sudo apt-get install libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4),
checks that every run prints the system allocator's checksum, and writes
c-report.md, c-report.json and c-chart.svg beside the Rust files.

  --rust           only the Rust mode
  --c              only the C mode
  --quick          a tenth of the work per run (the Rust suite takes under 2 minutes)
  --smoke          the C mode only, each program once at a hundredth of the
                   work: checks that every allocator runs them and agrees
  --runs N         runs per workload x allocator (default 5)
  --workload A,B   only these workloads or C programs (see --list); a mode
                   none of them belongs to is skipped
  --alloc A,B      only these allocators (see --list); a mode none of them
                   belongs to is skipped
  --threads N,M    only the cases with these thread counts
  --out DIR        the folder that receives each run's folder (default:
                   results/ in the workspace)
  --no-build       do not run `cargo build` for the wl-* binaries and
                   libhoming.so first (they must exist)
  --list           list the workloads, C programs and allocators, then exit
  --redraw RUN_DIR rewrite RUN_DIR's report.md and chart.svg (and the C
                   mode's c-report.md and c-chart.svg) from its JSON (after a
                   change to the report code), then exit
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Run a tenth of the work.
    pub quick: bool,
    /// The C mode's smoke check: each program once at a hundredth of the
    /// work.
    pub smoke: bool,
    /// Runs per workload × allocator.
    pub runs: usize,
    /// Run the Rust mode.
    pub rust: bool,
    /// Run the C mode.
    pub c: bool,
    /// `--rust` or `--c` was given: a selected mode with nothing to run is
    /// then an error rather than skipped.
    pub modes_asked: bool,
    /// Selected Rust workloads, in registry order.
    pub workloads: Vec<&'static str>,
    /// Selected C programs, in registry order.
    pub programs: Vec<&'static str>,
    /// Selected Rust-mode allocators, in registry order.
    pub allocators: Vec<&'static str>,
    /// Selected C-mode allocators, in registry order.
    pub c_allocators: Vec<&'static str>,
    /// Only cases with these thread counts (`None`: all).
    pub threads: Option<Vec<usize>>,
    /// The folder under which each run's results folder is made.
    pub out: PathBuf,
    /// Build the `wl-*` binaries and `libhoming.so` before running.
    pub build: bool,
    /// Print the registries and exit.
    pub list: bool,
    /// Rewrite this run folder's reports and charts, then exit.
    pub redraw: Option<PathBuf>,
    /// Print the usage and exit.
    pub help: bool,
}

/// The default parent of the results folders: `results/` in the workspace
/// that holds this crate, outside `target/` so that `cargo clean` keeps it.
pub fn default_out_dir() -> PathBuf {
    super::meta::workspace_dir().join("results")
}

impl Options {
    /// Reads `args` (without the program name).
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let flags = Flags::parse(
            args,
            &["runs", "workload", "alloc", "threads", "out", "redraw"],
            &["quick", "smoke", "rust", "c", "no-build", "list", "help"],
        )?;
        let smoke = flags.has("smoke");
        if smoke && flags.has("rust") {
            return Err("--smoke is a check of the C mode; it does not go with --rust".into());
        }
        let runs = flags
            .parsed::<usize>("runs")?
            .unwrap_or(if smoke { 1 } else { DEFAULT_RUNS });
        if runs == 0 {
            return Err("--runs must be at least 1".into());
        }
        let asked_rust = flags.has("rust");
        let asked_c = flags.has("c") || smoke;
        let modes_asked = asked_rust || asked_c;
        let (mut rust, mut c) = if modes_asked {
            (asked_rust, asked_c)
        } else {
            (true, true)
        };
        let rust_workloads: Vec<&'static str> = WORKLOADS.iter().map(|w| w.name).collect();
        let c_programs: Vec<&'static str> = C_PROGRAMS.iter().map(|p| p.name).collect();
        let wanted = flags.list("workload");
        check_known(
            wanted.as_deref(),
            &rust_workloads,
            &c_programs,
            "workload",
            |n| workloads::find(n).is_some(),
        )?;
        let workloads = pick(wanted.as_deref(), &rust_workloads);
        let programs = pick(wanted.as_deref(), &c_programs);
        let rust_allocators: Vec<&'static str> = allocators::built().map(|a| a.name).collect();
        let c_names: Vec<&'static str> = PRELOADS.iter().map(|p| p.name).collect();
        let wanted = flags.list("alloc");
        check_known(
            wanted.as_deref(),
            &rust_allocators,
            &c_names,
            "allocator",
            |n| allocators::find(n).is_some(),
        )?;
        let rust_allocs = pick(wanted.as_deref(), &rust_allocators);
        let c_allocs = pick(wanted.as_deref(), &c_names);
        for (on, mode, what) in [
            (
                &mut rust,
                "Rust",
                [workloads.is_empty(), rust_allocs.is_empty()],
            ),
            (&mut c, "C", [programs.is_empty(), c_allocs.is_empty()]),
        ] {
            if *on && what.iter().any(|&empty| empty) {
                if modes_asked {
                    let which = if what[0] { "--workload" } else { "--alloc" };
                    return Err(format!("{which} names nothing of the {mode} mode"));
                }
                *on = false;
            }
        }
        if !rust && !c {
            return Err(
                "no mode has both a workload and an allocator among --workload and --alloc".into(),
            );
        }
        let threads = flags
            .list("threads")
            .map(|items| {
                items
                    .iter()
                    .map(|t| match t.parse::<usize>() {
                        Ok(n) if n > 0 => Ok(n),
                        _ => Err(format!("--threads: `{t}` is not a thread count")),
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(Self {
            quick: flags.has("quick"),
            smoke,
            runs,
            rust,
            c,
            modes_asked,
            workloads,
            programs,
            allocators: rust_allocs,
            c_allocators: c_allocs,
            threads,
            out: flags
                .value("out")
                .map_or_else(default_out_dir, PathBuf::from),
            build: !flags.has("no-build"),
            list: flags.has("list"),
            redraw: flags.value("redraw").map(PathBuf::from),
            help: flags.has("help"),
        })
    }
}

/// Fails on a name of `wanted` that neither mode has (or that the Rust
/// registry has but this build leaves out, `in_rust_registry`).
fn check_known(
    wanted: Option<&[String]>,
    rust: &[&str],
    c: &[&str],
    what: &str,
    in_rust_registry: impl Fn(&str) -> bool,
) -> Result<(), String> {
    for name in wanted.unwrap_or_default() {
        let name = name.as_str();
        if rust.contains(&name) || c.contains(&name) {
            continue;
        }
        let why = if in_rust_registry(name) {
            "is not built in this build"
        } else {
            "is unknown"
        };
        return Err(format!(
            "{what} `{name}` {why}; available: {} (Rust mode), {} (C mode)",
            rust.join(", "),
            c.join(", ")
        ));
    }
    Ok(())
}

/// The names of `available` that `wanted` lists (all of them if `wanted` is
/// `None`), in `available`'s order.
fn pick(wanted: Option<&[String]>, available: &[&'static str]) -> Vec<&'static str> {
    available
        .iter()
        .copied()
        .filter(|a| wanted.is_none_or(|w| w.iter().any(|n| n == a)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn defaults_select_everything_in_both_modes() {
        let o = parse(&[]).unwrap();
        assert!(!o.quick && !o.smoke && o.build && !o.list && !o.help);
        assert!(o.rust && o.c && !o.modes_asked);
        assert_eq!(o.runs, DEFAULT_RUNS);
        assert_eq!(o.workloads.len(), WORKLOADS.len());
        assert_eq!(o.programs.len(), C_PROGRAMS.len());
        assert_eq!(o.allocators.len(), allocators::built().count());
        assert_eq!(o.c_allocators.len(), PRELOADS.len());
        assert_eq!(o.threads, None);
        assert!(o.out.ends_with("results") && !o.out.to_string_lossy().contains("target"));
    }

    #[test]
    fn subsets_keep_registry_order() {
        let o = parse(&[
            "--quick",
            "--workload",
            "local,xmalloc",
            "--alloc=mimalloc,system",
            "--threads",
            "8,2",
            "--runs",
            "7",
            "--no-build",
            "--out",
            "/tmp/x",
            "--redraw=/tmp/run",
        ])
        .unwrap();
        assert!(o.quick && !o.build);
        assert_eq!(o.workloads, ["xmalloc", "local"]);
        assert_eq!(o.allocators, ["system", "mimalloc"]);
        // xmalloc is also a C program; local is not.
        assert!(o.rust && o.c);
        assert_eq!(o.programs, ["xmalloc"]);
        assert_eq!(o.c_allocators, ["system", "mimalloc"]);
        assert_eq!(o.threads, Some(vec![8, 2]));
        assert_eq!(o.runs, 7);
        assert_eq!(o.out, PathBuf::from("/tmp/x"));
        assert_eq!(o.redraw, Some(PathBuf::from("/tmp/run")));
    }

    #[test]
    fn modes_follow_the_flags_and_the_names() {
        let o = parse(&["--rust"]).unwrap();
        assert!(o.rust && !o.c && o.modes_asked);
        let o = parse(&["--c", "--workload", "cfrac,mstress"]).unwrap();
        assert!(!o.rust && o.c);
        assert_eq!(o.programs, ["mstress", "cfrac"]);
        // Names of one mode only switch the other off...
        let o = parse(&["--workload", "cfrac"]).unwrap();
        assert!(!o.rust && o.c);
        let o = parse(&["--alloc", "tcmalloc"]).unwrap();
        assert!(!o.rust && o.c);
        let o = parse(&["--alloc", "tcmalloc,homing"]).unwrap();
        assert!(o.rust && o.c);
        assert_eq!(o.allocators, ["homing"]);
        assert_eq!(o.c_allocators, ["homing", "tcmalloc"]);
        let o = parse(&["--alloc", "rpmalloc"]).unwrap();
        assert!(o.rust && !o.c);
        // ... unless that mode was asked for.
        assert!(parse(&["--rust", "--workload", "cfrac"]).is_err());
        assert!(parse(&["--c", "--alloc", "rpmalloc"]).is_err());
        assert!(parse(&["--workload", "local", "--alloc", "tcmalloc"]).is_err());
        let o = parse(&["--smoke"]).unwrap();
        assert!(o.smoke && o.c && !o.rust && o.runs == 1);
        assert!(parse(&["--smoke", "--rust"]).is_err());
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(parse(&["--workload", "nope"]).is_err());
        assert!(parse(&["--alloc", "tcmalloc2"]).is_err());
        assert!(parse(&["--threads", "0"]).is_err());
        assert!(parse(&["--threads", "two"]).is_err());
        assert!(parse(&["--runs", "0"]).is_err());
        assert!(parse(&["--fast"]).is_err());
    }
}
