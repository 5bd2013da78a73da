#!/usr/bin/env bash
# Figures for the embedded-Lua program (tests/c/lua_states.c): time and
# peak RSS of one global malloc (glibc, homing) vs per-worker heaps vs
# per-state heaps, in one interleaved run (the order rotates every round),
# medians and ranges over ROUNDS rounds.
#
#     allocator/capi/tests/lua_figures.sh [STATES] [JOBS_PER_STATE] [ROUNDS]
#
# Builds against target/release/libhoming.so (cargo build --release -p
# homing-capi first). Needs liblua5.4-dev.
set -euo pipefail
cd "$(dirname "$0")/../../.."
STATES=${1:-64}
JOBS=${2:-30}
ROUNDS=${3:-5}
LIB=$PWD/target/release
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
[ -e "$LIB/libhoming.so" ] || { echo "build it first: cargo build --release -p homing-capi" >&2; exit 1; }
[ -e /usr/include/lua5.4/lua.h ] || { echo "!!! no liblua5.4-dev: no figures" >&2; exit 1; }
SRC=allocator/capi/tests/c/lua_states.c
cc -O2 -pthread -DNO_HOMING -I/usr/include/lua5.4 "$SRC" -o "$OUT/glibc" -llua5.4 -lm
cc -O2 -pthread -I/usr/include/lua5.4 -Iallocator/capi/include "$SRC" -o "$OUT/homing" \
    -L"$LIB" -lhoming -Wl,-rpath,"$LIB" -llua5.4 -lm
configs=("glibc global" "homing global" "homing worker" "homing state")
for ((r = 0; r < ROUNDS; r++)); do
    for ((k = 0; k < ${#configs[@]}; k++)); do
        c=${configs[$(((k + r) % ${#configs[@]}))]}
        set -- $c
        "$OUT/$1" "$2" "$STATES" "$JOBS" > "$OUT/out" 2> "$OUT/err"
        line=$(grep '^figures:' "$OUT/err")
        s=$(sed 's/.*seconds=\([0-9.]*\).*/\1/' <<< "$line")
        m=$(sed 's/.*peak_rss_kib=\([0-9]*\).*/\1/' <<< "$line")
        echo "$1-$2 $s $m" >> "$OUT/all"
        sum=$(md5sum < "$OUT/out")
        echo "$sum" >> "$OUT/sums"
    done
done
[ "$(sort -u "$OUT/sums" | wc -l)" = 1 ] || { echo "OUTPUTS DIFFER between configurations" >&2; exit 1; }
echo "states=$STATES jobs/state=$JOBS rounds=$ROUNDS workers=4 (outputs identical in every run)"
printf '%-15s %10s %18s %12s %20s\n' config "median s" "range s" "median MiB" "range MiB"
for c in "${configs[@]}"; do
    n=${c/ /-}
    grep "^$n " "$OUT/all" | python3 -c '
import sys, statistics as st
rows = [l.split() for l in sys.stdin]
s = [float(r[1]) for r in rows]; m = [int(r[2]) / 1024 for r in rows]
print("%-15s %10.3f %8.3f-%-8.3f %12.1f %9.1f-%-9.1f" % (rows[0][0], st.median(s), min(s), max(s), st.median(m), min(m), max(m)))'
done
