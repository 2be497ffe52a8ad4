#!/usr/bin/env bash
# tools/fuzz.sh: run every fuzz target of the module for FUZZTIME each
# (default 15s). New crashers land in the package's testdata/fuzz and are
# kept there as seeds.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FUZZTIME=${FUZZTIME:-15s}
rc=0; n=0
targets=$(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v '^./cmd/beam' | sort | while read -r f; do
    for fn in $(grep -hoE '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
        echo "./$(dirname "${f#./}")|$fn"
    done
done)
for t in $targets; do
    pkg=${t%%|*}; fn=${t##*|}
    echo "--- fuzz $pkg $fn ($FUZZTIME)"
    go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$FUZZTIME" "$pkg" || rc=1
    n=$((n + 1))
done
echo "fuzz: $n targets, $( [ $rc -eq 0 ] && echo all passed || echo FAILURES)"
exit $rc
