#!/usr/bin/env bash
# write-doc.sh REPORT SECONDS — puts the rows run.sh wrote into docs/reliability.md's fuzz table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
report=$1 secs=$2
doc=docs/reliability.md
# the commit, "-dirty" when a file other than this document (which the tools rewrite) differs
tree() {
    local c
    c=$(git describe --always 2>/dev/null) || { echo unknown; return; }
    git diff --quiet HEAD -- . ':!docs/reliability.md' 2>/dev/null || c+=-dirty
    echo "$c"
}
{
    # shellcheck disable=SC2016 # the backquotes are Markdown
    printf 'Last full run: %s UTC, tree %s, `make fuzz` (%s s per target), clang %s; %s, %s CPUs, load average %s at the end.\n\n' \
        "$(date -u '+%Y-%m-%d %H:%M')" "$(tree)" "$secs" \
        "$(clang --version | sed -n 's/.*clang version \([0-9.]*\).*/\1/p' | head -1)" "$(hostname)" "$(nproc)" \
        "$(cut -d' ' -f1 /proc/loadavg)"
    echo '| target | seconds | runs | coverage (edges) | seeds | result |'
    echo '|---|---|---|---|---|---|'
    cat "$report"
} >"$report.section"
awk -v sec="$report.section" '
    /<!-- fuzz:begin -->/ { print; while ((getline l < sec) > 0) print l; skip = 1; next }
    /<!-- fuzz:end -->/ { skip = 0 }
    !skip { print }' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
rm -f "$report" "$report.section"
echo "docs/reliability.md: fuzz table updated"
