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

bb_bench_setup
SRC_WS=$RUN_DIR/src-walship
SRC_TAR=$RUN_DIR/src-tar
SRC_PGBR=$RUN_DIR/src-pgbackrest

# --- the three backups (untimed) -----------------------------------------------------------
trap 'bb_archive_mode true; bb_running && bb_stop || true' EXIT
bb_start
DB_BYTES=$(db_bytes)
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

prepare() { # JOB DEST — a fresh, empty directory; walship creates its own
    rm -rf "$2"
    [[ $1 == walship ]] || as_pg mkdir -m 700 "$2"
    sync
}

JOBS=(floor walship pgbackrest)
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
measure_jobs "${JOBS[@]}"
LOAD_END=$(cut -d' ' -f1 /proc/loadavg)

# --- report -------------------------------------------------------------------------------
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
    table_rows floor job-over-ref
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
