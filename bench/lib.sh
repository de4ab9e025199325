# shellcheck shell=bash disable=SC2034
# bench/lib.sh — helpers shared by the benchmarks (sourced, not run).
#
# Layout (all under bench/cache/, which is never committed):
#   pg/          the scratch PostgreSQL 15 cluster while it produces the WAL (removed afterwards)
#   wal/         the 20 segments the benchmarks push, the cluster's pg_control and PG_VERSION
#                (pgbackrest checks segments against them), and STAMP once complete
#   run/         per-run scratch space (repositories), wiped at the start of every run

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$BENCH_DIR/.." && pwd)
CACHE_DIR=${BENCH_CACHE_DIR:-$BENCH_DIR/cache}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DIR=$CACHE_DIR/pg
PG_DATA=$PG_DIR/data
PG_PORT=${BENCH_PG_PORT:-54329}
WAL_DIR=$CACHE_DIR/wal
RUN_DIR=$CACHE_DIR/run
SEG_COUNT=20
SEG_SIZE=$((16 * 1024 * 1024))
BENCH_REPS=${BENCH_REPS:-7}
DOC=$ROOT_DIR/docs/benchmarks.md

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# --- dependencies -----------------------------------------------------------------------------

_apt_updated=0

# ensure_pkgs "cmd:package" ... — apt-get install the packages whose command is missing.
# apt-get update runs at most once, and only when an install is needed and fails without it.
ensure_pkgs() {
    local missing=() spec cmd pkg
    for spec in "$@"; do
        cmd=${spec%%:*} pkg=${spec#*:}
        command -v "$cmd" >/dev/null 2>&1 || [[ -x $cmd ]] || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
        ((_apt_updated)) && die "apt-get install ${missing[*]} failed"
        "${sudo[@]}" apt-get update -q >/dev/null
        _apt_updated=1
        "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
            die "apt-get install ${missing[*]} failed"
    fi
}

# --- PostgreSQL as an unprivileged user ----------------------------------------------------

# as_pg CMD... — run CMD as the cluster owner (postgres when we are root, else ourselves).
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_start() { as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/server.log" -w -t 60 start >/dev/null; }
pg_stop() { as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null; }

# --- the 20 segments -----------------------------------------------------------------------

wal_cache_ok() {
    [[ -f $WAL_DIR/STAMP && -f $WAL_DIR/pg_control && -f $WAL_DIR/PG_VERSION ]] || return 1
    local n=0 f
    for f in "$WAL_DIR"/[0-9A-F]*; do
        [[ -f $f && $(stat -c %s "$f") -eq $SEG_SIZE ]] || return 1
        n=$((n + 1))
    done
    [[ $n -eq $SEG_COUNT ]]
}

# ensure_wal — leave $SEG_COUNT real 16 MiB pgbench segments in $WAL_DIR (cached across runs).
ensure_wal() {
    if wal_cache_ok; then
        log "using cached segments in $WAL_DIR"
        return 0
    fi
    log "generating $SEG_COUNT WAL segments with pgbench (scratch PostgreSQL 15 cluster)"
    [[ -x $PG_BIN/initdb ]] || die "PostgreSQL 15 binaries not found in $PG_BIN"
    if [[ -f $PG_DATA/postmaster.pid ]]; then pg_stop || true; fi
    rm -rf "$PG_DIR" "$WAL_DIR"
    mkdir -p "$PG_DIR/source" "$WAL_DIR"
    [[ $(id -u) -ne 0 ]] || chown -R postgres: "$PG_DIR"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --no-sync >"$PG_DIR/initdb.log"
    cat >>"$PG_DATA/postgresql.conf" <<EOF
# bench/lib.sh
listen_addresses = ''
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
wal_level = replica
archive_mode = on
archive_command = 'test ! -f $PG_DIR/source/%f && cp %p $PG_DIR/source/%f'
fsync = off
synchronous_commit = off
checkpoint_timeout = 30s
max_wal_size = 1GB
shared_buffers = 128MB
EOF
    trap '[[ ! -f $PG_DATA/postmaster.pid ]] || pg_stop || true' EXIT
    pg_start
    as_pg "$PG_BIN/pgbench" -h "$PG_DIR" -p "$PG_PORT" -U postgres -i -s 10 -q postgres >"$PG_DIR/pgbench.log" 2>&1
    # The first segments archived: the bulk COPY of pgbench -i (very compressible), then the
    # TPC-B load: small update records (much less so) and, as checkpoint_timeout is short, the
    # full-page images that follow each checkpoint — the kinds of WAL a production archive sees.
    local tries=0 n
    while :; do
        n=$(segments_in "$PG_DIR/source" | wc -l)
        ((n < SEG_COUNT)) || break
        ((tries++ < 120)) || die "pgbench produced only $n archived segments"
        as_pg "$PG_BIN/pgbench" -h "$PG_DIR" -p "$PG_PORT" -U postgres -n -c 4 -j 2 -T 5 postgres \
            >>"$PG_DIR/pgbench.log" 2>&1
    done
    pg_stop
    local segs
    trap - EXIT
    segs=$(segments_in "$PG_DIR/source" | head -n "$SEG_COUNT")
    for f in $segs; do cp "$PG_DIR/source/$f" "$WAL_DIR/$f"; done
    cp "$PG_DATA/global/pg_control" "$PG_DATA/PG_VERSION" "$WAL_DIR/"
    {
        echo "generated=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "first=$(echo "$segs" | head -1) last=$(echo "$segs" | tail -1)"
        echo "system_identifier=$(as_pg "$PG_BIN/pg_controldata" "$PG_DATA" | awk -F': *' '/Database system identifier/ {print $2}')"
    } >"$WAL_DIR/.stamp.tmp"
    mv "$WAL_DIR/.stamp.tmp" "$WAL_DIR/STAMP"
    rm -rf "$PG_DIR"
    wal_cache_ok || die "segment generation did not leave $SEG_COUNT segments of $SEG_SIZE bytes"
}

# segments_in DIR — the names of the WAL segment files in DIR, sorted
segments_in() {
    local f
    for f in "$1"/*; do
        if [[ ${f##*/} =~ ^[0-9A-F]{24}$ ]]; then echo "${f##*/}"; fi
    done | sort
}

wal_segments() { segments_in "$WAL_DIR"; }

# fake_pgdata DIR — a minimal data directory (pg_wal/ with the segments, global/pg_control,
# PG_VERSION) so that each tool can be run as an archive_command is: cwd = PGDATA, %p = pg_wal/X.
fake_pgdata() {
    local d=$1 f
    rm -rf "$d"
    mkdir -p "$d/pg_wal" "$d/global"
    chmod 700 "$d"
    cp "$WAL_DIR/pg_control" "$d/global/"
    cp "$WAL_DIR/PG_VERSION" "$d/"
    for f in $(wal_segments); do cp "$WAL_DIR/$f" "$d/pg_wal/$f"; done
}

# --- timing and statistics -----------------------------------------------------------------

now_us() { local t=${EPOCHREALTIME/./}; echo "$((10#$t))"; }

# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "nan"; exit} if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
minimum() { sort -g | head -1; }
maximum() { sort -g | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b+0 == 0) print "nan"; else printf "%.2f", a/b}'; }

# peak_rss_kb CMD... — peak resident set size of CMD in KiB (GNU time), or "n/a".
peak_rss_kb() {
    if [[ -x /usr/bin/time ]]; then
        local out
        out=$(mktemp)
        if /usr/bin/time -f '%M' -o "$out" "$@" >/dev/null 2>&1; then
            tail -1 "$out"
        else
            echo "failed"
        fi
        rm -f "$out"
    else
        echo "n/a"
    fi
}

# --- machine description -------------------------------------------------------------------

machine_line() {
    local cpu fs
    cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    fs=$(stat -f -c %T "$CACHE_DIR" 2>/dev/null || echo '?')
    printf '%s cores (nproc), %s, %s MiB RAM, Linux %s, filesystem %s' \
        "$(nproc)" "${cpu:-unknown CPU}" "$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)" \
        "$(uname -r)" "$fs"
}

# --- docs/benchmarks.md --------------------------------------------------------------------

# doc_section NAME FILE — replace the text between <!-- bench:NAME:start --> and
# <!-- bench:NAME:end --> in docs/benchmarks.md with FILE's content (appending the markers if absent).
doc_section() {
    local name=$1 body=$2 start end
    start="<!-- bench:$name:start -->" end="<!-- bench:$name:end -->"
    mkdir -p "$(dirname "$DOC")"
    if [[ ! -f $DOC ]]; then
        cat >"$DOC" <<'EOF'
# walship benchmarks

Written by `make bench` (bench/run.sh); each section is replaced on every run of its benchmark,
so the figures below are those of the last run on the machine named in the section. The data is
real: 16 MiB WAL segments and a pgbench database written by scratch PostgreSQL 15 clusters. Every job is
measured side by side with the floor (what the job costs with no software around it) and with the
peers installed from Debian, in the same run, on the same filesystem.
EOF
    fi
    if ! grep -qF "$start" "$DOC"; then
        printf '\n%s\n%s\n' "$start" "$end" >>"$DOC"
    fi
    START="$start" END="$end" BODY="$body" perl -0pi -e '
        my $b = do { local $/; open(my $f, "<", $ENV{BODY}) or die; <$f> };
        s/\Q$ENV{START}\E.*?\Q$ENV{END}\E/$ENV{START}\n$b$ENV{END}/s;
    ' "$DOC"
}

# --- the scale-50 pgbench cluster (basebackup and restore benchmarks) -------------------------
#
#   bb/data      a stopped PostgreSQL 15 cluster holding a pgbench database of scale 50
#                (~770 MB), initialised once and reused (bb/STAMP once complete)
#   bb/archive   its archive_command: runs the script bb/archive.sh, which pushes to whatever the
#                benchmark set up in bb/archive.mode (see bb_archive_mode)
BB_DIR=$CACHE_DIR/bb
BB_DATA=$BB_DIR/data
BB_PORT=${BENCH_BB_PORT:-54330}
BB_SCALE=${BENCH_BB_SCALE:-50}

bb_start() { as_pg "$PG_BIN/pg_ctl" -D "$BB_DATA" -l "$BB_DIR/server.log" -w -t 120 start >/dev/null; }
bb_stop() { as_pg "$PG_BIN/pg_ctl" -D "$BB_DATA" -m fast -w -t 120 stop >/dev/null; }
bb_running() { [[ -f $BB_DATA/postmaster.pid ]] && as_pg "$PG_BIN/pg_ctl" -D "$BB_DATA" status >/dev/null 2>&1; }

# bb_archive_mode LINE — the command bb/archive.sh runs for each WAL file (%p as $1), e.g.
# "walship --repo /x push \"$1\""; an empty LINE accepts and drops the file (pg_basebackup
# streams its WAL itself).
bb_archive_mode() {
    printf '%s\n' "${1:-true}" >"$BB_DIR/archive.mode.tmp"
    [[ $(id -u) -ne 0 ]] || chown postgres: "$BB_DIR/archive.mode.tmp"
    mv "$BB_DIR/archive.mode.tmp" "$BB_DIR/archive.mode"
}

# ensure_bb_cluster — leave the scale-$BB_SCALE cluster in $BB_DATA, stopped (cached across runs).
ensure_bb_cluster() {
    if [[ -f $BB_DIR/STAMP && -f $BB_DATA/PG_VERSION ]] && grep -qx "scale=$BB_SCALE" "$BB_DIR/STAMP"; then
        log "using the cached scale-$BB_SCALE cluster in $BB_DATA"
        if bb_running; then bb_stop || true; fi
        return 0
    fi
    log "initialising a pgbench database of scale $BB_SCALE (scratch PostgreSQL 15 cluster, once)"
    [[ -x $PG_BIN/initdb ]] || die "PostgreSQL 15 binaries not found in $PG_BIN"
    if bb_running; then bb_stop || true; fi
    rm -rf "$BB_DIR"
    mkdir -p "$BB_DIR"
    cat >"$BB_DIR/archive.sh" <<'EOS'
#!/bin/bash
# archive_command of the benchmark cluster: runs the line in archive.mode with $1 = %p
mode=$(cat "$(dirname "$0")/archive.mode" 2>/dev/null || echo true)
eval "$mode"
EOS
    chmod 755 "$BB_DIR/archive.sh"
    [[ $(id -u) -ne 0 ]] || chown -R postgres: "$BB_DIR"
    bb_archive_mode true
    as_pg "$PG_BIN/initdb" -D "$BB_DATA" -U postgres --auth=trust --no-sync >"$BB_DIR/initdb.log"
    cat >>"$BB_DATA/postgresql.conf" <<EOF
# bench/lib.sh (basebackup and restore benchmarks)
listen_addresses = ''
port = $BB_PORT
unix_socket_directories = '$BB_DIR'
wal_level = replica
max_wal_senders = 4
archive_mode = on
# pgbackrest refuses to back up unless its name appears in archive_command
archive_command = '$BB_DIR/archive.sh %p # walship or pgbackrest'
shared_buffers = 128MB
max_wal_size = 2GB
EOF
    bb_start
    as_pg "$PG_BIN/pgbench" -h "$BB_DIR" -p "$BB_PORT" -U postgres -i -s "$BB_SCALE" -q postgres \
        >"$BB_DIR/pgbench.log" 2>&1 || die "pgbench -i failed (see $BB_DIR/pgbench.log)"
    as_pg "$PG_BIN/psql" -h "$BB_DIR" -p "$BB_PORT" -U postgres -qAtc 'CHECKPOINT' postgres >/dev/null
    bb_stop
    {
        echo "scale=$BB_SCALE"
        echo "generated=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "size=$(du -sb "$BB_DATA" | cut -f1)"
    } >"$BB_DIR/STAMP"
}

# bb_pgbr_conf FILE — a pgbackrest configuration for the scale-50 cluster (stanza "bb"):
# lz4 level 1, process-max 2, fast checkpoint; lock and log paths under $RUN_DIR.
bb_pgbr_conf() {
    cat >"$1" <<EOF
[global]
compress-type=lz4
compress-level=1
process-max=2
start-fast=y
archive-async=n
log-level-console=warn
log-level-stderr=warn
log-level-file=off
lock-path=$RUN_DIR/pgbackrest-lock
repo1-retention-full=9

[bb]
pg1-path=$BB_DATA
pg1-socket-path=$BB_DIR
pg1-port=$BB_PORT
pg1-user=postgres
EOF
    [[ $(id -u) -ne 0 ]] || chown postgres: "$1"
}

# timed OUT_MS OUT_KB CMD... — runs CMD as the cluster owner; its wall time in ms and the peak
# RSS of its largest process in KiB (GNU time; "n/a" without it) into the named variables.
timed() {
    local -n _ms=$1 _kb=$2
    shift 2
    local t0 t1 tf rc=0
    tf=$(mktemp)
    chmod 666 "$tf"
    t0=$(now_us)
    if [[ -x /usr/bin/time ]]; then
        as_pg /usr/bin/time -f '%M' -o "$tf" "$@" || rc=$?
    else
        as_pg "$@" || rc=$?
    fi
    t1=$(now_us)
    _ms=$(((t1 - t0) / 1000))
    _kb=$(tail -1 "$tf" 2>/dev/null)
    [[ $_kb =~ ^[0-9]+$ ]] || _kb=n/a
    rm -f "$tf"
    return $rc
}

mib_of_kb() { awk -v k="$1" 'BEGIN {if (k ~ /^[0-9]+$/) printf "%.1f", k / 1024; else print k}'; }
mib_of_b() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }

# bb_bench_setup — what the basebackup and restore benchmarks share: the tools, the cached
# cluster, a fresh $RUN_DIR owned by the cluster's user, a private copy of walship ($WS: the
# tree's binary may be rebuilt while the benchmark runs), pgbackrest's configuration ($PGBR
# runs it) and the connection string ($PGCONN).
bb_bench_setup() {
    WALSHIP_BIN=${WALSHIP_BIN:-$ROOT_DIR/build/walship}
    [[ $WALSHIP_BIN == /* ]] || WALSHIP_BIN=$PWD/$WALSHIP_BIN
    [[ -x $WALSHIP_BIN ]] || die "$WALSHIP_BIN is not an executable file (make first)"
    ensure_pkgs pgbackrest:pgbackrest lz4:lz4 /usr/bin/time:time
    ensure_bb_cluster
    rm -rf "$RUN_DIR"
    mkdir -p "$RUN_DIR"
    [[ $(id -u) -ne 0 ]] || chown postgres: "$RUN_DIR"
    cp "$WALSHIP_BIN" "$RUN_DIR/walship"
    chmod 755 "$RUN_DIR/walship"
    WS=$RUN_DIR/walship
    PGBR_CONF=$RUN_DIR/pgbackrest.conf
    bb_pgbr_conf "$PGBR_CONF"
    PGBR=(pgbackrest --config="$PGBR_CONF" --stanza=bb)
    PGCONN="host=$BB_DIR port=$BB_PORT user=postgres dbname=postgres"
}

# db_bytes — the cluster's databases' size (running cluster).
db_bytes() {
    as_pg "$PG_BIN/psql" -h "$BB_DIR" -p "$BB_PORT" -U postgres -qAtc \
        "SELECT sum(pg_database_size(oid)) FROM pg_database" postgres
}

# measure_jobs JOB... — a warm-up and $BENCH_REPS repetitions of every job, interleaved (the
# order rotates). The script defines `prepare JOB DEST` (untimed) and `cmd_of JOB DEST`
# (sets the array CMD, run as the cluster's user and timed). Fills RESULTS[job] (ms, one per
# repetition), RSSMAX[job] (KiB, the largest) and SIZE_OF[job] (bytes in DEST at the end).
declare -A RESULTS=() RSSMAX=() SIZE_OF=()
measure_jobs() {
    local jobs=("$@") n=$# rep i job dest ms kb
    for rep in $(seq 0 "$BENCH_REPS"); do
        for i in $(seq 0 $((n - 1))); do
            job=${jobs[$(((i + rep) % n))]}
            dest=$RUN_DIR/out-$job
            prepare "$job" "$dest"
            cmd_of "$job" "$dest"
            ms=0 kb=n/a
            timed ms kb "${CMD[@]}" >>"$RUN_DIR/$job.log" 2>&1 ||
                die "$job failed in repetition $rep (see $RUN_DIR/$job.log)"
            if ((rep == 0)); then
                log "warm-up $job: $ms ms, peak RSS $kb KiB"
            else
                log "rep $rep/$BENCH_REPS $job: $ms ms, peak RSS $kb KiB"
                RESULTS[$job]+="$ms "
                if [[ $kb =~ ^[0-9]+$ ]] && { [[ -z ${RSSMAX[$job]:-} ]] || ((kb > RSSMAX[$job])); }; then
                    RSSMAX[$job]=$kb
                fi
            fi
            SIZE_OF[$job]=$(du -sb --apparent-size "$dest" | cut -f1)
        done
    done
}

# --- reporting over RESULTS ----------------------------------------------------------------

# stat_values "V1 V2 ..." median|minimum|maximum
stat_values() { tr ' ' '\n' <<<"$1" | grep . | "$2"; }
# ratio_values "A1 A2 ..." "B1 B2 ...": the median over repetitions of A/B within each repetition
# (the jobs of one repetition run back to back, so this cancels load that drifts between them)
ratio_values() {
    paste -d' ' <(tr ' ' '\n' <<<"$1" | grep .) <(tr ' ' '\n' <<<"$2" | grep .) |
        awk '{printf "%.4f\n", $1 / $2}' | median | awk '{printf "%.2f", $1}'
}
# stat_of JOB median|minimum|maximum, and paired_ratio JOB_A JOB_B, over RESULTS
stat_of() { stat_values "${RESULTS[$1]}" "$2"; }
paired_ratio() { ratio_values "${RESULTS[$1]}" "${RESULTS[$2]}"; }
# table_rows REF ref-over-job|job-over-ref: one Markdown row per job of JOBS that has results —
# label JOB, median seconds, min–max, the ratio to REF (REF/JOB or JOB/REF), SIZE_OF[JOB] bytes
# and RSSMAX[JOB] kB (the caller defines label, SIZE_OF and RSSMAX)
# shellcheck disable=SC2153 # JOBS, like SIZE_OF and RSSMAX, is the caller's
table_rows() {
    local ref=$1 order=$2 job r
    for job in "${JOBS[@]}"; do
        [[ -n ${RESULTS[$job]:-} ]] || continue
        if [[ $job == "$ref" ]]; then
            r=1.00
        elif [[ $order == ref-over-job ]]; then
            r=$(paired_ratio "$ref" "$job")
        else
            r=$(paired_ratio "$job" "$ref")
        fi
        printf '| %s | %s | %s–%s | %s | %s MiB | %s MiB |\n' "$(label "$job")" \
            "$(secs "$(stat_of "$job" median)")" "$(secs "$(stat_of "$job" minimum)")" \
            "$(secs "$(stat_of "$job" maximum)")" "$r" "$(mib_of_b "${SIZE_OF[$job]}")" \
            "$(mib_of_kb "${RSSMAX[$job]:-n/a}")"
    done
}
verdict() { awk -v r="$1" -v g="$2" 'BEGIN {print (r != "nan" && r + 0 <= g + 0) ? "met" : "**not met**"}'; }
secs() { awk -v m="$1" 'BEGIN {printf "%.2f", m / 1000}'; }
