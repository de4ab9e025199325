#!/usr/bin/env bash
# bench/run.sh [BENCH...] — run walship's benchmarks (default: all of them).
#
#   BENCH          push, async, basebackup, restore, module
#   WALSHIP_BIN    the walship binary to measure (default: build/walship)
#   BENCH_REPS     repetitions per job (default 7 for push, 3 for the others);
#                  the tables give medians
#   BENCH_BURST_MB async: the WAL burst in MiB (default 2048; smaller for a quick run)
#
# Installs what it needs (pgbackrest, lz4, time) with apt-get when missing, keeps the generated
# WAL in bench/cache/ so that reruns are fast, prints each table and writes it into its section
# of docs/benchmarks.md. Benchmarks are not tests: nothing here asserts on timings.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ALL_BENCHES=(push async basebackup restore module)

usage() {
    sed -n '2,13s/^# \{0,1\}//p' "$0"
    exit "${1:-0}"
}

benches=()
for arg in "$@"; do
    case $arg in
    -h | --help) usage 0 ;;
    all) benches+=("${ALL_BENCHES[@]}") ;;
    *)
        [[ -f $BENCH_DIR/$arg.sh && " ${ALL_BENCHES[*]} " == *" $arg "* ]] || {
            echo "bench/run.sh: unknown benchmark '$arg' (known: ${ALL_BENCHES[*]})" >&2
            usage 2
        }
        benches+=("$arg")
        ;;
    esac
done
((${#benches[@]})) || benches=("${ALL_BENCHES[@]}")

for b in "${benches[@]}"; do
    bash "$BENCH_DIR/$b.sh"
done
