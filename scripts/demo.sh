#!/usr/bin/env bash
# demo.sh — walship end to end in a minute: a scratch PostgreSQL cluster archives its WAL with
# `walship push` into a local repository, then a copy of an earlier base backup is brought back
# to the present through `walship fetch`, and the two clusters' row counts are compared.
#
# `make demo` runs it with WALSHIP_BIN set. Everything lives in a temp directory that is removed
# on exit (WALSHIP_KEEP=1 keeps it). As root, PostgreSQL and walship run as the postgres user.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${WALSHIP_BIN:-$here/build/walship}
if [[ ! -x $bin ]]; then
    echo "demo.sh: no walship binary at $bin (run make first, or set WALSHIP_BIN)" >&2
    exit 1
fi
bin=$(readlink -f "$bin")

pgbin=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
if [[ -z $pgbin || ! -x $pgbin/initdb ]]; then
    echo "demo.sh: PostgreSQL server binaries not found (scripts/deps.sh installs them)" >&2
    exit 1
fi

step=0
bold= plain=
if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; fi
heading() {
    step=$((step + 1))
    printf '\n%s== %d. %s%s\n' "$bold" "$step" "$*" "$plain"
}
say() { printf '   %s\n' "$*"; }

# Run as postgres when root (PostgreSQL refuses to run as root), else as ourselves.
as_pg() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# The demo's own environment: nothing of the caller's PG*/WALSHIP_* settings.
while IFS='=' read -r name _; do
    case $name in PG* | WALSHIP_*) unset "$name" ;; esac
done < <(env)
export LC_ALL=C

tmp=$(mktemp -d /tmp/walship-demo-XXXXXX)
chmod 0755 "$tmp"
((EUID == 0)) && chown postgres: "$tmp"
cd "$tmp"

primary=$tmp/primary
restored=$tmp/restored
sock=$tmp/sock
port1=$((20000 + RANDOM % 20000))
port2=$((port1 + 1))

cleanup() {
    local rc=$?
    for d in "$restored" "$primary"; do
        if [[ -f $d/postmaster.pid ]]; then
            as_pg "$pgbin/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
        fi
    done
    cd /
    if [[ ${WALSHIP_KEEP:-0} == 1 || $rc -ne 0 ]]; then
        echo "demo.sh: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# As root, run a copy that postgres can surely reach (the checkout may sit under /root).
if ((EUID == 0)); then
    install -d -o postgres -m 0755 "$tmp/bin"
    install -m 0755 "$bin" "$tmp/bin/walship"
    bin=$tmp/bin/walship
fi

as_pg mkdir -m 0700 "$tmp/repo" "$sock"
conf=$tmp/walship.conf
as_pg sh -c "umask 077; printf '%s\n' '# walship demo' 'repo = $tmp/repo' > '$conf'"

psql1() { as_pg "$pgbin/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port1" -d postgres "$@"; }
psql2() { as_pg "$pgbin/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port2" -d postgres "$@"; }

# wait_until PSQLFN SQL: polls until the query returns t (120 s at most).
wait_until() {
    local fn=$1 sql=$2 i
    for ((i = 0; i < 1200; i++)); do
        [[ $($fn -c "$sql" 2>/dev/null || true) == t ]] && return 0
        sleep 0.1
    done
    echo "demo.sh: timed out waiting for: $sql" >&2
    return 1
}

heading "A scratch PostgreSQL cluster that archives through walship"
say "walship:  $bin ($("$bin" --version 2>/dev/null || echo '?'))"
say "config:   $conf  ->  repo = $tmp/repo"
as_pg "$pgbin/initdb" -D "$primary" -A trust --locale=C -E UTF8 --no-sync --wal-segsize=1 >/dev/null
cat >>"$primary/postgresql.conf" <<CONF
port = $port1
unix_socket_directories = '$sock'
listen_addresses = ''
wal_level = replica
archive_mode = on
archive_command = '$bin -c $conf push %p'
CONF
say "initdb --wal-segsize=1 (1 MiB segments, so that a small load makes many of them)"
say "archive_command = '$bin -c $conf push %p'"
as_pg "$pgbin/pg_ctl" -D "$primary" -l "$tmp/primary.log" -w start >/dev/null
say "started on socket $sock, port $port1"

heading "A base backup, taken before the load (pg_basebackup -X none: no WAL inside)"
as_pg "$pgbin/pg_basebackup" -D "$tmp/backup" -X none -c fast -h "$sock" -p "$port1" --no-sync 2>&1 |
    sed 's/^/   pg_basebackup: /'
say "$(du -sh "$tmp/backup" | cut -f1) in $tmp/backup; every change after it must come from the repository"

heading "Write load: pgbench -i -s 2, and a table of 5,000 events"
as_pg "$pgbin/pgbench" -i -s 2 -q -h "$sock" -p "$port1" postgres 2>&1 | tail -1 | sed 's/^/   /'
psql1 <<'SQL'
CREATE TABLE demo_events (id bigint PRIMARY KEY, at timestamptz NOT NULL, payload text);
INSERT INTO demo_events SELECT g, now(), md5(g::text) FROM generate_series(1, 5000) g;
SQL
last=$(psql1 -c 'SELECT pg_walfile_name(pg_switch_wal())')
say "switched WAL; the last completed segment is $last"
wait_until psql1 "SELECT coalesce(last_archived_wal >= '$last', false) FROM pg_stat_archiver"
psql1 -c "SELECT format('archived %s files, last %s, %s failures', archived_count,
                        last_archived_wal, failed_count) FROM pg_stat_archiver" | sed 's/^/   /'

heading "What is in the repository"
if [[ -f $tmp/repo/walship.repo ]]; then
    say "walship.repo (written by the first push):"
    grep -v '^#' "$tmp/repo/walship.repo" | sed 's/^/     /'
fi
segments=$(find "$tmp/repo" -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' | wc -l)
repobytes=$(du -sb "$tmp/repo" | cut -f1)
for d in "$tmp/repo"/wal/*/; do
    [[ -d $d ]] || continue
    n=$(find "$d" -type f | wc -l)
    say "${d#"$tmp/repo/"}  ($n files)"
    ls -l "$d" | sed -n '2,4p;$p' | sed 's/^/     /'
done
[[ -d $tmp/repo/wal ]] || find "$tmp/repo" -type f | head -20 | sed 's/^/     /'
say "repository: $((repobytes / 1024)) KiB in all, for $segments segments of 1 MiB (lz4)"

heading "Recovery: the old backup brought forward through walship fetch"
as_pg cp -a "$tmp/backup" "$restored"
cat >>"$restored/postgresql.conf" <<CONF
port = $port2
unix_socket_directories = '$sock'
archive_mode = off
restore_command = '$bin -c $conf fetch %f %p'
CONF
as_pg touch "$restored/recovery.signal"
say "restore_command = '$bin -c $conf fetch %f %p', recovery.signal"
as_pg "$pgbin/pg_ctl" -D "$restored" -l "$tmp/restored.log" -w start >/dev/null
wait_until psql2 'SELECT NOT pg_is_in_recovery()'
say "recovery replayed $(grep -c 'restored log file' "$tmp/restored.log" || true) files fetched from the repository, then promoted:"
grep -E 'restored log file|archive recovery complete|selected new timeline' "$tmp/restored.log" |
    sed -E 's/^.*(LOG|INFO): +//' | sed -n '1,2p;$p' | sed 's/^/     /'

heading "Row counts: original and recovered copy"
printf '   %-20s %12s %12s\n' table original recovered
differ=0
for t in pgbench_accounts pgbench_branches pgbench_tellers demo_events; do
    a=$(psql1 -c "SELECT count(*) FROM $t")
    b=$(psql2 -c "SELECT count(*) FROM $t" 2>/dev/null || echo missing)
    mark=
    [[ $a == "$b" ]] || { mark="  <-- differs"; differ=1; }
    printf '   %-20s %12s %12s%s\n' "$t" "$a" "$b" "$mark"
done
a=$(psql1 -c "SELECT md5(string_agg(payload, '' ORDER BY id)) FROM demo_events")
b=$(psql2 -c "SELECT md5(string_agg(payload, '' ORDER BY id)) FROM demo_events")
if ((differ == 0)) && [[ $a == "$b" ]]; then
    say "demo_events contents match (md5 $b)"
else
    say "the recovered copy differs from the original"
    exit 1
fi

heading "Done"
say "the recovered copy holds every row written after its base backup, all of it fetched by walship"
