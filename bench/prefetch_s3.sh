#!/usr/bin/env bash
# bench/prefetch_s3.sh — restore_command's view of a replay from S3 (s3rver over TLS on
# loopback): `walship fetch SEG pg_wal/RECOVERYXLOG` for the 20 bench segments in order, as
# the startup process runs it, with fetch-prefetch = 0 and = 8, interleaved BENCH_REPS times.
# Prints the total wall time of each run and every fetch slower than 0.5 s (the ~10 s stalls
# that made prefetch slower than no prefetch before http.c's fix, issue 17).
# Not part of bench/run.sh's default set; nothing here asserts on timings.
set -euo pipefail
_reps=${BENCH_REPS:-5}
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BENCH_REPS=$_reps
WALSHIP_BIN=${WALSHIP_BIN:-$ROOT_DIR/build/walship}
[[ $WALSHIP_BIN == /* ]] || WALSHIP_BIN=$PWD/$WALSHIP_BIN
[[ -x $WALSHIP_BIN ]] || die "no walship binary at $WALSHIP_BIN (make first)"
ensure_pkgs openssl:openssl
ensure_wal
W=$CACHE_DIR/prefetch-s3
S3_PID=
cleanup() {
    local st=$W/rp/pg_wal/walship-prefetch/agent.state pid
    if [[ -f $st ]]; then
        pid=$(sed -n 's/^pid = //p' "$st")
        [[ -z $pid ]] || kill -TERM "$pid" 2>/dev/null || true
    fi
    [[ -z $S3_PID ]] || kill "$S3_PID" 2>/dev/null || true
}
trap cleanup EXIT
rm -rf "$W"
mkdir -p "$W/tls" "$W/s3"
(
    cd "$W/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=walship-bench-ca -keyout ca.key -out ca.crt
    openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout srv.key -out srv.csr
    echo 'subjectAltName = IP:127.0.0.1, DNS:localhost' >san.ext
    openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out srv.crt
) >"$W/openssl.log" 2>&1 || die "openssl failed: $(cat "$W/openssl.log")"
NODE_OPTIONS=--openssl-legacy-provider node "$ROOT_DIR/tests/s3/s3rver.js" --dir "$W/s3" --port 0 \
    --bucket bench --key "$W/tls/srv.key" --cert "$W/tls/srv.crt" >"$W/s3rver.log" 2>&1 &
S3_PID=$!
PORT=
for _ in $(seq 100); do
    PORT=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$W/s3rver.log")
    [[ -z $PORT ]] || break
    sleep 0.1
done
[[ -n $PORT ]] || die "s3rver did not start (see $W/s3rver.log)"
for c in push:"async = off" off:"fetch-prefetch = 0" on:"fetch-prefetch = 8"; do
    {
        echo "repo = s3://bench/r1"
        echo "s3-endpoint = https://127.0.0.1:$PORT"
        echo "s3-uri-style = path"
        echo "s3-region = us-east-1"
        echo "s3-key = S3RVER"
        echo "s3-key-secret = S3RVER"
        echo "s3-ca-file = $W/tls/ca.crt"
        echo "log-level = warn"
        echo "${c#*:}"
    } >"$W/${c%%:*}.conf"
    chmod 600 "$W/${c%%:*}.conf"
done
fake_pgdata "$W/src"
mkdir -p "$W/src/pg_wal/archive_status"
mapfile -t SEGS < <(wal_segments)
for s in "${SEGS[@]}"; do
    (cd "$W/src" && "$WALSHIP_BIN" -c "$W/push.conf" push "pg_wal/$s") || die "push of $s failed"
done

# replay CONF — one sequential run; prints "total slow-fetches"
replay() {
    local conf=$1 t0 a b slow='' s st pid
    rm -rf "$W/rp"
    mkdir -p "$W/rp/pg_wal/archive_status" "$W/rp/global"
    cp "$W/src/global/pg_control" "$W/rp/global/"
    cp "$W/src/PG_VERSION" "$W/rp/"
    t0=$(now_us)
    for s in "${SEGS[@]}"; do
        a=$(now_us)
        (cd "$W/rp" && "$WALSHIP_BIN" -c "$W/$conf.conf" fetch "$s" pg_wal/RECOVERYXLOG) || die "fetch of $s failed"
        b=$(now_us)
        cmp -s "$W/rp/pg_wal/RECOVERYXLOG" "$W/src/pg_wal/$s" || die "$s fetched back different"
        ((b - a < 500000)) || slow+="$s:$(awk -v d=$((b - a)) 'BEGIN {printf "%.1fs", d / 1e6}') "
    done
    printf '%s %s\n' "$(awk -v d=$(($(now_us) - t0)) 'BEGIN {printf "%.2f", d / 1e6}')" "${slow:--}"
    st=$W/rp/pg_wal/walship-prefetch/agent.state
    if [[ -f $st ]]; then
        pid=$(sed -n 's/^pid = //p' "$st")
        [[ -z $pid ]] || kill -TERM "$pid" 2>/dev/null || true
        sleep 0.5
    fi
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| run | fetch-prefetch = 0 (s) | fetch-prefetch = 8 (s) | prefetch fetches > 0.5 s |"
echo "|---:|---:|---:|---|"
for rep in $(seq 1 "$BENCH_REPS"); do
    read -r off _ < <(replay off)
    read -r on slow < <(replay on)
    echo "| $rep | $off | $on | $slow |"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
