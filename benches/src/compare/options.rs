//! `compare`'s command line.

use std::path::PathBuf;

use super::allocators;
use crate::cli::Flags;
use crate::workloads::{self, WORKLOADS};

/// Runs of each workload × allocator unless `--runs` says otherwise: enough
/// for a median that one disturbed run cannot move.
pub const DEFAULT_RUNS: usize = 5;

/// `--quick` divides every workload's work by this: the whole quick suite
/// then takes well under two minutes on the project's 2-core machine.
pub const QUICK_WORK_DIVISOR: u64 = 10;

/// The usage text of `compare --help`.
pub const USAGE: &str = "\
usage: compare [--quick] [--runs N] [--workload A,B] [--alloc A,B] [--threads N,M]
               [--out DIR] [--no-build] [--list] [--help]
       compare --redraw RUN_DIR

Runs every workload with every allocator (each in its own child process,
allocators alternating run by run), prints a markdown table of median times,
ranges, peak RSS and ratios to homing (or to the system allocator when homing
is not measured), and writes report.md, report.json and chart.svg to a new
folder <date>-<HHMM>-<commit>[-quick] under --out (earlier runs are kept).

  --quick          a tenth of the work per run (the suite takes under 2 minutes)
  --runs N         runs per workload x allocator (default 5)
  --workload A,B   only these workloads (see --list)
  --alloc A,B      only these allocators (see --list)
  --threads N,M    only the cases with these thread counts
  --out DIR        the folder that receives each run's folder (default:
                   results/ in the workspace)
  --no-build       do not run `cargo build` for the wl-* binaries first
  --list           list the workloads and allocators, then exit
  --redraw RUN_DIR rewrite RUN_DIR's report.md and chart.svg from its
                   report.json (after a change to the report code), then exit
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Run a tenth of the work.
    pub quick: bool,
    /// Runs per workload × allocator.
    pub runs: usize,
    /// Selected workloads, in registry order.
    pub workloads: Vec<&'static str>,
    /// Selected allocators, in registry order.
    pub allocators: Vec<&'static str>,
    /// Only cases with these thread counts (`None`: all).
    pub threads: Option<Vec<usize>>,
    /// The folder under which each run's results folder is made.
    pub out: PathBuf,
    /// Build the `wl-*` binaries before running.
    pub build: bool,
    /// Print the registries and exit.
    pub list: bool,
    /// Rewrite this run folder's report.md and chart.svg, then exit.
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
            &["quick", "no-build", "list", "help"],
        )?;
        let runs = flags.parsed::<usize>("runs")?.unwrap_or(DEFAULT_RUNS);
        if runs == 0 {
            return Err("--runs must be at least 1".into());
        }
        let workloads = select(
            flags.list("workload"),
            WORKLOADS.iter().map(|w| w.name),
            "workload",
            |name| workloads::find(name).is_some(),
        )?;
        let allocators = select(
            flags.list("alloc"),
            allocators::built().map(|a| a.name),
            "allocator",
            |name| allocators::find(name).is_some(),
        )?;
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
            runs,
            workloads,
            allocators,
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

/// The names of `available` that `wanted` lists (all of them if `wanted` is
/// `None`), in `available`'s order. A name that exists but is not available
/// (an allocator this build leaves out) and an unknown name are errors.
fn select(
    wanted: Option<Vec<String>>,
    available: impl Iterator<Item = &'static str>,
    what: &str,
    exists: impl Fn(&str) -> bool,
) -> Result<Vec<&'static str>, String> {
    let available: Vec<&'static str> = available.collect();
    let Some(wanted) = wanted else {
        return Ok(available);
    };
    for name in &wanted {
        if !available.contains(&name.as_str()) {
            let why = if exists(name) {
                "is not built in this build"
            } else {
                "is unknown"
            };
            return Err(format!(
                "{what} `{name}` {why}; available: {}",
                available.join(", ")
            ));
        }
    }
    Ok(available
        .into_iter()
        .filter(|a| wanted.iter().any(|w| w == a))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn defaults_select_everything() {
        let o = parse(&[]).unwrap();
        assert!(!o.quick && o.build && !o.list && !o.help);
        assert_eq!(o.runs, DEFAULT_RUNS);
        assert_eq!(o.workloads.len(), WORKLOADS.len());
        assert_eq!(o.allocators.len(), allocators::built().count());
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
        assert_eq!(o.threads, Some(vec![8, 2]));
        assert_eq!(o.runs, 7);
        assert_eq!(o.out, PathBuf::from("/tmp/x"));
        assert_eq!(o.redraw, Some(PathBuf::from("/tmp/run")));
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(parse(&["--workload", "nope"]).is_err());
        assert!(parse(&["--alloc", "tcmalloc"]).is_err());
        assert!(parse(&["--threads", "0"]).is_err());
        assert!(parse(&["--threads", "two"]).is_err());
        assert!(parse(&["--runs", "0"]).is_err());
        assert!(parse(&["--fast"]).is_err());
    }
}
