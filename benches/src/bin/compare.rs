//! Runs every workload with every allocator and reports; see
//! `homing_bench::compare` and `compare --help`.

fn main() -> std::process::ExitCode {
    homing_bench::compare::main()
}
