#!/usr/bin/env bash
# shellcheck disable=SC2016 # backquotes in single quotes are Markdown, not expansions
# bench/async.sh — a WAL burst on a live PostgreSQL 15 cluster: how fast each archiver drains it,
# how fast one segment comes back, and how fast recovery replays it from the repository.
#
#   drain    the burst (BENCH_BURST_MB of real pgbench WAL, 16 MiB segments) waits as .ready
#            files in a running cluster whose archive_command is empty (PostgreSQL keeps the
#            files and archives nothing); the clock starts when archive_command is set and the
#            configuration reloaded, and stops when no .ready file is left in
#            pg_wal/archive_status (then pg_stat_archiver.last_archived_wal is checked to be
#            the burst's last segment and failed_count to be 0). This is "from the burst's end"
#            for a burst written faster than any archiver, or an archiver that was held up.
#            Jobs: walship async (push-parallel 4), walship sync, pgbackrest async
#            (archive-async=y, process-max=2, spool-path), pgbackrest sync; each into a posix
#            directory and into S3 (s3rver over TLS on loopback, a throwaway CA).
#   fetch    one `walship fetch SEG DEST` vs one `pgbackrest archive-get SEG DEST`, serially,
#            per segment; with a prefetching walship (the fetch-prefetch option), also a
#            prefetch-hit row: the segments after one fetched are fetched once prefetched.
#   replay   recovery of a base backup taken before the burst through restore_command, vs the
#            same recovery with the burst already in the backup's pg_wal (the floor). The
#            figure is PostgreSQL's own: "redo starts" to "redo done" in the server log.
#
#   BENCH_BURST_MB   burst size in MiB (default 2048); smaller for a quick run
#   BENCH_DRAIN_ONLY drain jobs to run, e.g. "walship-async-s3 pgbackrest-async-s3"; then only
#                    the drain is measured and docs/benchmarks.md is left alone (profiling)
#   BENCH_REPLAY_ONLY with BENCH_DRAIN_ONLY: then these replay jobs (e.g. "floor prefetch-s3",
#                    which need walship-async-s3 drained), no fetch latency, no report
#   BENCH_PREFETCH_EXTRA one more configuration line for the prefetch-* replays (profiling),
#                    e.g. "fetch-parallel = 2"
#   BENCH_REPS       repetitions of each drain and replay job (default 3); medians
#   WALSHIP_BIN      the walship binary (default build/walship)
# The burst (a PostgreSQL data directory with the burst waiting, and the base backup) is kept
# in bench/cache/async/template and reused while BENCH_BURST_MB is unchanged. Run through
# bench/run.sh; writes the async section of docs/benchmarks.md.
set -euo pipefail
_reps=${BENCH_REPS:-3}
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BENCH_REPS=$_reps
BURST_MB=${BENCH_BURST_MB:-2048}
[[ $BURST_MB =~ ^[0-9]+$ && $BURST_MB -ge 32 ]] || die "BENCH_BURST_MB must be a number of MiB >= 32"
[[ $BENCH_REPS =~ ^[0-9]+$ && $BENCH_REPS -ge 1 ]] || die "BENCH_REPS must be >= 1"

WALSHIP_BIN=${WALSHIP_BIN:-$ROOT_DIR/build/walship}
[[ $WALSHIP_BIN == /* ]] || WALSHIP_BIN=$PWD/$WALSHIP_BIN
[[ -x $WALSHIP_BIN ]] || die "no walship binary at $WALSHIP_BIN (make first)"

ensure_pkgs pgbackrest:pgbackrest /usr/bin/time:time openssl:openssl
command -v node >/dev/null || die "node is needed for the S3 server (tests/s3/s3rver.js)"
[[ -f $ROOT_DIR/tests/s3/node_modules/@20minutes/s3rver/package.json ]] ||
    die "tests/s3/node_modules has no @20minutes/s3rver: run scripts/deps.sh"
[[ -x $PG_BIN/initdb ]] || die "PostgreSQL 15 binaries not found in $PG_BIN"

AS_DIR=$CACHE_DIR/async
TPL=$AS_DIR/template # data/ (burst waiting as .ready), base/ (backup before the burst), STAMP
RUN=$AS_DIR/run      # per-run: the cluster, repositories, configurations, S3 store
SOCK=$AS_DIR/sock
PORT=${BENCH_ASYNC_PG_PORT:-54331}
DRAIN_TIMEOUT=${BENCH_DRAIN_TIMEOUT:-1800}

PSQL() { as_pg "$PG_BIN/psql" -X -q -A -t -h "$SOCK" -p "$PORT" -U postgres -d postgres "$@"; }
ctl() { as_pg "$PG_BIN/pg_ctl" -D "$1" -l "$1.log" -w -t "${3:-120}" "$2" >/dev/null; }
stop_if_running() { [[ ! -f $1/postmaster.pid ]] || as_pg "$PG_BIN/pg_ctl" -D "$1" -m fast -w -t 120 stop >/dev/null || true; }
mkdir_pg() { mkdir -p "$@" && chown postgres: "$@" && chmod 700 "$@"; }

# pids_with_arg TEXT — the processes whose command line contains TEXT (a path unique to this run:
# walship's agents are forks of a push or fetch and keep its argv, pgbackrest's async workers
# carry --config)
pids_with_arg() {
    local p
    for p in /proc/[0-9]*; do
        [[ $p != "/proc/$$" ]] || continue
        { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$1" && echo "${p#/proc/}"
    done
    return 0
}
# reap TEXT — wait up to 3 s for those processes to exit, then SIGTERM each by pid
reap() {
    local i p
    for i in $(seq 30); do
        [[ -n $(pids_with_arg "$1") ]] || return 0
        ((i < 30)) || break
        sleep 0.1
    done
    for p in $(pids_with_arg "$1"); do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.5
}

S3_PID=
cleanup() {
    stop_if_running "$RUN/data"
    stop_if_running "$RUN/replay"
    [[ -z $S3_PID ]] || kill "$S3_PID" 2>/dev/null || true
    [[ ! -d $RUN ]] || for p in $(pids_with_arg "$RUN/"); do kill -TERM "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# --- the burst ---------------------------------------------------------------------------

tpl_ok() {
    [[ -f $TPL/STAMP && -f $TPL/segments && -d $TPL/data && -d $TPL/base ]] &&
        grep -qx "burst_mb=$BURST_MB" "$TPL/STAMP"
}

# make_burst — initdb, base backup, then pgbench until BURST_MB of WAL, with archiving held
# (archive_command = ''), ending with pg_switch_wal; the .ready files are the burst.
make_burst() {
    log "writing a $BURST_MB MiB burst with pgbench (scratch PostgreSQL 15 cluster, archiving held)"
    stop_if_running "$TPL/data"
    rm -rf "$TPL"
    mkdir_pg "$AS_DIR" "$TPL" "$SOCK"
    as_pg "$PG_BIN/initdb" -D "$TPL/data" -U postgres --auth=trust --no-sync >"$TPL/initdb.log"
    cat >>"$TPL/data/postgresql.conf" <<EOF
# bench/async.sh
listen_addresses = ''
port = $PORT
unix_socket_directories = '$SOCK'
wal_level = replica
archive_mode = on
fsync = off
synchronous_commit = off
checkpoint_timeout = 30s
max_wal_size = 1GB
shared_buffers = 128MB
autovacuum = off
hot_standby = off
log_line_prefix = '%m [%p] '
include_if_exists = 'bench_archive.conf'
EOF
    echo "archive_command = ''" | as_pg tee "$TPL/data/bench_archive.conf" >/dev/null
    ctl "$TPL/data" start
    PSQL -c 'CHECKPOINT'
    as_pg "$PG_BIN/pg_basebackup" -h "$SOCK" -p "$PORT" -U postgres -D "$TPL/base" -X stream -c fast --no-sync
    local lsn0 scale bytes want t0
    lsn0=$(PSQL -c 'SELECT pg_current_wal_lsn()')
    want=$((BURST_MB * 1024 * 1024))
    t0=$(now_us)
    # rounds of `pgbench -i -s SCALE` (COPY, index builds, vacuum: ~17 MiB of WAL per scale
    # unit; each round drops the last one's tables, so the data directory stays small), each
    # followed by 10 s of TPC-B load (update records, and full-page images after the checkpoints
    # that come every 30 s), until the WAL since the base backup reaches BURST_MB
    scale=$((BURST_MB / 6 / 17))
    ((scale <= 20)) || scale=20
    ((scale >= 1)) || scale=1
    : >"$TPL/pgbench.log"
    while :; do
        bytes=$(PSQL -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0')::bigint")
        log "burst: $((bytes / 1048576)) / $BURST_MB MiB after $((($(now_us) - t0) / 1000000)) s"
        ((bytes < want)) || break
        as_pg "$PG_BIN/pgbench" -h "$SOCK" -p "$PORT" -U postgres -i -s "$scale" -q postgres >>"$TPL/pgbench.log" 2>&1
        as_pg "$PG_BIN/pgbench" -h "$SOCK" -p "$PORT" -U postgres -n -c 4 -j 2 -T 10 postgres >>"$TPL/pgbench.log" 2>&1
    done
    PSQL -c 'SELECT pg_switch_wal()' >/dev/null
    ctl "$TPL/data" stop
    local f
    for f in "$TPL/data/pg_wal/archive_status/"*.ready; do
        f=${f##*/}
        f=${f%.ready}
        if [[ $f =~ ^[0-9A-F]{24}$ ]]; then echo "$f"; fi
    done | sort >"$TPL/segments"
    [[ -s $TPL/segments ]] || die "the burst left no .ready file"
    {
        echo "burst_mb=$BURST_MB"
        echo "generated=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "pgbench_scale=$scale"
        echo "seconds=$((($(now_us) - t0) / 1000000))"
    } >"$TPL/STAMP"
}

if tpl_ok; then log "using the cached $BURST_MB MiB burst in $TPL"; else make_burst; fi
mapfile -t BURST < <(cat "$TPL/segments")
NSEG=${#BURST[@]}
FIRST=${BURST[0]} LAST=${BURST[-1]}
BURST_BYTES=$(for s in "${BURST[@]}"; do stat -c %s "$TPL/data/pg_wal/$s"; done | awk '{t+=$1} END {print t}')
SCALE=$(sed -n 's/^pgbench_scale=//p' "$TPL/STAMP")
log "burst: $NSEG segments ($FIRST..$LAST), $((BURST_BYTES / 1048576)) MiB"

# --- per-run set-up: binary, TLS, S3 server, prefetch support ------------------------------

for d in data replay; do stop_if_running "$RUN/$d"; done
rm -rf "$RUN"
mkdir_pg "$RUN" "$SOCK"
cp "$WALSHIP_BIN" "$RUN/walship" # the tree's binary may be rebuilt while this runs
chmod 755 "$RUN/walship"
WALSHIP=$RUN/walship
"$WALSHIP" --version >/dev/null || die "$WALSHIP_BIN --version failed"

TLS=$RUN/tls
mkdir -p "$TLS"
(
    cd "$TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=walship-bench-ca -keyout ca.key -out ca.crt
    openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout srv.key -out srv.csr
    # pgbackrest matches the host against DNS names only, libcurl an IP against IP names
    echo 'subjectAltName = IP:127.0.0.1, DNS:127.0.0.1, DNS:localhost' >san.ext
    openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out srv.crt
) >"$RUN/openssl.log" 2>&1 || die "openssl failed: $(cat "$RUN/openssl.log")"
chmod 755 "$TLS" && chmod 644 "$TLS/ca.crt"

S3_STORE=$RUN/s3
mkdir -p "$S3_STORE"
NODE_OPTIONS=--openssl-legacy-provider node "$ROOT_DIR/tests/s3/s3rver.js" --dir "$S3_STORE" --port 0 \
    --bucket bench --key "$TLS/srv.key" --cert "$TLS/srv.crt" --allow-mismatched-signatures 1 >"$RUN/s3rver.log" 2>&1 &
S3_PID=$!
S3_PORT=
for _ in $(seq 100); do
    S3_PORT=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$RUN/s3rver.log")
    [[ -z $S3_PORT ]] || break
    kill -0 "$S3_PID" 2>/dev/null || die "s3rver exited: $(cat "$RUN/s3rver.log")"
    sleep 0.1
done
[[ -n $S3_PORT ]] || die "s3rver did not start (see $RUN/s3rver.log)"
log "s3rver (TLS) on 127.0.0.1:$S3_PORT"

# A prefetching walship (fetch-prefetch) gets extra rows; its plain rows then say
# fetch-prefetch = 0 when that value is accepted (exit 2 is a configuration error).
PREFETCH=0 PF_OFF=''
help_text=$("$WALSHIP" --help 2>&1 || true) # not piped into grep -q: SIGPIPE under pipefail
if [[ $help_text == *--fetch-prefetch* ]]; then
    PREFETCH=1
    rc=0
    "$WALSHIP" --repo "$RUN/probe-repo" --fetch-timeout 1 --fetch-prefetch 0 fetch 00000001.history "$RUN/probe.out" >/dev/null 2>&1 || rc=$?
    if ((rc != 2)); then PF_OFF='fetch-prefetch = 0'; fi
    rm -rf "$RUN/probe-repo" "$RUN/probe.out"
fi

# --- configurations ----------------------------------------------------------------------

# walship_conf FILE REPO(posix|s3) PATH [key = value]... — a 0600 configuration owned by postgres
walship_conf() {
    local f=$1 kind=$2 path=$3
    shift 3
    {
        if [[ $kind == s3 ]]; then
            echo "repo = s3://bench/$path"
            echo "s3-endpoint = https://127.0.0.1:$S3_PORT"
            echo "s3-uri-style = path"
            echo "s3-region = us-east-1"
            echo "s3-key = S3RVER"
            echo "s3-key-secret = S3RVER"
            echo "s3-ca-file = $TLS/ca.crt"
        else
            echo "repo = $RUN/$path"
        fi
        echo "log-level = warn"
        printf '%s\n' "$@"
    } >"$f"
    chown postgres: "$f" && chmod 600 "$f"
}

# pgbr_conf FILE REPO(posix|s3) PATH PGDATA [key=value]...
pgbr_conf() {
    local f=$1 kind=$2 path=$3 pgdata=$4
    shift 4
    {
        echo "[global]"
        echo "compress-type=lz4"
        echo "compress-level=1"
        echo "log-level-console=warn"
        echo "log-level-stderr=warn"
        echo "log-level-file=off"
        echo "lock-path=$RUN/pgbr-lock"
        echo "spool-path=$RUN/pgbr-spool"
        echo "log-path=$RUN/pgbr-log"
        if [[ $kind == s3 ]]; then
            echo "repo1-type=s3"
            echo "repo1-path=/$path"
            echo "repo1-s3-bucket=bench"
            echo "repo1-s3-endpoint=127.0.0.1"
            echo "repo1-storage-port=$S3_PORT"
            echo "repo1-s3-region=us-east-1"
            echo "repo1-s3-key=S3RVER"
            echo "repo1-s3-key-secret=S3RVER"
            echo "repo1-s3-uri-style=path"
            echo "repo1-storage-ca-file=$TLS/ca.crt"
        else
            echo "repo1-path=$RUN/$path"
        fi
        printf '%s\n' "$@"
        echo
        echo "[bench]"
        echo "pg1-path=$pgdata"
        echo "pg1-socket-path=$SOCK"
        echo "pg1-port=$PORT"
    } >"$f"
    chown postgres: "$f" && chmod 600 "$f"
}

# repo_path JOB REP — the repository of one drain run (a directory, or a prefix in the bucket)
repo_path() { echo "repo-$1-$2"; }

# drain_conf JOB REP — writes the job's configuration and prints its archive_command
drain_conf() {
    local job=$1 rep=$2 kind=${1##*-} conf=$RUN/$1.conf path
    path=$(repo_path "$job" "$rep")
    case $job in
    walship-async-*)
        walship_conf "$conf" "$kind" "$path" "async = on" "push-parallel = 4" \
            "agent-idle-timeout = 30s" "push-timeout = 300s"
        echo "$WALSHIP -c $conf push %p"
        ;;
    walship-sync-*)
        walship_conf "$conf" "$kind" "$path" "async = off"
        echo "$WALSHIP -c $conf push %p"
        ;;
    pgbackrest-async-*)
        pgbr_conf "$conf" "$kind" "$path" "$RUN/data" archive-async=y process-max=2
        echo "pgbackrest --config=$conf --stanza=bench archive-push %p"
        ;;
    pgbackrest-sync-*)
        pgbr_conf "$conf" "$kind" "$path" "$RUN/data" archive-async=n
        echo "pgbackrest --config=$conf --stanza=bench archive-push %p"
        ;;
    esac
}

# --- drain -------------------------------------------------------------------------------

DRAIN_JOBS=(walship-async-posix walship-sync-posix pgbackrest-async-posix pgbackrest-sync-posix
    walship-async-s3 walship-sync-s3 pgbackrest-async-s3 pgbackrest-sync-s3)
declare -A DRAIN=() HWM=() FAILED=()
if [[ -n ${BENCH_DRAIN_ONLY:-} ]]; then
    read -r -a DRAIN_JOBS <<<"$BENCH_DRAIN_ONLY"
    for j in "${DRAIN_JOBS[@]}"; do [[ $(drain_conf "$j" 0) == *" %p" ]] || die "unknown drain job $j"; done
fi

# drain JOB REP — sets DRAIN_S (seconds) and records failed_count and the agent's VmHWM;
# leaves the repository in place
drain() {
    local job=$1 rep=$2 cmd t0 t1 deadline state pid='' hwm=''
    stop_if_running "$RUN/data"
    rm -rf "$RUN/data" "$RUN/data.log" "$RUN/pgbr-spool"
    cp -a "$TPL/data" "$RUN/data"
    mkdir_pg "$RUN/pgbr-lock" "$RUN/pgbr-log" "$RUN/pgbr-spool"
    cmd=$(drain_conf "$job" "$rep")
    if [[ $job == pgbackrest-* ]]; then
        as_pg pgbackrest --config="$RUN/$job.conf" --stanza=bench --no-online stanza-create >"$RUN/$job.stanza.log" 2>&1 ||
            die "$job: pgbackrest stanza-create failed: $(cat "$RUN/$job.stanza.log")"
    fi
    echo "archive_command = ''" | as_pg tee "$RUN/data/bench_archive.conf" >/dev/null
    ctl "$RUN/data" start
    sync
    echo "archive_command = '$cmd'" | as_pg tee "$RUN/data/bench_archive.conf" >/dev/null
    t0=$(now_us)
    as_pg "$PG_BIN/pg_ctl" -D "$RUN/data" reload >/dev/null
    deadline=$((t0 + DRAIN_TIMEOUT * 1000000))
    state=$RUN/data/pg_wal/walship/agent.state
    while compgen -G "$RUN/data/pg_wal/archive_status/*.ready" >/dev/null; do
        if [[ -z $pid && -f $state ]]; then pid=$(sed -n 's/^pid = //p' "$state" 2>/dev/null || true); fi
        (($(now_us) < deadline)) || die "$job: still not drained after $DRAIN_TIMEOUT s (see $RUN/data.log)"
        sleep 0.02
    done
    t1=$(now_us)
    local row
    row=$(PSQL -F ' ' -c 'SELECT last_archived_wal, failed_count FROM pg_stat_archiver')
    [[ ${row% *} == "$LAST" ]] || die "$job: last_archived_wal is '${row% *}', not $LAST"
    FAILED[$job]+="${row#* } "
    # a failed archive_command is worth reading: the server's log is kept beside the template
    [[ ${row#* } == 0 ]] || { cp "$RUN/data.log" "$AS_DIR/failed-$job-$rep.log" && log "$job: failed_count ${row#* }, server log in $AS_DIR/failed-$job-$rep.log"; }
    if [[ -n $pid && -r /proc/$pid/status ]]; then
        hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
        HWM[$job]+="$hwm "
        kill -TERM "$pid" 2>/dev/null || true
    fi
    # immediate: a clean shutdown would switch to and archive one more segment (its checkpoint),
    # and the repositories must hold the burst alone for the replay (this copy is thrown away)
    as_pg "$PG_BIN/pg_ctl" -D "$RUN/data" -m immediate -w stop >/dev/null
    reap "$RUN/$job.conf"
    DRAIN_S=$(awk -v d=$((t1 - t0)) 'BEGIN {printf "%.2f", d / 1e6}')
}

# remove_repo JOB REP
remove_repo() {
    local path
    path=$(repo_path "$1" "$2")
    rm -rf "${RUN:?}/$path" "$S3_STORE/bench/$path"
}

LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
T_START=$(now_us)
n=${#DRAIN_JOBS[@]}
for rep in $(seq 1 "$BENCH_REPS"); do
    for i in $(seq 0 $((n - 1))); do
        job=${DRAIN_JOBS[$(((i + rep - 1) % n))]}
        drain "$job" "$rep"
        s=$DRAIN_S
        DRAIN[$job]+="$s "
        log "drain rep $rep/$BENCH_REPS $job: $s s ($(awk -v b="$BURST_BYTES" -v s="$s" 'BEGIN {printf "%.0f", b / 1048576 / s}') MiB/s)"
        # the last repetition's repositories serve the fetch and replay measurements
        ((rep == BENCH_REPS)) || remove_repo "$job" "$rep"
    done
done
rm -rf "$RUN/data" "$RUN/data.log"
[[ -z ${BENCH_DRAIN_ONLY:-} || -n ${BENCH_REPLAY_ONLY:-} ]] || exit 0

# --- fetch latency -----------------------------------------------------------------------
# Serially, as recovery asks: one process per segment, as postgres, into pg_wal/RECOVERYXLOG of
# a directory laid out as a pg_wal (archive_status/ beside it: a prefetching walship prefetches
# only there). At most 16 segments from the middle of the burst.

FETCH_WAL=$RUN/fetch/pg_wal
mkdir_pg "$RUN/fetch" "$FETCH_WAL" "$FETCH_WAL/archive_status"
FETCH_SEGS=("${BURST[@]:$((NSEG / 2 - (NSEG >= 32 ? 8 : NSEG / 2))):16}")
declare -A FETCH=()

# time_each PAUSE CMD_WITH_SEG_AND_DEST SEG... — runs the command for each segment as postgres,
# PAUSE seconds apart (untimed); prints milliseconds per fetch. SEG and DEST in the command are
# replaced (fixed strings in paths we made ourselves).
time_each() {
    as_pg bash -c '
        set -e
        pause=$1 tmpl=$2; shift 2
        dest='"$FETCH_WAL"'/RECOVERYXLOG
        for s in "$@"; do
            rm -f "$dest"
            sleep "$pause"
            c=${tmpl//SEG/$s}; c=${c//DEST/$dest}
            t0=${EPOCHREALTIME/./}
            eval "$c" >/dev/null 2>>'"$RUN"'/fetch/errors.log || { echo "fetch of $s failed: $c" >&2; exit 1; }
            t1=${EPOCHREALTIME/./}
            [[ $(stat -c %s "$dest") -eq 16777216 ]] || { echo "fetch of $s: wrong size" >&2; exit 1; }
            echo $(( (10#$t1 - 10#$t0) ))
        done
        rm -f "$dest"' _ "$@" | awk '{printf "%.2f\n", $1 / 1000}'
}

for kind in posix s3; do
    [[ -z ${BENCH_REPLAY_ONLY:-} ]] || break
    rep=$BENCH_REPS
    walship_conf "$RUN/fetch-walship-$kind.conf" "$kind" "$(repo_path "walship-async-$kind" "$rep")"
    [[ -z $PF_OFF ]] || echo "$PF_OFF" >>"$RUN/fetch-walship-$kind.conf"
    FETCH[walship-$kind]=$(time_each 0 "$WALSHIP -c $RUN/fetch-walship-$kind.conf fetch SEG DEST" "${FETCH_SEGS[@]}" | tr '\n' ' ') ||
        die "walship fetch failed (see $RUN/fetch/errors.log)"
    reap "$RUN/fetch-walship-$kind.conf"
    pgbr_conf "$RUN/fetch-pgbackrest-$kind.conf" "$kind" "$(repo_path "pgbackrest-async-$kind" "$rep")" "$TPL/base" archive-async=n
    FETCH[pgbackrest-$kind]=$(time_each 0 "pgbackrest --config=$RUN/fetch-pgbackrest-$kind.conf --stanza=bench archive-get SEG DEST" "${FETCH_SEGS[@]}" | tr '\n' ' ') ||
        die "pgbackrest archive-get failed (see $RUN/fetch/errors.log)"
    if ((PREFETCH)); then
        # prefetch hits: one untimed fetch (it starts the agent, which downloads the next 8),
        # 2 s for the agent, then the following segments 0.5 s apart, each timed: the agent
        # has them ready (a rename), as when replay is slower than the download
        conf=$RUN/fetch-prefetch-$kind.conf
        walship_conf "$conf" "$kind" "$(repo_path "walship-async-$kind" "$rep")" "fetch-prefetch = 8" "agent-idle-timeout = 30s"
        time_each 0 "$WALSHIP -c $conf fetch SEG DEST" "${FETCH_SEGS[0]}" >/dev/null ||
            die "walship fetch (prefetch) of ${FETCH_SEGS[0]} failed (see $RUN/fetch/errors.log)"
        sleep 2
        FETCH[prefetch-$kind]=$(time_each 0.5 "$WALSHIP -c $conf fetch SEG DEST" "${FETCH_SEGS[@]:1}" | tr '\n' ' ') ||
            die "walship fetch (prefetch) failed (see $RUN/fetch/errors.log)"
        reap "$conf"
        rm -rf "$FETCH_WAL/walship-prefetch"
    fi
done

# --- replay ------------------------------------------------------------------------------

REPLAY_JOBS=(floor walship-posix walship-s3 pgbackrest-posix pgbackrest-s3 pgbrasync-s3)
((PREFETCH == 0)) || REPLAY_JOBS+=(prefetch-posix prefetch-s3)
[[ -z ${BENCH_REPLAY_ONLY:-} ]] || read -r -a REPLAY_JOBS <<<"$BENCH_REPLAY_ONLY"
declare -A REPLAY=() REPLAY_WALL=() REPLAY_END=()

# replay JOB — sets R_REDO, R_WALL (seconds) and R_LSN (where redo ended)
replay() {
    local job=$1 kind=${1##*-} conf=$RUN/replay-$1.conf cmd='' t0 t1 s e
    local path
    stop_if_running "$RUN/replay"
    rm -rf "$RUN/replay" "$RUN/replay.log" "$RUN/pgbr-spool"
    mkdir_pg "$RUN/pgbr-spool" "$RUN/pgbr-lock" "$RUN/pgbr-log"
    cp -a "$TPL/base" "$RUN/replay"
    case $job in
    floor)
        for s in "${BURST[@]}"; do cp "$TPL/data/pg_wal/$s" "$RUN/replay/pg_wal/$s"; done
        chown postgres: "$RUN/replay/pg_wal/"*
        ;;
    walship-* | prefetch-*)
        path=$(repo_path "walship-async-$kind" "$BENCH_REPS")
        if [[ $job == prefetch-* ]]; then
            walship_conf "$conf" "$kind" "$path" "fetch-prefetch = 8" ${BENCH_PREFETCH_EXTRA:+"$BENCH_PREFETCH_EXTRA"}
        elif [[ -n $PF_OFF ]]; then
            walship_conf "$conf" "$kind" "$path" "$PF_OFF"
        else
            walship_conf "$conf" "$kind" "$path"
        fi
        cmd="$WALSHIP -c $conf fetch %f %p"
        ;;
    pgbackrest-* | pgbrasync-*)
        # pgbrasync: archive-get prefetches into the spool (archive-get-queue-max, 128 MiB)
        pgbr_conf "$conf" "$kind" "$(repo_path "pgbackrest-async-$kind" "$BENCH_REPS")" "$RUN/replay" \
            "archive-async=$([[ $job == pgbrasync-* ]] && echo y || echo n)" process-max=2
        cmd="pgbackrest --config=$conf --stanza=bench archive-get %f \"%p\""
        ;;
    esac
    {
        echo "archive_command = ''"
        [[ -z $cmd ]] || echo "restore_command = '$cmd'"
    } | as_pg tee "$RUN/replay/bench_archive.conf" >/dev/null
    [[ -z $cmd ]] || as_pg touch "$RUN/replay/recovery.signal"
    sync
    # pg_ctl -w returns once recovery starts when hot_standby is off, so the end is read from
    # the log: "database system is ready to accept connections"
    t0=$(now_us)
    as_pg "$PG_BIN/pg_ctl" -D "$RUN/replay" -l "$RUN/replay.log" -W start >/dev/null ||
        die "replay $job: pg_ctl start failed (see $RUN/replay.log)"
    local deadline=$((t0 + DRAIN_TIMEOUT * 1000000))
    until grep -q 'database system is ready to accept connections' "$RUN/replay.log" 2>/dev/null; do
        (($(now_us) < deadline)) || die "replay $job: not done after $DRAIN_TIMEOUT s (see $RUN/replay.log)"
        grep -q 'FATAL\|PANIC' "$RUN/replay.log" 2>/dev/null && die "replay $job failed: $(grep 'FATAL\|PANIC' "$RUN/replay.log" | head -3)"
        sleep 0.02
    done
    t1=$(now_us)
    # "2026-11-29 12:00:00.123 UTC [pid] LOG:  redo starts at 0/2000028"
    s=$(grep -m1 'redo starts at' "$RUN/replay.log" | awk '{print $2}' || true)
    e=$(grep -m1 'redo done at' "$RUN/replay.log" || true)
    [[ -n $s && -n $e ]] || die "replay $job: no redo start/done in the log (see $RUN/replay.log)"
    R_LSN=$(sed 's/.*redo done at \([0-9A-F/]*\).*/\1/' <<<"$e")
    R_WALL=$(awk -v w=$((t1 - t0)) 'BEGIN {printf "%.2f", w / 1e6}')
    R_REDO=$(awk -v s="$s" -v e="$(awk '{print $2}' <<<"$e")" '
        function sec(t,  a) { split(t, a, ":"); return a[1] * 3600 + a[2] * 60 + a[3] }
        BEGIN { d = sec(e) - sec(s); if (d < 0) d += 86400; printf "%.2f", d }')
    ctl "$RUN/replay" stop
    reap "$conf"
}

for rep in $(seq 1 "$BENCH_REPS"); do
    n=${#REPLAY_JOBS[@]}
    for i in $(seq 0 $((n - 1))); do
        job=${REPLAY_JOBS[$(((i + rep - 1) % n))]}
        replay "$job"
        redo=$R_REDO wall=$R_WALL lsn=$R_LSN
        REPLAY[$job]+="$redo " REPLAY_WALL[$job]+="$wall " REPLAY_END[$job]=$lsn
        log "replay rep $rep/$BENCH_REPS $job: redo $redo s (server start to ready $wall s), redo done at $lsn"
    done
done
rm -rf "$RUN/replay" "$RUN/replay.log"
[[ -z ${BENCH_REPLAY_ONLY:-} ]] || exit 0
LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
T_TOTAL=$((($(now_us) - T_START) / 1000000))

# --- report ------------------------------------------------------------------------------

mib() { awk -v k="$1" 'BEGIN {if (k ~ /^[0-9]+$/) printf "%.1f MiB", k / 1024; else print "–"}'; }
at_least() { awk -v r="$1" -v g="$2" 'BEGIN {print (r != "nan" && r + 0 >= g + 0) ? "met" : "**not met**"}'; }

drain_label() {
    case $1 in
    walship-async-*) echo 'walship, async = on, push-parallel 4' ;;
    walship-sync-*) echo 'walship, async = off' ;;
    pgbackrest-async-*) echo 'pgbackrest, archive-async=y, process-max=2' ;;
    pgbackrest-sync-*) echo 'pgbackrest, archive-async=n' ;;
    esac
}
pf_off() { if [[ -n $PF_OFF ]]; then echo ", $PF_OFF"; fi; }
repo_label() { if [[ $1 == *s3 ]]; then echo 'S3 (s3rver, TLS, loopback)'; else echo 'posix'; fi; }

walship_version=$("$WALSHIP" --version 2>/dev/null | head -1 || true)
walship_commit=$(git -C "$ROOT_DIR" describe --always --dirty 2>/dev/null || true)
pgbr_version=$(pgbackrest version 2>/dev/null | head -1)
pg_version=$("$PG_BIN/postgres" --version)
s3rver_version=$(node -p "require('$ROOT_DIR/tests/s3/node_modules/@20minutes/s3rver/package.json').version" 2>/dev/null || echo '?')
burst_mib=$(awk -v b="$BURST_BYTES" 'BEGIN {printf "%.0f", b / 1048576}')

BODY=$RUN/async.md
{
    echo "## async push: drain of a WAL burst; fetch and replay"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC') · $(machine_line) · load average $LOAD_START before, $LOAD_END after ($T_TOTAL s)"
    echo "(the machine is shared with other work: spread shows in the min–max columns)"
    echo
    echo "Versions: ${walship_version:-walship ?}${walship_commit:+ (tree $walship_commit)} · ${pgbr_version:-pgbackrest ?} · ${pg_version} · s3rver $s3rver_version (node $(node --version))."
    echo
    echo "**The burst**: $NSEG segments of 16 MiB ($burst_mib MiB; BENCH_BURST_MB=$BURST_MB), real WAL written by"
    echo "rounds of \`pgbench -i -s $SCALE\` (COPY, index builds, vacuum), each followed by 10 s of TPC-B load"
    echo "(\`pgbench -c 4 -j 2\`; checkpoint_timeout = 30s, so update records and full-page images), on a"
    echo "PostgreSQL 15 cluster with archive_mode = on and an empty"
    echo "archive_command, so that PostgreSQL keeps every segment as \`.ready\` and archives nothing; it"
    echo "ends with \`pg_switch_wal()\` and a clean shutdown. Each run starts a copy of that cluster."
    echo
    echo "**Drain time**: from setting archive_command (\`pg_ctl reload\`) with the whole burst waiting,"
    echo "to no \`.ready\` file left in pg_wal/archive_status (polled every 20 ms); then"
    echo "pg_stat_archiver.last_archived_wal is checked to be the burst's last segment ($LAST)."
    echo "That is the archiver's lag from the end of a burst written faster than any archiver (or of an"
    echo "outage) back to zero. Medians of $BENCH_REPS repetitions (min–max), jobs interleaved, each into a"
    echo "fresh repository; \"× walship async\" is the median over repetitions of the ratio within each."
    echo "Both tools compress with lz4 level 1 and fsync/commit each object before acknowledging it."
    echo "S3 is one s3rver (tests/s3/s3rver.js, node) over TLS with a throwaway CA, given to walship as"
    echo "s3-ca-file and to pgbackrest as repo1-storage-ca-file; it runs with"
    echo "\`--allow-mismatched-signatures 1\` because it canonicalizes pgbackrest's signed listing queries"
    echo "differently (403), so both tools sign every request but the server does not check signatures."
    echo "s3rver shares the 2 cores with the archivers: its CPU is part of every S3 figure."
    echo
    echo "| repository | job | drain s | min–max | MiB/s | × walship async | failed_count | agent peak RSS |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    for job in "${DRAIN_JOBS[@]}"; do
        kind=${job##*-}
        med=$(stat_values "${DRAIN[$job]}" median)
        printf '| %s | %s | %.1f | %.1f–%.1f | %.0f | %s | %s | %s |\n' "$(repo_label "$job")" "$(drain_label "$job")" \
            "$med" "$(stat_values "${DRAIN[$job]}" minimum)" "$(stat_values "${DRAIN[$job]}" maximum)" \
            "$(awk -v b="$BURST_BYTES" -v s="$med" 'BEGIN {print b / 1048576 / s}')" \
            "$(ratio_values "${DRAIN[$job]}" "${DRAIN[walship-async-$kind]}")" \
            "$(stat_values "${FAILED[$job]}" maximum)" \
            "$(if [[ -n ${HWM[$job]:-} ]]; then mib "$(stat_values "${HWM[$job]}" maximum)"; else echo '–'; fi)"
    done
    echo
    for kind in posix s3; do
        r=$(ratio_values "${DRAIN[pgbackrest-async-$kind]}" "${DRAIN[walship-async-$kind]}")
        echo "- $(repo_label "$kind"): pgbackrest async / walship async = **${r}×** (goal ≥ 1.8×: $(at_least "$r" 1.8))"
    done
    echo
    echo "Agent peak RSS: VmHWM of the walship agent read after the drain (largest over the repetitions)."
    echo
    echo "**Fetch latency**: one process per segment, serially, as recovery calls restore_command; ${#FETCH_SEGS[@]}"
    echo "segments from the middle of the burst, out of the repositories the last drain left, each into"
    echo "pg_wal/RECOVERYXLOG of a directory laid out as a pg_wal; milliseconds per segment, median (min–max)."
    echo
    echo "| repository | job | ms / segment | min–max |"
    echo "|---|---|---:|---:|"
    for kind in posix s3; do
        for j in walship pgbackrest prefetch; do
            [[ -n ${FETCH[$j-$kind]:-} ]] || continue
            case $j in
            walship) l="\`walship fetch\`$(pf_off)" ;;
            pgbackrest) l='`pgbackrest archive-get`' ;;
            prefetch) l='`walship fetch`, prefetch hit (fetch-prefetch = 8; 0.5 s apart, after a warm-up fetch and 2 s)' ;;
            esac
            printf '| %s | %s | %.1f | %.1f–%.1f |\n' "$(repo_label "$kind")" "$l" "$(stat_values "${FETCH[$j-$kind]}" median)" \
                "$(stat_values "${FETCH[$j-$kind]}" minimum)" "$(stat_values "${FETCH[$j-$kind]}" maximum)"
        done
    done
    ((PREFETCH)) || echo "
This walship has no \`fetch-prefetch\` option: no prefetch-hit row (the script adds one when it has)."
    echo
    echo "**Replay**: a base backup taken before the burst (\`pg_basebackup -X stream\`), started with"
    echo "recovery.signal and restore_command, hot_standby = off, fsync = off, replays the whole burst until"
    echo "the repository answers \"absent\"; the floor is the same backup with the burst's segments already in"
    echo "its pg_wal and no restore_command. Seconds from \"redo starts\" to \"redo done\" in the server log"
    echo "(median, min–max), and from \`pg_ctl start\` to the server accepting connections."
    echo
    echo "| job | redo s | min–max | × floor | start to ready s | redo done at |"
    echo "|---|---:|---:|---:|---:|---|"
    for job in "${REPLAY_JOBS[@]}"; do
        case $job in
        floor) l='**floor**: segments in the local pg_wal' ;;
        walship-*) l="restore_command = \`walship fetch\`$(pf_off), $(repo_label "$job")" ;;
        prefetch-*) l="restore_command = \`walship fetch\`, fetch-prefetch = 8, $(repo_label "$job")" ;;
        pgbackrest-*) l="restore_command = \`pgbackrest archive-get\`, $(repo_label "$job")" ;;
        pgbrasync-*) l="restore_command = \`pgbackrest archive-get\`, archive-async=y process-max=2, $(repo_label "$job")" ;;
        esac
        end=${REPLAY_END[$job]}
        [[ $end == "${REPLAY_END[floor]}" ]] || end="$end (**≠ floor**)"
        printf '| %s | %.1f | %.1f–%.1f | %s | %.1f | %s |\n' "$l" "$(stat_values "${REPLAY[$job]}" median)" \
            "$(stat_values "${REPLAY[$job]}" minimum)" "$(stat_values "${REPLAY[$job]}" maximum)" \
            "$(ratio_values "${REPLAY[$job]}" "${REPLAY[floor]}")" "$(stat_values "${REPLAY_WALL[$job]}" median)" "$end"
    done
    echo
    for job in walship-posix walship-s3 prefetch-posix prefetch-s3; do
        [[ -n ${REPLAY[$job]:-} ]] || continue
        r=$(ratio_values "${REPLAY[$job]}" "${REPLAY[floor]}")
        echo "- replay through walship fetch$(if [[ $job == prefetch-* ]]; then echo ' (fetch-prefetch = 8)'; fi), $(repo_label "$job") / floor = **${r}×** (goal ≤ 1.3×: $(verdict "$r" 1.3))"
    done
    echo
    echo "Commands (archive_command / restore_command; CONF holds the repository and, for S3, the"
    echo "endpoint https://127.0.0.1:PORT, path style, the keys and the CA file):"
    echo
    echo '```'
    echo 'walship -c CONF push %p                 # async = on, push-parallel = 4  |  async = off'
    echo 'pgbackrest --config=CONF --stanza=bench archive-push %p'
    echo '    # compress-type=lz4 compress-level=1; archive-async=y process-max=2 spool-path=DIR | archive-async=n'
    echo '    # S3: repo1-type=s3 repo1-s3-uri-style=path repo1-storage-port=PORT repo1-storage-ca-file=CA'
    echo 'walship -c CONF fetch %f %p'
    echo 'pgbackrest --config=CONF --stanza=bench archive-get %f "%p"'
    echo '```'
    echo
    echo "Reproduce: \`BENCH_BURST_MB=$BURST_MB BENCH_REPS=$BENCH_REPS WALSHIP_BIN=\$PWD/build/walship bench/run.sh async\`."
    echo
} >"$BODY"

echo
cat "$BODY"
doc_section async "$BODY"
cp "$BODY" "$AS_DIR/last.md"
kill "$S3_PID" 2>/dev/null || true
S3_PID=
rm -rf "$RUN"
log "wrote the async section of ${DOC#"$ROOT_DIR"/}"
