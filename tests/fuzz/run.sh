#!/usr/bin/env bash
# run.sh BUILD SECONDS [TARGET...] — runs each libFuzzer target for SECONDS seconds, starting
# from its committed seed corpus (tests/fuzz/corpus/<target>/, read only) and the regression
# inputs (tests/fuzz/regress/<target>/), with its dictionary (tests/fuzz/dict/<target>.dict)
# when there is one. New inputs go to BUILD/corpus/<target>/, crashes to BUILD/crashes/<target>/.
# Prints one line per target and a summary; exits 1 if any target crashed.
# FUZZ_REPORT=FILE appends the summary as Markdown rows (docs/reliability.md's fuzz table).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
build=$1 secs=$2
shift 2
targets=("$@")
fail=0
rows=()
for t in "${targets[@]}"; do
    bin=$build/fuzz_$t
    [[ -x $bin ]] || { echo "run.sh: $bin is not built" >&2; exit 2; }
    work=$build/corpus/$t crashes=$build/crashes/$t
    mkdir -p "$work" "$crashes" tests/fuzz/regress/"$t"
    dict=()
    [[ -f tests/fuzz/dict/$t.dict ]] && dict=("-dict=tests/fuzz/dict/$t.dict")
    # the formats whose real inputs are large (a WAL segment's frame, a manifest, a tar) get room
    case $t in lz4 | manifest | server_manifest | tar | cipher) maxlen=262144 ;; *) maxlen=65536 ;; esac
    log=$build/fuzz_$t.log
    # -rss_limit_mb: the targets' own bounds are far below; a parser that balloons is a bug
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$bin" "${dict[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
        -max_len=$maxlen -print_final_stats=1 -artifact_prefix="$crashes/" \
        "$work" tests/fuzz/corpus/"$t" tests/fuzz/regress/"$t" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    seeds=$(find tests/fuzz/corpus/"$t" -type f | wc -l)
    if ((rc != 0)); then
        fail=1
        status="CRASH (exit $rc; see $log and $crashes/)"
        grep -E '^==[0-9]+==ERROR|runtime error|SUMMARY' "$log" | head -5
    else
        status=clean
    fi
    printf '%-16s %6ss %10s runs  cov %5s  seeds %3s  %s\n' "$t" "$secs" "${runs:-?}" "${cov:-?}" "$seeds" "$status"
    rows+=("| $t | $secs | ${runs:-?} | ${cov:-?} | $seeds | $status |")
done
if [[ -n ${FUZZ_REPORT:-} ]]; then
    printf '%s\n' "${rows[@]}" >>"$FUZZ_REPORT"
fi
if ((fail)); then
    echo "fuzz: a target crashed: turn the input into tests/fuzz/regress/<target>/<name> and fix it" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${secs} s each, clean"
