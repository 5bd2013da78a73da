//! Benchmarks of homing against its peers; the workloads live in `benches/` (criterion).
