#!/usr/bin/env bash
# shellcheck disable=SC2016 # backquotes in single quotes are Markdown, not expansions
# bench/push.sh — archive_command throughput: 20 real 16 MiB segments pushed serially, one process
# per segment as PostgreSQL's archiver runs them, by
#   floor       lz4 -1 -B4 into the repository directory, then fsync of the file (coreutils sync FILE)
#   lz4-default the same with the lz4 CLI's default 4 MiB blocks (slower here: see below)
#   walship     walship --repo DIR --async off push pg_wal/SEG   (cwd = a PGDATA)
#   pgbackrest  pgbackrest archive-push pg_wal/SEG         (lz4 level 1, archive-async=n)
# each repetition into a fresh repository on the same filesystem. Run through bench/run.sh.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# make bench passes WALSHIP_BIN; by hand, the tree's build/walship (walship/ is the source folder)
WALSHIP_BIN=${WALSHIP_BIN:-$ROOT_DIR/build/walship}
[[ $WALSHIP_BIN == /* ]] || WALSHIP_BIN=$PWD/$WALSHIP_BIN

ensure_pkgs pgbackrest:pgbackrest lz4:lz4 /usr/bin/time:time
ensure_wal

rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"
PGDATA_FAKE=$RUN_DIR/pgdata
fake_pgdata "$PGDATA_FAKE"
mapfile -t SEGS < <(wal_segments)

# --- pgbackrest: configuration and a stanza template --------------------------------------
# archive-push needs a stanza (archive.info, backup.info) in the repository. stanza-create
# --no-online reads the system id and version from pg1-path's pg_control instead of connecting,
# so it works against the copy of the scratch cluster's pg_control in the fake PGDATA. It runs
# once, into a template; each repetition starts from a fresh copy of that template (untimed).
PGBR_CONF=$RUN_DIR/pgbackrest.conf
cat >"$PGBR_CONF" <<EOF
[global]
compress-type=lz4
compress-level=1
archive-async=n
log-level-console=warn
log-level-stderr=warn
log-level-file=off
lock-path=$RUN_DIR/pgbackrest-lock
start-fast=y

[bench]
pg1-path=$PGDATA_FAKE
EOF
PGBR=(pgbackrest --config="$PGBR_CONF" --stanza=bench)
"${PGBR[@]}" --repo1-path="$RUN_DIR/pgbackrest-template" --no-online stanza-create >"$RUN_DIR/stanza-create.log" 2>&1 ||
    die "pgbackrest stanza-create failed: $(cat "$RUN_DIR/stanza-create.log")"

# --- the three jobs ------------------------------------------------------------------------
# Each takes a fresh repository path and pushes every segment, cwd = the fake PGDATA.

# The floor is the lz4 CLI with 64 KiB blocks (-B4). With its default 4 MiB blocks the CLI
# allocates and faults in ~8 MiB of buffers per process, which on small VMs costs more than the
# compression itself; that is an artefact of the tool, not a cost of the job, so it is shown as
# its own row (lz4-default) and the ratios are taken against the faster one.
job_floor() {
    local repo=$1 s
    mkdir -p "$repo"
    for s in "${SEGS[@]}"; do
        lz4 -1 -B4 -q -f "pg_wal/$s" "$repo/$s.lz4"
        sync "$repo/$s.lz4"
    done
}

job_lz4default() {
    local repo=$1 s
    mkdir -p "$repo"
    for s in "${SEGS[@]}"; do
        lz4 -1 -q -f "pg_wal/$s" "$repo/$s.lz4"
        sync "$repo/$s.lz4"
    done
}

job_walship() {
    local repo=$1 s
    for s in "${SEGS[@]}"; do
        "$WALSHIP_BIN" --repo "$repo" --async off push "pg_wal/$s" >>"$RUN_DIR/walship.log" 2>&1
    done
}

job_pgbackrest() {
    local repo=$1 s
    for s in "${SEGS[@]}"; do
        "${PGBR[@]}" --repo1-path="$repo" archive-push "pg_wal/$s" >>"$RUN_DIR/pgbackrest.log" 2>&1
    done
}

prepare_repo() { # JOB REPO — untimed set-up of a fresh repository
    rm -rf "$2"
    if [[ $1 == pgbackrest ]]; then cp -a "$RUN_DIR/pgbackrest-template" "$2"; fi
}

# --- walship smoke test on a real segment ---------------------------------------------------
walship_error=""
if [[ ! -f $WALSHIP_BIN || ! -x $WALSHIP_BIN ]]; then
    walship_error="$WALSHIP_BIN is not an executable file"
else
    rc=0
    out=$(cd "$PGDATA_FAKE" && "$WALSHIP_BIN" --repo "$RUN_DIR/probe" --async off push "pg_wal/${SEGS[0]}" 2>&1) || rc=$?
    ((rc == 0)) || walship_error="\`walship --repo DIR push pg_wal/${SEGS[0]}\` exited $rc: $out"
fi
rm -rf "$RUN_DIR/probe"
if [[ -z $walship_error ]]; then
    # measure a private copy: the tree's binary may be rebuilt while the benchmark runs
    cp "$WALSHIP_BIN" "$RUN_DIR/walship"
    WALSHIP_BIN=$RUN_DIR/walship
fi
JOBS=(floor lz4default pgbackrest walship)
if [[ -n $walship_error ]]; then
    log "$walship_error"
    log "measuring the floor and pgbackrest only; docs/benchmarks.md is left as it is"
    JOBS=(floor lz4default pgbackrest)
fi

# --- measure ------------------------------------------------------------------------------
# children_cpu_ms VAR — user+sys CPU of every child this shell has waited for, in ms, into VAR.
# bash `times` (second line: the children's user and system time as XmY.YYYs) must run in this
# shell, not in a pipeline or $(...), whose subshell has no children of its own yet.
children_cpu_ms() {
    local -n _cpu=$1
    times >"$RUN_DIR/times"
    _cpu=$(awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
        printf "%d", t * 1000 }' "$RUN_DIR/times")
}
RESULTS=()
declare -A CPU=()
c0=0 c1=0 # set by children_cpu_ms (a nameref)
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
cd "$PGDATA_FAKE"
for rep in $(seq 0 "$BENCH_REPS"); do
    # rotate the order so no job always runs right after the same other one
    n=${#JOBS[@]}
    for i in $(seq 0 $((n - 1))); do
        job=${JOBS[$(((i + rep) % n))]}
        repo=$RUN_DIR/repo-$job
        prepare_repo "$job" "$repo"
        sync
        children_cpu_ms c0
        t0=$(now_us)
        "job_$job" "$repo" || die "$job failed in repetition $rep (see $RUN_DIR/$job.log)"
        t1=$(now_us)
        children_cpu_ms c1
        ms=$(awk -v d=$((t1 - t0)) -v n=${#SEGS[@]} 'BEGIN {printf "%.2f", d / n / 1000}')
        cpu=$(awk -v d=$((c1 - c0)) -v n=${#SEGS[@]} 'BEGIN {printf "%.2f", d / n}')
        if ((rep == 0)); then
            log "warm-up $job: $ms ms/segment, CPU $cpu ms/segment"
        else
            log "rep $rep/$BENCH_REPS $job: $ms ms/segment, CPU $cpu ms/segment"
            RESULTS[$job]+="$ms "
            CPU[$job]+="$cpu "
        fi
    done
done

LOAD_END=$(cut -d' ' -f1 /proc/loadavg)

# bytes stored by the last repetition of each job (whole repository, metadata included)
declare -A STORED=()
for job in "${JOBS[@]}"; do
    STORED[$job]=$(du -sb --apparent-size "$RUN_DIR/repo-$job" | cut -f1)
done
RAW=$((${#SEGS[@]} * SEG_SIZE))
LZ4_RATIO=$(awk -v r=$RAW -v s="${STORED[lz4default]}" 'BEGIN {printf "%.2f", r / s}')

# peak RSS of one push of one 16 MiB segment into an empty repository
declare -A RSS=()
for job in "${JOBS[@]}"; do
    repo=$RUN_DIR/rss-$job
    prepare_repo "$job" "$repo"
    case $job in
    floor) mkdir -p "$repo" && RSS[$job]=$(peak_rss_kb lz4 -1 -B4 -q -f "pg_wal/${SEGS[0]}" "$repo/x.lz4") ;;
    lz4default) mkdir -p "$repo" && RSS[$job]=$(peak_rss_kb lz4 -1 -q -f "pg_wal/${SEGS[0]}" "$repo/x.lz4") ;;
    walship) RSS[$job]=$(peak_rss_kb "$WALSHIP_BIN" --repo "$repo" --async off push "pg_wal/${SEGS[0]}") ;;
    pgbackrest) RSS[$job]=$(peak_rss_kb "${PGBR[@]}" --repo1-path="$repo" archive-push "pg_wal/${SEGS[0]}") ;;
    esac
done
# process start-up alone (exec + dynamic linking), since an archive_command pays it per segment
startup_ms() {
    local i t0 t1
    t0=$(now_us)
    for i in $(seq 50); do "$@" >/dev/null 2>&1 || true; done
    t1=$(now_us)
    awk -v d=$((t1 - t0)) 'BEGIN {printf "%.1f", d / 50 / 1000}'
}
STARTUP="\`/bin/true\` $(startup_ms /bin/true) ms · \`lz4 -V\` $(startup_ms lz4 -V) ms"
[[ -z ${RESULTS[walship]:-} ]] || STARTUP+=" · \`walship --help\` $(startup_ms "$WALSHIP_BIN" --help) ms"
STARTUP+=" · \`pgbackrest version\` $(startup_ms pgbackrest version) ms"
cd "$ROOT_DIR"

# --- report -------------------------------------------------------------------------------
declare -A MED=()
for job in "${JOBS[@]}"; do MED[$job]=$(stat_of "$job" median); done

walship_version=$("$WALSHIP_BIN" --version 2>/dev/null | head -1 || true)
walship_commit=$(git -C "$ROOT_DIR" describe --always --dirty 2>/dev/null || true)
pgbr_version=$(pgbackrest version 2>/dev/null | head -1)
lz4_version=$(lz4 -V 2>&1 | grep -o 'v[0-9][0-9.]*' | head -1)
pg_version=$("$PG_BIN/postgres" --version)

label() {
    case $1 in
    floor) echo '**floor**: `lz4 -1 -B4` + fsync' ;;
    lz4default) echo '`lz4 -1` (4 MiB blocks) + fsync' ;;
    walship) echo 'walship push, async = off' ;;
    pgbackrest) echo "pgbackrest archive-push (lz4 level 1)" ;;
    esac
}

BODY=$RUN_DIR/push.md
{
    echo "## push (archive_command)"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC') · $(machine_line) · load average $LOAD_START before, $LOAD_END after"
    echo "(other work on the machine shows as spread in the min–max columns)"
    echo
    echo "Versions: ${walship_version:-walship ?}${walship_commit:+ (tree $walship_commit)} · ${pgbr_version:-pgbackrest ?} · lz4 ${lz4_version:-?} · ${pg_version}."
    echo
    echo "${#SEGS[@]} real 16 MiB WAL segments (${SEGS[0]}..${SEGS[-1]}), the first archived by a scratch"
    echo "cluster under \`pgbench -i -s 10\` then a TPC-B load with checkpoint_timeout = 30s: bulk COPY,"
    echo "update records and full-page images; \`lz4 -1\` ratio ${LZ4_RATIO}×. Pushed serially, one process"
    echo "per segment as PostgreSQL's archiver runs them, cwd = a PGDATA holding them in pg_wal/; each of"
    echo "the $BENCH_REPS repetitions (after a warm-up) into a fresh repository on the same filesystem, the"
    echo "jobs interleaved. Milliseconds per segment: median over the repetitions (min–max); ratios: median"
    echo "over the repetitions of the ratio within each one (robust to load that drifts between them)."
    echo "CPU: user + system time of the job's processes (bash \`times\`, children), per segment."
    echo
    echo "The floor is the lz4 CLI with 64 KiB blocks: with its default 4 MiB blocks each lz4 process"
    echo "allocates and faults in ~8 MiB of buffers, a cost of the tool rather than of the job (shown as"
    echo "its own row)."
    echo
    echo "| job | ms / segment | min–max | × floor | CPU ms / segment | CPU × floor | stored, ratio | peak RSS, one push |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for job in floor lz4default walship pgbackrest; do
        [[ -n ${RESULTS[$job]:-} ]] || continue
        printf '| %s | %.1f | %.1f–%.1f | %s | %.1f | %s | %s MiB, %s× | %s MiB |\n' "$(label "$job")" \
            "${MED[$job]}" "$(stat_of "$job" minimum)" "$(stat_of "$job" maximum)" \
            "$(paired_ratio "$job" floor)" \
            "$(stat_values "${CPU[$job]}" median)" "$(ratio_values "${CPU[$job]}" "${CPU[floor]}")" \
            "$(awk -v b="${STORED[$job]}" 'BEGIN {printf "%.1f", b / 1048576}')" \
            "$(ratio $RAW "${STORED[$job]}")" \
            "$(awk -v k="${RSS[$job]}" 'BEGIN {if (k ~ /^[0-9]+$/) printf "%.1f", k / 1024; else print k}')"
    done
    echo
    if [[ -n ${MED[walship]:-} ]]; then
        r_floor=$(paired_ratio walship floor)
        r_pgbr=$(paired_ratio walship pgbackrest)
        echo "walship / floor = **${r_floor}×** (goal ≤ 1.1×: $(verdict "$r_floor" 1.1)) ·"
        echo "walship / pgbackrest = **${r_pgbr}×** (goal ≤ 0.6×: $(verdict "$r_pgbr" 0.6)) ·"
        r_cpu=$(ratio_values "${CPU[walship]}" "${CPU[floor]}")
        echo "walship CPU / floor CPU = **${r_cpu}×** (goal ≤ 1.2×: $(verdict "$r_cpu" 1.2)) ·"
        echo "walship peak RSS $(awk -v k="${RSS[walship]}" 'BEGIN {if (k ~ /^[0-9]+$/) printf "%.1f MiB", k / 1024; else print k}') (goal ≤ 16 MiB)."
    else
        echo "walship: not measured — $walship_error"
    fi
    echo
    echo "Start-up of one process, mean of 50: $STARTUP (\`walship --version\` also loads libcurl and libpq to report their versions; push loads neither for a posix repository)."
    echo
    echo "Commands (per segment SEG, cwd = PGDATA, REPO fresh per repetition):"
    echo
    echo '```'
    echo 'lz4 -1 -B4 -q -f pg_wal/SEG REPO/SEG.lz4 && sync REPO/SEG.lz4      # floor'
    echo 'lz4 -1 -q -f pg_wal/SEG REPO/SEG.lz4 && sync REPO/SEG.lz4          # lz4 CLI defaults'
    echo 'walship --repo REPO --async off push pg_wal/SEG'
    echo 'pgbackrest --stanza=bench --repo1-path=REPO archive-push pg_wal/SEG'
    echo '    # compress-type=lz4 compress-level=1 archive-async=n; REPO = a copy of a repository'
    echo '    # where `pgbackrest stanza-create --no-online` was run against the same pg_control'
    echo '```'
    echo
    echo "Peak RSS: \`/usr/bin/time -f %M\` of one push of one segment into an empty repository."
    echo "Reproduce: \`make bench\`, or \`WALSHIP_BIN=\$PWD/build/walship BENCH_REPS=$BENCH_REPS bench/run.sh push\`."
    echo
} >"$BODY"

echo
cat "$BODY"
if [[ -n $walship_error ]]; then
    exit 1
fi
doc_section push "$BODY"
rm -rf "$PGDATA_FAKE" "$RUN_DIR"/repo-* "$RUN_DIR"/rss-* "$RUN_DIR/pgbackrest-template" "$RUN_DIR/walship"
log "wrote the push section of ${DOC#"$ROOT_DIR"/}"
