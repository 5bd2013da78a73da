//! `compare`: every workload × allocator, each run in its own process, in
//! two modes: the Rust mode (the Rust workloads, each allocator the global
//! allocator of its own `wl-*` binary) and the C mode ([`cmode`]: C
//! programs under `LD_PRELOAD`).
//!
//! Layout, bottom up: [`stats`] (median, range), [`allocators`] (the peer
//! registry), [`preload`] (the C mode's allocators), [`cprograms`] (the C
//! programs, compiling them) and [`meta`] (commit, toolchain, machine, peer
//! versions) use nothing else here but `allocators` and `meta`; [`child`]
//! runs one child process and reads its report and peak RSS; [`report`]
//! turns summarised rows into the markdown table and the JSON, [`chart`]
//! into the SVG; [`options`] reads the command line; this module drives the
//! Rust mode's runs and writes the results folder, and [`cmode`] (which uses
//! this module's runner pieces) the C mode's.
//!
//! Output: a folder per run, `results/<date>-<HHMM>-<commit>[-quick]/` in
//! the workspace (or under `--out`), holding `report.md`, `report.json` and
//! `chart.svg`, and the C mode's `c-report.md`, `c-report.json` and
//! `c-chart.svg`; earlier runs' folders are kept.
//!
//! Method: for each case (workload and thread count) the allocators run in
//! round-robin order, rotated by one each run, so a slow phase of the
//! machine hits every allocator alike instead of all runs of one. Each run
//! is a fresh child process, so an allocator's warm caches, its RSS and its
//! threads never leak into another's measurement.

pub mod allocators;
pub mod chart;
pub mod child;
pub mod cmode;
pub mod cprograms;
pub mod meta;
pub mod options;
pub mod preload;
pub mod report;
pub mod stats;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use crate::workloads::{Params, Workload, OVERSUBSCRIBED_THREADS, WORKLOADS};
use child::Measurement;
use meta::Meta;
use options::{Options, QUICK_WORK_DIVISOR, USAGE};
use report::{Row, Sample};
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
pub fn run_order<T: Copy>(allocators: &[T], run: usize) -> Vec<T> {
    let mut order = allocators.to_vec();
    if !order.is_empty() {
        let shift = run % order.len();
        order.rotate_left(shift);
    }
    order
}

/// Summarises one allocator's measurements of one case into a report row.
pub fn summarise(case: &Case, allocator: &str, runs: &[Measurement]) -> Option<Row> {
    summarise_runs(case.workload.name, case.params.threads, allocator, runs)
}

/// Summarises one allocator's runs of `workload` (a Rust workload or a C
/// program) at `threads` into a report row; `None` without runs.
pub fn summarise_runs(
    workload: &str,
    threads: usize,
    allocator: &str,
    runs: &[Measurement],
) -> Option<Row> {
    let times: Vec<f64> = runs.iter().map(|m| m.report.elapsed_s).collect();
    let rss: Vec<f64> = runs.iter().map(|m| m.peak_rss_kib as f64).collect();
    let time = Summary::of(&times)?;
    let rss = Summary::of(&rss)?;
    Some(Row {
        workload: workload.to_string(),
        threads,
        allocator: allocator.to_string(),
        runs: runs.len(),
        median_s: time.median,
        min_s: time.min,
        max_s: time.max,
        peak_rss_kib: rss.median.round() as u64,
        rss_min_kib: rss.min as u64,
        rss_max_kib: rss.max as u64,
        samples: runs
            .iter()
            .map(|m| Sample {
                elapsed_s: m.report.elapsed_s,
                peak_rss_kib: m.peak_rss_kib,
            })
            .collect(),
    })
}

/// Where the running executable was built: its profile's output folder
/// (`target/release`, or `target/debug` for a test in `target/debug/deps`)
/// and, when cargo's `CACHEDIR.TAG` marks its parent, the target directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildDirs {
    /// The profile's output folder, where the `wl-*` binaries and
    /// `libhoming.so` of that profile are.
    pub profile_dir: PathBuf,
    /// The target directory, if this is one cargo made.
    pub target: Option<PathBuf>,
}

impl BuildDirs {
    /// The build folders of an executable in `exe_dir`.
    pub fn of(exe_dir: &Path) -> Self {
        let profile_dir = if exe_dir.file_name().is_some_and(|n| n == "deps") {
            exe_dir.parent().unwrap_or(exe_dir)
        } else {
            exe_dir
        };
        // Cargo marks the root of a target directory with this file; only
        // then is the profile folder's parent the target directory.
        let target = profile_dir
            .parent()
            .filter(|t| t.join("CACHEDIR.TAG").exists())
            .map(Path::to_path_buf);
        Self {
            profile_dir: profile_dir.to_path_buf(),
            target,
        }
    }

    /// `cargo build` arguments for this profile and target directory, and
    /// the profile's name.
    fn cargo_args(&self) -> Result<(Vec<String>, String), String> {
        let mut args = Vec::new();
        let profile = match self.profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some("release") => {
                args.push("--release".to_string());
                "release".to_string()
            }
            Some(profile) => {
                args.extend(["--profile".to_string(), profile.to_string()]);
                profile.to_string()
            }
            None => return Err("cannot tell the build profile of this executable".into()),
        };
        if let Some(target) = &self.target {
            args.push("--target-dir".into());
            args.push(target.to_string_lossy().into_owned());
        }
        Ok((args, profile))
    }

    /// The `libhoming.so` of this profile.
    pub fn homing_lib(&self) -> PathBuf {
        self.profile_dir.join("libhoming.so")
    }

    /// Where the C mode's programs are compiled to: `target/c-bench/`, or
    /// the profile folder's `c-bench/` when the target directory is not
    /// known.
    pub fn c_bin_dir(&self) -> PathBuf {
        self.target
            .as_ref()
            .unwrap_or(&self.profile_dir)
            .join("c-bench")
    }
}

/// Runs `cargo build` for `what` (package and target arguments) with the
/// profile and target directory of `dirs`.
fn cargo_build(dirs: &BuildDirs, what: &[&str], describe: &str) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let (args, profile) = dirs.cargo_args()?;
    let mut cmd = Command::new(cargo);
    // Not `--quiet`: cargo's own progress (a bar on a terminal, a line per
    // crate otherwise) shows from the first second of a fresh checkout.
    cmd.arg("build")
        .args(what)
        .arg("--manifest-path")
        .arg(meta::workspace_dir().join("Cargo.toml"))
        .args(&args);
    eprintln!("compare: building {describe} (cargo build, profile {profile}) ...");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo to build {describe}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("building {describe} failed ({status})"))
    }
}

/// Builds the `wl-*` binaries with the profile (and target directory) of
/// the running `compare`, so that `cargo run --release -p homing-bench --bin
/// compare` alone is enough on a fresh checkout.
fn build_children(exe_dir: &Path) -> Result<(), String> {
    cargo_build(
        &BuildDirs::of(exe_dir),
        &["-p", "homing-bench", "--bins"],
        "the wl-* binaries (one per allocator)",
    )
}

/// Builds `libhoming.so` (`homing-capi`, default features: the build a C
/// user gets) with the profile and target directory of `dirs`.
pub fn build_homing_lib(dirs: &BuildDirs) -> Result<(), String> {
    cargo_build(dirs, &["-p", "homing-capi", "--lib"], "libhoming.so")
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
    println!("allocators (Rust mode):");
    for a in allocators::ALLOCATORS {
        let note = if a.built { "" } else { " [not in this build]" };
        println!("  {:<10} {}{note}", a.name, a.source);
    }
    println!("C programs (C mode; name, threads, work, what):");
    for p in cprograms::C_PROGRAMS {
        let threads: Vec<String> = p.threads.iter().map(usize::to_string).collect();
        println!(
            "  {:<14} {} threads, {} {}: {}",
            p.name,
            threads.join(" and "),
            p.work,
            p.unit,
            p.summary
        );
    }
    println!("allocators (C mode, LD_PRELOAD):");
    let dirs = preload::library_dirs();
    for p in preload::PRELOADS {
        let what = match p.library {
            preload::Library::None => "the C library's malloc, nothing preloaded".to_string(),
            preload::Library::Homing => "libhoming.so from this workspace (homing-capi)".into(),
            preload::Library::Installed { file, package } => {
                match preload::find_library(file, &dirs) {
                    Some(path) => format!("{} (package {package})", path.display()),
                    None => format!("{file}: not installed (sudo apt-get install {package})"),
                }
            }
        };
        println!("  {:<10} {what}", p.name);
    }
}

/// `secs` as `m:ss` (or `h:mm:ss`).
///
/// ```
/// use homing_bench::compare::clock;
///
/// assert_eq!(clock(75.4), "1:15");
/// assert_eq!(clock(3725.0), "1:02:05");
/// ```
pub fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The estimated time left after `done` of `total` runs took `elapsed`
/// seconds: the mean so far times the runs left; `None` before the first.
///
/// ```
/// use homing_bench::compare::eta;
///
/// assert_eq!(eta(0, 10, 0.0), None);
/// assert_eq!(eta(2, 10, 4.0), Some(16.0));
/// ```
pub fn eta(done: usize, total: usize, elapsed: f64) -> Option<f64> {
    (done > 0).then(|| elapsed / done as f64 * total.saturating_sub(done) as f64)
}

/// Where the progress goes: one overwritten status line on a terminal (a
/// line per run otherwise), and a line per finished case.
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

    /// Before a run of `workload` at `threads` starts.
    fn show(&mut self, workload: &str, threads: usize, allocator: &str, run: usize, runs: usize) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let left = eta(self.done, self.total, elapsed).map_or("--:--".into(), clock);
        let line = format!(
            "[{:>3}/{}] {} elapsed, ETA {left}  {} x{}  {:<9} run {}/{}",
            self.done + 1,
            self.total,
            clock(elapsed),
            workload,
            threads,
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

    /// After a run.
    fn ran(&mut self) {
        self.done += 1;
    }

    /// A case is finished: one line that stays, with its medians.
    fn case_done(&self, workload: &str, threads: usize, rows: &[Row]) {
        let medians: Vec<String> = rows
            .iter()
            .map(|r| format!("{} {:.3}s", r.allocator, r.median_s))
            .collect();
        if self.terminal {
            eprint!("\r\x1b[K");
        }
        eprintln!("  {workload} x{threads}: {}", medians.join(", "));
    }

    fn finish(&self) {
        if self.terminal {
            eprint!("\r\x1b[K");
        }
        eprintln!(
            "{} runs in {}",
            self.done,
            clock(self.started.elapsed().as_secs_f64())
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
                progress.show(
                    case.workload.name,
                    case.params.threads,
                    allocator,
                    run,
                    options.runs,
                );
                let binary = exe_dir.join(format!("wl-{allocator}"));
                let result = child::measure(&binary, &args);
                progress.ran();
                match result {
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
        let first = rows.len();
        for (allocator, runs) in options.allocators.iter().zip(&measured) {
            if let Some(row) = summarise(case, allocator, runs) {
                rows.push(row);
            }
        }
        progress.case_done(case.workload.name, case.params.threads, &rows[first..]);
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
    if let Some(dir) = &options.redraw {
        return match redraw(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
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

/// The file name of the chart in a run folder.
const CHART: &str = "chart.svg";

/// Rewrites `dir`'s `report.md` and chart from its `report.json`, and the
/// C mode's files from `c-report.json`, whichever of the two it has.
fn redraw(dir: &Path) -> Result<(), String> {
    let rust = dir.join("report.json");
    let c = dir.join(cmode::JSON);
    if !rust.exists() && !c.exists() {
        return Err(format!(
            "{} has neither report.json nor {}",
            dir.display(),
            cmode::JSON
        ));
    }
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    if rust.exists() {
        let text = read(&rust)?;
        let saved = report::Saved::parse(&text).map_err(|e| format!("{}: {e}", rust.display()))?;
        write_report(
            dir,
            "report.md",
            &report::report_markdown(&saved.rows, &saved.meta, CHART, &saved.problems),
        )?;
        write_report(dir, CHART, &chart::svg(&saved.rows, &saved.meta))?;
        eprintln!("rewrote report.md and {CHART} in {}", dir.display());
    }
    if c.exists() {
        let text = read(&c)?;
        let (saved, info) =
            cmode::parse_saved(&text).map_err(|e| format!("{}: {e}", c.display()))?;
        cmode::write_all(dir, &saved.rows, &saved.meta, &info, &saved.problems)?;
        eprintln!(
            "rewrote {} and {} in {}",
            cmode::REPORT,
            cmode::CHART,
            dir.display()
        );
    }
    Ok(())
}

/// Whether a selected mode runs: yes with cases; without, an error if the
/// modes were asked for by name, else skipped with a line saying so.
fn mode_runs(
    selected: bool,
    has_cases: bool,
    mode: &str,
    options: &Options,
) -> Result<bool, String> {
    if !selected {
        return Ok(false);
    }
    if has_cases {
        return Ok(true);
    }
    if options.modes_asked {
        return Err(format!(
            "no case of the {mode} mode matches the --workload and --threads selection"
        ));
    }
    eprintln!("compare: the {mode} mode has no case matching --workload and --threads; skipped");
    Ok(false)
}

/// Builds, runs, prints and writes both modes as selected; `Ok(false)` if
/// some run failed or a C program's output differed.
fn compare(options: &Options) -> Result<bool, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let exe_dir = exe
        .parent()
        .ok_or("this executable has no directory")?
        .to_path_buf();
    let rust_cases = cases(options);
    let c_cases = cmode::cases(options);
    let run_rust = mode_runs(options.rust, !rust_cases.is_empty(), "Rust", options)?;
    let run_c = mode_runs(options.c, !c_cases.is_empty(), "C", options)?;
    if !run_rust && !run_c {
        return Err("no case matches the --workload and --threads selection".into());
    }
    let meta = Meta::collect(
        &meta::workspace_dir(),
        options.quick || options.smoke,
        options.runs,
    );
    let out_dir = options.out.join(meta.folder_name());
    let mut ok = true;
    if run_rust {
        ok &= rust_mode(options, &exe_dir, &rust_cases, meta.clone(), &out_dir)?;
    }
    if run_c {
        if run_rust {
            eprintln!("\ncompare: the Rust mode is done; now the C mode");
        }
        ok &= cmode::run(options, &exe_dir, &c_cases, meta, &out_dir)?;
    }
    Ok(ok)
}

/// The Rust mode: builds the `wl-*` binaries, runs every case, prints the
/// table and writes `report.md`, `report.json` and the chart.
fn rust_mode(
    options: &Options,
    exe_dir: &Path,
    cases: &[Case],
    mut meta: Meta,
    out_dir: &Path,
) -> Result<bool, String> {
    eprintln!(
        "compare (Rust mode): {} cases x {} allocators x {} runs = {} runs{}; results go to {}",
        cases.len(),
        options.allocators.len(),
        options.runs,
        cases.len() * options.allocators.len() * options.runs,
        if options.quick { " (--quick)" } else { "" },
        out_dir.display()
    );
    if options.build {
        build_children(exe_dir)?;
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
    // The load when the runs start, not while cargo was building.
    meta.load_start = meta::load_average();
    let (rows, problems) = run_all(options, exe_dir, cases);
    meta.load_end = meta::load_average();
    println!();
    print!("{}", report::markdown(&rows));
    println!();
    println!("{}", report::legend(&rows, &meta));
    let md = write_report(
        out_dir,
        "report.md",
        &report::report_markdown(&rows, &meta, CHART, &problems),
    )?;
    write_report(
        out_dir,
        "report.json",
        &report::json(&rows, &meta, &problems),
    )?;
    write_report(out_dir, CHART, &chart::svg(&rows, &meta))?;
    println!(
        "\nwrote {} with report.json and {CHART} beside it",
        md.display()
    );
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
        assert!(run_order::<&str>(&[], 3).is_empty());
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
        assert_eq!((row.rss_min_kib, row.rss_max_kib), (10, 30));
        assert_eq!(row.samples.len(), 3);
        assert_eq!(row.samples[0].elapsed_s, 3.0); // in the order they ran
        assert_eq!(row.samples[1].peak_rss_kib, 30);
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
