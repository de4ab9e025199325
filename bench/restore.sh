#!/usr/bin/env bash
# shellcheck disable=SC2016 # backquotes in single quotes are Markdown, not expansions
# bench/restore.sh — restoring a full base backup of the pgbench database of scale 50 (~770 MB,
# the cluster of bench/basebackup.sh, cached in bench/cache/bb), by
#   floor       lz4 -dc base.tar.lz4 | tar -x, then sync -f (syncfs) of the directory
#               (pg_basebackup -Ft --compress=client-lz4's output: nothing but unpacking)
#   walship     walship --repo REPO restore --pgdata DIR --backup ID  (posix repository)
#   pgbackrest  pgbackrest restore --pg1-path=DIR                       (lz4, process-max=2)
# each repetition into a fresh, empty directory on the same filesystem, the jobs interleaved;
# the three backups are taken once, untimed, at the start. Wall time (median of BENCH_REPS,
# default 3 here), ratios, peak RSS. Run through bench/run.sh.
set -euo pipefail
BENCH_REPS=${BENCH_REPS:-3}
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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
SRC_WS=$RUN_DIR/src-walship
SRC_TAR=$RUN_DIR/src-tar
SRC_PGBR=$RUN_DIR/src-pgbackrest

# --- the three backups (untimed) -----------------------------------------------------------
trap 'bb_archive_mode true; bb_running && bb_stop || true' EXIT
bb_start
DB_BYTES=$(as_pg "$PG_BIN/psql" -h "$BB_DIR" -p "$BB_PORT" -U postgres -qAtc \
    "SELECT sum(pg_database_size(oid)) FROM pg_database" postgres)
log "taking the backups to restore (untimed)"
as_pg mkdir -m 700 "$SRC_WS"
bb_archive_mode "'$WS' --repo '$SRC_WS' push \"\$1\""
as_pg "$WS" --repo "$SRC_WS" basebackup --pgconn "$PGCONN" --checkpoint fast >"$RUN_DIR/src-walship.log" 2>&1 ||
    die "walship basebackup failed (see $RUN_DIR/src-walship.log)"
WS_ID=$(sed -n 's/.*backup \([^ ]*\) complete.*/\1/p' "$RUN_DIR/src-walship.log" | tail -1)
[[ -n $WS_ID ]] || die "no backup id in $RUN_DIR/src-walship.log"
bb_archive_mode true
as_pg "$PG_BIN/pg_basebackup" -d "$PGCONN" -D "$SRC_TAR" -Ft --compress=client-lz4 -c fast \
    >"$RUN_DIR/src-tar.log" 2>&1 || die "pg_basebackup failed (see $RUN_DIR/src-tar.log)"
as_pg mkdir -m 750 "$SRC_PGBR"
bb_archive_mode "pgbackrest --config='$PGBR_CONF' --stanza=bb --repo1-path='$SRC_PGBR' archive-push \"\$1\""
{ as_pg "${PGBR[@]}" --repo1-path="$SRC_PGBR" stanza-create &&
    as_pg "${PGBR[@]}" --repo1-path="$SRC_PGBR" backup --type=full; } >"$RUN_DIR/src-pgbackrest.log" 2>&1 ||
    die "pgbackrest backup failed (see $RUN_DIR/src-pgbackrest.log)"
bb_archive_mode true
bb_stop
trap - EXIT

# --- the jobs ------------------------------------------------------------------------------
FLOOR_SH=$RUN_DIR/floor.sh
cat >"$FLOOR_SH" <<'EOF'
#!/bin/bash
# the floor: unpack pg_basebackup's base.tar.lz4 and make it durable
set -euo pipefail
lz4 -dc "$1/base.tar.lz4" | tar -x -C "$2"
sync -f "$2"
EOF
chmod 755 "$FLOOR_SH"

cmd_of() { # JOB DEST — the timed command, as an array in CMD
    local job=$1 dest=$2
    case $job in
    floor) CMD=("$FLOOR_SH" "$SRC_TAR" "$dest") ;;
    walship) CMD=("$WS" --repo "$SRC_WS" restore --pgdata "$dest" --backup "$WS_ID") ;;
    pgbackrest) CMD=("${PGBR[@]}" --repo1-path="$SRC_PGBR" --pg1-path="$dest" restore) ;;
    esac
}

JOBS=(floor walship pgbackrest)
declare -A RESULTS=() RSSMAX=() WRITTEN=()
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
for rep in $(seq 0 "$BENCH_REPS"); do
    n=${#JOBS[@]}
    for i in $(seq 0 $((n - 1))); do
        job=${JOBS[$(((i + rep) % n))]}
        dest=$RUN_DIR/out-$job
        rm -rf "$dest"
        # walship creates its directory; the others restore into an empty one
        [[ $job == walship ]] || as_pg mkdir -m 700 "$dest"
        sync
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
        WRITTEN[$job]=$(du -sb --apparent-size "$dest" | cut -f1)
    done
done
LOAD_END=$(cut -d' ' -f1 /proc/loadavg)

# --- report -------------------------------------------------------------------------------
stat_of() { tr ' ' '\n' <<<"${RESULTS[$1]}" | grep . | "$2"; }
paired_ratio() {
    paste -d' ' <(tr ' ' '\n' <<<"${RESULTS[$1]}" | grep .) <(tr ' ' '\n' <<<"${RESULTS[$2]}" | grep .) |
        awk '{printf "%.4f\n", $1 / $2}' | median | awk '{printf "%.2f", $1}'
}
verdict() { awk -v r="$1" -v g="$2" 'BEGIN {print (r != "nan" && r + 0 <= g + 0) ? "met" : "**not met**"}'; }
secs() { awk -v m="$1" 'BEGIN {printf "%.2f", m / 1000}'; }
label() {
    case $1 in
    floor) echo '**floor**: `lz4 -dc base.tar.lz4 \| tar -x` + syncfs' ;;
    walship) echo 'walship restore (posix repository)' ;;
    pgbackrest) echo 'pgbackrest restore (process-max 2)' ;;
    esac
}
walship_version=$("$WS" --version 2>/dev/null | head -1 || true)
walship_commit=$(git -C "$ROOT_DIR" describe --always --dirty 2>/dev/null || true)
pgbr_version=$(pgbackrest version 2>/dev/null | head -1)
pg_version=$("$PG_BIN/postgres" --version)
lz4_version=$(lz4 -V 2>&1 | grep -o 'v[0-9][0-9.]*' | head -1)

BODY=$RUN_DIR/restore.md
{
    echo "## restore"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC') · $(machine_line) · load average $LOAD_START before, $LOAD_END after"
    echo "(the machine is shared with other work: figures are noisy, see the min–max column)"
    echo
    echo "Versions: ${walship_version:-walship ?}${walship_commit:+ (tree $walship_commit)} · ${pgbr_version:-pgbackrest ?} · lz4 ${lz4_version:-?} · ${pg_version}."
    echo
    echo "Restoring a full base backup of the pgbench database of scale $BB_SCALE ($(mib_of_b "$DB_BYTES") MiB in"
    echo "pg_database_size) — the cluster of the basebackup benchmark — taken once by each tool, into a"
    echo "fresh directory on the same filesystem in each of the $BENCH_REPS repetitions (after a warm-up), the"
    echo "jobs interleaved. The floor is what restoring costs with no software around it: unpacking"
    echo "pg_basebackup's lz4-compressed tar and syncing the file system. Wall time to the command's"
    echo "exit; seconds: median (min–max); ratios: median over the repetitions of the ratio within each."
    echo
    echo "| job | seconds | min–max | × floor | written | peak RSS |"
    echo "|---|---:|---:|---:|---:|---:|"
    for job in "${JOBS[@]}"; do
        [[ -n ${RESULTS[$job]:-} ]] || continue
        if [[ $job == floor ]]; then r=1.00; else r=$(paired_ratio "$job" floor); fi
        printf '| %s | %s | %s–%s | %s | %s MiB | %s MiB |\n' "$(label "$job")" \
            "$(secs "$(stat_of "$job" median)")" "$(secs "$(stat_of "$job" minimum)")" \
            "$(secs "$(stat_of "$job" maximum)")" "$r" "$(mib_of_b "${WRITTEN[$job]}")" \
            "$(mib_of_kb "${RSSMAX[$job]:-n/a}")"
    done
    echo
    r_floor=$(paired_ratio walship floor)
    r_pgbr=$(paired_ratio walship pgbackrest)
    echo "walship / floor = **${r_floor}×** (goal ≤ 1.1×: $(verdict "$r_floor" 1.1)) ·"
    echo "walship / pgbackrest = **${r_pgbr}×**."
    echo
    echo "walship and pgbackrest verify every file against its checksum (SHA-256) as they write it and"
    echo "write the recovery configuration; the floor checks nothing. Written: the directory after the"
    echo "last repetition. Peak RSS: the largest single process (\`/usr/bin/time -f %M\`, the maximum"
    echo "over the repetitions); the floor's is the shell script's own, lz4 and tar are its children."
    echo
    echo "Commands (DIR fresh per repetition):"
    echo
    echo '```'
    echo 'lz4 -dc base.tar.lz4 | tar -x -C DIR && sync -f DIR      # floor (DIR empty)'
    echo 'walship --repo REPO restore --pgdata DIR --backup ID      # DIR absent'
    echo 'pgbackrest --stanza=bb --repo1-path=REPO --pg1-path=DIR restore'
    echo '    # compress-type=lz4 process-max=2 (DIR empty)'
    echo '```'
    echo
    echo "Reproduce: \`WALSHIP_BIN=\$PWD/build/walship BENCH_REPS=$BENCH_REPS bench/run.sh restore\`."
    echo
} >"$BODY"

echo
cat "$BODY"
doc_section restore "$BODY"
rm -rf "$RUN_DIR"/out-* "$RUN_DIR"/src-* "$RUN_DIR/walship"
log "wrote the restore section of ${DOC#"$ROOT_DIR"/}"
