#!/usr/bin/env bash
# include-graph.sh — fails on a dependency cycle in walship/, basebackup/ and restore/, and on a
# core header that includes anything above the core (make lint; tests/t/600_include_cycles.t).
#
#   scripts/include-graph.sh [--root DIR] [--objects DIR]
#
# 1. The file-level include graph: a node is a file's path without .c/.h (foo.c and foo.h are
#    one module), an edge is an #include "..." of a file in the tree. No cycle.
# 2. The core at the bottom of walship/ (CORE below) includes only the core.
# 3. With --objects (the build's obj/ directory; nm reads it): the link graph, who calls whom
#    across units, where a unit is a folder below walship/ (walship/agent/, walship/repo/...),
#    basebackup/, restore/, or one file of walship/ itself. No cycle: a header can hide a
#    cycle (one header declaring functions two files define), the calls cannot.
# Prints each cycle found; exits 1 if any check fails, 0 otherwise.
set -euo pipefail

root=.
objects=
while [ $# -gt 0 ]; do
    case "$1" in
    --root) root=$2; shift 2 ;;
    --objects) objects=$2; shift 2 ;;
    *) echo "usage: $0 [--root DIR] [--objects DIR]" >&2; exit 2 ;;
    esac
done
cd "$root"

# The core: what every layer may include; it includes nothing above itself.
CORE="walship/error.h walship/log.h walship/bytes.h walship/fsutil.h walship/wal.h
walship/config.h walship/clock.h walship/dl.h walship/exit.h"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

# edges "from to" of the include graph, files as they are (from file, included file)
find walship basebackup restore -name '*.[ch]' | LC_ALL=C sort | while read -r f; do
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
        while read -r inc; do
            [ -f "$inc" ] && echo "$f $inc"
        done
done >"$tmp/includes"

# 1. modules: foo.c and foo.h are one node
awk '{ a = $1; b = $2; sub(/\.[ch]$/, "", a); sub(/\.[ch]$/, "", b);
       if (a != b) print a, b }' "$tmp/includes" | LC_ALL=C sort -u >"$tmp/modules"
if ! tsort "$tmp/modules" >/dev/null 2>"$tmp/loop"; then
    echo "include cycle (file level; a module is foo.c + foo.h):" >&2
    sed -n 's/^tsort: \([^:]*\)$/  \1/p' "$tmp/loop" >&2
    status=1
fi

# 2. the core includes only the core
for h in $CORE; do
    [ -f "$h" ] || continue
    awk -v h="$h" '$1 == h { print $2 }' "$tmp/includes" | while read -r inc; do
        case " $(echo $CORE) " in
        *" $inc "*) ;;
        *) echo "core header $h includes $inc, which is above the core" >&2; echo bad ;;
        esac
    done
done >"$tmp/core"
[ -s "$tmp/core" ] && status=1

# 3. the link graph between units
if [ -n "$objects" ]; then
    if ! command -v nm >/dev/null; then
        echo "nm not found: cannot check the link graph of $objects" >&2
        exit 1
    fi
    find "$objects" -name '*.o' ! -name main.o | LC_ALL=C sort >"$tmp/objs"
    [ -s "$tmp/objs" ] || { echo "no objects under $objects" >&2; exit 1; }
    # unit of an object: its source path without obj/ and .o, folded to its folder
    xargs nm -A --defined-only <"$tmp/objs" 2>/dev/null |
        awk '$2 ~ /^[TDBRC]$/ { sub(/:.*/, "", $1); print $3, $1 }' | LC_ALL=C sort -u >"$tmp/defs"
    xargs nm -A --undefined-only <"$tmp/objs" 2>/dev/null |
        awk '{ sub(/:.*/, "", $1); print $NF, $1 }' | LC_ALL=C sort -u >"$tmp/uses"
    LC_ALL=C join "$tmp/uses" "$tmp/defs" |
        awk -v base="$objects/" '
            function unit(o,   p, n, parts) {
                p = substr(o, length(base) + 1); sub(/\.o$/, "", p)
                n = split(p, parts, "/")
                if (parts[1] == "walship" && n > 2) return parts[1] "/" parts[2] "/"
                if (parts[1] == "basebackup" || parts[1] == "restore") return parts[1] "/"
                return p
            }
            { a = unit($2); b = unit($3); if (a != b) print a, b }' |
        LC_ALL=C sort -u >"$tmp/links"
    if ! tsort "$tmp/links" >/dev/null 2>"$tmp/loop"; then
        echo "call cycle between units (folders below walship/, basebackup/, restore/, files of walship/):" >&2
        sed -n 's/^tsort: \([^:]*\)$/  \1/p' "$tmp/loop" >&2
        status=1
    fi
fi

# Only walship/repo/ builds repository keys (issue 12): no "wal/", "backup/" or "gap/" literal
# in a C file elsewhere (keys.h names them).
if grep -n '"\(wal\|backup\|gap\)/' $(find walship basebackup restore -name '*.c' ! -path 'walship/repo/*' | LC_ALL=C sort) >"$tmp/keys"; then
    echo "repository keys built outside walship/repo/ (use walship/repo/keys.h):" >&2
    sed 's/^/  /' "$tmp/keys" >&2
    status=1
fi

[ "$status" = 0 ] && echo "no include cycle, the core includes only the core${objects:+, no call cycle}"
exit "$status"
