//! The workloads over homing, this workspace's allocator.

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

fn main() -> std::process::ExitCode {
    homing_bench::workloads::main()
}
