#!/usr/bin/env bash
# demo.sh — point-in-time recovery with walship, end to end in a minute. A scratch PostgreSQL
# cluster archives its WAL with `walship push` into a local repository and is backed up with
# `walship basebackup`; pgbench writes; the moment is recorded; someone runs DROP TABLE; then
# `walship restore --target-time` brings a new data directory back to that moment, PostgreSQL
# replays the WAL through `walship fetch` and stops there, and the tables' row counts are
# printed beside the original's.
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
    # walship's agents (async push, prefetching fetch) outlive their clusters until they are
    # idle for agent-idle-timeout: stop them before the directories go away
    local st pid
    while IFS= read -r st; do
        pid=$(sed -n 's/^pid = \([0-9]*\).*/\1/p' "$st" 2>/dev/null | head -n1)
        [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null || true
    done < <(find "$tmp" -name agent.state 2>/dev/null)
    for _ in $(seq 50); do
        pgrep -f "walship.*$tmp" >/dev/null 2>&1 || break
        sleep 0.1
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

heading "A scratch PostgreSQL cluster that archives through walship push"
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

heading "Some data, then a base backup with walship basebackup"
as_pg "$pgbin/pgbench" -i -s 2 -q -h "$sock" -p "$port1" postgres 2>&1 | tail -1 | sed 's/^/   pgbench -i -s 2: /'
as_pg "$bin" -c "$conf" basebackup --pgconn "host=$sock port=$port1 dbname=postgres" \
    --checkpoint fast --label "demo nightly" 2>&1 | grep -E 'complete|match' | sed 's/^/   /'
as_pg "$bin" -c "$conf" list | sed 's/^/   /'

heading "The working day: pgbench writes for 5 seconds"
as_pg "$pgbin/pgbench" -n -c 2 -T 5 -h "$sock" -p "$port1" postgres 2>&1 |
    grep -E '^(number of transactions actually processed|tps)' | sed 's/^/   /'

tables="pgbench_accounts pgbench_branches pgbench_tellers pgbench_history"
count_sql="SELECT string_agg(c::text, ' ' ORDER BY o) FROM (
  SELECT 1 o, count(*) c FROM pgbench_accounts UNION ALL SELECT 2, count(*) FROM pgbench_branches
  UNION ALL SELECT 3, count(*) FROM pgbench_tellers UNION ALL SELECT 4, count(*) FROM pgbench_history) s"
sum_sql="SELECT sum(abalance) FROM pgbench_accounts"

heading "The moment to come back to"
read -r -a at_moment <<<"$(psql1 -c "$count_sql")"
sum_moment=$(psql1 -c "$sum_sql")
sleep 1
moment=$(psql1 -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00'")
sleep 1
say "recorded: $moment"
say "pgbench_history has ${at_moment[3]} rows, sum(abalance) = $sum_moment"

heading "A second later, a mistake: DROP TABLE pgbench_accounts"
drop_xid=$(psql1 <<<"BEGIN; DROP TABLE pgbench_accounts; SELECT pg_current_xact_id(); COMMIT;")
say "DROP TABLE committed as transaction $drop_xid at $(psql1 -c "SELECT to_char(now() AT TIME ZONE 'UTC', 'HH24:MI:SS.US')")"
psql1 -c "CREATE TABLE after_the_drop AS SELECT generate_series(1, 1000) AS n"
say "and the day goes on: a new table, more WAL"
last=$(psql1 -c 'SELECT pg_walfile_name(pg_switch_wal())')
wait_until psql1 "SELECT coalesce(last_archived_wal >= '$last', false) FROM pg_stat_archiver"
psql1 -c "SELECT format('archived %s WAL files so far, %s failures', archived_count, failed_count)
          FROM pg_stat_archiver" | sed 's/^/   /'

heading "The plan: walship restore --target-time '$moment' --dry-run"
as_pg "$bin" -c "$conf" restore --pgdata "$restored" --target-time "$moment" \
    --target-action promote --dry-run | sed 's/^/   /'

heading "walship restore into a new data directory"
as_pg "$bin" -c "$conf" restore --pgdata "$restored" --target-time "$moment" \
    --target-action promote 2>&1 | sed 's/^/   /'
cat >>"$restored/postgresql.conf" <<CONF
port = $port2
archive_mode = off
CONF
say "its own port ($port2), archiving off; the recovery settings are in postgresql.auto.conf:"
sed -n '/^# walship restore: begin/,/^# walship restore: end/p' "$restored/postgresql.auto.conf" |
    sed 's/^/     /'

heading "PostgreSQL starts, replays WAL through walship fetch, stops at $moment"
as_pg "$pgbin/pg_ctl" -D "$restored" -l "$tmp/restored.log" -w start >/dev/null
wait_until psql2 'SELECT NOT pg_is_in_recovery()'
say "$(grep -c 'restored log file' "$tmp/restored.log" || true) WAL files fetched from the repository; from the server log:"
grep -E 'recovery stopping|last completed transaction|selected new timeline|archive recovery complete' \
    "$tmp/restored.log" | sed -E 's/^.*(LOG|INFO): +//' | sed 's/^/     /'
say "(transaction $drop_xid was the DROP TABLE: recovery stopped just before it)"

heading "Row counts: at $moment, on the primary now, and restored"
printf '   %-18s %12s %12s %12s\n' table "at $(cut -d' ' -f2 <<<"$moment")" "primary now" restored
ok=1
i=0
for t in $tables; do
    a=${at_moment[$i]}
    if [[ $(psql1 -c "SELECT to_regclass('$t') IS NULL") == t ]]; then
        p=dropped
    else
        p=$(psql1 -c "SELECT count(*) FROM $t")
    fi
    r=$(psql2 -c "SELECT count(*) FROM $t" 2>/dev/null || echo missing)
    mark=
    [[ $a == "$r" ]] || { mark="  <-- differs"; ok=0; }
    printf '   %-18s %12s %12s %12s%s\n' "$t" "$a" "$p" "$r" "$mark"
    i=$((i + 1))
done
sum_restored=$(psql2 -c "$sum_sql")
say "sum(abalance): $sum_moment at the moment, $sum_restored restored"
[[ $sum_moment == "$sum_restored" ]] || ok=0
if [[ $(psql2 -c "SELECT to_regclass('after_the_drop') IS NULL") != t ]]; then
    say "after_the_drop exists in the restored cluster: recovery went past the target"
    ok=0
fi

heading "Done"
if ((ok)); then
    say "pgbench_accounts is back, exactly as it was at $moment; nothing written after it is there"
else
    say "the restored cluster does not match the moment"
    exit 1
fi
