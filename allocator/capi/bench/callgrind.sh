#!/usr/bin/env bash
# Instructions per malloc+free pair through libhoming.so (C, LD_PRELOAD) and
# through homing's Rust path (homing-bench's `pairs homing`, homing as a
# GlobalAlloc), under callgrind, at 16, 64, 256 and 1024 bytes.
#
#   allocator/capi/bench/callgrind.sh [--no-rust]
#
# Each figure is (I(2n) - I(n)) / n minus the same for a loop that calls an
# allocator doing nothing: `nop` (bench/pairs_nop.c, called through the PLT
# like malloc) for C, the `none` allocator for Rust. The C line also shows
# the raw figure (loop, calls and PLT jumps included) and the loop alone.
# Needs valgrind. Uses CARGO_TARGET_DIR if set (default: target/).
set -euo pipefail
cd "$(dirname "$0")/../../.."
target=${CARGO_TARGET_DIR:-target}
command -v valgrind >/dev/null || { echo "callgrind.sh: needs valgrind" >&2; exit 1; }
n=200000
sizes=(16 64 256 1024)

# Built on their own: one cargo invocation for both would unify homing's
# features, and the Rust figure would then be that of the C library's
# initial-exec build.
cargo build --release -p homing-capi --lib
if [ "${1:-}" != "--no-rust" ]; then
    cargo build --release -p homing-bench --bin pairs
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O2 -fPIC -shared allocator/capi/bench/pairs_nop.c -o "$out/libpairs_nop.so"
cc -O2 allocator/capi/bench/pairs.c -o "$out/pairs" -L"$out" -lpairs_nop -Wl,-rpath,"$out"
so="$PWD/$target/release/libhoming.so"

# Instructions of one run.
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | awk '/Collected/ {print $4}'; }
# Instructions of one iteration: the difference between n and 2n.
per() { echo $(( ($(ir "$@" $((2 * n))) - $(ir "$@" $n)) / n )); }

loop=$(per "$out/pairs" nop 64)
line="C (libhoming.so):"
raw="raw (loop $loop included):"
for s in "${sizes[@]}"; do
    r=$(LD_PRELOAD="$so" per "$out/pairs" malloc "$s")
    line="$line $((r - loop))"
    raw="$raw $r"
done
echo "sizes:             ${sizes[*]}"
echo "$line    $raw"
if [ "${1:-}" != "--no-rust" ]; then
    rloop=$(per "$target/release/pairs" none 64)
    line="Rust (GlobalAlloc):"
    for s in "${sizes[@]}"; do
        line="$line $(( $(per "$target/release/pairs" homing "$s") - rloop ))"
    done
    echo "$line    (loop $rloop)"
fi
