//! The workloads over rpmalloc.

#[global_allocator]
static GLOBAL: rpmalloc::RpMalloc = rpmalloc::RpMalloc;

fn main() -> std::process::ExitCode {
    homing_bench::workloads::main()
}
