//! The workloads over the C library's `malloc` (`std::alloc::System`).

#[global_allocator]
static GLOBAL: std::alloc::System = std::alloc::System;

fn main() -> std::process::ExitCode {
    homing_bench::workloads::main()
}
