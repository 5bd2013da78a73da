#!/usr/bin/env bash
# Runs bench/mixed.c on glibc and on homing (LD_PRELOAD=libhoming.so), and
# its Rust twin (examples/mixed.rs), ROUNDS times each, interleaved, and
# prints every figure (take the median: the machine may be shared).
#
#   allocator/capi/bench/run.sh [ROUNDS]
#
# Uses CARGO_TARGET_DIR if set (default: target/).
set -euo pipefail
cd "$(dirname "$0")/../../.."
rounds=${1:-3}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -p homing-capi --lib --example mixed
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O2 -pthread allocator/capi/bench/mixed.c -o "$out/mixed"
for ((i = 1; i <= rounds; i++)); do
    echo "--- round $i: C on glibc"
    "$out/mixed"
    echo "--- round $i: C on homing (LD_PRELOAD)"
    LD_PRELOAD="$PWD/$target/release/libhoming.so" "$out/mixed"
    echo "--- round $i: Rust on homing (homing::alloc/free)"
    "$target/release/examples/mixed"
done
