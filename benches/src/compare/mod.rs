//! `compare`: every workload × allocator, each run in its own process.
//!
//! Layout, bottom up: [`stats`] (median, range) and [`allocators`] (the peer
//! registry) use nothing else here; [`child`] runs one `wl-*` process and
//! reads its report and peak RSS; [`report`] turns summarised rows into the
//! markdown table, JSON and SVG; [`options`] reads the command line; this
//! module drives the runs.
//!
//! Method: for each case (workload and thread count) the allocators run in
//! round-robin order, rotated by one each run, so a slow phase of the
//! machine hits every allocator alike instead of all runs of one. Each run
//! is a fresh child process, so an allocator's warm caches, its RSS and its
//! threads never leak into another's measurement.

pub mod allocators;
pub mod child;
pub mod options;
pub mod report;
pub mod stats;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use crate::workloads::{Params, Workload, OVERSUBSCRIBED_THREADS, WORKLOADS};
use child::Measurement;
use options::{Options, QUICK_WORK_DIVISOR, USAGE};
use report::Row;
use stats::Summary;

/// One workload at one thread count, with the parameters every allocator
/// gets.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// The workload.
    pub workload: &'static Workload,
    /// Its parameters for this case.
    pub params: Params,
}

/// The cases `options` selects: each workload at its default thread count,
/// plus [`OVERSUBSCRIBED_THREADS`] for the workloads that have that variant
/// (same total work), filtered by `--threads`; `--quick` divides the work by
/// [`QUICK_WORK_DIVISOR`].
pub fn cases(options: &Options) -> Vec<Case> {
    let mut cases = Vec::new();
    for workload in WORKLOADS
        .iter()
        .filter(|w| options.workloads.contains(&w.name))
    {
        let mut params = workload.defaults;
        if options.quick {
            params.work = (params.work / QUICK_WORK_DIVISOR).max(1);
        }
        let mut thread_counts = vec![params.threads];
        if workload.oversubscribed && params.threads != OVERSUBSCRIBED_THREADS {
            thread_counts.push(OVERSUBSCRIBED_THREADS);
        }
        for threads in thread_counts {
            if options
                .threads
                .as_ref()
                .is_some_and(|t| !t.contains(&threads))
            {
                continue;
            }
            cases.push(Case {
                workload,
                params: Params { threads, ..params },
            });
        }
    }
    cases
}

/// The order the allocators run in during run number `run`: the list
/// rotated left by `run`.
///
/// ```
/// use homing_bench::compare::run_order;
///
/// assert_eq!(run_order(&["a", "b", "c"], 1), ["b", "c", "a"]);
/// ```
pub fn run_order<'a>(allocators: &[&'a str], run: usize) -> Vec<&'a str> {
    let mut order = allocators.to_vec();
    if !order.is_empty() {
        let shift = run % order.len();
        order.rotate_left(shift);
    }
    order
}

/// Summarises one allocator's measurements of one case into a report row.
pub fn summarise(case: &Case, allocator: &str, runs: &[Measurement]) -> Option<Row> {
    let times: Vec<f64> = runs.iter().map(|m| m.report.elapsed_s).collect();
    let rss: Vec<f64> = runs.iter().map(|m| m.peak_rss_kib as f64).collect();
    let time = Summary::of(&times)?;
    let rss = Summary::of(&rss)?;
    Some(Row {
        workload: case.workload.name.to_string(),
        threads: case.params.threads,
        allocator: allocator.to_string(),
        runs: runs.len(),
        median_s: time.median,
        min_s: time.min,
        max_s: time.max,
        peak_rss_kib: rss.median.round() as u64,
    })
}

/// Builds the `wl-*` binaries with the profile (and target directory) of
/// the running `compare`, so that `cargo run --release -p homing-bench --bin
/// compare` alone is enough on a fresh checkout.
fn build_children(exe_dir: &Path) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "homing-bench", "--bins"])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    match exe_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(profile) => {
            cmd.args(["--profile", profile]);
        }
        None => return Err("cannot tell the build profile of this executable".into()),
    }
    // Cargo marks the root of a target directory with this file; only then
    // is `exe_dir`'s parent the target directory to build into.
    if let Some(target) = exe_dir.parent() {
        if target.join("CACHEDIR.TAG").exists() {
            cmd.arg("--target-dir").arg(target);
        }
    }
    eprintln!("building the wl-* binaries: {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo to build the wl-* binaries: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("building the wl-* binaries failed ({status})"))
    }
}

/// Prints the workloads and allocators.
fn print_list() {
    println!("workloads (name, default threads, sizes, work, what):");
    for w in WORKLOADS {
        let d = w.defaults;
        let extra = if w.oversubscribed {
            format!(" (+ {OVERSUBSCRIBED_THREADS} threads)")
        } else {
            String::new()
        };
        println!(
            "  {:<14} {}{extra} threads, {}..={} B, work {}: {}",
            w.name, d.threads, d.min_size, d.max_size, d.work, w.summary
        );
    }
    println!("allocators:");
    for a in allocators::ALLOCATORS {
        let note = if a.built { "" } else { " [not in this build]" };
        println!("  {:<10} {}{note}", a.name, a.source);
    }
}

/// Where the progress goes: one overwritten line on a terminal, one line
/// per run otherwise.
struct Progress {
    done: usize,
    total: usize,
    terminal: bool,
    started: Instant,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            done: 0,
            total,
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }

    fn show(&mut self, case: &Case, allocator: &str, run: usize, runs: usize) {
        self.done += 1;
        let line = format!(
            "[{:>4}/{}] {:>5.0}s  {} x{}  {:<9} run {}/{}",
            self.done,
            self.total,
            self.started.elapsed().as_secs_f64(),
            case.workload.name,
            case.params.threads,
            allocator,
            run + 1,
            runs
        );
        if self.terminal {
            eprint!("\r\x1b[K{line}");
        } else {
            eprintln!("{line}");
        }
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
        eprintln!(
            "{} runs in {:.0} s",
            self.done,
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// Writes `text` to `dir/name`, creating `dir`.
fn write_report(dir: &Path, name: &str, text: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Runs the comparison the options ask for; returns the rows and the
/// problems met (failed runs, checksums that differ).
fn run_all(options: &Options, exe_dir: &Path, cases: &[Case]) -> (Vec<Row>, Vec<String>) {
    let mut progress = Progress::new(cases.len() * options.allocators.len() * options.runs);
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for case in cases {
        let args = case.params.to_args(case.workload.name);
        let mut measured: Vec<Vec<Measurement>> = vec![Vec::new(); options.allocators.len()];
        for run in 0..options.runs {
            for allocator in run_order(&options.allocators, run) {
                progress.show(case, allocator, run, options.runs);
                let binary = exe_dir.join(format!("wl-{allocator}"));
                match child::measure(&binary, &args) {
                    Ok(m) => {
                        let slot = options
                            .allocators
                            .iter()
                            .position(|&a| a == allocator)
                            .expect("the order is a rotation of the list");
                        measured[slot].push(m);
                    }
                    Err(e) => problems.push(format!(
                        "{} {} threads, {allocator}, run {}: {e}",
                        case.workload.name,
                        case.params.threads,
                        run + 1
                    )),
                }
            }
        }
        let checksums: Vec<u64> = measured
            .iter()
            .flatten()
            .map(|m| m.report.checksum)
            .collect();
        if checksums.windows(2).any(|w| w[0] != w[1]) {
            problems.push(format!(
                "{} {} threads: checksums differ between runs ({checksums:?}): \
                 the allocators did not do identical work",
                case.workload.name, case.params.threads
            ));
        }
        for (allocator, runs) in options.allocators.iter().zip(&measured) {
            if let Some(row) = summarise(case, allocator, runs) {
                rows.push(row);
            }
        }
    }
    progress.finish();
    (rows, problems)
}

/// The `main` of the `compare` binary.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    if options.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if options.list {
        print_list();
        return ExitCode::SUCCESS;
    }
    match compare(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds, runs, prints and writes; `Ok(false)` if some run failed.
fn compare(options: &Options) -> Result<bool, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let exe_dir = exe
        .parent()
        .ok_or("this executable has no directory")?
        .to_path_buf();
    if options.build {
        build_children(&exe_dir)?;
    }
    for allocator in &options.allocators {
        let binary = exe_dir.join(format!("wl-{allocator}"));
        if !binary.exists() {
            return Err(format!(
                "{} is missing: build it with `cargo build --release -p homing-bench --bins`",
                binary.display()
            ));
        }
    }
    let cases = cases(options);
    if cases.is_empty() {
        return Err("no case matches the --workload and --threads selection".into());
    }
    let (rows, problems) = run_all(options, &exe_dir, &cases);
    println!();
    print!("{}", report::markdown(&rows));
    println!();
    println!(
        "{} runs per workload x allocator{}; times are the workload alone (process start-up \
         excluded), peak RSS is the median of the runs' ru_maxrss; ratios above 1 mean slower \
         or bigger than {}.",
        options.runs,
        if options.quick { ", --quick" } else { "" },
        report::baseline_name(&rows).unwrap_or_default()
    );
    let json = write_report(&options.out, "latest.json", &report::json(&rows))?;
    let svg = write_report(&options.out, "latest.svg", &report::svg(&rows))?;
    println!("wrote {} and {}", json.display(), svg.display());
    for p in &problems {
        eprintln!("problem: {p}");
    }
    Ok(problems.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::Report;

    fn options(args: &[&str]) -> Options {
        Options::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn rotation_gives_every_allocator_every_position() {
        let list = ["a", "b", "c"];
        for position in 0..list.len() {
            let mut seen: Vec<&str> = (0..list.len())
                .map(|run| run_order(&list, run)[position])
                .collect();
            seen.sort_unstable();
            assert_eq!(seen, list);
        }
        assert!(run_order(&[], 3).is_empty());
    }

    #[test]
    fn cases_include_oversubscribed_variants_and_filter() {
        let all = cases(&options(&[]));
        let names: Vec<(&str, usize)> = all
            .iter()
            .map(|c| (c.workload.name, c.params.threads))
            .collect();
        for w in ["xmalloc", "larson", "mstress"] {
            assert!(names.contains(&(w, OVERSUBSCRIBED_THREADS)), "{w}");
        }
        assert!(names.contains(&("local", 1)));
        let eight = cases(&options(&["--threads", "8"]));
        assert_eq!(eight.len(), 3);
        assert!(eight.iter().all(|c| c.params.threads == 8));
        let quick = cases(&options(&["--quick", "--workload", "local"]));
        assert_eq!(quick.len(), 1);
        assert_eq!(
            quick[0].params.work,
            quick[0].workload.defaults.work / QUICK_WORK_DIVISOR
        );
    }

    #[test]
    fn summaries_use_median_range_and_median_rss() {
        let case = cases(&options(&["--workload", "local"]))[0];
        let m = |t: f64, rss: u64| Measurement {
            report: Report {
                elapsed_s: t,
                checksum: 1,
            },
            peak_rss_kib: rss,
        };
        let row = summarise(&case, "system", &[m(3.0, 10), m(1.0, 30), m(2.0, 20)]).unwrap();
        assert_eq!(
            (
                row.runs,
                row.median_s,
                row.min_s,
                row.max_s,
                row.peak_rss_kib
            ),
            (3, 2.0, 1.0, 3.0, 20)
        );
        assert_eq!((row.workload.as_str(), row.threads), ("local", 1));
        assert!(summarise(&case, "system", &[]).is_none());
    }
}
