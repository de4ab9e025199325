#!/usr/bin/env bash
# bench/agent_rss.sh — peak resident memory of the async push agent (async = on) during a burst.
#
# The 20 real 16 MiB segments of bench/cache/wal (bench/lib.sh makes them with pgbench) are all
# offered at once (.ready in a fake PGDATA's pg_wal/archive_status), then pushed oldest first,
# one `walship push` per segment as PostgreSQL's archiver runs them; a success turns .ready into
# .done, as PostgreSQL would. The agent that the first push starts sees the whole burst and
# archives push-parallel files at once. Its peak RSS is VmHWM in /proc/<agent pid>/status, read
# after the last push while the agent is still alive (idle); the run fails if another agent
# took over during the burst (the pid in agent.state changed), since VmHWM is per process.
#
# Repositories: a posix directory, and moto_server (S3, loopback) when it is installed.
#   bench/agent_rss.sh                 push-parallel 4 (the default)
#   AGENT_RSS_PARALLEL="1 4 8" bench/agent_rss.sh
# Not part of bench/run.sh's default set; prints a Markdown table on stdout.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WALSHIP_BIN=${WALSHIP_BIN:-$ROOT_DIR/build/walship}
[[ $WALSHIP_BIN == /* ]] || WALSHIP_BIN=$PWD/$WALSHIP_BIN
[[ -x $WALSHIP_BIN ]] || die "no walship binary at $WALSHIP_BIN (make first)"
PARALLELS=${AGENT_RSS_PARALLEL:-4}

ensure_wal
WORK=$CACHE_DIR/agent-rss
rm -rf "$WORK"
mkdir -p "$WORK"
mapfile -t SEGS < <(wal_segments)

MOTO_PID=
cleanup() { [[ -z $MOTO_PID ]] || kill "$MOTO_PID" 2>/dev/null || true; }
trap cleanup EXIT
S3_PORT=
if command -v moto_server >/dev/null 2>&1; then
    S3_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    moto_server -p "$S3_PORT" >"$WORK/moto.log" 2>&1 &
    MOTO_PID=$!
    for _ in $(seq 100); do
        curl -fs -o /dev/null -X PUT "http://127.0.0.1:$S3_PORT/bench" && break
        sleep 0.1
    done
fi

# one run: $1 = label, $2 = parallel, rest = config lines; prints "peak_kib samples"
run_burst() {
    local label=$1 par=$2
    shift 2
    local d=$WORK/$label-$par
    fake_pgdata "$d/pgdata"
    mkdir -p "$d/pgdata/pg_wal/archive_status"
    local s
    for s in "${SEGS[@]}"; do : >"$d/pgdata/pg_wal/archive_status/$s.ready"; done
    {
        printf '%s\n' "$@"
        echo "async = on"
        echo "push-parallel = $par"
        echo "agent-idle-timeout = 30s"
        echo "archive-timeout = 120s"
    } >"$d/walship.conf"
    chmod 600 "$d/walship.conf"
    local state=$d/pgdata/pg_wal/walship/agent.state pid= hwm=0 v
    for s in "${SEGS[@]}"; do
        (cd "$d/pgdata" && "$WALSHIP_BIN" -c "$d/walship.conf" push "pg_wal/$s" 2>>"$d/push.log") ||
            die "$label: push of $s failed (see $d/push.log)"
        mv "$d/pgdata/pg_wal/archive_status/$s.ready" "$d/pgdata/pg_wal/archive_status/$s.done"
        if [[ -z $pid && -f $state ]]; then pid=$(sed -n 's/^pid = //p' "$state"); fi
    done
    [[ -n $pid && -r /proc/$pid/status ]] || die "$label: the agent is not running after the burst"
    [[ $(sed -n 's/^pid = //p' "$state") == "$pid" ]] || die "$label: the agent changed during the burst"
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
    kill -TERM "$pid" 2>/dev/null || true
    echo "$hwm $v"
}

echo "| repository | push-parallel | agent peak RSS (VmHWM) | RSS when idle after the burst |"
echo "|---|---|---|---|"
for par in $PARALLELS; do
    read -r hwm rss < <(run_burst posix "$par" "repo = $WORK/posix-$par-repo")
    echo "| posix | $par | $((hwm / 1024)) MiB ($hwm KiB) | $((rss / 1024)) MiB |"
    if [[ -n $S3_PORT ]]; then
        read -r hwm rss < <(run_burst s3 "$par" "repo = s3://bench/rss-$par" \
            "s3-endpoint = http://127.0.0.1:$S3_PORT" "s3-uri-style = path" \
            "s3-key = bench" "s3-key-secret = bench")
        echo "| S3 (moto_server, loopback) | $par | $((hwm / 1024)) MiB ($hwm KiB) | $((rss / 1024)) MiB |"
    fi
done
log "$(machine_line 2>/dev/null || true)"
