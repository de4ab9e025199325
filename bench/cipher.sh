#!/usr/bin/env bash
# bench/cipher.sh — encrypted against unencrypted push (issue 14): the 20 real 16 MiB segments
# of bench/lib.sh pushed serially, one process per segment as PostgreSQL's archiver runs them
# (walship --async off push), into a fresh posix repository per repetition, by
#   plain     compress = lz4, cipher = none
#   keyfile   cipher = aes-256-gcm, cipher-key-file (no KDF cost per process)
#   pass      cipher = aes-256-gcm, cipher-pass (scrypt N=2^15 once per process)
# (async = off: bench/lib.sh's fake PGDATA is no cluster an agent serves. With the agent, a
# passphrase costs one scrypt per agent process, not per segment: cipher.c caches the KEK.)
# interleaved, the order rotated per repetition. Prints the median ms/segment of each and the
# ratios to plain (goal: <= 1.10). BENCH_REPS (default 7) repetitions after a warm-up.
# Usage: bench/cipher.sh [WALSHIP_BIN]; BENCH_CACHE_DIR may point at an existing segment cache.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WALSHIP_BIN=${1:-${WALSHIP_BIN:-$ROOT_DIR/build/walship}}
[[ $WALSHIP_BIN == /* ]] || WALSHIP_BIN=$PWD/$WALSHIP_BIN
ensure_wal
RUN_DIR=$CACHE_DIR/run-cipher
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"
PGDATA_FAKE=$RUN_DIR/pgdata
fake_pgdata "$PGDATA_FAKE"
mapfile -t SEGS < <(wal_segments)
cp "$WALSHIP_BIN" "$RUN_DIR/walship"
WALSHIP_BIN=$RUN_DIR/walship
head -c 32 /dev/urandom >"$RUN_DIR/key"
chmod 600 "$RUN_DIR/key"

conf() { # JOB REPO -> config file
    local f=$RUN_DIR/$1.conf
    {
        echo "repo = $2"
        echo "async = off"
        case $1 in
        keyfile) echo "cipher = aes-256-gcm" && echo "cipher-key-file = $RUN_DIR/key" ;;
        pass*) echo "cipher = aes-256-gcm" && echo "cipher-pass = bench passphrase" ;;
        esac
    } >"$f"
    chmod 600 "$f"
    echo "$f"
}
job() { # JOB REPO
    local c s
    c=$(conf "$1" "$2")
    for s in "${SEGS[@]}"; do
        "$WALSHIP_BIN" -c "$c" push "pg_wal/$s" >>"$RUN_DIR/$1.log" 2>&1
    done
}

JOBS=(plain keyfile pass)
declare -A RESULTS=()
cd "$PGDATA_FAKE"
for rep in $(seq 0 "$BENCH_REPS"); do
    n=${#JOBS[@]}
    for i in $(seq 0 $((n - 1))); do
        j=${JOBS[$(((i + rep) % n))]}
        repo=$RUN_DIR/repo-$j
        rm -rf "$repo"
        sync
        t0=$(now_us)
        job "$j" "$repo" || die "$j failed (see $RUN_DIR/$j.log)"
        t1=$(now_us)
        ms=$(awk -v d=$((t1 - t0)) -v n=${#SEGS[@]} 'BEGIN {printf "%.2f", d / n / 1000}')
        if ((rep == 0)); then log "warm-up $j: $ms ms/segment"; else
            log "rep $rep/$BENCH_REPS $j: $ms ms/segment"
            RESULTS[$j]+="$ms "
        fi
    done
done
cd "$ROOT_DIR"
med() { tr ' ' '\n' <<<"${RESULTS[$1]}" | grep . | median; }
printf '| job | ms / segment (median of %d) | × plain |\n|---|---:|---:|\n' "$BENCH_REPS"
for j in "${JOBS[@]}"; do
    printf '| %s | %s | %s |\n' "$j" "$(med "$j")" "$(ratio "$(med "$j")" "$(med plain)")"
done
printf '\n%s\n' "$(machine_line 2>/dev/null || true)"
