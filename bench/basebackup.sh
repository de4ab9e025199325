#!/usr/bin/env bash
# shellcheck disable=SC2016 # backquotes in single quotes are Markdown, not expansions
# bench/basebackup.sh — a full base backup of a pgbench database of scale 50 (~770 MB) on a
# scratch PostgreSQL 15 cluster (cached in bench/cache/bb), by
#   walship         walship --repo REPO basebackup --checkpoint fast      (posix repository)
#   pg_basebackup   pg_basebackup -Ft --compress=client-lz4 -c fast       (tar + lz4 on the client)
#   pg_basebackup+  the same with --manifest-checksums=SHA256 (walship hashes every file too)
#   pgbackrest      pgbackrest backup --type=full                          (lz4, process-max=2)
# each repetition into a fresh repository or directory on the same filesystem, the jobs
# interleaved. Wall time (median of BENCH_REPS, default 3 here), ratios, peak RSS. Each tool's
# WAL reaches it as it would in production: the cluster's archive_command pushes to walship's
# or pgbackrest's repository while that tool runs; pg_basebackup streams its own (-X stream).
# Run through bench/run.sh.
set -euo pipefail
BENCH_REPS=${BENCH_REPS:-3}
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bb_bench_setup
trap 'bb_archive_mode true; bb_running && bb_stop || true' EXIT
bb_start
DB_BYTES=$(db_bytes)

# --- the jobs: prepare (untimed) then run (timed) -------------------------------------------
prepare() { # JOB DEST
    local job=$1 dest=$2
    rm -rf "$dest"
    case $job in
    walship)
        as_pg mkdir -m 700 "$dest"
        bb_archive_mode "'$WS' --repo '$dest' push \"\$1\""
        ;;
    pgbackrest)
        as_pg mkdir -m 750 "$dest"
        bb_archive_mode "pgbackrest --config='$PGBR_CONF' --stanza=bb --repo1-path='$dest' archive-push \"\$1\""
        as_pg "${PGBR[@]}" --repo1-path="$dest" stanza-create >>"$RUN_DIR/pgbackrest.log" 2>&1 ||
            die "pgbackrest stanza-create failed (see $RUN_DIR/pgbackrest.log)"
        ;;
    pg_basebackup | pg_basebackup_sha)
        bb_archive_mode true
        ;;
    esac
    sync
}

cmd_of() { # JOB DEST — the timed command, as an array in CMD
    local job=$1 dest=$2
    case $job in
    walship) CMD=("$WS" --repo "$dest" basebackup --pgconn "$PGCONN" --checkpoint fast) ;;
    pg_basebackup) CMD=("$PG_BIN/pg_basebackup" -d "$PGCONN" -D "$dest" -Ft --compress=client-lz4 -c fast) ;;
    pg_basebackup_sha) CMD=("$PG_BIN/pg_basebackup" -d "$PGCONN" -D "$dest" -Ft --compress=client-lz4 -c fast --manifest-checksums=SHA256) ;;
    pgbackrest) CMD=("${PGBR[@]}" --repo1-path="$dest" backup --type=full) ;;
    esac
}

JOBS=(walship pg_basebackup pg_basebackup_sha pgbackrest)
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
measure_jobs "${JOBS[@]}"
LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
bb_archive_mode true
bb_stop
trap - EXIT

# --- report -------------------------------------------------------------------------------
label() {
    case $1 in
    walship) echo 'walship basebackup (posix repository)' ;;
    pg_basebackup) echo '`pg_basebackup -Ft --compress=client-lz4`' ;;
    pg_basebackup_sha) echo 'the same, `--manifest-checksums=SHA256`' ;;
    pgbackrest) echo 'pgbackrest backup --type=full (lz4, process-max 2)' ;;
    esac
}
walship_version=$("$WS" --version 2>/dev/null | head -1 || true)
walship_commit=$(git -C "$ROOT_DIR" describe --always --dirty 2>/dev/null || true)
walship_parallel="basebackup-parallel (2)"
pgbr_version=$(pgbackrest version 2>/dev/null | head -1)
pg_version=$("$PG_BIN/postgres" --version)

BODY=$RUN_DIR/basebackup.md
{
    echo "## basebackup"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC') · $(machine_line) · load average $LOAD_START before, $LOAD_END after"
    echo "(the machine is shared with other work: figures are noisy, see the min–max column)"
    echo
    echo "Versions: ${walship_version:-walship ?}${walship_commit:+ (tree $walship_commit)} · ${pgbr_version:-pgbackrest ?} · ${pg_version}."
    echo
    echo "A full base backup of a scratch PostgreSQL 15 cluster holding a pgbench database of scale"
    echo "$BB_SCALE ($(mib_of_b "$DB_BYTES") MiB in pg_database_size; default 16 MiB WAL segments), idle, files in"
    echo "the page cache; each of the $BENCH_REPS repetitions (after a warm-up) into a fresh repository or"
    echo "directory on the same filesystem, the jobs interleaved. Wall time from the command's start to"
    echo "its exit, WAL included: walship and pgbackrest wait until the backup's WAL is in their"
    echo "repository (the cluster's archive_command pushes there), pg_basebackup streams it (-X stream)."
    echo "Seconds: median (min–max); ratios: median over the repetitions of the ratio within each one."
    echo
    echo "| job | seconds | min–max | walship × | stored | peak RSS |"
    echo "|---|---:|---:|---:|---:|---:|"
    table_rows walship ref-over-job
    echo
    r_pgbb=$(paired_ratio walship pg_basebackup)
    r_pgbb_sha=$(paired_ratio walship pg_basebackup_sha)
    r_pgbr=$(paired_ratio walship pgbackrest)
    echo "walship / pg_basebackup = **${r_pgbb}×** (goal ≤ 1.1×: $(verdict "$r_pgbb" 1.1)); with SHA-256"
    echo "manifest checksums, as walship computes, **${r_pgbb_sha}×** ($(verdict "$r_pgbb_sha" 1.1)) ·"
    echo "walship / pgbackrest = **${r_pgbr}×** (goal ≤ 0.5×: $(verdict "$r_pgbr" 0.5))."
    echo
    echo "walship writes objects with its default ${walship_parallel:-basebackup-parallel}. Stored: the repository or"
    echo "directory after the last repetition (pgbackrest's and walship's include their WAL; walship's"
    echo "the server's backup_manifest). Peak RSS: the largest single process (\`/usr/bin/time -f %M\`,"
    echo "the maximum over the repetitions); pgbackrest's process-max workers and pg_basebackup's WAL"
    echo "streamer are processes of their own and are not added up."
    echo
    echo "Commands (DEST fresh per repetition; PGCONN = the cluster's socket):"
    echo
    echo '```'
    echo 'walship --repo DEST basebackup --pgconn PGCONN --checkpoint fast'
    echo '    # archive_command = walship --repo DEST push %p'
    echo 'pg_basebackup -d PGCONN -D DEST -Ft --compress=client-lz4 -c fast [--manifest-checksums=SHA256]'
    echo 'pgbackrest --stanza=bb --repo1-path=DEST backup --type=full'
    echo '    # compress-type=lz4 compress-level=1 process-max=2 start-fast=y, after stanza-create;'
    echo '    # archive_command = pgbackrest --stanza=bb --repo1-path=DEST archive-push %p'
    echo '```'
    echo
    echo "Reproduce: \`WALSHIP_BIN=\$PWD/build/walship BENCH_REPS=$BENCH_REPS bench/run.sh basebackup\`"
    echo "(the first run initialises the cluster in bench/cache/bb, once)."
    echo
} >"$BODY"

echo
cat "$BODY"
doc_section basebackup "$BODY"
rm -rf "$RUN_DIR"/out-* "$RUN_DIR/walship"
log "wrote the basebackup section of ${DOC#"$ROOT_DIR"/}"
