#!/usr/bin/env bash
# shellcheck disable=SC2016 # backquotes in single quotes are Markdown, not expansions
# bench/module.sh — the per-file cost of PostgreSQL's archiver: archive_command (walship push,
# async = on, the default), archive_library = 'walship' (the archive module, module/), and
# pgbackrest async (archive-async=y, process-max=2), at 1 MiB and 16 MiB segments, into a posix
# repository, on a live PostgreSQL 15 cluster.
#
#   drain    a burst of BENCH_MODULE_MB MiB of real pgbench WAL waits as .ready files (written
#            with archive_command = ''); the clock starts at the pg_ctl start of a copy of that
#            cluster configured for the job and stops when no .ready is left (then
#            pg_stat_archiver is checked: last_archived_wal = the burst's last, failed_count 0).
#            Figure: segments/s (and MiB/s).
#   lag      pgbench -c 2 for BENCH_MODULE_LOAD_S seconds with the job archiving live; every
#            0.25 s the number of .ready files (segments completed, not yet archived) is
#            sampled. Figures: the mean and the maximum of that backlog, in segments and MiB,
#            and the catch-up: from the end of the load (pg_switch_wal) to the last .done.
#
#   BENCH_MODULE_MB      burst size in MiB (default 2048: the issue's 2 GiB)
#   BENCH_MODULE_LOAD_S  seconds of pgbench for the lag (default 20)
#   BENCH_REPS           repetitions of each drain (default 3); medians
#   BENCH_SEGS           segment sizes in MiB (default "1 16")
#   WALSHIP_BIN          the walship binary (default build/walship); the module is
#                        build/module/walship.so (`make module`)
# Run through bench/run.sh (`bench/run.sh module`); writes the module section of
# docs/benchmarks.md. Benchmarks are not tests: nothing here asserts on timings.
set -euo pipefail
_reps=${BENCH_REPS:-3}
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BENCH_REPS=$_reps
BURST_MB=${BENCH_MODULE_MB:-2048}
LOAD_S=${BENCH_MODULE_LOAD_S:-20}
SEGS=${BENCH_SEGS:-"1 16"}
[[ $BURST_MB =~ ^[0-9]+$ && $BURST_MB -ge 32 ]] || die "BENCH_MODULE_MB must be a number of MiB >= 32"

WALSHIP_BIN=${WALSHIP_BIN:-$ROOT_DIR/build/walship}
[[ $WALSHIP_BIN == /* ]] || WALSHIP_BIN=$PWD/$WALSHIP_BIN
[[ -x $WALSHIP_BIN ]] || die "no walship binary at $WALSHIP_BIN (make first)"
MODULE_SO=${WALSHIP_MODULE:-$ROOT_DIR/build/module/walship.so}
if [[ ! -f $MODULE_SO ]]; then
    make -C "$ROOT_DIR" --no-print-directory module >&2 || die "make module failed"
fi
ensure_pkgs pgbackrest:pgbackrest
[[ -x $PG_BIN/initdb ]] || die "PostgreSQL 15 binaries not found in $PG_BIN"

MD_DIR=$CACHE_DIR/module
RUN=$MD_DIR/run
SOCK=$MD_DIR/sock
PORT=${BENCH_MODULE_PG_PORT:-54332}

PSQL() { as_pg "$PG_BIN/psql" -X -q -A -t -h "$SOCK" -p "$PORT" -U postgres -d postgres "$@"; }
ctl() { as_pg "$PG_BIN/pg_ctl" -D "$1" -l "$1.log" -w -t "${3:-120}" "$2" >/dev/null; }
stop_if_running() { [[ ! -f $1/postmaster.pid ]] || as_pg "$PG_BIN/pg_ctl" -D "$1" -m immediate -w -t 120 stop >/dev/null || true; }
mkdir_pg() { mkdir -p "$@" && chown postgres: "$@" && chmod 700 "$@"; }
nready() { find "$1/pg_wal/archive_status" -name '*.ready' 2>/dev/null | wc -l; }

# the agents of a run: processes whose command line names this run's directory
pids_with_arg() {
    local p
    for p in /proc/[0-9]*; do
        [[ $p != "/proc/$$" ]] || continue
        { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$1" && echo "${p#/proc/}"
    done
    return 0
}
cleanup() {
    stop_if_running "$RUN/data"
    [[ ! -d $RUN ]] || for p in $(pids_with_arg "$RUN/"); do kill -TERM "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# make_burst SEG_MB — $MD_DIR/tpl-SEG: a stopped cluster (--wal-segsize SEG) whose burst of
# BURST_MB waits as .ready files
make_burst() {
    local seg=$1 tpl=$MD_DIR/tpl-$1 lsn0 bytes want
    if [[ -f $tpl/STAMP ]] && grep -qx "burst_mb=$BURST_MB" "$tpl/STAMP"; then
        log "using the cached $BURST_MB MiB burst of $seg MiB segments in $tpl"
        return
    fi
    log "writing a $BURST_MB MiB burst of $seg MiB segments with pgbench (archiving held)"
    stop_if_running "$tpl/data"
    rm -rf "$tpl"
    mkdir_pg "$MD_DIR" "$tpl" "$SOCK"
    as_pg "$PG_BIN/initdb" -D "$tpl/data" -U postgres --auth=trust --no-sync --wal-segsize="$seg" >"$tpl/initdb.log"
    cat >>"$tpl/data/postgresql.conf" <<EOF
# bench/module.sh
listen_addresses = ''
port = $PORT
unix_socket_directories = '$SOCK'
wal_level = replica
archive_mode = on
fsync = off
synchronous_commit = off
checkpoint_timeout = 30s
max_wal_size = 4GB
min_wal_size = 64MB
wal_keep_size = 8GB
shared_buffers = 128MB
autovacuum = off
log_line_prefix = '%m [%p] '
include_if_exists = 'bench_archive.conf'
EOF
    echo "archive_command = ''" | as_pg tee "$tpl/data/bench_archive.conf" >/dev/null
    ctl "$tpl/data" start
    lsn0=$(PSQL -c 'SELECT pg_current_wal_lsn()')
    want=$((BURST_MB * 1024 * 1024))
    while :; do
        bytes=$(PSQL -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0')::bigint")
        log "burst: $((bytes / 1048576)) / $BURST_MB MiB"
        ((bytes < want)) || break
        as_pg "$PG_BIN/pgbench" -h "$SOCK" -p "$PORT" -U postgres -i -s 20 -q postgres >>"$tpl/pgbench.log" 2>&1
    done
    PSQL -c 'SELECT pg_switch_wal()' >/dev/null
    ctl "$tpl/data" stop
    find "$tpl/data/pg_wal/archive_status" -name '*.ready' -printf '%f\n' | sed 's/\.ready$//' |
        grep -E '^[0-9A-F]{24}$' | sort >"$tpl/segments"
    echo "burst_mb=$BURST_MB" >"$tpl/STAMP"
}

# job_conf JOB — the job's configuration files; prints the archiver settings to set
job_conf() {
    local job=$1
    case $job in
    command | library)
        {
            echo "repo = $RUN/repo-$job"
            echo "async = on"
            echo "push-parallel = 4"
            echo "agent-idle-timeout = 30s"
            echo "push-timeout = 300s"
        } >"$RUN/$job.conf"
        chown postgres: "$RUN/$job.conf" && chmod 600 "$RUN/$job.conf"
        mkdir_pg "$RUN/repo-$job"
        if [[ $job == command ]]; then
            echo "archive_command = '$WALSHIP_BIN -c $RUN/$job.conf push %p'"
        else
            echo "archive_library = '$RUN/walship.so'"
            echo "walship.config = '$RUN/$job.conf'"
            echo "walship.bin = '$WALSHIP_BIN'"
        fi
        ;;
    pgbackrest)
        cat >"$RUN/$job.conf" <<EOF
[global]
compress-type=lz4
compress-level=1
log-level-console=warn
log-level-stderr=warn
log-level-file=off
lock-path=$RUN/pgbr-lock
spool-path=$RUN/pgbr-spool
log-path=$RUN/pgbr-log
repo1-path=$RUN/repo-$job
archive-async=y
process-max=2

[bench]
pg1-path=$RUN/data
pg1-socket-path=$SOCK
pg1-port=$PORT
EOF
        chown postgres: "$RUN/$job.conf" && chmod 600 "$RUN/$job.conf"
        mkdir_pg "$RUN/repo-$job" "$RUN/pgbr-lock" "$RUN/pgbr-log" "$RUN/pgbr-spool"
        as_pg pgbackrest --config="$RUN/$job.conf" --stanza=bench --no-online stanza-create >"$RUN/$job.stanza.log" 2>&1 ||
            die "pgbackrest stanza-create failed: $(cat "$RUN/$job.stanza.log")"
        echo "archive_command = 'pgbackrest --config=$RUN/$job.conf --stanza=bench archive-push %p'"
        ;;
    esac
}

fresh_data() {
    stop_if_running "$RUN/data"
    for p in $(pids_with_arg "$RUN/"); do kill -TERM "$p" 2>/dev/null || true; done
    rm -rf "$RUN/data" "$RUN/data.log" "$RUN"/repo-* "$RUN/pgbr-spool"
    cp -a "$1/data" "$RUN/data"
}

# drain SEG JOB — prints seconds
drain() {
    local seg=$1 job=$2 tpl=$MD_DIR/tpl-$1 t0 t1 row last
    fresh_data "$tpl"
    job_conf "$job" | as_pg tee "$RUN/data/bench_archive.conf" >/dev/null
    sync
    # the clock includes the server's start (~0.3 s, the same for every job): PostgreSQL 15
    # restarts an archiver whose archive_library changed at a reload only at the postmaster's
    # next wake-up, up to 60 s later, so archiving cannot start with a reload here
    t0=$(now_us)
    ctl "$RUN/data" start
    while (($(nready "$RUN/data") > 0)); do
        (($(now_us) - t0 < 3600000000)) || die "$job: not drained after an hour (see $RUN/data.log)"
        sleep 0.05
    done
    t1=$(now_us)
    last=$(tail -1 "$tpl/segments")
    row=$(PSQL -F ' ' -c 'SELECT last_archived_wal, failed_count FROM pg_stat_archiver')
    [[ ${row% *} == "$last" && ${row#* } == 0 ]] || die "$seg MiB $job: pg_stat_archiver says '$row', want '$last 0'"
    stop_if_running "$RUN/data"
    awk -v d=$((t1 - t0)) 'BEGIN {printf "%.2f", d / 1e6}'
}

# lag SEG JOB — prints "mean_backlog max_backlog catchup_s" (backlog in segments)
lag() {
    local seg=$1 job=$2 tpl=$MD_DIR/tpl-$1 pid sum=0 n=0 max=0 r t0 t1
    fresh_data "$tpl"
    # the burst is archived already as far as this run is concerned: only the load's WAL counts
    find "$RUN/data/pg_wal/archive_status" -name '*.ready' -exec sh -c 'for f; do mv "$f" "${f%.ready}.done"; done' _ {} +
    job_conf "$job" | as_pg tee "$RUN/data/bench_archive.conf" >/dev/null
    ctl "$RUN/data" start
    as_pg "$PG_BIN/pgbench" -h "$SOCK" -p "$PORT" -U postgres -n -c 2 -j 2 -T "$LOAD_S" postgres >"$RUN/pgbench.log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        r=$(nready "$RUN/data")
        sum=$((sum + r)) n=$((n + 1))
        ((r <= max)) || max=$r
        sleep 0.25
    done
    wait "$pid" || die "pgbench failed: $(tail -3 "$RUN/pgbench.log")"
    t0=$(now_us)
    PSQL -c 'SELECT pg_switch_wal()' >/dev/null
    sleep 0.05
    while (($(nready "$RUN/data") > 0)); do sleep 0.05; done
    t1=$(now_us)
    stop_if_running "$RUN/data"
    awk -v s="$sum" -v n="$n" -v m="$max" -v d=$((t1 - t0)) 'BEGIN {printf "%.1f %d %.2f", (n ? s / n : 0), m, d / 1e6}'
}

JOBS=(command library pgbackrest)
label() {
    case $1 in
    command) echo 'archive_command = `walship push %p` (async = on)' ;;
    library) echo "archive_library = 'walship' (async = on)" ;;
    pgbackrest) echo 'archive_command = `pgbackrest archive-push %p` (archive-async=y, process-max=2)' ;;
    esac
}

rm -rf "$RUN"
mkdir_pg "$MD_DIR" "$RUN" "$SOCK"
install -m 0755 "$MODULE_SO" "$RUN/walship.so"
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
declare -A DRAIN=() LAG=() NSEG=()
for seg in $SEGS; do
    make_burst "$seg"
    NSEG[$seg]=$(wc -l <"$MD_DIR/tpl-$seg/segments")
    for rep in $(seq 1 "$BENCH_REPS"); do
        for i in 0 1 2; do
            job=${JOBS[$(((i + rep - 1) % 3))]}
            s=$(drain "$seg" "$job")
            DRAIN[$seg-$job]+="$s "
            log "drain $seg MiB rep $rep/$BENCH_REPS $job: $s s, $(awk -v n="${NSEG[$seg]}" -v s="$s" 'BEGIN {printf "%.1f", n / s}') segments/s"
        done
    done
    for job in "${JOBS[@]}"; do
        LAG[$seg-$job]=$(lag "$seg" "$job")
        log "lag $seg MiB $job: mean/max backlog, catch-up: ${LAG[$seg-$job]}"
    done
done
LOAD_END=$(cut -d' ' -f1 /proc/loadavg)

OUT=$RUN/section.md
{
    echo "## The archiver's per-file cost: archive_command, archive_library = 'walship', pgbackrest async"
    echo
    echo "Measured $(date -u +%Y-%m-%d) on $(machine_line); load average $LOAD_START before, $LOAD_END after."
    echo "Versions: $("$WALSHIP_BIN" --version 2>/dev/null | head -1) · $(pgbackrest version 2>/dev/null | head -1) · $("$PG_BIN/postgres" --version)."
    echo
    echo "Drain: a burst of $BURST_MB MiB of pgbench WAL waiting as .ready files, archived into a posix"
    echo "repository from the server's start (pg_ctl start, ~0.3 s, included for every job) to the"
    echo "last .done (median of $BENCH_REPS; ratios: median of the paired ratios within a repetition)."
    echo "Lag: pgbench -c 2 for $LOAD_S s with archiving live; the backlog is the number of .ready files"
    echo "sampled every 0.25 s; catch-up is from the end of the load to the last .done."
    echo
    echo '| segment | archiver | drain segments/s | drain MiB/s | backlog mean / max (segments) | catch-up |'
    echo '|---:|---|---:|---:|---:|---:|'
    for seg in $SEGS; do
        for job in "${JOBS[@]}"; do
            d=$(stat_values "${DRAIN[$seg-$job]}" median)
            read -r lm lx lc <<<"${LAG[$seg-$job]}"
            printf '| %s MiB | %s | %s | %s | %s / %s | %s s |\n' "$seg" "$(label "$job")" \
                "$(awk -v n="${NSEG[$seg]}" -v s="$d" 'BEGIN {printf "%.1f", n / s}')" \
                "$(awk -v n="${NSEG[$seg]}" -v g="$seg" -v s="$d" 'BEGIN {printf "%.0f", n * g / s}')" \
                "$lm" "$lx" "$lc"
        done
    done
    echo
    for seg in $SEGS; do
        r=$(ratio_values "${DRAIN[$seg-command]}" "${DRAIN[$seg-library]}")
        p=$(ratio_values "${DRAIN[$seg-pgbackrest]}" "${DRAIN[$seg-library]}")
        echo "- $seg MiB segments: archive_command / archive_library drain time = **${r}×**; pgbackrest async / archive_library = **${p}×**."
    done
    echo
    echo 'Commands: `bench/run.sh module` (BENCH_MODULE_MB, BENCH_MODULE_LOAD_S, BENCH_REPS, BENCH_SEGS).'
    echo
} >"$OUT"
cat "$OUT"
doc_section module "$OUT"
