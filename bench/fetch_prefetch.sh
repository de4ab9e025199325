#!/usr/bin/env bash
# bench/fetch_prefetch.sh — fetch latency on a prefetch hit versus a foreground fetch.
#
# The 20 real 16 MiB segments of bench/cache/wal (bench/lib.sh makes them with pgbench) are
# pushed into a posix repository. Then, in a fake PGDATA, `walship fetch %f pg_wal/RECOVERYXLOG`
# is timed (process start to exit) for segments 2..20 as PostgreSQL's startup process runs it:
#   - fetch-prefetch = 0: each segment read, decompressed, verified and written in the foreground;
#   - fetch-prefetch = 19: the first fetch starts the agent, which downloads the rest; each
#     later fetch is timed once the agent has its segment (a hit: a rename).
# Not part of bench/run.sh's default set; prints a Markdown table on stdout.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WALSHIP_BIN=${WALSHIP_BIN:-$ROOT_DIR/build/walship}
[[ $WALSHIP_BIN == /* ]] || WALSHIP_BIN=$PWD/$WALSHIP_BIN
[[ -x $WALSHIP_BIN ]] || die "no walship binary at $WALSHIP_BIN (make first)"

ensure_wal
WORK=$CACHE_DIR/fetch-prefetch
rm -rf "$WORK"
mkdir -p "$WORK"
mapfile -t SEGS < <(wal_segments)
fake_pgdata "$WORK/src"
printf 'repo = %s\n' "$WORK/repo" >"$WORK/push.conf"
chmod 600 "$WORK/push.conf"
for s in "${SEGS[@]}"; do
    (cd "$WORK/src" && "$WALSHIP_BIN" -c "$WORK/push.conf" push "pg_wal/$s" 2>>"$WORK/push.log") ||
        die "push of $s failed"
done

# one run: $1 = fetch-prefetch; prints the fetch times (µs) of segments 2..n, one a line
run_fetch() {
    local ahead=$1 d=$WORK/fetch-$1 s t0 t1 i
    rm -rf "$d"
    mkdir -p "$d/pg_wal/archive_status"
    chmod 700 "$d"
    printf 'repo = %s\nfetch-prefetch = %s\nagent-idle-timeout = 5s\nlog-level = debug\n' \
        "$WORK/repo" "$ahead" >"$d.conf"
    chmod 600 "$d.conf"
    (cd "$d" && "$WALSHIP_BIN" -c "$d.conf" fetch "${SEGS[0]}" pg_wal/RECOVERYXLOG 2>>"$d.log")
    for ((i = 1; i < ${#SEGS[@]}; i++)); do
        s=${SEGS[$i]}
        if ((ahead > 0)); then
            for _ in $(seq 600); do [[ -e $d/pg_wal/walship-prefetch/$s ]] && break; sleep 0.05; done
        fi
        t0=$(now_us)
        (cd "$d" && "$WALSHIP_BIN" -c "$d.conf" fetch "$s" pg_wal/RECOVERYXLOG 2>>"$d.log")
        t1=$(now_us)
        echo $((t1 - t0))
    done
}

start=$(for _ in $(seq 19); do
    t0=$(now_us)
    "$WALSHIP_BIN" --version >/dev/null
    t1=$(now_us)
    echo $((t1 - t0))
done | median)
fg=$(run_fetch 0 | median)
hit=$(run_fetch 19 | median)
hits=$(grep -c 'from the prefetch spool' "$WORK/fetch-19.log" || true)
echo "| fetch of one 16 MiB segment (posix repository) | median of $((${#SEGS[@]} - 1)) |"
echo "|---|---|"
printf '| foreground (fetch-prefetch = 0) | %.1f ms |\n' "$(awk -v v="$fg" 'BEGIN {print v/1000}')"
printf '| prefetch hit (%s of %s served from the spool) | %.1f ms |\n' "$hits" "$((${#SEGS[@]} - 1))" \
    "$(awk -v v="$hit" 'BEGIN {print v/1000}')"
printf '| for scale: walship --version (process start and exit) | %.1f ms |\n' \
    "$(awk -v v="$start" 'BEGIN {print v/1000}')"
inside=$(sed -n 's/.*served .* in \([0-9.]*\) ms.*/\1/p' "$WORK/fetch-19.log" | median)
printf '| prefetch hit inside the process (--log-level debug) | %s ms |\n' "$inside"
