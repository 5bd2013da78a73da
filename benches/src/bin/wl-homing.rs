//! The workloads over homing, this workspace's allocator.
//!
//! With `HOMING_SHOW_STATS` set, the allocator's statistics are printed on
//! standard error at the end (as the C library does at exit).

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

fn main() -> std::process::ExitCode {
    let code = homing_bench::workloads::main();
    if std::env::var_os("HOMING_SHOW_STATS").is_some() {
        eprintln!("{}", homing::stats());
    }
    code
}
