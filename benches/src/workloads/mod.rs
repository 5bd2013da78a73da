//! The workloads: allocation-heavy programs, each a function over the global
//! allocator, modelled on the classic allocator stress tests.
//!
//! A `wl-*` binary per allocator sets its `#[global_allocator]` and calls
//! [`main`], which runs one workload once and prints a [`Report`] line with
//! the time of the workload alone (process start-up excluded) and a checksum
//! that is the same for every allocator when they all did identical work.
//!
//! # Adding a workload
//!
//! Write a module with a `run(&Params) -> u64` function (return a checksum
//! that depends only on the parameters, such as the bytes requested) and a
//! `pub const WORKLOAD: Workload`, then add one line to [`WORKLOADS`].
//! `compare` picks it up by name.

mod block;
pub mod cache_scratch;
pub mod chat;
pub mod larson;
pub mod local;
pub mod mstress;
pub mod xmalloc;

use std::process::ExitCode;
use std::time::Instant;

pub use block::{Block, BLOCK_ALIGN};

use crate::cli::Flags;

/// The seed every run uses unless told otherwise: fixed, so that every
/// allocator sees the same sizes and choices.
pub const DEFAULT_SEED: u64 = 0x686F_6D69_6E67; // "homing" in ASCII

/// Thread count of the oversubscribed variants: four threads per core on
/// the project's 2-core machine, so threads are preempted while they hold
/// allocator state.
pub const OVERSUBSCRIBED_THREADS: usize = 8;

/// What one run of a workload is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Worker threads (the workload documents how it uses them).
    pub threads: usize,
    /// Smallest block size requested, in bytes.
    pub min_size: usize,
    /// Largest block size requested, in bytes (inclusive).
    pub max_size: usize,
    /// Amount of work: the workload's unit (allocations, replacements, …),
    /// the same total whatever the thread count.
    pub work: u64,
    /// Seed of every thread's generator.
    pub seed: u64,
}

impl Params {
    /// The command-line flags that make a `wl-*` binary run `workload` with
    /// these parameters (the inverse of [`parse_child_args`]).
    pub fn to_args(&self, workload: &str) -> Vec<String> {
        vec![
            "--workload".into(),
            workload.into(),
            "--threads".into(),
            self.threads.to_string(),
            "--min-size".into(),
            self.min_size.to_string(),
            "--max-size".into(),
            self.max_size.to_string(),
            "--work".into(),
            self.work.to_string(),
            "--seed".into(),
            self.seed.to_string(),
        ]
    }

    /// Checks that the parameters make sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.threads == 0 {
            return Err("threads must be at least 1".into());
        }
        if self.min_size == 0 || self.min_size > self.max_size {
            return Err(format!(
                "size range {}..={} must be non-empty and start above 0",
                self.min_size, self.max_size
            ));
        }
        if self.work == 0 {
            return Err("work must be at least 1".into());
        }
        Ok(())
    }
}

/// The part of `total` that worker `index` of `workers` does: equal shares,
/// the first `total % workers` workers one more.
pub fn share(total: u64, workers: usize, index: usize) -> u64 {
    let workers = workers as u64;
    total / workers + u64::from((index as u64) < total % workers)
}

/// One entry of the workload registry.
#[derive(Debug)]
pub struct Workload {
    /// The name used on the command line and in reports.
    pub name: &'static str,
    /// One line: what the workload models.
    pub summary: &'static str,
    /// Runs the workload once over the global allocator and returns its
    /// checksum.
    pub run: fn(&Params) -> u64,
    /// The parameters of a full `compare` run on a 2-core machine.
    pub defaults: Params,
    /// `true` if `compare` also runs it with [`OVERSUBSCRIBED_THREADS`].
    pub oversubscribed: bool,
}

/// Every workload, in report order.
pub const WORKLOADS: &[Workload] = &[
    xmalloc::WORKLOAD,
    larson::WORKLOAD,
    mstress::WORKLOAD,
    cache_scratch::WORKLOAD,
    local::WORKLOAD,
    chat::WORKLOAD,
];

/// The workload called `name`.
pub fn find(name: &str) -> Option<&'static Workload> {
    WORKLOADS.iter().find(|w| w.name == name)
}

/// What a `wl-*` binary prints after a run: the seconds spent in the
/// workload and its checksum, as one line `elapsed_s=<f64> checksum=<u64>`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// Wall time of the workload function alone.
    pub elapsed_s: f64,
    /// The workload's checksum.
    pub checksum: u64,
}

impl Report {
    /// The line the child prints.
    pub fn to_line(&self) -> String {
        format!("elapsed_s={:.9} checksum={}", self.elapsed_s, self.checksum)
    }

    /// Finds and reads the report line in a child's standard output.
    pub fn parse(stdout: &str) -> Result<Self, String> {
        let line = stdout
            .lines()
            .find(|l| l.starts_with("elapsed_s="))
            .ok_or_else(|| format!("no `elapsed_s=` line in the output {stdout:?}"))?;
        let mut elapsed_s = None;
        let mut checksum = None;
        for field in line.split_whitespace() {
            match field.split_once('=') {
                Some(("elapsed_s", v)) => elapsed_s = v.parse::<f64>().ok(),
                Some(("checksum", v)) => checksum = v.parse::<u64>().ok(),
                _ => {}
            }
        }
        match (elapsed_s, checksum) {
            (Some(elapsed_s), Some(checksum)) => Ok(Self {
                elapsed_s,
                checksum,
            }),
            _ => Err(format!("unreadable report line {line:?}")),
        }
    }
}

/// What a `wl-*` command line asks for.
#[derive(Debug, PartialEq)]
pub enum ChildCommand {
    /// Print the workloads and their defaults.
    List,
    /// Run one workload once.
    Run(&'static Workload, Params),
}

/// Reads a `wl-*` command line (without the program name): `--list`, or
/// `--workload NAME` with optional `--threads`, `--min-size`, `--max-size`,
/// `--work` and `--seed` overriding the workload's defaults.
pub fn parse_child_args(args: &[String]) -> Result<ChildCommand, String> {
    let flags = Flags::parse(
        args,
        &[
            "workload", "threads", "min-size", "max-size", "work", "seed",
        ],
        &["list"],
    )?;
    if flags.has("list") {
        return Ok(ChildCommand::List);
    }
    let name = flags
        .value("workload")
        .ok_or("--workload NAME is required")?;
    let workload = find(name).ok_or_else(|| format!("unknown workload `{name}`"))?;
    let d = workload.defaults;
    let params = Params {
        threads: flags.parsed("threads")?.unwrap_or(d.threads),
        min_size: flags.parsed("min-size")?.unwrap_or(d.min_size),
        max_size: flags.parsed("max-size")?.unwrap_or(d.max_size),
        work: flags.parsed("work")?.unwrap_or(d.work),
        seed: flags.parsed("seed")?.unwrap_or(d.seed),
    };
    params.validate()?;
    Ok(ChildCommand::Run(workload, params))
}

// `Workload` holds a function pointer, so equality is by name (names are
// unique in the registry).
impl PartialEq for Workload {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// The `main` of every `wl-*` binary: runs the workload its arguments name
/// over whatever global allocator the binary set, and prints a [`Report`].
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_child_args(&args) {
        Ok(ChildCommand::List) => {
            for w in WORKLOADS {
                let d = w.defaults;
                println!(
                    "{:<14} threads {} sizes {}..={} work {}  {}",
                    w.name, d.threads, d.min_size, d.max_size, d.work, w.summary
                );
            }
            ExitCode::SUCCESS
        }
        Ok(ChildCommand::Run(workload, params)) => {
            let start = Instant::now();
            let checksum = (workload.run)(&params);
            let elapsed_s = start.elapsed().as_secs_f64();
            println!(
                "{}",
                Report {
                    elapsed_s,
                    checksum
                }
                .to_line()
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            eprintln!(
                "usage: wl-<allocator> --workload NAME [--threads N] [--min-size B] \
                 [--max-size B] [--work N] [--seed N] | --list"
            );
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_are_unique_and_defaults_valid() {
        for (i, w) in WORKLOADS.iter().enumerate() {
            assert!(
                WORKLOADS[..i].iter().all(|o| o.name != w.name),
                "{}",
                w.name
            );
            w.defaults.validate().unwrap();
            assert_eq!(w.defaults.seed, DEFAULT_SEED);
        }
    }

    #[test]
    fn params_round_trip_through_the_command_line() {
        let w = find("larson").unwrap();
        let p = Params {
            threads: 3,
            min_size: 8,
            max_size: 99,
            work: 1234,
            seed: 5,
        };
        assert_eq!(
            parse_child_args(&p.to_args("larson")).unwrap(),
            ChildCommand::Run(w, p)
        );
    }

    #[test]
    fn child_args_default_and_reject() {
        let ChildCommand::Run(w, p) = parse_child_args(&strings(&["--workload", "local"])).unwrap()
        else {
            panic!("expected a run");
        };
        assert_eq!(p, w.defaults);
        assert_eq!(
            parse_child_args(&strings(&["--list"])).unwrap(),
            ChildCommand::List
        );
        assert!(parse_child_args(&strings(&[])).is_err());
        assert!(parse_child_args(&strings(&["--workload", "nope"])).is_err());
        assert!(parse_child_args(&strings(&["--workload", "local", "--threads", "0"])).is_err());
        assert!(parse_child_args(&strings(&[
            "--workload",
            "local",
            "--min-size",
            "9",
            "--max-size",
            "8"
        ]))
        .is_err());
    }

    #[test]
    fn shares_add_up() {
        for (total, workers) in [(10, 3), (2, 5), (12_000_000, 4)] {
            let sum: u64 = (0..workers).map(|i| share(total, workers, i)).sum();
            assert_eq!(sum, total);
        }
    }

    #[test]
    fn report_line_round_trips() {
        let r = Report {
            elapsed_s: 1.25,
            checksum: 77,
        };
        let out = format!("some noise\n{}\n", r.to_line());
        assert_eq!(Report::parse(&out).unwrap(), r);
        assert!(Report::parse("nothing here").is_err());
        assert!(Report::parse("elapsed_s=x checksum=1").is_err());
    }

    /// Every workload runs on a tiny amount of work, and twice gives the same
    /// checksum (the property `compare` relies on across allocators).
    #[test]
    fn every_workload_runs_small_and_deterministically() {
        for w in WORKLOADS {
            for threads in [1, 3] {
                let p = Params {
                    threads,
                    work: 2_000,
                    ..w.defaults
                };
                let a = (w.run)(&p);
                let b = (w.run)(&p);
                assert_eq!(a, b, "{} with {threads} threads", w.name);
                assert_ne!(a, 0, "{} did nothing", w.name);
            }
        }
    }
}
