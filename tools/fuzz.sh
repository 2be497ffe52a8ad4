#!/usr/bin/env bash
# tools/fuzz.sh: run every fuzz target of the module for FUZZTIME each
# (default 15s), minimising each new input for at most FUZZMINIMIZETIME
# (default 1s; Go's default, 60s per input, leaves the fuzzer almost no time
# to run). New crashers land in the package's testdata/fuzz and are kept
# there as seeds. The summary gives the execs of each target.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FUZZTIME=${FUZZTIME:-15s}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-1s}
rc=0; n=0; summary=""
targets=$(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v '^./cmd/beam' | sort | while read -r f; do
    for fn in $(grep -hoE '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
        echo "./$(dirname "${f#./}")|$fn"
    done
done)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in $targets; do
    pkg=${t%%|*}; fn=${t##*|}
    echo "--- fuzz $pkg $fn ($FUZZTIME, minimise ${FUZZMINIMIZETIME})"
    go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$FUZZTIME" -fuzzminimizetime="$FUZZMINIMIZETIME" "$pkg" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    # Go's fuzzer can end a run with "context deadline exceeded" and no failing
    # input when a worker is still busy at -fuzztime on a starved machine: that
    # is the harness, not a crasher; run the target once more, saying so.
    if [ "$status" -ne 0 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
        echo "--- fuzz $pkg $fn: the fuzzer hit its own deadline without a failing input; once more"
        go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$FUZZTIME" -fuzzminimizetime="$FUZZMINIMIZETIME" "$pkg" 2>&1 | tee "$log"
        status=${PIPESTATUS[0]}
    fi
    execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
    result=ok; [ "$status" -eq 0 ] || { result=FAIL; rc=1; }
    summary+=$(printf '%-28s %-22s %12s  %s' "$pkg" "$fn" "${execs:-?}" "$result")$'\n'
    n=$((n + 1))
done
printf '\n%-28s %-22s %12s  %s\n%s' package target execs result "$summary"
echo "fuzz: $n targets, $( [ $rc -eq 0 ] && echo all passed || echo FAILURES)"
exit $rc
