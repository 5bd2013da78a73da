//! The C mode: the C programs of [`super::cprograms`] under each allocator
//! of [`super::preload`], put in front of the C library with `LD_PRELOAD`.
//!
//! Method, as in the Rust mode: for each case (program and thread count)
//! the allocators run round robin, the order rotated by one each run; each
//! run is a fresh process whose time is the program's own timed section and
//! whose peak RSS is its `ru_maxrss` from `wait4` ([`child::measure_command`]).
//! Every run must print the checksum the system allocator's first run
//! printed for that case (the programs' checksums depend only on their
//! arguments); a run that prints another is a **MISMATCH** problem, and
//! the run ends in failure.
//!
//! Output: `c-report.md`, `c-report.json` and `c-chart.svg` in the run's
//! results folder (beside the Rust mode's files when both modes run), and
//! the tables on stdout: every row with its ratios to homing, then homing
//! against the fastest and the leanest of the other allocators per case.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::allocators::{HOMING, SYSTEM};
use super::child::{self, Measurement};
use super::cprograms::{self, CProgram};
use super::meta::{self, Meta};
use super::options::{Options, QUICK_WORK_DIVISOR, SMOKE_WORK_DIVISOR};
use super::preload::{self, Library};
use super::report::{self, Row, NOISE_LIMIT};
use super::{chart, run_order, summarise_runs, write_report, Progress};

/// The C mode's report in a run folder.
pub const REPORT: &str = "c-report.md";
/// The C mode's JSON in a run folder.
pub const JSON: &str = "c-report.json";
/// The C mode's chart in a run folder.
pub const CHART: &str = "c-chart.svg";

/// One C program at one thread count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CCase {
    /// The program.
    pub program: &'static CProgram,
    /// Its thread count in this case.
    pub threads: usize,
    /// Its work in this case.
    pub work: u64,
}

impl CCase {
    /// The program's arguments: `THREADS WORK`.
    pub fn args(&self) -> [String; 2] {
        [self.threads.to_string(), self.work.to_string()]
    }
}

/// The cases `options` selects: each selected program at each of its
/// thread counts that `--threads` lets through, its work divided for
/// `--quick` and `--smoke`.
pub fn cases(options: &Options) -> Vec<CCase> {
    let mut divisor = 1;
    if options.quick {
        divisor *= QUICK_WORK_DIVISOR;
    }
    if options.smoke {
        divisor *= SMOKE_WORK_DIVISOR;
    }
    let mut cases = Vec::new();
    for name in &options.programs {
        let program = cprograms::find(name).expect("options hold registry names");
        for &threads in program.threads {
            if options
                .threads
                .as_ref()
                .is_some_and(|t| !t.contains(&threads))
            {
                continue;
            }
            cases.push(CCase {
                program,
                threads,
                work: (program.work / divisor).max(1),
            });
        }
    }
    cases
}

/// An allocator ready to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// Its name.
    pub name: String,
    /// The library put in `LD_PRELOAD`; `None` for the system allocator.
    pub library: Option<PathBuf>,
    /// Its version: the package's, `glibc …`, or homing's.
    pub version: String,
}

/// The selected allocators that can run here, and a line for each one
/// skipped (a peer package not installed). `homing_lib` is the
/// `libhoming.so` to preload for homing.
pub fn resolve(names: &[&str], homing_lib: &Path, dirs: &[PathBuf]) -> (Vec<Ready>, Vec<String>) {
    let mut ready = Vec::new();
    let mut skipped = Vec::new();
    for name in names {
        let Some(p) = preload::find(name) else {
            continue;
        };
        match p.library {
            Library::None => ready.push(Ready {
                name: p.name.into(),
                library: None,
                version: meta::libc_version(),
            }),
            Library::Homing => ready.push(Ready {
                name: p.name.into(),
                library: Some(homing_lib.to_path_buf()),
                version: format!("homing {} (libhoming.so)", env!("CARGO_PKG_VERSION")),
            }),
            Library::Installed { file, package } => match preload::find_library(file, dirs) {
                Some(path) => ready.push(Ready {
                    name: p.name.into(),
                    library: Some(path),
                    version: preload::package_version(package)
                        .map_or_else(|| meta::UNKNOWN.into(), |v| format!("{package} {v}")),
                }),
                None => skipped.push(format!(
                    "{} skipped: {file} is not installed (install it with `sudo apt-get install {package}`)",
                    p.name
                )),
            },
        }
    }
    (ready, skipped)
}

/// The command that runs `binary` for `case` under `alloc`: `LD_PRELOAD`
/// set to its library, or removed for the system allocator.
pub fn command(binary: &Path, case: &CCase, alloc: &Ready) -> Command {
    let mut cmd = Command::new(binary);
    cmd.args(case.args());
    match &alloc.library {
        Some(lib) => cmd.env("LD_PRELOAD", lib),
        None => cmd.env_remove("LD_PRELOAD"),
    };
    cmd
}

/// Checks that the dynamic loader accepts `alloc`'s library in front of
/// `binary` (one of our programs): runs it with a bad argument, so that it
/// stops at once after printing its usage, and looks for the loader's
/// complaint on its standard error.
pub fn probe(binary: &Path, alloc: &Ready) -> Result<(), String> {
    let Some(lib) = &alloc.library else {
        return Ok(());
    };
    let out = Command::new(binary)
        .arg("--probe")
        .env("LD_PRELOAD", lib)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    match stderr
        .lines()
        .find(|l| l.contains("ld.so") || l.contains("LD_PRELOAD"))
    {
        Some(line) => Err(format!(
            "the dynamic loader does not preload {}: {line}",
            lib.display()
        )),
        None => Ok(()),
    }
}

/// The problems of one case's outputs: every run whose checksum differs
/// from the reference, the system allocator's first run (or, without it,
/// the first allocator's). `measured[i]` are the runs of `names[i]`.
pub fn check_outputs(label: &str, names: &[String], measured: &[Vec<Measurement>]) -> Vec<String> {
    let reference = names
        .iter()
        .position(|n| n == SYSTEM)
        .and_then(|i| measured[i].first().map(|m| (i, m)))
        .or_else(|| {
            measured
                .iter()
                .enumerate()
                .find_map(|(i, runs)| runs.first().map(|m| (i, m)))
        });
    let Some((ref_index, reference)) = reference else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    for (name, runs) in names.iter().zip(measured) {
        for (run, m) in runs.iter().enumerate() {
            if m.report.checksum != reference.report.checksum {
                problems.push(format!(
                    "MISMATCH {label}: {name} run {} printed checksum {}, {} printed {}: \
                     the program's output differs under {name}",
                    run + 1,
                    m.report.checksum,
                    names[ref_index],
                    reference.report.checksum
                ));
            }
        }
    }
    problems
}

/// Runs every case `runs` times under every allocator (`binaries[i]` is
/// case `i`'s program), checks the outputs, and summarises.
pub fn run_cases(
    cases: &[CCase],
    binaries: &[PathBuf],
    allocs: &[Ready],
    runs: usize,
) -> (Vec<Row>, Vec<String>) {
    let mut progress = Progress::new(cases.len() * allocs.len() * runs);
    let names: Vec<String> = allocs.iter().map(|a| a.name.clone()).collect();
    let indices: Vec<usize> = (0..allocs.len()).collect();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (case, binary) in cases.iter().zip(binaries) {
        let label = format!("{} {} threads", case.program.name, case.threads);
        let mut measured: Vec<Vec<Measurement>> = vec![Vec::new(); allocs.len()];
        for run in 0..runs {
            for &i in &run_order(&indices, run) {
                progress.show(case.program.name, case.threads, &names[i], run, runs);
                let result = child::measure_command(command(binary, case, &allocs[i]));
                progress.ran();
                match result {
                    Ok(m) => measured[i].push(m),
                    Err(e) => problems.push(format!("{label}, {}, run {}: {e}", names[i], run + 1)),
                }
            }
        }
        problems.extend(check_outputs(&label, &names, &measured));
        let first = rows.len();
        for (name, runs) in names.iter().zip(&measured) {
            if let Some(row) = summarise_runs(case.program.name, case.threads, name, runs) {
                rows.push(row);
            }
        }
        progress.case_done(case.program.name, case.threads, &rows[first..]);
    }
    progress.finish();
    (rows, problems)
}

/// Homing against the fastest and the leanest of the other allocators,
/// per case: ratios homing / other (above 1: homing slower or bigger).
pub fn best_peer_table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| program | threads | homing (s) | fastest other | homing / fastest (time) | homing peak RSS (MiB) | leanest other | homing / leanest (RSS) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---|---:|---:|---|---:|");
    for h in rows.iter().filter(|r| r.allocator == HOMING) {
        let others: Vec<&Row> = rows
            .iter()
            .filter(|r| r.allocator != HOMING && r.same_case(h))
            .collect();
        let fastest = others
            .iter()
            .min_by(|a, b| a.median_s.total_cmp(&b.median_s));
        let leanest = others.iter().min_by_key(|r| r.peak_rss_kib);
        let (Some(fastest), Some(leanest)) = (fastest, leanest) else {
            continue;
        };
        let noisy = |r: &Row| if r.noisy() { "\\*" } else { "" };
        let _ = writeln!(
            out,
            "| {} | {} | {:.3}{} | {}{} | {:.2}× | {:.1} | {} | {:.2}× |",
            h.workload,
            h.threads,
            h.median_s,
            noisy(h),
            fastest.allocator,
            noisy(fastest),
            h.median_s / fastest.median_s,
            h.peak_rss_kib as f64 / 1024.0,
            leanest.allocator,
            h.peak_rss_kib as f64 / leanest.peak_rss_kib.max(1) as f64,
        );
    }
    let _ = writeln!(
        out,
        "\n`\\*`: a run of that allocator lay beyond ±{:.0}% of its median (noisy).",
        NOISE_LIMIT * 100.0
    );
    out
}

/// What the C mode adds to a report: the compiler, the allocators as run
/// and the ones skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CInfo {
    /// `cc --version`'s first line.
    pub compiler: String,
    /// The compiler flags.
    pub cflags: String,
    /// The allocators run.
    pub allocators: Vec<Ready>,
    /// A line per allocator skipped.
    pub skipped: Vec<String>,
}

/// The sentence under the table ([`report::legend`], saying `--smoke` for a
/// smoke run, whose work is a hundredth).
pub fn legend(rows: &[Row], meta: &Meta, smoke: bool) -> String {
    let text = report::legend(rows, meta);
    if smoke {
        text.replace(
            "--quick: a tenth of the work",
            "--smoke: a hundredth of the work",
        )
    } else {
        text
    }
}

/// `c-report.md`: the metadata, the chart, both tables and the problems.
pub fn report_markdown(rows: &[Row], meta: &Meta, info: &CInfo, problems: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# homing-bench compare, C mode, {}\n", meta.date);
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| commit | `{}` |", meta.commit);
    let _ = writeln!(out, "| machine | {} |", meta.machine());
    if let Some(load) = meta.load() {
        let _ = writeln!(out, "| load average (1, 5, 15 min) | {load} |");
    }
    let _ = writeln!(out, "| compiler | {} `{}` |", info.compiler, info.cflags);
    for a in &info.allocators {
        let lib = a
            .library
            .as_ref()
            .map_or("nothing preloaded".to_string(), |l| {
                format!("`LD_PRELOAD={}`", l.display())
            });
        let _ = writeln!(out, "| {} | {}, {lib} |", a.name, a.version);
    }
    for s in &info.skipped {
        let _ = writeln!(out, "| skipped | {s} |");
    }
    let _ = writeln!(
        out,
        "| runs | {} per program x allocator{} |",
        meta.runs,
        if meta.quick { ", reduced work" } else { "" }
    );
    let _ = writeln!(
        out,
        "\n![time and peak RSS relative to the baseline]({CHART})\n"
    );
    out.push_str(&report::markdown(rows));
    let _ = writeln!(out, "\n{}", report::legend(rows, meta));
    let _ = writeln!(out, "\n## homing against the best of the others\n");
    out.push_str(&best_peer_table(rows));
    if !problems.is_empty() {
        let _ = writeln!(out, "\n## Problems\n");
        for p in problems {
            let _ = writeln!(out, "- {p}");
        }
    }
    out
}

/// `c-report.json`: the Rust mode's `report.json` layout (`meta`,
/// `baseline`, `noise_limit`, `rows`, `problems`) plus `mode: "c"` and
/// `c` ([`CInfo`]).
pub fn json(rows: &[Row], meta: &Meta, info: &CInfo, problems: &[String]) -> String {
    #[derive(Serialize)]
    struct Extra<'a> {
        mode: &'static str,
        c: &'a CInfo,
    }
    report::json_with(rows, meta, problems, &Extra { mode: "c", c: info })
}

/// Reads a `c-report.json` back: the saved rows and the C information.
pub fn parse_saved(text: &str) -> Result<(report::Saved, CInfo), String> {
    let saved = report::Saved::parse(text)?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let info = serde_json::from_value(value["c"].clone()).map_err(|e| format!("`c`: {e}"))?;
    Ok((saved, info))
}

/// Writes the C files of a run folder.
pub fn write_all(
    dir: &Path,
    rows: &[Row],
    meta: &Meta,
    info: &CInfo,
    problems: &[String],
) -> Result<PathBuf, String> {
    let md = write_report(dir, REPORT, &report_markdown(rows, meta, info, problems))?;
    write_report(dir, JSON, &json(rows, meta, info, problems))?;
    write_report(dir, CHART, &chart::svg(rows, meta))?;
    Ok(md)
}

/// Compiles every case's program (once each) into `dir`.
pub fn compile_all(cases: &[CCase], dir: &Path) -> Result<Vec<PathBuf>, String> {
    cases
        .iter()
        .map(|c| cprograms::compile(c.program, dir))
        .collect()
}

/// The C mode of `compare`: compiles, builds or finds `libhoming.so`, runs,
/// prints, writes. `Ok(false)` if a run failed or an output differed.
pub fn run(
    options: &Options,
    exe_dir: &Path,
    cases: &[CCase],
    mut meta: Meta,
    out_dir: &Path,
) -> Result<bool, String> {
    let dirs = super::BuildDirs::of(exe_dir);
    let homing_lib = dirs.homing_lib();
    if options.build && options.c_allocators.contains(&HOMING) {
        super::build_homing_lib(&dirs)?;
    }
    let (allocs, skipped) = resolve(&options.c_allocators, &homing_lib, &preload::library_dirs());
    for s in &skipped {
        eprintln!("compare (C mode): {s}");
    }
    if let Some(h) = allocs.iter().find(|a| a.name == HOMING) {
        let lib = h.library.as_ref().expect("homing is preloaded");
        if !lib.exists() {
            return Err(format!(
                "{} is missing: build it with `cargo build --release -p homing-capi` (or drop --no-build)",
                lib.display()
            ));
        }
    }
    if allocs.is_empty() {
        return Err("the C mode has no allocator to run".into());
    }
    let bin_dir = dirs.c_bin_dir();
    let mut programs: Vec<&str> = cases.iter().map(|c| c.program.name).collect();
    programs.dedup();
    eprintln!(
        "compare (C mode): compiling {} programs (if changed) with `{} {}` into {} ...",
        programs.len(),
        cprograms::compiler(),
        cprograms::CFLAGS.join(" "),
        bin_dir.display()
    );
    let binaries = compile_all(cases, &bin_dir)?;
    // A library the loader refuses is ignored with a warning, and the run
    // would measure glibc under that allocator's name: probe first.
    let mut allocs = allocs;
    let mut skipped = skipped;
    let mut refused = Vec::new();
    allocs.retain(|a| match probe(&binaries[0], a) {
        Ok(()) => true,
        Err(e) => {
            refused.push((a.name.clone(), e));
            false
        }
    });
    for (name, e) in refused {
        if name == HOMING {
            return Err(e);
        }
        let line = format!("{name} skipped: {e}");
        eprintln!("compare (C mode): {line}");
        skipped.push(line);
    }
    eprintln!(
        "compare (C mode): {} cases x {} allocators ({}) x {} runs = {} runs; results go to {}",
        cases.len(),
        allocs.len(),
        allocs
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        options.runs,
        cases.len() * allocs.len() * options.runs,
        out_dir.display()
    );
    meta.load_start = meta::load_average();
    let (rows, problems) = run_cases(cases, &binaries, &allocs, options.runs);
    meta.load_end = meta::load_average();
    let info = CInfo {
        compiler: cprograms::compiler_version(),
        cflags: cprograms::CFLAGS.join(" "),
        allocators: allocs,
        skipped,
    };
    println!("\n## C mode (LD_PRELOAD)\n");
    for s in &info.skipped {
        println!("{s}");
    }
    print!("{}", report::markdown(&rows));
    println!();
    println!("{}", legend(&rows, &meta, options.smoke));
    println!();
    print!("{}", best_peer_table(&rows));
    let md = write_all(out_dir, &rows, &meta, &info, &problems)?;
    println!("\nwrote {} with {JSON} and {CHART} beside it", md.display());
    for p in &problems {
        eprintln!("problem: {p}");
    }
    if problems.iter().any(|p| p.starts_with("MISMATCH")) {
        eprintln!(
            "\n!!! OUTPUT MISMATCH: some allocator made a C program print another checksum than the system allocator (see above)"
        );
    }
    Ok(problems.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::report::tests::{meta, row};
    use crate::workloads::Report;

    fn measurement(checksum: u64) -> Measurement {
        Measurement {
            report: Report {
                elapsed_s: 0.5,
                checksum,
            },
            peak_rss_kib: 1000,
        }
    }

    fn options(args: &[&str]) -> Options {
        Options::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn cases_follow_threads_quick_and_smoke() {
        let all = cases(&options(&["--c"]));
        let n: usize = cprograms::C_PROGRAMS.iter().map(|p| p.threads.len()).sum();
        assert_eq!(all.len(), n);
        let eight = cases(&options(&["--c", "--threads", "8"]));
        assert!(!eight.is_empty() && eight.iter().all(|c| c.threads == 8));
        let smoke = cases(&options(&["--smoke", "--workload", "cfrac"]));
        assert_eq!(smoke.len(), 1);
        assert_eq!(smoke[0].work, 500_000 / SMOKE_WORK_DIVISOR);
        assert_eq!(smoke[0].args(), ["1".to_string(), "5000".to_string()]);
        let quick = cases(&options(&["--c", "--quick", "--workload", "cfrac"]));
        assert_eq!(quick[0].work, 500_000 / QUICK_WORK_DIVISOR);
    }

    #[test]
    fn a_checksum_unlike_the_systems_is_a_mismatch() {
        let names: Vec<String> = ["homing", "system", "mimalloc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let same = vec![
            vec![measurement(7), measurement(7)],
            vec![measurement(7)],
            vec![measurement(7)],
        ];
        assert!(check_outputs("x 2 threads", &names, &same).is_empty());
        let differ = vec![
            vec![measurement(7), measurement(8)],
            vec![measurement(7)],
            vec![measurement(9)],
        ];
        let problems = check_outputs("x 2 threads", &names, &differ);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with(
            "MISMATCH x 2 threads: homing run 2 printed checksum 8, system printed 7"
        ));
        assert!(problems[1].contains("mimalloc run 1 printed checksum 9"));
        // Without a system run the first allocator's first run is the reference.
        let no_system = vec![vec![measurement(7)], vec![], vec![measurement(9)]];
        let problems = check_outputs("x", &names, &no_system);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("homing printed 7"));
    }

    #[test]
    fn missing_peers_are_skipped_with_the_install_line() {
        let empty = std::env::temp_dir().join(format!("homing-no-libs-{}", std::process::id()));
        let (ready, skipped) = resolve(
            &["homing", "system", "tcmalloc"],
            Path::new("/x/libhoming.so"),
            std::slice::from_ref(&empty),
        );
        assert_eq!(ready.len(), 2);
        assert_eq!(
            ready[0].library.as_deref(),
            Some(Path::new("/x/libhoming.so"))
        );
        assert_eq!(ready[1].library, None);
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].contains("sudo apt-get install libtcmalloc-minimal4"));
    }

    #[test]
    fn best_peer_table_and_json_round_trip() {
        let rows = vec![
            row("mstress", 2, "homing", 3.0, 4096),
            row("mstress", 2, "system", 1.0, 2048),
            row("mstress", 2, "tcmalloc", 1.5, 1024),
        ];
        let table = best_peer_table(&rows);
        assert!(
            table.contains("| mstress | 2 | 3.000 | system | 3.00× | 4.0 | tcmalloc | 4.00× |"),
            "{table}"
        );
        let info = CInfo {
            compiler: "gcc 12".into(),
            cflags: "-O2".into(),
            allocators: vec![Ready {
                name: "system".into(),
                library: None,
                version: "glibc 2.36".into(),
            }],
            skipped: vec!["jemalloc skipped".into()],
        };
        let text = json(&rows, &meta(), &info, &[]);
        let (saved, back) = parse_saved(&text).unwrap();
        assert_eq!(back, info);
        // serde_json reads floats back to within an ulp, not always exactly.
        assert_eq!(saved.rows.len(), rows.len());
        for (a, b) in saved.rows.iter().zip(&rows) {
            assert!(a.same_case(b) && a.allocator == b.allocator);
            assert!((a.max_s - b.max_s).abs() < 1e-12 && a.peak_rss_kib == b.peak_rss_kib);
        }
        let md = report_markdown(&rows, &meta(), &info, &["MISMATCH a".into()]);
        assert!(md.contains("C mode") && md.contains("| skipped | jemalloc skipped |"));
        assert!(md.contains("## Problems\n\n- MISMATCH a"));
    }

    /// The whole path on one small program: compile it, build
    /// `libhoming.so`, run it under glibc and under homing, and read both
    /// outputs, which must agree.
    #[test]
    fn a_tiny_program_runs_alike_under_glibc_and_homing() {
        let exe = std::env::current_exe().unwrap();
        let dirs = super::super::BuildDirs::of(exe.parent().unwrap());
        super::super::build_homing_lib(&dirs).unwrap();
        let lib = dirs.homing_lib();
        assert!(lib.exists(), "{}", lib.display());
        let case = CCase {
            program: cprograms::find("alloc-test").unwrap(),
            threads: 2,
            work: 20_000,
        };
        let binary = cprograms::compile(case.program, &dirs.c_bin_dir()).unwrap();
        let (allocs, _) = resolve(&["homing", "system"], &lib, &[]);
        let (rows, problems) = run_cases(&[case], std::slice::from_ref(&binary), &allocs, 2);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.runs == 2 && r.peak_rss_kib > 0));
        // A library the loader refuses is caught before any run.
        assert!(probe(&binary, &allocs[0]).is_ok() && probe(&binary, &allocs[1]).is_ok());
        let bogus = std::env::temp_dir().join(format!("homing-bogus-{}.so", std::process::id()));
        std::fs::write(&bogus, b"not a library").unwrap();
        let refused = Ready {
            name: "bogus".into(),
            library: Some(bogus.clone()),
            version: String::new(),
        };
        let e = probe(&binary, &refused).unwrap_err();
        assert!(e.contains("does not preload"), "{e}");
        std::fs::remove_file(&bogus).unwrap();
        // And the check does catch a difference: another work, another sum.
        let system = &allocs[1];
        let a = child::measure_command(command(&binary, &case, system)).unwrap();
        let other = CCase {
            work: 20_002,
            ..case
        };
        let b = child::measure_command(command(&binary, &other, system)).unwrap();
        assert_ne!(a.report.checksum, b.report.checksum);
    }
}
